/*
 * A column runs the code of more than its own type's owner. A domain is its base type (a cast
 * from it is the base type's, as an implicit cast function of an enum's owner, which `col = ANY
 * (ARRAY['a'])` runs where the column is of a domain over that enum), and writing it runs its
 * CHECK constraints, with what they call; an array is its element type, a range its subtype, a
 * composite its attributes' types. Review R2 and R1 (a domain of a trusted role over a lesser
 * login's enum, or whose CHECK called that login's function, passed both checks that looked at
 * the column's own type alone: 000→001 ran the cast as postgres, keys:rotate the CHECK as
 * service_role, and migrate:baseline --plan the cast as the operator). This is the one rule of
 * which code a column reaches, for the lesser-code check of the writes (lesser-triggers.ts) and
 * the repair plan's counts of stored rows (adoption/repair-plan.ts).
 */

/**
 * PostgreSQL's FirstNormalObjectId: objects with a lower oid were made by initdb, and are
 * PostgreSQL's own. What a superuser adds to schema pg_catalog later is not (review revn N2:
 * a default operator class, a domain there over a lesser login's code), so the walk tells
 * PostgreSQL's objects apart by oid, never by schema.
 */
export const FIRST_NORMAL_OBJECT_ID = 16384

/** The part of {@link TEXT_RUNNER_NAMES} that runs the code of a type named as text. */
const TYPE_INPUT_NAMES = 'pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in'

/**
 * A regular expression of the names of pg_catalog's functions that run SQL given as text
 * (query_to_xml's kind, ts_stat, ts_rewrite's second form) or the code of a type named as text
 * (pg_input_is_valid, pg_input_error_info; the input functions that take the type's oid:
 * domain_in, record_in, array_in, range_in, multirange_in, review rev5 Y1): pg_depend records
 * nothing of what they run, nor a body's text. The one list, for stored expressions
 * ({@link callsTextRunner}) and for bodies.
 */
export const TEXT_RUNNER_NAMES = '[a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|' + TYPE_INPUT_NAMES

/**
 * A regular expression's alternatives: the C symbols of contrib's functions that run SQL given as
 * text: dblink's, tablefunc's crosstab and connectby, xml2's xpath_table.
 */
export const CONTRIB_TEXT_RUNNER_SYMBOLS =
  'dblink[a-z_]*|crosstab[a-z_0-9]*|connectby[a-z_]*|xpath_table'

/**
 * A condition on `p` (a pg_proc row) and `tree` (a stored expression, as text) that holds where
 * the expression calls one of pg_catalog's functions that run SQL given as text (query_to_xml's
 * kind, ts_stat, ts_rewrite's second form) or the code of a type named as text
 * (pg_input_is_valid, pg_input_error_info): pg_depend records nothing of what they run.
 *
 * @example
 * ```ts
 * `SELECT … FROM attached JOIN pg_proc p ON ${callsTextRunner('p', 'attached.tree')}`
 * ```
 */
export function callsTextRunner(p: string, tree: string): string {
  return `((${p}.pronamespace = 'pg_catalog'::regnamespace
         AND ${p}.proname ~ '^(${TEXT_RUNNER_NAMES})$' AND (${p}.proname <> 'ts_rewrite' OR ${p}.pronargs = 2))
        -- A C function of contrib's that runs SQL given as text, by its symbol (dblink_exec in a
        -- CHECK: review rev3 R9c), whatever its name or schema.
        OR (${p}.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'c')
            AND ${p}.prosrc ~ '^(${CONTRIB_TEXT_RUNNER_SYMBOLS})$'))
       AND ${tree} ~ (':funcid ' || ${p}.oid || '\\M')`
}

/** What {@link callsTextRunner} says a function `p` runs. */
export function textRunnerRuns(p: string): string {
  return `CASE WHEN ${p}.proname ~ '^(${TYPE_INPUT_NAMES})$' AND ${p}.pronamespace = 'pg_catalog'::regnamespace THEN 'the code of a type named as text' ELSE 'SQL given as text' END`
}

/**
 * The oid of the function that a pg_depend row `d` of attached code calls: a function's own, an
 * operator's function; NULL where it names no function.
 *
 * @example
 * ```ts
 * `JOIN pg_proc p ON p.oid = ${calledFunction('d')}`
 * ```
 */
export function calledFunction(d: string): string {
  return `CASE ${d}.refclassid
              WHEN 'pg_proc'::regclass THEN ${d}.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = ${d}.refobjid)
            END`
}

