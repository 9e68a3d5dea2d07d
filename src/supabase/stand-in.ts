import { type Kysely, sql } from 'kysely'

import {
  actsAsSessionUser,
  CATALOG_CHECK_BEGIN,
  CATALOG_CHECK_DECLARE,
} from '../connection/shadowed-catalog.js'

/**
 * Serialises concurrent first runs on one database (several app instances starting at once).
 * Advisory locks are per database: runs on different databases of one server meet only at the
 * cluster-wide roles, where a duplicate is caught instead.
 */
const STAND_IN_LOCK_KEY = sql.lit(402_005_001)

/**
 * What {@link ensureSupabaseStandIn} found: `'present'` where `auth.users` already exists (a
 * real Supabase database, or one that had the stand-in already), `'applied'` where it created
 * the stand-in just now.
 */
export type SupabaseStandInOutcome = 'present' | 'applied'

/**
 * Gives a plain PostgreSQL or PGlite database the Supabase platform pieces that the schema
 * depends on, as Supabase has them today: the roles anon, authenticated, service_role and
 * authenticator (with postgres a member of the API roles), schema `auth` with `auth.users` (RLS
 * on, no grant to the API roles), `auth.uid()`, `auth.role()`, `auth.email()` and `auth.jwt()`,
 * and the grants and default privileges Supabase gives in `public`.
 *
 * It does nothing where `auth.users` exists, so a real Supabase database is never touched. It
 * is idempotent and safe to run from several connections at once. The runner calls it once per
 * run, before the first migration it applies, so every way of migrating gets it.
 *
 * @example
 * ```ts
 * const db = createDb({ dataDir: 'memory://' })
 * await ensureSupabaseStandIn(db) // 'applied'
 * await ensureSupabaseStandIn(db) // 'present'
 * ```
 */
export async function ensureSupabaseStandIn(db: Kysely<any>): Promise<SupabaseStandInOutcome> {
  if (await hasAuthUsers(db)) return 'present'
  const apply = async (trx: Kysely<any>): Promise<SupabaseStandInOutcome> => {
    await sql`SELECT pg_advisory_xact_lock(${STAND_IN_LOCK_KEY})`.execute(trx)
    if (await hasAuthUsers(trx)) return 'present'
    await sql.raw(FOREIGN_AUTH_SQL).execute(trx)
    for (const statement of STAND_IN_STATEMENTS) await statement.execute(trx)
    return 'applied'
  }
  return db.isTransaction ? apply(db) : db.transaction().execute(apply)
}

/**
 * Refuses (42501), naming them, where schema auth is there without auth.users and it, or anything
 * in it, belongs to a role that cannot act as the session's user (not a superuser, not that
 * user, not a role that is a member of it): the stand-in would complete it (CREATE OR REPLACE
 * keeps a function's owner), and that role would own auth.uid(), which every policy asks who the
 * requester is (review rev-f1 F2). Where auth.users is there, the database is taken for
 * Supabase's, whose auth belongs to supabase_auth_admin, a login that cannot act as postgres:
 * nothing tells it from one a lesser login planted (docs/connecting.md).
 */
const FOREIGN_AUTH_SQL = `DO $foreign_auth$
DECLARE
  found pg_catalog.text;
  ${CATALOG_CHECK_DECLARE}
BEGIN
  ${CATALOG_CHECK_BEGIN}
  SELECT string_agg(what, '; ' ORDER BY what) INTO found FROM (
    SELECT format('schema auth owned by %s', pg_get_userbyid(n.nspowner)) AS what
      FROM pg_namespace n
     WHERE n.nspname = 'auth' AND NOT ${actsAsSessionUser('n.nspowner')}
    UNION ALL
    SELECT format('%s owned by %s', pg_describe_object(d.classid, d.objid, 0), pg_get_userbyid(d.owner))
      FROM (SELECT 'pg_proc'::regclass AS classid, p.oid AS objid, p.proowner AS owner, p.pronamespace AS nsp
              FROM pg_proc p
            UNION ALL
            SELECT 'pg_class'::regclass, c.oid, c.relowner, c.relnamespace FROM pg_class c
            UNION ALL
            SELECT 'pg_type'::regclass, t.oid, t.typowner, t.typnamespace FROM pg_type t
             WHERE t.typrelid = 0) AS d
      JOIN pg_namespace n ON n.oid = d.nsp
     WHERE n.nspname = 'auth' AND NOT ${actsAsSessionUser('d.owner')}
  ) AS foreign_objects;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
      'Roles that cannot act as %s own schema auth or what the Supabase stand-in would complete in it: %s. '
      'They would own auth.uid(), which every policy asks who the requester is. Nothing was changed. Find out '
      'who made it; drop it (or give it and its objects to %s) if it is not yours, then migrate again.',
      session_user, found, session_user);
  END IF;
  PERFORM pg_catalog.set_config('search_path', saved, true);
END
$foreign_auth$`

/**
 * Reads pg_class rather than calling to_regclass(): after waiting for the lock, a fresh
 * snapshot of the catalog sees a concurrent creator's table, while to_regclass() may still
 * answer from this session's stale catalog cache.
 */
