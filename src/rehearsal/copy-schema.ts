import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'

import type pg from 'pg'
import { readConnectionString } from '../connection/connection-string.js'
import { serverAddress } from '../connection/database-target.js'
import { shownShortOnTerminal } from '../connection/shown-argument.js'
import { CHECK_HOST_AND_PORT } from '../connection/unreachable.js'

import {
  CONNECT_TIMEOUT_MS,
  QUERY_TIMEOUT_MS,
  serverClientConfig,
} from '../connection/server-client-config.js'

/** The schemas copied: the app's tables, and the migration history's. Supabase's own come from the stand-in. */
const COPIED_SCHEMAS = ['public', 'x402_migrations']

/**
 * The libpq keywords of a URL's query string that pg_dump is given: only these, so that a
 * parameter libpq does not know (node-postgres's own, a misspelt or differently cased secret
 * such as PASSWORD) never reaches its arguments, which every user of the machine reads (ps).
 * host, port, user and dbname come from the driver's reading of the URL; the password goes in
 * PGPASSWORD; connect_timeout is the module's fixed CONNECT_TIMEOUT_MS, as PGCONNECT_TIMEOUT.
 */
const FOR_PG_DUMP = new Set([
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslcrl',
  'sslcrldir',
  'sslsni',
  'application_name',
  'fallback_application_name',
  'options',
  'target_session_attrs',
  'gssencmode',
  'channel_binding',
])

/**
 * Why pg_dump cannot be given the connection string `from` without putting a secret in its
 * arguments, or undefined when it can. libpq reads the password from PGPASSWORD, but it has no
 * environment variable for sslpassword (the passphrase of the client key).
 *
 * @example
 * ```ts
 * pgDumpRefusal('postgres://app@db/app?sslpassword=…') // 'The connection string has sslpassword, …'
 * ```
 */
export function pgDumpRefusal(from: string): string | undefined {
  const parameters = readConnectionString(from) as Record<string, unknown>
  if (typeof parameters.sslpassword === 'string' && parameters.sslpassword !== '') {
    return (
      'The connection string has sslpassword (not shown), which --copy-schema cannot hand to pg_dump: libpq reads it from no ' +
      'environment variable, and on the command line every user of this machine could read it (ps). Nothing was run. ' +
      'Leave out --copy-schema to rehearse on the schema the migrations build.'
    )
  }
  // Only "password" itself has a way to pg_dump that no other user can read (PGPASSWORD).
  const secret = Object.keys(parameters).find(
    (name) => /password/i.test(name) && name !== 'password' && name !== 'sslpassword',
  )
  if (secret === undefined) return undefined
  return (
    `The connection string has the parameter ${shownShortOnTerminal(secret)} (its value not shown), which --copy-schema does not hand to pg_dump: ` +
    'a secret there would be on its command line, where every user of this machine could read it (ps). Nothing was run. ' +
    "Give the password as the URL's password (postgres://user:password@host/db) or as ?password=, or leave out --copy-schema " +
    'to rehearse on the schema the migrations build.'
  )
}

/**
 * pg_dump's arguments and environment for a schema-only dump of `from`, read as the module's
 * own connections read it (pg-connection-string). The password goes in PGPASSWORD, never in the
 * arguments, which any user of the machine can read with `ps`; a connection string with
 * sslpassword is refused (see pgDumpRefusal).
 *
 * @example
 * ```ts
 * pgDumpInvocation('postgres://app:secret@db:5432/app').env.PGPASSWORD // 'secret'
 * ```
 */
