import { type Kysely, sql } from 'kysely'

import { MIGRATION_TABLE_SCHEMA, MigrationHistoryError } from '../migrator/history.js'
import { bookkeepingTableProblemSql } from '../migrator/history-tables.js'
import { type ProductionObjectRecord, productionObjectsQuery } from '../schema/rules.js'
import { pinCatalogReads } from '../schema/snapshot.js'

/** The table, in the history's schema, of the objects adoption recorded as production's own. */
export const PRODUCTION_OBJECT_TABLE = 'production_schema_object'

const table = () => `${MIGRATION_TABLE_SCHEMA}.${PRODUCTION_OBJECT_TABLE}`

/**
 * The statements that create the table of production's own objects: one row per object of the
 * app's schemas that no migration creates (see productionObjectsQuery), with its snapshot, as
 * `migrate:baseline` (or its SQL script) found it, so that `migrate:check` holds the database
 * to it. Shared by both paths so that they create the same.
 *
 * @example
 * ```ts
 * for (const statement of productionObjectTableStatements()) await sql.raw(statement).execute(trx)
 * ```
 */
export function productionObjectTableStatements(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${table()} (
  key text PRIMARY KEY,
  category text NOT NULL,
  table_name text,
  object_name text NOT NULL,
  definition jsonb NOT NULL,
  migration_name varchar(255) NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
)`,
    `COMMENT ON TABLE ${table()} IS 'The objects of the app''s schemas that no migration creates (production''s own), ` +
      `as migrate:baseline found them (definition: their schema snapshot); migrate:check reports any object added, ` +
      `dropped or changed since. Kept by the x402-jobs db module.'`,
  ]
}

/**
 * The statements that replace the recorded objects with those of the live database now, as
 * adoption at `migrationName` finds them; `source` is an SQL query of their rows (by default
 * productionObjectsQuery over `createdBy`, which needs `search_path` set to `public`; the SQL
 * script reads the rows it kept while it compared).
 *
 * @example
 * ```ts
 * recordProductionObjectsStatements('006_rename_to_production_names', 'SELECT * FROM pg_temp.kept')
 * ```
 */
export function recordProductionObjectsStatements(migrationName: string, source: string): string[] {
  return [
    `DELETE FROM ${table()}`,
    `INSERT INTO ${table()} (key, category, table_name, object_name, definition, migration_name)
SELECT o.key, o.category, o.table_name, o.object_name, o.definition, '${migrationName.replaceAll("'", "''")}'
FROM (${source.trim()}) AS o`,
  ]
}

/**
 * Records the objects of the app's schemas that no migration creates (`createdBy`, the
 * reference's) as production's own, replacing any recorded before. Call it inside the adoption's
 * transaction; the search_path is pinned for the snapshot and put back after.
 *
 * @example
 * ```ts
 * await recordProductionObjects(trx, reference.createdBy, reference.migrationName)
 * ```
 */
export async function recordProductionObjects(
  db: Kysely<any>,
  createdBy: Record<string, string>,
  migrationName: string,
): Promise<void> {
  for (const statement of productionObjectTableStatements()) await sql.raw(statement).execute(db)
  const { rows } = await sql<{
    path: string
  }>`SELECT current_setting('search_path') AS path`.execute(db)
  // Names are deparsed as the comparison deparses them.
  await pinCatalogReads(db)
  for (const statement of recordProductionObjectsStatements(
    migrationName,
    productionObjectsQuery(createdBy),
  )) {
    await sql.raw(statement).execute(db)
  }
  await sql`SELECT pg_catalog.set_config('search_path', ${rows[0]!.path}, true)`.execute(db)
}

/**
 * Whether adoption recorded production's own objects here (migrate:baseline creates their table,
 * even where it records none): false on a database the module built and never adopted.
 *
 * @example
 * ```ts
 * if (!(await productionObjectsRecorded(db))) console.log('never adopted')
 * ```
 */
export async function productionObjectsRecorded(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{
    present: boolean
  }>`SELECT to_regclass(${table()}) IS NOT NULL AS present`.execute(db)
  return rows[0]?.present === true
}

/**
 * The objects recorded at adoption as production's own; none where the database was never
 * adopted (or was adopted before the module recorded them): every object beyond the module's
 * is then drift.
 *
 * @example
 * ```ts
 * const productionObjects = await readProductionObjects(db)
 * ```
 */
export async function readProductionObjects(db: Kysely<any>): Promise<ProductionObjectRecord[]> {
  // It decides which objects migrate:check takes for production's own: read only where no other
  // role's code runs.
  const { rows: checked } = await sql<{
    present: boolean
    problem: string | null
  }>`SELECT to_regclass(${table()}) IS NOT NULL AS present,
            ${sql.raw(bookkeepingTableProblemSql('productionObjects'))} AS problem`.execute(db)
  if (checked[0]?.problem) throw new MigrationHistoryError([checked[0].problem])
  if (!checked[0]?.present) return []
  return (
    await sql<ProductionObjectRecord>`
      SELECT key, category, table_name, object_name, definition FROM ${sql.raw(table())} ORDER BY key COLLATE "C"
    `.execute(db)
  ).rows
}
