import { SCHEMA_OBJECT_CATEGORIES, type SchemaSnapshot, schemaObjectKey, snapshotQuery } from './snapshot.js'

/**
 * The one implementation of the rules that compare a live schema with the module's: a single
 * SQL query. `migrate:baseline` and `migrate:check` run it through Kysely; the SQL Editor script
 * of `migrate:sql -- --baseline` runs the very same text inside its guard. So the two paths
 * cannot disagree on a rule, a normalisation or the wording of a line.
 *
 * Each difference is one row, classed:
 * - `equivalent`, never blocks: comment text; a function body that differs only in whitespace
 *   or in the letter case of keywords and unquoted identifiers outside string literals (other
 *   spellings PostgreSQL treats as the same, such as `IN (...)` or `EXECUTE PROCEDURE`, are
 *   deparsed alike by the server and never show up);
 * - `accepted`, production has more or is stricter: row level security on where the module
 *   leaves it off; a validated constraint the module adds NOT VALID; fewer grants; extra
 *   columns, constraints, indexes and triggers on a table the module ports from production; an
 *   extra policy there that widens nothing (restrictive, for roles that bypass RLS anyway, or
 *   on a table where the module leaves RLS off). Adoption records each, and a later check
 *   holds the database to what was recorded;
 * - `conflict`, refuses: a missing object; a different type, nullability, default, CHECK,
 *   foreign key, index or trigger; RLS off where the module has it on; a policy that differs
 *   or widens access; more grants; what a later migration creates; anything added to a table
 *   the module creates whole. With `strict` every difference is a conflict (the exact
 *   comparison).
 */

/** The classes of a difference, in the order they are printed. */
export const DIFFERENCE_CLASSES = ['conflict', 'accepted', 'equivalent'] as const

export type DifferenceClass = (typeof DIFFERENCE_CLASSES)[number]

/** The heading each class is printed under, by both paths. */
export const CLASS_HEADINGS: Record<DifferenceClass, string> = {
  conflict: 'Conflicts (adoption refuses; see the repair plan: npm run migrate:baseline -- <name> --plan):',
  accepted: 'Production has more or is stricter (accepted, and recorded at adoption):',
  equivalent: 'Equivalent (the same schema, spelled differently; never blocks):',
}

/**
 * The tables that production had before this module, which the baseline ports only in part
 * (production's x402_resources has about 80 columns): what production has more on them is
 * accepted. On a table the module creates whole (user_openrouter_integrations), an object no
 * migration creates is a conflict, such as a trigger added by hand to the keys table.
 */
export const PORTED_TABLES: readonly string[] = ['ai_models', 'x402_resources', 'x402_user_claude_configs']

/** A difference accepted before (at adoption), which a check holds the database to. */
export interface AcceptedDifferenceRecord {
  key: string
  /** The field, or '' for a whole object that production has more. */
  field: string
  /** The live value that was accepted. */
  live: unknown
}