/**
 * Rows `(typ, verb)` of the types a function `p` makes values of: its result (`returns`), its
 * arguments (`takes`) and its OUT parameters (`gives`, of a result that is a record: review revk
 * K6). A function that returns a domain coerces its result to it, running the
 * domain's CHECKs, which pg_depend does not record of the code that calls it (review revj J9).
 *
 * @example
 * ```ts
 * `JOIN pg_proc p ON … CROSS JOIN LATERAL (${functionTypes('p')}) AS ft`
 * ```
 */
export function functionTypes(p: string): string {
  return `SELECT ${p}.prorettype AS typ, 'returns' AS verb
          UNION ALL
          SELECT a.typ, CASE WHEN a.mode IN ('o', 't') THEN 'gives' ELSE 'takes' END
            FROM unnest(coalesce(${p}.proallargtypes, ${p}.proargtypes::oid[]), ${p}.proargmodes) AS a(typ, mode)`
}

/**
 * Rows `(what)` naming the code of a lesser role (`lesser_roles`) that the object a pg_depend row
 * `d` refers to runs: a function, an operator's function, a relation (a view runs its query;
 * `relations` narrows which, as a condition on `c`), an operator class (an index runs its
 * family's support functions and operators' functions, review revj J3). `what` reads
 * `public.f(text), owned by x`.
 *
 * @example
 * ```ts
 * `FROM attached JOIN pg_depend d ON … CROSS JOIN LATERAL (${dependedCode('d')}) AS code`
 * ```
 */
export function dependedCode(d: string, relations = 'true'): string {
  return `SELECT format('%s, owned by %s', p.oid::regprocedure, pg_get_userbyid(p.proowner)) AS what
         FROM pg_proc p
        WHERE p.oid = ${calledFunction(d)}
          AND p.proowner IN (SELECT oid FROM lesser_roles)
       UNION ALL
       SELECT format('relation %s, owned by %s', c.oid::regclass, pg_get_userbyid(c.relowner))
         FROM pg_class c
        WHERE ${d}.refclassid = 'pg_class'::regclass AND c.oid = ${d}.refobjid AND c.relowner IN (SELECT oid FROM lesser_roles)
          AND ${relations}
       UNION ALL
       SELECT format('%s, owned by %s, support function %s of operator class %s.%I', p.oid::regprocedure,
                     pg_get_userbyid(p.proowner), ap.amprocnum, oc.opcnamespace::regnamespace, oc.opcname)
         FROM pg_opclass oc
         JOIN pg_amproc ap ON ap.amprocfamily = oc.opcfamily
         JOIN pg_proc p ON p.oid = ap.amproc
        WHERE ${d}.refclassid = 'pg_opclass'::regclass AND oc.oid = ${d}.refobjid AND p.proowner IN (SELECT oid FROM lesser_roles)
       UNION ALL
       SELECT format('%s, owned by %s, the function of operator %s of operator class %s.%I', p.oid::regprocedure,
                     pg_get_userbyid(p.proowner), o.oid::regoperator, oc.opcnamespace::regnamespace, oc.opcname)
         FROM pg_opclass oc
         JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily
         JOIN pg_operator o ON o.oid = ao.amopopr
         JOIN pg_proc p ON p.oid = o.oprcode
        WHERE ${d}.refclassid = 'pg_opclass'::regclass AND oc.oid = ${d}.refobjid AND p.proowner IN (SELECT oid FROM lesser_roles)`
}

/**
 * The rows of `typed_uses` (see {@link COLUMN_TYPE_CODE_SQL}) for the columns of the relations
 * whose oid (`a.attrelid`) meets `relations`.
 *
 * @example
 * ```ts
 * `typed_uses AS (${columnTypeUses('a.attrelid = ANY (tables)')})`
 * ```
 */
export function columnTypeUses(relations: string): string {
  return `SELECT format('column %I of %s is of type', a.attname, a.attrelid::regclass) AS subject, a.atttypid AS typ
              FROM pg_attribute a WHERE ${relations} AND a.attnum > 0 AND NOT a.attisdropped`
}

/**
 * Rows `(part, refclassid, refobjid)`: what the code of domain `ty` (a pg_type row) refers to, as
 * pg_depend records it: each constraint's (`constraint d_check`), and its default's (`default`, a
 * column of the domain left out of an INSERT takes it; review revm M1), but not its base type.
 * Each constraint's rows are looked up by its oid, behind a fence (OFFSET 0): the planner read
 * every constraint's rows and filtered them by domain, once per type the walk reaches (catalogs'
 * statistics are often stale, a new database has template1's), quadratic in the types: 12 s at
 * 600 tables with a domain and an enum each (review revk K2).
 */
