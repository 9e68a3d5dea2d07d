/*
 * A write runs the triggers of the table it writes, and of every table its foreign keys'
 * actions reach (ON DELETE CASCADE runs as the referencing table's owner) or its rules write,
 * with what their WHEN conditions, constraints and index expressions call; a DDL statement runs
 * the event triggers. That code runs with the power of the session, whoever wrote it (code run under SET
 * ROLE may RESET ROLE). So before the module writes the app's tables, its own bookkeeping in
 * x402_migrations or its backups in x402_backup, it refuses where such code, or one of those
 * tables, or schema x402_backup,
 * belongs to a role that a lesser login role (one that cannot act as the session's user) can act
 * as: that login could change it at any moment.
 * Code of a role nobody logs in as (a platform's own, say) can be changed only by those it trusts.
 *
 * A role with the TRIGGER privilege can attach a trigger too, and Supabase grants it on every table in
 * public to anon, authenticated and service_role, which its `authenticator` login can become.
 * That cannot be refused without refusing every Supabase project, so it is fenced instead: with
 * `lock`, the check first takes ROW EXCLUSIVE on the same tables, in the transaction that then
 * writes them. CREATE TRIGGER needs SHARE ROW EXCLUSIVE, which conflicts, so no trigger can be
 * added between the check and the transaction's end; ROW EXCLUSIVE is what a write takes anyway,
 * and blocks no reader or writer. The views in scope are locked too (an INSTEAD OF trigger is
 * added under SHARE ROW EXCLUSIVE as well; LOCK on a view also locks its relations); a foreign
 * table cannot be locked, nor a view whose owner may not lock its relations: one of those on
 * which a lesser login holds TRIGGER is refused (review revo O6). The fence holds only where the
 * check reads the catalog after its lock: at READ COMMITTED, each statement's snapshot is taken
 * after it, at REPEATABLE READ the transaction's may be older, so the fenced check refuses to run
 * but at READ COMMITTED (review revo O5). No lock stops a CREATE in a schema: a schema on the
 * search path of a body the writes reach, where a lesser login may create (a function or a table
 * made there later would answer the body's bare names), is refused (review revo O7).
 */

import {
  callsTextRunner,
  COLUMN_TYPE_CODE_SQL,
  CONTRIB_TEXT_RUNNER_SYMBOLS,
  calledFunction,
  columnTypeUses,
  dependedCode,
  domainCode,
  domainExpressions,
  FIRST_NORMAL_OBJECT_ID,
  functionTypes,
  TEXT_RUNNER_NAMES,
  textRunnerRuns,
} from './column-type-code.js'
import {
  alteredFunctionSql,
  codeStatementReadSql,
  codeStatementsSql,
  madeWordsSql,
  searchPathListSql,
} from './code-ddl.js'
import { REQUEST_PATH_SCHEMAS } from './request-path-schemas.js'
import { MIGRATION_TABLE_SCHEMA } from './module-schemas.js'
import {
  CATALOG_CHECK_BEGIN,
  CATALOG_CHECK_DECLARE,
  LESSER_LOGIN_ROLES_SQL,
} from './shadowed-catalog.js'

/** The schema where downs keep the rows they take out (down-guard.ts and 005's down make it). */
const BACKUP_SCHEMA = 'x402_backup'

/** SQLSTATE of the refusal: insufficient_privilege, as for a shadowed catalog. */
export const LESSER_TRIGGERS_STATE = '42501'

/**
 * Kinds of node (as a stored expression names them, PostgreSQL 15 to 17) that a trigger's WHEN
 * condition may hold: they run no code but what {@link WHEN_CONDITIONS_SQL} reads from their
 * fields (a function, an operator's function, a type's input or subscripting function), or none
 * (a column, a constant, AND/OR/NOT, IS NULL, CASE, COALESCE, ARRAY[…], ROW(…), a binary-compatible
 * cast, COLLATE). A constant's, a cast's and a column's types are covered apart (pg_depend and
 * the columns' types), with their domains' CHECKs. Any other kind is refused: GREATEST/LEAST (its
 * comparison comes from the type's operator class, not from the tree), current_user and the
 * other values of SQL syntax (not immutable), XML and JSON expressions, and whatever a later
 * PostgreSQL adds.
 */
const WHEN_NODE_KINDS = [
  'VAR',
  'CONST',
  'FUNCEXPR',
  'NAMEDARGEXPR',
  'OPEXPR',
  'DISTINCTEXPR',
  'NULLIFEXPR',
  'SCALARARRAYOPEXPR',
  'ROWCOMPAREEXPR',
  'BOOLEXPR',
  'NULLTEST',
  'BOOLEANTEST',
  'RELABELTYPE',
  'COERCEVIAIO',
  'ARRAYCOERCEEXPR',
  'CONVERTROWTYPEEXPR',
  'COERCETODOMAIN',
  'COLLATEEXPR',
  'CASEEXPR',
  'CASEWHEN',
  'CASETESTEXPR',
  'ARRAYEXPR',
  'ROWEXPR',
  'COALESCEEXPR',
  'FIELDSELECT',
  'SUBSCRIPTINGREF',
]

/**
 * Common table expressions of the check (after `attached`) that read each enabled trigger's WHEN
 * condition on the covered tables node by node. A WHEN condition is code of whoever made the
 * trigger: anyone with the TRIGGER privilege on the table. Built of pg_catalog's functions alone
 * it leaves nothing in pg_depend, and yet it may run code named as text (pg_input_is_valid with
 * a domain's name runs its CHECK), change the session (set_config('search_path', …) puts that
 * role's schema before the migration's unqualified names), or do what only the session's user may
 * (pg_read_file, lo_export, …). So it may call only immutable functions of trusted roles, read
 * from the stored tree (pg_trigger.tgqual): each step takes out the nodes that hold no other
 * (innermost first), so that every node is read once, with its own fields alone; backslash
 * escapes (of strings such as a named argument's name) are taken out first.
 * - when_nodes: each node, with its kind;
 * - when_calls: each function a node calls: `:funcid`, `:opfuncid`, `:hashfuncid`, `:negfuncid`
 *   (0 where not set), `:opno` and each of `:opnos (o …)` through pg_operator.oprcode, the input
 *   function of a COERCEVIAIO's result type (the output function of its argument's type is of a
 *   type covered apart), and the subscripting function of a SUBSCRIPTINGREF's container type;
 * - when_unread: a tree whose braces do not pair up (it could not be read).
 */
const WHEN_CONDITIONS_SQL = `  when_peel AS (
    SELECT t.tgname, t.tgrelid AS tbl,
           regexp_replace(t.tgqual::text, repeat(chr(92), 2) || '.', '_', 'g') AS tree
      FROM covered_triggers t
     WHERE t.tgqual IS NOT NULL
    UNION ALL
    SELECT p.tgname, p.tbl, regexp_replace(p.tree, '[{][^{}]*[}]', '_', 'g')
      FROM when_peel p WHERE p.tree ~ '[{][^{}]*[}]'
  ),
  when_nodes AS (
    SELECT p.tgname, p.tbl, m[1] AS node, substring(m[1] FROM '^[A-Z_]+') AS kind
      FROM when_peel p CROSS JOIN LATERAL regexp_matches(p.tree, '[{]([^{}]*)[}]', 'g') AS m
  ),
  when_unread AS (
    SELECT p.tgname, p.tbl FROM when_peel p WHERE p.tree !~ '[{][^{}]*[}]' AND p.tree ~ '[{}]'
  ),
  when_calls AS (
    SELECT n.tgname, n.tbl, call.fn, call.via
      FROM when_nodes n CROSS JOIN LATERAL (
        SELECT f[1]::oid AS fn, '' AS via FROM regexp_matches(n.node, ':(?:op|hash|neg)?funcid ([0-9]+)', 'g') AS f
         WHERE f[1]::oid <> 0
        UNION ALL
        SELECT o.oprcode::oid, '' FROM regexp_matches(n.node, ':opno ([0-9]+)', 'g') AS x
          LEFT JOIN pg_operator o ON o.oid = x[1]::oid
        UNION ALL
        SELECT o.oprcode::oid, ''
          FROM regexp_matches(n.node, ':opnos [(]o([ 0-9]*)[)]') AS x
         CROSS JOIN LATERAL regexp_split_to_table(btrim(x[1]), ' +') AS opno
          LEFT JOIN pg_operator o ON o.oid = opno::oid
         WHERE opno <> ''
        UNION ALL
        SELECT ty.typinput::oid, format(' (the input function of type %s)', ty.oid::regtype)
          FROM pg_type ty WHERE n.kind = 'COERCEVIAIO' AND ty.oid = substring(n.node FROM ':resulttype ([0-9]+)')::oid
        UNION ALL
        SELECT ty.typsubscript::oid, format(' (the subscripting of type %s)', ty.oid::regtype)
          FROM pg_type ty WHERE n.kind = 'SUBSCRIPTINGREF' AND ty.oid = substring(n.node FROM ':refcontainertype ([0-9]+)')::oid
      ) AS call
  )`

/**
 * The problems (rows of the check's `problems`) that {@link WHEN_CONDITIONS_SQL} finds: a
 * function that is not immutable, one of a lesser role (worded as pg_depend's, so that the same
 * is named once), one that is not there, a kind of node not in {@link WHEN_NODE_KINDS} or without
 * the field that names what it calls, and a tree that could not be read.
 */
const WHEN_PROBLEMS_SQL = `    UNION ALL
    SELECT 2, format('trigger %I on %s calls %s in its WHEN condition%s, which is %s, not immutable', c.tgname,
                     c.tbl::regclass, p.oid::regprocedure, c.via, CASE p.provolatile WHEN 's' THEN 'stable' ELSE 'volatile' END),
           true
      FROM when_calls c JOIN pg_proc p ON p.oid = c.fn
     WHERE p.provolatile <> 'i'
    UNION ALL
    SELECT 2, format('trigger %I on %s calls %s, owned by %s', c.tgname, c.tbl::regclass, p.oid::regprocedure,
                     pg_get_userbyid(p.proowner)), false
      FROM when_calls c JOIN pg_proc p ON p.oid = c.fn
     WHERE p.proowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    SELECT 2, format('trigger %I on %s has a WHEN condition that calls a function the check cannot find%s', c.tgname,
                     c.tbl::regclass, c.via), true
      FROM when_calls c
     WHERE NOT EXISTS (SELECT FROM pg_proc p WHERE p.oid = c.fn)
    UNION ALL
    -- A domain's CHECK runs its owner's code (pg_depend names it too, where it is not pinned).
    SELECT 2, format('trigger %I on %s calls type %s, owned by %s', n.tgname, n.tbl::regclass, ty.oid::regtype,
                     pg_get_userbyid(ty.typowner)), false
      FROM when_nodes n JOIN pg_type ty ON ty.oid = substring(n.node FROM ':resulttype ([0-9]+)')::oid
     WHERE n.kind = 'COERCETODOMAIN' AND ty.typowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    SELECT 2, format('trigger %I on %s has a WHEN condition with %s, which the check cannot vouch for', n.tgname,
                     n.tbl::regclass, CASE n.kind
                       WHEN 'SQLVALUEFUNCTION' THEN 'current_user, current_date or another value of SQL syntax (not immutable)'
                       WHEN 'MINMAXEXPR' THEN 'GREATEST or LEAST (its comparison is not named in the condition)'
                       ELSE format('an expression of kind %s', coalesce(n.kind, 'unknown')) END), true
      FROM when_nodes n
     WHERE n.kind IS NULL OR n.kind NOT IN (${WHEN_NODE_KINDS.map((kind) => `'${kind}'`).join(', ')})
        OR NOT CASE n.kind
                 WHEN 'FUNCEXPR' THEN n.node ~ ':funcid [0-9]+'
                 WHEN 'ROWCOMPAREEXPR' THEN n.node ~ ':opnos [(]o[ 0-9]*[)]'
                 WHEN 'COERCEVIAIO' THEN n.node ~ ':resulttype [0-9]+'
                 WHEN 'COERCETODOMAIN' THEN n.node ~ ':resulttype [0-9]+'
                 WHEN 'SUBSCRIPTINGREF' THEN n.node ~ ':refcontainertype [0-9]+'
                 ELSE n.kind NOT IN ('OPEXPR', 'DISTINCTEXPR', 'NULLIFEXPR', 'SCALARARRAYOPEXPR') OR n.node ~ ':opno [0-9]+'
               END
    UNION ALL
    SELECT 2, format('trigger %I on %s has a WHEN condition the check could not read', u.tgname, u.tbl::regclass), true
      FROM when_unread u`

/**
 * Common table expressions of the check (after `attached`, COLUMN_TYPE_CODE_SQL and
 * {@link WHEN_CONDITIONS_SQL}) that follow what a reached function's body calls (review revs
 * S2). pg_depend records what a SQL-standard body (`BEGIN ATOMIC`) calls, but nothing of an
 * opaque body (PL/pgSQL, SQL without BEGIN ATOMIC, any language but internal and C, whose
 * `prosrc` is a symbol): a trusted trigger function whose body ran `PERFORM its_schema.helper()`
 * ran that lesser login's function with the writer's power. So each function outside
 * PostgreSQL's own that the check reaches is taken to call each function (outside PostgreSQL's
 * own) that its opaque body could resolve to, and each one its BEGIN ATOMIC body depends on; from
 * function to function, through trusted ones. A body could resolve to (the one rule, any case,
 * each part quoted or not; over-counting, never under):
 * - a function `name` of schema `schema` where it holds `schema.name` (space and comments around
 *   the dot allowed, and a database's name before it);
 * - a function of a schema on the search path it runs with where it holds its name as a whole
 *   word: its own `SET search_path` (pg_proc.proconfig) where it has one, else its caller's,
 *   else the session's at the check (`current_schemas(true)`) with the schemas a request runs
 *   with (REQUEST_PATH_SCHEMAS:
 *   measureAccess and the key rotation write as requests); "$user" on any of them taken as each
 *   role the code may run as (`run_as`: the session's and the current user, a role a function
 *   sets, a trusted function's owner: review rev9 R9-1, R9-2); pg_catalog always. An event trigger's
 *   function without a path of its own runs with the path of the DDL that fires it, which a
 *   reached body may run with its own `SET search_path` (a CREATE TEMP TABLE): so with the
 *   session's and, on the next pass, with each path a trusted reached body runs with (review revo
 *   O1; not every function's own, reached or not: review rev-final F2; not a BEGIN ATOMIC body's,
 *   which runs no DDL: rev-last N4). A body that may
 *   change the path as it runs (a SET or set_config of it, or SQL it builds as it runs: setsPath;
 *   a call of an alias of set_config, or a type it names whose domain's CHECK or default calls
 *   set_config: hidden_path_setters, review rev-paths F6) runs with every schema on it, and so does
 *   what it calls without a `SET search_path` of its own (review revu R3); and since a SET LOCAL
 *   outlasts the function, where any reached body does, the check runs again with every body's
 *   bare names resolving in any schema (`anywhere`, review revv V2, V3).
 * So Supabase's storage.search() or storage.extension() (its supabase_storage_admin login's) is
 * not taken as called by a body that holds the word `search` (review revs S2 refined).
 * A relation such a body writes (writtenSql: named after INSERT INTO, UPDATE, DELETE FROM, MERGE
 * INTO, COPY, REFRESH MATERIALIZED VIEW or TRUNCATE, by the same rule, comments counting as space;
 * a BEGIN ATOMIC body read as PostgreSQL prints it, so that what it only reads does not count;
 * a view wherever it is named, as its query runs as the reader) fires its triggers and rules with
 * the writer's power. Its triggers are followed in the same walk (a chain of them costs no pass
 * per link: review revv V6); body_writes lists such relations, and the check runs again with them
 * in its scope (with what their keys' actions and rules reach), until no body writes a relation
 * outside it (review revu R1). A type such a body names (namedTypesSql, by the same rule; a cast
 * to a domain, a variable of one, runs its CHECKs and default with the writer's power) is walked
 * as a column's type is (COLUMN_TYPE_CODE_SQL), on the next pass (body_types; review rev-paths
 * F6). A body that spells a name as U&"…" cannot be read: refused; so is
 * an opaque body that holds a block comment inside another, as a regular expression reads them
 * (NESTED_COMMENT), since PostgreSQL ends a comment at its matching end, the check's regular
 * expressions at the first (review rev-final F5).
 * What dynamic SQL (EXECUTE of a built string) calls cannot be followed, but for the names it
 * holds: a documented limit (it is taken to change the path: setsPath).
 * Supabase's auth functions, those of the owner of auth.users (its supabase_auth_admin login) in
 * a schema auth that a superuser owns (platform_auth), are not refused for their owner: a body's auth.uid() is taken as
 * the platform's, as the stand-in and a policy's auth.uid() take it (the check refuses them where
 * a trigger, a constraint or an expression calls them itself, as before).
 * - reached_functions(what, fn, tbl, typed, event): the functions the writes run, with what
 *   reaches them (and the table whose code it is, where it is one's; `typed` where a column's
 *   type's; `event` where an event trigger's): the
 *   attached code's (pg_depend, an operator's by its function), the WHEN conditions', the enabled
 *   event triggers', those of the types the columns reach (a domain's constraints and default,
 *   the casts and operators that the type walk names), and with `schemas` those schemas' own;
 * - function_paths(fn, path): the schemas of each function's own `SET search_path`;
 * - written_paths(tbl, path): each relation a reached body writes (write_paths), and each of its
 *   partitioned ancestors, with that body's path;
 * - reached_seeds(what, fn, path): where the walk starts: each reached function with each path it
 *   runs with;
 * - body_nodes(fn, path): each function so reached, with the search path it runs with, walked
 *   once; body_edges(caller, caller_path, fn, path, how): what each one's body reaches, and how
 *   (`names`, or `writes T, whose trigger … calls`);
 * - reached_bodies(fn, src, sets_path, unicode_names, nested_comments): each trusted reached body
 *   once, as text;
 * - body_writes(oid, fn, path): the relations that a trusted body of body_nodes writes;
 * - body_types(typ, fn, path): the types that a trusted body of body_nodes names;
 * - body_calls(what, caller, fn, how, unread): what is refused, with each `what` that reaches
 *   it: a lesser login's function `fn` that the trusted body `caller` reaches, and how; or
 *   (`unread`) a trusted body `fn` that the check cannot read, and why (`how`: `U&` where it
 *   spells a name as U&…, `nested comment` where it holds NESTED_COMMENT). Such problems are found first
 *   (body_problems), then walked back over body_edges to the seeds that reach them
 *   (problem_reach): carrying each `what` through the walk cost (whats × edges) rows, the cube of
 *   a hub's tables that each fire every other's trigger (review revo O9).
 */
