import { type Kysely, sql } from 'kysely'

import { MIGRATION_TABLE_SCHEMA, MigrationHistoryError } from '../migrator/history.js'
import { bookkeepingTableProblemSql } from '../migrator/history-tables.js'
import type { SchemaDifference } from '../schema/diff.js'
import type { AcceptedDifferenceRecord } from '../schema/rules.js'

/** The table, in the history's schema, of the differences adoption accepted. */
export const ACCEPTED_DIFFERENCE_TABLE = 'accepted_schema_difference'

const table = () => `${MIGRATION_TABLE_SCHEMA}.${ACCEPTED_DIFFERENCE_TABLE}`

/**
 * The statements that create the table of accepted differences: one row per difference that
 * `migrate:baseline` (or its SQL script) accepted, with the live value it accepted and, for a
 * conflict accepted by adoption-decisions.json, the decision's reason, so that `migrate:check`
 * holds the database to it. Shared by both paths so that they create the same. A table made
 * before decisions existed gets their column.
 *
 * @example
 * ```ts
 * for (const statement of acceptedDifferenceTableStatements()) await sql.raw(statement).execute(trx)
 * ```
 */
export function acceptedDifferenceTableStatements(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${table()} (
  key text NOT NULL,
  field text NOT NULL,
  live jsonb,
  line text NOT NULL,
  migration_name varchar(255) NOT NULL,
  accepted_at timestamptz NOT NULL DEFAULT now(),
  decision text,
  PRIMARY KEY (key, field)
)`,
    `ALTER TABLE ${table()} ADD COLUMN IF NOT EXISTS decision text`,
    `COMMENT ON TABLE ${table()} IS 'Where the adopted database has more than the module, or is stricter (row level security on, ` +
      `extra columns, indexes, …), and the conflicts adoption-decisions.json accepted (decision: its reason), as accepted by ` +
      `migrate:baseline; migrate:check reports any change to them. Kept by the x402-jobs db module.'`,
  ]
}

/**
 * Replaces the recorded accepted differences with `accepted`, the ones found at this adoption
 * at `migrationName`. Call it inside the adoption's transaction.
 *
 * @example
 * ```ts
 * await recordAcceptedDifferences(trx, diff.accepted, '002_add_claude_integration')
 * ```
 */
export async function recordAcceptedDifferences(
  db: Kysely<any>,
  accepted: SchemaDifference[],
  migrationName: string,
): Promise<void> {
  for (const statement of acceptedDifferenceTableStatements()) await sql.raw(statement).execute(db)
  await sql`DELETE FROM ${sql.raw(table())}`.execute(db)
  if (accepted.length === 0) return
  const rows = accepted.map(({ key, field, live, line, decision }) => ({
    key,
    field,
    live,
    line,
    decision,
  }))
  await sql`
    INSERT INTO ${sql.raw(table())} (key, field, live, line, migration_name, decision)
    SELECT r.key, r.field, r.live, r.line, ${migrationName}, r.decision
    FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(key text, field text, live jsonb, line text, decision text)
  `.execute(db)
}

/**
 * The accepted differences recorded at adoption; none where the database was never adopted.
 *
 * @example
 * ```ts
 * const acceptedBefore = await readAcceptedDifferences(db)
 * ```
 */
export async function readAcceptedDifferences(
  db: Kysely<any>,
): Promise<AcceptedDifferenceRecord[]> {
  // It decides which drift migrate:check accepts: read only where no other role's code runs.
  const { rows } = await sql<{
    present: boolean
    problem: string | null
  }>`SELECT to_regclass(${table()}) IS NOT NULL AS present,
            ${sql.raw(bookkeepingTableProblemSql('acceptedDifferences'))} AS problem`.execute(db)
  if (rows[0]?.problem) throw new MigrationHistoryError([rows[0].problem])
  if (!rows[0]?.present) return []
  return (
    await sql<AcceptedDifferenceRecord>`SELECT key, field, live FROM ${sql.raw(table())} ORDER BY key, field`.execute(
      db,
    )
  ).rows
}
