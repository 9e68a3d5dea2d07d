import {
  appSchemasSnapshotQuery,
  SCHEMA_OBJECT_CATEGORIES,
  type SchemaSnapshot,
  schemaObjectKey,
} from './snapshot.js'

/**
 * The one implementation of the rules that compare a live schema with the module's: a single
 * SQL query. `migrate:baseline` and `migrate:check` run it through Kysely; the SQL Editor script
 * of `migrate:sql -- --baseline` runs the very same text inside its guard. So the two paths
 * cannot disagree on a rule, a normalisation or the wording of a line.
 *
 * Each difference is one row, classed:
 * - `equivalent`, never blocks: comment text; a function body that differs only in whitespace
 *   or in the letter case of keywords and unquoted identifiers outside string literals; a CHECK
 *   that lists the same allowed values of one column (`= ANY (ARRAY[…])` or an OR chain); a
 *   default of now(), CURRENT_TIMESTAMP or transaction_timestamp(). What cannot be proven the
 *   same stays a conflict (other spellings, such as `EXECUTE PROCEDURE`, are deparsed alike by
 *   the server and never show up);
 * - `accepted`, production has more or is stricter: row level security on where the module
 *   leaves it off; a validated constraint the module adds NOT VALID; fewer grants; a function
 *   that differs only by a fixed search_path; extra columns, constraints, indexes and triggers
 *   on a table the module ports from production (no trigger on a table that holds keys); an
 *   extra policy there that widens nothing (restrictive, or only for roles that bypass RLS); a
 *   policy hardened already as a later migration of the module hardens it; a view over the
 *   module's tables that shows anon and authenticated no row their policies hide (it reads with
 *   the caller's rights, security_invoker, or the policies show them every row anyway); and a
 *   conflict that adoption-decisions.json accepts, by its key, its field and the very live value
 *   that was reviewed (never a missing table, column or function, what a later migration
 *   creates, or an owner problem). Adoption records each, the decision's reason with it, and a
 *   later check holds the database to what was recorded: one changed, removed or weakened since
 *   is a conflict, unless the module itself has it now (a fixed search_path a later migration
 *   set on a function production changed is the module's own change, not drift), and so is a
 *   decided one that the file no longer declares;
 * - `conflict`, refuses: a missing object; a different type, nullability, default, CHECK,
 *   foreign key, index or trigger; an owner that an API role is or can act as, or that the
 *   migrating role cannot act as; anon or authenticated able to bypass the row level security
 *   of the module's tables ({@link API_ROLE_BYPASS_RULE}); RLS off where the module has it on;
 *   a policy that differs or widens access; more grants; what another migration of the module
 *   creates (named, and what to adopt at); anything added to a table the module creates whole;
 *   a view over the module's tables that lets anon or authenticated read, with its owner's
 *   rights, rows that the tables' policies do not show them. With `strict` every difference is a conflict (the exact
 *   comparison), and decisions do not apply.
 *
 * Every other object of the app's schemas (what no migration creates and is not on the module's
 * tables or a view over them) is production's own: adoption records it (productionObjectsQuery),
 * and a check reports any object added, dropped or changed since as a conflict (a comment as
 * equivalent); with nothing recorded (a database the module built), each such object.
 *
 * The schemas themselves are objects too (category `schemas`: grants and comment). One a
 * migration creates is compared by the rules above; one no migration creates (`public`) is
 * production's own, recorded at adoption with its owner; on a database the module built, `public`
 * is compared with the reference's by the rules above (see ComparisonInputs.unrecordedSchemas).
 */

/** The classes of a difference, in the order they are printed. */
export const DIFFERENCE_CLASSES = ['conflict', 'accepted', 'equivalent'] as const

export type DifferenceClass = (typeof DIFFERENCE_CLASSES)[number]

/** The heading each class is printed under, by both paths. */
export const CLASS_HEADINGS: Record<DifferenceClass, string> = {
  conflict:
    'Conflicts (adoption refuses; see the repair plan: npm run migrate:baseline -- <name> --plan):',
  accepted: 'Production has more or is stricter (accepted, and recorded at adoption):',
  equivalent: 'Equivalent (the same schema, spelled differently; never blocks):',
}

/**
 * The tables that production had before this module, which the baseline ports only in part
 * (production's x402_resources has about 80 columns), under each name the migrations give them
 * (ai_models becomes x402_openrouter_models at 006): what production has more on them is
 * accepted. On a table the module creates whole (the OpenRouter keys table), an object no
 * migration creates is a conflict, such as a trigger added by hand to the keys table.
 */
export const PORTED_TABLES: readonly string[] = [
  'ai_models',
  'x402_openrouter_models',
  'x402_resources',
  'x402_user_claude_configs',
]

/**
 * The tables that hold secrets (encrypted keys). A trigger fires with every row written, key
 * included, and can copy it anywhere (as SECURITY DEFINER, past every policy): a trigger no
 * migration creates there is a conflict even on a ported table.
 */
export const SECRET_TABLES: readonly string[] = [
  'x402_user_claude_configs',
  'user_openrouter_integrations',
  'x402_user_openrouter_integrations',
]

/**
 * The roles PostgREST acts as. An object owned by one of them, or by a role one of them can act
 * as, is reachable past row level security (an owner bypasses it and can switch it off).
 */
export const API_ROLES: readonly string[] = [
  'anon',
  'authenticated',
  'service_role',
  'authenticator',
]

/**
 * The rule that row level security holds for Supabase's API roles, and the field its conflicts
 * carry: anon or authenticated a superuser, with BYPASSRLS, or a member (directly or through other
 * roles, with or without INHERIT, as a member may SET ROLE) of a role that is either, or of
 * service_role, whose policies give it every row. Any of these lets every user read and change
 * every other user's rows, stored keys included, through the API. It is reported on each of the
 * module's tables with RLS on; membership in a table's owner is the owner rule's. authenticator
 * does not count: PostgREST runs every request as the role it switches to (SET ROLE), and RLS is
 * checked against that role, never against authenticator's own attributes.
 */
export const API_ROLE_BYPASS_RULE = 'api_role_bypasses_rls'

/** What a removed or weakened accepted difference is told to do. */
const PUT_BACK =
  'accepted at adoption, now removed or weakened: put it back as it was (the repair plan does what it can: npm run migrate:baseline -- <the newest applied migration> --plan)'

/** A difference accepted before (at adoption), which a check holds the database to. */
export interface AcceptedDifferenceRecord {
  key: string
  /** The field, or '' for a whole object that production has more. */
  field: string
  /** The live value that was accepted. */
  live: unknown
}

/**
 * A conflict accepted by an engineer's decision, declared in the repository's reviewed
 * adoption-decisions.json: the difference (its key and field, as the comparison names them), the
 * live value that was reviewed, and why. It is accepted only while the database has exactly that
 * value; adoption records it beside the other accepted differences.
 */
export interface AdoptionDecision {
  key: string
  field: string
  live: unknown
  reason: string
}

