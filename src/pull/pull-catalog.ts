import { type Kysely, sql } from 'kysely'

import { canActAs } from '../connection/shadowed-catalog.js'
import { catalogRead, pinCatalogReads } from '../schema/snapshot.js'

/**
 * What DDL needs beyond the catalog snapshot (src/schema/snapshot.ts), which describes objects
 * to compare them and so leaves out what does not change their meaning: column order, the
 * function text as typed, types, sequences' settings, which index backs a constraint, what a
 * default or a view depends on. Names come quoted (quote_ident) and, outside `public`, qualified.
 */
export interface PullCatalog {
  schema: string
  /**
   * The schema's ACL as `{ grantee: privileges }` (`PUBLIC` for everyone, `WITH GRANT OPTION`
   * after a privilege), its owner's own entry left out: a pulled schema is owned by whoever
   * runs the migration, with the owner's privileges the server gives.
   */
  schemaGrants: Record<string, string>
  /** Enum and domain types of the schema, with the DDL that creates each. */
  types: { name: string; qualified: string; kind: 'e' | 'd'; create: string }[]
  tables: PullTable[]
  /** Sequences of the schema, but those an identity column owns. */
  sequences: { name: string; qualified: string; create: string; ownedBy: string | null }[]
  /** Views and materialized views, with their options (security_invoker …). */
  views: {
    name: string
    qualified: string
    materialized: boolean
    options: string[]
    definition: string
    reads: string[]
    /** The indexes of a materialized view, as pg_get_indexdef writes them. */
    indexes: string[]
  }[]
  /** Functions by their snapshot key, `name(identity arguments)`. */
  functions: Record<string, PullFunction>
  /**
   * Triggers: the table's and the trigger's name, each as it is (never joined: a name may hold a
   * dot, rev-d1 F5), with pg_get_triggerdef.
   */
  triggers: { table: string; name: string; definition: string }[]
  /** Extensions that a column's type, a default or an index of a table of the schema needs, by table. */
  extensionsByTable: Record<string, string[]>
  /** The schema each installed extension lives in, by extension. */
  extensionSchemas: Record<string, string>
  /**
   * The objects of the schema (the schema itself, its tables, views, sequences, functions, enum
   * and domain types) whose owner cannot act as the session's user, the role the pull runs as:
   * `{ 'kind:name': owner }`, with kind `schema`, `relation`, `function` (keyed
   * `name(identity arguments)`) or `type`. A pulled migration would make each the migrating
   * role's (see lesserOwnerCondition).
   */
  lesserOwners: Record<string, string>
}

export interface PullTable {
  name: string
  qualified: string
  columns: PullColumn[]
  /** Constraints by name, in the order PostgreSQL lists them. */
  constraints: {
    name: string
    quoted: string
    type: string
    definition: string
    validated: boolean
  }[]
  /** Indexes by name: pg_get_indexdef, and whether a constraint owns it. */
  indexes: { name: string; definition: string; ofConstraint: boolean }[]
  /** `u` for an UNLOGGED table, `p` for any other. */
  persistence: string
  /** pg_get_partkeydef of a partitioned table (`RANGE (at)`), else null. */
  partitionKey: string | null
  /** The bound of a partition (`FOR VALUES …`), else null; its parent is parents[0]. */
  partitionBound: string | null
  /** The tables it inherits from, or the table it is a partition of, qualified. */
  parents: string[]
}

export interface PullColumn {
  name: string
  quoted: string
  /** The column's definition after its name: type, collation, default or generation, identity, NOT NULL. */
  definition: string
  /** The type alone, and the extension it belongs to, if any. */
  type: string
  extension: string | null
}

export interface PullFunction {
  /** `public.name(argument types)`, for GRANT and COMMENT. */
  signature: string
  /** pg_get_functiondef, as the server deparses it. */
  source: string
  /** A default, a CHECK, a generated column or an index of a table uses it: created before the tables. */
  usedByTables: boolean
}

/**
 * Reads {@link PullCatalog} of `schema`, read-only, with the search_path pinned to `public` as
 * the snapshot pins it, so that names read the same in both.
 *
 * @example
 * ```ts
 * const catalog = await readPullCatalog(db, 'public')
 * catalog.tables.map((table) => table.name) // ['api_keys', 'profiles', …]
 * ```
 */