function bodyCallsSql(schemas: string | undefined): string {
  return `  -- The functions that the server runs without a name in the code, made after initdb: a cast's,
  -- an operator's (and its estimators'), an aggregate's, an operator class's or family's (an
  -- index, a range's bounds: review rev7 OPC1, OPC2, RNG1), a range type's, a type's input,
  -- output and modifier functions (GIST1, TM1), and those an expression of extended statistics
  -- calls (ANALYZE: ST1), an index's expressions or predicate, or an inheritance child's CHECK
  -- (the planner's: rev12); of_lesser_type where the type is a lesser login's own (walked as a type).
  implicit_functions(what, fn, of_lesser_type) AS (
            SELECT format('cast (%s AS %s)', format_type(c.castsource, NULL), format_type(c.casttarget, NULL)), c.castfunc,
                   EXISTS (SELECT FROM pg_type t WHERE t.oid IN (c.castsource, c.casttarget) AND t.typowner IN (SELECT oid FROM lesser_roles))
              FROM pg_cast c WHERE c.oid >= ${FIRST_NORMAL_OBJECT_ID} AND c.castfunc <> 0
            UNION ALL
            SELECT format('operator %s', o.oid::regoperator), f.fn, false
              FROM pg_operator o CROSS JOIN LATERAL (VALUES (o.oprcode::oid), (o.oprrest::oid), (o.oprjoin::oid)) AS f(fn)
             WHERE (o.oid >= ${FIRST_NORMAL_OBJECT_ID} OR f.fn >= ${FIRST_NORMAL_OBJECT_ID}) AND f.fn <> 0
            UNION ALL
            SELECT format('aggregate %s', a.aggfnoid::regprocedure), f.fn, false
              FROM pg_aggregate a
             CROSS JOIN LATERAL (VALUES (a.aggtransfn::oid), (a.aggfinalfn::oid), (a.aggcombinefn::oid), (a.aggserialfn::oid),
                                        (a.aggdeserialfn::oid), (a.aggmtransfn::oid), (a.aggminvtransfn::oid),
                                        (a.aggmfinalfn::oid)) AS f(fn)
             WHERE a.aggfnoid >= ${FIRST_NORMAL_OBJECT_ID} AND f.fn <> 0
            UNION ALL
            SELECT format('operator family %s', f.opfname), a.amproc, false
              FROM pg_amproc a JOIN pg_opfamily f ON f.oid = a.amprocfamily
             -- A function added to a built-in family too (review rev8 OPF1).
             WHERE a.amprocfamily >= ${FIRST_NORMAL_OBJECT_ID} OR a.amproc >= ${FIRST_NORMAL_OBJECT_ID}
            UNION ALL
            SELECT format('type %s', format_type(ty.oid, NULL)), f.fn, ty.typowner IN (SELECT oid FROM lesser_roles)
              FROM pg_type ty
             CROSS JOIN LATERAL (VALUES (ty.typinput::oid), (ty.typoutput::oid), (ty.typreceive::oid), (ty.typsend::oid),
                                        (ty.typmodin::oid), (ty.typmodout::oid), (ty.typanalyze::oid), (ty.typsubscript::oid),
                                        ((SELECT r.rngcanonical::oid FROM pg_range r WHERE r.rngtypid = ty.oid)),
                                        ((SELECT r.rngsubdiff::oid FROM pg_range r WHERE r.rngtypid = ty.oid))) AS f(fn)
             -- A function given to a built-in type too (ALTER TYPE … SET: review rev8 TM2).
             WHERE (ty.oid >= ${FIRST_NORMAL_OBJECT_ID} OR f.fn >= ${FIRST_NORMAL_OBJECT_ID}) AND f.fn <> 0
            UNION ALL
            SELECT format('statistics %I.%I', (SELECT n.nspname FROM pg_namespace n WHERE n.oid = x.stxnamespace), x.stxname),
                   d.refobjid, false
              FROM pg_statistic_ext x JOIN pg_depend d ON d.classid = 'pg_statistic_ext'::regclass AND d.objid = x.oid
             WHERE d.refclassid = 'pg_proc'::regclass
            UNION ALL
            -- What the planner computes for any query on a table, a read too: its indexes'
            -- expressions and predicates (their calls of constant arguments), and, for a query
            -- with a WHERE on an inheritance parent, its children's CHECKs (constraint exclusion):
            -- a body's read, or the down's watch, which reads every table (review rev12).
            SELECT format('index %s', i.indexrelid::regclass), d.refobjid, false
              FROM pg_index i JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
             WHERE d.refclassid = 'pg_proc'::regclass AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
            UNION ALL
            SELECT format('constraint %I on %s', c.conname, c.conrelid::regclass), d.refobjid, false
              FROM pg_constraint c JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = c.oid
             WHERE c.contype = 'c' AND d.refclassid = 'pg_proc'::regclass
               AND c.conrelid IN (SELECT h.inhrelid FROM pg_inherits h)
  ),
  reached_functions(what, fn, tbl, typed, event) AS (
            SELECT format('%s on %s', attached.what, attached.tbl::regclass), ${calledFunction('d')}, attached.tbl, false, false
              FROM attached JOIN pg_depend d ON d.classid = attached.classid AND d.objid = attached.objid
             WHERE d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
            UNION
            SELECT format('trigger %I on %s', c.tgname, c.tbl::regclass), c.fn, c.tbl, false, false FROM when_calls c
            UNION
            SELECT format('event trigger %I', e.evtname), e.evtfoid, NULL, false, true FROM pg_event_trigger e
            UNION
            -- Such a function with a body, trusted (a lesser login's is refused wherever it is): any
            -- body may run it, and so what it calls (review rev6 OP4, CAST4, A2).
            SELECT i.what, i.fn, NULL, false, false FROM implicit_functions i JOIN pg_proc p ON p.oid = i.fn
             WHERE p.prolang IN (SELECT oid FROM opaque_languages) AND p.proowner NOT IN (SELECT oid FROM lesser_roles)
            UNION
            -- A trusted function named as one of pg_catalog's, in a schema of the session's path or
            -- in public (which the catalog reads pin): the module's own unqualified calls
            -- (col_description, obj_description, format…) resolve to it where its argument types
            -- fit better, pg_catalog first on the path or not (review rev13 S1, S2). A lesser
            -- login's is refused before (SHADOWED_CATALOG_SQL).
            SELECT format('function %s, named as one of pg_catalog''s on the search path', p.oid::regprocedure), p.oid, NULL, false, false
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.oid >= ${FIRST_NORMAL_OBJECT_ID} AND p.prolang IN (SELECT oid FROM opaque_languages)
               AND (n.nspname = ANY (session_path) OR n.nspname = 'public') AND n.nspname <> 'pg_catalog'
               AND EXISTS (SELECT FROM pg_proc c WHERE c.pronamespace = 'pg_catalog'::regnamespace AND c.proname = p.proname)
            UNION
            -- A trusted function whose name the check cannot match in a body (a double quote, a
            -- backslash, 63 bytes: see BODY_CALLS_PROBLEMS_SQL): walked, wherever it is (review rev11 R11-10).
            SELECT format('function %s, whose name the check cannot match in a body', p.oid::regprocedure), p.oid, NULL, false, false
              FROM pg_proc p
             WHERE p.oid >= ${FIRST_NORMAL_OBJECT_ID} AND p.prolang IN (SELECT oid FROM opaque_languages)
               AND ${unmatchableName('p.proname')}
            UNION
            SELECT format('type %s', format_type(ty.oid, NULL)), reached.fn, NULL, true, false
              FROM (SELECT DISTINCT t.typ FROM column_types t) AS t JOIN pg_type ty ON ty.oid = t.typ
             CROSS JOIN LATERAL (
               SELECT ${calledFunction('dc')} AS fn FROM (${domainCode('ty')}) AS dc WHERE ty.typtype = 'd'
               UNION ALL
               SELECT c.castfunc FROM pg_cast c
                WHERE ty.oid IN (c.castsource, c.casttarget) AND c.oid >= ${FIRST_NORMAL_OBJECT_ID}
                  AND (ty.oid >= ${FIRST_NORMAL_OBJECT_ID} OR greatest(c.castsource, c.casttarget) < ${FIRST_NORMAL_OBJECT_ID})
               UNION ALL
               SELECT f.fn FROM pg_operator o CROSS JOIN LATERAL (VALUES (o.oprcode::oid), (o.oprrest::oid), (o.oprjoin::oid)) AS f(fn)
                WHERE ty.oid IN (o.oprleft, o.oprright) AND o.oid >= ${FIRST_NORMAL_OBJECT_ID}
                  AND (ty.oid >= ${FIRST_NORMAL_OBJECT_ID} OR greatest(o.oprleft, o.oprright) < ${FIRST_NORMAL_OBJECT_ID})
             ) AS reached${
               schemas
                 ? `
            UNION
            SELECT format('function %s', p.oid::regprocedure), p.oid, NULL, false, false
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY (${schemas})`
                 : ''
             }
  ),
  -- Supabase's auth: schema auth, which a superuser owns (supabase_admin: no lesser login can
  -- make one), and the owner of auth.users (supabase_auth_admin), whose functions auth's are
  -- (see bodyCallsSql; review revz Z4).
  platform_auth AS (
            SELECT n.oid AS nsp, c.relowner AS owner FROM pg_namespace n
              JOIN pg_roles o ON o.oid = n.nspowner AND o.rolsuper
              JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'users' AND c.relkind IN ('r', 'p')
             WHERE n.nspname = 'auth'
  ),
  -- Auth's functions: not refused for their owner, and walked as trusted bodies are, with their
  -- caller's path (auth.uid() calls current_setting() unqualified: review revr R4).
  platform_auth_functions(fn) AS (
            SELECT q.oid FROM pg_proc q JOIN platform_auth a ON a.nsp = q.pronamespace AND a.owner = q.proowner
  ),
  -- Auth's types (aal_level, factor_type…): not walked where auth's own functions name them, take
  -- or return them (review rev8 OR-1, OR-2).
  platform_auth_types(typ) AS (
            SELECT t.oid FROM pg_type t JOIN platform_auth a ON a.nsp = t.typnamespace AND a.owner = t.typowner
  ),
  -- Supabase's Database Webhooks: triggers calling supabase_functions.http_request(), of the
  -- login that owns supabase_functions.hooks, in a schema a superuser owns (no lesser login can
  -- make one), SECURITY DEFINER with a search_path of its own: the platform's, as auth's
  -- functions are (review revw O2), which is trust in that login (review revz Z6).
  platform_webhooks(fn) AS (
            SELECT p.oid FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
              JOIN pg_roles o ON o.oid = n.nspowner AND o.rolsuper
              JOIN pg_class h ON h.relnamespace = n.oid AND h.relname = 'hooks' AND h.relkind = 'r' AND h.relowner = p.proowner
             WHERE n.nspname = 'supabase_functions' AND p.proname = 'http_request' AND p.prosecdef
               AND EXISTS (SELECT FROM unnest(p.proconfig) AS c(setting) WHERE left(c.setting, 12) = 'search_path=')
  ),
  opaque_languages AS (
            SELECT l.oid FROM pg_language l WHERE l.lanname NOT IN ('internal', 'c')
  ),
  -- Each function's own SET search_path: its names unquoted (an unquoted one folded, and as written).
  function_paths(fn, path) AS (
            SELECT p.oid, array_agg(DISTINCT nsp.name) || 'pg_catalog'::name
              FROM pg_proc p CROSS JOIN LATERAL unnest(p.proconfig) AS c(setting)
             CROSS JOIN LATERAL regexp_matches(substr(c.setting, 13), '[[:space:]]*("([^"]|"")*"|[^,"]*)(,|$)', 'g') AS t(m)
             CROSS JOIN LATERAL (SELECT CASE WHEN left(t.m[1], 1) = '"' THEN ARRAY[replace(substr(t.m[1], 2, length(t.m[1]) - 2), '""', '"')]
                                             ELSE ARRAY[lower(regexp_replace(t.m[1], '[[:space:]]+$', '')), regexp_replace(t.m[1], '[[:space:]]+$', '')]
                                        END AS names) AS tok
             -- "$user": whoever the function may run as (run_as).
             CROSS JOIN LATERAL unnest(CASE WHEN '$user' = ANY (tok.names) THEN tok.names || run_as
                                            ELSE tok.names::name[] END) AS nsp(name)
             WHERE left(c.setting, 12) = 'search_path='
             GROUP BY p.oid
  ),
  all_schemas(path) AS (SELECT array_agg(n.nspname) FROM pg_namespace n),
  -- The names a body could name, lower case, each once: a body's words are joined to them, where
  -- a search of each body for each name took a pass over the catalog per body (review revw, cost);
  -- odd names (other characters than a to z, digits and _: a $ may glue a name to a dollar quote) are searched for in the text.
  named_functions AS MATERIALIZED (
            SELECT q.oid, q.proname, lower(q.proname) AS lname, qn.nspname, lower(q.proname) ~ '[^a-z0-9_]' AS odd
              FROM pg_proc q JOIN pg_namespace qn ON qn.oid = q.pronamespace WHERE q.oid >= ${FIRST_NORMAL_OBJECT_ID}
  ),
  named_relations AS MATERIALIZED (
            SELECT c.oid, c.relname, c.relkind, lower(c.relname) AS lname, cn.nspname, lower(c.relname) ~ '[^a-z0-9_]' AS odd
              FROM pg_class c JOIN pg_namespace cn ON cn.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND c.oid >= ${FIRST_NORMAL_OBJECT_ID}
  ),
  named_types AS MATERIALIZED (
            SELECT t.oid, t.typname, lower(t.typname) AS lname, tn.nspname, lower(t.typname) ~ '[^a-z0-9_]' AS odd
              FROM pg_type t JOIN pg_namespace tn ON tn.oid = t.typnamespace WHERE t.oid >= ${FIRST_NORMAL_OBJECT_ID}
  ),
  -- What a write of a relation also writes (firedRelationsSql), for the triggers that a reached
  -- body's write fires beyond the relation it names.
  fired_edges(parent, oid, truncate_only) AS MATERIALIZED (${firedRelationsSql()}
  ),
  -- Each relation a reached body writes (write_paths) with that body's path, and each of its
  -- partitioned ancestors (whose keys' code runs too) with it: expanded once, where a join on
  -- "the relation or one of its ancestors" could not hash and called pg_partition_ancestors once
  -- per reached function and relation (review revo O9).
  written_paths(tbl, path) AS MATERIALIZED (
            SELECT DISTINCT a.tbl, wp.path
              FROM (SELECT (e.value ->> 0)::oid AS tbl, ARRAY(SELECT jsonb_array_elements_text(e.value -> 1))::name[] AS path
                      FROM jsonb_array_elements(write_paths) AS e) AS wp
             CROSS JOIN LATERAL (SELECT wp.tbl UNION SELECT x.relid::oid FROM pg_partition_ancestors(wp.tbl) AS x) AS a(tbl)
  ),
  -- Where the walk starts: each function reached, with the path it runs with: its own, else the
  -- session's; and, for the code of a table a reached body writes (its defaults, CHECKs, rules…,
  -- its partitioned ancestors' keys), that body's (write_paths: reviews revr R1, revp P5); for
  -- the code of the columns' types, which keeps no table, every such body's (revp P1); for an
  -- event trigger's, also every function's own path: DDL that a reached body runs (CREATE TEMP
  -- TABLE) fires the event triggers with the path that body runs with (review revo O1).
  reached_seeds(what, fn, path) AS (
            SELECT r.what, r.fn, coalesce((SELECT f.path FROM function_paths f WHERE f.fn = r.fn), ${SESSION_SEED_PATH})
              FROM reached_functions r WHERE r.fn >= ${FIRST_NORMAL_OBJECT_ID}
            UNION
            SELECT r.what, r.fn, wp.path
              FROM reached_functions r JOIN written_paths wp ON wp.tbl = r.tbl
             WHERE r.fn >= ${FIRST_NORMAL_OBJECT_ID} AND NOT EXISTS (SELECT FROM function_paths f WHERE f.fn = r.fn)
            UNION
            SELECT r.what, r.fn, wp.path
              FROM reached_functions r
             CROSS JOIN (SELECT w.path FROM written_paths w UNION SELECT u.path FROM body_typed_uses u) AS wp
             WHERE r.typed AND r.fn >= ${FIRST_NORMAL_OBJECT_ID} AND NOT EXISTS (SELECT FROM function_paths f WHERE f.fn = r.fn)
            UNION
            -- A path a trusted reached body runs DDL with (the last pass's: ddl_paths), not every
            -- function's own, reached or not (review rev-final F2: the platform's webhook's), nor a
            -- BEGIN ATOMIC body's, which runs none (review rev-last N4).
            SELECT r.what, r.fn, ARRAY(SELECT jsonb_array_elements_text(e.value))::name[]
              FROM reached_functions r CROSS JOIN jsonb_array_elements(ddl_paths) AS e
             WHERE r.event AND r.fn >= ${FIRST_NORMAL_OBJECT_ID} AND NOT EXISTS (SELECT FROM function_paths f WHERE f.fn = r.fn)
            UNION
            -- A function a trusted reached body gives a search path (ALTER FUNCTION … SET
            -- search_path: the last passes' altered_paths), with that path: what it reaches with it
            -- is walked too (review rev6 P1b, P1c). Every function of that name, in any schema.
            -- "$user": whoever it may run as (run_as; reviews rev7 U2, rev8 U3).
            SELECT format('%s, given the search path %s by a body the writes reach', p.oid::regprocedure,
                          array_to_string(a.path, ', ')), p.oid,
                   CASE WHEN '$user' = ANY (a.path) THEN a.path || run_as ELSE a.path END
              FROM (SELECT e.value ->> 0 AS name, ARRAY(SELECT jsonb_array_elements_text(e.value -> 1))::name[] AS path
                      FROM jsonb_array_elements(altered_paths) AS e) AS a
              JOIN pg_proc p ON p.proname = a.name
             WHERE p.oid >= ${FIRST_NORMAL_OBJECT_ID}
  ),
  -- Each function reached, with the path it runs with, walked once (what reaches it is joined
  -- after, from body_edges: review revw, cost).
  body_nodes(fn, path) AS (
            SELECT DISTINCT r.fn, r.path FROM reached_seeds r
            UNION
            SELECT called.fn, called.path FROM body_nodes w CROSS JOIN LATERAL (${calleesSql('w')}) AS called
  ),
  body_edges(caller, caller_path, fn, path, how) AS MATERIALIZED (
            SELECT w.fn, w.path, called.fn, called.path, called.how
              FROM body_nodes w CROSS JOIN LATERAL (${calleesSql('w')}) AS called
  ),
  -- Bodies that may change the path through code their text does not spell (review rev-paths
  -- F6): one that calls an alias of set_config (a function, LANGUAGE internal or C, whose symbol
  -- is set_config_by_name: a superuser's), and one that names a type (body_typed_uses, of the
  -- last pass) whose walk reaches a domain whose CHECK or default calls set_config.
  hidden_path_setters(fn) AS (
            SELECT e.caller FROM body_edges e JOIN pg_proc q ON q.oid = e.fn
             WHERE ${SET_CONFIG_ALIAS('q')}
            UNION
            SELECT u.fn FROM body_typed_uses u
              JOIN column_types t ON t.top = u.typ
              JOIN pg_type ty ON ty.oid = t.typ AND ty.typtype = 'd'
             CROSS JOIN LATERAL (${domainExpressions('ty')}) AS de
             WHERE de.tree ~ ${SET_CONFIG_CALL}
  ),
  -- Each trusted reached body once, as text: an opaque body's source; a BEGIN ATOMIC body as
  -- PostgreSQL prints it, each relation qualified (the check's path is pg_catalog's alone).
  reached_bodies AS MATERIALIZED (
            SELECT p.oid AS fn, b.src, b.lsrc, b.words,
                   (${setsPath('p', 'b.raw')} OR p.oid IN (SELECT h.fn FROM hidden_path_setters h)) AS sets_path,
                   b.raw ~* 'u&[''"]' AS unicode_names,
                   -- Not a BEGIN ATOMIC body: PostgreSQL prints it without its comments.
                   p.prosqlbody IS NULL AND (b.raw ~ ${NESTED_COMMENT} OR b.src ~ ${NESTED_COMMENT}) AS nested_comments,
                   b.raw ~* ${TEXT_RUNNER_CALL} AS runs_text,
                   d.ddl, EXISTS (SELECT FROM unnest(d.ddl) AS s(stmt) WHERE NOT ${codeStatementReadSql('s.stmt')}) AS code_unread,
                   -- A function it makes runs with its callers' path, or its own SET: the types and
                   -- tables its code names are taken as in any schema, as its calls are (C1; review
                   -- rev6 C2, C3).
                   EXISTS (SELECT FROM unnest(d.ddl) AS s(stmt) WHERE s.stmt ~* '^create') AS makes_code,
                   -- A write of a catalog table changes code as DDL does, in no form the check reads:
                   -- a function's path, a trigger enabled (review rev7 X2, X3). pg_settings is a
                   -- set_config (setsPath).
                   EXISTS (SELECT FROM pg_class c
                            WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r' AND c.relname::text = ANY (b.words)
                              AND b.src ~* (${WRITE_REGEX} || '(' || ${DATABASE_PART} || 'pg_catalog' || ${DOT} || ')?'
                                            || ${nameRegex('c.relname')} || ${NAME_END})) AS writes_catalog,
                   -- The check reads strings as PostgreSQL does with standard_conforming_strings on:
                   -- off (the function's own SET, a body's, the session's), '\' || ' is one string,
                   -- and what the check read as code between is not (review rev5 T1).
                   (EXISTS (SELECT FROM unnest(p.proconfig) AS c(setting) WHERE c.setting ~* '^(standard_conforming_strings|backslash_quote)=')
                    OR b.words && ARRAY['standard_conforming_strings', 'backslash_quote']::text[]
                    OR current_setting('standard_conforming_strings') = 'off') AS strings_off
              FROM pg_proc p CROSS JOIN LATERAL (${bodyWordsSql('p')}) AS b
             -- A BEGIN ATOMIC body runs no DDL.
             CROSS JOIN LATERAL (SELECT CASE WHEN p.prosqlbody IS NULL THEN ${codeStatementsSql('b.raw', 'b.words')} ELSE '{}' END AS ddl
                                 OFFSET 0) AS d
             WHERE p.oid IN (SELECT w.fn FROM body_nodes w) AND p.prolang IN (SELECT oid FROM opaque_languages)
               AND (p.proowner NOT IN (SELECT oid FROM lesser_roles) OR p.oid IN (SELECT a.fn FROM platform_auth_functions a))
  ),
  -- The types a trusted reached body names (namedTypesSql), with the path it runs with: a cast
  -- to a domain, a variable of one, runs its CHECKs and default with the writer's power. Walked
  -- as a column's type is, on the next pass (body_typed_uses).
  body_types(typ, fn, path) AS (
            SELECT u.typ, u.fn, u.path FROM (
              SELECT t.oid AS typ, b.fn, w.path
                FROM (SELECT DISTINCT w.fn, w.path FROM body_nodes w) AS w JOIN reached_bodies b ON b.fn = w.fn
               CROSS JOIN LATERAL (${namedTypesSql('b', 'w.path', '(b.sets_path OR b.makes_code)')}) AS t
              UNION
              -- A reached function's arguments and result: a call coerces them to their types, a
              -- domain's CHECKs run (review rev6 DOM1, DOM2). Built-in types carry no code.
              SELECT t.typ, w.fn, w.path
                FROM (SELECT DISTINCT w.fn, w.path FROM body_nodes w) AS w JOIN pg_proc p ON p.oid = w.fn
               CROSS JOIN LATERAL unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]) || p.prorettype) AS t(typ)
               WHERE t.typ >= ${FIRST_NORMAL_OBJECT_ID}
            ) AS u
             WHERE NOT (u.fn IN (SELECT a.fn FROM platform_auth_functions a) AND u.typ IN (SELECT a.typ FROM platform_auth_types a))
  ),
  -- A reached function with its own SET role (or session_authorization) runs as that role, and
  -- "$user" on the path of what it calls is that role's: it may change the path as a body's SET
  -- ROLE does (review rev-paths F5).
  role_setters(fn) AS (
            SELECT DISTINCT w.fn FROM body_nodes w JOIN pg_proc p ON p.oid = w.fn
             WHERE EXISTS (SELECT FROM unnest(p.proconfig) AS c(setting) WHERE c.setting ~* '^(role|session_authorization)=')
  ),
  -- The relations a trusted reached body writes (review revu R1), or reads where it is a view
  -- (its query runs as the reader): named after INSERT INTO, UPDATE, DELETE FROM, MERGE INTO,
  -- COPY, REFRESH MATERIALIZED VIEW or TRUNCATE [TABLE] [ONLY] (any of a TRUNCATE's list), as its
  -- functions are (the same rule; comments count as space, and a database's name may come before
  -- the schema's: review revv V1); a view wherever it is named. A BEGIN ATOMIC body is read as
  -- printed: what it only reads runs nothing of its owner's (review revv V4).
  body_writes(oid, fn, path) AS (
            SELECT fired.oid, b.fn, w.path
              FROM (SELECT DISTINCT w.fn, w.path FROM body_nodes w) AS w JOIN reached_bodies b ON b.fn = w.fn
             CROSS JOIN LATERAL (${writtenSql('b', 'w.path', '(b.sets_path OR b.makes_code)')}) AS c
             -- What the write reaches too: its code runs with the writer's path, and joins the
             -- scope (a TRUNCATE … CASCADE's tables: review revp P2, P4).
             CROSS JOIN LATERAL (${firedClosureSql('c.oid', 'b')}) AS fired
  ),
  -- What is refused of the walk, found first (review revo O9: carrying each starting \`what\`
  -- through every edge made (whats × edges) rows, the cube of a hub's tables that each fire every
  -- other's trigger): a lesser login's function that a trusted body reaches (calleesSql follows no
  -- other body), with how; and a trusted body that the check cannot read (\`unread\`: caller and
  -- fn are that body, how why: U&… or a nested comment).
  body_problems(caller, caller_path, fn, how, unread) AS (
            SELECT e.caller, e.caller_path, e.fn, e.how, false
              FROM body_edges e JOIN pg_proc q ON q.oid = e.fn
             WHERE q.proowner IN (SELECT oid FROM lesser_roles)
               AND q.oid NOT IN (SELECT a.fn FROM platform_auth_functions a)
            UNION
            -- Each reason a body cannot be read, its \`how\`.
            SELECT w.fn, w.path, w.fn, u.how, true
              FROM body_nodes w JOIN reached_bodies b ON b.fn = w.fn
             CROSS JOIN LATERAL (VALUES ('U&' COLLATE "C", b.unicode_names), ('nested comment', b.nested_comments),
                                        ('text runner', b.runs_text), ('code', b.code_unread),
                                        ('strings', b.strings_off), ('catalog', b.writes_catalog)) AS u(how, found)
             WHERE u.found
            UNION
            -- An alias of pg_catalog's (internal or C, of the same symbol, which only a superuser
            -- makes) under another name: found by its symbol, as set_config's (review rev3 R8b).
            SELECT e.caller, e.caller_path, e.caller, 'text runner' COLLATE "C", true
              FROM body_edges e
             -- Read once, and body_edges not at all where there is none (per edge, it doubled the
             -- check's time on the bench's hub).
             WHERE EXISTS (${TEXT_RUNNER_ALIASES}) AND e.fn IN (${TEXT_RUNNER_ALIASES})
  ),
  -- Back from each problem's body (with its path) over body_edges to every node that reaches it,
  -- each once per problem (caller, how, fn, unread: what its message names).
  problem_reach(node, node_path, caller, fn, how, unread) AS (
            SELECT p.caller, p.caller_path, p.caller, p.fn, p.how, p.unread FROM body_problems p
            UNION
            SELECT e.caller, e.caller_path, r.caller, r.fn, r.how, r.unread
              FROM problem_reach r JOIN body_edges e ON e.fn = r.node AND e.path = r.node_path
  ),
  -- Each problem with each \`what\` whose seed reaches it: one row per (what, caller, how, fn).
  body_calls(what, caller, fn, how, unread) AS (
            SELECT DISTINCT s.what, r.caller, r.fn, r.how, r.unread
              FROM problem_reach r JOIN reached_seeds s ON s.fn = r.node AND s.path = r.node_path
  )`
}

