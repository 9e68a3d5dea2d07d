import { type Kysely, sql } from 'kysely'

import { lesserTriggersSql } from '../connection/lesser-triggers.js'
import { MigrationHistoryError } from './history.js'
import { bookkeepingTablesProblemSql } from './history-tables.js'

/**
 * What every writer of the history asks before it writes (a run, `migrate:baseline`,
 * `migrate:pull`): that the writes run no code of a lesser role (lesserTriggersSql, over the
 * app's tables and the bookkeeping in x402_migrations), and that each table of the bookkeeping
 * may be read (bookkeepingTablesProblemSql; Kysely's Migrator reads the history and its lock
 * table). With `lock`, inside the transaction that writes: the check is fenced (see
 * lesser-triggers.ts). Throws the refusal, having changed nothing.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await checkBookkeepingWrites(trx, { lock: true })
 *   await recordingMigrator(trx).migrateTo(name)
 * })
 * ```
 */
export async function checkBookkeepingWrites(
  db: Kysely<any>,
  options: { lock: boolean },
): Promise<void> {
  await sql.raw(lesserTriggersSql(options)).execute(db)
  const { rows } = await sql<{ problem: string | null }>`
    SELECT ${sql.raw(bookkeepingTablesProblemSql())} AS problem`.execute(db)
  if (rows[0]?.problem) throw new MigrationHistoryError([rows[0].problem])
}
