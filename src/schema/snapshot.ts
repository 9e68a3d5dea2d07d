import { type Kysely, sql } from 'kysely'

import { PINNED_SHADOWED_CATALOG_SQL } from '../connection/shadowed-catalog.js'
import { lesserTriggersSql } from '../connection/lesser-triggers.js'
import { MIGRATION_TABLE_SCHEMA } from '../migrator/history.js'
import { DEFAULT_IDLE_TIMEOUT_MS, inBoundedTransaction } from '../migrator/lock.js'

/** The kinds of object a {@link SchemaSnapshot} describes, one record of each. */
export const SCHEMA_OBJECT_CATEGORIES = [
  'schemas',
  'relations',
  'columns',
  'constraints',
  'indexes',
  'triggers',
  'functions',
  'policies',
] as const

export type SchemaObjectCategory = (typeof SCHEMA_OBJECT_CATEGORIES)[number]

/** One object of schema `public`, as the catalog describes it after normalisation. */
export interface SchemaObject {
  /** The relation it belongs to (a relation belongs to itself); null for a function or a schema. */
  table: string | null
  /** Its own name: `resource_type`, `idx_claude_configs_user_enabled`, `update_x()`. */
  name: string
  /** What makes two of them equal: definition, validity, grants, comment, … */
  definition: Record<string, unknown>
}

/**
 * A comparable description of schema `public`: for each category, its objects keyed by
 * `table.name` (by `name` alone for relations and functions). Two databases with equal
 * snapshots have the same schema, whether PostgreSQL 15 or PGlite (17) built it.
 */
export type SchemaSnapshot = Record<SchemaObjectCategory, Record<string, SchemaObject>>

/**
 * Describes everything in schema `public` that migrations create: relations with their row
 * level security, grants and comment (a view also with its definition, whether it reads with the
 * caller's rights, security_invoker, and the relations it reads); columns; constraints (with whether they are validated);
 * indexes (with whether they are valid); triggers; functions with their grants; policies; and
 * every object's comment. Objects that belong to an extension are left out. Read-only.
 *
 * What the server version or the session changes is normalised away (see snapshotQuery):
 * equal schemas give equal snapshots on PostgreSQL 15 and on PGlite.
 *
 * @example
 * ```ts
 * const before = await snapshotPublicSchema(db)
 * await migrateUp(db)
 * await migrateDown(db)
 * expect(await snapshotPublicSchema(db)).toEqual(before)
 * ```
 */
export function snapshotPublicSchema(db: Kysely<any>): Promise<SchemaSnapshot> {
  return snapshotSchema(db, 'public')
}

/**
 * The server's bounds on a catalog read's own transaction: a lock held on a table it describes (a
 * migration's, a stuck ALTER) ends the read with lock_timeout (55P03), and a stopped client loses
 * its snapshot, as a run's sessions do (setSessionBounds; review rev-a7 3). The statement bound is
 * the advisor's, far above what the reads take.
 */
const CATALOG_READ_BOUNDS = {
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  lockTimeoutMs: 10_000,
  statementTimeoutMs: 60_000,
}

/**
 * Runs `read` in `db`'s transaction, or in a transaction of its own bounded by the server
 * ({@link CATALOG_READ_BOUNDS}, through inBoundedTransaction) that first refuses where the reads
 * would run a lesser login's code ({@link CATALOG_READS_CHECK_SQL}): every catalog read of a
 * schema's snapshot, comparison or pull goes through here. A caller's transaction keeps the
 * bounds and the checks its caller set.
 *
 * @example
 * ```ts
 * const rows = await catalogRead(db, async (trx) => { await pinCatalogReads(trx); return … })
 * ```
 */
export function catalogRead<T>(
  db: Kysely<any>,
  read: (trx: Kysely<any>) => Promise<T>,
): Promise<T> {
  if (db.isTransaction) return read(db)
  return inBoundedTransaction(db, CATALOG_READ_BOUNDS, async (trx) => {
    await sql.raw(CATALOG_READS_CHECK_SQL).execute(trx)
    return read(trx)
  })
}

