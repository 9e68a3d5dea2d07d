/**
 * The no-op `migrate latest` on a server, answered with one query through pg before kysely or
 * the migrations are loaded (loading kysely alone takes longer than the whole answer). It says
 * "up to date" only when the history records exactly the registered migrations, none of them
 * being rolled back, each with the checksum its file has now (the manifest written into dist/ by
 * the build, see migration-manifest.ts). Anything else, or any doubt (no manifest, no history
 * table, a query that fails), is left to the full run, which loads the runner.
 */
import { readFileSync } from 'node:fs'

import pg from 'pg'

import { endClient } from '../connection/end-client.js'
import {
  explainTimeout,
  serverClient,
  serverClientConfig,
} from '../connection/server-client-config.js'
import { errorCode, SQLSTATE } from '../connection/sql-state.js'
import { isUnreachable } from '../connection/unreachable.js'
import {
  MIGRATION_CHECKSUM_TABLE,
  MIGRATION_HISTORY_TABLE,
  REVERTING_COLUMN,
  trustedTableSql,
} from './history-tables.js'
import {
  DEFAULT_LOCK_TIMEOUT_MS,
  HISTORY_LOCK_HOLDER_SQL,
  type HistoryLockHolder,
  HistoryLockedError,
} from './locked-history.js'

/** The manifest that the build writes (migration-manifest.ts): every registered migration, in order. */
export interface MigrationManifest {
  migrations: { name: string; sha256: string }[]
}

/** The manifest's file: migration-manifest.json in dist/ (beside the folder of this module). */
export const MIGRATION_MANIFEST_URL = new URL('../migration-manifest.json', import.meta.url)

/**
 * The manifest the build wrote beside the running code, or undefined where there is none (the
 * code runs from src/, through tsx or vitest) or it cannot be read.
 *
 * @example
 * ```ts
 * const built = readMigrationManifest()?.migrations.find(({ name }) => name === '005_add_openrouter_integration')
 * ```
 */
export function readMigrationManifest(
  manifestUrl: URL = MIGRATION_MANIFEST_URL,
): MigrationManifest | undefined {
  try {
    return JSON.parse(readFileSync(manifestUrl, 'utf8')) as MigrationManifest
  } catch {
    return undefined
  }
}

// The history read as historyReadSql reads it (see there why it cannot run anyone's code), with
// the checksum table, checked the same way, in the same one statement. No row where either is
// not to be trusted: the full run then says why.
const HISTORY_QUERY = `
  SELECT m.name, ${REVERTING_COLUMN} IS NOT NULL AS reverting, c.sha256
  FROM ${MIGRATION_HISTORY_TABLE} AS m TABLESAMPLE SYSTEM (100)
  NATURAL LEFT JOIN (SELECT NULL::pg_catalog.timestamptz AS ${REVERTING_COLUMN} WHERE false) AS unmarked
  LEFT JOIN ${MIGRATION_CHECKSUM_TABLE} AS c TABLESAMPLE SYSTEM (100) ON c.name OPERATOR(pg_catalog.=) m.name
  WHERE ${trustedTableSql(MIGRATION_HISTORY_TABLE)} AND ${trustedTableSql(MIGRATION_CHECKSUM_TABLE)}
`

/**
 * {@link HISTORY_QUERY} in a transaction of its own whose lock_timeout is `lockTimeoutMs`, sent
 * as one string, one round trip: a lock that another session holds on the history ends it with
 * 55P03 after that wait, not after the client's bound on an answer. SET LOCAL's bound ends with
 * the transaction, so nothing is left on a connection that a transaction-mode pooler hands to
 * others. The third result is the history's.
 */
function boundedHistoryQuery(lockTimeoutMs: number): string {
  return `BEGIN; SET LOCAL lock_timeout = ${Math.trunc(lockTimeoutMs)}; ${HISTORY_QUERY}; COMMIT`
}

/**
 * True when the server database at `connectionString` (already checked) is up to date as
 * described above; false when the full run must decide. Throws where the server did not answer
 * in time or the database cannot be used (isUnreachable), so that the full run does not connect
 * a second time, and a {@link HistoryLockedError} where another session's lock on the history
 * outlasted `lockTimeoutMs`: the command line answers here only where no MIGRATION_* setting is
 * set, so MIGRATION_LOCK_TIMEOUT_MS is at its default.
 *
 * @example
 * ```ts
 * if (await upToDateAtOnce(url)) console.error('Already up to date: no pending migration.')
 * ```
 */
export async function upToDateAtOnce(
  connectionString: string,
  manifestUrl: URL = MIGRATION_MANIFEST_URL,
  lockTimeoutMs: number = DEFAULT_LOCK_TIMEOUT_MS,
): Promise<boolean> {
  const manifest = readMigrationManifest(manifestUrl)
  if (!manifest) return false
  const expected = new Map(manifest.migrations.map(({ name, sha256 }) => [name, sha256]))
  const client = serverClient(serverClientConfig(connectionString))
  let rows: { name: string; reverting: boolean; sha256: string | null }[]
  try {
    await client.connect()
    const results = (await client.query(
      boundedHistoryQuery(lockTimeoutMs),
    )) as unknown as pg.QueryResult[]
    rows = results[2]!.rows
  } catch (error) {
    // Another session's lock on the history: who holds it is asked before the goodbye.
    const locked = errorCode(error) === SQLSTATE.lockNotAvailable
    const holder = locked ? await lockHolder(client) : undefined
    // Not awaited: a server that stopped answering may not answer the goodbye either.
    client.end().catch(() => {})
    if (locked) throw new HistoryLockedError(error, holder, lockTimeoutMs)
    const explained = explainTimeout(error, connectionString)
    if (explained !== error) throw explained
    // A database that cannot be used (refused, starting, no TLS where the URL asks for it) is
    // said now: the full run would only connect again to hear the same.
    if (isUnreachable(errorCode(error), String(error))) throw error
    return false
  }
  await endClient(client)
  return (
    expected.size > 0 &&
    rows.length === expected.size &&
    rows.every(
      (row) => !row.reverting && row.sha256 !== null && expected.get(row.name) === row.sha256,
    )
  )
}

/**
 * The session whose lock the history query gave up on (HISTORY_LOCK_HOLDER_SQL), asked on the
 * same connection once its failed transaction is rolled back; undefined where it cannot be told.
 */
async function lockHolder(client: pg.Client): Promise<HistoryLockHolder | undefined> {
  try {
    const results = (await client.query(
      `ROLLBACK; ${HISTORY_LOCK_HOLDER_SQL}`,
    )) as unknown as pg.QueryResult<HistoryLockHolder>[]
    return results[1]?.rows[0]
  } catch {
    return undefined
  }
}
