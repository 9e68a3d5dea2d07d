import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

import pg from 'pg'

import { endClient } from '../connection/end-client.js'
import {
  explainTimeout,
  QUERY_TIMEOUT_MS,
  serverClient,
  serverClientConfig,
} from '../connection/server-client-config.js'
import { checkConnectionString } from '../connection/connection-string.js'
import { errorCode, unlessRefused } from '../connection/sql-state.js'

/** Every scratch database's name starts so; a sweep touches no other database. */
const PREFIX = 'x402_rehearsal_'
/** `x402_rehearsal_<server epoch seconds>_<pid>_<random>`: its age is in its name. */
const NAME = /^x402_rehearsal_(\d{9,12})_\d+_[0-9a-f]+$/
/**
 * A leftover older than this is swept. A live rehearsal always has sessions on its database, so
 * the bound only spares one that is just being created or dropped.
 */
export const SWEEP_AFTER_SECONDS = 3600

/**
 * The bound on each answer while removing a scratch database and its role, in ms, whatever the
 * URL's query_timeout: its statements are small, and a server that has just failed to answer
 * must not hold the command for a second full query_timeout (review revq N1).
 */
const CLEANUP_TIMEOUT_MS = 30_000

/** `server` with its query_timeout at most {@link CLEANUP_TIMEOUT_MS}. */
function cleanupUrl(server: string): string {
  const url = new URL(server)
  const own = Number(url.searchParams.get('query_timeout') ?? QUERY_TIMEOUT_MS)
  url.searchParams.set('query_timeout', String(Math.min(own, CLEANUP_TIMEOUT_MS)))
  return url.toString()
}

const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const

/**
 * The node-postgres settings of every session the server's user (a superuser) opens on a server
 * named for rehearsals: serverClientConfig's, with `search_path` set to pg_catalog (and pg_temp,
 * last) alone from the session's start, whatever the URL, PGOPTIONS or the server's settings say.
 * Other roles of that server may create in `public` of its database (every role, up to
 * PostgreSQL 14), and PostgreSQL prefers an operator or function of `public` that matches
 * the argument types exactly over pg_catalog's, even with pg_catalog first: `datname LIKE '…'` is
 * `name ~~ name`, for which pg_catalog has only `~~(name, text)`. Out of the path, nothing of
 * theirs runs with the superuser's power (review revo O1). The statements these sessions run
 * name objects outside pg_catalog with their schema.
 *
 * @example
 * ```ts
 * const client = new pg.Client(adminClientConfig('postgres://postgres@rehearsals:5432/postgres'))
 * ```
 */
export function adminClientConfig(
  connectionString: string,
  env: NodeJS.ProcessEnv = process.env,
): pg.PoolConfig {
  const config = serverClientConfig(connectionString, env)
  // The last -c of a setting wins; node-postgres reads PGOPTIONS only where options is unset.
  const options = [config.options ?? env.PGOPTIONS, '-c search_path=pg_catalog,pg_temp']
  return { ...config, options: options.filter(Boolean).join(' ') }
}

/** A scratch database created on a server, dropped by {@link ServerScratch.drop} or on Ctrl-C. */
export interface ServerScratch {
  /** The name of the database, and of the role that owns it. */
  name: string
  /**
   * The scratch database as its owner: a role made for this rehearsal, with no attribute (no
   * superuser, no CREATEROLE, no CREATEDB, no BYPASSRLS), that logs in with a random password
   * until {@link ServerScratch.refuseLogins}. Everything the rehearsal runs there runs as this role.
   */
  connectionString: string
  /** The scratch database as the server's own user: only for what must exist before the role's code runs. */
  adminConnectionString: string
  /**
   * Makes the role NOLOGIN, once the rehearsal has opened every session it opens as the role:
   * the sessions open stay, and no other can be opened, whatever password the code the role runs
   * gives it (any role may change its own password; only a role with CREATEROLE may give back
   * LOGIN). Review revs S1.
   */
  refuseLogins(): Promise<void>
  /**
   * Makes the role NOLOGIN and ends its sessions on every database of the server, then drops
   * the database and the role, and stops watching for signals. A role that cannot be dropped is
   * left NOLOGIN, and the error says how to remove it.
   */
  drop(): Promise<void>
}

