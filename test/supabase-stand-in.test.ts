import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createDb, ensureSupabaseStandIn } from '../src/tooling.js'
import {
  createTestDatabase,
  type TestDatabase,
  testTargets,
  withTestDatabase,
} from './support/test-database.js'
import { withLesserRole } from './support/lesser-role.js'

/** The stand-in's mark, as any role that may comment on a role can write it. */
const STAND_IN_ROLE_MARK =
  'Created by the x402-jobs db module as a stand-in for the Supabase role of this name.'

// The Supabase stand-in: the platform pieces the schema depends on, added where auth.users is
// missing, and never where it exists.

describe.each(testTargets)('the Supabase stand-in on %s', (target) => {
  // Three tests read what the stand-in made, and leave nothing behind: they share one database
  // (one PGlite start instead of three), and each applies the stand-in itself, as on a fresh
  // database. The first test needs a database without the stand-in: it has one of its own, so
  // that it passes in any order (a shared one failed it under --sequence.shuffle, review r4).
  let shared: TestDatabase
  beforeAll(async () => {
    shared = await createTestDatabase(target)
  })
  afterAll(async () => {
    await shared.destroy()
  })
  const withSharedDatabase = async (use: (database: TestDatabase) => Promise<void>) => use(shared)

  it('creates the roles, auth schema and functions once, and is idempotent', async () => {
    await withTestDatabase(target, async ({ db }) => {
      expect(await ensureSupabaseStandIn(db)).toBe('applied')
      expect(await ensureSupabaseStandIn(db)).toBe('present')

      const roles = await sql<{
        rolname: string
        rolinherit: boolean
        rolcanlogin: boolean
        rolbypassrls: boolean
      }>`
        SELECT rolname, rolinherit, rolcanlogin, rolbypassrls FROM pg_roles
        WHERE rolname IN ('anon', 'authenticated', 'service_role') ORDER BY rolname
      `.execute(db)
      expect(roles.rows).toEqual([
        { rolname: 'anon', rolinherit: true, rolcanlogin: false, rolbypassrls: false },
        { rolname: 'authenticated', rolinherit: true, rolcanlogin: false, rolbypassrls: false },
        { rolname: 'service_role', rolinherit: true, rolcanlogin: false, rolbypassrls: true },
      ])

      const columns = await sql<{ column_name: string }>`
        SELECT column_name FROM information_schema.columns WHERE table_schema = 'auth' AND table_name = 'users'
      `.execute(db)
      expect(columns.rows.map((row) => row.column_name)).toEqual(
        expect.arrayContaining([
          'id',
          'email',
          'raw_app_meta_data',
          'raw_user_meta_data',
          'created_at',
        ]),
      )
    })
  })

  // The stand-in only needs authenticator to exist, for its memberships: no test or command logs
  // in as it, and a login role without a password would log in wherever the server trusts local
  // connections.
  it('has Supabase’s roles, authenticator without login, memberships and per-role timeouts', async () => {
    await withSharedDatabase(async ({ db }) => {
      await ensureSupabaseStandIn(db)
      const { rows } = await sql<{
        rolname: string
        rolinherit: boolean
        rolcanlogin: boolean
        settings: string[] | null
      }>`
        SELECT r.rolname, r.rolinherit, r.rolcanlogin,
               (SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0) AS settings
        FROM pg_roles r WHERE r.rolname IN ('anon', 'authenticated', 'authenticator') ORDER BY r.rolname
      `.execute(db)
      expect(rows).toEqual([
        {
          rolname: 'anon',
          rolinherit: true,
          rolcanlogin: false,
          settings: ['statement_timeout=3s'],
        },
        {
          rolname: 'authenticated',
          rolinherit: true,
          rolcanlogin: false,
          settings: ['statement_timeout=8s'],
        },
        { rolname: 'authenticator', rolinherit: false, rolcanlogin: false, settings: null },
      ])

      const members = await sql<{ role: string; postgres: boolean; authenticator: boolean }>`
        SELECT role, pg_has_role('postgres', role, 'MEMBER') AS postgres,
               pg_has_role('authenticator', role, 'MEMBER') AS authenticator
        FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) AS role ORDER BY role
      `.execute(db)
      expect(members.rows).toEqual(
        ['anon', 'authenticated', 'service_role'].map((role) => ({
          role,
          postgres: true,
          authenticator: true,
        })),
      )
      // A membership granted to postgres, not only a superuser's reach.
      const granted = await sql<{ role: string }>`
        SELECT m.roleid::regrole::text AS role FROM pg_auth_members m
        WHERE m.member = 'postgres'::regrole AND m.roleid::regrole::text IN ('anon', 'authenticated', 'service_role')
        ORDER BY 1
      `.execute(db)
      expect(granted.rows.map((row) => row.role)).toEqual(['anon', 'authenticated', 'service_role'])
    })
  })

  it('keeps auth.users from every API role, service_role included, with RLS on', async () => {
    await withSharedDatabase(async ({ db }) => {
      await ensureSupabaseStandIn(db)
      const { rows } = await sql<{ rls: boolean; granted: string[] }>`
        SELECT c.relrowsecurity AS rls,
               ARRAY(SELECT role FROM unnest(ARRAY['anon', 'authenticated', 'service_role', 'authenticator']) AS role
                     WHERE has_table_privilege(role, 'auth.users', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')) AS granted
        FROM pg_class c WHERE c.oid = 'auth.users'::regclass
      `.execute(db)
      expect(rows).toEqual([{ rls: true, granted: [] }])

      for (const role of ['service_role', 'authenticated', 'anon']) {
        const refused = await db
          .transaction()
          .execute(async (trx) => {
            await sql`SET LOCAL ROLE ${sql.id(role)}`.execute(trx)
            await sql`SELECT count(*) FROM auth.users`.execute(trx)
          })
          .then(
            () => 'allowed',
            (error: Error) => error.message,
          )
        expect(refused, role).toMatch(/permission denied for table users/)
      }
    })
  })

  it('reads the request’s JWT as Supabase does, and returns NULL outside a request', async () => {
    await withSharedDatabase(async ({ db }) => {
      await ensureSupabaseStandIn(db)
      const read = sql<{
        uid: string | null
        role: string | null
        email: string | null
        jwt: unknown
      }>`
        SELECT auth.uid() AS uid, auth.role() AS role, auth.email() AS email, auth.jwt() AS jwt
      `
      expect((await read.execute(db)).rows).toEqual([
        { uid: null, role: null, email: null, jwt: null },
      ])

      const sub = '11111111-2222-4333-8444-555555555555'
      const claims = { sub, role: 'authenticated', email: 'a@example.test' }
      const current = await db.transaction().execute(async (trx) => {
        await sql`SELECT set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`.execute(
          trx,
        )
        return (await read.execute(trx)).rows[0]
      })
      expect(current).toEqual({
        uid: sub,
        role: 'authenticated',
        email: 'a@example.test',
        jwt: claims,
      })

      const older = await db.transaction().execute(async (trx) => {
        await sql`SELECT set_config('request.jwt.claim.sub', ${sub}, true)`.execute(trx)
        await sql`SELECT set_config('request.jwt.claim.role', 'anon', true)`.execute(trx)
        await sql`SELECT set_config('request.jwt.claim.email', 'b@example.test', true)`.execute(trx)
        return (await read.execute(trx)).rows[0]
      })
      expect(older).toMatchObject({ uid: sub, role: 'anon', email: 'b@example.test' })
    })
  })

  it('grants the API roles what Supabase grants in public, leaving protection to RLS', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await ensureSupabaseStandIn(db)
      await sql`CREATE TABLE later_table (id int)`.execute(db)
      await sql`CREATE SEQUENCE later_sequence`.execute(db)
      await sql`CREATE FUNCTION later_function() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$`.execute(
        db,
      )
      // PUBLIC may execute any new function: take that away to see the roles' own grant.
      await sql`REVOKE EXECUTE ON FUNCTION later_function() FROM PUBLIC`.execute(db)
      const { rows } = await sql<{
        role: string
        schema: boolean
        table: boolean
        sequence: boolean
        fn: boolean
      }>`
        SELECT role,
               has_schema_privilege(role, 'public', 'USAGE') AS schema,
               has_table_privilege(role, 'later_table', 'SELECT, INSERT, UPDATE, DELETE') AS table,
               has_sequence_privilege(role, 'later_sequence', 'USAGE, SELECT, UPDATE') AS sequence,
               has_function_privilege(role, 'later_function()', 'EXECUTE') AS fn
        FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) AS role
        ORDER BY role
      `.execute(db)
      expect(rows).toEqual(
        ['anon', 'authenticated', 'service_role'].map((role) => ({
          role,
          schema: true,
          table: true,
          sequence: true,
          fn: true,
        })),
      )
    })
  })

  it('leaves roles it did not create as they are: attributes, settings and memberships', async () => {
    // A fresh embedded cluster stands for a server whose administrator made anon: the stand-in
    // makes the other roles, and changes nothing of anon, whose roles are cluster-wide.
    const db = createDb({ dataDir: 'memory://' })
    try {
      await sql`CREATE ROLE anon NOLOGIN NOINHERIT`.execute(db)
      await sql`ALTER ROLE anon SET statement_timeout = '10s'`.execute(db)
      await ensureSupabaseStandIn(db)
      const { rows } = await sql<{
        rolinherit: boolean
        settings: string[] | null
        postgres: boolean
        authenticator: boolean
      }>`
        SELECT r.rolinherit,
               (SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0) AS settings,
               EXISTS (SELECT FROM pg_auth_members m WHERE m.roleid = r.oid AND m.member = 'postgres'::regrole) AS postgres,
               EXISTS (SELECT FROM pg_auth_members m WHERE m.roleid = r.oid AND m.member = 'authenticator'::regrole) AS authenticator
        FROM pg_roles r WHERE r.rolname = 'anon'
      `.execute(db)
      expect(rows).toEqual([
        {
          rolinherit: false,
          settings: ['statement_timeout=10s'],
          postgres: false,
          authenticator: false,
        },
      ])
      const made = await sql<{ rolname: string; rolinherit: boolean }>`
        SELECT rolname, rolinherit FROM pg_roles WHERE rolname IN ('authenticated', 'service_role') ORDER BY rolname
      `.execute(db)
      expect(made.rows).toEqual([
        { rolname: 'authenticated', rolinherit: true },
        { rolname: 'service_role', rolinherit: true },
      ])
    } finally {
      await db.destroy()
    }
  })

  // The mark (COMMENT ON ROLE) is a public string: on PostgreSQL 16+ any login with CREATEROLE
  // may create a role and write it (review rev-5 H3). The stand-in adds power only to the roles
  // it creates in its own transaction, never to one that merely carries the mark.
  it('grants the API roles to no marked login it did not create, and only takes its login away', async () => {
    const db = createDb({ dataDir: 'memory://' })
    try {
      await sql`CREATE ROLE authenticator LOGIN NOINHERIT`.execute(db)
      await sql`COMMENT ON ROLE authenticator IS ${sql.lit(STAND_IN_ROLE_MARK)}`.execute(db)
      await ensureSupabaseStandIn(db)
      expect(await rolesGrantedTo(db, 'authenticator')).toEqual([])
      const role = await sql<{ rolcanlogin: boolean; rolinherit: boolean }>`
        SELECT rolcanlogin, rolinherit FROM pg_roles WHERE rolname = 'authenticator'
      `.execute(db)
      expect(role.rows).toEqual([{ rolcanlogin: false, rolinherit: false }])
    } finally {
      await db.destroy()
    }
  })

  it('adds no attribute to a marked role it did not create: a planted service_role stays without BYPASSRLS', async () => {
    const db = createDb({ dataDir: 'memory://' })
    try {
      await sql`CREATE ROLE service_role NOLOGIN NOINHERIT`.execute(db)
      await sql`COMMENT ON ROLE service_role IS ${sql.lit(STAND_IN_ROLE_MARK)}`.execute(db)
      await ensureSupabaseStandIn(db)
      const { rows } = await sql<{
        rolbypassrls: boolean
        rolinherit: boolean
        rolcanlogin: boolean
      }>`
        SELECT rolbypassrls, rolinherit, rolcanlogin FROM pg_roles WHERE rolname = 'service_role'
      `.execute(db)
      expect(rows).toEqual([{ rolbypassrls: false, rolinherit: false, rolcanlogin: false }])
      // The roles it did create still get today's attributes and memberships.
      const made = await sql<{ rolname: string; rolinherit: boolean; member: boolean }>`
        SELECT rolname, rolinherit, pg_has_role('authenticator', rolname, 'MEMBER') AS member
        FROM pg_roles WHERE rolname IN ('anon', 'authenticated') ORDER BY rolname
      `.execute(db)
      expect(made.rows).toEqual([
        { rolname: 'anon', rolinherit: true, member: true },
        { rolname: 'authenticated', rolinherit: true, member: true },
      ])
    } finally {
      await db.destroy()
    }
  })

  // What the stand-in created is remembered in a transaction-local setting, which it clears
  // first: a value given beforehand (a session's SET, or a database owner's ALTER DATABASE SET)
  // does not make a planted role its own.
  it('takes no role for its own from a value of its setting given beforehand', async () => {
    const db = createDb({ dataDir: 'memory://' })
    try {
      await sql`CREATE ROLE authenticator NOLOGIN NOINHERIT`.execute(db)
      await sql`SET x402.stand_in_created = ',authenticator,'`.execute(db)
      await ensureSupabaseStandIn(db)
      expect(await rolesGrantedTo(db, 'authenticator')).toEqual([])
    } finally {
      await db.destroy()
    }
  })

  it('touches nothing where auth.users exists, as on a real Supabase database', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await sql`CREATE SCHEMA auth`.execute(db)
      await sql`CREATE TABLE auth.users (id uuid PRIMARY KEY)`.execute(db)

      expect(await ensureSupabaseStandIn(db)).toBe('present')

      const { rows } = await sql<{ uid: string | null; columns: number }>`
        SELECT to_regprocedure('auth.uid()')::text AS uid,
               (SELECT count(*)::int FROM information_schema.columns WHERE table_schema = 'auth' AND table_name = 'users') AS columns
      `.execute(db)
      expect(rows).toEqual([{ uid: null, columns: 1 }])
    })
  })

  // Roles are the server's: where they exist, a database owner that may not create roles (no
  // CREATEROLE, as a hosting provider's) migrates all the same. Before, CREATE ROLE was tried
  // first, and refused for want of the privilege before it could find the role there.
  it.runIf(target === 'postgres')(
    'applies where the roles exist, run by an owner that may not create roles',
    async () => {
      await withTestDatabase(target, async ({ db }) => {
        // The server's roles, made once (the shared server has them already).
        await withTestDatabase(
          target,
          async (other) => void (await ensureSupabaseStandIn(other.db)),
        )
        await withLesserRole(db, 'x402_test_owner', async (owner) => {
          await sql
            .raw(`GRANT CREATE ON DATABASE ${await databaseName(db)} TO ${owner}`)
            .execute(db)
          const outcome = await db.transaction().execute(async (trx) => {
            await sql.raw(`SET LOCAL ROLE ${owner}`).execute(trx)
            return ensureSupabaseStandIn(trx)
          })
          expect(outcome).toBe('applied')
          // Given back to the test's user (withLesserRole drops what the role owns).
          await sql.raw(`REASSIGN OWNED BY ${owner} TO CURRENT_USER`).execute(db)
        })
      })
    },
  )

  it.runIf(target === 'postgres')('succeeds from several connections at once', async () => {
    await withTestDatabase(target, async ({ location }) => {
      const connections = Array.from({ length: 4 }, () => createDb(location))
      try {
        const outcomes = await Promise.all(connections.map((db) => ensureSupabaseStandIn(db)))
        expect(outcomes.sort()).toEqual(['applied', 'present', 'present', 'present'])
      } finally {
        await Promise.all(connections.map((db) => db.destroy()))
      }
    })
  })
})