export function pgDumpInvocation(
  from: string,
  systemRoots?: string,
): {
  args: string[]
  env: NodeJS.ProcessEnv
  timeoutMs: number
} {
  const refusal = pgDumpRefusal(from)
  if (refusal) throw new Error(refusal)
  const parameters = readConnectionString(from) as Record<string, unknown>
  const sslmode = pgDumpSslMode(parameters, process.env)
  const keywords: Array<[string, unknown]> = [
    ['host', parameters.host],
    ['port', parameters.port],
    ['user', parameters.user],
    ['dbname', parameters.database],
    ...Object.entries(parameters).filter(([name]) => FOR_PG_DUMP.has(name) && name !== 'sslmode'),
    ['sslmode', sslmode],
    // libpq's verify-full trusts only ~/.postgresql/root.crt where the URL names no authority;
    // node-postgres trusts Node's roots, which pg_dump is given (review N10-5's second review).
    ...(sslmode === 'verify-full' && !parameters.sslrootcert && systemRoots
      ? [['sslrootcert', systemRoots] as [string, string]]
      : []),
  ]
  const conninfo = keywords
    .filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '')
    .map(([name, value]) => `${name}='${value.replace(/[\\']/g, '\\$&')}'`)
    .join(' ')
  const schemas = COPIED_SCHEMAS.map((schema) => `--schema=${schema}`)
  // pg_dump sets statement_timeout (and transaction_timeout) to 0 for its session, so no server
  // setting bounds it: the module's own bounds do, connecting through libpq's PGCONNECT_TIMEOUT,
  // the whole dump as one answer of the server (query_timeout).
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGCONNECT_TIMEOUT: String(Math.ceil(CONNECT_TIMEOUT_MS / 1000)),
  }
  if (typeof parameters.password === 'string' && parameters.password !== '')
    env.PGPASSWORD = parameters.password
  return {
    args: ['--schema-only', '--no-owner', '--no-privileges', ...schemas, `--dbname=${conninfo}`],
    env,
    timeoutMs: Number(serverClientConfig(from).query_timeout ?? QUERY_TIMEOUT_MS),
  }
}

/**
 * The certificate authorities node-postgres's connections trust, as one PEM text: Node's own
 * roots, and the file NODE_EXTRA_CA_CERTS names, which Node adds to them.
 */
function nodeRootCertificates(): string {
  let extra = ''
  try {
    if (process.env.NODE_EXTRA_CA_CERTS)
      extra = readFileSync(process.env.NODE_EXTRA_CA_CERTS, 'utf8')
  } catch {
    // Node itself warns of a file it cannot read, and goes on without it.
  }
  return [...tls.rootCertificates, extra].join('\n')
}

/**
 * The libpq sslmode that makes pg_dump check what the module's own connections check, as
 * node-postgres reads the URL (after strictSslMode) and, where it names no TLS, PGSSLMODE: a
 * certificate checked (verify-full) where node-postgres checks it (sslmode prefer, require,
 * verify-ca, ?ssl=true, or PGSSLMODE one of those), TLS unchecked (require) for no-verify, none
 * (disable) where the URL says none; where nothing names TLS, libpq's default. Said explicitly, so that pg_dump inherits no
 * PGSSLMODE=require, which libpq takes as TLS without a check (review N10-5's hostile review).
 */
function pgDumpSslMode(
  parameters: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): string | undefined {
  const mode = (tls: unknown): string =>
    tls === false || tls === 'disable'
      ? 'disable'
      : tls === 'no-verify' ||
          (typeof tls === 'object' &&
            (tls as { rejectUnauthorized?: unknown }).rejectUnauthorized === false)
        ? 'require'
        : 'verify-full'
  // Under libpq's meaning, asked for by the URL, the mode is libpq's as given.
  if (parameters.uselibpqcompat === 'true' && typeof parameters.sslmode === 'string')
    return parameters.sslmode
  if (typeof parameters.sslmode === 'string') return mode(parameters.sslmode)
  if (parameters.ssl !== undefined) return mode(parameters.ssl)
  const fromEnv = env.PGSSLMODE
  // Where nothing names TLS, libpq's own default (prefer) is left to pg_dump.
  return fromEnv && ['prefer', 'require', 'verify-ca', 'no-verify'].includes(fromEnv)
    ? mode(fromEnv)
    : undefined
}

/**
 * Runs `script`, a schema read by {@link dumpSchema}, on `client`'s session (a scratch
 * database's, whose Supabase pieces are in place).
 *
 * @example
 * ```ts
 * await restoreSchema(await dumpSchema(targetUrl), scratchClient)
 * ```
 */
export async function restoreSchema(script: string, client: pg.ClientBase): Promise<void> {
  // One simple-protocol query: the dump is many statements.
  await client.query(script)
}

/**
 * The schema (no rows) of the database at `from`, as SQL: pg_dump --schema-only's, which must be
 * on the PATH and at least as new as the server, of schemas public and x402_migrations only,
 * without owners or grants, and without psql's meta-commands. pg_dump only reads `from`.
 *
 * @example
 * ```ts
 * const script = await dumpSchema(process.env.DATABASE_URL!)
 * ```
 */