/**
 * Pins the settings of the transaction `trx` for the module's catalog reads: names deparsed with
 * the search_path at `public`, so that they are qualified the same way whatever the role's own,
 * and no JIT. The comparison and snapshot queries are estimated far above jit_above_cost though
 * they read a few hundred catalog rows, and a server with JIT on (Debian's, Supabase's) spent
 * seconds compiling one before it ran. Then, in the same transaction, it refuses (42501) where a
 * role that cannot act as the session's user could shadow PostgreSQL's operators or functions on
 * that path (PINNED_SHADOWED_CATALOG_SQL): the check of the session's own path never looked at
 * `public` where that path does not name it.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await pinCatalogReads(trx)
 *   return sql.raw(appSchemasSnapshotQuery()).execute(trx)
 * })
 * ```
 */
export async function pinCatalogReads(trx: Kysely<any>): Promise<void> {
  await sql.raw(`SELECT ${PINNED_CATALOG_READS}`).execute(trx)
  await sql.raw(PINNED_SHADOWED_CATALOG_SQL).execute(trx)
}

/**
 * The walk of what the reads run without a name: a trusted function named as one of pg_catalog's
 * in public or on the path, where its argument types fit better than pg_catalog's (the
 * snapshot's jsonb_build_object), a trusted cast between built-in types (the reads'
 * regnamespace::text, pinned or not), that reaches a lesser login's code (the review of rev13:
 * R1, R2). Nothing that a check of a write would not refuse.
 */
const CATALOG_READS_CHECK_SQL = lesserTriggersSql({
  lock: false,
  reads: true,
  doing: 'Reading the catalog',
})

/**
 * SQL: the settings of {@link pinCatalogReads}, for a script's own transaction, which runs
 * PINNED_SHADOWED_CATALOG_SQL right after them, as pinCatalogReads does: the session's check
 * covered the session's search_path, which need not name `public`.
 */
export const PINNED_CATALOG_READS = `pg_catalog.set_config('search_path', 'public', true), pg_catalog.set_config('jit', 'off', true)`

/**
 * {@link snapshotPublicSchema} of another schema, such as x402_migrations. The schema itself
 * (its grants, comment and owner) is left out, as it is of {@link snapshotPublicSchema}: only
 * {@link snapshotAppSchemas} describes the schemas, under `schemas`.
 *
 * @example
 * ```ts
 * Object.keys((await snapshotSchema(db, 'x402_migrations')).relations) // ['kysely_migration', …]
 * ```
 */
export async function snapshotSchema(db: Kysely<any>, schema: string): Promise<SchemaSnapshot> {
  const read = async (trx: Kysely<any>) => {
    await pinCatalogReads(trx)
    return (await sql.raw<SnapshotRow>(snapshotQuery(schema)).execute(trx)).rows
  }
  const rows = await catalogRead(db, read)
  return snapshotFromRows(rows)
}

/**
 * {@link snapshotPublicSchema} of every one of the app's schemas at once (see
 * {@link appSchemasSnapshotQuery}): names outside `public` schema-qualified, as the comparison
 * keys them, and each schema itself under `schemas` (its grants and comment), keyed by its name
 * as an identifier (`public`, `"Reports"`).
 *
 * @example
 * ```ts
 * Object.keys((await snapshotAppSchemas(db)).relations) // ['x402_resources', '"Reports".totals', …]
 * ```
 */
export async function snapshotAppSchemas(db: Kysely<any>): Promise<SchemaSnapshot> {
  const read = async (trx: Kysely<any>) => {
    await pinCatalogReads(trx)
    return (await sql.raw<SnapshotRow>(appSchemasSnapshotQuery()).execute(trx)).rows
  }
  const rows = await catalogRead(db, read)
  return snapshotFromRows(rows)
}