async function databaseName(db: Parameters<typeof ensureSupabaseStandIn>[0]): Promise<string> {
  const { rows } = await sql<{
    name: string
  }>`SELECT quote_ident(current_database()) AS name`.execute(db)
  return rows[0]!.name
}

/** The roles granted to `member`, by name. */
async function rolesGrantedTo(
  db: Parameters<typeof ensureSupabaseStandIn>[0],
  member: string,
): Promise<string[]> {
  const { rows } = await sql<{ rolname: string }>`
    SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
    WHERE m.member = ${member}::regrole ORDER BY r.rolname
  `.execute(db)
  return rows.map((row) => row.rolname)
}

// rev-f1 F2: where a schema auth without auth.users was there already, owned by a login that
// cannot act as the migrating role, the stand-in completed it (CREATE OR REPLACE keeps a
// function's owner): that login then owned auth.uid(), which every policy asks who the requester
// is. The stand-in refuses instead, naming what it found. Each PGlite database is a cluster of
// its own.
describe('the Supabase stand-in and an auth schema someone else made', () => {
  it('reads pg_database_owner as the database owner: completes an auth of its own, refuses where that owner is a lesser login', async () => {
    for (const databaseOwner of ['postgres', 'squatter']) {
      const db = createDb({ dataDir: 'memory://' })
      try {
        await sql`CREATE ROLE squatter LOGIN`.execute(db)
        await sql.raw(`ALTER DATABASE postgres OWNER TO ${databaseOwner}`).execute(db)
        await sql`CREATE SCHEMA auth AUTHORIZATION pg_database_owner`.execute(db)
        const result = await ensureSupabaseStandIn(db).catch((error: unknown) => error)
        if (databaseOwner === 'postgres') expect(result).toBe('applied')
        else {
          expect(String(result)).toMatch(/schema auth owned by pg_database_owner/)
          expect((result as { code?: string }).code).toBe('42501')
        }
      } finally {
        await db.destroy()
      }
    }
  })

  it('refuses (42501) where auth or a function in it belongs to a role that cannot act as the migrating one', async () => {
    const db = createDb({ dataDir: 'memory://' })
    try {
      await sql`CREATE ROLE squatter LOGIN`.execute(db)
      await sql`CREATE SCHEMA auth AUTHORIZATION squatter`.execute(db)
      await db.connection().execute(async (connection) => {
        await sql`SET ROLE squatter`.execute(connection)
        await sql`CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'`.execute(
          connection,
        )
        await sql`RESET ROLE`.execute(connection)
      })
      const refused = await ensureSupabaseStandIn(db).catch((error: unknown) => error)
      expect(String(refused)).toMatch(/squatter/)
      expect(String(refused)).toMatch(/auth/)
      expect((refused as { code?: string }).code).toBe('42501')
      const { rows } = await sql<{
        found: boolean
      }>`SELECT to_regclass('auth.users') IS NOT NULL AS found`.execute(db)
      expect(rows[0]!.found).toBe(false)
    } finally {
      await db.destroy()
    }
  })
})