/**
 * SQL (in the check's WITH, as `anywhere` stands): the path code runs with where it sets none:
 * every schema where a reached body may change the path, else the session's with the schemas a
 * request runs with.
 */
/**
 * SQL: whether the name `name` is one the check cannot match in a body's text: it holds a double
 * quote (which a body doubles) or a backslash (escapesReadSql reads it away), or is 63 bytes long,
 * to which PostgreSQL cuts a longer name (reviews rev10 R10-5, R10-6, rev11 R11-10).
 */
const unmatchableName = (name: string) =>
  `(strpos(${name}, '"') > 0 OR strpos(${name}, chr(92)) > 0 OR octet_length(${name}) = 63)`

/** How lesser_grantees names PUBLIC's logins. */
const PUBLIC_LOGIN = `'any login (one made after this check too)'`

/**
 * SQL: what follows a lesser_grantees row `h`'s login in a message: the right granted to PUBLIC,
 * or the role it holds it as.
 */
const grantedAs = (h: string) =>
  `CASE WHEN ${h}.grantee = 0 THEN ' (granted to PUBLIC)' WHEN ${h}.rolname <> ${h}.login THEN format(' (as %s)', ${h}.rolname) ELSE '' END`

/** SQL: whom a message's REVOKE names for a lesser_grantees row `h`. */
const revokeFrom = (h: string) =>
  `CASE WHEN ${h}.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(${h}.rolname) END`

/** SQL: whether PUBLIC may create schemas in the current database. */
const PUBLIC_CREATES_SCHEMAS = `EXISTS (SELECT FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) AS a
                   WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CREATE')`

/**
 * SQL: whether the lesser_grantees row `h` may create schemas in the current database: PUBLIC
 * where it is granted so, a lesser login's role where it is granted otherwise (not twice).
 */
const createsSchemas = (h: string) => `CASE WHEN ${h}.grantee = 0 THEN ${PUBLIC_CREATES_SCHEMAS}
                ELSE has_database_privilege(${h}.grantee, current_database(), 'CREATE') AND NOT ${PUBLIC_CREATES_SCHEMAS} END`

/**
 * SQL (rows, for EXISTS): rights granted to PUBLIC that any login, one made later too, could
 * use to put code where a write runs it: CREATE on a schema or the database, TRIGGER on a
 * relation. Where there is none and no lesser login, the check reads nothing more (review rev8 R8-2).
 */
const PUBLIC_GRANTS_SQL = `SELECT FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) AS a
                WHERE a.grantee = 0 AND a.privilege_type = 'CREATE'
               UNION ALL
               SELECT FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
                WHERE a.grantee = 0 AND a.privilege_type = 'TRIGGER'
               UNION ALL
               SELECT WHERE ${PUBLIC_CREATES_SCHEMAS}`

const SESSION_SEED_PATH = `(CASE WHEN anywhere THEN (SELECT a.path FROM all_schemas a)
                                 ELSE session_path || ARRAY[${REQUEST_PATH_SCHEMAS.map((name) => `'${name}'`).join(', ')}]::name[] END)`

/**
 * SQL (a query of rows parent, oid, truncate_only): what a write of the relation `parent` also
 * writes, and whose triggers, rules and defaults it then runs: the tables whose foreign keys'
 * actions it reaches, its inheritance children and partitions, what its rules write or read, and
 * a view's relations; and, `truncate_only`, the tables of the keys without an action, which only
 * TRUNCATE … CASCADE empties (and fires their TRUNCATE triggers). One rule for the check's scope
 * and for what a reached body's write reaches (reviews revz Z1, revr R2, revp P6).
 */
