-- Migration 008_close_supabase_advisor_findings (up), exported by `npm run migrate:sql` from src/migrations/008_close_supabase_advisor_findings.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.
-- Each of its transactions first runs the checks the runner runs (so does what it runs outside one): it
-- refuses (SQLSTATE 42501) where roles that cannot act as you could have their code run with your power.
-- Each transaction begins at READ COMMITTED, as the runner's do, whatever the database's default (the check
-- of its tables reads the catalog after locking them, and refuses at any other level).
-- Each transaction sets the runner's idle_in_transaction_session_timeout right after BEGIN: a client that
-- stalls inside one loses it, and its locks (docs/sql-editor.md says what a script bounds).

BEGIN ISOLATION LEVEL READ COMMITTED;

SET LOCAL idle_in_transaction_session_timeout = '5000ms';

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

DO $shadowed$
DECLARE
  -- Types named with their schema: the block's declarations are read before it empties the
  -- search_path, where a type of the same name could come first.
  schemas pg_catalog.name[] := pg_catalog.current_schemas(false);
  searched pg_catalog.name[] := pg_catalog.current_schemas(true);
  found pg_catalog.text;
  saved pg_catalog.text := pg_catalog.current_setting('search_path');
  -- pg_database_owner (owner of public since PostgreSQL 15) stands for the database's owner.
  db_owner_role pg_catalog.oid;
  db_owner pg_catalog.oid;
BEGIN
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  SELECT r.oid INTO db_owner_role FROM pg_roles r WHERE r.rolname = 'pg_database_owner';
  SELECT d.datdba INTO db_owner FROM pg_database d WHERE d.datname = current_database();
  WITH lesser_roles AS (SELECT l.oid AS login, g.oid, g.rolname
      FROM pg_roles l, pg_roles g
     WHERE (l.rolcanlogin OR l.oid IN (SELECT a.usesysid FROM pg_stat_activity a)) AND l.oid <> db_owner_role AND NOT (pg_catalog.pg_has_role(l.oid, session_user, 'USAGE')
          AND CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 160000
                   THEN pg_catalog.pg_has_role(l.oid, session_user, 'SET') ELSE true END)
       AND pg_has_role(l.oid, g.oid, 'MEMBER'))
  SELECT string_agg(DISTINCT problem, '; ' ORDER BY problem) INTO found FROM (
    SELECT format('schema %I comes before pg_catalog', s) AS problem
      FROM unnest(searched[1:array_position(searched, 'pg_catalog') - 1]) AS s
     WHERE s IS DISTINCT FROM (SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema())
    UNION ALL
    SELECT format('schema %I is owned by %s', n.nspname, CASE n.nspowner
                       WHEN db_owner_role THEN format('pg_database_owner, that is %s, the database''s owner', pg_get_userbyid(db_owner))
                       ELSE pg_get_userbyid(n.nspowner)::text END)
      FROM pg_namespace n
     WHERE n.nspname = ANY (schemas) AND n.nspname <> 'pg_catalog'
       AND NOT (pg_catalog.pg_has_role(CASE n.nspowner WHEN db_owner_role THEN db_owner ELSE n.nspowner END, session_user, 'USAGE')
          AND CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 160000
                   THEN pg_catalog.pg_has_role(CASE n.nspowner WHEN db_owner_role THEN db_owner ELSE n.nspowner END, session_user, 'SET') ELSE true END)
    UNION ALL
    SELECT format('%s may create objects in schema %I%s', r.rolname, n.nspname,
                     CASE WHEN g.oid <> r.oid THEN format(' (as %s)', g.rolname) ELSE '' END)
      FROM pg_namespace n, pg_roles r, lesser_roles g
     WHERE n.nspname = ANY (schemas) AND n.nspname <> 'pg_catalog' AND r.oid = g.login
       AND has_schema_privilege(g.oid, n.oid, 'CREATE')
    UNION ALL
    -- A name of the path that no schema has yet ("$user" by default): whoever may create
    -- schemas in the database could make it, in the middle of a run.
    SELECT format('%s may create schema %I, which the search_path names%s', r.rolname, missing.name,
                     CASE WHEN g.oid <> r.oid THEN format(' (as %s)', g.rolname) ELSE '' END)
      FROM (SELECT CASE part WHEN '$user' THEN current_user::text ELSE part END AS name
              FROM (SELECT (parse_ident(btrim(entry), false))[1] AS part
                      FROM unnest(string_to_array(saved, ',')) AS entry
                     WHERE btrim(entry) <> '') AS parts) AS missing,
           pg_roles r, lesser_roles g
     WHERE NOT EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = missing.name)
       AND r.oid = g.login
       AND has_database_privilege(g.oid, current_database(), 'CREATE')
    UNION ALL
    SELECT format('%s %I.%s(%s)%s owned by %s', s.kind, s.nsp, s.name, s.args, s.calls, pg_get_userbyid(s.owner))
      FROM (SELECT 'function' AS kind, n.nspname AS nsp, quote_ident(p.proname) AS name,
                   pg_get_function_identity_arguments(p.oid) AS args, '' AS calls, p.proowner AS owner
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE EXISTS (SELECT FROM pg_proc c WHERE c.pronamespace = 'pg_catalog'::regnamespace AND c.proname = p.proname)
            UNION ALL
            -- An operator is its owner's code, and its function's (and its estimators'): a trusted
            -- role's operator over a lesser role's function runs what that role writes (review revn N3).
            SELECT 'operator', n.nspname, o.oprname,
                   concat_ws(', ', CASE WHEN o.oprleft <> 0 THEN format_type(o.oprleft, NULL) END,
                                   CASE WHEN o.oprright <> 0 THEN format_type(o.oprright, NULL) END),
                   f.calls, f.owner
              FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
             CROSS JOIN LATERAL (SELECT '' AS calls, o.oprowner AS owner
                                 UNION ALL
                                 SELECT format(' calls %s,', p.oid::regprocedure), p.proowner
                                   FROM pg_proc p WHERE p.oid IN (o.oprcode, o.oprrest, o.oprjoin)) AS f
             WHERE EXISTS (SELECT FROM pg_operator c WHERE c.oprnamespace = 'pg_catalog'::regnamespace AND c.oprname = o.oprname)
           ) AS s
     WHERE s.nsp = ANY (schemas) AND s.nsp <> 'pg_catalog'
       AND NOT (pg_catalog.pg_has_role(CASE s.owner WHEN db_owner_role THEN db_owner ELSE s.owner END, session_user, 'USAGE')
          AND CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 160000
                   THEN pg_catalog.pg_has_role(CASE s.owner WHEN db_owner_role THEN db_owner ELSE s.owner END, session_user, 'SET') ELSE true END)
  ) AS problems;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format(
      'The search_path of role %s lets roles that cannot act as %s put their code where the module''s queries '
      'would run it with the power of %s: %s. Nothing was read or changed. Revoke their right to create there '
      '(REVOKE CREATE ON SCHEMA public FROM PUBLIC, as PostgreSQL 15 does by default; for a schema the path names '
      'that does not exist yet, REVOKE CREATE ON DATABASE, or take the name out of the search_path), drop such objects or move '
      'them out of the search_path (for an extension: ALTER EXTENSION … SET SCHEMA extensions), keep pg_catalog '
      'first on the search_path, or run the command as a role they can act as.',
      session_user, session_user, session_user, found);
  END IF;
  -- Put back only where nothing was found: the message is made with pg_catalog first on the path,
  -- and an error rolls the setting back with its transaction.
  PERFORM pg_catalog.set_config('search_path', saved, true);
END
$shadowed$;

DO $api_roles$
DECLARE
  found pg_catalog.text;
  fix pg_catalog.text;
  grantors pg_catalog.text;
  saved pg_catalog.text := pg_catalog.current_setting('search_path');
  -- pg_database_owner (owner of public since PostgreSQL 15) stands for the database's owner.
  db_owner_role pg_catalog.oid;
  db_owner pg_catalog.oid;
BEGIN
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  SELECT r.oid INTO db_owner_role FROM pg_roles r WHERE r.rolname = 'pg_database_owner';
  SELECT d.datdba INTO db_owner FROM pg_database d WHERE d.datname = current_database();
  WITH lesser_roles AS (SELECT l.oid AS login, g.oid, g.rolname
      FROM pg_roles l, pg_roles g
     WHERE (l.rolcanlogin OR l.oid IN (SELECT a.usesysid FROM pg_stat_activity a)) AND l.oid <> db_owner_role AND NOT (pg_catalog.pg_has_role(l.oid, session_user, 'USAGE')
          AND CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 160000
                   THEN pg_catalog.pg_has_role(l.oid, session_user, 'SET') ELSE true END)
       AND pg_has_role(l.oid, g.oid, 'MEMBER')),
  -- ADMIN OPTION on an API role, or on a role that is a member of one: granting that role to
  -- itself gives the login the API role too.
  admins AS (
    SELECT l.rolname AS login, g.rolname AS holder, r.rolname AS held,
           pg_get_userbyid(m.grantor) AS grantor,
           string_agg(a.rolname, ', ' ORDER BY a.rolname) FILTER (WHERE a.oid <> r.oid) AS via
      FROM lesser_roles g
      JOIN pg_roles l ON l.oid = g.login
      JOIN pg_auth_members m ON m.member = g.oid AND m.admin_option
      JOIN pg_roles r ON r.oid = m.roleid
      JOIN pg_roles a ON a.rolname IN ('anon', 'authenticated', 'service_role', 'authenticator')
                     AND pg_has_role(r.oid, a.oid, 'MEMBER')
     GROUP BY l.rolname, g.rolname, r.rolname, r.oid, m.grantor
  )
  SELECT string_agg(DISTINCT format('%s%s may administer %s%s', login,
                           CASE WHEN holder <> login THEN format(' (as %s)', holder) ELSE '' END, held,
                           CASE WHEN via IS NOT NULL THEN format(', a member of %s', via) ELSE '' END), '; '),
         -- CASCADE: also what the holder granted with it, to itself or others.
         string_agg(DISTINCT format('REVOKE ADMIN OPTION FOR %I FROM %I GRANTED BY %I CASCADE', held, holder, grantor), '; '),
         string_agg(DISTINCT quote_ident(grantor), ' or ')
    INTO found, fix, grantors
    FROM admins;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format(
      'Logins that cannot act as %s may grant themselves Supabase''s API roles, and would read what '
      'the migrations give them (service_role bypasses row level security; policies TO service_role '
      'guard the integration keys): %s. Nothing was read or changed. As %s (or a superuser), take the right '
      'back (%s), then migrate again.',
      session_user, found, grantors, fix);
  END IF;
  PERFORM pg_catalog.set_config('search_path', saved, true);
END
$api_roles$;

DO $lesser$
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
  saved pg_catalog.text := pg_catalog.current_setting('search_path');
  -- pg_database_owner (owner of public since PostgreSQL 15) stands for the database's owner.
  db_owner_role pg_catalog.oid;
  db_owner pg_catalog.oid;