export async function dumpSchema(from: string): Promise<string> {
  let dump: string
  // Refused before any file is written (sslpassword, a secret pg_dump's arguments would show).
  const refusal = pgDumpRefusal(from)
  if (refusal) throw new Error(refusal)
  // pg_dump holds its tables' locks until it ends, in a transaction no server setting bounds. It
  // runs in a process group of its own (detached), so that stopping this process's group (Ctrl-Z)
  // does not stop it with its locks held, and writes a file, not a pipe that a stopped reader
  // would leave full: it finishes, whatever becomes of this process (review revk K2).
  const folder = await mkdtemp(join(tmpdir(), 'x402-schema-dump-'))
  const file = join(folder, 'schema.sql')
  const roots = join(folder, 'roots.pem')
  const { args, env, timeoutMs } = pgDumpInvocation(from, roots)
  try {
    await writeFile(roots, nodeRootCertificates(), { mode: 0o600 })
    await runDetached([...args, `--lock-wait-timeout=${timeoutMs}`, `--file=${file}`], {
      env,
      timeoutMs,
      stderrFile: join(folder, 'stderr'),
    })
    dump = await readFile(file, 'utf8')
  } catch (error) {
    const failed = error as { stderr?: string; killed?: boolean; signal?: string | null }
    const reason = failed.stderr?.trim() || (error instanceof Error ? error.message : String(error))
    const stopped =
      'a server that stopped responding, or a proxy or network path that stopped forwarding'
    if (failed.killed && failed.signal === 'SIGKILL') {
      throw new Error(
        `Copying the target's schema: pg_dump did not finish within ${timeoutMs} ms (query_timeout) reading ${serverAddress(from)}, and was stopped ` +
          `(${stopped}, or a lock on one of its tables that pg_dump waited for). Check that the server is up and answers; ` +
          'where the dump rightly takes longer, raise query_timeout in the URL (?query_timeout=<ms>).',
        { cause: error },
      )
    }
    if (/timeout expired\s*$/.test(reason)) {
      throw new Error(
        `Copying the target's schema: pg_dump could not connect to ${serverAddress(from)} within ${CONNECT_TIMEOUT_MS} ms (${stopped}). ` +
          CHECK_HOST_AND_PORT,
        { cause: error },
      )
    }
    if ((error as { code?: unknown }).code === 'ENOENT') {
      throw new Error(
        "Copying the target's schema: pg_dump was not found on the PATH. Install PostgreSQL's client tools at the server's version, " +
          "or leave out --copy-schema to rehearse on the schema the module's migrations build.",
      )
    }
    throw new Error(
      `Copying the target's schema with pg_dump failed (${reason}). Check the connection string's host, user and database, and that ` +
        "pg_dump is at least as new as the server (pg_dump --version), or leave out --copy-schema to rehearse on the schema the module's migrations build.",
    )
  } finally {
    await rm(folder, { recursive: true, force: true })
  }
  return (
    dump
      .split('\n')
      // psql's meta-commands (\restrict of recent pg_dump) are not SQL.
      .filter((line) => !line.startsWith('\\'))
      .map((line) => line.replace(/^CREATE SCHEMA (\S+);$/, 'CREATE SCHEMA IF NOT EXISTS $1;'))
      .join('\n')
  )
}

/**
 * Runs pg_dump with `args` in a process group of its own, its stderr to `stderrFile` (no pipe
 * to this process); rejects as execFile does (`stderr`, `killed`, `signal`, `code`), and after
 * `timeoutMs` kills it. SIGKILL, not SIGTERM: SIGTERM makes pg_dump send a cancel request over a
 * new connection that can wait as long as the stalled one; pg_dump only reads, so nothing is left
 * half done.
 */
async function runDetached(
  args: string[],
  options: { env: NodeJS.ProcessEnv; timeoutMs: number; stderrFile: string },
): Promise<void> {
  const stderr = await open(options.stderrFile, 'w', 0o600)
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('pg_dump', args, {
        env: options.env,
        detached: true,
        stdio: ['ignore', 'ignore', stderr.fd],
      })
      let killed = false
      const timer = setTimeout(() => {
        killed = true
        child.kill('SIGKILL')
      }, options.timeoutMs)
      const failed = (error: Error, more: object) =>
        readFile(options.stderrFile, 'utf8').then(
          (text) => reject(Object.assign(error, { stderr: text.slice(0, 65536), killed }, more)),
          () => reject(Object.assign(error, { killed }, more)),
        )
      child.on('error', (error) => {
        clearTimeout(timer)
        void failed(error, {})
      })
      child.on('exit', (code, signal) => {
        clearTimeout(timer)
        if (code === 0) resolve()
        else void failed(new Error(`pg_dump exited with ${code ?? signal}`), { signal })
      })
    })
  } finally {
    await stderr.close()
  }
}