/** A row of {@link snapshotQuery}. */
export interface SnapshotRow {
  category: SchemaObjectCategory
  table_name: string | null
  object_name: string
  definition: Record<string, unknown>
  /** The schema it is in, as a quoted identifier where it needs quotes. */
  schema_name: string
  /**
   * Its owner, for a schema, a relation or a function (null otherwise). Not part of `definition`: the
   * role that runs the migrations owns what they create, and differs between databases.
   */
  owner_name: string | null
}

/**
 * The key of an object within its category: `table.name`, or `name` for relations and functions.
 *
 * @example
 * ```ts
 * schemaObjectKey('columns', { table: 'x402_resources', name: 'slug' }) // 'x402_resources.slug'
 * ```
 */
export function schemaObjectKey(
  category: SchemaObjectCategory,
  object: Pick<SchemaObject, 'table' | 'name'>,
): string {
  return category === 'relations' || object.table === null
    ? object.name
    : `${object.table}.${object.name}`
}

function snapshotFromRows(rows: SnapshotRow[]): SchemaSnapshot {
  const snapshot = Object.fromEntries(
    SCHEMA_OBJECT_CATEGORIES.map((category) => [category, {}]),
  ) as SchemaSnapshot
  for (const row of rows) {
    const object: SchemaObject = {
      table: row.table_name,
      name: row.object_name,
      definition: row.definition,
    }
    snapshot[row.category][schemaObjectKey(row.category, object)] = object
  }
  return snapshot
}

/**
 * The grants of an object, as `{ grantee: privileges }`. Normalised:
 * - a grantee holding every privilege the server has for the object type is given `ALL`.
 *   PostgreSQL 17 added MAINTAIN to tables, so `GRANT ALL` (and Supabase's default privileges)
 *   reads `arwdDxt` on 15 and `arwdDxtm` on 17; both are `ALL` here;
 * - the owner's own entry is `(owner)`, not its name, and grantors are left out: who owns the
 *   objects differs between a scratch database and Supabase (postgres, supabase_admin), and
 *   says nothing about who can reach them;
 * - a NULL ACL (never granted or revoked) is the server's default ACL, written out.
 */
function grants(acl: string, owner: string, objectType: string): string {
  // objectType is an SQL expression of type "char": acldefault's object type letter.
  const privilege = `e.privilege_type || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END`
  return `(
    SELECT coalesce(jsonb_object_agg(g.grantee, g.privileges), '{}'::jsonb) FROM (
      SELECT CASE WHEN e.grantee = ${owner} THEN '(owner)' WHEN e.grantee = 0 THEN 'PUBLIC'
                  ELSE pg_catalog.pg_get_userbyid(e.grantee) END AS grantee,
             CASE WHEN array_agg(e.privilege_type::text) @> (
                         SELECT array_agg(f.privilege_type::text)
                         FROM pg_catalog.aclexplode(pg_catalog.acldefault(${objectType}, ${owner})) f
                         WHERE f.grantee = ${owner})
                       AND bool_and(e.is_grantable) = bool_or(e.is_grantable)
                  THEN 'ALL' || CASE WHEN bool_and(e.is_grantable) THEN ' WITH GRANT OPTION' ELSE '' END
                  ELSE string_agg(DISTINCT ${privilege}, ', ' ORDER BY ${privilege}) END AS privileges
      FROM pg_catalog.aclexplode(coalesce(${acl}, pg_catalog.acldefault(${objectType}, ${owner}))) e
      GROUP BY 1
    ) g
  )`
}

