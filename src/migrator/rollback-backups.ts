import { type Kysely, sql } from 'kysely'

import { STAMP_FORMAT, STAMP_LENGTH } from './down-guard.js'
import { MIGRATION_HISTORY_TABLE, REVERTING_COLUMN, trustedTableSql } from './history-tables.js'

/**
 * The one rule by which the runner tells which backups in schema x402_backup a rollback of a
 * migration outside a transaction made (005's). Such a down makes them in its own steps, each
 * committed at once, so an attempt stopped after one of them (killed, its lock lost, refused in a
 * later step) leaves backups that its own run never got to name, and the run that completes the
 * rollback finds them there already. A backup's name is `<migration number>_…_<UTC time to the
 * millisecond>` (down-guard.ts's backupPrefixes, and 005's down): those of the migration stamped
 * at or after the rollback's start are its own, those of an earlier rollback that finished are
 * not. The start is the history's mark of the rollback (markReverting), which the first attempt
 * sets and every later one keeps.
 */

/**
 * Where the rollback of `name` that is about to run starts, as a backup's stamp, read before it
 * runs: the standing mark's time, where an earlier attempt began it; else, where the rollback was
 * found begun with no mark (cleared by hand, or a rollback by the exported script: `resumed`),
 * the empty stamp, from which every backup of the migration counts (in doubt, named); else the
 * server's time now, before which nothing of this rollback can be stamped.
 *
 * @example
 * ```ts
 * const since = await rollbackStart(connection, '005_add_openrouter_integration', false)
 * ```
 */
export async function rollbackStart(
  db: Kysely<any>,
  name: string,
  resumed: boolean,
): Promise<string> {
  const { mark, now } = await markAndNow(db, name)
  return mark ?? (resumed ? '' : now)
}

/**
 * Whether the history marks the rollback of `name` as under way: after a failed attempt, that a
 * step of it committed, in this attempt or an earlier one (the runner's wrapper of such a down
 * drops the mark again where the attempt changed nothing; see withResumableDowns).
 *
 * @example
 * ```ts
 * if (await rollbackMarked(connection, '005_add_openrouter_integration')) console.log('half done')
 * ```
 */
export async function rollbackMarked(db: Kysely<any>, name: string): Promise<boolean> {
  return (await markAndNow(db, name)).mark !== undefined
}

/**
 * The backups of the migration `name` in schema x402_backup stamped at or after `since` (see
 * {@link rollbackStart}), qualified and quoted for SQL text, oldest first.
 *
 * @example
 * ```ts
 * await rollbackBackups(connection, '005_add_openrouter_integration', since) // ['x402_backup."005_…"']
 * ```
 */
export async function rollbackBackups(
  db: Kysely<any>,
  name: string,
  since: string,
): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT format('x402_backup.%I', c.relname) AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'x402_backup' AND c.relkind = 'r'
      AND starts_with(c.relname::text, ${`${name.split('_')[0]}_`})
      AND right(c.relname::text, ${sql.lit(STAMP_LENGTH)}) ~ '^[0-9]{8}T[0-9]{9}$'
      AND right(c.relname::text, ${sql.lit(STAMP_LENGTH)}) COLLATE "C" >= ${since}
    ORDER BY right(c.relname::text, ${sql.lit(STAMP_LENGTH)}) COLLATE "C", c.relname::text COLLATE "C"
  `.execute(db)
  return rows.map((row) => row.name)
}

/**
 * The stamp of the history's mark on `name`, if one stands, and of the server's time now. The
 * mark's column is read by its name, as historyReadSql reads it (never the whole row, whose casts
 * another role could have written): a history whose first rollback has not yet added the column
 * gets it, empty, from the join, and reads no mark instead of failing.
 */
async function markAndNow(
  db: Kysely<any>,
  name: string,
): Promise<{ mark: string | undefined; now: string }> {
  const mark = sql.id(REVERTING_COLUMN)
  const { rows } = await sql<{ mark: string | null; now: string }>`
    SELECT (SELECT to_char(${mark} AT TIME ZONE 'UTC', ${STAMP_FORMAT})
              FROM ${sql.raw(MIGRATION_HISTORY_TABLE)} AS m TABLESAMPLE SYSTEM (100)
              NATURAL LEFT JOIN (SELECT NULL::pg_catalog.timestamptz AS ${mark} WHERE false) AS unmarked
             WHERE m.name = ${name} AND ${sql.raw(trustedTableSql(MIGRATION_HISTORY_TABLE))}) AS mark,
           to_char(clock_timestamp() AT TIME ZONE 'UTC', ${STAMP_FORMAT}) AS now
  `.execute(db)
  return { mark: rows[0]!.mark ?? undefined, now: rows[0]!.now }
}