export function domainCode(ty: string): string {
  return `SELECT format('constraint %I', k.conname) AS part, d.refclassid, d.refobjid
            FROM pg_constraint k
           CROSS JOIN LATERAL (SELECT d.refclassid, d.refobjid FROM pg_depend d
                                WHERE d.classid = 'pg_constraint'::regclass AND d.objid = k.oid OFFSET 0) AS d
           WHERE k.contypid = ${ty}.oid
          UNION ALL
          SELECT 'default', d.refclassid, d.refobjid FROM pg_depend d
           WHERE ${ty}.typdefaultbin IS NOT NULL AND d.classid = 'pg_type'::regclass AND d.objid = ${ty}.oid
             AND NOT (d.refclassid = 'pg_type'::regclass AND d.refobjid = ${ty}.typbasetype)`
}

/** Rows `(part, tree)`: the expressions of domain `ty`'s constraints and default, as stored. */
export function domainExpressions(ty: string): string {
  return `SELECT format('constraint %I', k.conname) AS part, k.conbin::text AS tree FROM pg_constraint k WHERE k.contypid = ${ty}.oid
          UNION ALL
          SELECT 'default', ${ty}.typdefaultbin::text WHERE ${ty}.typdefaultbin IS NOT NULL`
}

/** How a row `t` of column_types was reached from its use, after the use's words. */
function way(t: string): string {
  return `format_type(${t}.top, NULL) || CASE WHEN ${t}.parent IS NULL THEN ''
                                         WHEN ${t}.parent = ${t}.top THEN ', ' || ${t}.how
                                         ELSE format(', which reaches %s, %s', format_type(${t}.parent, NULL), ${t}.how) END`
}

/** `to <type>` or `from <type>`: cast `c` seen from type `typ`, in words. */
function castDirection(c: string, typ: string): string {
  return `CASE WHEN ${c}.castsource = ${typ} THEN 'to ' ELSE 'from ' END
                  || format_type(CASE WHEN ${c}.castsource = ${typ} THEN ${c}.casttarget ELSE ${c}.castsource END, NULL)`
}

/**
 * Common table expressions for a `WITH RECURSIVE` that has already defined `lesser_roles` (rows
 * of LESSER_LOGIN_ROLES_SQL, `oid` each role a lesser login can act as) and
 * `typed_uses(subject, typ)` (a type's oid, and what uses it, in words that its name completes:
 * `column network of public.x402_resources is of type`, `constraint c on public.t uses type`):
 * - column_types(subject, top, parent, how, typ): every type a use (of type `top`) reaches, once
 *   per step that reaches it: `parent` (NULL for `top` itself) reaches `typ` as `how` says (`a
 *   domain over other.e`): a domain's base type, an array's element type, a range's subtype, a
 *   multirange's range, a composite's attributes' types, the types a domain's constraints use,
 *   the result and argument types of the functions they call, and those of the functions of
 *   the casts from or to the type, recursively (types initdb made, below
 *   {@link FIRST_NORMAL_OBJECT_ID}, are not opened). No path is kept: the rows are at most
 *   (uses × steps), however deep or wide the types (review revj J1, J8);
 * - column_type_code(problem): where such a type belongs to a lesser role, or has a function
 *   of such a role (input, output, receive, send, typmod, analyze, subscript; a range's
 *   subtype_diff and canonical), or a cast to or from it, an operator on it, or an operator class
 *   it carries (a range's subtype class, a default class) calls one (review revj J2, J3, revk K5,
 *   K1), or a
 *   domain among them has a constraint that calls a function (an operator's too), or uses a
 *   relation, of a lesser role (as pg_depend records it, {@link dependedCode}), or calls one of
 *   pg_catalog's functions that run what text names ({@link callsTextRunner}). Each `problem`
 *   names the use, the type, the step and the owner: `column network of public.x402_resources is
 *   of type public.d, a domain over x.e, owned by x`; a step from a type the use's type reaches
 *   names that type: `… of type public.d1, which reaches public.d9, a domain over x.e, owned by x`.
 *
 * @example
 * ```ts
 * `WITH RECURSIVE lesser_roles AS (${LESSER_LOGIN_ROLES_SQL}),
 *   typed_uses AS (${columnTypeUses('a.attrelid = ANY (tables)')}),
 *   ${COLUMN_TYPE_CODE_SQL}
 *   SELECT string_agg(problem, '; ') FROM column_type_code`
 * ```
 */