/**
 * One query for the whole snapshot of `schema`, so that it is one round trip and can run verbatim inside
 * the SQL Editor guard of `migrate:sql -- --baseline` (see baseline-sql.ts). Every category
 * gives (category, table_name, object_name, definition jsonb).
 *
 * Normalised, and why:
 * - grants: see grants() above (MAINTAIN on 17, owner and grantor names);
 * - function definitions: runs of whitespace become one space. pg_get_functiondef() deparses
 *   the header but keeps the body as typed, and the SQL Editor and a migration's template
 *   literal indent the same body differently. (A change of whitespace inside a string literal
 *   of a function body is therefore not seen.) Every other definition is deparsed by the server
 *   and needs nothing;
 * - the search_path is pinned to `public` by the caller, so that a name is qualified the same
 *   way whatever the session's path (Supabase's includes `extensions`);
 * - column order (attnum) is left out: a column added by hand lands elsewhere, and queries do
 *   not depend on it;
 * - NOT NULL constraints (contype 'n', PostgreSQL 18 and later) are left out: attnotnull of the
 *   column says the same on every version;
 * - objects that belong to an extension (pg_depend deptype 'e') are left out: the extension
 *   owns them, and its version, not a migration, decides what they look like;
 * - aggregates are left out: pg_get_functiondef() cannot deparse them, and the module has none.
 */
export function snapshotQuery(schema: string): string {
  // By nspname: a cast to regnamespace would fold a name with capitals to lower case.
  const namespace = `(SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = '${schema.replaceAll("'", "''")}')`
  return scopedSnapshotQuery(`= ${namespace}`, namespace, false)
}

/**
 * {@link snapshotQuery} over every one of the app's schemas (see {@link APP_SCHEMAS_CONDITION}):
 * names outside `public` are schema-qualified (`api.orders`, `api.total(uuid)`), so that they
 * never meet a name of `public`. Each row also says its schema (`schema_name`).
 *
 * @example
 * ```ts
 * const { rows } = await sql.raw<SnapshotRow>(appSchemasSnapshotQuery()).execute(trx)
 * ```
 */
export function appSchemasSnapshotQuery(): string {
  return scopedSnapshotQuery(
    `IN (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE ${APP_SCHEMAS_CONDITION('n')})`,
    `'public'::regnamespace`,
    true,
  )
}

/**
 * Supabase's own schemas (and PostgreSQL's, pg_*): the platform, not the app, governs them, so
 * they are never among the app's schemas even where the API roles may use them.
 */
export const PLATFORM_SCHEMAS: readonly string[] = [
  'auth',
  'storage',
  'extensions',
  'graphql',
  'graphql_public',
  'realtime',
  '_realtime',
  'vault',
  'pgsodium',
  'pgsodium_masks',
  'net',
  'supabase_functions',
  'supabase_migrations',
  'cron',
  'pgbouncer',
  '_analytics',
  'pgmq',
  'pgtle',
  'information_schema',
]

/**
 * The module's bookkeeping schemas (its history, and what a guarded down keeps): not the app's.
 */
export const BOOKKEEPING_SCHEMAS: readonly string[] = [MIGRATION_TABLE_SCHEMA, 'x402_backup']

/**
 * SQL: whether the schema of pg_namespace row `n` is one of the app's: `public`, and every other
 * schema that anon or authenticated may use (PostgREST can expose it), but for Supabase's own
 * and the module's bookkeeping schemas.
 *
 * @example
 * ```ts
 * `SELECT nspname FROM pg_catalog.pg_namespace n WHERE ${APP_SCHEMAS_CONDITION('n')}`
 * ```
 */
export function APP_SCHEMAS_CONDITION(n: string): string {
  const names = [...PLATFORM_SCHEMAS, ...BOOKKEEPING_SCHEMAS].map((name) => `'${name}'`).join(', ')
  return `(${n}.nspname = 'public'
     OR (${n}.nspname NOT IN (${names}) AND ${n}.nspname NOT LIKE 'pg\\_%'
         AND EXISTS (SELECT FROM pg_catalog.pg_roles a WHERE a.rolname IN ('anon', 'authenticated')
                     AND pg_catalog.has_schema_privilege(a.oid, ${n}.oid, 'USAGE'))))`
}

/**
 * The snapshot query over the schemas whose oid satisfies `namespaces` (an SQL condition's
 * right-hand side), with names in schema `bare` unqualified and every other name qualified;
 * with `withSchemas`, a row for each schema itself too. Its name is the schema's identifier as
 * the server quotes it (regnamespace), the same prefix its objects' names carry.
 */
