import { type Kysely, sql } from 'kysely'
import type { Migration } from 'kysely/migration'

/** The schemas whose objects a down's rehearsal leaves out: the system's and the module's own bookkeeping. */
const SKIPPED_SCHEMAS = sql`('pg_catalog', 'information_schema', 'x402_migrations', 'x402_backup', 'pg_toast')`

/**
 * Thrown before anything changes when a `down` would destroy data and the run did not opt in.
 * The message names each table or column and how much of it would be lost.
 */
export class DataLossRefusal extends Error {
  override readonly name = 'DataLossRefusal'
  readonly code = 'DATA_LOSS_REFUSED'
}

/**
 * The tables (by oid, with their name) and columns (by table oid and number, with their name) of
 * the database: a table or column that a down renames is the same one, not a drop.
 */
interface CatalogState {
  tables: Map<number, { name: string; deleted: number; updated: number }>
  columns: Map<string, { table: number; name: string }>
}

async function catalogState(db: Kysely<any>): Promise<CatalogState> {
  // pg_stat_get_xact_* count the rows this transaction deleted and updated so far, cascades and
  // SET NULL actions of foreign keys included: the rows of any table that the down touched.
  const { rows: tables } = await sql<{
    oid: number
    name: string
    deleted: string
    updated: string
  }>`
    SELECT c.oid::int AS oid, format('%I.%I', n.nspname, c.relname) AS name,
           pg_stat_get_xact_tuples_deleted(c.oid) AS deleted, pg_stat_get_xact_tuples_updated(c.oid) AS updated
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ${SKIPPED_SCHEMAS} AND n.nspname NOT LIKE 'pg_temp%'
  `.execute(db)
  const { rows: columns } = await sql<{ oid: number; attnum: number; name: string }>`
    SELECT c.oid::int AS oid, a.attnum::int AS attnum, format('%I', a.attname) AS name
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ${SKIPPED_SCHEMAS} AND n.nspname NOT LIKE 'pg_temp%'
  `.execute(db)
  return {
    tables: new Map(
      tables.map((row) => [
        row.oid,
        { name: row.name, deleted: Number(row.deleted), updated: Number(row.updated) },
      ]),
    ),
    columns: new Map(
      columns.map((row) => [`${row.oid}.${row.attnum}`, { table: row.oid, name: row.name }]),
    ),
  }
}

/** What a rehearsal of a down found it would destroy. */
interface Losses {
  /** One line per loss, for the refusal. */
  lines: string[]
  /** Tables to copy whole into x402_backup before the down runs. */
  backups: string[]
}

/**
 * Guards a transactional `down` before it runs, in the run's transaction `trx`: rehearses it in a
 * savepoint and rolls the rehearsal back, learning from the catalog which tables and columns it
 * drops and, from the transaction's row counters, which rows of any table it deletes or updates
 * (the rows of other tables that foreign keys delete or null with them included). Then it counts
 * what holds data: rows of a dropped table, non-null values of a dropped column, rows deleted or
 * updated. With none, it returns. Otherwise it throws {@link DataLossRefusal}, naming each table or
 * column with its count, unless `allowDataLoss`: then each table concerned is copied whole into
 * schema x402_backup (`<migration number>_<table>_<time>`), in the same transaction, from where it
 * can be restored exactly.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await guardDown(trx, '002_add_claude_integration', migration, { allowDataLoss: false })
 *   await migration.down!(trx)
 * })
 * ```
 */
export async function guardDown(
  trx: Kysely<any>,
  name: string,
  migration: Migration,
  options: { allowDataLoss: boolean },
): Promise<string[]> {
  if (!migration.down) return []
  await sql`SAVEPOINT x402_down_rehearsal`.execute(trx)
  let before: CatalogState
  let after: CatalogState
  try {
    before = await catalogState(trx)
    await migration.down(trx)
    after = await catalogState(trx)
  } finally {
    await sql`ROLLBACK TO SAVEPOINT x402_down_rehearsal`.execute(trx)
    await sql`RELEASE SAVEPOINT x402_down_rehearsal`.execute(trx)
  }
  const losses = await countLosses(trx, before, after)
  if (losses.lines.length === 0) return []
  if (!options.allowDataLoss) {
    throw new DataLossRefusal(
      `Rolling back ${name} would destroy data: ${losses.lines.join('; ')}. Nothing was changed. Keep ${name}, or move the data first; ` +
        'to roll back anyway, run npm run migrate:down -- --allow-data-loss (or set MIGRATION_ALLOW_DATA_LOSS=true): each table ' +
        'concerned is then copied whole to schema x402_backup before anything changes.',
    )
  }
  return backUp(trx, name, losses.backups)
}