function firedRelationsSql(): string {
  return `
      SELECT k.confrelid, k.conrelid, NOT (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))
        FROM pg_constraint k WHERE k.contype = 'f'
      UNION ALL
      SELECT i.inhparent, i.inhrelid, false FROM pg_inherits i
      UNION ALL
      -- A rule's action writes other tables, and runs their triggers with the writer's power; it
      -- reads what it names, and a view it reads (its _RETURN rule) reads its own relations, whose
      -- policies run with the writer's power too. A foreign table so written or read too: it takes
      -- triggers, and cannot be locked against a new one (review rev-final F6: left out, it was
      -- never in scope, its triggers never read, and a lesser TRIGGER holder on it never refused).
      SELECT r.ev_class, d.refobjid, false FROM pg_rewrite r
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
        JOIN pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p', 'v', 'f')`
}

/**
 * SQL (a subquery of rows oid, LATERAL to the relation `rel` that the body row `b` writes): `rel`
 * and what writing it reaches (fired_edges), keys without an action only where the body may
 * TRUNCATE.
 */
function firedClosureSql(rel: string, b: string): string {
  return `WITH RECURSIVE fired(oid) AS (
            SELECT ${rel} UNION
            SELECT e.oid FROM fired f JOIN fired_edges e ON e.parent = f.oid AND (NOT e.truncate_only OR strpos(${b}.lsrc, 'truncate') > 0))
          SELECT fired.oid FROM fired`
}

/**
 * SQL (a subquery, LATERAL to a row `node` of body_nodes: fn, path): each function the body of
 * `node.fn` reaches, with the path it runs with and how (see bodyCallsSql): the functions its
 * opaque body names, those its BEGIN ATOMIC body depends on, and the triggers of the relations
 * it writes outside the scope (followed in the same walk, so that a chain of them costs no pass
 * per link: review revv V6; the rest of such a relation's code is checked on the next pass, with
 * it in scope). None from a body of a lesser role (refused itself), nor Supabase's auth functions.
 */
function calleesSql(node: string): string {
  return `SELECT called.fn,
                   coalesce((SELECT f.path FROM function_paths f WHERE f.fn = called.fn),
                            CASE WHEN sets_path.anywhere THEN (SELECT a.path FROM all_schemas a) ELSE ${node}.path END) AS path,
                   called.how
              FROM pg_proc p
             -- A body that changes its path as it runs (SET LOCAL search_path, set_config(…)): its bare
             -- names, and those of what it calls without a path of its own, resolve in any schema
             -- (review revu R3); those of every other body too, on the next pass (anywhere: review revv V2).
             -- OFFSET 0 (here and below): computed once per body, before the names are matched, not
             -- pushed down into the scan of every candidate name.
             CROSS JOIN LATERAL (${bodyWordsSql('p')}) AS b
             CROSS JOIN LATERAL (SELECT p.prosqlbody IS NULL AND ${setsPath('p', 'b.raw')} AS anywhere,
                                        CASE WHEN p.prosqlbody IS NULL THEN ${madeWordsSql('b.raw', 'b.words')} ELSE '{}' END AS made_words
                                 OFFSET 0) AS sets_path
             CROSS JOIN LATERAL (
               SELECT q.oid AS fn, 'names' COLLATE "C" AS how
                 FROM (SELECT q.* FROM unnest(b.words) AS ws(w) JOIN named_functions q ON q.lname = ws.w
                       UNION ALL
                       SELECT q.* FROM named_functions q WHERE q.odd AND strpos(b.lsrc, q.lname) > 0
                       OFFSET 0) AS q
                WHERE p.prosqlbody IS NULL
                  AND (((sets_path.anywhere OR q.nspname = ANY (${node}.path))
                        AND b.src ~* (${NAME_START} || ${nameRegex('q.proname')} || ${NAME_END}))
                       OR (strpos(b.lsrc, lower(q.nspname)) > 0
                           AND b.src ~* (${NAME_START} || ${nameRegex('q.nspname')} || ${DOT}
                                            || ${nameRegex('q.proname')} || ${NAME_END})))
               UNION ALL
               -- The names of a function the body makes, which runs with its callers' path: in any
               -- schema (code-ddl.ts, review rev5 C1).
               SELECT q.oid, 'names' FROM unnest(sets_path.made_words) AS ws(w) JOIN named_functions q ON q.lname = ws.w
                WHERE b.src ~* (${NAME_START} || ${nameRegex('q.proname')} || ${NAME_END})
               UNION ALL
               -- What an argument's default calls runs when a caller leaves that argument out
               -- (review rev6 DEF1).
               SELECT m[1]::oid, 'has an argument default that calls' FROM regexp_matches(p.proargdefaults::text, ':(?:funcid|opfuncid) ([0-9]+)', 'g') AS m
               UNION ALL
               SELECT ${calledFunction('d')}, 'names' FROM pg_depend d
                WHERE p.prosqlbody IS NOT NULL AND d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
               UNION ALL
               -- In scope or not: a trigger runs with the path of the function whose write fires it
               -- (review revx V5), also one of what the write reaches beyond the relation it names: a
               -- partition, a cascade's table, a rule's (review revz Z1).
               SELECT t.tgfoid, CASE WHEN t.tgrelid = c.oid THEN format('writes %s, whose trigger %I calls', c.oid::regclass, t.tgname)
                                     ELSE format('writes %s, which writes %s, whose trigger %I calls', c.oid::regclass, t.tgrelid::regclass, t.tgname)
                                END COLLATE "C"
                 FROM (${writtenSql('b', `${node}.path`, '(sets_path.anywhere OR cardinality(sets_path.made_words) > 0)')}) AS c
                CROSS JOIN LATERAL (${firedClosureSql('c.oid', 'b')}) AS fired
                 JOIN pg_trigger t ON t.tgrelid = fired.oid AND NOT t.tgisinternal
             ) AS called
             WHERE p.oid = ${node}.fn AND p.prolang IN (SELECT oid FROM opaque_languages)
               AND called.fn >= ${FIRST_NORMAL_OBJECT_ID} AND called.fn <> p.oid
               AND (p.proowner NOT IN (SELECT oid FROM lesser_roles) OR p.oid IN (SELECT a.fn FROM platform_auth_functions a))
               -- The platform's webhook, wherever the walk reaches it (review revy R1).
               AND called.fn NOT IN (SELECT w.fn FROM platform_webhooks w)`
}

/**
 * SQL (a subquery, LATERAL to a pg_proc row `p`): its body as text (`raw`: an opaque body's
 * source; a BEGIN ATOMIC body as PostgreSQL prints it), that text with its backslash escapes
 * read (`src`: see {@link escapesReadSql}), in lower case, and its words in lower case, each once;
 * computed once per row (OFFSET 0 keeps the planner from computing them per use).
 */
function bodyWordsSql(p: string): string {
  return `SELECT t.raw, t.src, t.lsrc, ARRAY(SELECT DISTINCT w FROM regexp_split_to_table(t.lsrc, '[^a-z0-9_]+') AS w WHERE w <> '') AS words
                 FROM (SELECT e.raw, e.src, lower(e.src) AS lsrc
                         FROM (SELECT b.raw, CASE WHEN strpos(b.raw, chr(92)) > 0 THEN (${escapesReadSql('b.raw')}) ELSE b.raw END AS src
                                 FROM (SELECT CASE WHEN ${p}.prosqlbody IS NULL THEN ${p}.prosrc ELSE pg_get_function_sqlbody(${p}.oid) END AS raw
                                       OFFSET 0) AS b
                               OFFSET 0) AS e
                       OFFSET 0) AS t`
}

/**
 * SQL (a subquery, LATERAL to `b`, a row of {@link bodyWordsSql}): the relations (named_relations)
 * that the body text writes, run with the search path `path` (or with any, where `anywhere`), or
 * names where it is a view (see body_writes). The one rule of what a body writes, for both its uses.
 */
function writtenSql(b: string, path: string, anywhere: string): string {
  // A view, whose triggers run where it is named; or any relation, in a body that holds a list
  // of written ones: TRUNCATE's, and INHERITS' (its new table's inserts run each parent's
  // defaults), whose names a quoted name or a comment holding `)` or `;` hid from a regular
  // expression (the review of rev13: INH1, INH2, TRL1).
  const namedIsWritten = `c.relkind = 'v' OR ${b}.words && '{inherits,truncate}'::pg_catalog.text[]`
  return `SELECT c.oid
                 FROM (SELECT c.* FROM unnest(${b}.words) AS ws(w) JOIN named_relations c ON c.lname = ws.w
                       UNION ALL
                       SELECT c.* FROM named_relations c WHERE c.odd AND strpos(${b}.lsrc, c.lname) > 0
                       OFFSET 0) AS c
                WHERE ((${anywhere} OR c.nspname = ANY (${path}))
                       AND ${b}.src ~* (CASE WHEN ${namedIsWritten} THEN ${NAME_START} ELSE ${WRITE_REGEX} END
                                        || ${nameRegex('c.relname')} || ${NAME_END}))
                   OR (strpos(${b}.lsrc, lower(c.nspname)) > 0
                       AND ${b}.src ~* (CASE WHEN ${namedIsWritten} THEN ${NAME_START} ELSE ${WRITE_REGEX} END
                                        || ${DATABASE_PART} || ${nameRegex('c.nspname')} || ${DOT}
                                        || ${nameRegex('c.relname')} || ${NAME_END}))`
}

/**
 * SQL (a subquery, LATERAL to `b`, a row of {@link bodyWordsSql}): the types (named_types) that
 * the body text could name, run with the search path `path` (or with any, where `anywhere`): by
 * the one rule of names (see bodyCallsSql), wherever they stand (a cast, a declaration, a
 * function's name that is also a type's counts: over, never under).
 */
function namedTypesSql(b: string, path: string, anywhere: string): string {
  return `SELECT q.oid
                 FROM (SELECT q.* FROM unnest(${b}.words) AS ws(w) JOIN named_types q ON q.lname = ws.w
                       UNION ALL
                       SELECT q.* FROM named_types q WHERE q.odd AND strpos(${b}.lsrc, q.lname) > 0
                       OFFSET 0) AS q
                WHERE ((${anywhere} OR q.nspname = ANY (${path}))
                       AND ${b}.src ~* (${NAME_START} || ${nameRegex('q.typname')} || ${NAME_END}))
                   OR (strpos(${b}.lsrc, lower(q.nspname)) > 0
                       AND ${b}.src ~* (${NAME_START} || ${nameRegex('q.nspname')} || ${DOT}
                                        || ${nameRegex('q.typname')} || ${NAME_END}))`
}

/**
 * SQL (a scalar subquery): the text `raw` with its backslash escapes read as an `E'…'` string
 * reads them: a code (`\n`, `\t`, `\012`, `\x0a`, `\u000a`) as the character it stands for where
 * that is ASCII (`search\137path` is `search_path`, `\n` a newline that ends a `--` comment:
 * reviews revz Z2, Z5, rev-paths F3), else as space; any other backslash as the character after
 * it (`\S` is S, `\.` a dot: review revr R3). Read once per body, where a pattern of escapes in
 * every regular expression doubled the check's time. A character beyond ASCII that a code
 * spells is not read (a name of such letters so spelled: revp P3).
 */
function escapesReadSql(raw: string): string {
  const backslash = 'repeat(chr(92), 2)'
  return `SELECT coalesce(string_agg(CASE WHEN x.m[1] IS NOT NULL THEN x.m[1]
                                          WHEN x.m[2] IS NULL THEN x.m[3]
                                          WHEN c.code BETWEEN 1 AND 127 THEN chr(c.code) ELSE ' ' END, '' ORDER BY x.o), '')
                   FROM regexp_matches(${raw}, '([^' || ${backslash} || ']+)|' || ${backslash}
                                       || '(b|f|n|r|t|[0-7]{1,3}|x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})|' || ${backslash} || '(.?)', 'g')
                        WITH ORDINALITY AS x(m, o)
                  CROSS JOIN LATERAL (
                    SELECT CASE WHEN x.m[2] IS NULL THEN NULL
                                WHEN x.m[2] = 'b' THEN 8 WHEN x.m[2] = 'f' THEN 12 WHEN x.m[2] = 'n' THEN 10
                                WHEN x.m[2] = 'r' THEN 13 WHEN x.m[2] = 't' THEN 9
                                WHEN x.m[2] ~ '^[0-7]' THEN (SELECT sum(substr(x.m[2], i, 1)::int * (8 ^ (length(x.m[2]) - i))::int)
                                                              FROM generate_series(1, length(x.m[2])) AS i)::int
                                ELSE ('x' || lpad(substr(x.m[2], 2), 8, '0'))::bit(32)::int END AS code
                  ) AS c`
}

/** SQL: a regular expression (for `~*`) of what SQL takes as space: white space, and comments. */
const SPACE = `('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')`

/**
 * SQL: a regular expression (for `~`) of a block comment inside another, as {@link SPACE} reads
 * comments: a slash-star, then no star-slash, then a slash-star. PostgreSQL's comments nest, and
 * end at the matching star-slash; SPACE's end at the first: such a body is refused, unread (review
 * rev-final F5). Over-counting: a slash-star in a string or a `--` comment, or in a star-slash-star
 * after a comment, followed by a slash-star before any star-slash.
 */
const NESTED_COMMENT = `'/[*]([^*]|[*]+[^*/])*/[*]'`

/** SQL: the regular expression of a dot between two parts of a name, with space around it. */
const DOT = `('"?' || ${SPACE} || '*[.]' || ${SPACE} || '*"?')`

/** SQL: the regular expression of where a name starts: after no letter, and maybe a quote. */
const NAME_START = `'(?<![[:alnum:]_$])"?'`

/**
 * SQL: the regular expression of where a name ends: its quote, and no letter after it (a `$` may
 * follow: the end of a dollar-quoted string that EXECUTE runs, review revx V4).
 */
const NAME_END = `'"?(?![[:alnum:]_])'`

/** SQL: the regular expression of a database's name before a schema's (a three-part name), or none. */
const DATABASE_PART = `('(("([^"]|"")*"|[[:alnum:]_$]+)' || ${SPACE} || '*[.]' || ${SPACE} || '*)?"?')`

/**
 * SQL: a regular expression's start (for `~*`) that matches a statement's words before the
 * relation it writes, and the name's opening quote; in a TRUNCATE, any of its list. ALTER TABLE
 * and MATERIALIZED VIEW too: they run the relation's code (VALIDATE CONSTRAINT its CHECKs, a
 * rewrite its defaults and index expressions: reviews rev10 R10-4, rev11 R11-2); and CREATE TABLE
 * … PARTITION OF, of the parent (its key expressions, its default partition's: R11-3); and
 * CREATE TABLE … (LIKE t …), of t: the new table takes t's defaults and CHECKs, which the body's
 * inserts into it run (review rev13 L1 to L4; a LIKE that compares counts too). A list (TRUNCATE
 * a, b; INHERITS (a, b)) is not read: in a body that holds either word, every relation it names
 * counts as written (see writtenSql).
 */
const WRITE_REGEX = `('((?<![[:alnum:]_$])|(?<=[$]))(insert' || ${SPACE} || '+into|update|delete' || ${SPACE} || '+from|merge' || ${SPACE}
  || '+into|copy|refresh' || ${SPACE} || '+materialized' || ${SPACE} || '+view(' || ${SPACE} || '+concurrently)?|alter' || ${SPACE}
  || '+(materialized' || ${SPACE} || '+view|table)(' || ${SPACE} || '+if' || ${SPACE} || '+exists)?|partition' || ${SPACE} || '+of|like|truncate('
  || ${SPACE} || '+table)?)(' || ${SPACE} || '+only)?(' || ${SPACE} || '+"?|")')`

/**
 * SQL: a regular expression (for `~*`) of where a statement starts, then space: the body's start,
 * `;`, BEGIN, THEN, ELSE, LOOP or DO.
 */
const STATEMENT_START = `('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ${SPACE} || '*')`

/** SQL: a regular expression of a stored expression's call of set_config (a node's `:funcid`). */
const SET_CONFIG_CALL = `(':funcid ' || 'pg_catalog.set_config(text,text,boolean)'::pg_catalog.regprocedure::pg_catalog.oid || '\\M')`

/**
 * SQL: a regular expression (for `~*`) of an EXECUTE whose statement is written out, and is a SET
 * [LOCAL] of a setting of the app's own (a dotted name, as every custom setting has; the path's,
 * the role's and the other built-in settings have none) to a constant, or to a value that
 * format() quotes as a literal (`%L`): Supabase Realtime's realtime.send() runs
 * `EXECUTE format('SET LOCAL realtime.topic TO %L', topic)`. It sets nothing a name resolves by.
 */
