import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'

import pg from 'pg'

import { checkConnectionString } from '../connection/connection-string.js'

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

/** A scratch database created on a server, dropped by {@link ServerScratch.drop} or on Ctrl-C. */
export interface ServerScratch {
  name: string
  /** The server's connection string with the scratch database in it. */
  connectionString: string
  /** Drops the database (its sessions too) and stops watching for signals. */
  drop(): Promise<void>
}

/**
 * Creates a scratch database on `server` (whose own database is only used to create and drop
 * it), after sweeping leftovers of rehearsals that were killed (see {@link sweepScratchDatabases}).
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
  checkConnectionString(server, 'the rehearsal server\'s connection string')
  await sweepScratchDatabases(server).catch(() => {})
  let name: string | undefined
  let creating: Promise<unknown> = Promise.resolve()
  let dropping: Promise<void> | undefined
  const dropNow = () =>
    (dropping ??= creating
      .catch(() => {})
      .then(() => (name ? withClient(server, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) : undefined))
      .then(() => {}))
  const onSignal = (signal: keyof typeof EXIT_CODES) => {
    void dropNow()
      .catch((error: unknown) => console.error(`The scratch database ${name} could not be dropped (${error instanceof Error ? error.message : String(error)}); the next rehearsal sweeps it.`))
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
      const { rows } = await client.query<{ now: string }>('SELECT floor(extract(epoch FROM now()))::bigint AS now')
      name = `${PREFIX}${rows[0]!.now}_${process.pid}_${randomBytes(4).toString('hex')}`
      await client.query(`CREATE DATABASE ${name}`)
      const comment = `x402-jobs-db rehearsal scratch database, created by process ${process.pid} on ${hostname()}; dropped when the rehearsal ends, or by a later rehearsal once no session uses it.`
      await client.query(`COMMENT ON DATABASE ${name} IS ${client.escapeLiteral(comment)}`)
    })
    await creating
  } catch (error) {
    await dropNow().catch(() => {})
    stopWatching()
    throw error
  }
  const url = new URL(server)
  url.pathname = `/${name}`
  return {
    name: name!,
    connectionString: url.toString(),
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
 * could drop them (SIGKILL, a lost machine): only databases named as {@link createServerScratch}
 * names them, created more than `olderThanSeconds` ago by the server's clock, with no session
 * connected. A database someone connects to meanwhile is left (DROP without FORCE refuses).
 * Returns the names dropped.
 *
 * @example
 * ```ts
 * const swept = await sweepScratchDatabases('postgres://postgres@127.0.0.1:5432/postgres')
 * ```
 */
export async function sweepScratchDatabases(server: string, olderThanSeconds = SWEEP_AFTER_SECONDS): Promise<string[]> {
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
    return swept
  })
}

async function withClient<T>(connectionString: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString })
  client.on('error', () => {})
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}
