import { type Kysely, sql } from 'kysely'

/**
 * A table column of the catalog, as `schema.table.column` parts, and what identifies it whatever
 * its name: its table's oid and its number (a table or column renamed is the same one).
 */
export interface CatalogColumn {
  schema: string
  table: string
  column: string
  oid: number
  attnum: number
}

/**
 * Every column of every ordinary table outside the system schemas (and the module's history and
 * backup schemas), to compare before and after a migration's down.
 *
 * @example
 * ```ts
 * const before = await catalogColumns(scratch)
 * ```
 */
export async function catalogColumns(db: Kysely<any>): Promise<CatalogColumn[]> {
  const { rows } = await sql<CatalogColumn>`
    SELECT n.nspname AS schema, c.relname AS table, a.attname AS column, c.oid::int AS oid, a.attnum::int AS attnum
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'x402_migrations', 'x402_backup')
      AND n.nspname NOT LIKE 'pg\\_%'
  `.execute(db)
  return rows
}

/**
 * A `DO` block for the top of a down script that refuses, in SQL, where the down would destroy
 * data: rows of each table that is in `before` and not in `after`, non-null values of each column
 * that is gone from a table that stays (matched by oid and number, so that a rename is no drop). It names each with its count and changes nothing, unless
 * the session set `x402.allow_data_loss = on`; then it copies each table concerned whole into
 * schema x402_backup (`<migration number>_<table>_<UTC time>`, as the runner names its backups)
 * before the script goes on. In a `transactional` script it first locks those tables against
 * writes (SHARE, lock_timeout 2s) until the script's transaction ends. Undefined when the down
 * drops nothing.
 *
 * @example
 * ```ts
 * downScriptGuard('002_add_claude_integration', before, after, true)
 * // 'DO $guard$ … RAISE EXCEPTION … $guard$'
 * ```
 */
export function downScriptGuard(
  name: string,
  before: readonly CatalogColumn[],
  after: readonly CatalogColumn[],
  transactional: boolean,
): string | undefined {
  const key = (c: CatalogColumn) => `${c.oid}.${c.attnum}`
  const tableKey = (c: CatalogColumn) => String(c.oid)
  const remainingColumns = new Set(after.map(key))
  const remainingTables = new Set(after.map(tableKey))
  const checks: { table: CatalogColumn; label: string; count: string }[] = []
  const seenTables = new Set<string>()
  for (const column of before) {
    const qualified = `${ident(column.schema)}.${ident(column.table)}`
    if (!remainingTables.has(tableKey(column))) {
      if (seenTables.has(tableKey(column))) continue
      seenTables.add(tableKey(column))
      checks.push({
        table: column,
        label: `table ${column.schema}.${column.table}`,
        count: `SELECT count(*) FROM ${qualified}`,
      })
    } else if (!remainingColumns.has(key(column))) {
      checks.push({
        table: column,
        label: `column ${column.schema}.${column.table}.${column.column}`,
        count: `SELECT count(*) FROM ${qualified} WHERE ${ident(column.column)} IS NOT NULL`,
      })
    }
  }
  if (checks.length === 0) return undefined
  const prefix = name.split('_')[0]!
  // Writes wait until the script's transaction ends: nothing arrives between the count and the drop.
  const locks = [
    ...new Set(checks.map(({ table }) => `${ident(table.schema)}.${ident(table.table)}`)),
  ].map((table) => `  EXECUTE ${literal(`LOCK TABLE ${table} IN SHARE MODE`)};`)
  const lines = checks.flatMap(({ table, label, count }) => {
    const concerned = literal(JSON.stringify([table.schema, table.table]))
    return [
      `  EXECUTE ${literal(count)} INTO n;`,
      `  IF n > 0 THEN`,
      `    lost := array_append(lost, ${literal(`${label}: `)} || n || ${literal(label.startsWith('table') ? ' row(s)' : ' value(s)')});`,
      `    IF NOT (${concerned} = ANY (concerned)) THEN concerned := array_append(concerned, ${concerned}::text); END IF;`,
      `  END IF;`,
    ]
  })
  return [
    `-- Refuses, before anything changes, where this down would destroy data (rows of a table it drops,`,
    `-- non-null values of a column it drops), unless the session ran SET x402.allow_data_loss = on;`,
    `-- then it first copies each table concerned whole to schema x402_backup.`,
    `DO $guard$`,
    `DECLARE`,
    `  n bigint;`,
    `  lost text[] := '{}';`,
    `  concerned text[] := '{}';`,
    `  item text;`,
    `  stamp text := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSMS');`,
    `BEGIN`,
    ...(transactional ? [`  PERFORM set_config('lock_timeout', '2000ms', true);`, ...locks] : []),
    ...lines,
    `  IF cardinality(lost) = 0 THEN RETURN; END IF;`,
    `  IF coalesce(current_setting('x402.allow_data_loss', true), '') <> 'on' THEN`,
    `    RAISE EXCEPTION 'Rolling back ${name} would destroy data: %. Nothing was changed. To roll back anyway, run npm run migrate:down -- --allow-data-loss, or run SET x402.allow_data_loss = on before this script: either copies the data to schema x402_backup first.', array_to_string(lost, '; ');`,
    `  END IF;`,
    `  CREATE SCHEMA IF NOT EXISTS x402_backup;`,
    `  FOREACH item IN ARRAY concerned LOOP`,
    `    EXECUTE format('CREATE TABLE x402_backup.%I AS TABLE %I.%I',`,
    `      left('${prefix}_' || CASE WHEN item::json->>0 = 'public' THEN '' ELSE (item::json->>0) || '_' END || (item::json->>1), 62 - length(stamp)) || '_' || stamp,`,
    `      item::json->>0, item::json->>1);`,
    `  END LOOP;`,
    `END`,
    `$guard$`,
  ].join('\n')
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}