const CUSTOM_SETTING_EXECUTE = `('(?<![[:alnum:]_$])execute[[:space:]]+(format[[:space:]]*[(][[:space:]]*)?''[[:space:]]*set[[:space:]]+(local[[:space:]]+)?'
  || '[a-z_][a-z0-9_$]*([.][a-z_][a-z0-9_$]*)+[[:space:]]*(to|=)[[:space:]]*(%L|[a-z0-9_.-]+)[[:space:]]*'''
  -- The statement is that SET alone: what follows the string is the end of the EXECUTE (in
  -- format(), after its arguments, plain ones: no string, call or ;), never more SQL joined to it.
  || '([[:space:]]*,[^;''()]*[)])?(?=[[:space:]]*;)')`

/**
 * SQL: a regular expression (for `~*`) of a PL/pgSQL statement that runs SQL it is given as text:
 * EXECUTE at a statement's start or after RETURN QUERY, FOR … IN or OPEN … FOR, and DO with its
 * code, a string however quoted, its language a name or a string (review rev2 F3, rev3 R2:
 * PL/pgSQL code in a string, no EXECUTE; rev11 R11-1; not MERGE's DO NOTHING, a comment's "then
 * do", nor a string's "then do $%": review rev10 P6, P7, rev11 R11-9). It is matched
 * after each {@link CUSTOM_SETTING_EXECUTE} is read as `perform null`: the statement's own
 * words, never the `;` around it (cutting that out made the next EXECUTE no statement's start:
 * review rev2 F1), and not by counting the two (an EXECUTE's match takes in the comment before
 * it, and an exempt one in it: rev3 R1).
 */
const DYNAMIC_STATEMENT = `('(' || ${STATEMENT_START} || '|(?<![[:alnum:]_$])(query|in|for)' || ${SPACE} || '+)execute(?![[:alnum:]_$])|'
  || ${STATEMENT_START} || 'do(?![[:alnum:]_$])' || ${SPACE} || '*(language' || ${SPACE} || '*("([^"]|"")*"|''([^'']|'''')*''|[[:alnum:]_$]+)'
  || ${SPACE} || '*)?([$]([[:alpha:]_][[:alnum:]_]*)?[$]|[eu]?&?'')')`

/**
 * SQL: a regular expression (for `~*`) of a call of a function that runs SQL given as text, or
 * reads relations it is not named (every view of a schema or a database, whose queries run as
 * the reader: review rev2 F5), or the code of a type named as text: pg_catalog's
 * ({@link TEXT_RUNNER_NAMES}; a domain's name built as text is no name to match); tablefunc's
 * crosstab and connectby, xml2's xpath_table, dblink's (review rev2 F6). What they run cannot be
 * read: a trusted body that calls one is refused.
 */
const TEXT_RUNNER_CALL = `'(?<![[:alnum:]_$])(${TEXT_RUNNER_NAMES}|${CONTRIB_TEXT_RUNNER_SYMBOLS})(?![[:alnum:]_$])'`

/**
 * SQL: a condition on a pg_proc row `q` that holds where it is set_config under another name:
 * LANGUAGE internal or C with symbol set_config_by_name, as pg_catalog's own (only a superuser
 * makes such a function; a body that calls it changes the path as set_config does: review
 * rev-paths F6).
 */
const SET_CONFIG_ALIAS = (q: string): string =>
  `((${q}.prosrc = 'set_config_by_name' AND ${q}.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('internal', 'c')))
    OR ${q}.proargdefaults::text ~ ${SET_CONFIG_CALL})`

/** SQL (a FROM item): pg_catalog's text runners ({@link TEXT_RUNNER_NAMES}). */
const PG_CATALOG_TEXT_RUNNERS = `(SELECT r.oid, r.prolang, r.prosrc FROM pg_proc r
                                  WHERE r.pronamespace = 'pg_catalog'::regnamespace AND r.proname ~ '^(${TEXT_RUNNER_NAMES})$')`

/**
 * SQL (a subquery): the functions outside pg_catalog that are one of its text runners under
 * another name (internal or C, of the same symbol, which only a superuser makes), or that call
 * one in an argument's default, which runs where a caller leaves that argument out.
 */
const TEXT_RUNNER_ALIASES = `SELECT q.oid FROM pg_proc q
                             WHERE q.pronamespace <> 'pg_catalog'::regnamespace
                               AND ((q.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('internal', 'c'))
                                     AND (q.prolang, q.prosrc) IN (SELECT r.prolang, r.prosrc FROM ${PG_CATALOG_TEXT_RUNNERS} AS r))
                                    -- Or one whose argument default calls one (review rev10 R10-1).
                                    OR EXISTS (SELECT FROM regexp_matches(q.proargdefaults::text, ':(?:funcid|opfuncid) ([0-9]+)', 'g') AS m
                                                WHERE m[1]::oid IN (SELECT r.oid FROM ${PG_CATALOG_TEXT_RUNNERS} AS r)))`

/**
 * SQL: whether the body of the pg_proc row `p`, as text `src`, may change the search path it runs
 * with (and that of what runs after it in the transaction). It may where it:
 * - runs SQL it builds as it runs, which may be any SET, however spelled (a rule for each
 *   spelling of a SET in a string missed the next: reviews revx V3, rev-paths F2, rev-last N5,
 *   rev-final F3): a PL/pgSQL EXECUTE or DO ({@link DYNAMIC_STATEMENT}; not GRANT or REVOKE
 *   EXECUTE, a trigger's EXECUTE FUNCTION, nor "executes"), but one of a setting of the app's
 *   own written out ({@link CUSTOM_SETTING_EXECUTE}); a call of a {@link TEXT_RUNNER_CALL}; or
 *   is in a language other than SQL and PL/pgSQL, whose body is not read;
 * - holds a statement (at its start, after `;`, BEGIN, THEN, ELSE, LOOP or DO) SET
 *   [LOCAL|SESSION] search_path or SCHEMA, or RESET search_path or ALL (each quoted or not:
 *   review revy Y4), or SET ROLE or SESSION AUTHORIZATION ("$user" on the path is then that role:
 *   review revo O8);
 * - calls set_config (quoted or not: revy Y3) of 'search_path' (or 'role'), or of a first
 *   argument that is not a plain string (one cast to text, as a BEGIN ATOMIC body prints it, is:
 *   review revx R1) (`E'search\137path'`, `'search_' || 'path'`, a variable: review revv V3);
 * - UPDATEs pg_settings, which calls set_config (review revz Z2);
 * - renames a schema (ALTER SCHEMA … RENAME), which may then be one the path names (review rev3 R6).
 * A SQL body cannot EXECUTE: it may do the rest. A SET in a string runs only where EXECUTE
 * (or a text runner) runs it, so strings are not read for one, nor a body's backslash escapes
 * (which only an E'…' string reads). A plain string that is not search_path is a setting of the
 * app's own (Supabase's `request.jwt.claims`); ALTER FUNCTION … SET search_path and ALTER … SET
 * SCHEMA (Supabase's event trigger functions hold them) change no session's path: a function so
 * given a path is read by code-ddl.ts (its schemas counted, other forms refused unread).
 */
function setsPath(p: string, src: string): string {
  return `(${p}.prolang NOT IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
           OR regexp_replace(${src}, ${CUSTOM_SETTING_EXECUTE}, 'perform null', 'gi') ~* ${DYNAMIC_STATEMENT}
           OR ${src} ~* ${TEXT_RUNNER_CALL}
           -- A schema renamed may become one the path names ("$user" as the runner's name: review
           -- rev3 R6); read to the end of the body, not to a ; that a comment may hold (review rev4).
           OR ${src} ~* ('(?<![[:alnum:]_$])alter' || ${SPACE} || '+schema(?![[:alnum:]_$]).*(?<![[:alnum:]_$])rename(?![[:alnum:]_$])')
           OR ${src} ~* (${STATEMENT_START} || '(set(' || ${SPACE} || '+(local|session))*(' || ${SPACE} || '+"?|")(search_path|schema|role|authorization)|reset('
                     || ${SPACE} || '+"?|")(search_path|all))"?(?![[:alnum:]_$])')
           OR ${src} ~* ('set_config"?' || ${SPACE} || '*[(]' || ${SPACE} || '*''(search_path|role|session_authorization)''')
           -- An UPDATE of pg_settings is a set_config (its rule's: review revz Z2), through ONLY and
           -- a database's name too (review revo O2); a read is not (pgsodium's event trigger
           -- function reads it: review revr R6).
           OR ${src} ~* ('(?<![[:alnum:]_$])update(' || ${SPACE} || '+|(?="))(only(' || ${SPACE} || '|[(])*)?(' || ${DATABASE_PART}
                         || 'pg_catalog' || ${DOT} || ')?"?pg_settings(?![[:alnum:]_$])')
           OR regexp_replace(${src}, 'set_config"?' || ${SPACE} || '*[(]' || ${SPACE} || '*''[^''' || repeat(chr(92), 2) || ']*''(::text)?' || ${SPACE} || '*,', '', 'gi')
              ~* ('set_config"?' || ${SPACE} || '*[(]'))`
}

/**
 * SQL: a regular expression (for `~*`) that matches the name `expr` as SQL writes it, quoted
 * (with its quotes doubled) or not; the quotes around it are the caller's.
 */
function nameRegex(expr: string): string {
  return `regexp_replace(replace(${expr}, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g')`
}

/**
 * The problems (rows of the check's `problems`) that {@link bodyCallsSql} finds: a function of a
 * lesser role that a reached function's body names, with what reaches it.
 */
const BODY_CALLS_PROBLEMS_SQL = `    UNION ALL
    SELECT 2, format('%s reaches %s, whose body %s %s, owned by %s', w.what, w.caller::regprocedure, w.how,
                     q.oid::regprocedure, pg_get_userbyid(q.proowner)), false
      FROM body_calls w JOIN pg_proc q ON q.oid = w.fn
     WHERE NOT w.unread
    UNION ALL
    -- A U&"…" identifier or U&'…' string may spell any name or statement with escapes (of its
    -- own choosing, UESCAPE): what it writes or calls cannot be read (reviews revv V1, revr R3).
    SELECT 2, format('%s reaches %s, whose body spells a name or string as U&…, which the check cannot read', w.what,
                     w.fn::regprocedure), false
      FROM body_calls w
     WHERE w.unread AND w.how = 'U&'
    UNION ALL
    -- PostgreSQL's block comments nest; the check's, read by regular expressions, end at the first
    -- */, so what follows it inside the comment would be read as code, and the code after the
    -- comment as its end (review rev-final F5).
    SELECT 2, format('%s reaches %s, whose body holds a block comment inside another (/* … /* … */ … */, one comment to '
                     'PostgreSQL), or a /* in a string or a -- comment before another /*: the check cannot read nested '
                     'comments (write the function''s comments without nesting, and such a string as ''/'' || ''*'')',
                     w.what, w.fn::regprocedure), false
      FROM body_calls w
     WHERE w.unread AND w.how = 'nested comment'
    UNION ALL
    -- TEXT_RUNNER_CALL: what such a call runs is not in the body's text (review rev2 F5, F6).
    SELECT 2, format('%s reaches %s, whose body calls a function that runs SQL given as text or reads every view of a '
                     'schema, or the code of a type named as text (…_to_xml, ts_stat, ts_rewrite, pg_input_is_valid, crosstab, connectby, '
                     'xpath_table, dblink…): the check cannot '
                     'read what it runs (run that SQL from the body itself, written out)', w.what, w.fn::regprocedure), false
      FROM body_calls w
     WHERE w.unread AND w.how = 'text runner'
    UNION ALL
    -- DDL that makes or changes code as the body runs, in a form the check does not read
    -- (code-ddl.ts, review rev4): the code it makes, or the path it gives, is not what was read.
    SELECT 2, format('%s reaches %s, whose body makes or changes a function, or alters a table, a trigger or an extension, '
                     'in a form the check cannot read (it reads CREATE FUNCTION … LANGUAGE sql or plpgsql AS $$…$$, '
                     'and ALTER FUNCTION … SECURITY DEFINER, SET search_path = schema names, SET SCHEMA; not a body '
                     'given as a string, RESET, TO DEFAULT, FROM CURRENT, OWNER TO, RENAME, nor ALTER TABLE … ENABLE, '
                     'INHERIT, ATTACH, SET SCHEMA, OWNER, RENAME, nor ALTER TRIGGER or EXTENSION), or runs ANALYZE, '
                     'VACUUM, CLUSTER, REINDEX (which run the code of the tables they work on) or COPY … PROGRAM: write it in one of '
                     'those forms, or run that DDL outside the trigger',
                     w.what, w.fn::regprocedure), false
      FROM body_calls w
     WHERE w.unread AND w.how = 'code'
    UNION ALL
    SELECT 2, format('%s reaches %s, whose body is read with standard_conforming_strings off, or sets it: the check reads '
                     'strings as PostgreSQL does with it on (take that setting out of the function and its body)',
                     w.what, w.fn::regprocedure), false
      FROM body_calls w
     WHERE w.unread AND w.how = 'strings'
    UNION ALL
    SELECT 2, format('%s reaches %s, whose body writes a table of pg_catalog: it changes code (a function''s settings, a '
                     'trigger''s state) in a way the check cannot read (use ALTER FUNCTION or ALTER TABLE instead)',
                     w.what, w.fn::regprocedure), false
      FROM body_calls w
     WHERE w.unread AND w.how = 'catalog'

    UNION ALL
    -- An aggregate or an operator over set_config or a text runner: a body runs it without naming
    -- a function, and may so change the path, or run SQL given as text, unread (review rev10 R10-2,
    -- R10-3).
    SELECT DISTINCT 2, format('%s calls %s, which %s: a body the writes reach may run it without naming a function, and the '
                              'check cannot read what follows (drop it, or give it a function that does neither)', i.what,
                              f.oid::regprocedure, CASE WHEN ${SET_CONFIG_ALIAS('f')} THEN 'may change the search path'
                                                        ELSE 'runs SQL given as text' END), false
      FROM implicit_functions i JOIN pg_proc f ON f.oid = i.fn
     WHERE (${SET_CONFIG_ALIAS('f')} OR f.oid IN (SELECT r.oid FROM ${PG_CATALOG_TEXT_RUNNERS} AS r) OR f.oid IN (${TEXT_RUNNER_ALIASES}))
       -- Not a type's own input function (record_in, array_in): it is given that type.
       AND i.what NOT LIKE 'type %' AND EXISTS (SELECT FROM reached_bodies)
    UNION ALL
    -- A name the check cannot match in a body's text: one holding a double quote (which a body
    -- doubles) or a backslash (escapesReadSql reads it away), or 63 bytes long (PostgreSQL cuts a
    -- longer name in a body to it): a function's, a relation's or a type's of a lesser login or in
    -- its schema, or a schema's it owns or may create in (review rev10 R10-5, R10-6). A trusted
    -- function so named is walked wherever it is instead (reached_functions: review rev11 R11-10).
    SELECT DISTINCT 2, format('%s has a name the check cannot match in a body''s text: it holds a double quote or a '
                              'backslash, or is 63 bytes long, to which PostgreSQL cuts a longer name (rename it)', o.what), false
      FROM (SELECT format('function %s', q.oid::regprocedure), ARRAY[q.proname, n.nspname] FROM pg_proc q JOIN pg_namespace n ON n.oid = q.pronamespace
             WHERE q.proowner IN (SELECT oid FROM lesser_roles) OR n.nspowner IN (SELECT oid FROM lesser_roles)
            UNION ALL
            SELECT format('relation %s', c.oid::regclass), ARRAY[c.relname, n.nspname] FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND (c.relowner IN (SELECT oid FROM lesser_roles) OR n.nspowner IN (SELECT oid FROM lesser_roles))
            UNION ALL
            SELECT format('type %s', t.oid::regtype), ARRAY[t.typname, n.nspname] FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE t.typrelid = 0 AND NOT EXISTS (SELECT FROM pg_type e WHERE e.typarray = t.oid)
               AND (t.typowner IN (SELECT oid FROM lesser_roles) OR n.nspowner IN (SELECT oid FROM lesser_roles))
            UNION ALL
            -- A schema such a login owns, or may create in (review rev11 R11-6, R11-7).
            SELECT format('schema %I', n.nspname), ARRAY[n.nspname] FROM pg_namespace n
             WHERE n.nspowner IN (SELECT oid FROM lesser_roles)
                OR EXISTS (SELECT FROM aclexplode(n.nspacl) AS a JOIN lesser_grantees h ON h.grantee = a.grantee
                            WHERE a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner)
           ) AS o(what, names)
     CROSS JOIN LATERAL unnest(o.names) AS x(name)
     WHERE ${unmatchableName('x.name')}
       AND EXISTS (SELECT FROM reached_bodies)`

