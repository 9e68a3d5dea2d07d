import { type Kysely, sql } from 'kysely'

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
 * depends on: the roles anon, authenticated, service_role and authenticator, schema `auth`
 * with `auth.users`, `auth.uid()`, `auth.role()` and `auth.jwt()`, and the grants and default
 * privileges Supabase gives in `public`.
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
    for (const statement of STAND_IN_STATEMENTS) await statement.execute(trx)
    return 'applied'
  }
  return db.isTransaction ? apply(db) : db.transaction().execute(apply)
}

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
 * Roles are cluster-wide, so another database of the same server may have created them: a
 * duplicate is not an error. The attributes are Supabase's.
 */
function createRoleUnlessExists(role: string, attributes: string) {
  return sql`
    DO $$
    BEGIN
      CREATE ROLE ${sql.id(role)} ${sql.raw(attributes)};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END
    $$
  `
}

const STAND_IN_STATEMENTS = [
  createRoleUnlessExists('anon', 'NOLOGIN NOINHERIT'),
  createRoleUnlessExists('authenticated', 'NOLOGIN NOINHERIT'),
  createRoleUnlessExists('service_role', 'NOLOGIN NOINHERIT BYPASSRLS'),
  // PostgREST's login role; here without a password or LOGIN, as nothing logs in with it.
  createRoleUnlessExists('authenticator', 'NOLOGIN NOINHERIT'),
  sql`GRANT anon, authenticated, service_role TO authenticator`,

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
  sql`
    CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
      )::uuid
    $$
  `,
  sql`
    CREATE OR REPLACE FUNCTION auth.role() RETURNS text
    LANGUAGE sql STABLE
    AS $$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
      )::text
    $$
  `,
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
  sql`GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO anon, authenticated, service_role`,
  sql`GRANT ALL ON auth.users TO service_role`,

  // Supabase exposes public to the API roles and leaves protection to RLS.
  sql`GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role`,
  sql`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role`,
  sql`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role`,
  sql`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role`,
]
