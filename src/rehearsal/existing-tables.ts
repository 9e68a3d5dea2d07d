import { type Kysely, sql } from 'kysely'

/** A table that existed before the rehearsed migration. */
export interface ExistingTable {
  oid: number
  /** schema.name, quoted where SQL needs it. */
  name: string
  filenode: number
}

/**
 * The ordinary and partitioned tables outside PostgreSQL's own schemas, as they are now: the
 * tables whose locks, rewrites and scans the rehearsal reports.
 *
 * @example
 * ```ts
 * const tables = await readExistingTables(db)
 * ```
 */
export async function readExistingTables(db: Kysely<any>): Promise<ExistingTable[]> {
  const { rows } = await sql<{ oid: number; name: string; filenode: number }>`
      SELECT c.oid::int AS oid, c.oid::regclass::text AS name, coalesce(pg_relation_filenode(c.oid), 0)::int AS filenode
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY 2`.execute(db)
  // regclass leaves the tables of the search_path (public) unqualified, as the report shows them.
  return rows.map((row) => ({
    oid: Number(row.oid),
    name: row.name,
    filenode: Number(row.filenode),
  }))
}

/**
 * The oids of `tables` as an SQL array literal (no bound parameters: PGlite and pg alike).
 *
 * @example
 * ```ts
 * oidArray([{ oid: 16384, name: 'x402_resources', filenode: 16384 }]) // "'{16384}'::oid[]"
 * ```
 */
export function oidArray(tables: readonly ExistingTable[]): string {
  return `'{${tables.map((table) => table.oid).join(',')}}'::oid[]`
}
