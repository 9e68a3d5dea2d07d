import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'
import { afterAll, beforeAll } from 'vitest'

/** Debian's pgbouncer package (1.18 on bookworm) installs it here; CI installs it (.ci/run). */
export const PGBOUNCER_PATH = '/usr/sbin/pgbouncer'

/** A PgBouncer in front of the test server, started by {@link startPgBouncer}. */
export interface PgBouncer {
  /** The loopback port it listens on. */
  port: number
  /** Its process id; the process is gone once {@link PgBouncer.stop} resolves. */
  pid: number
  /** The temporary directory of its ini, auth file, pid file and log; removed by `stop`. */
  directory: string
  /** The URL of `databaseName` on the server, through this PgBouncer. */
  url(databaseName: string): string
  /** Runs a command on PgBouncer's admin console (`SHOW SERVERS`, `SHOW POOLS`, …) and returns its rows. */
  adminQuery(command: string): Promise<Record<string, unknown>[]>
  /** Its log so far, to explain a failure. */
  log(): string
  /** Stops the process (SIGTERM, then SIGKILL) and removes its directory. Safe to call twice. */
  stop(): Promise<void>
}

/** Options of {@link startPgBouncer}. */
export interface PgBouncerOptions {
  /** The server it pools for; TEST_DATABASE_URL by default. Its user (and password) log in. */
  serverUrl?: string
  /**
   * default_pool_size: server connections per database and user. At least 4, so that two
   * clients can each hold a server connection while others are idle; 8 by default.
   */
  poolSize?: number
  /**
   * pool_mode: `transaction` (the default, as Supabase's port 6543) hands a client a server
   * connection per transaction; `session` (as Supabase's session pooler) for the client's whole
   * connection; `statement` (which no module command can use: it allows no transaction) for a
   * refusal's wording.
   */
  poolMode?: 'transaction' | 'session' | 'statement'
  /**
   * server_round_robin = 1: an idle server connection is reused first in, first out, instead of
   * PgBouncer's default last in, first out. Code that tells a pooler by which server connection
   * comes back must be tested with both orders.
   */
  roundRobin?: boolean
}

/**
 * Why the PgBouncer tests cannot run here, or undefined when they can. They need the
 * TEST_DATABASE_URL server and Debian's pgbouncer. In CI a missing pgbouncer is no reason to
 * skip: .ci/run installs it, and without it {@link startPgBouncer} fails saying so.
 *
 * @example
 * ```ts
 * const skipReason = pgbouncerSkipReason()
 * describe.skipIf(skipReason !== undefined)(`through PgBouncer${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {})
 * ```
 */
export function pgbouncerSkipReason(): string | undefined {
  if (!process.env.TEST_DATABASE_URL)
    return 'TEST_DATABASE_URL is not set, and PgBouncer needs a PostgreSQL server'
  if (!existsSync(PGBOUNCER_PATH) && !process.env.CI) {
    return `${PGBOUNCER_PATH} is not installed (apt-get install pgbouncer; CI installs it)`
  }
  return undefined
}

/**
 * Whether the PgBouncer tests run here; see {@link pgbouncerSkipReason} for why not.
 *
 * @example
 * ```ts
 * describe.skipIf(!pgbouncerAvailable())('through PgBouncer', () => {})
 * ```
 */
export function pgbouncerAvailable(): boolean {
  return pgbouncerSkipReason() === undefined
}

/**
 * Starts a PgBouncer (in `pool_mode = transaction` unless `poolMode` says otherwise) on a free
 * loopback port, in front of the TEST_DATABASE_URL server, and resolves once it accepts
 * connections. It serves every database of that server (`url(name)`), also those created after
 * it started. Its ini, auth file, pid file and log live in a temporary directory of its own.
 * Unless `roundRobin`, `server_round_robin` keeps its default: an idle server connection is
 * reused last in, first out.
 *
 * PgBouncer refuses to run as root: under root it is started with `-u postgres`, and its
 * directory is handed to that user. Call `stop()` when done; a process that exits without
 * calling it (or ends on SIGINT, SIGTERM or SIGHUP) still stops its PgBouncers and removes their
 * directories on the way out. Only SIGKILL of the test process leaves one behind.
 *
 * @example
 * ```ts
 * const pooler = await startPgBouncer({ roundRobin: true })
 * const client = new pg.Client({ connectionString: pooler.url('x402_test_abc') })
 * // …
 * await pooler.stop()
 * ```
 */