/**
 * SQL (rows of the check's `problems`, ordinal 0, for `tables` in scope): row level security that
 * would run policies with the writer's power and hide rows from its writes. Not about lesser
 * logins: asked also where no such login exists (lesserTriggersSql's early exit).
 */
function rowSecurityProblemsSql(schemas: string | undefined): string {
  return `
    -- Row level security that applies to the role that writes (FORCE ROW LEVEL SECURITY on a
    -- table it owns, RLS on another's, without BYPASSRLS): every policy of the table would run
    -- with its power, and whatever their expressions read (views, other tables and their
    -- policies), and would hide rows from the write. Supabase's postgres and service_role bypass it.
    SELECT 0, format('row level security applies to %s on %s', current_user, c.oid::regclass), false
      FROM pg_class c
     WHERE c.oid = ANY (tables) AND row_security_active(c.oid)${
       // With `schemas`, the policies' code is checked as the rest is (attached, below): a view
       // there that applies row level security is what the measurement is about.
       schemas
         ? ''
         : `
    UNION ALL
    -- A view (in scope only as what a rule reads) that is not security_invoker applies the row
    -- level security of its tables as its owner, and runs their policies as the writer, where
    -- row_security_active of the writer says nothing: such a table is refused, whoever owns it.
    SELECT 0, format('a rule reads %s through view %s, which applies its row level security as the view''s owner %s',
                     t.oid::regclass, v.oid::regclass, pg_get_userbyid(v.relowner)), false
      FROM pg_class v
      JOIN pg_rewrite r ON r.ev_class = v.oid AND r.rulename = '_RETURN'
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
      JOIN pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p') AND t.relrowsecurity
     WHERE v.oid = ANY (tables) AND v.relkind = 'v'`
     }
`
}

/**
 * One `DO` block that raises {@link LESSER_TRIGGERS_STATE}, naming each cause, where writing
 * the tables of the session's search_path (pg_catalog aside), of public (the app's tables,
 * which scripts name qualified) and of the module's bookkeeping
 * schema (x402_migrations, which every run writes), their partitions, and the tables their
 * foreign keys' actions and their rules' actions reach, would run code of a role that a lesser login role can act as
 * (LESSER_LOGIN_ROLES_SQL):
 * - such a table owned by such a role;
 * - a function such a role owns (one in its pg_temp schema included) that a trigger (disabled too) on
 *   such a table calls, or its WHEN condition, a constraint, an index's expression or a rule
 *   (not a foreign key's referenced table or its index: the key's check reads them as their
 *   owner, and runs no code of theirs);
 * - row level security that applies to the role that writes on such a table (FORCE ROW LEVEL
 *   SECURITY on its own, RLS on another's, without BYPASSRLS): the policies would run with its
 *   power, and what they read; and any table with row level security that a rule reads
 *   through a view (which applies the policies as its owner, and runs them as the writer);
 * - a trigger (disabled too) on such a table whose WHEN condition calls anything but immutable
 *   functions of roles no lesser login role can act as, or holds an expression it cannot vouch for
 *   ({@link WHEN_CONDITIONS_SQL}): whoever has the TRIGGER privilege wrote it;
 * - a column of such a table, or a type that code attached to it names (a CHECK's cast) or a
 *   trusted body it reaches names (`'x'::d`, `DECLARE v d`), that
 *   reaches a type of such a role, or a domain whose constraints call code of such a role:
 *   through domains' base types, arrays' element types, ranges' subtypes and composites'
 *   attributes (COLUMN_TYPE_CODE_SQL, which the repair plan's counts share);
 * - an event trigger (disabled too) whose function such a role owns;
 * - schema x402_backup owned by such a role, or, where it does not exist yet, a lesser login
 *   role that may create it (it could, in the middle of a run): its owner may drop the backups;
 * - a lesser login role that may create objects in x402_backup or x402_migrations (or own
 *   x402_migrations): it could add a table there after this check, which a later statement of
 *   the same transaction reads (review revf F3: a "backup" for the restore of 005).
 * With `schemas`, the scope also takes every relation of those schemas (views among them: their
 * query runs as the reader) and every table whose foreign key references one in scope, whatever
 * the key's action (TRUNCATE … CASCADE empties it), and the check also refuses a function there,
 * or one that a policy or a column default on a covered relation calls, owned by such a role:
 * what measureAccess reads, writes (leaving out the columns with defaults) and calls.
 * - a schema, pg_catalog aside, on the search path a reached trusted body runs with (bodyCallsSql's
 *   body_nodes; every schema where a body may change the path), owned by such a role, or where a
 *   lesser login may create objects: what it makes there after the check would answer the body's
 *   bare names (review revo O7).
 * With `lock`, it first locks those tables, and the views in scope, in ROW EXCLUSIVE mode (see
 * above): run it inside the transaction that writes them, at READ COMMITTED (it refuses at any
 * other isolation level: review revo O5); and it refuses a view or a foreign table in scope that
 * it could not lock, on which a lesser login holds TRIGGER (review revo O6). It reads the catalog
 * with pg_catalog first on the search_path, and puts the path back before it ends.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
 *   await sql`UPDATE ai_models SET …`.execute(trx)
 * })
 * ```
 */