/** What the comparison needs besides the live database. */
export interface ComparisonInputs {
  /** The migration compared with. */
  migrationName: string
  /** The module's schema at `migrationName`. */
  expected: SchemaSnapshot
  /** The module's schema at its newest migration. */
  latest: SchemaSnapshot
  /**
   * Every object any migration creates (`<category> <key>`), with the first migration that has
   * it: everything the module owns, at every point of its history.
   */
  createdBy: Record<string, string>
  /** Every difference is a conflict; decisions do not apply. */
  strict?: boolean
  /**
   * The differences accepted at adoption. When given (a check), an `accepted` difference that
   * is not among them, or whose live value changed since, is a conflict. When undefined (an
   * adoption), accepted differences stay accepted.
   */
  acceptedBefore?: AcceptedDifferenceRecord[]
  /** The decisions of adoption-decisions.json: the conflicts they name are accepted. */
  decisions?: readonly AdoptionDecision[]
  /**
   * The objects adoption recorded as production's own (see {@link productionObjectsQuery}). When
   * given (a check), every object of the app's schemas that the module does not cover is held to
   * them: one added, dropped or changed since is a conflict (a changed comment is equivalent),
   * and so is every such object when none is recorded (a database the module built). When
   * undefined (an adoption, a repair plan), they are not compared.
   */
  productionObjects?: ProductionObjectRecord[]
  /**
   * How a check compares a schema that no migration creates (`public`) where adoption recorded
   * no schema: `reference`, with the reference's by the module's rules (a database the module
   * built, never adopted: the reference has `public` as the migrations leave it); `skip`, not at
   * all (a database adopted before schemas were recorded: the check says to adopt again). When
   * undefined (an adoption, a repair plan, or a check of a database whose schemas were recorded),
   * such a schema is production's own: recorded at adoption and held to the record.
   */
  unrecordedSchemas?: 'reference' | 'skip'
}

/**
 * An object of the app's schemas that no migration creates, as adoption recorded it: production's
 * own. Keyed as the comparison keys objects (`<category> <key>`, names outside `public` schema-qualified).
 */
export interface ProductionObjectRecord {
  key: string
  category: string
  table_name: string | null
  object_name: string
  definition: Record<string, unknown>
}

/** A row of {@link comparisonQuery}. */
export interface ComparisonRow {
  class: DifferenceClass
  kind: 'missing' | 'changed' | 'extra'
  category: string
  key: string
  table_name: string | null
  object_name: string
  /** '' for a whole object. */
  field: string
  live: unknown
  expected: unknown
  /** Why it is in its class, in a few words. */
  reason: string
  /** The reason of the decision that accepted it (adoption-decisions.json); null for none. */
  decision: string | null
  /** Whether a decision may accept it, where it is a conflict. */
  decidable: boolean
  /** The line it is printed as, under its class heading. */
  line: string
}

/**
 * The comparison as one SQL query over the live database (its schema `public`, read by
 * {@link snapshotQuery}), with the reference embedded as literals: rows of
 * {@link ComparisonRow}, in print order. Needs `search_path` set to `public` (the snapshot's
 * deparsed names depend on it). Read-only.
 *
 * @example
 * ```ts
 * const { rows } = await sql.raw<ComparisonRow>(comparisonQuery(comparisonInputs(reference))).execute(trx)
 * ```
 */