BEGIN
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  SELECT r.oid INTO db_owner_role FROM pg_roles r WHERE r.rolname = 'pg_database_owner';
  SELECT d.datdba INTO db_owner FROM pg_database d WHERE d.datname = current_database();
  IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format(
      'Writing the app''s tables or the module''s bookkeeping in this session of role %s runs at %s: the check that '
      'the writes run no code of roles that cannot act as %s reads the catalog with the transaction''s snapshot, which may be '
      'older than its lock on the tables, so a trigger added while it waited would not be seen. Nothing was changed. Run it '
      'in a transaction at READ COMMITTED (BEGIN ISOLATION LEVEL READ COMMITTED), as the runner and the exported scripts do.',
      session_user, pg_catalog.upper(pg_catalog.current_setting('transaction_isolation')), session_user);
  END IF;
  -- The reading of WHEN conditions is estimated far above jit_above_cost, though it reads a few
  -- catalog rows: where the server has JIT, compiling it would take longer than running it.
  PERFORM pg_catalog.set_config('jit', 'off', true);
  LOOP
  WITH RECURSIVE scope(oid) AS (
    SELECT w.oid FROM unnest(written) AS w(oid)
    UNION
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       -- public whatever the session's path: what names public.x402_resources writes it (review revd F1).
       AND ((n.nspname = ANY (schemas) AND n.nspname <> 'pg_catalog') OR n.nspname IN ('public', 'x402_migrations', 'x402_backup'))
    UNION
    -- Joined, not a LATERAL per table: pg_constraint has no index on confrelid, and a scan of it
    -- per table in scope made the check quadratic in the tables (review revk K2).
    SELECT reached.oid FROM scope s JOIN (
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
        JOIN pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p', 'v', 'f')
    ) AS reached(parent, oid, truncate_only) ON reached.parent = s.oid AND NOT reached.truncate_only
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
  IF tables IS NOT NULL THEN
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
  END IF;
  -- No login that cannot act as the session's user, and no right granted to PUBLIC that one made
  -- later could use: no one else can have made, or can change, the code the writes run, and
  -- nothing is read but row level security, which is not about them (a laptop's server, the
  -- embedded database). Asked after the locks, as the rest: a login made after it is made by a
  -- role trusted already.
  -- Nor where a function that runs SQL through a connection of its own exists (dblink's): what
  -- it changes commits apart, unseen by a down's count of what it deleted, so a trusted body that
  -- calls one is refused whoever could have made it (review N10-8).
  EXIT WHEN NOT EXISTS (SELECT l.oid AS login, g.oid, g.rolname
      FROM pg_roles l, pg_roles g
     WHERE (l.rolcanlogin OR l.oid IN (SELECT a.usesysid FROM pg_stat_activity a)) AND l.oid <> db_owner_role AND NOT (pg_catalog.pg_has_role(l.oid, session_user, 'USAGE')
          AND CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 160000
                   THEN pg_catalog.pg_has_role(l.oid, session_user, 'SET') ELSE true END)
       AND pg_has_role(l.oid, g.oid, 'MEMBER')) AND NOT EXISTS (SELECT FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) AS a
                WHERE a.grantee = 0 AND a.privilege_type = 'CREATE'
               UNION ALL
               SELECT FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
                WHERE a.grantee = 0 AND a.privilege_type = 'TRIGGER'
               UNION ALL
               SELECT WHERE EXISTS (SELECT FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) AS a
                   WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CREATE'))
            AND NOT EXISTS (SELECT FROM pg_proc q WHERE q.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'c')
                                                   AND q.prosrc ~ '^(dblink[a-z_]*|crosstab[a-z_0-9]*|connectby[a-z_]*|xpath_table)$')
            AND NOT EXISTS (
    -- Row level security that applies to the role that writes (FORCE ROW LEVEL SECURITY on a
    -- table it owns, RLS on another's, without BYPASSRLS): every policy of the table would run
    -- with its power, and whatever their expressions read (views, other tables and their
    -- policies), and would hide rows from the write. Supabase's postgres and service_role bypass it.
    SELECT 0, format('row level security applies to %s on %s', current_user, c.oid::regclass), false
      FROM pg_class c
     WHERE c.oid = ANY (tables) AND row_security_active(c.oid)
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
     WHERE v.oid = ANY (tables) AND v.relkind = 'v'
);
  -- "$user" on a path is the role code runs as: the session's or the current user, a role a
  -- function sets itself (SET role), or the owner of a function the check trusts, which its body
  -- and what it calls run as where it is SECURITY DEFINER (or a body makes it so): the one rule
  -- of "$user", for a function's own path, a path a body gives one, and the session's (reviews
  -- rev-paths F5, rev7 U2, rev8 U3, rev9 R9-1, R9-2). Not a lesser login's: its code is refused
  -- wherever the walk reaches it.
  IF run_as IS NULL THEN
    WITH lesser_roles AS (SELECT l.oid AS login, g.oid, g.rolname
      FROM pg_roles l, pg_roles g
     WHERE (l.rolcanlogin OR l.oid IN (SELECT a.usesysid FROM pg_stat_activity a)) AND l.oid <> db_owner_role AND NOT (pg_catalog.pg_has_role(l.oid, session_user, 'USAGE')
          AND CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 160000
                   THEN pg_catalog.pg_has_role(l.oid, session_user, 'SET') ELSE true END)
       AND pg_has_role(l.oid, g.oid, 'MEMBER'))
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
  WITH RECURSIVE lesser_roles AS (SELECT l.oid AS login, g.oid, g.rolname
      FROM pg_roles l, pg_roles g
     WHERE (l.rolcanlogin OR l.oid IN (SELECT a.usesysid FROM pg_stat_activity a)) AND l.oid <> db_owner_role AND NOT (pg_catalog.pg_has_role(l.oid, session_user, 'USAGE')
          AND CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 160000
                   THEN pg_catalog.pg_has_role(l.oid, session_user, 'SET') ELSE true END)
       AND pg_has_role(l.oid, g.oid, 'MEMBER')),
  -- Who may use a right granted to a role (grantee): a lesser login, as that role (rolname, and
  -- login, its name); or, granted to PUBLIC (0), any login, one made after the check too (review
  -- rev8 R8-2).
  lesser_grantees(grantee, rolname, login) AS (
            SELECT g.oid, g.rolname::text, r.rolname::text FROM lesser_roles g JOIN pg_roles r ON r.oid = g.login
            UNION ALL
            SELECT 0::oid, 'PUBLIC', 'any login (one made after this check too)'
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
             WHERE pt.partrelid IN (SELECT a.relid FROM unnest(tables) AS t CROSS JOIN LATERAL pg_partition_ancestors(t) AS a)
            UNION ALL
            -- A reached body that inserts computes the written table's defaults with the writer's
            -- power (review revw B1); the module's own writes insert into no app table, but into
            -- its bookkeeping tables, leaving out the columns with defaults (review rev13 B1).
            SELECT format('default of column %I', a.attname), ad.adrelid, 'pg_attrdef'::regclass, ad.oid, ad.adbin::text, NULL
              FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE (ad.adrelid = ANY (inserted)
                    OR ad.adrelid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                       WHERE n.nspname = 'x402_migrations'))
               AND a.attgenerated = ''
            UNION ALL
            -- ON DELETE/UPDATE SET DEFAULT computes the referencing columns' defaults (review revy Y2).
            SELECT format('default of column %I', a.attname), ad.adrelid, 'pg_attrdef'::regclass, ad.oid, ad.adbin::text, NULL
              FROM pg_constraint k
              JOIN pg_attrdef ad ON ad.adrelid = k.conrelid AND ad.adnum = ANY (k.conkey)
              JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE k.contype = 'f' AND 'd' IN (k.confdeltype, k.confupdtype) AND k.conrelid = ANY (tables)
  ),
  -- The types the module's writes make values of: its columns', and those the attached code
  -- names (a CHECK's cast to a domain runs that domain's CHECKs, and what its base type reaches).
  typed_uses AS (
            SELECT format('column %I of %s is of type', a.attname, a.attrelid::regclass) AS subject, a.atttypid AS typ
              FROM pg_attribute a WHERE a.attrelid = ANY (tables) AND a.attnum > 0 AND NOT a.attisdropped
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
              JOIN pg_proc p ON p.oid = CASE d.refclassid
              WHEN 'pg_proc'::regclass THEN d.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = d.refobjid)
            END
             CROSS JOIN LATERAL (SELECT p.prorettype AS typ, 'returns' AS verb
          UNION ALL
          SELECT a.typ, CASE WHEN a.mode IN ('o', 't') THEN 'gives' ELSE 'takes' END
            FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargmodes) AS a(typ, mode)) AS ft
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
  column_types(subject, top, parent, how, typ) AS (
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
         FROM (SELECT format('constraint %I', k.conname) AS part, d.refclassid, d.refobjid
            FROM pg_constraint k
           CROSS JOIN LATERAL (SELECT d.refclassid, d.refobjid FROM pg_depend d
                                WHERE d.classid = 'pg_constraint'::regclass AND d.objid = k.oid OFFSET 0) AS d
           WHERE k.contypid = ty.oid
          UNION ALL
          SELECT 'default', d.refclassid, d.refobjid FROM pg_depend d
           WHERE ty.typdefaultbin IS NOT NULL AND d.classid = 'pg_type'::regclass AND d.objid = ty.oid
             AND NOT (d.refclassid = 'pg_type'::regclass AND d.refobjid = ty.typbasetype)) AS dc
        WHERE dc.refclassid = 'pg_type'::regclass AND dc.refobjid <> ty.oid
       UNION ALL
       -- And one that calls a function returning a domain runs that domain's CHECKs.
       SELECT ft.typ, format('whose %s calls %s, which %s type %s', dc.part, p.oid::regprocedure, ft.verb,
                             format_type(ft.typ, NULL))
         FROM (SELECT format('constraint %I', k.conname) AS part, d.refclassid, d.refobjid
            FROM pg_constraint k
           CROSS JOIN LATERAL (SELECT d.refclassid, d.refobjid FROM pg_depend d
                                WHERE d.classid = 'pg_constraint'::regclass AND d.objid = k.oid OFFSET 0) AS d
           WHERE k.contypid = ty.oid
          UNION ALL
          SELECT 'default', d.refclassid, d.refobjid FROM pg_depend d
           WHERE ty.typdefaultbin IS NOT NULL AND d.classid = 'pg_type'::regclass AND d.objid = ty.oid
             AND NOT (d.refclassid = 'pg_type'::regclass AND d.refobjid = ty.typbasetype)) AS dc
         JOIN pg_proc p ON p.oid = CASE dc.refclassid
              WHEN 'pg_proc'::regclass THEN dc.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = dc.refobjid)
            END
        CROSS JOIN LATERAL (SELECT p.prorettype AS typ, 'returns' AS verb
          UNION ALL
          SELECT a.typ, CASE WHEN a.mode IN ('o', 't') THEN 'gives' ELSE 'takes' END
            FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargmodes) AS a(typ, mode)) AS ft
        WHERE ft.typ <> ty.oid
       UNION ALL
       -- A cast from or to the type makes values of its function's types: one returning a domain
       -- runs that domain's CHECKs (005's down casts resource_type to text; review revk K4).
       SELECT ft.typ, format('whose cast %s calls %s, which %s type %s', CASE WHEN c.castsource = ty.oid THEN 'to ' ELSE 'from ' END
                  || format_type(CASE WHEN c.castsource = ty.oid THEN c.casttarget ELSE c.castsource END, NULL),
                             p.oid::regprocedure, ft.verb, format_type(ft.typ, NULL))
         FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc
        CROSS JOIN LATERAL (SELECT p.prorettype AS typ, 'returns' AS verb
          UNION ALL
          SELECT a.typ, CASE WHEN a.mode IN ('o', 't') THEN 'gives' ELSE 'takes' END
            FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargmodes) AS a(typ, mode)) AS ft
        WHERE ty.oid IN (c.castsource, c.casttarget) AND ft.typ <> ty.oid
     ) AS reached
     WHERE ty.oid >= 16384
  ),
  column_type_code(problem) AS (
    SELECT format('%s %s, owned by %s', t.subject, format_type(t.top, NULL) || CASE WHEN t.parent IS NULL THEN ''
                                         WHEN t.parent = t.top THEN ', ' || t.how
                                         ELSE format(', which reaches %s, %s', format_type(t.parent, NULL), t.how) END, pg_get_userbyid(ty.typowner))
      FROM column_types t JOIN pg_type ty ON ty.oid = t.typ
     WHERE ty.typowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- A type's own functions run wherever its values are read, written, compared or indexed
    -- (a GiST index over a range calls its subtype_diff on every insertion).
    SELECT format('%s %s, whose %s function is %s, owned by %s', t.subject, format_type(t.top, NULL) || CASE WHEN t.parent IS NULL THEN ''
                                         WHEN t.parent = t.top THEN ', ' || t.how
                                         ELSE format(', which reaches %s, %s', format_type(t.parent, NULL), t.how) END, f.kind, p.oid::regprocedure,
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
    SELECT format('%s %s, whose cast %s calls %s, owned by %s', t.subject, format_type(t.top, NULL) || CASE WHEN t.parent IS NULL THEN ''
                                         WHEN t.parent = t.top THEN ', ' || t.how
                                         ELSE format(', which reaches %s, %s', format_type(t.parent, NULL), t.how) END, CASE WHEN c.castsource = t.typ THEN 'to ' ELSE 'from ' END
                  || format_type(CASE WHEN c.castsource = t.typ THEN c.casttarget ELSE c.castsource END, NULL),
                  p.oid::regprocedure, pg_get_userbyid(p.proowner))
      FROM column_types t
      JOIN pg_cast c ON t.typ IN (c.castsource, c.casttarget) AND c.oid >= 16384
       AND (t.typ >= 16384 OR greatest(c.castsource, c.casttarget) < 16384)
      JOIN pg_proc p ON p.oid = c.castfunc
     WHERE p.proowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- An operator on the type (its function, and the planner's estimators), found by the
    -- module's own comparisons where its schema is on the path: 005's down deletes WHERE
    -- resource_type = 'openrouter_instant' (review revk K5). Which ones, as for casts.
    SELECT format('%s %s, whose operator %s calls %s, owned by %s', t.subject, format_type(t.top, NULL) || CASE WHEN t.parent IS NULL THEN ''
                                         WHEN t.parent = t.top THEN ', ' || t.how
                                         ELSE format(', which reaches %s, %s', format_type(t.parent, NULL), t.how) END, o.oid::regoperator,
                  p.oid::regprocedure, pg_get_userbyid(p.proowner))
      FROM column_types t
      JOIN pg_operator o ON t.typ IN (o.oprleft, o.oprright) AND o.oid >= 16384
       AND (t.typ >= 16384 OR greatest(o.oprleft, o.oprright) < 16384)
      JOIN pg_proc p ON p.oid IN (o.oprcode, o.oprrest, o.oprjoin)
     WHERE p.proowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- An operator class the type carries: a range's subtype class orders the bounds of every
    -- value made, and a type's default classes compare, sort and hash it wherever no index
    -- names one (an array's or a composite's comparison, GROUP BY, DISTINCT; review revk K1).
    -- A default class may be made for a pg_catalog type too (initdb's are declared on anyarray,
    -- anyrange…, and PostgreSQL prefers the exact type; review revm M3).
    SELECT format('%s %s, whose %s operator class calls %s', t.subject, format_type(t.top, NULL) || CASE WHEN t.parent IS NULL THEN ''
                                         WHEN t.parent = t.top THEN ', ' || t.how
                                         ELSE format(', which reaches %s, %s', format_type(t.parent, NULL), t.how) END, cls.kind, code.what)
      FROM column_types t
      JOIN (SELECT 'pg_opclass'::regclass::oid AS refclassid, oc.oid AS refobjid, 'default' AS kind, oc.opcintype AS typ
              FROM pg_opclass oc
             WHERE oc.opcdefault AND oc.oid >= 16384
            UNION ALL
            SELECT 'pg_opclass'::regclass::oid, r.rngsubopc, 'subtype', r.rngtypid FROM pg_range r) AS cls ON cls.typ = t.typ
     CROSS JOIN LATERAL (SELECT format('%s, owned by %s', p.oid::regprocedure, pg_get_userbyid(p.proowner)) AS what
         FROM pg_proc p
        WHERE p.oid = CASE cls.refclassid
              WHEN 'pg_proc'::regclass THEN cls.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = cls.refobjid)
            END
          AND p.proowner IN (SELECT oid FROM lesser_roles)
       UNION ALL
       SELECT format('relation %s, owned by %s', c.oid::regclass, pg_get_userbyid(c.relowner))
         FROM pg_class c
        WHERE cls.refclassid = 'pg_class'::regclass AND c.oid = cls.refobjid AND c.relowner IN (SELECT oid FROM lesser_roles)
          AND true
       UNION ALL
       SELECT format('%s, owned by %s, support function %s of operator class %s.%I', p.oid::regprocedure,
                     pg_get_userbyid(p.proowner), ap.amprocnum, oc.opcnamespace::regnamespace, oc.opcname)
         FROM pg_opclass oc
         JOIN pg_amproc ap ON ap.amprocfamily = oc.opcfamily
         JOIN pg_proc p ON p.oid = ap.amproc
        WHERE cls.refclassid = 'pg_opclass'::regclass AND oc.oid = cls.refobjid AND p.proowner IN (SELECT oid FROM lesser_roles)
       UNION ALL
       SELECT format('%s, owned by %s, the function of operator %s of operator class %s.%I', p.oid::regprocedure,
                     pg_get_userbyid(p.proowner), o.oid::regoperator, oc.opcnamespace::regnamespace, oc.opcname)
         FROM pg_opclass oc
         JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily
         JOIN pg_operator o ON o.oid = ao.amopopr
         JOIN pg_proc p ON p.oid = o.oprcode
        WHERE cls.refclassid = 'pg_opclass'::regclass AND oc.oid = cls.refobjid AND p.proowner IN (SELECT oid FROM lesser_roles)) AS code
    UNION ALL
    -- A domain's constraint runs whenever a value becomes of the domain, and its default wherever
    -- a column of it is left out, with what they call.
    SELECT format('%s %s, whose %s calls %s', t.subject, format_type(t.top, NULL) || CASE WHEN t.parent IS NULL THEN ''
                                         WHEN t.parent = t.top THEN ', ' || t.how
                                         ELSE format(', which reaches %s, %s', format_type(t.parent, NULL), t.how) END, dc.part, code.what)
      FROM column_types t
      JOIN pg_type ty ON ty.oid = t.typ AND ty.typtype = 'd'
     CROSS JOIN LATERAL (SELECT format('constraint %I', k.conname) AS part, d.refclassid, d.refobjid
            FROM pg_constraint k
           CROSS JOIN LATERAL (SELECT d.refclassid, d.refobjid FROM pg_depend d
                                WHERE d.classid = 'pg_constraint'::regclass AND d.objid = k.oid OFFSET 0) AS d
           WHERE k.contypid = ty.oid
          UNION ALL
          SELECT 'default', d.refclassid, d.refobjid FROM pg_depend d
           WHERE ty.typdefaultbin IS NOT NULL AND d.classid = 'pg_type'::regclass AND d.objid = ty.oid
             AND NOT (d.refclassid = 'pg_type'::regclass AND d.refobjid = ty.typbasetype)) AS dc
     CROSS JOIN LATERAL (SELECT format('%s, owned by %s', p.oid::regprocedure, pg_get_userbyid(p.proowner)) AS what
         FROM pg_proc p
        WHERE p.oid = CASE dc.refclassid
              WHEN 'pg_proc'::regclass THEN dc.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = dc.refobjid)
            END
          AND p.proowner IN (SELECT oid FROM lesser_roles)
       UNION ALL
       SELECT format('relation %s, owned by %s', c.oid::regclass, pg_get_userbyid(c.relowner))
         FROM pg_class c
        WHERE dc.refclassid = 'pg_class'::regclass AND c.oid = dc.refobjid AND c.relowner IN (SELECT oid FROM lesser_roles)
          AND true
       UNION ALL
       SELECT format('%s, owned by %s, support function %s of operator class %s.%I', p.oid::regprocedure,
                     pg_get_userbyid(p.proowner), ap.amprocnum, oc.opcnamespace::regnamespace, oc.opcname)
         FROM pg_opclass oc
         JOIN pg_amproc ap ON ap.amprocfamily = oc.opcfamily
         JOIN pg_proc p ON p.oid = ap.amproc
        WHERE dc.refclassid = 'pg_opclass'::regclass AND oc.oid = dc.refobjid AND p.proowner IN (SELECT oid FROM lesser_roles)
       UNION ALL
       SELECT format('%s, owned by %s, the function of operator %s of operator class %s.%I', p.oid::regprocedure,
                     pg_get_userbyid(p.proowner), o.oid::regoperator, oc.opcnamespace::regnamespace, oc.opcname)
         FROM pg_opclass oc
         JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily
         JOIN pg_operator o ON o.oid = ao.amopopr
         JOIN pg_proc p ON p.oid = o.oprcode
        WHERE dc.refclassid = 'pg_opclass'::regclass AND oc.oid = dc.refobjid AND p.proowner IN (SELECT oid FROM lesser_roles)) AS code
    UNION ALL
    SELECT format('%s %s, whose %s calls %s, which runs %s', t.subject, format_type(t.top, NULL) || CASE WHEN t.parent IS NULL THEN ''
                                         WHEN t.parent = t.top THEN ', ' || t.how
                                         ELSE format(', which reaches %s, %s', format_type(t.parent, NULL), t.how) END, de.part,
                  p.oid::regprocedure, CASE WHEN p.proname ~ '^(pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$' AND p.pronamespace = 'pg_catalog'::regnamespace THEN 'the code of a type named as text' ELSE 'SQL given as text' END)
      FROM column_types t
      JOIN pg_type ty ON ty.oid = t.typ AND ty.typtype = 'd'
     CROSS JOIN LATERAL (SELECT format('constraint %I', k.conname) AS part, k.conbin::text AS tree FROM pg_constraint k WHERE k.contypid = ty.oid
          UNION ALL
          SELECT 'default', ty.typdefaultbin::text WHERE ty.typdefaultbin IS NOT NULL) AS de
      JOIN pg_proc p ON ((p.pronamespace = 'pg_catalog'::regnamespace
         AND p.proname ~ '^([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$' AND (p.proname <> 'ts_rewrite' OR p.pronargs = 2))
        -- A C function of contrib's that runs SQL given as text, by its symbol (dblink_exec in a
        -- CHECK: review rev3 R9c), whatever its name or schema.
        OR (p.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'c')
            AND p.prosrc ~ '^(dblink[a-z_]*|crosstab[a-z_0-9]*|connectby[a-z_]*|xpath_table)$'))
       AND de.tree ~ (':funcid ' || p.oid || '\M')
  ),
  when_peel AS (
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
  ),
  -- The functions that the server runs without a name in the code, made after initdb: a cast's,
  -- an operator's (and its estimators'), an aggregate's, an operator class's or family's (an
  -- index, a range's bounds: review rev7 OPC1, OPC2, RNG1), a range type's, a type's input,
  -- output and modifier functions (GIST1, TM1), and those an expression of extended statistics
  -- calls (ANALYZE: ST1), an index's expressions or predicate, or an inheritance child's CHECK
  -- (the planner's: rev12); of_lesser_type where the type is a lesser login's own (walked as a type).
  implicit_functions(what, fn, of_lesser_type) AS (
            SELECT format('cast (%s AS %s)', format_type(c.castsource, NULL), format_type(c.casttarget, NULL)), c.castfunc,
                   EXISTS (SELECT FROM pg_type t WHERE t.oid IN (c.castsource, c.casttarget) AND t.typowner IN (SELECT oid FROM lesser_roles))
              FROM pg_cast c WHERE c.oid >= 16384 AND c.castfunc <> 0
            UNION ALL
            SELECT format('operator %s', o.oid::regoperator), f.fn, false
              FROM pg_operator o CROSS JOIN LATERAL (VALUES (o.oprcode::oid), (o.oprrest::oid), (o.oprjoin::oid)) AS f(fn)
             WHERE (o.oid >= 16384 OR f.fn >= 16384) AND f.fn <> 0
            UNION ALL
            SELECT format('aggregate %s', a.aggfnoid::regprocedure), f.fn, false
              FROM pg_aggregate a
             CROSS JOIN LATERAL (VALUES (a.aggtransfn::oid), (a.aggfinalfn::oid), (a.aggcombinefn::oid), (a.aggserialfn::oid),
                                        (a.aggdeserialfn::oid), (a.aggmtransfn::oid), (a.aggminvtransfn::oid),
                                        (a.aggmfinalfn::oid)) AS f(fn)
             WHERE a.aggfnoid >= 16384 AND f.fn <> 0
            UNION ALL
            SELECT format('operator family %s', f.opfname), a.amproc, false
              FROM pg_amproc a JOIN pg_opfamily f ON f.oid = a.amprocfamily
             -- A function added to a built-in family too (review rev8 OPF1).
             WHERE a.amprocfamily >= 16384 OR a.amproc >= 16384
            UNION ALL
            SELECT format('type %s', format_type(ty.oid, NULL)), f.fn, ty.typowner IN (SELECT oid FROM lesser_roles)
              FROM pg_type ty
             CROSS JOIN LATERAL (VALUES (ty.typinput::oid), (ty.typoutput::oid), (ty.typreceive::oid), (ty.typsend::oid),
                                        (ty.typmodin::oid), (ty.typmodout::oid), (ty.typanalyze::oid), (ty.typsubscript::oid),
                                        ((SELECT r.rngcanonical::oid FROM pg_range r WHERE r.rngtypid = ty.oid)),
                                        ((SELECT r.rngsubdiff::oid FROM pg_range r WHERE r.rngtypid = ty.oid))) AS f(fn)
             -- A function given to a built-in type too (ALTER TYPE … SET: review rev8 TM2).
             WHERE (ty.oid >= 16384 OR f.fn >= 16384) AND f.fn <> 0
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
            SELECT format('%s on %s', attached.what, attached.tbl::regclass), CASE d.refclassid
              WHEN 'pg_proc'::regclass THEN d.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = d.refobjid)
            END, attached.tbl, false, false
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
             WHERE p.oid >= 16384 AND p.prolang IN (SELECT oid FROM opaque_languages)
               AND (n.nspname = ANY (session_path) OR n.nspname = 'public') AND n.nspname <> 'pg_catalog'
               AND EXISTS (SELECT FROM pg_proc c WHERE c.pronamespace = 'pg_catalog'::regnamespace AND c.proname = p.proname)
            UNION
            -- A trusted function whose name the check cannot match in a body (a double quote, a
            -- backslash, 63 bytes: see BODY_CALLS_PROBLEMS_SQL): walked, wherever it is (review rev11 R11-10).
            SELECT format('function %s, whose name the check cannot match in a body', p.oid::regprocedure), p.oid, NULL, false, false
              FROM pg_proc p
             WHERE p.oid >= 16384 AND p.prolang IN (SELECT oid FROM opaque_languages)
               AND (strpos(p.proname, '"') > 0 OR strpos(p.proname, chr(92)) > 0 OR octet_length(p.proname) = 63)
            UNION
            SELECT format('type %s', format_type(ty.oid, NULL)), reached.fn, NULL, true, false
              FROM (SELECT DISTINCT t.typ FROM column_types t) AS t JOIN pg_type ty ON ty.oid = t.typ
             CROSS JOIN LATERAL (
               SELECT CASE dc.refclassid
              WHEN 'pg_proc'::regclass THEN dc.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = dc.refobjid)
            END AS fn FROM (SELECT format('constraint %I', k.conname) AS part, d.refclassid, d.refobjid
            FROM pg_constraint k
           CROSS JOIN LATERAL (SELECT d.refclassid, d.refobjid FROM pg_depend d
                                WHERE d.classid = 'pg_constraint'::regclass AND d.objid = k.oid OFFSET 0) AS d
           WHERE k.contypid = ty.oid
          UNION ALL
          SELECT 'default', d.refclassid, d.refobjid FROM pg_depend d
           WHERE ty.typdefaultbin IS NOT NULL AND d.classid = 'pg_type'::regclass AND d.objid = ty.oid
             AND NOT (d.refclassid = 'pg_type'::regclass AND d.refobjid = ty.typbasetype)) AS dc WHERE ty.typtype = 'd'
               UNION ALL
               SELECT c.castfunc FROM pg_cast c
                WHERE ty.oid IN (c.castsource, c.casttarget) AND c.oid >= 16384
                  AND (ty.oid >= 16384 OR greatest(c.castsource, c.casttarget) < 16384)
               UNION ALL
               SELECT f.fn FROM pg_operator o CROSS JOIN LATERAL (VALUES (o.oprcode::oid), (o.oprrest::oid), (o.oprjoin::oid)) AS f(fn)
                WHERE ty.oid IN (o.oprleft, o.oprright) AND o.oid >= 16384
                  AND (ty.oid >= 16384 OR greatest(o.oprleft, o.oprright) < 16384)
             ) AS reached
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
              FROM pg_proc q JOIN pg_namespace qn ON qn.oid = q.pronamespace WHERE q.oid >= 16384
  ),
  named_relations AS MATERIALIZED (
            SELECT c.oid, c.relname, c.relkind, lower(c.relname) AS lname, cn.nspname, lower(c.relname) ~ '[^a-z0-9_]' AS odd
              FROM pg_class c JOIN pg_namespace cn ON cn.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND c.oid >= 16384
  ),
  named_types AS MATERIALIZED (
            SELECT t.oid, t.typname, lower(t.typname) AS lname, tn.nspname, lower(t.typname) ~ '[^a-z0-9_]' AS odd
              FROM pg_type t JOIN pg_namespace tn ON tn.oid = t.typnamespace WHERE t.oid >= 16384
  ),
  -- What a write of a relation also writes (firedRelationsSql), for the triggers that a reached
  -- body's write fires beyond the relation it names.
  fired_edges(parent, oid, truncate_only) AS MATERIALIZED (
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
        JOIN pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p', 'v', 'f')
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
            SELECT r.what, r.fn, coalesce((SELECT f.path FROM function_paths f WHERE f.fn = r.fn), (CASE WHEN anywhere THEN (SELECT a.path FROM all_schemas a)
                                 ELSE session_path || ARRAY['public', 'extensions']::name[] END))
              FROM reached_functions r WHERE r.fn >= 16384
            UNION
            SELECT r.what, r.fn, wp.path
              FROM reached_functions r JOIN written_paths wp ON wp.tbl = r.tbl
             WHERE r.fn >= 16384 AND NOT EXISTS (SELECT FROM function_paths f WHERE f.fn = r.fn)
            UNION
            SELECT r.what, r.fn, wp.path
              FROM reached_functions r
             CROSS JOIN (SELECT w.path FROM written_paths w UNION SELECT u.path FROM body_typed_uses u) AS wp
             WHERE r.typed AND r.fn >= 16384 AND NOT EXISTS (SELECT FROM function_paths f WHERE f.fn = r.fn)
            UNION
            -- A path a trusted reached body runs DDL with (the last pass's: ddl_paths), not every
            -- function's own, reached or not (review rev-final F2: the platform's webhook's), nor a
            -- BEGIN ATOMIC body's, which runs none (review rev-last N4).
            SELECT r.what, r.fn, ARRAY(SELECT jsonb_array_elements_text(e.value))::name[]
              FROM reached_functions r CROSS JOIN jsonb_array_elements(ddl_paths) AS e
             WHERE r.event AND r.fn >= 16384 AND NOT EXISTS (SELECT FROM function_paths f WHERE f.fn = r.fn)
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
             WHERE p.oid >= 16384
  ),
  -- Each function reached, with the path it runs with, walked once (what reaches it is joined
  -- after, from body_edges: review revw, cost).
  body_nodes(fn, path) AS (
            SELECT DISTINCT r.fn, r.path FROM reached_seeds r
            UNION
            SELECT called.fn, called.path FROM body_nodes w CROSS JOIN LATERAL (SELECT called.fn,
                   coalesce((SELECT f.path FROM function_paths f WHERE f.fn = called.fn),
                            CASE WHEN sets_path.anywhere THEN (SELECT a.path FROM all_schemas a) ELSE w.path END) AS path,
                   called.how
              FROM pg_proc p
             -- A body that changes its path as it runs (SET LOCAL search_path, set_config(…)): its bare
             -- names, and those of what it calls without a path of its own, resolve in any schema
             -- (review revu R3); those of every other body too, on the next pass (anywhere: review revv V2).
             -- OFFSET 0 (here and below): computed once per body, before the names are matched, not
             -- pushed down into the scan of every candidate name.
             CROSS JOIN LATERAL (SELECT t.raw, t.src, t.lsrc, ARRAY(SELECT DISTINCT w FROM regexp_split_to_table(t.lsrc, '[^a-z0-9_]+') AS w WHERE w <> '') AS words
                 FROM (SELECT e.raw, e.src, lower(e.src) AS lsrc
                         FROM (SELECT b.raw, CASE WHEN strpos(b.raw, chr(92)) > 0 THEN (SELECT coalesce(string_agg(CASE WHEN x.m[1] IS NOT NULL THEN x.m[1]
                                          WHEN x.m[2] IS NULL THEN x.m[3]
                                          WHEN c.code BETWEEN 1 AND 127 THEN chr(c.code) ELSE ' ' END, '' ORDER BY x.o), '')
                   FROM regexp_matches(b.raw, '([^' || repeat(chr(92), 2) || ']+)|' || repeat(chr(92), 2)
                                       || '(b|f|n|r|t|[0-7]{1,3}|x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})|' || repeat(chr(92), 2) || '(.?)', 'g')
                        WITH ORDINALITY AS x(m, o)
                  CROSS JOIN LATERAL (
                    SELECT CASE WHEN x.m[2] IS NULL THEN NULL
                                WHEN x.m[2] = 'b' THEN 8 WHEN x.m[2] = 'f' THEN 12 WHEN x.m[2] = 'n' THEN 10
                                WHEN x.m[2] = 'r' THEN 13 WHEN x.m[2] = 't' THEN 9
                                WHEN x.m[2] ~ '^[0-7]' THEN (SELECT sum(substr(x.m[2], i, 1)::int * (8 ^ (length(x.m[2]) - i))::int)
                                                              FROM generate_series(1, length(x.m[2])) AS i)::int
                                ELSE ('x' || lpad(substr(x.m[2], 2), 8, '0'))::bit(32)::int END AS code
                  ) AS c) ELSE b.raw END AS src
                                 FROM (SELECT CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_get_function_sqlbody(p.oid) END AS raw
                                       OFFSET 0) AS b
                               OFFSET 0) AS e
                       OFFSET 0) AS t) AS b
             CROSS JOIN LATERAL (SELECT p.prosqlbody IS NULL AND (p.prolang NOT IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
           OR regexp_replace(b.raw, ('(?<![[:alnum:]_$])execute[[:space:]]+(format[[:space:]]*[(][[:space:]]*)?''[[:space:]]*set[[:space:]]+(local[[:space:]]+)?'
  || '[a-z_][a-z0-9_$]*([.][a-z_][a-z0-9_$]*)+[[:space:]]*(to|=)[[:space:]]*(%L|[a-z0-9_.-]+)[[:space:]]*'''
  -- The statement is that SET alone: what follows the string is the end of the EXECUTE (in
  -- format(), after its arguments, plain ones: no string, call or ;), never more SQL joined to it.
  || '([[:space:]]*,[^;''()]*[)])?(?=[[:space:]]*;)'), 'perform null', 'gi') ~* ('(' || ('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*') || '|(?<![[:alnum:]_$])(query|in|for)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+)execute(?![[:alnum:]_$])|'
  || ('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*') || 'do(?![[:alnum:]_$])' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*(language' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*("([^"]|"")*"|''([^'']|'''')*''|[[:alnum:]_$]+)'
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?([$]([[:alpha:]_][[:alnum:]_]*)?[$]|[eu]?&?'')')
           OR b.raw ~* '(?<![[:alnum:]_$])([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in|dblink[a-z_]*|crosstab[a-z_0-9]*|connectby[a-z_]*|xpath_table)(?![[:alnum:]_$])'
           -- A schema renamed may become one the path names ("$user" as the runner's name: review
           -- rev3 R6); read to the end of the body, not to a ; that a comment may hold (review rev4).
           OR b.raw ~* ('(?<![[:alnum:]_$])alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+schema(?![[:alnum:]_$]).*(?<![[:alnum:]_$])rename(?![[:alnum:]_$])')
           OR b.raw ~* (('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*') || '(set(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+(local|session))*(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")(search_path|schema|role|authorization)|reset('
                     || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")(search_path|all))"?(?![[:alnum:]_$])')
           OR b.raw ~* ('set_config"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[(]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*''(search_path|role|session_authorization)''')
           -- An UPDATE of pg_settings is a set_config (its rule's: review revz Z2), through ONLY and
           -- a database's name too (review revo O2); a read is not (pgsodium's event trigger
           -- function reads it: review revr R6).
           OR b.raw ~* ('(?<![[:alnum:]_$])update(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+|(?="))(only(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '|[(])*)?(' || ('(("([^"]|"")*"|[[:alnum:]_$]+)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?"?')
                         || 'pg_catalog' || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?') || ')?"?pg_settings(?![[:alnum:]_$])')
           OR regexp_replace(b.raw, 'set_config"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[(]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*''[^''' || repeat(chr(92), 2) || ']*''(::text)?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*,', '', 'gi')
              ~* ('set_config"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[(]')) AS anywhere,
                                        CASE WHEN p.prosqlbody IS NULL THEN (CASE WHEN b.words && ARRAY['function', 'procedure']::text[]
                 AND regexp_replace(b.raw, ('(?:("(?:[^"]|"")*?")(?!")|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[eE]('')(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?''(?:(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*''(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?'')*?(?!'')(?!(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*'')|('')(?:[^'']|'''')*?''(?!'')|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)([$])([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$].*?[$]' || chr(92) || '5[$]|--[^' || chr(10) || chr(13) || ']*?(?=[' || chr(10) || chr(13) || ']|$)|/[*].*?[*]/){1,1}?'), (' ' || chr(92) || '1' || chr(92) || '2' || chr(92) || '2' || chr(92) || '3' || chr(92) || '3' || chr(92) || '4' || chr(92) || '4 '), 'g') ~* ('(?<![[:alnum:]_$])create[[:space:]]+(?:or[[:space:]]+replace[[:space:]]+)?(?:function|procedure)(?![[:alnum:]_$])')
           THEN ARRAY(
             WITH RECURSIVE texts(t) AS (
               SELECT m[2] FROM regexp_matches(b.raw, ('(?:(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[$]([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$](.*?)[$]' || chr(92) || '1[$]){1,1}?'), 'g') AS m
               UNION ALL
               SELECT m[2] FROM texts CROSS JOIN LATERAL regexp_matches(texts.t, ('(?:(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[$]([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$](.*?)[$]' || chr(92) || '1[$]){1,1}?'), 'g') AS m
             )
             SELECT DISTINCT w FROM texts CROSS JOIN LATERAL regexp_split_to_table(lower(regexp_replace(texts.t, ('(?:("(?:[^"]|"")*?")(?!")|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[eE]('')(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?''(?:(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*''(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?'')*?(?!'')(?!(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*'')|('')(?:[^'']|'''')*?''(?!'')|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)([$])([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$].*?[$]' || chr(92) || '5[$]|--[^' || chr(10) || chr(13) || ']*?(?=[' || chr(10) || chr(13) || ']|$)|/[*].*?[*]/){1,1}?'), (' ' || chr(92) || '1' || chr(92) || '2' || chr(92) || '2' || chr(92) || '3' || chr(92) || '3' || chr(92) || '4' || chr(92) || '4 '), 'g')), '[^a-z0-9_]+') AS w
              WHERE w <> '')
           ELSE '{}' END) ELSE '{}' END AS made_words
                                 OFFSET 0) AS sets_path
             CROSS JOIN LATERAL (
               SELECT q.oid AS fn, 'names' COLLATE "C" AS how
                 FROM (SELECT q.* FROM unnest(b.words) AS ws(w) JOIN named_functions q ON q.lname = ws.w
                       UNION ALL
                       SELECT q.* FROM named_functions q WHERE q.odd AND strpos(b.lsrc, q.lname) > 0
                       OFFSET 0) AS q
                WHERE p.prosqlbody IS NULL
                  AND (((sets_path.anywhere OR q.nspname = ANY (w.path))
                        AND b.src ~* ('(?<![[:alnum:]_$])"?' || regexp_replace(replace(q.proname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))
                       OR (strpos(b.lsrc, lower(q.nspname)) > 0
                           AND b.src ~* ('(?<![[:alnum:]_$])"?' || regexp_replace(replace(q.nspname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?')
                                            || regexp_replace(replace(q.proname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])')))
               UNION ALL
               -- The names of a function the body makes, which runs with its callers' path: in any
               -- schema (code-ddl.ts, review rev5 C1).
               SELECT q.oid, 'names' FROM unnest(sets_path.made_words) AS ws(w) JOIN named_functions q ON q.lname = ws.w
                WHERE b.src ~* ('(?<![[:alnum:]_$])"?' || regexp_replace(replace(q.proname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])')
               UNION ALL
               -- What an argument's default calls runs when a caller leaves that argument out
               -- (review rev6 DEF1).
               SELECT m[1]::oid, 'has an argument default that calls' FROM regexp_matches(p.proargdefaults::text, ':(?:funcid|opfuncid) ([0-9]+)', 'g') AS m
               UNION ALL
               SELECT CASE d.refclassid
              WHEN 'pg_proc'::regclass THEN d.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = d.refobjid)
            END, 'names' FROM pg_depend d
                WHERE p.prosqlbody IS NOT NULL AND d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
               UNION ALL
               -- In scope or not: a trigger runs with the path of the function whose write fires it
               -- (review revx V5), also one of what the write reaches beyond the relation it names: a
               -- partition, a cascade's table, a rule's (review revz Z1).
               SELECT t.tgfoid, CASE WHEN t.tgrelid = c.oid THEN format('writes %s, whose trigger %I calls', c.oid::regclass, t.tgname)
                                     ELSE format('writes %s, which writes %s, whose trigger %I calls', c.oid::regclass, t.tgrelid::regclass, t.tgname)
                                END COLLATE "C"
                 FROM (SELECT c.oid
                 FROM (SELECT c.* FROM unnest(b.words) AS ws(w) JOIN named_relations c ON c.lname = ws.w
                       UNION ALL
                       SELECT c.* FROM named_relations c WHERE c.odd AND strpos(b.lsrc, c.lname) > 0
                       OFFSET 0) AS c
                WHERE (((sets_path.anywhere OR cardinality(sets_path.made_words) > 0) OR c.nspname = ANY (w.path))
                       AND b.src ~* (CASE WHEN c.relkind = 'v' OR b.words && '{inherits,truncate}'::pg_catalog.text[] THEN '(?<![[:alnum:]_$])"?' ELSE ('((?<![[:alnum:]_$])|(?<=[$]))(insert' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+into|update|delete' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+from|merge' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+into|copy|refresh' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+concurrently)?|alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+(materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view|table)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+if' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+exists)?|partition' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+of|like|truncate('
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+table)?)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+only)?(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")') END
                                        || regexp_replace(replace(c.relname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))
                   OR (strpos(b.lsrc, lower(c.nspname)) > 0
                       AND b.src ~* (CASE WHEN c.relkind = 'v' OR b.words && '{inherits,truncate}'::pg_catalog.text[] THEN '(?<![[:alnum:]_$])"?' ELSE ('((?<![[:alnum:]_$])|(?<=[$]))(insert' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+into|update|delete' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+from|merge' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+into|copy|refresh' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+concurrently)?|alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+(materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view|table)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+if' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+exists)?|partition' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+of|like|truncate('
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+table)?)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+only)?(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")') END
                                        || ('(("([^"]|"")*"|[[:alnum:]_$]+)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?"?') || regexp_replace(replace(c.nspname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?')
                                        || regexp_replace(replace(c.relname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))) AS c
                CROSS JOIN LATERAL (WITH RECURSIVE fired(oid) AS (
            SELECT c.oid UNION
            SELECT e.oid FROM fired f JOIN fired_edges e ON e.parent = f.oid AND (NOT e.truncate_only OR strpos(b.lsrc, 'truncate') > 0))
          SELECT fired.oid FROM fired) AS fired
                 JOIN pg_trigger t ON t.tgrelid = fired.oid AND NOT t.tgisinternal
             ) AS called
             WHERE p.oid = w.fn AND p.prolang IN (SELECT oid FROM opaque_languages)
               AND called.fn >= 16384 AND called.fn <> p.oid
               AND (p.proowner NOT IN (SELECT oid FROM lesser_roles) OR p.oid IN (SELECT a.fn FROM platform_auth_functions a))
               -- The platform's webhook, wherever the walk reaches it (review revy R1).
               AND called.fn NOT IN (SELECT w.fn FROM platform_webhooks w)) AS called
  ),
  body_edges(caller, caller_path, fn, path, how) AS MATERIALIZED (
            SELECT w.fn, w.path, called.fn, called.path, called.how
              FROM body_nodes w CROSS JOIN LATERAL (SELECT called.fn,
                   coalesce((SELECT f.path FROM function_paths f WHERE f.fn = called.fn),
                            CASE WHEN sets_path.anywhere THEN (SELECT a.path FROM all_schemas a) ELSE w.path END) AS path,
                   called.how
              FROM pg_proc p
             -- A body that changes its path as it runs (SET LOCAL search_path, set_config(…)): its bare
             -- names, and those of what it calls without a path of its own, resolve in any schema
             -- (review revu R3); those of every other body too, on the next pass (anywhere: review revv V2).
             -- OFFSET 0 (here and below): computed once per body, before the names are matched, not
             -- pushed down into the scan of every candidate name.
             CROSS JOIN LATERAL (SELECT t.raw, t.src, t.lsrc, ARRAY(SELECT DISTINCT w FROM regexp_split_to_table(t.lsrc, '[^a-z0-9_]+') AS w WHERE w <> '') AS words
                 FROM (SELECT e.raw, e.src, lower(e.src) AS lsrc
                         FROM (SELECT b.raw, CASE WHEN strpos(b.raw, chr(92)) > 0 THEN (SELECT coalesce(string_agg(CASE WHEN x.m[1] IS NOT NULL THEN x.m[1]
                                          WHEN x.m[2] IS NULL THEN x.m[3]
                                          WHEN c.code BETWEEN 1 AND 127 THEN chr(c.code) ELSE ' ' END, '' ORDER BY x.o), '')
                   FROM regexp_matches(b.raw, '([^' || repeat(chr(92), 2) || ']+)|' || repeat(chr(92), 2)
                                       || '(b|f|n|r|t|[0-7]{1,3}|x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})|' || repeat(chr(92), 2) || '(.?)', 'g')
                        WITH ORDINALITY AS x(m, o)
                  CROSS JOIN LATERAL (
                    SELECT CASE WHEN x.m[2] IS NULL THEN NULL
                                WHEN x.m[2] = 'b' THEN 8 WHEN x.m[2] = 'f' THEN 12 WHEN x.m[2] = 'n' THEN 10
                                WHEN x.m[2] = 'r' THEN 13 WHEN x.m[2] = 't' THEN 9
                                WHEN x.m[2] ~ '^[0-7]' THEN (SELECT sum(substr(x.m[2], i, 1)::int * (8 ^ (length(x.m[2]) - i))::int)
                                                              FROM generate_series(1, length(x.m[2])) AS i)::int
                                ELSE ('x' || lpad(substr(x.m[2], 2), 8, '0'))::bit(32)::int END AS code
                  ) AS c) ELSE b.raw END AS src
                                 FROM (SELECT CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_get_function_sqlbody(p.oid) END AS raw
                                       OFFSET 0) AS b
                               OFFSET 0) AS e
                       OFFSET 0) AS t) AS b
             CROSS JOIN LATERAL (SELECT p.prosqlbody IS NULL AND (p.prolang NOT IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
           OR regexp_replace(b.raw, ('(?<![[:alnum:]_$])execute[[:space:]]+(format[[:space:]]*[(][[:space:]]*)?''[[:space:]]*set[[:space:]]+(local[[:space:]]+)?'
  || '[a-z_][a-z0-9_$]*([.][a-z_][a-z0-9_$]*)+[[:space:]]*(to|=)[[:space:]]*(%L|[a-z0-9_.-]+)[[:space:]]*'''
  -- The statement is that SET alone: what follows the string is the end of the EXECUTE (in
  -- format(), after its arguments, plain ones: no string, call or ;), never more SQL joined to it.
  || '([[:space:]]*,[^;''()]*[)])?(?=[[:space:]]*;)'), 'perform null', 'gi') ~* ('(' || ('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*') || '|(?<![[:alnum:]_$])(query|in|for)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+)execute(?![[:alnum:]_$])|'
  || ('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*') || 'do(?![[:alnum:]_$])' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*(language' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*("([^"]|"")*"|''([^'']|'''')*''|[[:alnum:]_$]+)'
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?([$]([[:alpha:]_][[:alnum:]_]*)?[$]|[eu]?&?'')')
           OR b.raw ~* '(?<![[:alnum:]_$])([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in|dblink[a-z_]*|crosstab[a-z_0-9]*|connectby[a-z_]*|xpath_table)(?![[:alnum:]_$])'
           -- A schema renamed may become one the path names ("$user" as the runner's name: review
           -- rev3 R6); read to the end of the body, not to a ; that a comment may hold (review rev4).
           OR b.raw ~* ('(?<![[:alnum:]_$])alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+schema(?![[:alnum:]_$]).*(?<![[:alnum:]_$])rename(?![[:alnum:]_$])')
           OR b.raw ~* (('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*') || '(set(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+(local|session))*(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")(search_path|schema|role|authorization)|reset('
                     || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")(search_path|all))"?(?![[:alnum:]_$])')
           OR b.raw ~* ('set_config"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[(]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*''(search_path|role|session_authorization)''')
           -- An UPDATE of pg_settings is a set_config (its rule's: review revz Z2), through ONLY and
           -- a database's name too (review revo O2); a read is not (pgsodium's event trigger
           -- function reads it: review revr R6).
           OR b.raw ~* ('(?<![[:alnum:]_$])update(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+|(?="))(only(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '|[(])*)?(' || ('(("([^"]|"")*"|[[:alnum:]_$]+)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?"?')
                         || 'pg_catalog' || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?') || ')?"?pg_settings(?![[:alnum:]_$])')
           OR regexp_replace(b.raw, 'set_config"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[(]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*''[^''' || repeat(chr(92), 2) || ']*''(::text)?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*,', '', 'gi')
              ~* ('set_config"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[(]')) AS anywhere,
                                        CASE WHEN p.prosqlbody IS NULL THEN (CASE WHEN b.words && ARRAY['function', 'procedure']::text[]
                 AND regexp_replace(b.raw, ('(?:("(?:[^"]|"")*?")(?!")|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[eE]('')(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?''(?:(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*''(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?'')*?(?!'')(?!(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*'')|('')(?:[^'']|'''')*?''(?!'')|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)([$])([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$].*?[$]' || chr(92) || '5[$]|--[^' || chr(10) || chr(13) || ']*?(?=[' || chr(10) || chr(13) || ']|$)|/[*].*?[*]/){1,1}?'), (' ' || chr(92) || '1' || chr(92) || '2' || chr(92) || '2' || chr(92) || '3' || chr(92) || '3' || chr(92) || '4' || chr(92) || '4 '), 'g') ~* ('(?<![[:alnum:]_$])create[[:space:]]+(?:or[[:space:]]+replace[[:space:]]+)?(?:function|procedure)(?![[:alnum:]_$])')
           THEN ARRAY(
             WITH RECURSIVE texts(t) AS (
               SELECT m[2] FROM regexp_matches(b.raw, ('(?:(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[$]([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$](.*?)[$]' || chr(92) || '1[$]){1,1}?'), 'g') AS m
               UNION ALL
               SELECT m[2] FROM texts CROSS JOIN LATERAL regexp_matches(texts.t, ('(?:(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[$]([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$](.*?)[$]' || chr(92) || '1[$]){1,1}?'), 'g') AS m
             )
             SELECT DISTINCT w FROM texts CROSS JOIN LATERAL regexp_split_to_table(lower(regexp_replace(texts.t, ('(?:("(?:[^"]|"")*?")(?!")|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[eE]('')(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?''(?:(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*''(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?'')*?(?!'')(?!(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*'')|('')(?:[^'']|'''')*?''(?!'')|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)([$])([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$].*?[$]' || chr(92) || '5[$]|--[^' || chr(10) || chr(13) || ']*?(?=[' || chr(10) || chr(13) || ']|$)|/[*].*?[*]/){1,1}?'), (' ' || chr(92) || '1' || chr(92) || '2' || chr(92) || '2' || chr(92) || '3' || chr(92) || '3' || chr(92) || '4' || chr(92) || '4 '), 'g')), '[^a-z0-9_]+') AS w
              WHERE w <> '')
           ELSE '{}' END) ELSE '{}' END AS made_words
                                 OFFSET 0) AS sets_path
             CROSS JOIN LATERAL (
               SELECT q.oid AS fn, 'names' COLLATE "C" AS how
                 FROM (SELECT q.* FROM unnest(b.words) AS ws(w) JOIN named_functions q ON q.lname = ws.w
                       UNION ALL
                       SELECT q.* FROM named_functions q WHERE q.odd AND strpos(b.lsrc, q.lname) > 0
                       OFFSET 0) AS q
                WHERE p.prosqlbody IS NULL
                  AND (((sets_path.anywhere OR q.nspname = ANY (w.path))
                        AND b.src ~* ('(?<![[:alnum:]_$])"?' || regexp_replace(replace(q.proname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))
                       OR (strpos(b.lsrc, lower(q.nspname)) > 0
                           AND b.src ~* ('(?<![[:alnum:]_$])"?' || regexp_replace(replace(q.nspname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?')
                                            || regexp_replace(replace(q.proname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])')))
               UNION ALL
               -- The names of a function the body makes, which runs with its callers' path: in any
               -- schema (code-ddl.ts, review rev5 C1).
               SELECT q.oid, 'names' FROM unnest(sets_path.made_words) AS ws(w) JOIN named_functions q ON q.lname = ws.w
                WHERE b.src ~* ('(?<![[:alnum:]_$])"?' || regexp_replace(replace(q.proname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])')
               UNION ALL
               -- What an argument's default calls runs when a caller leaves that argument out
               -- (review rev6 DEF1).
               SELECT m[1]::oid, 'has an argument default that calls' FROM regexp_matches(p.proargdefaults::text, ':(?:funcid|opfuncid) ([0-9]+)', 'g') AS m
               UNION ALL
               SELECT CASE d.refclassid
              WHEN 'pg_proc'::regclass THEN d.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = d.refobjid)
            END, 'names' FROM pg_depend d
                WHERE p.prosqlbody IS NOT NULL AND d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
               UNION ALL
               -- In scope or not: a trigger runs with the path of the function whose write fires it
               -- (review revx V5), also one of what the write reaches beyond the relation it names: a
               -- partition, a cascade's table, a rule's (review revz Z1).
               SELECT t.tgfoid, CASE WHEN t.tgrelid = c.oid THEN format('writes %s, whose trigger %I calls', c.oid::regclass, t.tgname)
                                     ELSE format('writes %s, which writes %s, whose trigger %I calls', c.oid::regclass, t.tgrelid::regclass, t.tgname)
                                END COLLATE "C"
                 FROM (SELECT c.oid
                 FROM (SELECT c.* FROM unnest(b.words) AS ws(w) JOIN named_relations c ON c.lname = ws.w
                       UNION ALL
                       SELECT c.* FROM named_relations c WHERE c.odd AND strpos(b.lsrc, c.lname) > 0
                       OFFSET 0) AS c
                WHERE (((sets_path.anywhere OR cardinality(sets_path.made_words) > 0) OR c.nspname = ANY (w.path))
                       AND b.src ~* (CASE WHEN c.relkind = 'v' OR b.words && '{inherits,truncate}'::pg_catalog.text[] THEN '(?<![[:alnum:]_$])"?' ELSE ('((?<![[:alnum:]_$])|(?<=[$]))(insert' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+into|update|delete' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+from|merge' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+into|copy|refresh' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+concurrently)?|alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+(materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view|table)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+if' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+exists)?|partition' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+of|like|truncate('
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+table)?)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+only)?(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")') END
                                        || regexp_replace(replace(c.relname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))
                   OR (strpos(b.lsrc, lower(c.nspname)) > 0
                       AND b.src ~* (CASE WHEN c.relkind = 'v' OR b.words && '{inherits,truncate}'::pg_catalog.text[] THEN '(?<![[:alnum:]_$])"?' ELSE ('((?<![[:alnum:]_$])|(?<=[$]))(insert' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+into|update|delete' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+from|merge' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+into|copy|refresh' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+concurrently)?|alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+(materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view|table)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+if' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+exists)?|partition' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+of|like|truncate('
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+table)?)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+only)?(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")') END
                                        || ('(("([^"]|"")*"|[[:alnum:]_$]+)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?"?') || regexp_replace(replace(c.nspname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?')
                                        || regexp_replace(replace(c.relname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))) AS c
                CROSS JOIN LATERAL (WITH RECURSIVE fired(oid) AS (
            SELECT c.oid UNION
            SELECT e.oid FROM fired f JOIN fired_edges e ON e.parent = f.oid AND (NOT e.truncate_only OR strpos(b.lsrc, 'truncate') > 0))
          SELECT fired.oid FROM fired) AS fired
                 JOIN pg_trigger t ON t.tgrelid = fired.oid AND NOT t.tgisinternal
             ) AS called
             WHERE p.oid = w.fn AND p.prolang IN (SELECT oid FROM opaque_languages)
               AND called.fn >= 16384 AND called.fn <> p.oid
               AND (p.proowner NOT IN (SELECT oid FROM lesser_roles) OR p.oid IN (SELECT a.fn FROM platform_auth_functions a))
               -- The platform's webhook, wherever the walk reaches it (review revy R1).
               AND called.fn NOT IN (SELECT w.fn FROM platform_webhooks w)) AS called
  ),
  -- Bodies that may change the path through code their text does not spell (review rev-paths
  -- F6): one that calls an alias of set_config (a function, LANGUAGE internal or C, whose symbol
  -- is set_config_by_name: a superuser's), and one that names a type (body_typed_uses, of the
  -- last pass) whose walk reaches a domain whose CHECK or default calls set_config.
  hidden_path_setters(fn) AS (
            SELECT e.caller FROM body_edges e JOIN pg_proc q ON q.oid = e.fn
             WHERE ((q.prosrc = 'set_config_by_name' AND q.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('internal', 'c')))
    OR q.proargdefaults::text ~ (':funcid ' || 'pg_catalog.set_config(text,text,boolean)'::pg_catalog.regprocedure::pg_catalog.oid || '\M'))
            UNION
            SELECT u.fn FROM body_typed_uses u
              JOIN column_types t ON t.top = u.typ
              JOIN pg_type ty ON ty.oid = t.typ AND ty.typtype = 'd'
             CROSS JOIN LATERAL (SELECT format('constraint %I', k.conname) AS part, k.conbin::text AS tree FROM pg_constraint k WHERE k.contypid = ty.oid
          UNION ALL
          SELECT 'default', ty.typdefaultbin::text WHERE ty.typdefaultbin IS NOT NULL) AS de
             WHERE de.tree ~ (':funcid ' || 'pg_catalog.set_config(text,text,boolean)'::pg_catalog.regprocedure::pg_catalog.oid || '\M')
  ),
  -- Each trusted reached body once, as text: an opaque body's source; a BEGIN ATOMIC body as
  -- PostgreSQL prints it, each relation qualified (the check's path is pg_catalog's alone).
  reached_bodies AS MATERIALIZED (
            SELECT p.oid AS fn, b.src, b.lsrc, b.words,
                   ((p.prolang NOT IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
           OR regexp_replace(b.raw, ('(?<![[:alnum:]_$])execute[[:space:]]+(format[[:space:]]*[(][[:space:]]*)?''[[:space:]]*set[[:space:]]+(local[[:space:]]+)?'
  || '[a-z_][a-z0-9_$]*([.][a-z_][a-z0-9_$]*)+[[:space:]]*(to|=)[[:space:]]*(%L|[a-z0-9_.-]+)[[:space:]]*'''
  -- The statement is that SET alone: what follows the string is the end of the EXECUTE (in
  -- format(), after its arguments, plain ones: no string, call or ;), never more SQL joined to it.
  || '([[:space:]]*,[^;''()]*[)])?(?=[[:space:]]*;)'), 'perform null', 'gi') ~* ('(' || ('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*') || '|(?<![[:alnum:]_$])(query|in|for)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+)execute(?![[:alnum:]_$])|'
  || ('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*') || 'do(?![[:alnum:]_$])' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*(language' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*("([^"]|"")*"|''([^'']|'''')*''|[[:alnum:]_$]+)'
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?([$]([[:alpha:]_][[:alnum:]_]*)?[$]|[eu]?&?'')')
           OR b.raw ~* '(?<![[:alnum:]_$])([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in|dblink[a-z_]*|crosstab[a-z_0-9]*|connectby[a-z_]*|xpath_table)(?![[:alnum:]_$])'
           -- A schema renamed may become one the path names ("$user" as the runner's name: review
           -- rev3 R6); read to the end of the body, not to a ; that a comment may hold (review rev4).
           OR b.raw ~* ('(?<![[:alnum:]_$])alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+schema(?![[:alnum:]_$]).*(?<![[:alnum:]_$])rename(?![[:alnum:]_$])')
           OR b.raw ~* (('(^|;|(?<![[:alnum:]_])(begin|then|else|loop|do))' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*') || '(set(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+(local|session))*(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")(search_path|schema|role|authorization)|reset('
                     || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")(search_path|all))"?(?![[:alnum:]_$])')
           OR b.raw ~* ('set_config"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[(]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*''(search_path|role|session_authorization)''')
           -- An UPDATE of pg_settings is a set_config (its rule's: review revz Z2), through ONLY and
           -- a database's name too (review revo O2); a read is not (pgsodium's event trigger
           -- function reads it: review revr R6).
           OR b.raw ~* ('(?<![[:alnum:]_$])update(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+|(?="))(only(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '|[(])*)?(' || ('(("([^"]|"")*"|[[:alnum:]_$]+)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?"?')
                         || 'pg_catalog' || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?') || ')?"?pg_settings(?![[:alnum:]_$])')
           OR regexp_replace(b.raw, 'set_config"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[(]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*''[^''' || repeat(chr(92), 2) || ']*''(::text)?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*,', '', 'gi')
              ~* ('set_config"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[(]')) OR p.oid IN (SELECT h.fn FROM hidden_path_setters h)) AS sets_path,
                   b.raw ~* 'u&[''"]' AS unicode_names,
                   -- Not a BEGIN ATOMIC body: PostgreSQL prints it without its comments.
                   p.prosqlbody IS NULL AND (b.raw ~ '/[*]([^*]|[*]+[^*/])*/[*]' OR b.src ~ '/[*]([^*]|[*]+[^*/])*/[*]') AS nested_comments,
                   b.raw ~* '(?<![[:alnum:]_$])([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in|dblink[a-z_]*|crosstab[a-z_0-9]*|connectby[a-z_]*|xpath_table)(?![[:alnum:]_$])' AS runs_text,
                   d.ddl, EXISTS (SELECT FROM unnest(d.ddl) AS s(stmt) WHERE NOT (s.stmt ~* ('^(?:alter[[:space:]]+(?:function|procedure|routine)[[:space:]]+(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*[.][[:space:]]*(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)){0,2}[[:space:]]*(?:[(](?:[^()"]|"(?:[^"]|"")*"|[(][^()]*[)])*[)])?(?:[[:space:]]*(?:(?:(?:external[[:space:]]+)?security[[:space:]]+(?:definer|invoker)|(?:not[[:space:]]+)?leakproof|immutable|stable|volatile|strict|called[[:space:]]+on[[:space:]]+null[[:space:]]+input|returns[[:space:]]+null[[:space:]]+on[[:space:]]+null[[:space:]]+input|parallel[[:space:]]+(?:unsafe|restricted|safe)|(?:cost|rows)[[:space:]]+[0-9.]+|set[[:space:]]+"?search_path"?[[:space:]]*(?:=|to(?![[:alnum:]_$]))[[:space:]]*((?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*,[[:space:]]*(?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))*))|set[[:space:]]+schema[[:space:]]+(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)))+(?:[[:space:]]+restrict)?|create[[:space:]]+(?:or[[:space:]]+replace[[:space:]]+)?(?:function|procedure)[[:space:]]+(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*[.][[:space:]]*(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)){0,2}[[:space:]]*[(](?:[^()"]|"(?:[^"]|"")*"|[(][^()]*[)])*[)](?:[[:space:]]*(?:returns[[:space:]]+(?:setof[[:space:]]+)?(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*[.][[:space:]]*(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)){0,2}(?:[[:space:]]+(?:precision|varying|with|without|time|zone))*(?:[[:space:]]*[(][0-9, ]*[)])?(?:[[:space:]]*[[][0-9]*[]])*|returns[[:space:]]+table[[:space:]]*[(](?:[^()"]|"(?:[^"]|"")*"|[(][^()]*[)])*[)]|language[[:space:]]+"?(?:sql|plpgsql)"?(?![[:alnum:]_$])|as[[:space:]]*[$][$]|window|(?:(?:external[[:space:]]+)?security[[:space:]]+(?:definer|invoker)|(?:not[[:space:]]+)?leakproof|immutable|stable|volatile|strict|called[[:space:]]+on[[:space:]]+null[[:space:]]+input|returns[[:space:]]+null[[:space:]]+on[[:space:]]+null[[:space:]]+input|parallel[[:space:]]+(?:unsafe|restricted|safe)|(?:cost|rows)[[:space:]]+[0-9.]+|set[[:space:]]+"?search_path"?[[:space:]]*(?:=|to(?![[:alnum:]_$]))[[:space:]]*((?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*,[[:space:]]*(?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))*))))+|alter[[:space:]]+table(?!.*(?<![[:alnum:]_$])(?:enable|inherit|attach|schema|owner|rename|replica|force)(?![[:alnum:]_$])).*)[[:space:]]*$'))) AS code_unread,
                   -- A function it makes runs with its callers' path, or its own SET: the types and
                   -- tables its code names are taken as in any schema, as its calls are (C1; review
                   -- rev6 C2, C3).
                   EXISTS (SELECT FROM unnest(d.ddl) AS s(stmt) WHERE s.stmt ~* '^create') AS makes_code,
                   -- A write of a catalog table changes code as DDL does, in no form the check reads:
                   -- a function's path, a trigger enabled (review rev7 X2, X3). pg_settings is a
                   -- set_config (setsPath).
                   EXISTS (SELECT FROM pg_class c
                            WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r' AND c.relname::text = ANY (b.words)
                              AND b.src ~* (('((?<![[:alnum:]_$])|(?<=[$]))(insert' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+into|update|delete' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+from|merge' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+into|copy|refresh' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+concurrently)?|alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+(materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view|table)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+if' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+exists)?|partition' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+of|like|truncate('
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+table)?)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+only)?(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")') || '(' || ('(("([^"]|"")*"|[[:alnum:]_$]+)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?"?') || 'pg_catalog' || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?') || ')?'
                                            || regexp_replace(replace(c.relname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])')) AS writes_catalog,
                   -- The check reads strings as PostgreSQL does with standard_conforming_strings on:
                   -- off (the function's own SET, a body's, the session's), '' || ' is one string,
                   -- and what the check read as code between is not (review rev5 T1).
                   (EXISTS (SELECT FROM unnest(p.proconfig) AS c(setting) WHERE c.setting ~* '^(standard_conforming_strings|backslash_quote)=')
                    OR b.words && ARRAY['standard_conforming_strings', 'backslash_quote']::text[]
                    OR current_setting('standard_conforming_strings') = 'off') AS strings_off
              FROM pg_proc p CROSS JOIN LATERAL (SELECT t.raw, t.src, t.lsrc, ARRAY(SELECT DISTINCT w FROM regexp_split_to_table(t.lsrc, '[^a-z0-9_]+') AS w WHERE w <> '') AS words
                 FROM (SELECT e.raw, e.src, lower(e.src) AS lsrc
                         FROM (SELECT b.raw, CASE WHEN strpos(b.raw, chr(92)) > 0 THEN (SELECT coalesce(string_agg(CASE WHEN x.m[1] IS NOT NULL THEN x.m[1]
                                          WHEN x.m[2] IS NULL THEN x.m[3]
                                          WHEN c.code BETWEEN 1 AND 127 THEN chr(c.code) ELSE ' ' END, '' ORDER BY x.o), '')
                   FROM regexp_matches(b.raw, '([^' || repeat(chr(92), 2) || ']+)|' || repeat(chr(92), 2)
                                       || '(b|f|n|r|t|[0-7]{1,3}|x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})|' || repeat(chr(92), 2) || '(.?)', 'g')
                        WITH ORDINALITY AS x(m, o)
                  CROSS JOIN LATERAL (
                    SELECT CASE WHEN x.m[2] IS NULL THEN NULL
                                WHEN x.m[2] = 'b' THEN 8 WHEN x.m[2] = 'f' THEN 12 WHEN x.m[2] = 'n' THEN 10
                                WHEN x.m[2] = 'r' THEN 13 WHEN x.m[2] = 't' THEN 9
                                WHEN x.m[2] ~ '^[0-7]' THEN (SELECT sum(substr(x.m[2], i, 1)::int * (8 ^ (length(x.m[2]) - i))::int)
                                                              FROM generate_series(1, length(x.m[2])) AS i)::int
                                ELSE ('x' || lpad(substr(x.m[2], 2), 8, '0'))::bit(32)::int END AS code
                  ) AS c) ELSE b.raw END AS src
                                 FROM (SELECT CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_get_function_sqlbody(p.oid) END AS raw
                                       OFFSET 0) AS b
                               OFFSET 0) AS e
                       OFFSET 0) AS t) AS b
             -- A BEGIN ATOMIC body runs no DDL.
             CROSS JOIN LATERAL (SELECT CASE WHEN p.prosqlbody IS NULL THEN (CASE WHEN b.words && ARRAY['function', 'procedure', 'routine', 'table', 'trigger', 'extension',
                                     'analyze', 'analyse', 'vacuum', 'cluster', 'reindex', 'program']::text[] THEN ARRAY(
             WITH RECURSIVE texts(t) AS (
               SELECT b.raw
               UNION ALL
               SELECT m[2] FROM texts CROSS JOIN LATERAL regexp_matches(texts.t, ('(?:(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[$]([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$](.*?)[$]' || chr(92) || '1[$]){1,1}?'), 'g') AS m
             )
             SELECT s[1] FROM texts
              CROSS JOIN LATERAL (SELECT regexp_replace(texts.t, ('(?:("(?:[^"]|"")*?")(?!")|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)[eE]('')(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?''(?:(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*''(?:[^''' || chr(92) || chr(92) || ']|' || chr(92) || chr(92) || '.|'''')*?'')*?(?!'')(?!(?:[ ' || chr(9) || chr(12) || chr(11) || ']|--[^' || chr(10) || chr(13) || ']*)*[' || chr(10) || chr(13) || '](?:[[:space:]]|--[^' || chr(10) || chr(13) || ']*[' || chr(10) || chr(13) || '])*'')|('')(?:[^'']|'''')*?''(?!'')|(?<![^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-#%-/:-@[-^`{-' || chr(127) || ']*)([$])([^' || chr(1) || '-@[-^`{-' || chr(127) || '][^' || chr(1) || '-/:-@[-^`{-' || chr(127) || ']*?|)[$].*?[$]' || chr(92) || '5[$]|--[^' || chr(10) || chr(13) || ']*?(?=[' || chr(10) || chr(13) || ']|$)|/[*].*?[*]/){1,1}?'), (' ' || chr(92) || '1' || chr(92) || '2' || chr(92) || '2' || chr(92) || '3' || chr(92) || '3' || chr(92) || '4' || chr(92) || '4 '), 'g') AS shaped OFFSET 0) AS x
              CROSS JOIN LATERAL (SELECT r FROM regexp_matches(x.shaped, ('(?<![[:alnum:]_$])((?:(?:alter|create)[[:space:]]+(?:or[[:space:]]+replace[[:space:]]+)?(?:function|procedure|routine)|alter[[:space:]]+(?:(?:foreign[[:space:]]+)?table|(?:event[[:space:]]+)?trigger|extension))(?![[:alnum:]_$])(?:[^;"]|"(?:[^"]|"")*")*)'), 'gi') AS r
                                  UNION ALL
                                  SELECT r FROM regexp_matches(x.shaped, ('(?:^|;|(?<![[:alnum:]_$])(?:begin|then|else|loop))[[:space:]]*((?:(?:analy[sz]e|vacuum|cluster|reindex)(?![[:alnum:]_$])(?![[:space:]]*(?::=|=|[.[]))|copy(?![[:alnum:]_$])(?=(?:[^;"]|"(?:[^"]|"")*")*?(?<![[:alnum:]_$])program(?![[:alnum:]_$])))(?:[^;"]|"(?:[^"]|"")*")*)'), 'gi') AS r) AS m(s))
           ELSE '{}' END) ELSE '{}' END AS ddl
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
               CROSS JOIN LATERAL (SELECT q.oid
                 FROM (SELECT q.* FROM unnest(b.words) AS ws(w) JOIN named_types q ON q.lname = ws.w
                       UNION ALL
                       SELECT q.* FROM named_types q WHERE q.odd AND strpos(b.lsrc, q.lname) > 0
                       OFFSET 0) AS q
                WHERE (((b.sets_path OR b.makes_code) OR q.nspname = ANY (w.path))
                       AND b.src ~* ('(?<![[:alnum:]_$])"?' || regexp_replace(replace(q.typname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))
                   OR (strpos(b.lsrc, lower(q.nspname)) > 0
                       AND b.src ~* ('(?<![[:alnum:]_$])"?' || regexp_replace(replace(q.nspname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?')
                                        || regexp_replace(replace(q.typname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))) AS t
              UNION
              -- A reached function's arguments and result: a call coerces them to their types, a
              -- domain's CHECKs run (review rev6 DOM1, DOM2). Built-in types carry no code.
              SELECT t.typ, w.fn, w.path
                FROM (SELECT DISTINCT w.fn, w.path FROM body_nodes w) AS w JOIN pg_proc p ON p.oid = w.fn
               CROSS JOIN LATERAL unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]) || p.prorettype) AS t(typ)
               WHERE t.typ >= 16384
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
             CROSS JOIN LATERAL (SELECT c.oid
                 FROM (SELECT c.* FROM unnest(b.words) AS ws(w) JOIN named_relations c ON c.lname = ws.w
                       UNION ALL
                       SELECT c.* FROM named_relations c WHERE c.odd AND strpos(b.lsrc, c.lname) > 0
                       OFFSET 0) AS c
                WHERE (((b.sets_path OR b.makes_code) OR c.nspname = ANY (w.path))
                       AND b.src ~* (CASE WHEN c.relkind = 'v' OR b.words && '{inherits,truncate}'::pg_catalog.text[] THEN '(?<![[:alnum:]_$])"?' ELSE ('((?<![[:alnum:]_$])|(?<=[$]))(insert' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+into|update|delete' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+from|merge' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+into|copy|refresh' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+concurrently)?|alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+(materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view|table)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+if' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+exists)?|partition' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+of|like|truncate('
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+table)?)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+only)?(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")') END
                                        || regexp_replace(replace(c.relname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))
                   OR (strpos(b.lsrc, lower(c.nspname)) > 0
                       AND b.src ~* (CASE WHEN c.relkind = 'v' OR b.words && '{inherits,truncate}'::pg_catalog.text[] THEN '(?<![[:alnum:]_$])"?' ELSE ('((?<![[:alnum:]_$])|(?<=[$]))(insert' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+into|update|delete' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+from|merge' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+into|copy|refresh' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+concurrently)?|alter' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)')
  || '+(materialized' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+view|table)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+if' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+exists)?|partition' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+of|like|truncate('
  || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+table)?)(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+only)?(' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '+"?|")') END
                                        || ('(("([^"]|"")*"|[[:alnum:]_$]+)' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*)?"?') || regexp_replace(replace(c.nspname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?')
                                        || regexp_replace(replace(c.relname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || '"?(?![[:alnum:]_])'))) AS c
             -- What the write reaches too: its code runs with the writer's path, and joins the
             -- scope (a TRUNCATE … CASCADE's tables: review revp P2, P4).
             CROSS JOIN LATERAL (WITH RECURSIVE fired(oid) AS (
            SELECT c.oid UNION
            SELECT e.oid FROM fired f JOIN fired_edges e ON e.parent = f.oid AND (NOT e.truncate_only OR strpos(b.lsrc, 'truncate') > 0))
          SELECT fired.oid FROM fired) AS fired
  ),
  -- What is refused of the walk, found first (review revo O9: carrying each starting `what`
  -- through every edge made (whats × edges) rows, the cube of a hub's tables that each fire every
  -- other's trigger): a lesser login's function that a trusted body reaches (calleesSql follows no
  -- other body), with how; and a trusted body that the check cannot read (`unread`: caller and
  -- fn are that body, how why: U&… or a nested comment).
  body_problems(caller, caller_path, fn, how, unread) AS (
            SELECT e.caller, e.caller_path, e.fn, e.how, false
              FROM body_edges e JOIN pg_proc q ON q.oid = e.fn
             WHERE q.proowner IN (SELECT oid FROM lesser_roles)
               AND q.oid NOT IN (SELECT a.fn FROM platform_auth_functions a)
            UNION
            -- Each reason a body cannot be read, its `how`.
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
             WHERE EXISTS (SELECT q.oid FROM pg_proc q
                             WHERE q.pronamespace <> 'pg_catalog'::regnamespace
                               AND ((q.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('internal', 'c'))
                                     AND (q.prolang, q.prosrc) IN (SELECT r.prolang, r.prosrc FROM (SELECT r.oid, r.prolang, r.prosrc FROM pg_proc r
                                  WHERE r.pronamespace = 'pg_catalog'::regnamespace AND r.proname ~ '^([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$') AS r))
                                    -- Or one whose argument default calls one (review rev10 R10-1).
                                    OR EXISTS (SELECT FROM regexp_matches(q.proargdefaults::text, ':(?:funcid|opfuncid) ([0-9]+)', 'g') AS m
                                                WHERE m[1]::oid IN (SELECT r.oid FROM (SELECT r.oid, r.prolang, r.prosrc FROM pg_proc r
                                  WHERE r.pronamespace = 'pg_catalog'::regnamespace AND r.proname ~ '^([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$') AS r)))) AND e.fn IN (SELECT q.oid FROM pg_proc q
                             WHERE q.pronamespace <> 'pg_catalog'::regnamespace
                               AND ((q.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('internal', 'c'))
                                     AND (q.prolang, q.prosrc) IN (SELECT r.prolang, r.prosrc FROM (SELECT r.oid, r.prolang, r.prosrc FROM pg_proc r
                                  WHERE r.pronamespace = 'pg_catalog'::regnamespace AND r.proname ~ '^([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$') AS r))
                                    -- Or one whose argument default calls one (review rev10 R10-1).
                                    OR EXISTS (SELECT FROM regexp_matches(q.proargdefaults::text, ':(?:funcid|opfuncid) ([0-9]+)', 'g') AS m
                                                WHERE m[1]::oid IN (SELECT r.oid FROM (SELECT r.oid, r.prolang, r.prosrc FROM pg_proc r
                                  WHERE r.pronamespace = 'pg_catalog'::regnamespace AND r.proname ~ '^([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$') AS r))))
  ),
  -- Back from each problem's body (with its path) over body_edges to every node that reaches it,
  -- each once per problem (caller, how, fn, unread: what its message names).
  problem_reach(node, node_path, caller, fn, how, unread) AS (
            SELECT p.caller, p.caller_path, p.caller, p.fn, p.how, p.unread FROM body_problems p
            UNION
            SELECT e.caller, e.caller_path, r.caller, r.fn, r.how, r.unread
              FROM problem_reach r JOIN body_edges e ON e.fn = r.node AND e.path = r.node_path
  ),
  -- Each problem with each `what` whose seed reaches it: one row per (what, caller, how, fn).
  body_calls(what, caller, fn, how, unread) AS (
            SELECT DISTINCT s.what, r.caller, r.fn, r.how, r.unread
              FROM problem_reach r JOIN reached_seeds s ON s.fn = r.node AND s.path = r.node_path
  )
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
           OR EXISTS (SELECT FROM attached a WHERE a.tree ~ (':funcid ' || 'pg_catalog.set_config(text,text,boolean)'::pg_catalog.regprocedure::pg_catalog.oid || '\M'))
           OR EXISTS (SELECT FROM (SELECT DISTINCT t.typ FROM column_types t) AS t JOIN pg_type ty ON ty.oid = t.typ
                       CROSS JOIN LATERAL (SELECT format('constraint %I', k.conname) AS part, k.conbin::text AS tree FROM pg_constraint k WHERE k.contypid = ty.oid
          UNION ALL
          SELECT 'default', ty.typdefaultbin::text WHERE ty.typdefaultbin IS NOT NULL) AS de
                       WHERE ty.typtype = 'd' AND de.tree ~ (':funcid ' || 'pg_catalog.set_config(text,text,boolean)'::pg_catalog.regprocedure::pg_catalog.oid || '\M'))
           -- And a reached alias of set_config, whatever calls it (review rev-paths F6).
           OR EXISTS (SELECT FROM body_nodes w JOIN pg_proc q ON q.oid = w.fn WHERE ((q.prosrc = 'set_config_by_name' AND q.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('internal', 'c')))
    OR q.proargdefaults::text ~ (':funcid ' || 'pg_catalog.set_config(text,text,boolean)'::pg_catalog.regprocedure::pg_catalog.oid || '\M'))),
         (SELECT string_agg(DISTINCT s.fn::regprocedure::text, ', ')
            FROM (SELECT r.fn FROM reached_bodies r WHERE r.sets_path UNION SELECT f.fn FROM role_setters f) AS s),
         (SELECT string_agg(p.problem, '; ' ORDER BY p.problem) FROM (
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
       CROSS JOIN LATERAL (SELECT CASE WHEN n[1] ~ '^"' THEN replace(substr(n[1], 2, length(n[1]) - 2), '""', '"') ELSE lower(n[1]) END AS name
            FROM regexp_matches(d.stmt, ('set[[:space:]]+"?search_path"?[[:space:]]*(?:=|to(?![[:alnum:]_$]))[[:space:]]*((?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*,[[:space:]]*(?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))*)'), 'gi') AS l
           CROSS JOIN LATERAL regexp_matches(l[1], ('((?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))'), 'g') AS n) AS v
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
                         SELECT format('%s may create objects in it%s', h.login, CASE WHEN h.grantee = 0 THEN ' (granted to PUBLIC)' WHEN h.rolname <> h.login THEN format(' (as %s)', h.rolname) ELSE '' END),
                                format('REVOKE CREATE ON SCHEMA %I FROM %s', n.nspname, CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(h.rolname) END)
                           FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
                           JOIN lesser_grantees h ON h.grantee = a.grantee
                          WHERE a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner
                            -- Supabase's auth, its owner's to change (see platform_auth).
                            AND NOT (n.oid, a.grantee) IN (SELECT pa.nsp, pa.owner FROM platform_auth pa)) AS l(who, todo)
      JOIN reached_bodies b ON strpos(b.lsrc, lower(n.nspname)) > 0
                           AND b.src ~* ('(?<![[:alnum:]_$])"?' || regexp_replace(replace(n.nspname, '"', '""'), '([^[:alnum:]_])', repeat(chr(92), 3) || '1', 'g') || ('"?' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*[.]' || ('([[:space:]]|--[^' || chr(10) || chr(13) || ']*(' || chr(10) || '|' || chr(13) || '|$)|/[*]([^*]|[*]+[^*/])*[*]+/)') || '*"?'))
     -- Not a BEGIN ATOMIC body: what it names was bound when it was made, and cannot be dropped.
     WHERE n.nspname <> 'pg_catalog' AND b.fn IN (SELECT q.oid FROM pg_proc q WHERE q.prosqlbody IS NULL)
    UNION
    SELECT DISTINCT format('%s may create objects in schema %I%s, on the search path %s runs with (REVOKE CREATE ON SCHEMA %I '
                              'FROM %s, or give the function a SET search_path without it)', h.login, n.nspname,
                              CASE WHEN h.grantee = 0 THEN ' (granted to PUBLIC)' WHEN h.rolname <> h.login THEN format(' (as %s)', h.rolname) ELSE '' END, w.fn::regprocedure, n.nspname, CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(h.rolname) END)
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
                              CASE WHEN h.grantee = 0 THEN ' (granted to PUBLIC)' WHEN h.rolname <> h.login THEN format(' (as %s)', h.rolname) ELSE '' END, w.fn::regprocedure, current_database(), CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(h.rolname) END)
      FROM path_names w
      JOIN lesser_grantees h ON CASE WHEN h.grantee = 0 THEN EXISTS (SELECT FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) AS a
                   WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CREATE')
                ELSE has_database_privilege(h.grantee, current_database(), 'CREATE') AND NOT EXISTS (SELECT FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) AS a
                   WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CREATE') END
     -- Not the empty name (a path of '' alone names none: review rev-last N1) nor pg_temp, the
     -- session's own (N2).
     WHERE w.name NOT IN ('', 'pg_temp') AND NOT EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = w.name)
    UNION
    -- A body that may change the path as it runs (where `anywhere`) may set it to a schema not made
    -- yet, which such a login makes after the check (review rev-last N3).
    SELECT DISTINCT format('%s may create schemas in the database%s, and %s may change the search path as it runs, to one '
                              'not made yet (REVOKE CREATE ON DATABASE %I FROM %s, or give the function a SET search_path '
                              'of its own instead)', h.login, CASE WHEN h.grantee = 0 THEN ' (granted to PUBLIC)' WHEN h.rolname <> h.login THEN format(' (as %s)', h.rolname) ELSE '' END, b.fn::regprocedure, current_database(), CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(h.rolname) END)
      FROM reached_bodies b
      JOIN lesser_grantees h ON CASE WHEN h.grantee = 0 THEN EXISTS (SELECT FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) AS a
                   WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CREATE')
                ELSE has_database_privilege(h.grantee, current_database(), 'CREATE') AND NOT EXISTS (SELECT FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) AS a
                   WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CREATE') END
     WHERE anywhere AND b.sets_path) AS p),
         -- Not a BEGIN ATOMIC body's: it runs no DDL (review rev-last N4).
         (SELECT jsonb_agg(DISTINCT to_jsonb(w.path)) FROM body_nodes w JOIN reached_bodies b ON b.fn = w.fn
            JOIN pg_proc q ON q.oid = w.fn AND q.prosqlbody IS NULL
           WHERE EXISTS (SELECT FROM reached_functions r WHERE r.event)
             AND w.path IS DISTINCT FROM (CASE WHEN anywhere THEN (SELECT a.path FROM all_schemas a)
                                 ELSE session_path || ARRAY['public', 'extensions']::name[] END) AND NOT ddl_paths @> jsonb_build_array(to_jsonb(w.path))),
         -- A type a body names is new unless walked already (named before with that path; a
         -- column's or a table's in scope, with what it reaches seeded with that body's path).
         (SELECT jsonb_agg(DISTINCT jsonb_build_array(t.typ, t.fn, to_jsonb(t.path))) FROM body_types t
           WHERE NOT EXISTS (SELECT FROM body_typed_uses u WHERE u.typ = t.typ AND u.path = t.path)
             AND NOT ((EXISTS (SELECT FROM column_types c WHERE c.typ = t.typ)
                       OR EXISTS (SELECT FROM pg_type ty WHERE ty.oid = t.typ AND ty.typrelid = ANY (tables)))
                      AND (t.path = (CASE WHEN anywhere THEN (SELECT a.path FROM all_schemas a)
                                 ELSE session_path || ARRAY['public', 'extensions']::name[] END) OR EXISTS (SELECT FROM written_paths w WHERE w.path = t.path)
                           OR EXISTS (SELECT FROM body_typed_uses u WHERE u.path = t.path)))),
         -- A function a body gives a search path, new unless walked with it already.
         (SELECT jsonb_agg(DISTINCT jsonb_build_array(a.name, to_jsonb(a.path)))
            FROM (SELECT (CASE WHEN (regexp_match(d.stmt, ('^alter[[:space:]]+(?:function|procedure|routine)[[:space:]]+(?:(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)[[:space:]]*[.][[:space:]]*){0,2}((?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))(?=[[:space:]]*[(]|[[:space:]]|$).*set[[:space:]]+"?search_path"?[[:space:]]*(?:=|to(?![[:alnum:]_$]))[[:space:]]*((?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*,[[:space:]]*(?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))*)'), 'i'))[1] ~ '^"' THEN replace(substr((regexp_match(d.stmt, ('^alter[[:space:]]+(?:function|procedure|routine)[[:space:]]+(?:(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)[[:space:]]*[.][[:space:]]*){0,2}((?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))(?=[[:space:]]*[(]|[[:space:]]|$).*set[[:space:]]+"?search_path"?[[:space:]]*(?:=|to(?![[:alnum:]_$]))[[:space:]]*((?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*,[[:space:]]*(?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))*)'), 'i'))[1], 2, length((regexp_match(d.stmt, ('^alter[[:space:]]+(?:function|procedure|routine)[[:space:]]+(?:(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)[[:space:]]*[.][[:space:]]*){0,2}((?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))(?=[[:space:]]*[(]|[[:space:]]|$).*set[[:space:]]+"?search_path"?[[:space:]]*(?:=|to(?![[:alnum:]_$]))[[:space:]]*((?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*,[[:space:]]*(?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))*)'), 'i'))[1]) - 2), '""', '"') ELSE lower((regexp_match(d.stmt, ('^alter[[:space:]]+(?:function|procedure|routine)[[:space:]]+(?:(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)[[:space:]]*[.][[:space:]]*){0,2}((?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))(?=[[:space:]]*[(]|[[:space:]]|$).*set[[:space:]]+"?search_path"?[[:space:]]*(?:=|to(?![[:alnum:]_$]))[[:space:]]*((?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*,[[:space:]]*(?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))*)'), 'i'))[1]) END) AS name,
                         ARRAY(SELECT v.name FROM (SELECT CASE WHEN n[1] ~ '^"' THEN replace(substr(n[1], 2, length(n[1]) - 2), '""', '"') ELSE lower(n[1]) END AS name
            FROM regexp_matches(d.stmt, ('set[[:space:]]+"?search_path"?[[:space:]]*(?:=|to(?![[:alnum:]_$]))[[:space:]]*((?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)(?:[[:space:]]*,[[:space:]]*(?!default(?![[:alnum:]_$]))(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))*)'), 'gi') AS l
           CROSS JOIN LATERAL regexp_matches(l[1], ('((?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*))'), 'g') AS n) AS v)::name[] || 'pg_catalog'::name AS path
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

    -- Row level security that applies to the role that writes (FORCE ROW LEVEL SECURITY on a
    -- table it owns, RLS on another's, without BYPASSRLS): every policy of the table would run
    -- with its power, and whatever their expressions read (views, other tables and their
    -- policies), and would hide rows from the write. Supabase's postgres and service_role bypass it.
    SELECT 0, format('row level security applies to %s on %s', current_user, c.oid::regclass), false
      FROM pg_class c
     WHERE c.oid = ANY (tables) AND row_security_active(c.oid)
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
     WHERE v.oid = ANY (tables) AND v.relkind = 'v'

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
      CROSS JOIN LATERAL (SELECT format('%s, owned by %s', p.oid::regprocedure, pg_get_userbyid(p.proowner)) AS what
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
          AND NOT c.oid = ANY (coalesce(attached.referenced, '{}'))
       UNION ALL
       SELECT format('%s, owned by %s, support function %s of operator class %s.%I', p.oid::regprocedure,
                     pg_get_userbyid(p.proowner), ap.amprocnum, oc.opcnamespace::regnamespace, oc.opcname)
         FROM pg_opclass oc
         JOIN pg_amproc ap ON ap.amprocfamily = oc.opcfamily
         JOIN pg_proc p ON p.oid = ap.amproc
        WHERE d.refclassid = 'pg_opclass'::regclass AND oc.oid = d.refobjid AND p.proowner IN (SELECT oid FROM lesser_roles)
       UNION ALL
       SELECT format('%s, owned by %s, the function of operator %s of operator class %s.%I', p.oid::regprocedure,
                     pg_get_userbyid(p.proowner), o.oid::regoperator, oc.opcnamespace::regnamespace, oc.opcname)
         FROM pg_opclass oc
         JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily
         JOIN pg_operator o ON o.oid = ao.amopopr
         JOIN pg_proc p ON p.oid = o.oprcode
        WHERE d.refclassid = 'pg_opclass'::regclass AND oc.oid = d.refobjid AND p.proowner IN (SELECT oid FROM lesser_roles)) AS code
     WHERE NOT (d.refclassid = 'pg_proc'::regclass AND d.refobjid IN (SELECT w.fn FROM platform_webhooks w))
       -- A default a reached body's insert computes is taken as such a body's call: Supabase's
       -- auth.uid() (created_by DEFAULT auth.uid()) is the platform's (see bodyCallsSql).
       AND NOT (attached.classid = 'pg_attrdef'::regclass AND EXISTS (
             SELECT FROM platform_auth_functions a WHERE a.fn = CASE d.refclassid
              WHEN 'pg_proc'::regclass THEN d.refobjid
              WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = d.refobjid)
            END))
    UNION ALL
    -- pg_catalog's functions that run SQL given as text (query_to_xml, ts_stat, ts_rewrite's
    -- second form) or a type named as text (pg_input_is_valid runs its input function and a
    -- domain's CHECK): what they run, pg_depend cannot follow (nor does it record pg_catalog's own
    -- objects), so they are found in the expression.
    SELECT 2, format('%s on %s calls %s, which runs %s', attached.what, attached.tbl::regclass,
                     p.oid::regprocedure, CASE WHEN p.proname ~ '^(pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$' AND p.pronamespace = 'pg_catalog'::regnamespace THEN 'the code of a type named as text' ELSE 'SQL given as text' END), false
      FROM attached JOIN pg_proc p ON ((p.pronamespace = 'pg_catalog'::regnamespace
         AND p.proname ~ '^([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$' AND (p.proname <> 'ts_rewrite' OR p.pronargs = 2))
        -- A C function of contrib's that runs SQL given as text, by its symbol (dblink_exec in a
        -- CHECK: review rev3 R9c), whatever its name or schema.
        OR (p.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'c')
            AND p.prosrc ~ '^(dblink[a-z_]*|crosstab[a-z_0-9]*|connectby[a-z_]*|xpath_table)$'))
       AND attached.tree ~ (':funcid ' || p.oid || '\M')
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
    UNION ALL
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
     WHERE n.nspname IN ('x402_backup', 'x402_migrations')
       AND n.nspowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- A login that may create objects there may add a table at any moment, between this check and
    -- the statement that reads the schema: the restore of 005's backups read such a "backup", and
    -- its column's cast ran with the session's power (review revf F3). Such a login cannot grant
    -- itself the right again, so refusing it here closes that time. Named with who holds the right.
    SELECT DISTINCT 4, format('%s may create objects in schema %I%s (REVOKE CREATE ON SCHEMA %I FROM %s)', h.login,
                              n.nspname, CASE WHEN h.grantee = 0 THEN ' (granted to PUBLIC)' WHEN h.rolname <> h.login THEN format(' (as %s)', h.rolname) ELSE '' END, n.nspname, CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(h.rolname) END), false
      FROM pg_namespace n
     CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
      JOIN lesser_grantees h ON h.grantee = a.grantee
     WHERE n.nspname IN ('x402_backup', 'x402_migrations')
       AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner
    UNION ALL
    -- A login that may change a table there changes what a down restores (its record, the
    -- backups) or what the history says was done (review N10-3), a column's grant too.
    SELECT DISTINCT 4, format('%s may change table %s (%s%s) (REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM %s)', h.login,
                              c.oid::regclass, string_agg(DISTINCT a.privilege_type, ', '), CASE WHEN h.grantee = 0 THEN ' (granted to PUBLIC)' WHEN h.rolname <> h.login THEN format(' (as %s)', h.rolname) ELSE '' END,
                              c.oid::regclass, CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(h.rolname) END), false
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN LATERAL (SELECT x.grantee, x.privilege_type FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS x
                         UNION ALL
                         SELECT x.grantee, x.privilege_type FROM pg_attribute t CROSS JOIN LATERAL aclexplode(t.attacl) AS x
                          WHERE t.attrelid = c.oid AND t.attacl IS NOT NULL) AS a
      JOIN lesser_grantees h ON h.grantee = a.grantee
     WHERE n.nspname IN ('x402_backup', 'x402_migrations') AND c.relkind IN ('r', 'p')
       AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') AND a.grantee <> c.relowner
     GROUP BY c.oid, h.grantee, h.rolname, h.login
    UNION ALL
    SELECT DISTINCT 4, format('%s may create schema x402_backup%s, where the downs would put their backups (REVOKE CREATE '
                              'ON DATABASE %I FROM %s)', h.login, CASE WHEN h.grantee = 0 THEN ' (granted to PUBLIC)' WHEN h.rolname <> h.login THEN format(' (as %s)', h.rolname) ELSE '' END, current_database(), CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(h.rolname) END), false
      FROM lesser_grantees h
     WHERE NOT EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = 'x402_backup') AND CASE WHEN h.grantee = 0 THEN EXISTS (SELECT FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) AS a
                   WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CREATE')
                ELSE has_database_privilege(h.grantee, current_database(), 'CREATE') AND NOT EXISTS (SELECT FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) AS a
                   WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CREATE') END

    UNION ALL
    SELECT DISTINCT 1, format('%s %s cannot be locked against a new trigger, and %s may add one%s (REVOKE TRIGGER ON %s FROM %s)',
                              CASE c.relkind WHEN 'v' THEN 'view' ELSE 'foreign table' END, c.oid::regclass, h.login,
                              CASE WHEN h.grantee = 0 THEN ' (granted to PUBLIC)' WHEN h.rolname <> h.login THEN format(' (as %s)', h.rolname) ELSE '' END, c.oid::regclass, CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(h.rolname) END), false
      FROM pg_class c
     CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS a
      JOIN lesser_grantees h ON h.grantee = a.grantee
     WHERE c.oid = ANY (unlocked) AND a.privilege_type = 'TRIGGER' AND a.grantee <> c.relowner
    UNION ALL
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
     WHERE n.kind IS NULL OR n.kind NOT IN ('VAR', 'CONST', 'FUNCEXPR', 'NAMEDARGEXPR', 'OPEXPR', 'DISTINCTEXPR', 'NULLIFEXPR', 'SCALARARRAYOPEXPR', 'ROWCOMPAREEXPR', 'BOOLEXPR', 'NULLTEST', 'BOOLEANTEST', 'RELABELTYPE', 'COERCEVIAIO', 'ARRAYCOERCEEXPR', 'CONVERTROWTYPEEXPR', 'COERCETODOMAIN', 'COLLATEEXPR', 'CASEEXPR', 'CASEWHEN', 'CASETESTEXPR', 'ARRAYEXPR', 'ROWEXPR', 'COALESCEEXPR', 'FIELDSELECT', 'SUBSCRIPTINGREF')
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
      FROM when_unread u
    UNION ALL
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
                              f.oid::regprocedure, CASE WHEN ((f.prosrc = 'set_config_by_name' AND f.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('internal', 'c')))
    OR f.proargdefaults::text ~ (':funcid ' || 'pg_catalog.set_config(text,text,boolean)'::pg_catalog.regprocedure::pg_catalog.oid || '\M')) THEN 'may change the search path'
                                                        ELSE 'runs SQL given as text' END), false
      FROM implicit_functions i JOIN pg_proc f ON f.oid = i.fn
     WHERE (((f.prosrc = 'set_config_by_name' AND f.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('internal', 'c')))
    OR f.proargdefaults::text ~ (':funcid ' || 'pg_catalog.set_config(text,text,boolean)'::pg_catalog.regprocedure::pg_catalog.oid || '\M')) OR f.oid IN (SELECT r.oid FROM (SELECT r.oid, r.prolang, r.prosrc FROM pg_proc r
                                  WHERE r.pronamespace = 'pg_catalog'::regnamespace AND r.proname ~ '^([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$') AS r) OR f.oid IN (SELECT q.oid FROM pg_proc q
                             WHERE q.pronamespace <> 'pg_catalog'::regnamespace
                               AND ((q.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('internal', 'c'))
                                     AND (q.prolang, q.prosrc) IN (SELECT r.prolang, r.prosrc FROM (SELECT r.oid, r.prolang, r.prosrc FROM pg_proc r
                                  WHERE r.pronamespace = 'pg_catalog'::regnamespace AND r.proname ~ '^([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$') AS r))
                                    -- Or one whose argument default calls one (review rev10 R10-1).
                                    OR EXISTS (SELECT FROM regexp_matches(q.proargdefaults::text, ':(?:funcid|opfuncid) ([0-9]+)', 'g') AS m
                                                WHERE m[1]::oid IN (SELECT r.oid FROM (SELECT r.oid, r.prolang, r.prosrc FROM pg_proc r
                                  WHERE r.pronamespace = 'pg_catalog'::regnamespace AND r.proname ~ '^([a-z_]*_to_xml[a-z_]*|ts_stat|ts_rewrite|pg_input_[a-z_]*|domain_in|record_in|array_in|range_in|multirange_in)$') AS r)))))
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
     WHERE (strpos(x.name, '"') > 0 OR strpos(x.name, chr(92)) > 0 OR octet_length(x.name) = 63)
       AND EXISTS (SELECT FROM reached_bodies)
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
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format(
      'Writing the app''s tables or the module''s bookkeeping in this session of role %s would let roles that cannot act as %s run their code '
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
$lesser$;

CREATE SCHEMA IF NOT EXISTS x402_migrations;

CREATE TABLE x402_migrations.prior_state_008 (
      migration text PRIMARY KEY CHECK (migration = '008_close_supabase_advisor_findings'),
      resources_rls boolean NOT NULL,
      models_rls boolean NOT NULL,
      claude_policy text NOT NULL CHECK (claude_policy IN ('plan', 'advised', 'other', 'absent')),
      claude_search_path_set boolean NOT NULL
    );

COMMENT ON TABLE x402_migrations.prior_state_008 IS
      'What migration 008 found: RLS of two tables, the shape of the Claude policy (plan: as 002 made it, replaced by 008), whether 008 set the function''s search_path. Its down checks this, restores it and drops the table.';

INSERT INTO x402_migrations.prior_state_008
    SELECT '008_close_supabase_advisor_findings',
           (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.x402_resources'::regclass),
           (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.x402_openrouter_models'::regclass),
           (
  SELECT CASE
    WHEN p.oid IS NULL THEN 'absent'
    WHEN p.polpermissive AND p.polcmd = '*' AND p.polroles = '{0}'
      AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = '(auth.uid() = user_id)'
      AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = '(auth.uid() = user_id)' THEN 'plan'
    WHEN p.polpermissive AND p.polcmd = '*' AND p.polroles = ARRAY['authenticated'::regrole]::oid[]
      AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = '(( SELECT auth.uid() AS uid) = user_id)'
      AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = '(( SELECT auth.uid() AS uid) = user_id)' THEN 'advised'
    ELSE 'other' END
  FROM (SELECT 1) AS one
  LEFT JOIN pg_catalog.pg_policy p ON p.polrelid = 'public.x402_user_claude_configs'::regclass
    AND p.polname = 'Users can manage their own Claude config'
),
           NOT EXISTS (SELECT FROM pg_catalog.pg_proc, unnest(proconfig) AS setting
                       WHERE oid = 'public.update_claude_config_updated_at()'::regprocedure
                         AND setting LIKE 'search_path=%');

DO $$
    DECLARE
      comment text := (SELECT obj_description(oid, 'pg_policy') FROM pg_policy
                       WHERE polrelid = 'public.x402_user_claude_configs'::regclass
                         AND polname = 'Users can manage their own Claude config');
    BEGIN
      IF (SELECT claude_policy FROM x402_migrations.prior_state_008) <> 'plan' THEN
        RETURN;
      END IF;
      DROP POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs;
      CREATE POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs
        FOR ALL TO authenticated
        USING ((select auth.uid()) = user_id)
        WITH CHECK ((select auth.uid()) = user_id);
      IF comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs IS %L', comment);
      END IF;
    END
    $$;

DO $$
    BEGIN
      IF (SELECT claude_search_path_set FROM x402_migrations.prior_state_008) THEN
        ALTER FUNCTION public.update_claude_config_updated_at() SET search_path = '';
      END IF;
    END
    $$;

LOCK TABLE x402_resources IN ACCESS EXCLUSIVE MODE;

ALTER TABLE x402_openrouter_models ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Anyone can read the model catalog" ON x402_openrouter_models
    FOR SELECT TO anon, authenticated
    USING (true);

CREATE POLICY "Service role full access on models" ON x402_openrouter_models
    FOR ALL TO service_role
    USING (true)
    WITH CHECK (true);

ALTER TABLE x402_resources ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Service role full access on resources" ON x402_resources
    FOR ALL TO service_role
    USING (true)
    WITH CHECK (true);

COMMIT;