export function lesserTriggersSql(options: {
  lock: boolean
  /** Schemas whose every relation, policy and function is also covered (see above). */
  schemas?: readonly string[]
  /** What the refused session was about to do, opening the message (a fixed SQL string's text). */
  doing?: string
  /**
   * For a transaction that only reads the catalog (the snapshots of migrate:check, baseline,
   * pull): no table starts the scope, as its reads fire no trigger and compute no default; what
   * any query may run without a name (casts, operators, functions named as pg_catalog's on the
   * path) is walked as for a write.
   */
  reads?: boolean
}): string {
  const schemas = options.schemas && schemaArray(options.schemas)
  return `DO $lesser$
DECLARE
  schemas pg_catalog.name[] := pg_catalog.current_schemas(false);
  -- The path code runs with where it sets none (bodyCallsSql), before the check sets its own.
  session_path pg_catalog.name[] := pg_catalog.current_schemas(true);
  -- Whether the session's path names "$user" (quoted or not), which current_schemas leaves out
  -- where no schema has the current user's name.
  session_path_user pg_catalog.bool := pg_catalog.current_setting('search_path') ~* '(^|,)[[:space:]]*"?[$]user"?[[:space:]]*(,|$)';
  -- The names "$user" on a path may stand for: see below.
  run_as pg_catalog.name[];
  tables pg_catalog.oid[];
  -- The relations reached bodies write (bodyCallsSql's body_writes), added to the scope until none is new.
  written pg_catalog.oid[] := '{}';
  -- Those, and what inserting into them inserts into (below).
  inserted pg_catalog.oid[];
  more pg_catalog.oid[];
  -- Each, with the function that brought it in, for the message.
  written_by pg_catalog.text;
  more_by pg_catalog.text;
  -- Each relation a reached body writes, with the path that body runs with ([oid, [schemas]]):
  -- its own code runs with that path too (bodyCallsSql's reached_seeds).
  write_paths pg_catalog.jsonb := '[]';
  more_paths pg_catalog.jsonb;
  -- The paths trusted reached bodies run with ([[schemas], …]), where an event trigger is reached:
  -- DDL such a body runs fires the event triggers with its path (bodyCallsSql's reached_seeds).
  ddl_paths pg_catalog.jsonb := '[]';
  more_ddl_paths pg_catalog.jsonb;
  -- The functions trusted reached bodies give a search path, by name, with that path ([name,
  -- [schemas]], …): walked with it from the next pass on (bodyCallsSql's reached_seeds).
  altered_paths pg_catalog.jsonb := '[]';
  more_altered pg_catalog.jsonb;
  -- Whether a reached body may change the transaction's search path: then every body's bare
  -- names resolve in any schema (bodyCallsSql).
  anywhere pg_catalog.bool := false;
  sets pg_catalog.bool;
  -- The types trusted reached bodies name ([type, function, [schemas]]), walked as the columns'
  -- types are from the next pass on (bodyCallsSql's body_types), until none is new.
  body_typed pg_catalog.jsonb := '[]';
  more_typed pg_catalog.jsonb;
  -- The bodies that may change the path, for the message.
  path_by pg_catalog.text;
  found pg_catalog.text;
  -- What SEARCH_PATH_CREATE_PROBLEMS_SQL finds (review revo O7): added to what was found once the
  -- walk is done, so that it does not stop the walk before what it reaches is named.
  path_found pg_catalog.text;
  when_code pg_catalog.bool;
  rls_code pg_catalog.bool;
  -- With lock: the views of the scope locked so far, and the views and foreign tables in scope
  -- that are not (review revo O6).
  locked pg_catalog.oid[] := '{}';
  unlocked pg_catalog.oid[] := '{}';
  view_oid pg_catalog.oid;
  saved_jit pg_catalog.text := pg_catalog.current_setting('jit');
  ${CATALOG_CHECK_DECLARE}
BEGIN
  ${CATALOG_CHECK_BEGIN}${options.lock ? isolationRefusalSql(options.doing) : ''}
  -- The reading of WHEN conditions is estimated far above jit_above_cost, though it reads a few
  -- catalog rows: where the server has JIT, compiling it would take longer than running it.
  PERFORM pg_catalog.set_config('jit', 'off', true);
  LOOP
  WITH RECURSIVE scope(oid) AS (
    SELECT w.oid FROM unnest(written) AS w(oid)
    UNION
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE ${options.reads ? 'false AND ' : ''}c.relkind IN ('r', 'p')
       -- public whatever the session's path: what names public.x402_resources writes it (review revd F1).
       AND ((n.nspname = ANY (schemas) AND n.nspname <> 'pg_catalog') OR n.nspname IN ('public', '${MIGRATION_TABLE_SCHEMA}', '${BACKUP_SCHEMA}'))${
         schemas
           ? `
    UNION
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ANY (${schemas})`
           : ''
       }
    UNION
    -- Joined, not a LATERAL per table: pg_constraint has no index on confrelid, and a scan of it
    -- per table in scope made the check quadratic in the tables (review revk K2).
    SELECT reached.oid FROM scope s JOIN (${firedRelationsSql()}
    ) AS reached(parent, oid, truncate_only) ON reached.parent = s.oid${
      // measureAccess empties a table with TRUNCATE … CASCADE (review revj J5).
      schemas ? '' : ' AND NOT reached.truncate_only'
    }
  )
  SELECT array_agg(oid ORDER BY oid) INTO tables FROM scope;
  -- What an insert into a written relation inserts into: the relation, the tables its rules
  -- write and its view reads (an auto-updatable view inserts into its table), its partitions;
  -- their defaults are computed with the writer's power (review revw B1, revx V1, V2).
  WITH RECURSIVE reach(oid) AS (
    SELECT w.oid FROM unnest(written) AS w(oid)
    UNION
    -- And what the rules of the tables in scope write (the module's own writes fire them: review
    -- revy Y1), their own table too (a rule may insert into it: review revz Z3).
    SELECT d.refobjid FROM unnest(tables) AS t(oid)
      JOIN pg_rewrite rw ON rw.ev_class = t.oid AND rw.rulename <> '_RETURN'
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
    UNION
    SELECT n.oid FROM reach r CROSS JOIN LATERAL (
      SELECT d.refobjid AS oid FROM pg_rewrite rw
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
       WHERE rw.ev_class = r.oid
      UNION ALL
      SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = r.oid
    ) AS n
  )
  SELECT array_agg(oid) INTO inserted FROM reach;
  ${
    options.lock
      ? `IF tables IS NOT NULL THEN
    EXECUTE (SELECT 'LOCK TABLE ' || string_agg(t::regclass::text, ', ' ORDER BY t) || ' IN ROW EXCLUSIVE MODE'
               FROM unnest(tables) AS t
              WHERE has_table_privilege(t, 'INSERT, UPDATE, DELETE, TRUNCATE')
                AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t) IN ('r', 'p'));
    -- A view a reached body writes fires its INSTEAD OF triggers: locked too, each on its own
    -- (review revo O6). LOCK TABLE on a view takes ROW EXCLUSIVE on it (CREATE TRIGGER … INSTEAD
    -- OF takes SHARE ROW EXCLUSIVE: they conflict) and on its relations, checked as the view's
    -- owner: where the session or that owner may not, the view stays unlocked (and is refused
    -- below where a lesser login may add a trigger to it).
    FOR view_oid IN SELECT t FROM unnest(tables) AS t JOIN pg_class c ON c.oid = t
                     WHERE c.relkind = 'v' AND NOT t = ANY (locked) ORDER BY t LOOP
      BEGIN
        EXECUTE 'LOCK TABLE ' || view_oid::regclass::text || ' IN ROW EXCLUSIVE MODE';
        locked := locked || view_oid;
      EXCEPTION WHEN insufficient_privilege THEN NULL;
      END;
    END LOOP;
    -- A foreign table cannot be locked (PostgreSQL 15 to 17), yet takes triggers; a materialized
    -- view takes none.
    SELECT coalesce(array_agg(t), '{}') INTO unlocked FROM unnest(tables) AS t JOIN pg_class c ON c.oid = t
     WHERE c.relkind IN ('v', 'f') AND NOT t = ANY (locked);
  END IF;`
      : ''
  }
  -- No login that cannot act as the session's user, and no right granted to PUBLIC that one made
  -- later could use: no one else can have made, or can change, the code the writes run, and
  -- nothing is read but row level security, which is not about them (a laptop's server, the
  -- embedded database). Asked after the locks, as the rest: a login made after it is made by a
  -- role trusted already.
  -- Nor where a function that runs SQL through a connection of its own exists (dblink's): what
  -- it changes commits apart, unseen by a down's count of what it deleted, so a trusted body that
  -- calls one is refused whoever could have made it (review N10-8).
  EXIT WHEN NOT EXISTS (${LESSER_LOGIN_ROLES_SQL}) AND NOT EXISTS (${PUBLIC_GRANTS_SQL})
            AND NOT EXISTS (SELECT FROM pg_proc q WHERE q.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'c')
                                                   AND q.prosrc ~ '^(${CONTRIB_TEXT_RUNNER_SYMBOLS})$')
            AND NOT EXISTS (${rowSecurityProblemsSql(schemas)});
  -- "$user" on a path is the role code runs as: the session's or the current user, a role a
  -- function sets itself (SET role), or the owner of a function the check trusts, which its body
  -- and what it calls run as where it is SECURITY DEFINER (or a body makes it so): the one rule
  -- of "$user", for a function's own path, a path a body gives one, and the session's (reviews
  -- rev-paths F5, rev7 U2, rev8 U3, rev9 R9-1, R9-2). Not a lesser login's: its code is refused
  -- wherever the walk reaches it.
  IF run_as IS NULL THEN
    WITH lesser_roles AS (${LESSER_LOGIN_ROLES_SQL})
    SELECT array_agg(DISTINCT u.name) INTO run_as
      FROM (SELECT session_user::name
            UNION ALL SELECT current_user
            UNION ALL SELECT DISTINCT r.rolname FROM pg_roles r
                       WHERE r.oid IN (SELECT p.proowner FROM pg_proc p) AND r.oid NOT IN (SELECT oid FROM lesser_roles)
            UNION ALL SELECT substr(c.setting, strpos(c.setting, '=') + 1)::name
                        FROM pg_proc p CROSS JOIN LATERAL unnest(p.proconfig) AS c(setting)
                       WHERE c.setting ~* '^(role|session_authorization)=') AS u(name);
    IF session_path_user THEN
      session_path := session_path || run_as;
    END IF;
  END IF;
  WITH RECURSIVE lesser_roles AS (${LESSER_LOGIN_ROLES_SQL}),
  -- Who may use a right granted to a role (grantee): a lesser login, as that role (rolname, and
  -- login, its name); or, granted to PUBLIC (0), any login, one made after the check too (review
  -- rev8 R8-2).
  lesser_grantees(grantee, rolname, login) AS (
            SELECT g.oid, g.rolname::text, r.rolname::text FROM lesser_roles g JOIN pg_roles r ON r.oid = g.login
            UNION ALL
            SELECT 0::oid, 'PUBLIC', ${PUBLIC_LOGIN}
  ),
  -- The types trusted reached bodies named on the passes so far, with each body and its path.
  body_typed_uses(typ, fn, path) AS (
            SELECT (u.value ->> 0)::oid, (u.value ->> 1)::oid, ARRAY(SELECT jsonb_array_elements_text(u.value -> 2))::name[]
              FROM jsonb_array_elements(body_typed) AS u
  ),
  -- The triggers the module's writes to those tables may fire: not a constraint's own.
  covered_triggers AS (
            -- Disabled ones too: dynamic SQL the check cannot read may enable one (review rev8 R8-6, R8-7).
            SELECT t.* FROM pg_trigger t WHERE t.tgrelid = ANY (tables) AND NOT t.tgisinternal
  ),
  -- The code attached to those tables that the module's writes run (see below), with its
  -- expression as PostgreSQL stores it.
  attached AS (
            SELECT format('trigger %I', t.tgname) AS what, t.tgrelid AS tbl, 'pg_trigger'::regclass AS classid, t.oid AS objid,
                   t.tgqual::text AS tree, NULL::oid[] AS referenced
              FROM covered_triggers t
            UNION ALL
            -- A foreign key's check reads the referenced table's key as that table's owner (FOR KEY
            -- SHARE, no trigger, no policy; it cannot reference a view): that table and its unique
            -- index run no code with the writer's power (on Supabase, auth.users belongs to the
            -- login supabase_auth_admin). Its operators and types still count.
            SELECT format('constraint %I', k.conname), k.conrelid, 'pg_constraint'::regclass, k.oid, k.conbin::text,
                   CASE WHEN k.contype = 'f' THEN ARRAY[k.confrelid, k.conindid] END
              FROM pg_constraint k WHERE k.conrelid = ANY (tables)
            UNION ALL
            SELECT format('index %s', i.indexrelid::regclass), i.indrelid, 'pg_class'::regclass, i.indexrelid,
                   concat(i.indexprs::text, i.indpred::text), NULL
              FROM pg_index i WHERE i.indrelid = ANY (tables)
            UNION ALL
            -- A stored generated column is computed again by every UPDATE of its row.
            SELECT format('generated column %I', a.attname), ad.adrelid, 'pg_attrdef'::regclass, ad.oid, ad.adbin::text, NULL
              FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE ad.adrelid = ANY (tables) AND a.attgenerated <> ''
            UNION ALL
            SELECT format('rule %I', r.rulename), r.ev_class, 'pg_rewrite'::regclass, r.oid, concat(r.ev_qual::text, r.ev_action::text),
                   NULL
              FROM pg_rewrite r WHERE r.ev_class = ANY (tables)
            UNION ALL
            -- Every row written to a partitioned table is routed by its key, and one written to a
            -- partition is checked against its parents' keys: their operator classes' functions and
            -- their expressions run (pg_depend records them as the table's; review revm M2, revn N1).
            SELECT 'partition key', pt.partrelid, 'pg_class'::regclass, pt.partrelid, pt.partexprs::text, NULL
              FROM pg_partitioned_table pt
             WHERE pt.partrelid IN (SELECT a.relid FROM unnest(tables) AS t CROSS JOIN LATERAL pg_partition_ancestors(t) AS a)${
               schemas
                 ? `
            UNION ALL
            -- Run as an API role, which the code it calls may RESET ROLE out of.
            SELECT format('policy %I', p.polname), p.polrelid, 'pg_policy'::regclass, p.oid,
                   concat(p.polqual::text, p.polwithcheck::text), NULL
              FROM pg_policy p WHERE p.polrelid = ANY (tables)
            UNION ALL
            -- The measurement seeds an empty table as the session's user and inserts as the API
            -- roles, leaving out the columns with defaults: PostgreSQL computes them (review revl F1).
            SELECT format('default of column %I', a.attname), ad.adrelid, 'pg_attrdef'::regclass, ad.oid, ad.adbin::text, NULL
              FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE ad.adrelid = ANY (tables) AND a.attgenerated = ''`
                 : `
            UNION ALL
            -- A reached body that inserts computes the written table's defaults with the writer's
            -- power (review revw B1); the module's own writes insert into no app table, but into
            -- its bookkeeping tables, leaving out the columns with defaults (review rev13 B1).
            SELECT format('default of column %I', a.attname), ad.adrelid, 'pg_attrdef'::regclass, ad.oid, ad.adbin::text, NULL
              FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE (ad.adrelid = ANY (inserted)
                    OR ad.adrelid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                       WHERE n.nspname = '${MIGRATION_TABLE_SCHEMA}'))
               AND a.attgenerated = ''
            UNION ALL
            -- ON DELETE/UPDATE SET DEFAULT computes the referencing columns' defaults (review revy Y2).
            SELECT format('default of column %I', a.attname), ad.adrelid, 'pg_attrdef'::regclass, ad.oid, ad.adbin::text, NULL
              FROM pg_constraint k
              JOIN pg_attrdef ad ON ad.adrelid = k.conrelid AND ad.adnum = ANY (k.conkey)
              JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE k.contype = 'f' AND 'd' IN (k.confdeltype, k.confupdtype) AND k.conrelid = ANY (tables)`
             }
  ),
  -- The types the module's writes make values of: its columns', and those the attached code
  -- names (a CHECK's cast to a domain runs that domain's CHECKs, and what its base type reaches).
  typed_uses AS (
            ${columnTypeUses('a.attrelid = ANY (tables)')}
            UNION
            SELECT format('%s on %s uses type', attached.what, attached.tbl::regclass), d.refobjid
              FROM attached JOIN pg_depend d ON d.classid = attached.classid AND d.objid = attached.objid
             WHERE d.refclassid = 'pg_type'::regclass
            UNION
            -- A function that returns a domain coerces its result to it (pg_depend records the
            -- function alone); one that takes one is given values of it.
            SELECT format('%s on %s calls %s, which %s type', attached.what, attached.tbl::regclass, p.oid::regprocedure,
                          ft.verb), ft.typ
              FROM attached JOIN pg_depend d ON d.classid = attached.classid AND d.objid = attached.objid
              JOIN pg_proc p ON p.oid = ${calledFunction('d')}
             CROSS JOIN LATERAL (${functionTypes('p')}) AS ft
            UNION
            -- A type a trusted reached body names (bodyCallsSql's body_types): a cast to it, a
            -- variable of it, runs what a column of it runs. A relation's row type is its
            -- columns' types: naming a relation to read it runs nothing of its owner's (review
            -- revv V4), so that owner is not refused for it.
            SELECT format('the body of %s names type', u.fn::regprocedure), u.typ FROM body_typed_uses u
             WHERE NOT EXISTS (SELECT FROM pg_type ty JOIN pg_class c ON c.oid = ty.typrelid AND c.relkind <> 'c' WHERE ty.oid = u.typ)
            UNION
            SELECT format('the body of %s names type %s, whose attribute %I is of type', u.fn::regprocedure,
                          format_type(u.typ, NULL), a.attname), a.atttypid
              FROM body_typed_uses u JOIN pg_type ty ON ty.oid = u.typ
              JOIN pg_class c ON c.oid = ty.typrelid AND c.relkind <> 'c'
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  ),
  ${COLUMN_TYPE_CODE_SQL},
${WHEN_CONDITIONS_SQL},
${bodyCallsSql(schemas)}
  SELECT string_agg(problem, '; ' ORDER BY ordinal, problem), coalesce(bool_or(listed.in_when), false),
         coalesce(bool_or(listed.ordinal = 0), false),
         (SELECT array_agg(DISTINCT b.oid) FROM body_writes b WHERE NOT b.oid = ANY (written)),
         (SELECT string_agg(DISTINCT format('%s (%s by %s)', b.oid::regclass,
                                            CASE (SELECT c.relkind FROM pg_class c WHERE c.oid = b.oid) WHEN 'v' THEN 'named' ELSE 'written' END,
                                            b.fn::regprocedure), ', ')
            FROM body_writes b WHERE NOT b.oid = ANY (written)),
         (SELECT jsonb_agg(DISTINCT jsonb_build_array(b.oid, to_jsonb(b.path))) FROM body_writes b
           WHERE NOT write_paths @> jsonb_build_array(jsonb_build_array(b.oid, to_jsonb(b.path)))),
         coalesce((SELECT bool_or(r.sets_path) FROM reached_bodies r), false) OR EXISTS (SELECT FROM role_setters)
           -- An UPDATE through a view of pg_settings is a set_config (review revp P7).
           OR EXISTS (SELECT FROM body_writes b WHERE b.oid = 'pg_catalog.pg_settings'::pg_catalog.regclass)
           -- So is an expression of the written tables' code that calls set_config (a default), or
           -- of their columns' domains (a CHECK, a default: review revo O3).
           OR EXISTS (SELECT FROM attached a WHERE a.tree ~ ${SET_CONFIG_CALL})
           OR EXISTS (SELECT FROM (SELECT DISTINCT t.typ FROM column_types t) AS t JOIN pg_type ty ON ty.oid = t.typ
                       CROSS JOIN LATERAL (${domainExpressions('ty')}) AS de
                       WHERE ty.typtype = 'd' AND de.tree ~ ${SET_CONFIG_CALL})
           -- And a reached alias of set_config, whatever calls it (review rev-paths F6).
           OR EXISTS (SELECT FROM body_nodes w JOIN pg_proc q ON q.oid = w.fn WHERE ${SET_CONFIG_ALIAS('q')}),
         (SELECT string_agg(DISTINCT s.fn::regprocedure::text, ', ')
            FROM (SELECT r.fn FROM reached_bodies r WHERE r.sets_path UNION SELECT f.fn FROM role_setters f) AS s),
         (SELECT string_agg(p.problem, '; ' ORDER BY p.problem) FROM (${SEARCH_PATH_CREATE_PROBLEMS_SQL}) AS p),
         -- Not a BEGIN ATOMIC body's: it runs no DDL (review rev-last N4).
         (SELECT jsonb_agg(DISTINCT to_jsonb(w.path)) FROM body_nodes w JOIN reached_bodies b ON b.fn = w.fn
            JOIN pg_proc q ON q.oid = w.fn AND q.prosqlbody IS NULL
           WHERE EXISTS (SELECT FROM reached_functions r WHERE r.event)
             AND w.path IS DISTINCT FROM ${SESSION_SEED_PATH} AND NOT ddl_paths @> jsonb_build_array(to_jsonb(w.path))),
         -- A type a body names is new unless walked already (named before with that path; a
         -- column's or a table's in scope, with what it reaches seeded with that body's path).
         (SELECT jsonb_agg(DISTINCT jsonb_build_array(t.typ, t.fn, to_jsonb(t.path))) FROM body_types t
           WHERE NOT EXISTS (SELECT FROM body_typed_uses u WHERE u.typ = t.typ AND u.path = t.path)
             AND NOT ((EXISTS (SELECT FROM column_types c WHERE c.typ = t.typ)
                       OR EXISTS (SELECT FROM pg_type ty WHERE ty.oid = t.typ AND ty.typrelid = ANY (tables)))
                      AND (t.path = ${SESSION_SEED_PATH} OR EXISTS (SELECT FROM written_paths w WHERE w.path = t.path)
                           OR EXISTS (SELECT FROM body_typed_uses u WHERE u.path = t.path)))),
         -- A function a body gives a search path, new unless walked with it already.
         (SELECT jsonb_agg(DISTINCT jsonb_build_array(a.name, to_jsonb(a.path)))
            FROM (SELECT ${alteredFunctionSql('d.stmt')} AS name,
                         ARRAY(SELECT v.name FROM (${searchPathListSql('d.stmt')}) AS v)::name[] || 'pg_catalog'::name AS path
                    FROM reached_bodies b CROSS JOIN LATERAL unnest(b.ddl) AS d(stmt)) AS a
           WHERE a.name IS NOT NULL AND NOT altered_paths @> jsonb_build_array(jsonb_build_array(a.name, to_jsonb(a.path))))
    INTO found, when_code, rls_code, more, more_by, more_paths, sets, path_by, path_found, more_ddl_paths, more_typed,
         more_altered
    FROM (SELECT DISTINCT * FROM (
    SELECT 1 AS ordinal, format('%s %s is owned by %s', CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                  WHEN 'f' THEN 'foreign table' ELSE 'table' END, c.oid::regclass, pg_get_userbyid(c.relowner)) AS problem,
           false AS in_when
      FROM pg_class c
     WHERE c.oid = ANY (tables)
       AND c.relowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
${rowSecurityProblemsSql(schemas)}
    UNION ALL
    -- What the module's writes run of the code attached to a table: a trigger (its function and
    -- its WHEN condition), a constraint, an index's expressions, a rule. Each function they call
    -- by name is in pg_depend, an operator's by its function. Defaults only with schemas and
    -- of the tables reached bodies write (the migrations insert into no app table; Supabase's
    -- often call auth.uid()); not policies (refused above where they would run).
    SELECT 2, format('%s on %s calls %s', attached.what, attached.tbl::regclass, code.what), false
      FROM attached
      JOIN pg_depend d ON d.classid = attached.classid AND d.objid = attached.objid
      -- A function, or an operator's, of such a role; a relation of such a role (a view runs its
      -- query); an operator class whose family's functions are such a role's (an index runs them).
      -- The types it names, and those its functions return and take, are walked with the
      -- columns' (typed_uses).
      CROSS JOIN LATERAL (${dependedCode('d', "NOT c.oid = ANY (coalesce(attached.referenced, '{}'))")}) AS code
     WHERE NOT (d.refclassid = 'pg_proc'::regclass AND d.refobjid IN (SELECT w.fn FROM platform_webhooks w))${
       schemas
         ? ''
         : `
       -- A default a reached body's insert computes is taken as such a body's call: Supabase's
       -- auth.uid() (created_by DEFAULT auth.uid()) is the platform's (see bodyCallsSql).
       AND NOT (attached.classid = 'pg_attrdef'::regclass AND EXISTS (
             SELECT FROM platform_auth_functions a WHERE a.fn = ${calledFunction('d')}))`
     }
    UNION ALL
    -- pg_catalog's functions that run SQL given as text (query_to_xml, ts_stat, ts_rewrite's
    -- second form) or a type named as text (pg_input_is_valid runs its input function and a
    -- domain's CHECK): what they run, pg_depend cannot follow (nor does it record pg_catalog's own
    -- objects), so they are found in the expression.
    SELECT 2, format('%s on %s calls %s, which runs %s', attached.what, attached.tbl::regclass,
                     p.oid::regprocedure, ${textRunnerRuns('p')}), false
      FROM attached JOIN pg_proc p ON ${callsTextRunner('p', 'attached.tree')}
    UNION ALL
    -- Trigger functions that run SQL built from the trigger's arguments, which whoever made the
    -- trigger wrote: contrib's refint, whose SQL may read that role's view (its functions then run
    -- as the writer). Other trusted functions that do so are a documented limit.
    SELECT 2, format('trigger %I on %s calls %s with arguments, and it runs SQL built from them', t.tgname,
                     t.tgrelid::regclass, p.oid::regprocedure), false
      FROM covered_triggers t JOIN pg_proc p ON p.oid = t.tgfoid
     WHERE t.tgnargs > 0
       AND p.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'c')
       AND p.prosrc IN ('check_primary_key', 'check_foreign_key')
    UNION ALL
    -- What a column's type reaches (COLUMN_TYPE_CODE_SQL): a domain's base type and CHECKs, an
    -- array's element type, a range's subtype, a composite's attributes' types.
    SELECT 2, t.problem, false FROM column_type_code t
    UNION ALL${
      schemas
        ? `
    SELECT 1, format('function %s is owned by %s', p.oid::regprocedure, pg_get_userbyid(p.proowner)), false
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = ANY (${schemas}) AND p.proowner IN (SELECT oid FROM lesser_roles)
    UNION ALL`
        : ''
    }
    SELECT 3, format('event trigger %I calls %s, owned by %s', e.evtname, e.evtfoid::regprocedure, pg_get_userbyid(p.proowner)),
           false
      FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
     -- Disabled ones too (review rev8 R8-6, R8-7).
     WHERE p.proowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- A cast between types no such role owns, an operator or an aggregate, whose function such a
    -- role owns: a body runs it by an expression that names no function (a cast between built-in
    -- types, OPERATOR(s.===) on a NULL, an aggregate's transition), wherever it is (review rev5
    -- O1, O2; rev6 OP3, A1).
    SELECT 3, format('%s calls %s, owned by %s: any code may run it without naming it (drop it, or give the function '
                     'to a role that can act as you)', o.what, p.oid::regprocedure, pg_get_userbyid(p.proowner)), false
      FROM implicit_functions o JOIN pg_proc p ON p.oid = o.fn
     -- One of a lesser login's own types is walked where a column or a body reaches it
     -- (down-guard's and the restore's refusals name it so).
     WHERE p.proowner IN (SELECT oid FROM lesser_roles) AND NOT o.of_lesser_type
    UNION ALL
    -- The module's own schemas: where the downs keep what they take out (its owner may drop every
    -- backup), and its bookkeeping.
    SELECT 4, format('schema %I is owned by %s', n.nspname, pg_get_userbyid(n.nspowner)), false
      FROM pg_namespace n
     WHERE n.nspname IN ('${BACKUP_SCHEMA}', '${MIGRATION_TABLE_SCHEMA}')
       AND n.nspowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- A login that may create objects there may add a table at any moment, between this check and
    -- the statement that reads the schema: the restore of 005's backups read such a "backup", and
    -- its column's cast ran with the session's power (review revf F3). Such a login cannot grant
    -- itself the right again, so refusing it here closes that time. Named with who holds the right.
    SELECT DISTINCT 4, format('%s may create objects in schema %I%s (REVOKE CREATE ON SCHEMA %I FROM %s)', h.login,
                              n.nspname, ${grantedAs('h')}, n.nspname, ${revokeFrom('h')}), false
      FROM pg_namespace n
     CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
      JOIN lesser_grantees h ON h.grantee = a.grantee
     WHERE n.nspname IN ('${BACKUP_SCHEMA}', '${MIGRATION_TABLE_SCHEMA}')
       AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner
    UNION ALL
    -- A login that may change a table there changes what a down restores (its record, the
    -- backups) or what the history says was done (review N10-3), a column's grant too.
    SELECT DISTINCT 4, format('%s may change table %s (%s%s) (REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM %s)', h.login,
                              c.oid::regclass, string_agg(DISTINCT a.privilege_type, ', '), ${grantedAs('h')},
                              c.oid::regclass, ${revokeFrom('h')}), false
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN LATERAL (SELECT x.grantee, x.privilege_type FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS x
                         UNION ALL
                         SELECT x.grantee, x.privilege_type FROM pg_attribute t CROSS JOIN LATERAL aclexplode(t.attacl) AS x
                          WHERE t.attrelid = c.oid AND t.attacl IS NOT NULL) AS a
      JOIN lesser_grantees h ON h.grantee = a.grantee
     WHERE n.nspname IN ('${BACKUP_SCHEMA}', '${MIGRATION_TABLE_SCHEMA}') AND c.relkind IN ('r', 'p')
       AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') AND a.grantee <> c.relowner
     GROUP BY c.oid, h.grantee, h.rolname, h.login
    UNION ALL
    SELECT DISTINCT 4, format('%s may create schema ${BACKUP_SCHEMA}%s, where the downs would put their backups (REVOKE CREATE '
                              'ON DATABASE %I FROM %s)', h.login, ${grantedAs('h')}, current_database(), ${revokeFrom('h')}), false
      FROM lesser_grantees h
     WHERE NOT EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = '${BACKUP_SCHEMA}') AND ${createsSchemas('h')}
${options.lock ? UNLOCKED_PROBLEMS_SQL : ''}
${WHEN_PROBLEMS_SQL}
${BODY_CALLS_PROBLEMS_SQL}
  ) AS problems) AS listed;
  -- What the tables written by reached bodies run is checked as the rest: again, with them in scope.
  EXIT WHEN found IS NOT NULL
    OR (more IS NULL AND more_paths IS NULL AND more_ddl_paths IS NULL AND more_typed IS NULL AND more_altered IS NULL
        AND (anywhere OR NOT sets));
  anywhere := anywhere OR sets;
  altered_paths := altered_paths || coalesce(more_altered, '[]');
  ddl_paths := ddl_paths || coalesce(more_ddl_paths, '[]');
  body_typed := body_typed || coalesce(more_typed, '[]');
  written := written || coalesce(more, '{}');
  write_paths := write_paths || coalesce(more_paths, '[]');
  written_by := concat_ws(', ', written_by, more_by);
  END LOOP;
  IF path_found IS NOT NULL THEN
    found := concat_ws('; ', found, path_found);
  END IF;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '${LESSER_TRIGGERS_STATE}', MESSAGE = pg_catalog.format(
      '${options.doing ?? "Writing the app''s tables or the module''s bookkeeping"} in this session of role %s would let roles that cannot act as %s run their code '
      'with its power, drop the backups a down makes, or add tables where the module reads its own: %s. Nothing was changed.%s '
      'Find out who made each; where it is your own (never a platform''s: the objects of Supabase''s auth, storage, '
      'realtime, supabase_functions and extensions keep their owners), give it to a role that can act as %s (ALTER FUNCTION, ALTER TABLE '
      'or ALTER SCHEMA … OWNER TO); revoke the right to create schemas in the database (REVOKE CREATE ON DATABASE) from '
      'a role that should not have it, and the right to create objects in the module''s schemas x402_backup and '
      'x402_migrations from every role that cannot act as you (the REVOKE CREATE ON SCHEMA named with each); or run '
      'the command as a role the owners can act as.',
      session_user, session_user, found,
      CASE WHEN when_code THEN ' A trigger''s WHEN condition is code of whoever made the trigger (anyone with the '
        'TRIGGER privilege on its table) and runs with the power of the session that writes, so it may call only '
        'immutable functions and operators whose owners such roles cannot act as: have a role that can act as the '
        'table''s owner drop such a trigger, or create it again with a WHEN condition of immutable built-in functions '
        'and operators alone.' ELSE '' END ||
      CASE WHEN rls_code THEN ' Row level security would run policies, and what they read, with the power of the role '
        'that writes, and hide rows from the write. Run the command as a role that bypasses row level security '
        '(BYPASSRLS), as Supabase''s postgres and service_role do; a rule on these tables must not read a table with row '
        'level security through a view, whose owner''s row level security then applies.' ELSE '' END ||
      CASE WHEN concat_ws(', ', written_by, more_by) <> '' THEN ' Code that the writes run also writes: '
        || concat_ws(', ', written_by, more_by) || '. Where such a table and its code are not yours (a platform''s, such as Supabase''s storage), '
        'leave its owner as it is: have the owner of the function that writes it take that write out (the app can '
        'make it through the platform''s API).' ELSE '' END ||
      CASE WHEN path_by IS NOT NULL THEN ' Bare names were matched in any schema, since ' || path_by
        || ' may change the search path as it runs (SET search_path, set_config, EXECUTE), and the path then stays for the '
        'rest of the transaction: give such a function a SET search_path of its own instead.' ELSE '' END,
      session_user);
  END IF;
  -- Put back only where nothing was found: the message is made with pg_catalog first on the path,
  -- and an error rolls the setting back with its transaction.
  PERFORM pg_catalog.set_config('search_path', saved, true);
  PERFORM pg_catalog.set_config('jit', saved_jit, true);
END
$lesser$`
}