/**
 * Creates a scratch database on `server`, a server for rehearsals (whose own database is only
 * used to create and drop it), owned by a role of the same name made for it, after sweeping
 * leftovers of rehearsals that were killed (see {@link sweepScratchDatabases}). The server's user
 * must be allowed to create roles and databases (a superuser). The role owns the database and
 * has no other power: the code the rehearsal runs there (the target's triggers and functions,
 * with --copy-schema) has no more power than its author had.
 * Until it is dropped, SIGINT and SIGTERM drop it and exit the process with 130 or 143, as the
 * signal would have: a Ctrl-C leaves nothing on the server. Its name carries the server's time
 * of creation, and a COMMENT ON DATABASE says who created it, so that a leftover of a SIGKILL
 * can be told apart and swept.
 *
 * @example
 * ```ts
 * const scratch = await createServerScratch('postgres://postgres@127.0.0.1:5432/postgres')
 * try { … } finally { await scratch.drop() }
 * ```
 */
export async function createServerScratch(server: string): Promise<ServerScratch> {
  checkConnectionString(server, "the rehearsal server's connection string")
  await sweepScratchDatabases(server).catch(unlessRefused)
  let name: string | undefined
  const password = randomBytes(24).toString('base64url')
  let creating: Promise<unknown> = Promise.resolve()
  let dropping: Promise<void> | undefined
  const dropNow = () =>
    (dropping ??= creating
      .catch(() => {})
      .then(() =>
        name
          ? withClient(cleanupUrl(server), async (client) => {
              // Before the database goes: a role that can no longer log in, with no session
              // left anywhere on the server, whatever the code it ran did meanwhile.
              const role = await shutOutRole(client, name!)
              await dropDatabase(client, name!, { force: true })
              if (role) await dropRole(client, name!)
            })
          : undefined,
      )
      .then(() => {}))
  const onSignal = (signal: keyof typeof EXIT_CODES) => {
    void dropNow()
      .catch((error: unknown) =>
        console.error(
          `The scratch database ${name} could not be dropped (${error instanceof Error ? error.message : String(error)}); the next rehearsal sweeps it.`,
        ),
      )
      .finally(() => process.exit(EXIT_CODES[signal]))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const stopWatching = () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  try {
    creating = withClient(server, async (client) => {
      const { rows } = await client.query<{ now: string }>(
        'SELECT floor(extract(epoch FROM now()))::bigint AS now',
      )
      name = `${PREFIX}${rows[0]!.now}_${process.pid}_${randomBytes(4).toString('hex')}`
      const comment = `x402-jobs-db rehearsal scratch database, created by process ${process.pid} on ${hostname()}; dropped when the rehearsal ends, or by a later rehearsal once no session uses it.`
      await client.query(
        `CREATE ROLE ${name} LOGIN PASSWORD ${client.escapeLiteral(password)} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
      )
      await client.query(`COMMENT ON ROLE ${name} IS ${client.escapeLiteral(comment)}`)
      // template0, which only a superuser can change: a copy of template1 would carry what the
      // server's other roles put there, such as a login event trigger that fires as the
      // superuser's session connects (review revq Q2).
      await client.query(`CREATE DATABASE ${name} OWNER ${name} TEMPLATE template0`)
      await client.query(`COMMENT ON DATABASE ${name} IS ${client.escapeLiteral(comment)}`)
      // A new database lets every login of the server connect and make temporary tables: no
      // other login is to read or call the copied schema's code there (review revt F6).
      await client.query(`REVOKE ALL ON DATABASE ${name} FROM PUBLIC`)
    })
    await creating
  } catch (error) {
    const left = await dropNow().then(
      () => undefined,
      (cause: unknown) => cause,
    )
    stopWatching()
    if (left !== undefined && name && error instanceof Error) {
      error.message +=
        ` The scratch role ${name} (and its database, if it was made) could not be removed: ` +
        `${(left instanceof Error ? left.message : String(left)).replace(/\.$/, '')}. It stays on the rehearsal server, with a password only this process knew; ` +
        'the next rehearsal on that server removes it once it is an hour old and unused.'
    }
    throw error
  }
  const admin = new URL(server)
  admin.pathname = `/${name}`
  const owner = new URL(admin)
  owner.username = name!
  owner.password = password
  owner.searchParams.delete('password')
  owner.searchParams.delete('user')
  return {
    name: name!,
    connectionString: owner.toString(),
    adminConnectionString: admin.toString(),
    async refuseLogins() {
      await withClient(server, (client) => client.query(`ALTER ROLE ${name} NOLOGIN`))
    },
    async drop() {
      try {
        await dropNow()
      } finally {
        stopWatching()
      }
    },
  }
}

/**
 * Drops the scratch databases of earlier rehearsals on `server` that were killed before they
 * could drop them (SIGKILL, a lost machine), and their roles: only databases and roles named as
 * {@link createServerScratch} names them, created more than `olderThanSeconds` ago by the
 * server's clock, with no session connected. A database someone connects to meanwhile is left
 * (DROP without FORCE refuses), and so is its role. Returns the names of the databases dropped.
 *
 * @example
 * ```ts
 * const swept = await sweepScratchDatabases('postgres://postgres@127.0.0.1:5432/postgres')
 * ```
 */
export async function sweepScratchDatabases(
  server: string,
  olderThanSeconds = SWEEP_AFTER_SECONDS,
): Promise<string[]> {
  return withClient(server, async (client) => {
    const { rows } = await client.query<{ datname: string; now: string }>(
      `SELECT d.datname, floor(extract(epoch FROM now()))::bigint AS now FROM pg_database d
        WHERE d.datname LIKE 'x402\\_rehearsal\\_%' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)`,
    )
    const swept: string[] = []
    for (const { datname, now } of rows) {
      const created = NAME.exec(datname)?.[1]
      if (created === undefined || Number(now) - Number(created) < olderThanSeconds) continue
      try {
        await dropDatabase(client, datname, { force: false })
        swept.push(datname)
      } catch {
        // Connected to meanwhile, or not ours to drop: left as it is.
      }
    }
    // The roles of those, and of databases dropped by a rehearsal killed before it dropped its role.
    const { rows: roles } = await client.query<{ rolname: string; now: string }>(
      `SELECT r.rolname, floor(extract(epoch FROM now()))::bigint AS now FROM pg_roles r
        WHERE r.rolname LIKE 'x402\\_rehearsal\\_%' AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = r.rolname)`,
    )
    for (const { rolname, now } of roles) {
      const created = NAME.exec(rolname)?.[1]
      if (created === undefined || Number(now) - Number(created) < olderThanSeconds) continue
      // NOLOGIN at once, even where it cannot be dropped yet: a session that code it ran opened
      // (review revs S1) is ended, and no other can be opened.
      await shutOutRole(client, rolname).catch(() => {})
      await dropRole(client, rolname).catch(() => {})
    }
    return swept
  })
}

/**
 * A connected session of the server's user on the server's own database (see adminClientConfig),
 * with event triggers off from its start: on PostgreSQL 17, a login event trigger there, over
 * another role's function, would run as the superuser as the session connects (review revs S4).
 * A server before 17 knows no such setting and refuses it (42704): the session is then opened
 * without it, as such a server has no login event trigger.
 *
 * @example
 * ```ts
 * const client = await connectAdmin('postgres://postgres@rehearsals:5432/postgres')
 * ```
 */
export async function connectAdmin(connectionString: string): Promise<pg.Client> {
  const config = adminClientConfig(connectionString)
  const open = async (options: string) => {
    const client = serverClient({ ...config, options })
    await client.connect()
    return client
  }
  try {
    return await open(`${config.options} -c event_triggers=off`).catch((error: unknown) =>
      errorCode(error) === UNDEFINED_SETTING ? open(config.options!) : Promise.reject(error),
    )
  } catch (error) {
    throw explainTimeout(error, connectionString)
  }
}

/** SQLSTATE undefined_object: a server that knows no such setting. */
const UNDEFINED_SETTING = '42704'

/**
 * Drops the scratch database `name` (with its sessions where `force`), once it is no template:
 * its role owns it and may have marked it one (ALTER DATABASE … IS_TEMPLATE), which DROP
 * DATABASE refuses, leaving the copied schema on the server for anyone with CREATEDB to clone
 * (review revt F3).
 */
async function dropDatabase(
  client: pg.Client,
  name: string,
  { force }: { force: boolean },
): Promise<void> {
  const { rowCount } = await client.query(
    'SELECT FROM pg_catalog.pg_database WHERE datname = $1 AND datistemplate',
    [name],
  )
  if (rowCount) await client.query(`ALTER DATABASE ${name} IS_TEMPLATE false`)
  await client.query(`DROP DATABASE IF EXISTS ${name}${force ? ' WITH (FORCE)' : ''}`)
}

/** How long {@link shutOutRole} waits for the sessions it ended to be gone. */
const SESSIONS_GONE_MS = 10_000

/**
 * Makes the scratch role `name` NOLOGIN (a role without CREATEROLE cannot give it back) and ends
 * every session of it on the server, on every database, waiting until they are gone (their
 * temporary tables with them). Only that role's sessions. Returns false where there is no such
 * role.
 */
async function shutOutRole(client: pg.Client, name: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])
  if (!rowCount) return false
  await client.query(`ALTER ROLE ${name} NOLOGIN`)
  const deadline = performance.now() + SESSIONS_GONE_MS
  for (;;) {
    const { rows } = await client.query<{ pid: number }>(
      'SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
      [name],
    )
    if (rows.length === 0 || performance.now() > deadline) return true
    await sleep(50)
  }
}

/**
 * Drops the scratch role `name` (NOLOGIN, without sessions: see {@link shutOutRole}); where
 * objects of its own hold it in the server's own database, drops those first (DROP OWNED). A
 * role that still cannot be dropped stays NOLOGIN, and the error says so, and how to remove it.
 */
async function dropRole(client: pg.Client, name: string): Promise<void> {
  try {
    await client.query(`DROP ROLE IF EXISTS ${name}`)
    return
  } catch {
    // Objects of its own or privileges granted to it (review revs S1): below.
  }
  try {
    await client.query(`DROP OWNED BY ${name}`)
    await client.query(`DROP ROLE IF EXISTS ${name}`)
  } catch (error) {
    const { rows } = await client
      .query<{ datname: string }>(
        `SELECT DISTINCT d.datname FROM pg_catalog.pg_shdepend s JOIN pg_catalog.pg_database d ON d.oid = s.dbid
          WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
            AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1) ORDER BY 1`,
        [name],
      )
      .catch(() => ({ rows: [] }))
    const where =
      rows.length > 0 ? rows.map((row) => row.datname).join(', ') : 'each database that holds some'
    throw new Error(
      `The scratch role ${name} could not be dropped (${error instanceof Error ? error.message : String(error)}). ` +
        'It remains on the rehearsal server, NOLOGIN: it cannot log in, and none of its sessions is left. ' +
        `Remove it as a superuser of that server: DROP OWNED BY ${name}; in ${where}, then DROP ROLE ${name};. ` +
        'A later rehearsal retries after an hour.',
      { cause: error },
    )
  }
}

/** Runs `use` with a session of the server's user on `connectionString` (see connectAdmin). */
async function withClient<T>(
  connectionString: string,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await connectAdmin(connectionString)
  try {
    return await use(client).catch((error: unknown) => {
      throw explainTimeout(error, connectionString)
    })
  } finally {
    await endClient(client)
  }
}