export async function startPgBouncer(options: PgBouncerOptions = {}): Promise<PgBouncer> {
  if (!existsSync(PGBOUNCER_PATH)) {
    throw new Error(
      `PgBouncer is not installed at ${PGBOUNCER_PATH}. Install Debian's package: apt-get install pgbouncer.`,
    )
  }
  const serverUrl = new URL(options.serverUrl ?? requiredTestDatabaseUrl())
  const poolSize = options.poolSize ?? 8
  const poolMode = options.poolMode ?? 'transaction'
  if (poolSize < 4)
    throw new Error(
      `poolSize is ${poolSize}, expected at least 4: the tests hold two server connections at once.`,
    )

  // The free port is found by binding it and letting go, so another process can take it before
  // PgBouncer does; then PgBouncer exits at once, and a new port is tried.
  let lastFailure: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(
        serverUrl,
        { poolSize, poolMode, roundRobin: options.roundRobin ?? false },
        await freeLoopbackPort(),
      )
    } catch (error) {
      if (!(error instanceof PortTakenError)) throw error
      lastFailure = error
    }
  }
  throw lastFailure
}

/**
 * Gives the enclosing `describe` a PgBouncer from {@link startPgBouncer}, started before its
 * tests and stopped after them, whether they passed or not. Returns its accessor.
 *
 * @example
 * ```ts
 * describe.skipIf(!pgbouncerAvailable())('through PgBouncer', () => {
 *   const pooler = usePgBouncer()
 *   it('connects', async () => { const client = new pg.Client(pooler().url('postgres')) })
 * })
 * ```
 */
export function usePgBouncer(options: PgBouncerOptions = {}): () => PgBouncer {
  let current: PgBouncer | undefined
  beforeAll(async () => {
    current = await startPgBouncer(options)
  })
  afterAll(() => current?.stop())
  return () => {
    if (!current) throw new Error('The PgBouncer is used before beforeAll started it.')
    return current
  }
}

class PortTakenError extends Error {}

function requiredTestDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL
  if (!url)
    throw new Error(
      'TEST_DATABASE_URL is not set: PgBouncer needs a PostgreSQL server to pool for.',
    )
  return url
}

async function launch(
  serverUrl: URL,
  pool: {
    poolSize: number
    poolMode: 'transaction' | 'session' | 'statement'
    roundRobin: boolean
  },
  port: number,
): Promise<PgBouncer> {
  const directory = mkdtempSync(join(tmpdir(), 'x402-pgbouncer-'))
  const files = {
    ini: join(directory, 'pgbouncer.ini'),
    auth: join(directory, 'userlist.txt'),
    pid: join(directory, 'pgbouncer.pid'),
    log: join(directory, 'pgbouncer.log'),
  }
  const user = decodeURIComponent(serverUrl.username) || 'postgres'
  const password = decodeURIComponent(serverUrl.password)
  // Clients are trusted, as the test server trusts them; the password (if any) is the one
  // PgBouncer logs in to the server with.
  writeFileSync(files.auth, `${quoted(user)} ${quoted(password)}\n`)
  writeFileSync(
    files.ini,
    [
      '[databases]',
      // The fallback entry: any database name is passed through to the server.
      `* = host=${serverUrl.hostname.replace(/^\[|\]$/g, '')} port=${serverUrl.port || '5432'}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      // No Unix socket: /tmp/.s.PGSQL.<port> could collide with another server's.
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${files.auth}`,
      `admin_users = ${user}`,
      `pool_mode = ${pool.poolMode}`,
      `default_pool_size = ${pool.poolSize}`,
      `server_round_robin = ${pool.roundRobin ? 1 : 0}`,
      // A database dropped by a test must not leave its pool waiting 15 s to log in again.
      'server_login_retry = 1',
      `logfile = ${files.log}`,
      `pidfile = ${files.pid}`,
      '',
    ].join('\n'),
  )

  const args = [files.ini]
  if (process.getuid?.() === 0) {
    const runAs = unprivilegedUser()
    // PgBouncer drops to that user before it writes its pid file and log.
    for (const path of [directory, files.ini, files.auth]) chownSync(path, runAs.uid, runAs.gid)
    args.unshift('-u', runAs.name)
  }

  const child = spawn(PGBOUNCER_PATH, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const stderrPipe = child.stderr as Socket
  let stderr = ''
  stderrPipe.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8_000)
  })
  // A process that forgets stop() still ends, and its exit hook then stops PgBouncer.
  child.unref()
  stderrPipe.unref()
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.once('error', () => resolve())
  })
  const instance = trackInstance(child, directory, exited)
  const readLog = () => (existsSync(files.log) ? readFileSync(files.log, 'utf8') : stderr)

  const pgbouncer: PgBouncer = {
    port,
    pid: child.pid!,
    directory,
    url(databaseName) {
      const url = new URL(serverUrl)
      url.hostname = '127.0.0.1'
      url.port = String(port)
      url.pathname = `/${encodeURIComponent(databaseName)}`
      return url.toString()
    },
    adminQuery: (command) =>
      withAdminConsole(port, user, async (client) => (await client.query(command)).rows),
    log: readLog,
    stop: instance.stop,
  }

  try {
    await waitUntilAccepting(pgbouncer, exited)
  } catch (error) {
    const log = readLog()
    await instance.stop()
    if (/Address already in use/.test(log)) throw new PortTakenError(`port ${port} was taken`)
    throw new Error(
      `PgBouncer did not start on 127.0.0.1:${port}: ${error instanceof Error ? error.message : String(error)}. ` +
        `Its log:\n${log.trim() || '(empty)'}`,
    )
  }
  return pgbouncer
}

