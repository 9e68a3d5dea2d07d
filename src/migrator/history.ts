import { type Kysely, sql } from 'kysely'

import { errorCode, isSqlState, SQLSTATE } from '../connection/sql-state.js'
import { isUnreachable } from '../connection/unreachable.js'
import { migrationNames } from '../migrations/index.js'
import { checkDown, DOWN_WATCH_SQL } from './down-guard.js'
import {
  historyProblemSql,
  historyReadSql,
  MIGRATION_HISTORY_TABLE,
  MIGRATION_TABLE_SCHEMA,
  REVERTING_COLUMN,
} from './history-tables.js'

export {
  MIGRATION_HISTORY_TABLE,
  MIGRATION_TABLE_SCHEMA,
  REVERTING_COLUMN,
} from './history-tables.js'

/** One row of the history: a migration, when it was applied, and whether a rollback of it is under way. */
export interface HistoryEntry {
  name: string
  appliedAt: Date
  /** True while a non-transactional `down` of it has begun and not finished (an interrupted rollback). */
  reverting: boolean
}

/**
 * A history that cannot be read as one row per migration: a name recorded twice, or a table
 * without the primary key that keeps each name to one row. Nothing may be run on it, because
 * which row is the migration's record cannot be told.
 */
export class MigrationHistoryError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `The migration history cannot be trusted: ${problems.join('; ')}. ` +
        'Find out what wrote the table (another tool, a restore run twice, an edit by hand) before changing it.',
    )
    this.name = 'MigrationHistoryError'
  }
}

/**
 * Reads the migration history in one query: the recorded migrations, sorted by name; none where
 * the table does not exist (nothing was ever recorded). Every reader of the history goes through
 * here. With `times: false` it reads the names alone, which is start-up's one cheap question.
 * A missing table is learned from the failed query, so it must not run inside a transaction
 * that has to survive (use {@link recordedMigrationNames} there). Throws
 * {@link MigrationHistoryError} for a name recorded twice or a table without its primary key.
 *
 * @example
 * ```ts
 * (await readMigrationHistory(db)).map((entry) => entry.name) // ['000_baseline_ai_models', …]
 * ```
 */
export async function readMigrationHistory(
  db: Kysely<any>,
  options: { times?: boolean } = {},
): Promise<HistoryEntry[]> {
  const { entries, problems } = await inspectMigrationHistory(db, options)
  if (problems.length > 0) throw new MigrationHistoryError(problems)
  return entries
}

/**
 * Runs `read` in a savepoint of the transaction `trx`, rolled back to where it fails: the
 * transaction goes on to the catalog check that says why (a failed statement ends a transaction
 * for anything but ROLLBACK).
 */
async function inSavepoint<T>(trx: Kysely<any>, read: () => Promise<T>): Promise<T> {
  await sql`SAVEPOINT x402_history_read`.execute(trx)
  try {
    const result = await read()
    await sql`RELEASE SAVEPOINT x402_history_read`.execute(trx)
    return result
  } catch (error) {
    await sql`ROLLBACK TO SAVEPOINT x402_history_read`.execute(trx)
    throw error
  }
}

/**
 * The history as {@link readMigrationHistory} reads it, each name once, with what makes it
 * untrustworthy said instead of thrown: for a report (migrate:check) that lists it as drift.
 *
 * @example
 * ```ts
 * const { problems } = await inspectMigrationHistory(db) // ['x402_migrations.kysely_migration records … twice …']
 * ```
 */