export const COLUMN_TYPE_CODE_SQL = `column_types(subject, top, parent, how, typ) AS (
    -- One collation for both terms (a name's is "C", and the words are made of names).
    SELECT c.subject COLLATE "C", c.typ, NULL::oid, NULL::text COLLATE "C", c.typ FROM typed_uses c
    UNION
    -- UNION keeps each (use, step) once: a type reached by many routes is opened once per step
    -- that reaches it, and the walk ends where no step is new, without a depth limit.
    SELECT t.subject, t.top, t.typ, reached.how COLLATE "C", reached.typ
      FROM column_types t JOIN pg_type ty ON ty.oid = t.typ
     CROSS JOIN LATERAL (
       SELECT ty.typbasetype AS typ, format('a domain over %s', format_type(ty.typbasetype, NULL)) AS how
        WHERE ty.typtype = 'd'
       UNION ALL
       SELECT ty.typelem, format('an array of %s', format_type(ty.typelem, NULL)) WHERE ty.typelem <> 0
       UNION ALL
       SELECT r.rngsubtype, format('a range of %s', format_type(r.rngsubtype, NULL)) FROM pg_range r WHERE r.rngtypid = ty.oid
       UNION ALL
       SELECT r.rngtypid, format('a multirange of %s', format_type(r.rngtypid, NULL)) FROM pg_range r WHERE r.rngmultitypid = ty.oid
       UNION ALL
       SELECT a.atttypid, format('whose attribute %I is of type %s', a.attname, format_type(a.atttypid, NULL))
         FROM pg_attribute a WHERE ty.typrelid <> 0 AND a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped
       UNION ALL
       -- A domain's CHECK (or default) that casts to another domain runs that one's CHECKs too.
       SELECT dc.refobjid, format('whose %s uses type %s', dc.part, format_type(dc.refobjid, NULL))
         FROM (${domainCode('ty')}) AS dc
        WHERE dc.refclassid = 'pg_type'::regclass AND dc.refobjid <> ty.oid
       UNION ALL
       -- And one that calls a function returning a domain runs that domain's CHECKs.
       SELECT ft.typ, format('whose %s calls %s, which %s type %s', dc.part, p.oid::regprocedure, ft.verb,
                             format_type(ft.typ, NULL))
         FROM (${domainCode('ty')}) AS dc
         JOIN pg_proc p ON p.oid = ${calledFunction('dc')}
        CROSS JOIN LATERAL (${functionTypes('p')}) AS ft
        WHERE ft.typ <> ty.oid
       UNION ALL
       -- A cast from or to the type makes values of its function's types: one returning a domain
       -- runs that domain's CHECKs (005's down casts resource_type to text; review revk K4).
       SELECT ft.typ, format('whose cast %s calls %s, which %s type %s', ${castDirection('c', 'ty.oid')},
                             p.oid::regprocedure, ft.verb, format_type(ft.typ, NULL))
         FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc
        CROSS JOIN LATERAL (${functionTypes('p')}) AS ft
        WHERE ty.oid IN (c.castsource, c.casttarget) AND ft.typ <> ty.oid
     ) AS reached
     WHERE ty.oid >= ${FIRST_NORMAL_OBJECT_ID}
  ),
  column_type_code(problem) AS (
    SELECT format('%s %s, owned by %s', t.subject, ${way('t')}, pg_get_userbyid(ty.typowner))
      FROM column_types t JOIN pg_type ty ON ty.oid = t.typ
     WHERE ty.typowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- A type's own functions run wherever its values are read, written, compared or indexed
    -- (a GiST index over a range calls its subtype_diff on every insertion).
    SELECT format('%s %s, whose %s function is %s, owned by %s', t.subject, ${way('t')}, f.kind, p.oid::regprocedure,
                  pg_get_userbyid(p.proowner))
      FROM column_types t JOIN pg_type ty ON ty.oid = t.typ
     CROSS JOIN LATERAL (
       VALUES ('input', ty.typinput::oid), ('output', ty.typoutput::oid), ('receive', ty.typreceive::oid),
              ('send', ty.typsend::oid), ('typmod input', ty.typmodin::oid), ('typmod output', ty.typmodout::oid),
              ('analyze', ty.typanalyze::oid), ('subscript', ty.typsubscript::oid)
       UNION ALL
       SELECT 'subtype_diff', r.rngsubdiff::oid FROM pg_range r WHERE r.rngtypid = ty.oid
       UNION ALL
       SELECT 'canonical', r.rngcanonical::oid FROM pg_range r WHERE r.rngtypid = ty.oid
     ) AS f(kind, fn)
      JOIN pg_proc p ON p.oid = f.fn
     WHERE p.proowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- A cast from or to the type, implicit or not (the module's own SQL casts to text), with a
    -- function of such a role. Not initdb's own; nor, on one of PostgreSQL's types, one whose other
    -- type is not PostgreSQL's (only that type's owner may make it, and that type is reached
    -- where the cast runs), but one made between two of them (a superuser's).
    SELECT format('%s %s, whose cast %s calls %s, owned by %s', t.subject, ${way('t')}, ${castDirection('c', 't.typ')},
                  p.oid::regprocedure, pg_get_userbyid(p.proowner))
      FROM column_types t
      JOIN pg_cast c ON t.typ IN (c.castsource, c.casttarget) AND c.oid >= ${FIRST_NORMAL_OBJECT_ID}
       AND (t.typ >= ${FIRST_NORMAL_OBJECT_ID} OR greatest(c.castsource, c.casttarget) < ${FIRST_NORMAL_OBJECT_ID})
      JOIN pg_proc p ON p.oid = c.castfunc
     WHERE p.proowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- An operator on the type (its function, and the planner's estimators), found by the
    -- module's own comparisons where its schema is on the path: 005's down deletes WHERE
    -- resource_type = 'openrouter_instant' (review revk K5). Which ones, as for casts.
    SELECT format('%s %s, whose operator %s calls %s, owned by %s', t.subject, ${way('t')}, o.oid::regoperator,
                  p.oid::regprocedure, pg_get_userbyid(p.proowner))
      FROM column_types t
      JOIN pg_operator o ON t.typ IN (o.oprleft, o.oprright) AND o.oid >= ${FIRST_NORMAL_OBJECT_ID}
       AND (t.typ >= ${FIRST_NORMAL_OBJECT_ID} OR greatest(o.oprleft, o.oprright) < ${FIRST_NORMAL_OBJECT_ID})
      JOIN pg_proc p ON p.oid IN (o.oprcode, o.oprrest, o.oprjoin)
     WHERE p.proowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- An operator class the type carries: a range's subtype class orders the bounds of every
    -- value made, and a type's default classes compare, sort and hash it wherever no index
    -- names one (an array's or a composite's comparison, GROUP BY, DISTINCT; review revk K1).
    -- A default class may be made for a pg_catalog type too (initdb's are declared on anyarray,
    -- anyrange…, and PostgreSQL prefers the exact type; review revm M3).
    SELECT format('%s %s, whose %s operator class calls %s', t.subject, ${way('t')}, cls.kind, code.what)
      FROM column_types t
      JOIN (SELECT 'pg_opclass'::regclass::oid AS refclassid, oc.oid AS refobjid, 'default' AS kind, oc.opcintype AS typ
              FROM pg_opclass oc
             WHERE oc.opcdefault AND oc.oid >= ${FIRST_NORMAL_OBJECT_ID}
            UNION ALL
            SELECT 'pg_opclass'::regclass::oid, r.rngsubopc, 'subtype', r.rngtypid FROM pg_range r) AS cls ON cls.typ = t.typ
     CROSS JOIN LATERAL (${dependedCode('cls')}) AS code
    UNION ALL
    -- A domain's constraint runs whenever a value becomes of the domain, and its default wherever
    -- a column of it is left out, with what they call.
    SELECT format('%s %s, whose %s calls %s', t.subject, ${way('t')}, dc.part, code.what)
      FROM column_types t
      JOIN pg_type ty ON ty.oid = t.typ AND ty.typtype = 'd'
     CROSS JOIN LATERAL (${domainCode('ty')}) AS dc
     CROSS JOIN LATERAL (${dependedCode('dc')}) AS code
    UNION ALL
    SELECT format('%s %s, whose %s calls %s, which runs %s', t.subject, ${way('t')}, de.part,
                  p.oid::regprocedure, ${textRunnerRuns('p')})
      FROM column_types t
      JOIN pg_type ty ON ty.oid = t.typ AND ty.typtype = 'd'
     CROSS JOIN LATERAL (${domainExpressions('ty')}) AS de
      JOIN pg_proc p ON ${callsTextRunner('p', 'de.tree')}
  )`