function quoted(value: string): string {
  return `"${value.replaceAll('"', '""')}"`
}

function unprivilegedUser(): { name: string; uid: number; gid: number } {
  const name = 'postgres'
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim())
    return { name, uid, gid }
  } catch {
    throw new Error(
      'PgBouncer refuses to run as root, and there is no "postgres" user to run it as. ' +
        'Run the tests as a normal user, or install the PostgreSQL server package, which creates that user.',
    )
  }
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      )
    })
  })
}

/**
 * Waits until this PgBouncer has bound its port (its own log says so: another process that took
 * the port in the meantime could answer a connection too) and answers on its admin console.
 */
async function waitUntilAccepting(pgbouncer: PgBouncer, exited: Promise<void>): Promise<void> {
  let hasExited = false
  void exited.then(() => (hasExited = true))
  const listening = `listening on 127.0.0.1:${pgbouncer.port}`
  const deadline = Date.now() + 10_000
  let lastError: unknown
  while (Date.now() < deadline) {
    if (hasExited) throw new Error('it exited')
    if (pgbouncer.log().includes(listening)) {
      try {
        await pgbouncer.adminQuery('SHOW VERSION')
        return
      } catch (error) {
        lastError = error
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(
    `it did not accept connections within 10 s${lastError ? ` (${String(lastError)})` : ''}`,
  )
}

async function withAdminConsole<T>(
  port: number,
  user: string,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  // The admin console speaks only the simple query protocol: commands are sent without parameters.
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user,
    database: 'pgbouncer',
    connectionTimeoutMillis: 2_000,
  })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

interface TrackedInstance {
  stop(): Promise<void>
}

/** Running PgBouncers of this process and their directories, for the exit hook. */
const running = new Map<ChildProcess, string>()
let exitHookInstalled = false

function trackInstance(
  child: ChildProcess,
  directory: string,
  exited: Promise<void>,
): TrackedInstance {
  if (!exitHookInstalled) {
    process.once('exit', stopAllSynchronously)
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        stopAllSynchronously()
        // Listening to a signal cancels Node's default of ending the process: restore it,
        // unless someone else (a test runner) handles the signal.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
      })
    }
    exitHookInstalled = true
  }
  running.set(child, directory)
  let stopping: Promise<void> | undefined
  return {
    stop() {
      stopping ??= (async () => {
        if (isRunning(child)) {
          child.kill('SIGTERM')
          let timer: NodeJS.Timeout | undefined
          const stopped = await Promise.race([
            exited.then(() => true),
            new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 5_000))),
          ])
          clearTimeout(timer)
          if (!stopped) {
            child.kill('SIGKILL')
            await exited
          }
        }
        running.delete(child)
        rmSync(directory, { recursive: true, force: true })
      })()
      return stopping
    },
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

// A test process that ends without stop() (a crash, a forgotten afterAll, Ctrl-C) must not leave
// a PgBouncer holding server connections. An exit handler runs only synchronous code: SIGKILL,
// then remove the directory.
function stopAllSynchronously(): void {
  for (const [child, directory] of running) {
    if (isRunning(child)) child.kill('SIGKILL')
    rmSync(directory, { recursive: true, force: true })
  }
  running.clear()
}