/**
 * A query of the problems (rows of `problem`) of a schema on the search path of a reached
 * trusted body (bodyCallsSql's body_nodes: its own SET search_path, else its caller's or the
 * session's with the request's; every schema where `anywhere`), pg_catalog aside, where a lesser
 * login may create objects: owned by such a role, or with CREATE granted to one (or to PUBLIC).
 * No lock stops a CREATE in a schema: a function or a table made there after the check, named as
 * the body names a trusted one elsewhere on its path (`helper()`, a table it writes unqualified),
 * would answer the body's call, or fire its triggers, with the writer's power (review revo O7).
 * A BEGIN ATOMIC body is left out: its names were resolved when it was made. Named with the
 * login, the schema, the body, and what to do, as the module's own schemas are (ordinal 4).
 * A name on such a path with no schema behind it, where a lesser login may create schemas in the
 * database, likewise (review rev-final F1). And a schema such a body names before a dot (a
 * qualified name) that such a login owns or may create in: it may drop and make again, or add
 * an overload or a table to, what the body names there, after the check (review rev10 R10-7).
 * Not a row of `problems`: a pass that found one would end the walk before the bodies it reaches
 * next are named; the check adds them to what it found once the walk is done.
 */
const SEARCH_PATH_CREATE_PROBLEMS_SQL = `
    -- Each name on the path of each trusted opaque reached body, once.
    WITH path_names(fn, name, altered) AS (
      SELECT DISTINCT w.fn, s.name, false FROM body_nodes w CROSS JOIN LATERAL unnest(w.path) AS s(name)
       WHERE w.fn IN (SELECT b.fn FROM reached_bodies b JOIN pg_proc q ON q.oid = b.fn AND q.prosqlbody IS NULL)
      UNION
      -- A body's ALTER FUNCTION … SET search_path (or CREATE FUNCTION … SET) gives that function
      -- (one the check may have read already) the path it names: those schemas count as on a
      -- reached body's path (review rev2 F4; Supabase's grant_pg_net_access() gives net.http_get()
      -- search_path net). Each name as PostgreSQL reads it (review rev3 R3; code-ddl.ts).
      SELECT DISTINCT b.fn, v.name, true
        FROM reached_bodies b CROSS JOIN LATERAL unnest(b.ddl) AS d(stmt)
       CROSS JOIN LATERAL (${searchPathListSql('d.stmt')}) AS v
    )
    SELECT DISTINCT format('schema %I, on the search path %s runs with, is owned by %s (ALTER SCHEMA %I OWNER TO a role '
                              'that can act as you, or give the function a SET search_path without it)', n.nspname,
                              w.fn::regprocedure, pg_get_userbyid(n.nspowner), n.nspname) AS problem
      FROM path_names w
      JOIN pg_namespace n ON n.nspname = w.name AND n.nspname <> 'pg_catalog'
     WHERE n.nspowner IN (SELECT oid FROM lesser_roles)
    UNION
    -- The function so altered is not walked again with that path: a lesser login's function in
    -- one of its schemas, whose name a reached body holds, may answer it (review rev3 R5).
    -- A relation or a type of such a login there likewise (a table its bare name then writes, with
    -- that login's triggers: review rev5 P1).
    SELECT DISTINCT format('%s gives a function the search path schema %I, where %s, owned by %s, answers a name a body '
                              'the writes reach holds (take that ALTER FUNCTION out of the body, or %s out of '
                              'schema %I)', w.fn::regprocedure, n.nspname, o.what, pg_get_userbyid(o.owner), o.what,
                              n.nspname)
      FROM path_names w
      JOIN pg_namespace n ON n.nspname = w.name
     CROSS JOIN LATERAL (SELECT q.oid::regprocedure::text, q.proowner, q.proname FROM pg_proc q
                          WHERE q.pronamespace = n.oid AND q.proowner IN (SELECT oid FROM lesser_roles)
                         UNION ALL
                         SELECT c.oid::regclass::text, c.relowner, c.relname FROM pg_class c
                          WHERE c.relnamespace = n.oid AND c.relowner IN (SELECT oid FROM lesser_roles)
                         UNION ALL
                         SELECT t.oid::regtype::text, t.typowner, t.typname FROM pg_type t
                          WHERE t.typnamespace = n.oid AND t.typowner IN (SELECT oid FROM lesser_roles)) AS o(what, owner, name)
     -- Tested once, first: where no body alters a path (nearly always), the catalogs are not
     -- scanned once per schema (that cost a check 40 ms on a plain database).
     WHERE EXISTS (SELECT FROM path_names x WHERE x.altered) AND w.altered
       AND EXISTS (SELECT FROM reached_bodies r WHERE lower(o.name) = ANY (r.words))
    UNION
    SELECT DISTINCT format('schema %I, whose objects %s names, %s (%s, or have the function name none there)', n.nspname,
                              b.fn::regprocedure, l.who, l.todo)
      FROM pg_namespace n
     CROSS JOIN LATERAL (SELECT format('is owned by %s', pg_get_userbyid(n.nspowner)), format('ALTER SCHEMA %I OWNER TO a role that can act as you', n.nspname)
                          WHERE n.nspowner IN (SELECT oid FROM lesser_roles)
                         UNION ALL
                         SELECT format('%s may create objects in it%s', h.login, ${grantedAs('h')}),
                                format('REVOKE CREATE ON SCHEMA %I FROM %s', n.nspname, ${revokeFrom('h')})
                           FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
                           JOIN lesser_grantees h ON h.grantee = a.grantee
                          WHERE a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner
                            -- Supabase's auth, its owner's to change (see platform_auth).
                            AND NOT (n.oid, a.grantee) IN (SELECT pa.nsp, pa.owner FROM platform_auth pa)) AS l(who, todo)
      JOIN reached_bodies b ON strpos(b.lsrc, lower(n.nspname)) > 0
                           AND b.src ~* (${NAME_START} || ${nameRegex('n.nspname')} || ${DOT})
     -- Not a BEGIN ATOMIC body: what it names was bound when it was made, and cannot be dropped.
     WHERE n.nspname <> 'pg_catalog' AND b.fn IN (SELECT q.oid FROM pg_proc q WHERE q.prosqlbody IS NULL)
    UNION
    SELECT DISTINCT format('%s may create objects in schema %I%s, on the search path %s runs with (REVOKE CREATE ON SCHEMA %I '
                              'FROM %s, or give the function a SET search_path without it)', h.login, n.nspname,
                              ${grantedAs('h')}, w.fn::regprocedure, n.nspname, ${revokeFrom('h')})
      FROM path_names w
      JOIN pg_namespace n ON n.nspname = w.name AND n.nspname <> 'pg_catalog'
     CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
      JOIN lesser_grantees h ON h.grantee = a.grantee
     WHERE a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner
    UNION
    -- A name on such a path with no schema behind it (a "$user" as expanded too): a lesser login
    -- that may create schemas in the database makes it, and the function the body calls, after
    -- the check (review rev-final F1).
    SELECT DISTINCT format('%s may create schema %I%s, on the search path %s runs with, which does not exist (REVOKE CREATE '
                              'ON DATABASE %I FROM %s, or give the function a SET search_path without it)', h.login, w.name,
                              ${grantedAs('h')}, w.fn::regprocedure, current_database(), ${revokeFrom('h')})
      FROM path_names w
      JOIN lesser_grantees h ON ${createsSchemas('h')}
     -- Not the empty name (a path of '' alone names none: review rev-last N1) nor pg_temp, the
     -- session's own (N2).
     WHERE w.name NOT IN ('', 'pg_temp') AND NOT EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = w.name)
    UNION
    -- A body that may change the path as it runs (where \`anywhere\`) may set it to a schema not made
    -- yet, which such a login makes after the check (review rev-last N3).
    SELECT DISTINCT format('%s may create schemas in the database%s, and %s may change the search path as it runs, to one '
                              'not made yet (REVOKE CREATE ON DATABASE %I FROM %s, or give the function a SET search_path '
                              'of its own instead)', h.login, ${grantedAs('h')}, b.fn::regprocedure, current_database(), ${revokeFrom('h')})
      FROM reached_bodies b
      JOIN lesser_grantees h ON ${createsSchemas('h')}
     WHERE anywhere AND b.sets_path`

/**
 * With `lock`, the problems of a view or a foreign table in scope that the check could not lock
 * (`unlocked`: a foreign table cannot be, a view where the session or the view's owner may not)
 * on which a lesser login holds the TRIGGER privilege: it could add a trigger (INSTEAD OF, on a
 * view) after the check, which the write would fire (review revo O6). One owned by such a role is
 * refused as any relation in scope is (ordinal 1).
 */
const UNLOCKED_PROBLEMS_SQL = `
    UNION ALL
    SELECT DISTINCT 1, format('%s %s cannot be locked against a new trigger, and %s may add one%s (REVOKE TRIGGER ON %s FROM %s)',
                              CASE c.relkind WHEN 'v' THEN 'view' ELSE 'foreign table' END, c.oid::regclass, h.login,
                              ${grantedAs('h')}, c.oid::regclass, ${revokeFrom('h')}), false
      FROM pg_class c
     CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS a
      JOIN lesser_grantees h ON h.grantee = a.grantee
     WHERE c.oid = ANY (unlocked) AND a.privilege_type = 'TRIGGER' AND a.grantee <> c.relowner`

/**
 * With `lock`, the start of the check's block: a refusal where the transaction is not at READ
 * COMMITTED. At REPEATABLE READ or SERIALIZABLE every statement reads the catalog with the
 * transaction's snapshot, which may be older than the check's LOCK: a trigger committed while
 * the LOCK waited would not be seen, and the write would fire it (review revo O5). The runner's
 * transactions, and the exported scripts' (BEGIN ISOLATION LEVEL READ COMMITTED), run at READ
 * COMMITTED, where each statement takes a snapshot after the lock.
 */
function isolationRefusalSql(doing: string | undefined): string {
  return `
  IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '${LESSER_TRIGGERS_STATE}', MESSAGE = pg_catalog.format(
      '${doing ?? "Writing the app''s tables or the module''s bookkeeping"} in this session of role %s runs at %s: the check that '
      'the writes run no code of roles that cannot act as %s reads the catalog with the transaction''s snapshot, which may be '
      'older than its lock on the tables, so a trigger added while it waited would not be seen. Nothing was changed. Run it '
      'in a transaction at READ COMMITTED (BEGIN ISOLATION LEVEL READ COMMITTED), as the runner and the exported scripts do.',
      session_user, pg_catalog.upper(pg_catalog.current_setting('transaction_isolation')), session_user);
  END IF;`
}

/**
 * `names` as an SQL array of names, each spelled in hex: a name that holds quotes or the DO
 * block's own dollar quote stays a name.
 */
function schemaArray(names: readonly string[]): string {
  const spelled = names.map(
    (name) =>
      `pg_catalog.convert_from(pg_catalog.decode('${Buffer.from(name).toString('hex')}', 'hex'), 'UTF8')`,
  )
  return `ARRAY[${spelled.join(', ')}]::pg_catalog.name[]`
}
