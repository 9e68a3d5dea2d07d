/*
 * The module's catalog reads and its migrations name PostgreSQL's operators and functions
 * unqualified (`=`, `||`, to_regclass, current_setting, …). PostgreSQL resolves each through the
 * search_path: an operator or function of the same name in another schema of the path wins where
 * its argument types match more closely, or where that schema comes before pg_catalog. Its code
 * then runs as whoever runs the module, a superuser included. So before it reads or changes
 * anything, the module refuses where a role that could not already act as the connected one has
 * put such objects there, or could put them there while a run goes on: it never runs code with
 * more power than its author had.
 */

/**
 * The declarations and first statements of a `DO` block that reads the catalog as these checks
 * do: pg_catalog first on the search_path (put back from `saved` before it ends), and the two
 * variables {@link actsAsSessionUser} and {@link LESSER_LOGIN_ROLES_SQL} need. The session's
 * temporary schema is named after it: left out, PostgreSQL searches it before pg_catalog for
 * relations, and a temporary table named pg_roles would answer for the catalog (review reve L3).
 */
export const CATALOG_CHECK_DECLARE = `saved pg_catalog.text := pg_catalog.current_setting('search_path');
  -- pg_database_owner (owner of public since PostgreSQL 15) stands for the database's owner.
  db_owner_role pg_catalog.oid;
  db_owner pg_catalog.oid;`
export const CATALOG_CHECK_BEGIN = `PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  SELECT r.oid INTO db_owner_role FROM pg_roles r WHERE r.rolname = 'pg_database_owner';
  SELECT d.datdba INTO db_owner FROM pg_database d WHERE d.datname = current_database();`

/**
 * SQL: whether the role `role` can act as the role `target` (each an expression): it has the
 * target's privileges (a superuser, the target itself, or a member that inherits them) and, from
 * PostgreSQL 16 on, may become it (SET ROLE). A member granted WITH INHERIT TRUE, SET FALSE owns
 * what the target owns, but none of its attributes: a superuser's power is never inherited, so
 * its code would run with more power than its author had (review rev9 R9-3). The one rule of
 * "can act as", wherever the module asks it.
 *
 * @example
 * ```ts
 * sql.raw(`SELECT ${canActAs('c.relowner', 'current_user')} FROM pg_catalog.pg_class c`)
 * ```
 */
export function canActAs(role: string, target: string): string {
  return `(pg_catalog.pg_has_role(${role}, ${target}, 'USAGE')
          AND CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 160000
                   THEN pg_catalog.pg_has_role(${role}, ${target}, 'SET') ELSE true END)`
}

/**
 * A condition, in such a `DO` block, that holds where the role `owner` (an expression) can
 * already act as the session's user ({@link canActAs}). Its code then gains nothing by running
 * in this session. The session's user, not the current one: code run under SET ROLE
 * (keys:rotate writes as service_role) may RESET ROLE.
 */
export function actsAsSessionUser(owner: string): string {
  return canActAs(
    `CASE ${owner} WHEN db_owner_role THEN db_owner ELSE ${owner} END`,
    'session_user',
  )
}

/**
 * A query, for a `DO` block that has set `db_owner_role` (pg_database_owner's oid), of each login
 * role that cannot act as the current user (`login`), with each role it may become (`oid`,
 * `rolname`): itself, and every role it is a member of, by inheritance or by SET ROLE
 * (NOINHERIT, as Supabase's authenticator): what such a login may do, it may do as any of them.
 * A login is a role that may log in, or one with a session open: made NOLOGIN after it logged
 * in, it keeps that session (review rev8 R8-1).
 */
export const LESSER_LOGIN_ROLES_SQL = `SELECT l.oid AS login, g.oid, g.rolname
      FROM pg_roles l, pg_roles g
     WHERE (l.rolcanlogin OR l.oid IN (SELECT a.usesysid FROM pg_stat_activity a)) AND l.oid <> db_owner_role AND NOT ${canActAs('l.oid', 'session_user')}
       AND pg_has_role(l.oid, g.oid, 'MEMBER')`

/** SQLSTATE of the refusal: insufficient_privilege, the class of what it protects. */
export const SHADOWED_CATALOG_STATE = '42501'

/**
 * One `DO` block that raises {@link SHADOWED_CATALOG_STATE}, naming each cause, where the
 * session's search_path lets a role that cannot act as the current user ({@link canActAs}: not a
 * superuser, not the user itself, not a member that may become it) put its code in place of
 * PostgreSQL's:
 * - a schema that comes before pg_catalog (a database or role default can put one there): its
 *   relations, types, functions and operators would all win;
 * - a schema of the path owned by such a role, or in which such a login role may create objects
 *   (the module's queries would find what it creates there later, in the middle of a run);
 * - an operator or a function named as one of pg_catalog's, in a schema of the path, owned by
 *   such a role (made before its right to create was revoked).
 * It reads the catalog with pg_catalog first on the search_path, which it puts back before it
 * ends, so that nothing it runs can be shadowed itself.
 *
 * @example
 * ```ts
 * await sql.raw(SHADOWED_CATALOG_SQL).execute(db)
 * ```
 */
export const SHADOWED_CATALOG_SQL = shadowedCatalogSql('The search_path of role %s')

/**
 * {@link SHADOWED_CATALOG_SQL} for the search_path the module's catalog reads pin in their
 * transaction (`public`, whatever the session's: pinCatalogReads), run right after the pin:
 * the session's check never looked at `public` where the session's path does not name it, and
 * the reads name operators unqualified (an `oid = regclass` has no exact operator in pg_catalog,
 * so an exact one in `public` wins). Its message names that path.
 */
export const PINNED_SHADOWED_CATALOG_SQL = shadowedCatalogSql(
  'The search_path public, which the catalog reads of role %s run with,',
)

/** The check, its message opening with `subject` (whose %s is the session's user). */
function shadowedCatalogSql(subject: string): string {
  return `DO $shadowed$
DECLARE
  -- Types named with their schema: the block's declarations are read before it empties the
  -- search_path, where a type of the same name could come first.
  schemas pg_catalog.name[] := pg_catalog.current_schemas(false);
  searched pg_catalog.name[] := pg_catalog.current_schemas(true);
  found pg_catalog.text;
  ${CATALOG_CHECK_DECLARE}
BEGIN
  ${CATALOG_CHECK_BEGIN}
  WITH lesser_roles AS (${LESSER_LOGIN_ROLES_SQL})
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
       AND NOT ${actsAsSessionUser('n.nspowner')}
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
       AND NOT ${actsAsSessionUser('s.owner')}
  ) AS problems;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '${SHADOWED_CATALOG_STATE}', MESSAGE = pg_catalog.format(
      '${subject.replaceAll("'", "''")} lets roles that cannot act as %s put their code where the module''s queries '
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
$shadowed$`
}