export function comparisonQuery(inputs: ComparisonInputs): string {
  const reference = Object.fromEntries(
    SCHEMA_OBJECT_CATEGORIES.flatMap((category) =>
      Object.values(inputs.expected[category]).map((object) => [
        `${category} ${schemaObjectKey(category, object)}`,
        { category, table: object.table, name: object.name, definition: object.definition },
      ]),
    ),
  )
  const owned = Object.keys(inputs.createdBy).sort()
  // The newest migration's definition of each policy the compared one has too, where it differs:
  // a database that has it so already is as the module will harden it.
  const later = Object.fromEntries(
    (['policies'] as const).flatMap((category) =>
      Object.values(inputs.latest[category]).flatMap((object) => {
        const key = `${category} ${schemaObjectKey(category, object)}`
        const before = inputs.expected[category][schemaObjectKey(category, object)]
        return before && JSON.stringify(before.definition) !== JSON.stringify(object.definition)
          ? [[key, object.definition]]
          : []
      }),
    ),
  )
  const accepted =
    inputs.acceptedBefore === undefined
      ? 'NULL::jsonb'
      : `${literal(JSON.stringify(inputs.acceptedBefore))}::jsonb`
  const production =
    inputs.productionObjects === undefined
      ? 'NULL::jsonb'
      : `${literal(jsonArrayLines(inputs.productionObjects))}::jsonb`
  const decisions =
    inputs.strict || !inputs.decisions?.length
      ? `'[]'::jsonb`
      : `${literal(JSON.stringify(inputs.decisions))}::jsonb`
  const createdBy = Object.fromEntries(
    Object.entries(inputs.createdBy).filter(
      ([key]) => !key.startsWith('columns ') && !key.startsWith('constraints '),
    ),
  )
  const headings = DIFFERENCE_CLASSES.map(
    (name) => `(${literal(name)}, ${DIFFERENCE_CLASSES.indexOf(name)})`,
  ).join(', ')
  const categories = SCHEMA_OBJECT_CATEGORIES.map(
    (name, index) => `(${literal(name)}, ${index})`,
  ).join(', ')
  return `
WITH live_rows AS (${appSchemasSnapshotQuery()}),
params AS (
  SELECT ${literal(jsonLines(reference))}::jsonb AS reference,
         ${textArray(owned)} AS owned,
         ${literal(jsonLines(inputs.createdBy))}::jsonb AS created_by,
         ${literal(jsonLines(later))}::jsonb AS later,
         ${literal(inputs.migrationName)}::text AS migration,
         ${textArray([...PORTED_TABLES])} AS ported,
         ${textArray([...SECRET_TABLES])} AS secret,
         ${textArray([...API_ROLES])} AS api_roles,
         ${inputs.strict ? 'true' : 'false'} AS strict,
         ${accepted} AS accepted,
         ${decisions} AS decisions,
         ${production} AS production,
         ${inputs.unrecordedSchemas === undefined ? 'NULL::text' : literal(inputs.unrecordedSchemas)} AS unrecorded_schemas
),
${ownershipCtes()},
expected AS (
  SELECT r.key, r.value ->> 'category' AS category, r.value ->> 'table' AS table_name,
         r.value ->> 'name' AS object_name, r.value -> 'definition' AS definition
  FROM params p, jsonb_each(p.reference) AS r
  -- A schema no migration creates (public) is production's own, held to what adoption recorded;
  -- held to the reference only on a database never adopted.
  WHERE r.value ->> 'category' <> 'schemas' OR r.key = ANY (p.owned) OR p.unrecorded_schemas = 'reference'
),
module_tables AS (
  SELECT e.object_name AS name, coalesce((e.definition ->> 'row level security')::boolean, false) AS rls
  FROM expected e WHERE e.category = 'relations'
),
-- Who owns the module's tables and functions, where that opens them to the API: an API role, a
-- role an API role can act as, or a role the migrating role cannot act as (migrations then fail).
owners AS (
  SELECT o.key, o.category, o.table_name, o.object_name, o.owner, r.reason
  FROM (
    SELECT 'relations ' || c.relname AS key, 'relations' AS category, c.relname::text AS table_name,
           c.relname::text AS object_name, c.relowner AS owner
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relname IN (SELECT name FROM module_tables)
    UNION ALL
    SELECT f.key, 'functions', NULL, f.name, p.proowner
    FROM pg_catalog.pg_proc p
    CROSS JOIN LATERAL (SELECT p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS name) AS n
    CROSS JOIN LATERAL (SELECT 'functions ' || n.name AS key, n.name) AS f
    WHERE p.pronamespace = 'public'::regnamespace AND f.key IN (SELECT key FROM expected WHERE category = 'functions')
  ) AS o
  CROSS JOIN params p
  CROSS JOIN LATERAL (SELECT CASE
      WHEN pg_catalog.pg_get_userbyid(o.owner) = ANY (p.api_roles)
        THEN 'an API role owns it: the owner bypasses row level security and can switch it off; give it to the role that runs migrations (ALTER … OWNER TO postgres)'
      WHEN EXISTS (SELECT FROM pg_catalog.pg_roles a WHERE a.rolname = ANY (p.api_roles) AND pg_catalog.pg_has_role(a.oid, o.owner, 'MEMBER'))
        THEN 'an API role is a member of its owner, so it can act as the owner past row level security; revoke that membership, or give the object to the role that runs migrations'
      WHEN NOT pg_catalog.pg_has_role(current_user, o.owner, 'MEMBER')
        THEN 'the role that runs migrations (' || current_user || ') cannot act as its owner, so no migration can change it; give it to that role'
    END AS reason) AS r
  WHERE r.reason IS NOT NULL
),
-- What lets anon or authenticated past row level security (API_ROLE_BYPASS_RULE): one line for
-- all, each cause with its remedy. A membership is named by the role granted to the API role
-- (what to revoke), and, where that role does not bypass itself, by those it leads to.
api_bypass AS (
  SELECT string_agg(a.rolname || ': ' || c.cause, '; ' ORDER BY a.rolname COLLATE "C", c.ordinal, c.cause COLLATE "C") AS live,
         string_agg(c.remedy, '; ' ORDER BY a.rolname COLLATE "C", c.ordinal, c.cause COLLATE "C") AS remedies
  FROM pg_catalog.pg_roles a
  CROSS JOIN LATERAL (
    SELECT 1 AS ordinal, 'a superuser' AS cause, 'ALTER ROLE ' || quote_ident(a.rolname) || ' NOSUPERUSER' AS remedy
    WHERE a.rolsuper
    UNION ALL
    SELECT 2, 'has BYPASSRLS', 'ALTER ROLE ' || quote_ident(a.rolname) || ' NOBYPASSRLS'
    WHERE a.rolbypassrls
    UNION ALL
    SELECT 3, 'a member of ' || g.rolname || coalesce(' (through it of ' || t.roles || ')', ''),
           'REVOKE ' || quote_ident(g.rolname) || ' FROM ' || quote_ident(a.rolname)
    FROM (SELECT DISTINCT m.roleid FROM pg_catalog.pg_auth_members m WHERE m.member = a.oid) AS d
    JOIN pg_catalog.pg_roles g ON g.oid = d.roleid
    CROSS JOIN LATERAL (SELECT g.rolsuper OR g.rolbypassrls OR g.rolname = 'service_role' AS itself) AS s
    CROSS JOIN LATERAL (
      SELECT string_agg(b.rolname, ', ' ORDER BY b.rolname COLLATE "C") AS roles
      FROM pg_catalog.pg_roles b
      WHERE NOT s.itself AND b.oid NOT IN (g.oid, a.oid)
        AND (b.rolsuper OR b.rolbypassrls OR b.rolname = 'service_role')
        AND pg_catalog.pg_has_role(g.oid, b.oid, 'MEMBER')) AS t
    WHERE s.itself OR t.roles IS NOT NULL
  ) AS c
  WHERE a.rolname IN ('anon', 'authenticated')
),
-- A table's columns (name, type, nullability) and keys (primary and unique constraints), to
-- recognise a table renamed by hand: one that has all of them (production's have more).
shapes AS (
  SELECT o.side, o.name, array_agg(o.part) AS shape
  FROM (
    SELECT 'live' AS side, l.table_name AS name, l.category, l.object_name, l.definition FROM live l
    UNION ALL
    SELECT 'expected', e.table_name, e.category, e.object_name, e.definition FROM expected e
  ) AS u
  CROSS JOIN LATERAL (SELECT u.side, u.name, CASE
      WHEN u.category = 'columns'
        THEN u.object_name || ' ' || (u.definition ->> 'type') || CASE WHEN (u.definition ->> 'not null')::boolean THEN ' not null' ELSE '' END
      ELSE u.definition ->> 'definition' END AS part) AS o
  WHERE u.category = 'columns'
     OR (u.category = 'constraints' AND (u.definition ->> 'definition' LIKE 'PRIMARY KEY%' OR u.definition ->> 'definition' LIKE 'UNIQUE%'))
  GROUP BY o.side, o.name
),
-- Views (and materialized views) over the module's tables that let anon or authenticated read,
-- with the view owner's rights, rows that the table's policies would not show them: a view
-- without security_invoker reads past row level security, unless the policies show those roles
-- every row anyway (a permissive SELECT policy USING (true), and no restrictive one).
leaks AS (
  SELECT l.key, string_agg(DISTINCT t.name, ', ') AS tables, string_agg(DISTINCT a.rolname::text, ' and ') AS roles
  FROM live l
  CROSS JOIN LATERAL jsonb_array_elements_text(l.definition -> 'reads') AS t(name)
  JOIN pg_catalog.pg_class c ON c.relnamespace = 'public'::regnamespace AND c.relname = t.name AND c.relkind IN ('r', 'p')
  JOIN pg_catalog.pg_roles a ON a.rolname IN ('anon', 'authenticated')
  WHERE l.category = 'relations' AND l.definition ->> 'kind' IN ('view', 'materialized view') AND l.schema_name = 'public'
    AND NOT coalesce((l.definition ->> 'security invoker')::boolean, false)
    AND t.name IN (SELECT name FROM owned_tables)
    AND c.relrowsecurity
    AND pg_catalog.has_table_privilege(a.oid, ('public.' || quote_ident(l.object_name))::regclass, 'SELECT')
    AND NOT (EXISTS (SELECT FROM pg_catalog.pg_policy o
                     WHERE o.polrelid = c.oid AND o.polpermissive AND o.polcmd IN ('r', '*')
                       AND (0 = ANY (o.polroles) OR a.oid = ANY (o.polroles))
                       AND pg_catalog.pg_get_expr(o.polqual, o.polrelid) = 'true')
             AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy o
                             WHERE o.polrelid = c.oid AND NOT o.polpermissive AND o.polcmd IN ('r', '*')
                               AND (0 = ANY (o.polroles) OR a.oid = ANY (o.polroles))))
  GROUP BY l.key
),
found AS (
  SELECT e.key, e.category, e.table_name, e.object_name, '' AS field, 'missing' AS kind,
         NULL::jsonb AS live, e.definition AS expected, e.definition AS object
  FROM expected e WHERE NOT EXISTS (SELECT FROM live l WHERE l.key = e.key)
    -- What belongs to a missing table is said by the table's own line.
    AND (e.category IN ('schemas', 'relations', 'functions')
         OR EXISTS (SELECT FROM live l WHERE l.category = 'relations' AND l.object_name = e.table_name))
  UNION ALL
  SELECT e.key, e.category, e.table_name, e.object_name, f.field, 'changed', v.live, v.expected, e.definition
  FROM expected e JOIN live l ON l.key = e.key
  CROSS JOIN LATERAL (SELECT jsonb_object_keys(e.definition) UNION SELECT jsonb_object_keys(l.definition)) AS f(field)
  -- A constraint's definition ends in NOT VALID while it is not validated: that is the
  -- 'validated' field's business, not a second difference.
  CROSS JOIN LATERAL (SELECT
      CASE WHEN e.category = 'constraints' AND f.field = 'definition'
           THEN to_jsonb(regexp_replace(l.definition ->> f.field, ' NOT VALID$', '')) ELSE coalesce(l.definition -> f.field, 'null') END AS live,
      CASE WHEN e.category = 'constraints' AND f.field = 'definition'
           THEN to_jsonb(regexp_replace(e.definition ->> f.field, ' NOT VALID$', '')) ELSE coalesce(e.definition -> f.field, 'null') END AS expected
  ) AS v
  WHERE v.live <> v.expected
  UNION ALL
  SELECT l.key, l.category, l.table_name, l.object_name, '', 'extra', l.definition, NULL, l.definition
  FROM live l, params p
  WHERE NOT EXISTS (SELECT FROM expected e WHERE e.key = l.key)
    AND CASE WHEN l.category = 'relations' AND l.definition ->> 'kind' IN ('view', 'materialized view')
               THEN l.key = ANY (p.owned)
                    OR EXISTS (SELECT FROM jsonb_array_elements_text(l.definition -> 'reads') AS t(name) WHERE t.name IN (SELECT name FROM owned_tables))
             WHEN l.category IN ('schemas', 'relations', 'functions') THEN l.key = ANY (p.owned)
             ELSE l.table_name IN (SELECT name FROM module_tables) END
  UNION ALL
  SELECT o.key, o.category, o.table_name, o.object_name, 'owner', 'changed', to_jsonb(pg_catalog.pg_get_userbyid(o.owner)::text),
         to_jsonb('a role no API role can act as'::text), coalesce(l.definition, '{}'::jsonb) || jsonb_build_object('owner problem', o.reason)
  FROM owners o LEFT JOIN live l ON l.key = o.key
  UNION ALL
  SELECT 'relations ' || c.relname, 'relations', c.relname::text, c.relname::text, ${literal(API_ROLE_BYPASS_RULE)}, 'changed',
         to_jsonb(b.live), to_jsonb('anon and authenticated held to its policies'::text),
         coalesce(l.definition, '{}'::jsonb) || jsonb_build_object('api role problem', b.remedies)
  FROM api_bypass b
  JOIN pg_catalog.pg_class c ON c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity
                            AND c.relname IN (SELECT name FROM module_tables)
  LEFT JOIN live l ON l.key = 'relations ' || c.relname
  WHERE b.live IS NOT NULL
),
ruled AS (
  SELECT d.*, r.class, r.reason,
         NOT (d.field IN ('owner', ${literal(API_ROLE_BYPASS_RULE)}) OR (d.kind = 'missing' AND d.category IN ('schemas', 'relations', 'columns', 'functions'))
              OR (d.kind = 'extra' AND d.key = ANY (p.owned))) AS decidable
  FROM found d CROSS JOIN params p
  LEFT JOIN module_tables t ON t.name = d.table_name
  CROSS JOIN LATERAL (SELECT
    CASE
      WHEN d.kind = 'missing' THEN 'conflict'
      WHEN d.field = 'owner' THEN 'conflict'
      WHEN d.field = ${literal(API_ROLE_BYPASS_RULE)} THEN 'conflict'
      WHEN d.kind = 'extra' AND d.key = ANY (p.owned) THEN 'conflict'
      WHEN p.strict THEN 'conflict'
      WHEN d.kind = 'extra' AND d.category = 'relations' AND d.key IN (SELECT key FROM leaks) THEN 'conflict'
      WHEN d.kind = 'extra' AND d.category = 'relations' THEN 'accepted'
      WHEN d.kind = 'extra' AND NOT (d.table_name = ANY (p.ported)) THEN 'conflict'
      WHEN d.kind = 'extra' AND d.category = 'triggers' AND d.table_name = ANY (p.secret) THEN 'conflict'
      WHEN d.kind = 'extra' AND d.category <> 'policies' THEN 'accepted'
      -- A permissive policy for an API role widens access: where the module leaves RLS off today,
      -- a later migration turns it on (008) with no policy for those roles.
      WHEN d.kind = 'extra' AND (NOT (d.live ->> 'permissive')::boolean
                                 OR NOT EXISTS (SELECT FROM unnest(string_to_array(d.live ->> 'roles', ', ')) AS g(role)
                                                WHERE NOT coalesce((SELECT a.rolbypassrls FROM pg_catalog.pg_roles a WHERE a.rolname = g.role), false)))
        THEN 'accepted'
      WHEN d.kind = 'extra' THEN 'conflict'
      WHEN d.field = 'comment' THEN 'equivalent'
      WHEN d.category = 'functions' AND d.field = 'definition'
           AND ${normalisedBody("d.live #>> '{}'")} = ${normalisedBody("d.expected #>> '{}'")} THEN 'equivalent'
      WHEN d.category = 'functions' AND d.field = 'definition' AND (d.live #>> '{}') ~ ${literal(FIXED_SEARCH_PATH)}
           AND NOT (d.expected #>> '{}') ~ ' SET [a-z_.]+ TO '
           AND ${normalisedBody(`regexp_replace(d.live #>> '{}', ${literal(FIXED_SEARCH_PATH)}, '')`)} = ${normalisedBody("d.expected #>> '{}'")}
        THEN 'accepted'
      WHEN d.category = 'constraints' AND d.field = 'definition'
           AND ${allowedValues("d.live #>> '{}'")} = ${allowedValues("d.expected #>> '{}'")} THEN 'equivalent'
      WHEN d.category = 'columns' AND d.field = 'default'
           AND d.live #>> '{}' IN (${SAME_TIME}) AND d.expected #>> '{}' IN (${SAME_TIME}) THEN 'equivalent'
      WHEN d.field IN ('row level security', 'forced row level security', 'validated') AND d.live = 'true' THEN 'accepted'
      WHEN d.field = 'grants' AND jsonb_typeof(d.live) = 'object' AND jsonb_typeof(d.expected) = 'object'
           AND NOT EXISTS (SELECT FROM jsonb_each_text(d.live) AS g
                           WHERE NOT (d.expected ? g.key AND (d.expected ->> g.key LIKE 'ALL%'
                                      OR string_to_array(g.value, ', ') <@ string_to_array(d.expected ->> g.key, ', '))))
        THEN 'accepted'
      -- A policy hardened already the way a later migration of the module hardens it.
      WHEN d.kind = 'changed' AND d.category = 'policies' AND p.later ? d.key
           AND coalesce(p.later -> d.key -> d.field, 'null') = d.live THEN 'accepted'
      ELSE 'conflict'
    END AS class,
    CASE
      WHEN d.kind = 'missing' AND d.category = 'relations' THEN coalesce((
        SELECT 'the database has it as ' || c.object_name || ', the name ' || (p.created_by ->> c.key)
               || ' gives it: adopt at that migration'
        FROM live c
        WHERE c.category = 'relations' AND (p.created_by ->> c.key) > p.migration
          AND ((SELECT s.shape FROM shapes s WHERE s.side = 'live' AND s.name = c.object_name)
                 @> (SELECT s.shape FROM shapes s WHERE s.side = 'expected' AND s.name = d.object_name)
               -- A foreign key of the module that points at it points at that table instead.
               OR EXISTS (SELECT FROM expected f JOIN live g ON g.key = f.key
                          WHERE f.category = 'constraints'
                            AND strpos(f.definition ->> 'definition', 'REFERENCES ' || d.object_name || '(') > 0
                            AND strpos(g.definition ->> 'definition', 'REFERENCES ' || c.object_name || '(') > 0))
        ORDER BY c.object_name COLLATE "C" LIMIT 1), (
        SELECT 'probably renamed: ' || string_agg(c.object_name, ', ' ORDER BY c.object_name COLLATE "C")
               || ' has its columns and keys. Decide whether it is the same table; if so, rename it to '
               || d.object_name || ' by hand, then adopt again'
        FROM live c
        WHERE c.category = 'relations' AND NOT (c.key = ANY (p.owned))
          AND (SELECT s.shape FROM shapes s WHERE s.side = 'live' AND s.name = c.object_name)
           @> (SELECT s.shape FROM shapes s WHERE s.side = 'expected' AND s.name = d.object_name)), 'missing')
      WHEN d.kind = 'missing' THEN 'missing'
      WHEN d.kind = 'extra' AND d.key = ANY (p.owned) AND (p.created_by ->> d.key) > p.migration
        THEN 'a later migration, ' || (p.created_by ->> d.key) || ', creates it: adopt at that migration'
      WHEN d.kind = 'extra' AND d.key = ANY (p.owned)
        THEN 'the module had it from ' || (p.created_by ->> d.key) || ' until a migration up to ' || p.migration
             || ' renamed or dropped it: adopt at the migration whose schema the database has'
      WHEN d.field = 'owner' THEN d.object ->> 'owner problem'
      WHEN d.field = ${literal(API_ROLE_BYPASS_RULE)}
        THEN 'row level security does not hold for them here: through the API they read and change every row, '
             || 'other users'' keys and data included; ' || (d.object ->> 'api role problem')
      WHEN d.kind = 'extra' AND d.category = 'relations' AND d.key IN (SELECT key FROM leaks) THEN (
        SELECT 'a view that reads ' || k.tables || ' with its owner''s rights, past row level security: ' || k.roles
               || ' can read rows through it that the policies of ' || k.tables || ' do not show them; make it WITH (security_invoker = on), '
               || 'or revoke SELECT on it from anon and authenticated'
        FROM leaks k WHERE k.key = d.key)
      WHEN d.kind = 'extra' AND d.category = 'relations' THEN
        'a view over ' || (SELECT string_agg(t.name, ', ' ORDER BY t.name) FROM jsonb_array_elements_text(d.live -> 'reads') AS t(name)
                           WHERE t.name IN (SELECT name FROM owned_tables))
        || CASE WHEN coalesce((d.live ->> 'security invoker')::boolean, false) THEN ' that reads with the caller''s rights (security_invoker)'
                ELSE ' that shows anon and authenticated no row the policies hide' END
      WHEN d.kind = 'extra' AND NOT (d.table_name = ANY (p.ported)) THEN 'no migration creates it, on a table the module creates whole'
      WHEN d.kind = 'extra' AND d.category = 'triggers' AND d.table_name = ANY (p.secret)
        THEN 'a trigger no migration creates, on a table that holds keys: it sees every key written and could copy it'
      WHEN d.kind = 'extra' AND d.category = 'policies' THEN 'a policy no migration creates'
      WHEN d.kind = 'extra' THEN 'no migration creates it'
      WHEN d.field = 'comment' THEN ''
      WHEN d.field IN ('row level security', 'forced row level security') AND d.live = 'true' THEN 'on where the module leaves it off'
      WHEN d.field IN ('row level security', 'forced row level security') THEN 'off where the module has it on'
      WHEN d.category = 'functions' AND d.field = 'definition' AND (d.live #>> '{}') ~ ${literal(FIXED_SEARCH_PATH)}
           AND NOT (d.expected #>> '{}') ~ ' SET [a-z_.]+ TO ' THEN 'a fixed search_path the module lacks'
      WHEN d.category = 'constraints' AND d.field = 'definition'
           AND ${allowedValues("d.live #>> '{}'")} = ${allowedValues("d.expected #>> '{}'")} THEN 'the same allowed values'
      WHEN d.category = 'columns' AND d.field = 'default'
           AND d.live #>> '{}' IN (${SAME_TIME}) AND d.expected #>> '{}' IN (${SAME_TIME}) THEN 'the same time'
      WHEN d.kind = 'changed' AND d.category = 'policies' AND p.later ? d.key
           AND coalesce(p.later -> d.key -> d.field, 'null') = d.live THEN 'as a later migration of the module makes it'
      ELSE ''
    END AS reason) AS r
),
-- A conflict that adoption-decisions.json accepts: the same difference, with the very live value
-- that was reviewed. Never what the migrations themselves need (a missing table, column or
-- function, what a later migration creates) nor an owner problem.
decided AS (
  SELECT r.key, r.category, r.table_name, r.object_name, r.field, r.kind, r.live, r.expected, r.object, r.decidable,
         CASE WHEN x.reason IS NOT NULL THEN 'accepted' ELSE r.class END AS class,
         CASE WHEN x.reason IS NOT NULL THEN concat_ws('; ', nullif(r.reason, ''), 'decided in adoption-decisions.json') ELSE r.reason END AS reason,
         x.reason AS decision
  FROM ruled r CROSS JOIN params p
  LEFT JOIN LATERAL (SELECT a ->> 'reason' AS reason FROM jsonb_array_elements(p.decisions) AS a
                     WHERE a ->> 'key' = r.key AND a ->> 'field' = r.field
                       AND ${sameLive("a -> 'live'", 'r.live', 'r.expected', 'r.category', 'r.field')}
                     LIMIT 1) AS x ON r.class = 'conflict' AND r.decidable
),
held AS (
  SELECT r.*,
    CASE WHEN r.class <> 'accepted' OR p.accepted IS NULL THEN NULL
         WHEN EXISTS (SELECT FROM jsonb_array_elements(p.accepted) a
                      WHERE a ->> 'key' = r.key AND a ->> 'field' = r.field
                        AND ${sameLive("a -> 'live'", 'r.live', 'r.expected', 'r.category', 'r.field')}) THEN 'recorded'
         WHEN EXISTS (SELECT FROM jsonb_array_elements(p.accepted) a
                      WHERE a ->> 'key' = r.key AND a ->> 'field' = r.field) THEN 'changed since it was accepted'
         ELSE 'not accepted at adoption' END AS memory
  FROM decided r CROSS JOIN params p
),
-- What adoption accepted and the database no longer has (dropped, or weakened back), unless the
-- module itself has it now (RLS on from 008): a check reports it.
removed AS (
  SELECT k.key, k.category,
         coalesce(l.table_name, CASE WHEN k.category = 'relations' THEN k.rest WHEN k.category NOT IN ('functions', 'schemas') THEN split_part(k.rest, '.', 1) END) AS table_name,
         coalesce(l.object_name, CASE WHEN k.category IN ('schemas', 'relations', 'functions') THEN k.rest ELSE substr(k.rest, strpos(k.rest, '.') + 1) END) AS object_name,
         k.field, CASE WHEN k.field = '' THEN 'missing' ELSE 'changed' END AS kind,
         CASE WHEN k.field = '' THEN NULL ELSE coalesce(l.definition -> k.field, 'null') END AS live,
         k.accepted AS expected, coalesce(l.definition, k.accepted) AS object
  FROM params p
  CROSS JOIN LATERAL jsonb_array_elements(coalesce(p.accepted, '[]'::jsonb)) AS a
  CROSS JOIN LATERAL (SELECT a ->> 'key' AS key, a ->> 'field' AS field, a -> 'live' AS accepted,
                             split_part(a ->> 'key', ' ', 1) AS category,
                             substr(a ->> 'key', strpos(a ->> 'key', ' ') + 1) AS rest) AS k
  LEFT JOIN live l ON l.key = k.key
  LEFT JOIN expected e ON e.key = k.key
  WHERE NOT EXISTS (SELECT FROM decided r WHERE r.key = k.key AND r.field = k.field)
    AND CASE WHEN k.field = '' THEN l.key IS NULL AND e.key IS NULL
             ELSE l.key IS NOT NULL AND e.key IS NOT NULL AND coalesce(e.definition -> k.field, 'null') <> k.accepted
                  -- The module now has it, or has gone further (fewer grants, the same function).
                  AND NOT (k.field = 'grants' AND jsonb_typeof(e.definition -> k.field) = 'object' AND jsonb_typeof(k.accepted) = 'object'
                           AND NOT EXISTS (SELECT FROM jsonb_each_text(e.definition -> k.field) AS g
                                           WHERE NOT (k.accepted ? g.key AND (k.accepted ->> g.key LIKE 'ALL%'
                                                      OR string_to_array(g.value, ', ') <@ string_to_array(k.accepted ->> g.key, ', ')))))
                  AND NOT (k.category = 'functions' AND k.field = 'definition'
                           AND ${normalisedBody('e.definition ->> k.field')} = ${normalisedBody("k.accepted #>> '{}'")}) END
),
${productionCtes()},
classed AS (
  SELECT m.key, m.category, m.table_name, m.object_name, m.field, m.kind, m.live, m.expected, m.object,
         'conflict' AS class, ${literal(PUT_BACK)} AS reason, NULL::text AS decision, false AS decidable, 'module' AS origin
  FROM removed m
  UNION ALL
  SELECT h.key, h.category, h.table_name, h.object_name, h.field, h.kind, h.live, h.expected, h.object,
         CASE WHEN h.memory IN ('changed since it was accepted', 'not accepted at adoption') THEN 'conflict' ELSE h.class END AS class,
         concat_ws('; ', nullif(h.reason, ''),
                   CASE WHEN h.class = 'equivalent' AND h.category = 'functions' THEN 'the same but for whitespace and letter case' END,
                   CASE WHEN h.memory IN ('changed since it was accepted', 'not accepted at adoption')
                        THEN h.memory || ' (review it, then accept it: npm run migrate:baseline -- <the newest applied migration>)' END) AS reason,
         h.decision, h.decidable AND h.class <> 'accepted', 'module'
  FROM held h
  UNION ALL
  SELECT o.key, o.category, o.table_name, o.object_name, o.field, o.kind, o.live, o.expected, o.object,
         CASE WHEN o.field = 'comment' AND NOT p.strict THEN 'equivalent' ELSE 'conflict' END,
         o.reason, NULL, false, 'production'
  FROM own_found o CROSS JOIN params p
)
SELECT row_number() OVER (ORDER BY o.ordinal, coalesce(c.table_name, '~') COLLATE "C", g.ordinal, c.object_name COLLATE "C", c.field COLLATE "C")::int AS ordinal,
       c.class, c.kind, c.category, c.key, c.table_name, c.object_name, c.field, c.live, c.expected, c.reason, c.decision, c.decidable,
       ${place('c.category', 'c.table_name', 'c.object_name', 'c.object')}
       || CASE
            WHEN c.kind = 'missing' THEN ': missing' || coalesce(': ' || nullif(${summary('c.category', 'c.expected')}, ''), '')
            WHEN c.kind = 'extra' THEN ': extra' || coalesce(': ' || nullif(${summary('c.category', 'c.live')}, ''), '')
            WHEN c.class = 'equivalent' AND c.category = 'functions' THEN ': ' || c.field
            ELSE ': ' || c.field || ': live ' || ${rendered('c.live')}
                 || CASE WHEN c.origin = 'production' THEN ' / recorded ' ELSE ' / expected ' END || ${rendered('c.expected')}
          END
       || CASE WHEN c.reason NOT IN ('', 'missing') THEN ' (' || c.reason || ')' ELSE '' END AS line
FROM classed c
JOIN (VALUES ${headings}) AS o(class, ordinal) ON o.class = c.class
JOIN (VALUES ${categories}) AS g(category, ordinal) ON g.category = c.category
ORDER BY o.ordinal, coalesce(c.table_name, '~') COLLATE "C", g.ordinal, c.object_name COLLATE "C", c.field COLLATE "C"
`
}

/**
 * The CTEs, after `live_rows` (the snapshot of the app's schemas) and `params` (with `owned`),
 * that say what the module's comparison covers and what is production's own:
 * - `app_live`: every object of the app's schemas, keyed (outside `public`, schema-qualified);
 *   `live`: the same, which the module's comparison reads (a migration may create a schema);
 * - `owned_tables`: every relation the module has at some point of its history, under each of
 *   its names (a view that reads one of them is compared by the module's rules);
 * - `covered_relations`: those, and the views of `public` that read one of them: the module's
 *   comparison covers them and everything on them;
 * - `own_live`: the rest, production's own, a relation's or function's owner in its definition.
 *   The columns of a view are left out: its definition says them.
 */
function ownershipCtes(): string {
  return `app_live AS (
  SELECT l.category || ' ' || CASE WHEN l.category = 'relations' OR l.table_name IS NULL THEN l.object_name
                                   ELSE l.table_name || '.' || l.object_name END AS key,
         l.category, l.table_name, l.object_name, l.definition, l.schema_name, l.owner_name
  FROM live_rows l
),
live AS (
  SELECT a.key, a.category, a.table_name, a.object_name, a.definition, a.schema_name FROM app_live a
),
owned_tables AS (
  SELECT substr(o.key, length('relations ') + 1) AS name FROM params p, unnest(p.owned) AS o(key) WHERE o.key LIKE 'relations %'
),
covered_relations AS (
  SELECT name FROM owned_tables
  UNION
  SELECT l.object_name FROM live l
  WHERE l.category = 'relations' AND l.definition ->> 'kind' IN ('view', 'materialized view')
    AND EXISTS (SELECT FROM jsonb_array_elements_text(l.definition -> 'reads') AS t(name) WHERE t.name IN (SELECT name FROM owned_tables))
),
own_live AS (
  -- With its owner: recorded at adoption, and a later ALTER … OWNER TO is drift. Compared with
  -- the recorded owner, never with a role named here.
  SELECT a.key, a.category, a.table_name, a.object_name,
         a.definition || CASE WHEN a.owner_name IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('owner', a.owner_name) END AS definition
  FROM app_live a CROSS JOIN params p
  WHERE NOT (a.key = ANY (p.owned) OR EXISTS (SELECT FROM covered_relations c WHERE c.name = a.table_name))
    AND NOT (a.category = 'columns'
             AND EXISTS (SELECT FROM app_live v WHERE v.category = 'relations' AND v.object_name = a.table_name
                                                  AND v.definition ->> 'kind' IN ('view', 'materialized view')))
)`
}

/** What a difference from production's own objects is told, by kind. */
const PRODUCTION_REASONS = {
  extra:
    "not created by any migration, nor recorded at adoption as production's own: pull it into the history " +
    "(npm run migrate:pull), or review it and record it as production's own (npm run migrate:baseline -- <the newest applied migration>)",
  missing:
    "recorded at adoption as production's own, and gone since: put it back as recorded, or pull the schema into the history " +
    '(npm run migrate:pull), or review it and record the database as it is (npm run migrate:baseline -- <the newest applied migration>)',
  changed:
    "production's own, changed since adoption recorded it: put it back as recorded, or review the change and record it " +
    '(npm run migrate:baseline -- <the newest applied migration>)',
}

/**
 * The CTEs that compare production's own objects (`own_live`) with those recorded at adoption
 * (`params.production`; nothing when it is NULL): `own_found`, one row a difference, with its
 * reason. What belongs to a table that is new or gone is said by the table's own line.
 */
function productionCtes(): string {
  return `own_recorded AS (
  SELECT r ->> 'key' AS key, r ->> 'category' AS category, r ->> 'table_name' AS table_name,
         r ->> 'object_name' AS object_name, r -> 'definition' AS definition
  FROM params p CROSS JOIN LATERAL jsonb_array_elements(p.production) AS r
  -- Recorded before a migration of the module made it the module's: the module's rules compare it now.
  WHERE NOT ((r ->> 'key') = ANY (p.owned) OR EXISTS (SELECT FROM covered_relations c WHERE c.name = r ->> 'table_name'))
),
own_found AS (
  SELECT l.key, l.category, l.table_name, l.object_name, '' AS field, 'extra' AS kind, l.definition AS live,
         NULL::jsonb AS expected, l.definition AS object, ${literal(PRODUCTION_REASONS.extra)} AS reason
  FROM own_live l CROSS JOIN params p
  WHERE p.production IS NOT NULL
    AND NOT EXISTS (SELECT FROM own_recorded r WHERE r.key = l.key)
    -- A schema the module's rules compare (see expected), or one adoption could not record yet.
    AND NOT (l.category = 'schemas' AND (p.unrecorded_schemas = 'skip' OR EXISTS (SELECT FROM expected e WHERE e.key = l.key)))
    AND (l.category IN ('schemas', 'relations', 'functions')
         OR EXISTS (SELECT FROM own_recorded r WHERE r.category = 'relations' AND r.object_name = l.table_name))
  UNION ALL
  SELECT r.key, r.category, r.table_name, r.object_name, '', 'missing', NULL, r.definition, r.definition,
         ${literal(PRODUCTION_REASONS.missing)}
  FROM own_recorded r
  WHERE NOT EXISTS (SELECT FROM own_live l WHERE l.key = r.key)
    AND (r.category IN ('schemas', 'relations', 'functions')
         OR EXISTS (SELECT FROM own_live l WHERE l.category = 'relations' AND l.object_name = r.table_name))
  UNION ALL
  SELECT r.key, r.category, r.table_name, r.object_name, f.field, 'changed',
         coalesce(l.definition -> f.field, 'null'), coalesce(r.definition -> f.field, 'null'), l.definition,
         CASE WHEN f.field = 'comment' THEN '' ELSE ${literal(PRODUCTION_REASONS.changed)} END
  FROM own_recorded r JOIN own_live l ON l.key = r.key
  CROSS JOIN LATERAL (SELECT jsonb_object_keys(r.definition) UNION SELECT jsonb_object_keys(l.definition)) AS f(field)
  WHERE coalesce(l.definition -> f.field, 'null') <> coalesce(r.definition -> f.field, 'null')
    -- A record written before owners were recorded holds the object to the rest.
    AND (f.field <> 'owner' OR r.definition ? 'owner')
)`
}

/**
 * The objects of the app's schemas that the module's comparison does not cover (see
 * ownershipCtes): production's own, which adoption records, as rows of
 * {@link ProductionObjectRecord}, sorted by key. `createdBy` is the reference's (every object
 * any migration creates). Needs `search_path` set to `public`, as the comparison does. Read-only.
 *
 * @example
 * ```ts
 * const { rows } = await sql.raw<ProductionObjectRecord>(productionObjectsQuery(reference.createdBy)).execute(trx)
 * ```
 */
export function productionObjectsQuery(createdBy: Record<string, string>): string {
  return `
WITH live_rows AS (${appSchemasSnapshotQuery()}),
params AS (SELECT ${textArray(Object.keys(createdBy).sort())} AS owned),
${ownershipCtes()}
SELECT o.key, o.category, o.table_name, o.object_name, o.definition FROM own_live o ORDER BY o.key COLLATE "C"
`
}

/** A fixed search_path in a deparsed function header (a list of quoted names, never "$user"). */
const FIXED_SEARCH_PATH = ` SET search_path TO '[^'$]*'(, '[^'$]*')*(?= AS )`

/**
 * SQL: whether `live` is the value `recorded` (at adoption, or in a decision) still: the same, but
 * for an object's comment; and for a function's definition, also where only a fixed search_path
 * differs that the module itself now sets (as the migration compared with has it, in `expected`).
 */
function sameLive(
  recorded: string,
  live: string,
  expected: string,
  category: string,
  field: string,
): string {
  const text = (value: string) => `(${value} #>> '{}')`
  const setting = (value: string) =>
    `substring(${text(value)} FROM ${literal(FIXED_SEARCH_PATH_CLAUSE)})`
  const bare = (value: string) =>
    `regexp_replace(${text(value)}, ${literal(FIXED_SEARCH_PATH)}, '')`
  return `(CASE WHEN jsonb_typeof(${live}) = 'object' AND jsonb_typeof(${recorded}) = 'object' THEN (${recorded}) - 'comment' = (${live}) - 'comment'
                WHEN ${category} = 'functions' AND ${field} = 'definition'
                  THEN ${recorded} = ${live} OR (${bare(recorded)} = ${bare(live)} AND ${setting(live)} IS NOT DISTINCT FROM ${setting(expected)})
                ELSE coalesce(${recorded}, 'null') = coalesce(${live}, 'null') END)`
}

/** {@link FIXED_SEARCH_PATH} as one capturing group, for substring(). */
const FIXED_SEARCH_PATH_CLAUSE = `( SET search_path TO '[^'$]*'(?:, '[^'$]*')*)(?= AS )`

/** The deparsed defaults that all give the transaction's start time. */
const SAME_TIME = ["'now()'", "'CURRENT_TIMESTAMP'", "'transaction_timestamp()'"].join(', ')

/** SQL: a literal or an integer, in a deparsed expression, without its cast. */
const VALUE = `('(?:[^']|'')*'|-?[0-9]+)(?:::[a-z ]+)?`

/**
 * SQL: a CHECK that only lists the values a column may take, as \`column IN (v1, v2)\` with the
 * values sorted: the same for \`col = ANY (ARRAY[…])\` (what \`IN (…)\` is stored as) and for an
 * OR chain of \`col = v\`. NULL for any other CHECK, which then must be spelled the same: a
 * spelling that cannot be proven the same stays a conflict.
 */
function allowedValues(definition: string): string {
  const any = `'^CHECK \\(\\(\\(?([a-z_][a-z0-9_]*)\\)?(?:::[a-z ]+)? = ANY \\(\\(?ARRAY\\[([^]]*)\\]\\)?(?:::[a-z ]+\\[\\])?\\)\\)\\)$'`
  const term = `\\(*([a-z_][a-z0-9_]*)\\)*(?:::[a-z ]+)? = ${VALUE.replaceAll("'", "''")}\\)*`
  return `(SELECT CASE WHEN count(*) > 0 AND count(DISTINCT v.col) = 1
                       THEN min(v.col) || ' IN (' || string_agg(DISTINCT v.val, ', ' ORDER BY v.val) || ')' END
           FROM (SELECT m.any[1] AS col, x[1] AS val
                 FROM (SELECT regexp_match(${definition}, ${any}) AS any) AS m
                 CROSS JOIN LATERAL regexp_matches(m.any[2], '${VALUE.replaceAll("'", "''")}', 'g') AS x
                 WHERE regexp_replace(m.any[2], '${VALUE.replaceAll("'", "''")}(, |$)', '', 'g') = ''
                 UNION ALL
                 SELECT x[1], x[2]
                 FROM (SELECT substring(${definition} FROM '^CHECK \\((.*)\\)$') AS inner) AS c
                 CROSS JOIN LATERAL regexp_matches(c.inner, '${term}', 'g') AS x
                 WHERE ${definition} !~ ' = ANY ' AND regexp_replace(c.inner, '${term}( OR |$)', '', 'g') = '') AS v)`
}

/**
 * SQL: the function definition `body` with letter case folded and whitespace around
 * punctuation dropped, outside string literals and quoted identifiers (the snapshot already
 * turned each run of whitespace into one space).
 */
function normalisedBody(body: string): string {
  return `(SELECT string_agg(CASE WHEN left(t.m[1], 1) IN ('''', '"') THEN t.m[1]
                              ELSE regexp_replace(lower(t.m[1]), '\\s*([^\\w\\s])\\s*', '\\1', 'g') END, '' ORDER BY t.n)
           FROM regexp_matches(${body}, '(''(?:[^'']|'''')*''|"(?:[^"]|"")*"|[^''"]+)', 'g') WITH ORDINALITY AS t(m, n))`
}

/** SQL: a jsonb value as a line shows it: a string bare, null as none, grants as {role: privileges}. */
function rendered(value: string): string {
  return `CASE jsonb_typeof(${value})
           WHEN 'string' THEN ${value} #>> '{}'
           WHEN 'null' THEN 'none'
           WHEN 'object' THEN coalesce('{' || (SELECT string_agg(e.key || ': ' || (e.value #>> '{}'), ', ' ORDER BY e.key COLLATE "C")
                                               FROM jsonb_each(${value}) AS e) || '}', 'none')
           ELSE coalesce(${value}::text, 'none')
         END`
}

/** SQL: where an object is: `x402_resources: index idx_…`, `x402_resources: table`, `function f()`. */
function place(category: string, table: string, name: string, definition: string): string {
  return `CASE
           WHEN ${category} = 'schemas' THEN 'schema ' || ${name}
           WHEN ${category} = 'relations' THEN ${name} || ': ' || coalesce(${definition} ->> 'kind', 'relation')
           WHEN ${table} IS NULL THEN 'function ' || ${name}
           ELSE ${table} || ': '
                || CASE ${category} WHEN 'columns' THEN 'column' WHEN 'constraints' THEN 'constraint' WHEN 'indexes' THEN 'index'
                                    WHEN 'triggers' THEN 'trigger' ELSE 'policy' END
                || ' ' || CASE WHEN ${name} ~ '^[a-z_][a-z0-9_$]*$' THEN ${name} ELSE '"' || ${name} || '"' END
         END`
}

/** SQL: what an object is, in a few words, to name it in a line. */
function summary(category: string, definition: string): string {
  return `CASE ${category}
           WHEN 'columns' THEN ${definition} ->> 'type'
           WHEN 'policies' THEN concat_ws(' ', CASE WHEN (${definition} ->> 'permissive')::boolean THEN NULL ELSE 'AS RESTRICTIVE' END,
                                          'FOR ' || (${definition} ->> 'command') || ' TO ' || (${definition} ->> 'roles'),
                                          'USING ' || (${definition} ->> 'using'), 'WITH CHECK ' || (${definition} ->> 'with check'))
           WHEN 'schemas' THEN ''
           WHEN 'relations' THEN ''
           WHEN 'functions' THEN ''
           ELSE ${definition} ->> 'definition'
         END`
}

function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`
}

/** A JSON object with one entry a line, so that the script reads object by object. */
function jsonLines(object: Record<string, unknown>): string {
  return `{\n${Object.entries(object)
    .map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`)
    .join(',\n')}\n}`
}

/** A JSON array with one element a line. */
function jsonArrayLines(values: readonly unknown[]): string {
  return `[\n${values.map((value) => JSON.stringify(value)).join(',\n')}\n]`
}

function textArray(values: string[]): string {
  if (values.length === 0) return `'{}'::text[]`
  return `ARRAY[\n    ${values.map(literal).join(',\n    ')}\n  ]::text[]`
}

/**
 * SQL: the report of comparison rows stored in `rows` (the result of {@link comparisonQuery},
 * e.g. a temporary table), limited to `classes`: each class's heading, then its lines indented
 * by two spaces; NULL when there is nothing. The SQL script prints with it what
 * formatSchemaDiff prints from the same rows.
 *
 * @example
 * ```ts
 * `SELECT (${comparisonReportQuery('compared', ['conflict'])}) INTO problems;`
 * ```
 */
export function comparisonReportQuery(rows: string, classes: readonly DifferenceClass[]): string {
  const headings = classes
    .map(
      (name) =>
        `(${literal(name)}, ${DIFFERENCE_CLASSES.indexOf(name)}, ${literal(CLASS_HEADINGS[name])})`,
    )
    .join(', ')
  return `SELECT string_agg(s.section, E'\\n' ORDER BY s.ordinal) FROM (
      SELECT h.ordinal, h.heading || E'\\n' || string_agg('  ' || c.line, E'\\n' ORDER BY c.ordinal) AS section
      FROM ${rows} c JOIN (VALUES ${headings}) AS h(class, ordinal, heading) ON h.class = c.class
      GROUP BY h.ordinal, h.heading) AS s`
}