export async function readPullCatalog(db: Kysely<any>, schema: string): Promise<PullCatalog> {
  const read = async (trx: Kysely<any>) => {
    await pinCatalogReads(trx)
    return {
      schemaGrants: (await readSchemaGrants(trx, schema)) ?? {},
      types: await readTypes(trx, schema),
      tables: await readTables(trx, schema),
      sequences: await readSequences(trx, schema),
      views: await readViews(trx, schema),
      functions: await readFunctions(trx, schema),
      triggers: await readTriggers(trx, schema),
      extensionsByTable: await readExtensionNeeds(trx, schema),
      extensionSchemas: await readExtensionSchemas(trx),
      lesserOwners: await readLesserOwners(trx, schema),
    }
  }
  const parts = await catalogRead(db, read)
  return { schema, ...parts }
}

/** Objects of `schema` that no extension owns, as an SQL condition on the object `oid` of catalog `catalog`. */
const notOfExtension = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT FROM pg_catalog.pg_depend e WHERE e.classid = '${catalog}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`

// By nspname, not a cast to regnamespace: the cast reads its text as an identifier, folding
// an unquoted "Reports" to reports.
const namespaceOf = (schema: string) =>
  `(SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = '${schema.replaceAll("'", "''")}')`

/**
 * The ACL of schema `schema` as {@link PullCatalog.schemaGrants} has it; undefined when there is
 * no such schema.
 *
 * @example
 * ```ts
 * await readSchemaGrants(db, 'Reports') // { anon: 'USAGE' }
 * ```
 */
export async function readSchemaGrants(
  db: Kysely<any>,
  schema: string,
): Promise<Record<string, string> | undefined> {
  const { rows } = await sql<{ grants: Record<string, string> }>`
    SELECT coalesce((
      SELECT jsonb_object_agg(g.grantee, g.privileges) FROM (
        SELECT CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(e.grantee)::text END AS grantee,
               string_agg(e.privilege_type || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, ', '
                          ORDER BY e.privilege_type) AS privileges
        FROM pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) e
        WHERE e.grantee <> n.nspowner
        GROUP BY 1) g), '{}'::jsonb) AS grants
    FROM pg_catalog.pg_namespace n WHERE n.nspname = ${schema}
  `.execute(db)
  return rows[0]?.grants
}

async function readTypes(db: Kysely<any>, schema: string): Promise<PullCatalog['types']> {
  const { rows } = await sql
    .raw<PullCatalog['types'][number]>(
      `
    SELECT t.typname::text AS name, t.oid::regtype::text AS qualified, t.typtype::text AS kind,
           CASE t.typtype
             WHEN 'e' THEN format('CREATE TYPE %s AS ENUM (%s)', t.oid::regtype,
                    (SELECT string_agg(quote_literal(l.enumlabel), ', ' ORDER BY l.enumsortorder)
                     FROM pg_catalog.pg_enum l WHERE l.enumtypid = t.oid))
             ELSE format('CREATE DOMAIN %s AS %s%s%s%s', t.oid::regtype,
                    pg_catalog.format_type(t.typbasetype, t.typtypmod),
                    CASE WHEN t.typdefault IS NOT NULL THEN ' DEFAULT ' || t.typdefault ELSE '' END,
                    CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END,
                    coalesce((SELECT string_agg(' CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_catalog.pg_get_constraintdef(k.oid), ''
                                                ORDER BY k.conname)
                              FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid), ''))
           END AS create
    FROM pg_catalog.pg_type t
    WHERE t.typnamespace = ${namespaceOf(schema)} AND t.typtype IN ('e', 'd')
      AND ${notOfExtension('pg_catalog.pg_type', 't.oid')}
    ORDER BY t.typtype DESC, t.typname
  `,
    )
    .execute(db)
  return rows
}

