import { type Kysely, sql } from 'kysely'

/**
 * A comparable description of everything in schema `public` that migrations create: tables
 * and their row level security and grants, columns, constraints, indexes, triggers, functions,
 * policies and comments. Two databases with equal snapshots have the same schema.
 */
export async function snapshotPublicSchema(db: Kysely<any>): Promise<Record<string, unknown[]>> {
  const query = async (text: ReturnType<typeof sql>) => (await text.execute(db)).rows
  return {
    relations: await query(sql`
      SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
             c.relacl::text AS acl, obj_description(c.oid, 'pg_class') AS comment
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
      ORDER BY c.relname`),
    columns: await query(sql`
      SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
             pg_get_expr(d.adbin, d.adrelid) AS default, col_description(c.oid, a.attnum) AS comment
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attname`),
    constraints: await query(sql`
      SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) AS definition, k.convalidated
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public'
      ORDER BY c.relname, k.conname`),
    indexes: await query(sql`
      SELECT i.indexname, i.indexdef, x.indisvalid
      FROM pg_indexes i
      JOIN pg_class ic ON ic.relname = i.indexname
      JOIN pg_namespace n ON n.oid = ic.relnamespace AND n.nspname = i.schemaname
      JOIN pg_index x ON x.indexrelid = ic.oid
      WHERE i.schemaname = 'public'
      ORDER BY i.indexname`),
    triggers: await query(sql`
      SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) AS definition, t.tgenabled
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND NOT t.tgisinternal
      ORDER BY c.relname, t.tgname`),
    functions: await query(sql`
      SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS arguments,
             pg_get_functiondef(p.oid) AS definition, p.proacl::text AS acl
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public'
      ORDER BY p.proname, arguments`),
    policies: await query(sql`
      SELECT tablename, policyname, permissive, roles::text AS roles, cmd, qual, with_check
      FROM pg_policies WHERE schemaname = 'public'
      ORDER BY tablename, policyname`),
  }
}