async function hasAuthUsers(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`
    SELECT EXISTS (
      SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'auth' AND c.relname = 'users'
    ) AS found
  `.execute(db)
  return rows[0]?.found === true
}

/**
 * How the stand-in marks the roles it creates (COMMENT ON ROLE). Roles are cluster-wide: a role
 * without the mark belongs to the server (Supabase itself, a self-hosted setup, an administrator,
 * or a stand-in older than the mark), and the stand-in changes nothing of it: no attribute,
 * membership or setting.
 *
 * The mark is a convenience, not proof: it is a public string, and on PostgreSQL 16+ any login
 * with CREATEROLE may create a role and write it (review rev-5 H3). So the stand-in adds power
 * (an attribute, a membership) only to a role it created in the same transaction, as remembered
 * in {@link CREATED_SETTING}. Of a marked role it did not create now, it only takes power away
 * (LOGIN) or sets a `statement_timeout`.
 */
const STAND_IN_ROLE_MARK =
  'Created by the x402-jobs db module as a stand-in for the Supabase role of this name.'

/**
 * A transaction-local setting listing the roles the stand-in created in this transaction
 * (`,anon,authenticated,`). Every statement of the stand-in runs in one transaction
 * ({@link ensureSupabaseStandIn}), which clears it first: a value given beforehand (a session's
 * SET, a database owner's `ALTER DATABASE … SET`) counts for nothing.
 */
const CREATED_SETTING = 'x402.stand_in_created'

/** True, in SQL, for a role that carries the stand-in's mark. */
function isStandInRole(role: string) {
  return sql.raw(
    `pg_catalog.shobj_description((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = ${quote(role)}), 'pg_authid') = ${quote(STAND_IN_ROLE_MARK)}`,
  )
}

/** True, in SQL, for a role the stand-in created in this transaction. */
function createdNow(role: string) {
  return sql.raw(
    `pg_catalog.strpos(coalesce(pg_catalog.current_setting(${quote(CREATED_SETTING)}, true), ''), ${quote(`,${role},`)}) > 0`,
  )
}

