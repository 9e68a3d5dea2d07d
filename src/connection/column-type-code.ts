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
  return `${p}.pronamespace = 'pg_catalog'::regnamespace
       AND (${p}.proname ~ '_to_xml' OR ${p}.proname IN ('ts_stat', 'pg_input_is_valid', 'pg_input_error_info')
            OR (${p}.proname = 'ts_rewrite' AND ${p}.pronargs = 2))
       AND ${tree} ~ (':funcid ' || ${p}.oid || '\\M')`
}

/** What {@link callsTextRunner} says a function `p` runs. */
export function textRunnerRuns(p: string): string {
  return `CASE WHEN ${p}.proname LIKE 'pg_input%' THEN 'the code of a type named as text' ELSE 'SQL given as text' END`
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
 * Common table expressions for a `WITH RECURSIVE` that has already defined `lesser_roles` (rows
 * of LESSER_LOGIN_ROLES_SQL, `oid` each role a lesser login can act as) and
 * `typed_uses(subject, typ)` (a type's oid, and what uses it, in words that its name completes:
 * `column network of public.x402_resources is of type`, `constraint c on public.t uses type`):
 * - column_types(subject, typ, path, depth): every type a use reaches: its own, a domain's
 *   base type, an array's element type, a range's subtype, a multirange's range, a composite's
 *   attributes' types, and the types a domain's constraints use, recursively (types of pg_catalog,
 *   the bootstrap superuser's, are not opened); `path` says how, as `public.d, a domain over
 *   other.e`;
 * - column_type_code(problem): where such a type belongs to a lesser role, or a domain
 *   among them has a constraint that calls a function (an operator's too), or uses a type or a
 *   relation, of a lesser role (as pg_depend records it), or calls one of pg_catalog's functions
 *   that run what text names ({@link callsTextRunner}). Each `problem` names the use, the path
 *   and the owner: `column network of public.x402_resources is of type public.d, a domain over
 *   x.e, owned by x`.
 *
 * @example
 * ```ts
 * `WITH RECURSIVE lesser_roles AS (${LESSER_LOGIN_ROLES_SQL}),
 *   typed_uses AS (${columnTypeUses('a.attrelid = ANY (tables)')}),
 *   ${COLUMN_TYPE_CODE_SQL}
 *   SELECT string_agg(problem, '; ') FROM column_type_code`
 * ```
 */
export const COLUMN_TYPE_CODE_SQL = `column_types(subject, typ, path, depth) AS (
    -- One collation for both terms (a name's is "C", and the words are made of names).
    SELECT c.subject COLLATE "C", c.typ, format_type(c.typ, NULL) COLLATE "C", 0 FROM typed_uses c
    UNION
    SELECT t.subject, reached.typ, (t.path || ', ' || reached.how) COLLATE "C", t.depth + 1
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
       -- A domain's CHECK that casts to another domain runs that one's CHECKs too.
       SELECT d.refobjid, format('whose constraint %I uses type %s', k.conname, format_type(d.refobjid, NULL))
         FROM pg_constraint k
         JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid AND d.refclassid = 'pg_type'::regclass
        WHERE k.contypid = ty.oid AND d.refobjid <> ty.oid
     ) AS reached
     WHERE ty.typnamespace <> 'pg_catalog'::regnamespace AND t.depth < 16
  ),
  column_type_code(problem) AS (
    SELECT format('%s %s, owned by %s', t.subject, t.path, pg_get_userbyid(ty.typowner))
      FROM column_types t JOIN pg_type ty ON ty.oid = t.typ
     WHERE ty.typowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- A domain's constraint runs whenever a value becomes of the domain, with what it calls.
    SELECT format('%s %s, whose constraint %I calls %s', t.subject, t.path, k.conname, code.what)
      FROM column_types t
      JOIN pg_constraint k ON k.contypid = t.typ
      JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid
     CROSS JOIN LATERAL (
       SELECT format('%s, owned by %s', p.oid::regprocedure, pg_get_userbyid(p.proowner)) AS what
         FROM pg_proc p
        WHERE p.oid = CASE d.refclassid
                        WHEN 'pg_proc'::regclass THEN d.refobjid
                        WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = d.refobjid)
                      END
          AND p.proowner IN (SELECT oid FROM lesser_roles)
       UNION ALL
       SELECT format('relation %s, owned by %s', c.oid::regclass, pg_get_userbyid(c.relowner))
         FROM pg_class c
        WHERE d.refclassid = 'pg_class'::regclass AND c.oid = d.refobjid AND c.relowner IN (SELECT oid FROM lesser_roles)
     ) AS code
    UNION ALL
    SELECT format('%s %s, whose constraint %I calls %s, which runs %s', t.subject, t.path, k.conname,
                  p.oid::regprocedure, ${textRunnerRuns('p')})
      FROM column_types t
      JOIN pg_constraint k ON k.contypid = t.typ
      JOIN pg_proc p ON ${callsTextRunner('p', 'k.conbin::text')}
  )`