async function readTables(db: Kysely<any>, schema: string): Promise<PullTable[]> {
  const { rows } = await sql
    .raw<PullTable>(
      `
    SELECT c.relname::text AS name, c.oid::regclass::text AS qualified,
      coalesce((SELECT jsonb_agg(jsonb_build_object(
          'name', a.attname::text,
          'quoted', quote_ident(a.attname),
          'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
          'extension', (SELECT x.extname::text FROM pg_catalog.pg_depend e JOIN pg_catalog.pg_extension x ON x.oid = e.refobjid
                        WHERE e.classid = 'pg_catalog.pg_type'::regclass AND e.objid = coalesce(nullif(t.typelem, 0), t.oid)
                          AND e.deptype = 'e' LIMIT 1),
          'definition', pg_catalog.format_type(a.atttypid, a.atttypmod)
            || CASE WHEN a.attcollation <> t.typcollation
                    THEN ' COLLATE ' || (SELECT quote_ident(l.collname) FROM pg_catalog.pg_collation l WHERE l.oid = a.attcollation) ELSE '' END
            || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_catalog.pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                    WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid) ELSE '' END
            || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
            || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
        ) ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::jsonb) AS columns,
      coalesce((SELECT jsonb_agg(jsonb_build_object(
          'name', k.conname::text, 'quoted', quote_ident(k.conname), 'type', k.contype::text,
          'definition', pg_catalog.pg_get_constraintdef(k.oid), 'validated', k.convalidated
        ) ORDER BY k.contype = 'f', k.conname)
        FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype::text <> 'n'), '[]'::jsonb) AS constraints,
      coalesce((SELECT jsonb_agg(jsonb_build_object(
          'name', i.relname::text, 'definition', pg_catalog.pg_get_indexdef(x.indexrelid),
          'ofConstraint', EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = c.oid)
        ) ORDER BY i.relname)
        FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid), '[]'::jsonb) AS indexes,
      c.relpersistence::text AS persistence,
      pg_catalog.pg_get_partkeydef(c.oid) AS "partitionKey",
      CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS "partitionBound",
      coalesce((SELECT array_agg(h.inhparent::regclass::text ORDER BY h.inhseqno)
                FROM pg_catalog.pg_inherits h WHERE h.inhrelid = c.oid), '{}')::text[] AS parents
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = ${namespaceOf(schema)} AND c.relkind IN ('r', 'p') AND ${notOfExtension('pg_catalog.pg_class', 'c.oid')}
    ORDER BY c.relname
  `,
    )
    .execute(db)
  return rows
}

async function readSequences(db: Kysely<any>, schema: string): Promise<PullCatalog['sequences']> {
  const { rows } = await sql
    .raw<PullCatalog['sequences'][number]>(
      `
    SELECT c.relname::text AS name, c.oid::regclass::text AS qualified,
           format('CREATE SEQUENCE %s AS %s%s%s', c.oid::regclass, pg_catalog.format_type(s.seqtypid, NULL),
                  CASE WHEN s.seqincrement <> 1 THEN ' INCREMENT BY ' || s.seqincrement ELSE '' END,
                  CASE WHEN s.seqstart <> 1 THEN ' START WITH ' || s.seqstart ELSE '' END
                  || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END) AS create,
           (SELECT format('%s.%s', t.oid::regclass, quote_ident(a.attname))
            FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
            JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
              AND d.refclassid = 'pg_catalog.pg_class'::regclass) AS "ownedBy"
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
    WHERE c.relnamespace = ${namespaceOf(schema)} AND c.relkind = 'S' AND ${notOfExtension('pg_catalog.pg_class', 'c.oid')}
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i')
    ORDER BY c.relname
  `,
    )
    .execute(db)
  return rows
}

async function readViews(db: Kysely<any>, schema: string): Promise<PullCatalog['views']> {
  const { rows } = await sql
    .raw<PullCatalog['views'][number]>(
      `
    SELECT c.relname::text AS name, c.oid::regclass::text AS qualified, c.relkind = 'm' AS materialized,
           coalesce(c.reloptions, '{}')::text[] AS options, pg_catalog.pg_get_viewdef(c.oid) AS definition,
           coalesce((SELECT array_agg(DISTINCT t.relname::text ORDER BY t.relname::text)
                     FROM pg_catalog.pg_rewrite w
                     JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = w.oid
                                                AND d.refclassid = 'pg_catalog.pg_class'::regclass
                     JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
                     WHERE w.ev_class = c.oid AND t.oid <> c.oid AND t.relnamespace = c.relnamespace), '{}')::text[] AS reads,
           coalesce((SELECT array_agg(pg_catalog.pg_get_indexdef(x.indexrelid) ORDER BY x.indexrelid::regclass::text)
                     FROM pg_catalog.pg_index x WHERE x.indrelid = c.oid), '{}')::text[] AS indexes
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = ${namespaceOf(schema)} AND c.relkind IN ('v', 'm') AND ${notOfExtension('pg_catalog.pg_class', 'c.oid')}
    ORDER BY c.relname
  `,
    )
    .execute(db)
  return rows
}

async function readFunctions(
  db: Kysely<any>,
  schema: string,
): Promise<Record<string, PullFunction>> {
  const { rows } = await sql
    .raw<{ key: string } & PullFunction>(
      `
    SELECT p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS key,
           p.oid::regprocedure::text AS signature, pg_catalog.pg_get_functiondef(p.oid) AS source,
           EXISTS (SELECT FROM pg_catalog.pg_depend d
                   WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid = p.oid
                     AND d.classid IN ('pg_catalog.pg_attrdef'::regclass, 'pg_catalog.pg_constraint'::regclass, 'pg_catalog.pg_class'::regclass)
                     AND (d.classid <> 'pg_catalog.pg_class'::regclass
                          OR EXISTS (SELECT FROM pg_catalog.pg_index x WHERE x.indexrelid = d.objid))) AS "usedByTables"
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = ${namespaceOf(schema)} AND p.prokind IN ('f', 'p') AND ${notOfExtension('pg_catalog.pg_proc', 'p.oid')}
  `,
    )
    .execute(db)
  return Object.fromEntries(rows.map(({ key, ...fn }) => [key, fn]))
}

