/*
 * The module's catalog reads and its migrations name PostgreSQL's operators and functions
 * unqualified (`=`, `||`, to_regclass, current_setting, …). PostgreSQL resolves each through the
 * search_path: an operator or function of the same name in another schema of the path wins where
 * its argument types match more closely, or where that schema comes before pg_catalog. Its code
 * then runs as whoever runs the module, a superuser included. So before it reads or changes
 * anything, the module looks for such objects whose owner could not already act as the
 * connected role, and refuses: it never runs code with more power than its author had.
 */

/** SQLSTATE of the refusal: insufficient_privilege, the class of what it protects. */
export const SHADOWED_CATALOG_STATE = '42501'

/**
 * One `DO` block that raises {@link SHADOWED_CATALOG_STATE}, naming each object, where a schema
 * of the session's search_path other than pg_catalog holds an operator or a function named as
 * one of pg_catalog's, owned by a role that cannot act as the current user (so `pg_has_role`
 * with USAGE is false: not a superuser, not the user itself, not a role that is a member of it).
 * It reads the catalog with an empty search_path (pg_catalog alone), which it puts back before it
 * ends, so that nothing it runs can be shadowed itself.
 *
 * @example
 * ```ts
 * await sql.raw(SHADOWED_CATALOG_SQL).execute(db)
 * ```
 */
export const SHADOWED_CATALOG_SQL = `DO $shadowed$
DECLARE
  schemas name[] := pg_catalog.current_schemas(false);
  saved text := pg_catalog.current_setting('search_path');
  found text;
BEGIN
  PERFORM pg_catalog.set_config('search_path', '', true);
  SELECT string_agg(format('%s %I.%s(%s) owned by %s', s.kind, s.nsp, s.name, s.args, pg_get_userbyid(s.owner)), '; '
                    ORDER BY s.nsp, s.name, s.args)
    INTO found
    FROM (SELECT 'function' AS kind, n.nspname AS nsp, quote_ident(p.proname) AS name,
                 pg_get_function_identity_arguments(p.oid) AS args, p.proowner AS owner
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE EXISTS (SELECT FROM pg_proc c WHERE c.pronamespace = 'pg_catalog'::regnamespace AND c.proname = p.proname)
          UNION ALL
          SELECT 'operator', n.nspname, o.oprname,
                 concat_ws(', ', CASE WHEN o.oprleft <> 0 THEN format_type(o.oprleft, NULL) END,
                                 CASE WHEN o.oprright <> 0 THEN format_type(o.oprright, NULL) END),
                 o.oprowner
            FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
           WHERE EXISTS (SELECT FROM pg_operator c WHERE c.oprnamespace = 'pg_catalog'::regnamespace AND c.oprname = o.oprname)
         ) AS s
   WHERE s.nsp = ANY (schemas) AND s.nsp <> 'pg_catalog'
     AND NOT pg_has_role(s.owner, current_user, 'USAGE');
  PERFORM pg_catalog.set_config('search_path', saved, true);
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '${SHADOWED_CATALOG_STATE}', MESSAGE = format(
      'The search_path of role %s holds objects named as PostgreSQL''s own, which its queries could run with the power of %s, '
      'a power their owners lack: %s. Nothing was read or changed. Drop them or move them out of the search_path '
      '(for an extension: ALTER EXTENSION … SET SCHEMA extensions), or run the command as their owner.',
      current_user, current_user, found);
  END IF;
END
$shadowed$`
