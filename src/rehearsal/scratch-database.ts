import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'

import pg from 'pg'

import { endClient } from '../connection/end-client.js'
import { explainTimeout, serverClientConfig } from '../connection/server-client-config.js'
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
   * superuser, no CREATEROLE, no CREATEDB, no BYPASSRLS), that logs in with a random password.
   * Everything the rehearsal runs there runs as this role.
   */
  connectionString: string
  /** The scratch database as the server's own user: only for what must exist before the role's code runs. */
  adminConnectionString: string
  /** Drops the database (its sessions too) and its role, and stops watching for signals. */
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
          ? withClient(server, async (client) => {
              await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
              await client.query(`DROP ROLE IF EXISTS ${name}`)
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
    })
    await creating
  } catch (error) {
    await dropNow().catch(() => {})
    stopWatching()
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
        await client.query(`DROP DATABASE ${datname}`)
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
      await client.query(`DROP ROLE ${rolname}`).catch(() => {})
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
    const client = new pg.Client({ ...config, options })
    client.on('error', () => {})
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