/** What the comparison needs besides the live database. */
export interface ComparisonInputs {
  /** The module's schema at the migration compared with. */
  expected: SchemaSnapshot
  /** The module's schema at its newest migration: everything it owns. */
  owned: SchemaSnapshot
  /** Every difference is a conflict. */
  strict?: boolean
  /**
   * The differences accepted at adoption. When given (a check), an `accepted` difference that
   * is not among them, or whose live value changed since, is a conflict. When undefined (an
   * adoption), accepted differences stay accepted.
   */
  acceptedBefore?: AcceptedDifferenceRecord[]
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
 * const { rows } = await sql.raw<ComparisonRow>(comparisonQuery({ expected, owned })).execute(trx)
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
  const owned = SCHEMA_OBJECT_CATEGORIES.flatMap((category) =>
    Object.values(inputs.owned[category]).map((object) => `${category} ${schemaObjectKey(category, object)}`),
  )
  const accepted = inputs.acceptedBefore === undefined ? 'NULL::jsonb' : `${literal(JSON.stringify(inputs.acceptedBefore))}::jsonb`
  const headings = DIFFERENCE_CLASSES.map((name) => `(${literal(name)}, ${DIFFERENCE_CLASSES.indexOf(name)})`).join(', ')
  const categories = SCHEMA_OBJECT_CATEGORIES.map((name, index) => `(${literal(name)}, ${index})`).join(', ')
  return `
WITH live_rows AS (${snapshotQuery('public')}),
params AS (
  SELECT ${literal(jsonLines(reference))}::jsonb AS reference,
         ${textArray(owned)} AS owned,
         ${textArray([...PORTED_TABLES])} AS ported,
         ${inputs.strict ? 'true' : 'false'} AS strict,
         ${accepted} AS accepted
),
live AS (
  SELECT l.category || ' ' || CASE WHEN l.category = 'relations' OR l.table_name IS NULL THEN l.object_name
                                   ELSE l.table_name || '.' || l.object_name END AS key,
         l.category, l.table_name, l.object_name, l.definition
  FROM live_rows l
),
expected AS (
  SELECT r.key, r.value ->> 'category' AS category, r.value ->> 'table' AS table_name,
         r.value ->> 'name' AS object_name, r.value -> 'definition' AS definition
  FROM params p, jsonb_each(p.reference) AS r
),
module_tables AS (
  SELECT e.object_name AS name, coalesce((e.definition ->> 'row level security')::boolean, false) AS rls
  FROM expected e WHERE e.category = 'relations'
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
found AS (
  SELECT e.key, e.category, e.table_name, e.object_name, '' AS field, 'missing' AS kind,
         NULL::jsonb AS live, e.definition AS expected, e.definition AS object
  FROM expected e WHERE NOT EXISTS (SELECT FROM live l WHERE l.key = e.key)
    -- What belongs to a missing table is said by the table's own line.
    AND (e.category IN ('relations', 'functions')
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
    AND CASE WHEN l.category IN ('relations', 'functions') THEN l.key = ANY (p.owned)
             ELSE l.table_name IN (SELECT name FROM module_tables) END
),
ruled AS (
  SELECT d.*, r.class, r.reason
  FROM found d CROSS JOIN params p
  LEFT JOIN module_tables t ON t.name = d.table_name
  CROSS JOIN LATERAL (SELECT
    CASE
      WHEN d.kind = 'missing' THEN 'conflict'
      WHEN d.kind = 'extra' AND d.key = ANY (p.owned) THEN 'conflict'
      WHEN p.strict THEN 'conflict'
      WHEN d.kind = 'extra' AND NOT (d.table_name = ANY (p.ported)) THEN 'conflict'
      WHEN d.kind = 'extra' AND d.category <> 'policies' THEN 'accepted'
      WHEN d.kind = 'extra' AND (NOT t.rls OR NOT (d.live ->> 'permissive')::boolean
                                 OR NOT EXISTS (SELECT FROM unnest(string_to_array(d.live ->> 'roles', ', ')) AS g(role)
                                                WHERE NOT coalesce((SELECT a.rolbypassrls FROM pg_catalog.pg_roles a WHERE a.rolname = g.role), false)))
        THEN 'accepted'
      WHEN d.kind = 'extra' THEN 'conflict'
      WHEN d.field = 'comment' THEN 'equivalent'
      WHEN d.category = 'functions' AND d.field = 'definition'
           AND ${normalisedBody("d.live #>> '{}'")} = ${normalisedBody("d.expected #>> '{}'")} THEN 'equivalent'
      WHEN d.field IN ('row level security', 'forced row level security', 'validated') AND d.live = 'true' THEN 'accepted'
      WHEN d.field = 'grants' AND jsonb_typeof(d.live) = 'object' AND jsonb_typeof(d.expected) = 'object'
           AND NOT EXISTS (SELECT FROM jsonb_each_text(d.live) AS g
                           WHERE NOT (d.expected ? g.key AND (d.expected ->> g.key LIKE 'ALL%'
                                      OR string_to_array(g.value, ', ') <@ string_to_array(d.expected ->> g.key, ', '))))
        THEN 'accepted'
      ELSE 'conflict'
    END AS class,
    CASE
      WHEN d.kind = 'missing' AND d.category = 'relations' THEN coalesce((
        SELECT 'probably renamed: ' || string_agg(c.object_name, ', ' ORDER BY c.object_name COLLATE "C")
               || ' has its columns and keys. Decide whether it is the same table; if so, rename it to '
               || d.object_name || ' by hand, then adopt again'
        FROM live c
        WHERE c.category = 'relations' AND NOT (c.key = ANY (p.owned))
          AND (SELECT s.shape FROM shapes s WHERE s.side = 'live' AND s.name = c.object_name)
           @> (SELECT s.shape FROM shapes s WHERE s.side = 'expected' AND s.name = d.object_name)), 'missing')
      WHEN d.kind = 'missing' THEN 'missing'
      WHEN d.kind = 'extra' AND d.key = ANY (p.owned) THEN 'a later migration creates it: adopt at that migration'
      WHEN d.kind = 'extra' AND NOT (d.table_name = ANY (p.ported)) THEN 'no migration creates it, on a table the module creates whole'
      WHEN d.kind = 'extra' AND d.category = 'policies' THEN 'a policy no migration creates'
      WHEN d.kind = 'extra' THEN 'no migration creates it'
      WHEN d.field = 'comment' THEN ''
      WHEN d.field IN ('row level security', 'forced row level security') AND d.live = 'true' THEN 'on where the module leaves it off'
      WHEN d.field IN ('row level security', 'forced row level security') THEN 'off where the module has it on'
      ELSE ''
    END AS reason) AS r
),
held AS (
  SELECT r.*,
    CASE WHEN r.class <> 'accepted' OR p.accepted IS NULL THEN NULL
         WHEN EXISTS (SELECT FROM jsonb_array_elements(p.accepted) a
                      WHERE a ->> 'key' = r.key AND a ->> 'field' = r.field
                        AND CASE WHEN jsonb_typeof(r.live) = 'object' THEN (a -> 'live') - 'comment' = r.live - 'comment'
                                 ELSE a -> 'live' = r.live END) THEN 'recorded'
         WHEN EXISTS (SELECT FROM jsonb_array_elements(p.accepted) a
                      WHERE a ->> 'key' = r.key AND a ->> 'field' = r.field) THEN 'changed since it was accepted'
         ELSE 'not accepted at adoption' END AS memory
  FROM ruled r CROSS JOIN params p
),
classed AS (
  SELECT h.key, h.category, h.table_name, h.object_name, h.field, h.kind, h.live, h.expected, h.object,
         CASE WHEN h.memory IN ('changed since it was accepted', 'not accepted at adoption') THEN 'conflict' ELSE h.class END AS class,
         concat_ws('; ', nullif(h.reason, ''),
                   CASE WHEN h.class = 'equivalent' AND h.category = 'functions' THEN 'the same but for whitespace and letter case' END,
                   CASE WHEN h.memory IN ('changed since it was accepted', 'not accepted at adoption')
                        THEN h.memory || ' (review it, then accept it: npm run migrate:baseline -- <the newest applied migration>)' END) AS reason
  FROM held h
)
SELECT row_number() OVER (ORDER BY o.ordinal, coalesce(c.table_name, '~') COLLATE "C", g.ordinal, c.object_name COLLATE "C", c.field COLLATE "C")::int AS ordinal,
       c.class, c.kind, c.category, c.key, c.table_name, c.object_name, c.field, c.live, c.expected, c.reason,
       ${place('c.category', 'c.table_name', 'c.object_name', 'c.object')}
       || CASE
            WHEN c.kind = 'missing' THEN ': missing' || coalesce(': ' || nullif(${summary('c.category', 'c.expected')}, ''), '')
            WHEN c.kind = 'extra' THEN ': extra' || coalesce(': ' || nullif(${summary('c.category', 'c.live')}, ''), '')
            WHEN c.class = 'equivalent' AND c.category = 'functions' THEN ': ' || c.field
            ELSE ': ' || c.field || ': live ' || ${rendered('c.live')} || ' / expected ' || ${rendered('c.expected')}
          END
       || CASE WHEN c.reason NOT IN ('', 'missing') THEN ' (' || c.reason || ')' ELSE '' END AS line
FROM classed c
JOIN (VALUES ${headings}) AS o(class, ordinal) ON o.class = c.class
JOIN (VALUES ${categories}) AS g(category, ordinal) ON g.category = c.category
ORDER BY o.ordinal, coalesce(c.table_name, '~') COLLATE "C", g.ordinal, c.object_name COLLATE "C", c.field COLLATE "C"
`
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
  return `{\n${Object.entries(object).map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`).join(',\n')}\n}`
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
    .map((name) => `(${literal(name)}, ${DIFFERENCE_CLASSES.indexOf(name)}, ${literal(CLASS_HEADINGS[name])})`)
    .join(', ')
  return `SELECT string_agg(s.section, E'\\n' ORDER BY s.ordinal) FROM (
      SELECT h.ordinal, h.heading || E'\\n' || string_agg('  ' || c.line, E'\\n' ORDER BY c.ordinal) AS section
      FROM ${rows} c JOIN (VALUES ${headings}) AS h(class, ordinal, heading) ON h.class = c.class
      GROUP BY h.ordinal, h.heading) AS s`
}