function scopedSnapshotQuery(namespaces: string, bare: string, withSchemas: boolean): string {
  // A relation's name, and a function's prefix, as the snapshot keys them.
  const relation = (alias: string) =>
    `CASE WHEN ${alias}.relnamespace = ${bare} THEN ${alias}.relname::text
          ELSE ${alias}.relnamespace::regnamespace::text || '.' || ${alias}.relname END`
  return `
WITH rels AS (
  SELECT c.oid, ${relation('c')} AS relname, c.relkind, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relpersistence,
         c.relnamespace::regnamespace::text AS schema_name
  FROM pg_catalog.pg_class c
  WHERE c.relnamespace ${namespaces}
    AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
)
SELECT 'relations' AS category, r.relname::text AS table_name, r.relname::text AS object_name,
       jsonb_build_object(
         'kind', CASE r.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                   WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' ELSE 'foreign table' END,
         'row level security', r.relrowsecurity,
         'forced row level security', r.relforcerowsecurity,
         'grants', ${grants('r.relacl', 'r.relowner', `(CASE WHEN r.relkind = 'S' THEN 's' ELSE 'r' END)::"char"`)},
         'view definition', CASE WHEN r.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(r.oid) END,
         'comment', pg_catalog.obj_description(r.oid, 'pg_class')
       ) || CASE WHEN r.relkind IN ('v', 'm') THEN jsonb_build_object(
         -- Whose rights a view reads its tables with: the caller's (security_invoker), or its owner's.
         'security invoker', coalesce((SELECT lower(split_part(o, '=', 2)) IN ('on', 'true', 'yes', '1')
                                       FROM unnest(r.reloptions) AS o WHERE o LIKE 'security_invoker=%'), false),
         -- The relations it reads, by name (schema-qualified outside this schema).
         'reads', (SELECT coalesce(jsonb_agg(DISTINCT ${relation('t')}), '[]'::jsonb)
                   FROM pg_catalog.pg_rewrite w
                   JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = w.oid
                                              AND d.refclassid = 'pg_catalog.pg_class'::regclass
                   JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
                   WHERE w.ev_class = r.oid AND t.oid <> r.oid)
       ) ELSE '{}'::jsonb END
         -- An UNLOGGED table, which a crash empties; said only where it is (as the view options below).
         || CASE WHEN r.relpersistence = 'u' THEN jsonb_build_object('unlogged', true) ELSE '{}'::jsonb END
         -- Rules (a view's own _RETURN rule is its definition), only where there are any: one
         -- DO INSTEAD NOTHING silently discards every write.
         || coalesce((SELECT jsonb_build_object('rules', jsonb_object_agg(w.rulename, pg_catalog.pg_get_ruledef(w.oid)))
                      FROM pg_catalog.pg_rewrite w WHERE w.ev_class = r.oid AND w.rulename <> '_RETURN'
                      HAVING count(*) > 0), '{}'::jsonb)
         -- The view's other options (security_barrier, check_option), only where it has any: a
         -- record written without them still matches a view that has none.
         || CASE WHEN r.relkind = 'v' AND EXISTS (SELECT FROM unnest(r.reloptions) AS o
                                                  WHERE o NOT LIKE 'security_invoker=%')
                 THEN jsonb_build_object('view options',
                        (SELECT jsonb_agg(lower(o) ORDER BY lower(o)) FROM unnest(r.reloptions) AS o
                         WHERE o NOT LIKE 'security_invoker=%'))
                 ELSE '{}'::jsonb END AS definition,
       r.schema_name, pg_catalog.pg_get_userbyid(r.relowner)::text AS owner_name
FROM rels r
UNION ALL
SELECT 'columns', r.relname, a.attname,
       jsonb_build_object(
         'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
         'not null', a.attnotnull,
         'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
         'identity', nullif(a.attidentity::text, ''),
         'generated', nullif(a.attgenerated::text, ''),
         'collation', CASE WHEN a.attcollation <> t.typcollation
                        THEN (SELECT l.collname::text FROM pg_catalog.pg_collation l WHERE l.oid = a.attcollation) END,
         'grants', CASE WHEN a.attacl IS NOT NULL THEN ${grants('a.attacl', 'r.relowner', `'c'`)} END,
         'comment', pg_catalog.col_description(r.oid, a.attnum)
       ),
       r.schema_name, NULL::text
FROM rels r
JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE r.relkind <> 'S'
UNION ALL
SELECT 'constraints', r.relname, k.conname,
       jsonb_build_object(
         'definition', pg_catalog.pg_get_constraintdef(k.oid),
         'validated', k.convalidated,
         'comment', pg_catalog.obj_description(k.oid, 'pg_constraint')
       ),
       r.schema_name, NULL::text
FROM rels r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid
WHERE k.contype::text <> 'n'
UNION ALL
SELECT 'indexes', r.relname, i.relname,
       jsonb_build_object(
         'definition', pg_catalog.pg_get_indexdef(x.indexrelid),
         'valid', x.indisvalid,
         'comment', pg_catalog.obj_description(i.oid, 'pg_class')
       ),
       r.schema_name, NULL::text
FROM rels r
JOIN pg_catalog.pg_index x ON x.indrelid = r.oid
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
UNION ALL
SELECT 'triggers', r.relname, g.tgname,
       jsonb_build_object(
         'definition', pg_catalog.pg_get_triggerdef(g.oid),
         'enabled', g.tgenabled::text,
         'comment', pg_catalog.obj_description(g.oid, 'pg_trigger')
       ),
       r.schema_name, NULL::text
FROM rels r JOIN pg_catalog.pg_trigger g ON g.tgrelid = r.oid
WHERE NOT g.tgisinternal
UNION ALL
SELECT 'functions', NULL,
       CASE WHEN p.pronamespace = ${bare} THEN '' ELSE p.pronamespace::regnamespace::text || '.' END
         || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
       jsonb_build_object(
         'definition', btrim(regexp_replace(pg_catalog.pg_get_functiondef(p.oid), '\\s+', ' ', 'g')),
         'grants', ${grants('p.proacl', 'p.proowner', `'f'`)},
         'comment', pg_catalog.obj_description(p.oid, 'pg_proc')
       ),
       p.pronamespace::regnamespace::text, pg_catalog.pg_get_userbyid(p.proowner)::text
FROM pg_catalog.pg_proc p
WHERE p.pronamespace ${namespaces}
  AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'policies', r.relname, o.polname,
       jsonb_build_object(
         'permissive', o.polpermissive,
         'command', CASE o.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                      WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
         'roles', (SELECT string_agg(n.role, ', ' ORDER BY n.role) FROM (
                     -- Quoted where a name needs it, so that the list reads as SQL, whatever a
                     -- name holds ("public, anon" is one role); PUBLIC is public.
                     SELECT CASE WHEN u.role_id = 0 THEN 'public' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(u.role_id)::text) END AS role
                     FROM unnest(o.polroles) AS u(role_id)) n),
         'using', pg_catalog.pg_get_expr(o.polqual, o.polrelid),
         'with check', pg_catalog.pg_get_expr(o.polwithcheck, o.polrelid),
         'comment', pg_catalog.obj_description(o.oid, 'pg_policy')
       ),
       r.schema_name, NULL::text
FROM rels r JOIN pg_catalog.pg_policy o ON o.polrelid = r.oid
${
  withSchemas
    ? `UNION ALL
SELECT 'schemas', NULL, n.oid::regnamespace::text,
       jsonb_build_object(
         'grants', ${grants('n.nspacl', 'n.nspowner', `'n'`)},
         'comment', pg_catalog.obj_description(n.oid, 'pg_namespace')
       ),
       n.oid::regnamespace::text, pg_catalog.pg_get_userbyid(n.nspowner)::text
FROM pg_catalog.pg_namespace n
WHERE n.oid ${namespaces}
`
    : ''
}`
}