async function readTriggers(db: Kysely<any>, schema: string): Promise<PullCatalog['triggers']> {
  const { rows } = await sql
    .raw<{ table: string; name: string; definition: string }>(
      `
    SELECT c.relname::text AS table, g.tgname::text AS name,
      pg_catalog.pg_get_triggerdef(g.oid) AS definition
    FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid
    WHERE c.relnamespace = ${namespaceOf(schema)} AND NOT g.tgisinternal
  `,
    )
    .execute(db)
  return rows.map(({ table, name, definition }) => ({ table, name, definition }))
}

async function readExtensionNeeds(
  db: Kysely<any>,
  schema: string,
): Promise<Record<string, string[]>> {
  // What a table, its defaults (pg_attrdef) and its indexes depend on that an extension owns: a
  // column type (pgvector's vector), a default's function (uuid-ossp), an operator class (ivfflat).
  const { rows } = await sql
    .raw<{ table_name: string; extensions: string[] }>(
      `
    SELECT c.relname::text AS table_name, array_agg(DISTINCT x.extname::text ORDER BY x.extname::text) AS extensions
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_depend d ON (d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid)
      OR (d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid IN (SELECT oid FROM pg_catalog.pg_attrdef WHERE adrelid = c.oid))
      OR (d.classid = 'pg_catalog.pg_class'::regclass AND d.objid IN (SELECT indexrelid FROM pg_catalog.pg_index WHERE indrelid = c.oid))
    JOIN pg_catalog.pg_depend e ON e.classid = d.refclassid AND e.objid = d.refobjid AND e.deptype = 'e'
    JOIN pg_catalog.pg_extension x ON x.oid = e.refobjid
    WHERE c.relnamespace = ${namespaceOf(schema)} AND c.relkind IN ('r', 'p') AND x.extname <> 'plpgsql'
    GROUP BY c.relname
  `,
    )
    .execute(db)
  return Object.fromEntries(rows.map(({ table_name, extensions }) => [table_name, extensions]))
}

async function readExtensionSchemas(db: Kysely<any>): Promise<Record<string, string>> {
  const { rows } = await sql<{ name: string; schema: string }>`
    SELECT extname::text AS name, extnamespace::regnamespace::text AS schema FROM pg_catalog.pg_extension
  `.execute(db)
  return Object.fromEntries(rows.map(({ name, schema }) => [name, schema]))
}

/**
 * A condition that holds where the role `owner` (an expression) cannot act as the session's
 * user: it is not a superuser, not that user, and no member of it. The module's notion of a
 * lesser role (actsAsSessionUser in src/connection/shadowed-catalog.ts), as a plain query:
 * pg_database_owner stands for the database's owner.
 */
const lesserOwnerCondition = (owner: string) =>
  `NOT ${canActAs(
    `CASE WHEN ${owner} = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = 'pg_database_owner')
       THEN (SELECT d.datdba FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
       ELSE ${owner} END`,
    'session_user',
  )}`

async function readLesserOwners(db: Kysely<any>, schema: string): Promise<Record<string, string>> {
  const namespace = namespaceOf(schema)
  const { rows } = await sql
    .raw<{ key: string; owner: string }>(
      `
    SELECT o.kind || ':' || o.name AS key, pg_catalog.pg_get_userbyid(o.owner)::text AS owner
    FROM (
      SELECT 'schema' AS kind, n.nspname::text AS name, n.nspowner AS owner
        FROM pg_catalog.pg_namespace n WHERE n.oid = ${namespace}
      UNION ALL
      SELECT 'relation', c.relname::text, c.relowner
        FROM pg_catalog.pg_class c WHERE c.relnamespace = ${namespace} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      UNION ALL
      SELECT 'function', p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', p.proowner
        FROM pg_catalog.pg_proc p WHERE p.pronamespace = ${namespace} AND p.prokind IN ('f', 'p')
      UNION ALL
      SELECT 'type', t.typname::text, t.typowner
        FROM pg_catalog.pg_type t WHERE t.typnamespace = ${namespace} AND t.typtype IN ('e', 'd')
    ) o
    WHERE ${lesserOwnerCondition('o.owner')}
  `,
    )
    .execute(db)
  return Object.fromEntries(rows.map(({ key, owner }) => [key, owner]))
}