async function countLosses(
  db: Kysely<any>,
  before: CatalogState,
  after: CatalogState,
): Promise<Losses> {
  const lines: string[] = []
  const backups = new Set<string>()
  for (const [oid, state] of before.tables) {
    const table = state.name
    const now = after.tables.get(oid)
    if (!now) {
      const rows = await countRows(db, sql`SELECT count(*) AS n FROM ${sql.raw(table)}`)
      if (rows > 0) {
        lines.push(`table ${table} (dropped): ${rows} row(s)`)
        backups.add(table)
      }
      continue
    }
    const deleted = now.deleted - state.deleted
    const updated = now.updated - state.updated
    if (deleted > 0) lines.push(`table ${table}: ${deleted} row(s) deleted`)
    if (updated > 0) lines.push(`table ${table}: ${updated} row(s) changed`)
    if (deleted > 0 || updated > 0) backups.add(table)
  }
  for (const [column, { table: oid, name }] of before.columns) {
    if (after.columns.has(column) || !after.tables.has(oid)) continue
    // Counted under the name it has before the down, where the rehearsal rolled back to.
    const table = before.tables.get(oid)!.name
    const values = await countRows(
      db,
      sql`SELECT count(${sql.raw(name)}) AS n FROM ${sql.raw(table)}`,
    )
    if (values > 0) {
      lines.push(`column ${table}.${name} (dropped): ${values} value(s)`)
      backups.add(table)
    }
  }
  return { lines, backups: [...backups] }
}

async function countRows(db: Kysely<any>, query: ReturnType<typeof sql>): Promise<number> {
  const { rows } = await (query as ReturnType<typeof sql<{ n: string }>>).execute(db)
  return Number(rows[0]!.n)
}

async function backUp(db: Kysely<any>, name: string, tables: string[]): Promise<string[]> {
  await sql`CREATE SCHEMA IF NOT EXISTS x402_backup`.execute(db)
  const { rows } = await sql<{ stamp: string }>`
    SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSMS') AS stamp
  `.execute(db)
  const prefix = name.slice(0, 3)
  const made: string[] = []
  for (const table of tables) {
    // <migration number>_[<schema>_]<table>_<time>, within PostgreSQL's 63 bytes: the table part
    // gives way, so that the stamp that sets two backups apart is never cut off.
    const [schema, bare] = table.replaceAll('"', '').split('.') as [string, string]
    const stamp = rows[0]!.stamp
    const named = schema === 'public' ? bare : `${schema}_${bare}`
    const room = 63 - prefix.length - stamp.length - 2
    const backup = `${prefix}_${Buffer.from(named)
      .subarray(0, room)
      .toString()
      .replace(/\uFFFD+$/, '')}_${stamp}`
    await sql`CREATE TABLE ${sql.id('x402_backup', backup)} AS TABLE ${sql.raw(table)}`.execute(db)
    made.push(`x402_backup.${backup}`)
  }
  return made
}

/** Rows that a non-transactional `down` deletes: a table, and which of its rows. */
export interface DeletedRows {
  table: string
  where: string
}

/**
 * Refuses, before a non-transactional `down` that deletes `deleted` begins, when rows of other
 * tables reference those rows through a foreign key (found in pg_constraint now, whoever made
 * the table): ON DELETE CASCADE would delete them and SET NULL or SET DEFAULT change them, unseen
 * and without a backup; NO ACTION or RESTRICT would fail the down half way. The module does not
 * own those tables and does not change them, with or without the data-loss opt-in.
 *
 * @example
 * ```ts
 * await refuseReferencedRows(connection, '005_add_openrouter_integration', [
 *   { table: 'public.x402_resources', where: "resource_type = 'openrouter_instant'" },
 * ])
 * ```
 */
export async function refuseReferencedRows(
  db: Kysely<any>,
  name: string,
  deleted: readonly DeletedRows[],
): Promise<void> {
  const lines: string[] = []
  for (const { table, where } of deleted) {
    const { rows: keys } = await sql<{
      referencing: string
      columns: string[]
      referenced: string[]
      action: string
    }>`
      SELECT conrelid::regclass::text AS referencing,
             array(SELECT format('%I', attname) FROM unnest(conkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute ON attrelid = conrelid AND attnum = k.n ORDER BY k.i) AS columns,
             array(SELECT format('%I', attname) FROM unnest(confkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute ON attrelid = confrelid AND attnum = k.n ORDER BY k.i) AS referenced,
             CASE confdeltype WHEN 'c' THEN 'ON DELETE CASCADE: rows deleted' WHEN 'n' THEN 'ON DELETE SET NULL: links set to null'
                              WHEN 'd' THEN 'ON DELETE SET DEFAULT: links changed' ELSE 'ON DELETE NO ACTION: the rollback would fail' END AS action
      FROM pg_constraint WHERE contype = 'f' AND confrelid = to_regclass(${table}) AND conrelid <> confrelid
      ORDER BY 1
    `.execute(db)
    for (const key of keys) {
      const matches = key.columns
        .map((column, i) => `r.${column} = d.${key.referenced[i]}`)
        .join(' AND ')
      const count = await countRows(
        db,
        sql`SELECT count(*) AS n FROM ${sql.raw(key.referencing)} r WHERE EXISTS (SELECT FROM ${sql.raw(table)} d WHERE (${sql.raw(where)}) AND ${sql.raw(matches)})`,
      )
      if (count > 0)
        lines.push(`${key.referencing} (${key.action}): ${count} row(s) referencing ${table}`)
    }
  }
  if (lines.length === 0) return
  throw new DataLossRefusal(
    `Rolling back ${name} would change rows of tables that reference the rows it deletes: ${lines.join('; ')}. ` +
      `Nothing was changed. The module does not change tables it does not own, even with --allow-data-loss: keep ${name}, ` +
      'or roll back once no row of another table references the rows named.',
  )
}