export async function inspectMigrationHistory(
  db: Kysely<any>,
  options: { times?: boolean } = {},
): Promise<{ entries: HistoryEntry[]; problems: string[] }> {
  const times = options.times ?? true
  let rows: Array<{
    name: string
    timestamp?: string | Date
    reverting: boolean
    keyed: boolean
  }>
  const read = () => sql<(typeof rows)[number]>`${sql.raw(historyReadSql({ times }))}`.execute(db)
  try {
    ;({ rows } = db.isTransaction ? await inSavepoint(db, read) : await read())
  } catch (error) {
    if (errorCode(error) === SQLSTATE.undefinedTable) return { entries: [], problems: [] }
    // A connection that failed, got no answer or was refused (a server starting, too many
    // clients) is said as it is: asking the check would wait for a second connection, twice
    // the bound in all (review N10-7).
    if (!isSqlState(errorCode(error)) || isUnreachable(errorCode(error), String(error))) throw error
    // A view is refused while the statement is parsed, and a column of another type can fail
    // it too: the check alone, which reads the catalog only, says what is wrong.
    const { rows: checked } = await sql<{ problem: string | null }>`SELECT ${sql.raw(
      historyProblemSql(),
    )} AS problem`.execute(db)
    if (checked[0]?.problem) return { entries: [], problems: [checked[0].problem] }
    throw error
  }
  if (rows.length === 0) {
    // No row: an empty history, or one the statement's brief check would not read. The whole
    // check, catalog reads only, tells them apart and says why.
    const { rows: checked } = await sql<{ problem: string | null }>`SELECT ${sql.raw(
      historyProblemSql(),
    )} AS problem`.execute(db)
    if (checked[0]?.problem) return { entries: [], problems: [checked[0].problem] }
  }
  const problems: string[] = []
  const counts = new Map<string, number>()
  for (const { name } of rows) counts.set(name, (counts.get(name) ?? 0) + 1)
  const repeated = [...counts].filter(([, count]) => count > 1)
  if (repeated.length > 0) {
    problems.push(
      `${MIGRATION_HISTORY_TABLE} records ${repeated
        .map(([name, count]) => `${name} ${count === 2 ? 'twice' : `${count} times`}`)
        .join(', ')}, where each migration has one row: which row is its record cannot be told`,
    )
  }
  if (rows.length > 0 && !rows[0]!.keyed) {
    problems.push(
      `${MIGRATION_HISTORY_TABLE} has no primary key on name, which keeps each migration to one row: ` +
        `once each name is recorded once, restore it with ALTER TABLE ${MIGRATION_HISTORY_TABLE} ADD PRIMARY KEY (name)`,
    )
  }
  // Each name once, so that a report on such a history still compares the right schema.
  const entries = [...new Map(rows.map((row) => [row.name, row])).values()]
    .map((row) => ({
      name: row.name,
      appliedAt: new Date(row.timestamp ?? Number.NaN),
      reverting: row.reverting,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return { entries, problems }
}

/**
 * Whether the history table exists, asked without an error, so it is safe inside a transaction.
 *
 * @example
 * ```ts
 * if (!(await hasMigrationHistory(db))) console.log('never migrated, or built by hand')
 * ```
 */
export async function hasMigrationHistory(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{
    present: boolean
  }>`SELECT to_regclass(${MIGRATION_HISTORY_TABLE}) IS NOT NULL AS present`.execute(db)
  return rows[0]!.present
}

/**
 * The names in the history, sorted; none where the table does not exist. Safe inside a
 * transaction.
 *
 * @example
 * ```ts
 * await recordedMigrationNames(db) // ['000_baseline_ai_models', …]
 * ```
 */
export async function recordedMigrationNames(db: Kysely<any>): Promise<string[]> {
  if (!(await hasMigrationHistory(db))) return []
  return (await readMigrationHistory(db, { times: false })).map((entry) => entry.name)
}

/**
 * What is wrong with a recorded history, one sentence each: names this module does not know,
 * and gaps (Kysely's Migrator requires the applied migrations to be the first ones). With
 * `upTo`, also names recorded after it, which adopting the database at `upTo` contradicts.
 *
 * @example
 * ```ts
 * historyDisagreements(['000_baseline_ai_models', '006_x'], '005_add_openrouter_integration')
 * ```
 */
export function historyDisagreements(recorded: readonly string[], upTo?: string): string[] {
  const known = migrationNames
  const problems: string[] = []
  const unknown = recorded.filter((name) => !known.includes(name))
  if (unknown.length > 0) {
    problems.push(
      `the history records ${unknown.join(', ')}, which this module does not have (is the module older than the database?)`,
    )
  }
  if (upTo !== undefined) {
    const later = recorded.filter((name) => known.includes(name) && name > upTo)
    if (later.length > 0) {
      problems.push(
        `the history already records ${later.join(', ')}, which come after ${upTo}: adopt at the newest recorded migration or later`,
      )
    }
  }
  const prefix = known.slice(0, recorded.length - unknown.length)
  const skipped = prefix.filter((name) => !recorded.includes(name))
  if (skipped.length > 0) {
    problems.push(
      `the history skips ${skipped.join(', ')} while recording later migrations, which Kysely's Migrator refuses`,
    )
  }
  return problems
}

/**
 * Records, before the first step of a non-transactional `down` of `name`, that its rollback has
 * begun; committed at once (run it outside a transaction). The mark ends with the history row,
 * which Kysely's Migrator deletes when the down completes, or with {@link clearRevertingMark}.
 *
 * @example
 * ```ts
 * await markReverting(connection, '005_add_openrouter_integration')
 * ```
 */
export async function markReverting(db: Kysely<any>, name: string): Promise<void> {
  // ALTER TABLE takes ACCESS EXCLUSIVE on the history even when the column exists, and every
  // instance's start-up reads it: only the first rollback adds the column.
  const { rows } = await sql<{ present: boolean }>`
    SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = ${MIGRATION_HISTORY_TABLE}::regclass
                   AND attname = ${REVERTING_COLUMN} AND NOT attisdropped) AS present
  `.execute(db)
  await watchedHistoryWrite(db, name, async (trx) => {
    if (!rows[0]!.present) {
      await sql`ALTER TABLE ${sql.id(MIGRATION_TABLE_SCHEMA, 'kysely_migration')} ADD COLUMN IF NOT EXISTS ${sql.id(REVERTING_COLUMN)} timestamptz`.execute(
        trx,
      )
    }
    return sql`
      UPDATE ${sql.id(MIGRATION_TABLE_SCHEMA, 'kysely_migration')} SET ${sql.id(REVERTING_COLUMN)} = now()
      WHERE name = ${name} AND ${sql.id(REVERTING_COLUMN)} IS NULL RETURNING 1
    `.execute(trx)
  })
}

/**
 * When the mark of {@link markReverting} on `name` was set (the server's time), or undefined
 * where none stands: what a migration's `downMayHaveBegun` weighs its traces against. Asked only
 * of an entry that the history read shows marked, so the mark's column exists.
 *
 * @example
 * ```ts
 * const since = await revertingSince(db, '005_add_openrouter_integration')
 * ```
 */
export async function revertingSince(db: Kysely<any>, name: string): Promise<Date | undefined> {
  const { rows } = await sql<{ since: Date | string | null }>`
    SELECT ${sql.id(REVERTING_COLUMN)} AS since FROM ${sql.id(MIGRATION_TABLE_SCHEMA, 'kysely_migration')}
    WHERE name = ${name}
  `.execute(db)
  const since = rows[0]?.since
  return since === null || since === undefined ? undefined : new Date(since)
}

/**
 * Ends the mark of {@link markReverting}, for a down that stopped before it changed anything.
 *
 * @example
 * ```ts
 * await clearRevertingMark(connection, '005_add_openrouter_integration')
 * ```
 */
export async function clearRevertingMark(db: Kysely<any>, name: string): Promise<void> {
  await watchedHistoryWrite(db, name, (trx) =>
    sql`UPDATE ${sql.id(MIGRATION_TABLE_SCHEMA, 'kysely_migration')} SET ${sql.id(REVERTING_COLUMN)} = NULL WHERE name = ${name} RETURNING 1`.execute(
      trx,
    ),
  )
}

/**
 * Ends the marks of {@link markReverting} on `names`, in `trx`, a transaction of a run under the
 * migration lock that found them stale: each left by an attempt stopped before the first step of
 * its down committed (see rollbackMarks in resumable-down.ts). Run it where the run writes the rest of its
 * bookkeeping, after the same checks.
 *
 * @example
 * ```ts
 * await clearRevertingMarks(trx, ['005_add_openrouter_integration'])
 * ```
 */
export async function clearRevertingMarks(
  trx: Kysely<any>,
  names: readonly string[],
): Promise<void> {
  if (names.length === 0) return
  await sql`
    UPDATE ${sql.id(MIGRATION_TABLE_SCHEMA, 'kysely_migration')} SET ${sql.id(REVERTING_COLUMN)} = NULL
    WHERE name IN (${sql.join(names)}) AND ${sql.id(REVERTING_COLUMN)} IS NOT NULL
  `.execute(trx)
}

/**
 * Runs `write`, the module's own change to the history around a rollback of `name` outside a
 * transaction, in a transaction of its own, committed at once and checked before COMMIT like a
 * down ({@link checkDown}): a trigger on the history, or an event trigger of its DDL, that
 * deletes, changes or drops anything else rolls it back. `write` returns the rows of the history
 * that its UPDATE changed (RETURNING 1), the one change there that the check lets go.
 */
async function watchedHistoryWrite(
  db: Kysely<any>,
  name: string,
  write: (trx: Kysely<any>) => Promise<{ rows: unknown[] }>,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL x402.down_covered = ''`.execute(trx)
    await sql`SET LOCAL x402.backups_held = '{}'`.execute(trx)
    await sql.raw(DOWN_WATCH_SQL).execute(trx)
    const { rows } = await write(trx)
    await checkDown(trx, name, undefined, { historyUpdated: rows.length })
  })
}

/**
 * Deletes `name` from the history, as Kysely's Migrator does at the end of a down, for a rollback
 * whose every step had finished before it was interrupted.
 *
 * @example
 * ```ts
 * await forgetMigration(connection, '005_add_openrouter_integration')
 * ```
 */
export async function forgetMigration(db: Kysely<any>, name: string): Promise<void> {
  await sql`DELETE FROM ${sql.id(MIGRATION_TABLE_SCHEMA, 'kysely_migration')} WHERE name = ${name}`.execute(
    db,
  )
}
