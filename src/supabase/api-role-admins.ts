/*
 * The migrations grant to Supabase's API roles (policies TO service_role on the integration
 * keys, Supabase's grants in public) and the stand-in gives service_role BYPASSRLS. Whoever may
 * administer one of those roles may grant it to itself, and so reads what the migrations give
 * it. On PostgreSQL 16+ a login with CREATEROLE holds ADMIN OPTION on each role it creates: one
 * that created service_role before the first migration would read every key (review rev-6 R5).
 * On PostgreSQL 15 and older, CREATEROLE alone lets a login grant any role that is not a
 * superuser, and leaves no trace in pg_auth_members: that limit is documented, not checked.
 */
import {
  CATALOG_CHECK_BEGIN,
  CATALOG_CHECK_DECLARE,
  LESSER_LOGIN_ROLES_SQL,
} from '../connection/shadowed-catalog.js'

/** The roles whose grants reach the API: PostgREST's login and the three it switches to. */
export const API_ROLES = ['anon', 'authenticated', 'service_role', 'authenticator'] as const

/**
 * One `DO` block that refuses (42501), naming each login and role, where a login that cannot act
 * as the session's user (not a superuser, not that user, not a role that is a member of it)
 * holds ADMIN OPTION, itself or through a role it is a member of, on an API role or on a role
 * that is a member of one. Its advice revokes that option as its grantor (CASCADE: with what the
 * holder granted by it). The session's
 * own right passes: Supabase's postgres holds it on 16+, and migrates. A run sends it before the
 * first migration it applies; a script of migrate:sql runs it in each transaction.
 *
 * @example
 * ```ts
 * await sql.raw(API_ROLE_ADMINS_SQL).execute(db)
 * ```
 */
export const API_ROLE_ADMINS_SQL = `DO $api_roles$
DECLARE
  found pg_catalog.text;
  fix pg_catalog.text;
  grantors pg_catalog.text;
  ${CATALOG_CHECK_DECLARE}
BEGIN
  ${CATALOG_CHECK_BEGIN}
  WITH lesser_roles AS (${LESSER_LOGIN_ROLES_SQL}),
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
      JOIN pg_roles a ON a.rolname IN (${API_ROLES.map((role) => `'${role}'`).join(', ')})
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
$api_roles$`