function quote(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

/** Clears {@link CREATED_SETTING} for this transaction: the stand-in's first statement. */
const CLEAR_CREATED = sql`SELECT pg_catalog.set_config(${sql.lit(CREATED_SETTING)}, ',', true)`

/**
 * Creates the role with Supabase's attributes and the stand-in's mark, and remembers that it
 * did ({@link CREATED_SETTING}). Another database of the same server may have created it: a
 * duplicate is not an error. A role that exists is given no attribute, even one with the mark
 * (anyone with CREATEROLE can write it): a marked role that can log in is only made NOLOGIN (the
 * stand-in made authenticator with LOGIN once), which takes power away.
 */
function createRoleUnlessExists(role: string, attributes: string) {
  return sql`
    DO $$
    BEGIN
      -- Looked up first: CREATE ROLE checks the privilege to create roles before the name, and a
      -- database owner without CREATEROLE migrates where the server has the roles.
      IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${sql.lit(role)}) THEN
        BEGIN
          CREATE ROLE ${sql.id(role)} ${sql.raw(attributes)};
          COMMENT ON ROLE ${sql.id(role)} IS ${sql.lit(STAND_IN_ROLE_MARK)};
          PERFORM pg_catalog.set_config(${sql.lit(CREATED_SETTING)},
            coalesce(pg_catalog.current_setting(${sql.lit(CREATED_SETTING)}, true), ',') || ${sql.lit(`${role},`)},
            true);
          RETURN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
          NULL; -- made meanwhile by a run on another database of the server
        END;
      END IF;
      IF ${isStandInRole(role)}
         AND EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${sql.lit(role)} AND rolcanlogin) THEN
        ALTER ROLE ${sql.id(role)} NOLOGIN;
      END IF;
    END
    $$
  `
}

/**
 * Supabase's API roles: created NOINHERIT, switched to INHERIT by the platform migration
 * `alter_api_roles_for_inherit` (2023). service_role bypasses row level security. PostgREST
 * logs in as authenticator (`create user authenticator noinherit`) and switches to them; here
 * nothing logs in as it, and it only has to exist for its memberships: it is NOLOGIN, since a
 * login role without a password would log in wherever the server trusts local connections (one
 * the stand-in made with LOGIN is changed to NOLOGIN where it runs next). postgres is a
 * member of the three (`grant anon, authenticated, service_role to postgres`), and anon's and
 * authenticated's requests have Supabase's statement_timeout.
 */
const ROLE_STATEMENTS = [
  CLEAR_CREATED,
  createRoleUnlessExists('anon', 'NOLOGIN INHERIT'),
  createRoleUnlessExists('authenticated', 'NOLOGIN INHERIT'),
  createRoleUnlessExists('service_role', 'NOLOGIN INHERIT BYPASSRLS'),
  createRoleUnlessExists('authenticator', 'NOLOGIN NOINHERIT'),
  grantUnlessMember('authenticator', ['anon', 'authenticated', 'service_role']),
  grantUnlessMember('postgres', ['anon', 'authenticated', 'service_role']),
  roleSettingUnlessSet('anon', 'statement_timeout', '3s'),
  roleSettingUnlessSet('authenticated', 'statement_timeout', '8s'),
]

/*
 * A membership is granted only to a member the stand-in created in this transaction
 * (authenticator) or to a superuser (postgres, where it is one): a role that exists already is
 * left as it is, whatever its comment says. Memberships and role settings are cluster-wide too,
 * and the stand-in's advisory lock is per database: runs on two databases of one server at once
 * would update the same catalog row ("tuple concurrently updated"). So each is changed only where
 * it is not there yet, which after the first run is nowhere.
 */
function grantUnlessMember(member: string, roles: string[]) {
  return sql`
    DO $$
    DECLARE
      role text;
    BEGIN
      -- Only to a member created in this transaction, or a superuser (which gains nothing by it):
      -- a role another made under the name, marked or not (a login with CREATEROLE can write the
      -- mark), must not get service_role.
      IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${sql.lit(member)}
                       AND (rolsuper OR ${createdNow(member)})) THEN
        RETURN;
      END IF;
      FOR role IN
        SELECT r.rolname FROM pg_catalog.pg_roles r
        WHERE r.rolname IN (${sql.join(roles.map((role) => sql.lit(role)))})
          AND pg_catalog.shobj_description(r.oid, 'pg_authid') = ${sql.lit(STAND_IN_ROLE_MARK)}
          AND NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                          WHERE m.roleid = r.oid AND m.member = ${sql.lit(member)}::regrole)
      LOOP
        EXECUTE pg_catalog.format('GRANT %I TO %I', role, ${sql.lit(member)});
      END LOOP;
    END
    $$
  `
}

/** A setting that takes no power away or gives none: kept for any marked role. */
function roleSettingUnlessSet(role: string, name: string, value: string) {
  return sql`
    DO $$
    BEGIN
      -- Any value of the setting counts as set: one chosen by the server's owner stays.
      IF ${isStandInRole(role)}
         AND NOT EXISTS (SELECT FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) AS c(entry)
                         WHERE s.setrole = ${sql.lit(role)}::regrole AND s.setdatabase = 0
                           AND c.entry LIKE ${sql.lit(`${name}=%`)}) THEN
        ALTER ROLE ${sql.id(role)} SET ${sql.raw(name)} = ${sql.lit(value)};
      END IF;
    END
    $$
  `
}

const STAND_IN_STATEMENTS = [
  ...ROLE_STATEMENTS,

  sql`CREATE SCHEMA IF NOT EXISTS auth`,
  sql`
    CREATE TABLE auth.users (
      instance_id uuid,
      id uuid NOT NULL PRIMARY KEY,
      aud varchar(255),
      role varchar(255),
      email varchar(255),
      encrypted_password varchar(255),
      email_confirmed_at timestamptz,
      invited_at timestamptz,
      confirmation_token varchar(255),
      confirmation_sent_at timestamptz,
      recovery_token varchar(255),
      recovery_sent_at timestamptz,
      last_sign_in_at timestamptz,
      raw_app_meta_data jsonb,
      raw_user_meta_data jsonb,
      is_super_admin boolean,
      created_at timestamptz,
      updated_at timestamptz,
      phone text UNIQUE DEFAULT NULL,
      phone_confirmed_at timestamptz,
      banned_until timestamptz,
      deleted_at timestamptz,
      is_sso_user boolean NOT NULL DEFAULT false,
      is_anonymous boolean NOT NULL DEFAULT false
    )
  `,
  sql`COMMENT ON TABLE auth.users IS 'Stand-in for Supabase Auth''s users table (x402-jobs db module); absent on real Supabase, where GoTrue owns it.'`,

  // Supabase's definitions: the older per-claim setting when present, else the JSON one
  // PostgREST sets today.
  claimFunction('uid', 'sub', 'uuid'),
  claimFunction('role', 'role', 'text'),
  claimFunction('email', 'email', 'text'),
  sql`
    CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $$
  `,
  sql`GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role`,
  sql`GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.email(), auth.jwt() TO anon, authenticated, service_role`,
  // As Supabase Auth leaves it: RLS on and no grant to any API role, so even service_role is
  // refused ("permission denied"). The module only references the table in foreign keys, which
  // the server checks as the referencing table's owner.
  sql`ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY`,

  // Supabase exposes public to the API roles and leaves protection to RLS.
  sql`GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role`,
  sql`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role`,
  sql`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role`,
  sql`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role`,
]

/** auth.<name>(): one claim of the request's JWT, as Supabase Auth defines uid(), role() and email(). */
function claimFunction(name: string, claim: string, type: string) {
  return sql`
    CREATE OR REPLACE FUNCTION ${sql.raw(`auth.${name}`)}() RETURNS ${sql.raw(type)}
    LANGUAGE sql STABLE
    AS $$
      SELECT coalesce(
        nullif(current_setting(${sql.lit(`request.jwt.claim.${claim}`)}, true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> ${sql.lit(claim)})
      )::${sql.raw(type)}
    $$
  `
}
