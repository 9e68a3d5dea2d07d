import { randomBytes } from 'node:crypto'

import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  createDb,
  MigrationError,
  migrateDown,
  migrateTo,
  migrateToLatest,
} from '../src/tooling.js'
import { cli, cliEnv } from './support/cli.js'
import { escalate, isSuperuser } from './support/lesser-role.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// A role that may create objects in public (every role's right on PostgreSQL 14 and earlier)
// defines an operator or a function that PostgreSQL's own would lose to by a closer type match,
// or that comes first on a search_path its database sets. Whoever runs the module's catalog
// reads or migrations would run that role's code with their own power: a superuser would make it
// one. The module refuses before it reads or changes anything.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a role that logs in on its own needs a server'

const PLANTS: Record<string, (role: string) => string[]> = {
  'operator public.=(oid, regclass)': (role) => [
    `CREATE FUNCTION public.oideq(a oid, b regclass) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN a OPERATOR(pg_catalog.=) b::oid; END $f$`,
    'CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.oideq)',
  ],
  'operator public.||(name, name)': (role) => [
    `CREATE FUNCTION public.namecat(a name, b name) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN a::text OPERATOR(pg_catalog.||) b::text; END $f$`,
    'CREATE OPERATOR public.|| (LEFTARG = name, RIGHTARG = name, FUNCTION = public.namecat)',
  ],
  'function public.to_regclass(text)': (role) => [
    `CREATE FUNCTION public.to_regclass(t text) RETURNS regclass LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN pg_catalog.to_regclass(t); END $f$`,
  ],
}

async function plant(db: Kysely<any>, role: string, statements: string[]): Promise<void> {
  await sql`CREATE ROLE ${sql.id(role)} NOLOGIN NOSUPERUSER`.execute(db)
  await sql`GRANT CREATE ON SCHEMA public TO ${sql.id(role)}`.execute(db)
  await db.connection().execute(async (connection) => {
    await sql`SET ROLE ${sql.id(role)}`.execute(connection)
    try {
      for (const statement of statements) await sql.raw(statement).execute(connection)
    } finally {
      await sql`RESET ROLE`.execute(connection)
    }
  })
}

async function unplant(db: Kysely<any>, role: string): Promise<void> {
  await sql`DROP OWNED BY ${sql.id(role)}`.execute(db)
  await sql`DROP ROLE ${sql.id(role)}`.execute(db)
}

describe.skipIf(skipReason)(
  'objects that shadow PostgreSQL’s own, planted by a lesser role',
  () => {
    it.each(Object.keys(PLANTS))(
      'with %s: the commands refuse, naming it, and run none of its code',
      async (name) => {
        await withTestDatabase('postgres', async ({ db, location }) => {
          await migrateToLatest(db, { env: {} })
          const role = `x402_test_plant_${randomBytes(4).toString('hex')}`
          await plant(db, role, PLANTS[name]!(role))
          try {
            for (const [args, script] of [
              [['list'], undefined],
              [['check'], undefined],
              [[], 'src/cli/migrate-plan.ts'],
            ] as const) {
              const result = await cli([...args], cliEnv(location), script)
              expect(result.code, `${args.join(' ') || script}: ${result.stderr}`).toBe(1)
              expect(result.stderr).toContain(`owned by ${role}`)
              expect(await isSuperuser(db, role)).toBe(false)
            }
          } finally {
            await unplant(db, role)
          }
        })
      },
    )

    // Review revn N3: the operator a trusted role made, over a function the lesser role owns
    // (which it may rewrite at any time), is that role's code where it runs.
    it('with an operator of postgres in public over a lesser role’s function: the commands refuse, naming it, and run none of its code', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateToLatest(db, { env: {} })
        const role = `x402_test_plant_${randomBytes(4).toString('hex')}`
        await plant(db, role, [
          `CREATE FUNCTION public.x402_oid_is(a oid, b regclass) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN a OPERATOR(pg_catalog.=) b::oid; END $f$`,
        ])
        await sql`REVOKE CREATE ON SCHEMA public FROM ${sql.id(role)}`.execute(db)
        await sql
          .raw(
            'CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.x402_oid_is)',
          )
          .execute(db)
        try {
          for (const [args, script] of [
            [['list'], undefined],
            [['check'], undefined],
          ] as const) {
            const result = await cli([...args], cliEnv(location), script)
            expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(1)
            expect(result.stderr).toContain(
              `operator public.=(oid, regclass) calls public.x402_oid_is(oid,regclass), owned by ${role}`,
            )
            expect(await isSuperuser(db, role)).toBe(false)
          }
        } finally {
          await sql.raw('DROP OPERATOR public.= (oid, regclass)').execute(db)
          await unplant(db, role)
        }
      })
    })

    it('a migration run refuses before it changes anything', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await migrateTo(db, '002_add_claude_integration')
        const role = `x402_test_plant_${randomBytes(4).toString('hex')}`
        await plant(db, role, PLANTS['operator public.=(oid, regclass)']!(role))
        try {
          const error = await migrateToLatest(db, { env: {} }).catch((caught: unknown) => caught)
          expect(error).toBeInstanceOf(MigrationError)
          expect((error as Error).message).toContain(`owned by ${role}`)
          expect(await isSuperuser(db, role)).toBe(false)
          const { rows } = await sql<{
            name: string
          }>`SELECT name FROM x402_migrations.kysely_migration ORDER BY name`.execute(db)
          expect(rows.map((row) => row.name)).not.toContain(MIGRATION_005)
        } finally {
          await unplant(db, role)
        }
      })
    })

    it('a login role that may create objects in public is refused before anything runs, planted or not', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, '002_add_claude_integration')
        const role = `x402_test_plant_${randomBytes(4).toString('hex')}`
        await sql`CREATE ROLE ${sql.id(role)} LOGIN NOSUPERUSER`.execute(db)
        await sql`GRANT CREATE ON SCHEMA public TO ${sql.id(role)}`.execute(db)
        try {
          // It could plant an operator while a migration waits for a lock, after any check of objects.
          const error = await migrateToLatest(db, { env: {} }).catch((caught: unknown) => caught)
          expect(error).toBeInstanceOf(MigrationError)
          expect((error as Error).message).toContain(`${role} may create objects in schema public`)
          const result = await cli(['list'], cliEnv(location))
          expect(result.code, result.stderr).toBe(1)
          expect(result.stderr).toContain(`${role} may create objects in schema public`)
        } finally {
          await unplant(db, role)
        }
      })
    })

    it('with a search_path that does not name public, migrate:check still refuses a login that may create in public, whose operator the reads pinned to public would run', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateToLatest(db, { env: {} })
        // An extension's objects in public, as many databases have: the reads compare their
        // dependencies with oid = regclass, which the planted operator answers.
        await sql`CREATE EXTENSION citext SCHEMA public`.execute(db)
        const role = `x402_test_plant_${randomBytes(4).toString('hex')}`
        await plant(db, role, PLANTS['operator public.=(oid, regclass)']!(role))
        await sql`ALTER ROLE ${sql.id(role)} LOGIN`.execute(db)
        try {
          // The session's path, as a role or database default or the URL's options set it.
          const url = new URL(serverUrl(location))
          url.searchParams.set('options', '-c search_path=x402_migrations')
          const result = await cli(['check'], { DATABASE_URL: url.toString() })
          expect(await isSuperuser(db, role)).toBe(false)
          expect(result.code, result.stderr).toBe(1)
          expect(result.stderr).toContain(`${role} may create objects in schema public`)
          expect(result.stderr).toContain(`owned by ${role}`)
          expect(await isSuperuser(db, role)).toBe(false)
        } finally {
          await unplant(db, role)
        }
      })
    })

    it('a login role that may only SET ROLE to a role that creates in public is refused too', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, '002_add_claude_integration')
        const group = `x402_test_plant_${randomBytes(4).toString('hex')}`
        const login = `x402_test_plant_${randomBytes(4).toString('hex')}`
        // As Supabase's authenticator: NOINHERIT, so it holds none of the group's rights until SET ROLE.
        await sql`CREATE ROLE ${sql.id(group)} NOLOGIN NOSUPERUSER`.execute(db)
        await sql`CREATE ROLE ${sql.id(login)} LOGIN NOINHERIT NOSUPERUSER`.execute(db)
        await sql`GRANT ${sql.id(group)} TO ${sql.id(login)}`.execute(db)
        await sql`GRANT CREATE ON SCHEMA public TO ${sql.id(group)}`.execute(db)
        try {
          const result = await cli(['list'], cliEnv(location))
          expect(result.code, result.stderr).toBe(1)
          expect(result.stderr).toContain(
            `${login} may create objects in schema public (as ${group})`,
          )
        } finally {
          await unplant(db, login)
          await unplant(db, group)
        }
      })
    })

    it('a login role that may create the schema a search_path entry names, "$user", is refused', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, '002_add_claude_integration')
        const role = `x402_test_plant_${randomBytes(4).toString('hex')}`
        const database = new URL(serverUrl(location)).pathname.slice(1)
        await sql`CREATE ROLE ${sql.id(role)} LOGIN NOSUPERUSER`.execute(db)
        await sql.raw(`GRANT CREATE ON DATABASE "${database}" TO ${role}`).execute(db)
        const { rows } = await sql<{ user: string }>`SELECT current_user AS user`.execute(db)
        try {
          // The search_path's default, "$user", public: no schema is named after the user yet.
          const result = await cli(['list'], cliEnv(location))
          expect(result.code, result.stderr).toBe(1)
          expect(result.stderr).toContain(
            `${role} may create schema ${rows[0]!.user}, which the search_path names`,
          )
        } finally {
          await sql.raw(`REVOKE CREATE ON DATABASE "${database}" FROM ${role}`).execute(db)
          await unplant(db, role)
        }
      })
    })

    it('a view named as a catalog relation, in a schema a database default puts before pg_catalog, is never read', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateToLatest(db, { env: {} })
        await migrateDown(db, { env: {} })
        const role = `x402_test_plant_${randomBytes(4).toString('hex')}`
        await sql`CREATE ROLE ${sql.id(role)} NOLOGIN NOSUPERUSER`.execute(db)
        await sql`CREATE SCHEMA evil AUTHORIZATION ${sql.id(role)}`.execute(db)
        await db.connection().execute(async (connection) => {
          await sql`SET ROLE ${sql.id(role)}`.execute(connection)
          await sql
            .raw(
              `CREATE FUNCTION evil.pwn() RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN true; END $f$`,
            )
            .execute(connection)
          await sql
            .raw('CREATE VIEW evil.pg_locks AS SELECT * FROM pg_catalog.pg_locks WHERE evil.pwn()')
            .execute(connection)
          await sql`RESET ROLE`.execute(connection)
        })
        const database = new URL(serverUrl(location)).pathname.slice(1)
        await sql
          .raw(`ALTER DATABASE "${database}" SET search_path = evil, pg_catalog, public`)
          .execute(db)
        // A session of its own, which takes the database's search_path.
        const fresh = createDb({ connectionString: serverUrl(location) })
        try {
          const error = await migrateToLatest(fresh, { env: {} }).catch((caught: unknown) => caught)
          expect(error).toBeInstanceOf(MigrationError)
          expect((error as Error).message).toContain('schema evil comes before pg_catalog')
          expect(await isSuperuser(db, role)).toBe(false)
        } finally {
          await fresh.destroy()
          await sql`DROP SCHEMA evil CASCADE`.execute(db)
          await unplant(db, role)
        }
      })
    })

    it('a database owned by a lesser role is refused, naming it as the owner of public', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateToLatest(db, { env: {} })
        const role = `x402_test_plant_${randomBytes(4).toString('hex')}`
        const database = new URL(serverUrl(location)).pathname.slice(1)
        await sql`CREATE ROLE ${sql.id(role)} NOLOGIN NOSUPERUSER`.execute(db)
        await sql.raw(`ALTER DATABASE "${database}" OWNER TO ${role}`).execute(db)
        try {
          const result = await cli(['list'], cliEnv(location))
          expect(result.code, result.stderr).toBe(1)
          expect(result.stderr).toContain(
            `schema public is owned by pg_database_owner, that is ${role}, the database's owner`,
          )
        } finally {
          await sql.raw(`ALTER DATABASE "${database}" OWNER TO CURRENT_USER`).execute(db)
          await unplant(db, role)
        }
      })
    })

    it('a database search_path that puts a lesser role’s schema before pg_catalog is refused too', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateToLatest(db, { env: {} })
        const role = `x402_test_plant_${randomBytes(4).toString('hex')}`
        await sql`CREATE ROLE ${sql.id(role)} NOLOGIN NOSUPERUSER`.execute(db)
        await sql`CREATE SCHEMA evil AUTHORIZATION ${sql.id(role)}`.execute(db)
        const database = new URL(serverUrl(location)).pathname.slice(1)
        await sql
          .raw(`ALTER DATABASE "${database}" SET search_path = evil, pg_catalog, public`)
          .execute(db)
        await db.connection().execute(async (connection) => {
          await sql`SET ROLE ${sql.id(role)}`.execute(connection)
          await sql
            .raw(
              `CREATE FUNCTION evil.current_setting(t text) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN pg_catalog.current_setting(t); END $f$`,
            )
            .execute(connection)
          // A type named as pg_catalog's: the check's own variables must not take it. A sequence
          // counts its calls whatever rolls back.
          await sql.raw('CREATE SEQUENCE evil.ran').execute(connection)
          await sql
            .raw(
              `CREATE FUNCTION evil.mark(v pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM pg_catalog.nextval('evil.ran'); RETURN true; END $f$`,
            )
            .execute(connection)
          await sql
            .raw('CREATE DOMAIN evil.text AS pg_catalog.text CHECK (evil.mark(VALUE))')
            .execute(connection)
          await sql
            .raw(
              'CREATE DOMAIN evil.oid AS pg_catalog.oid CHECK (evil.mark(VALUE::pg_catalog.text))',
            )
            .execute(connection)
          await sql`RESET ROLE`.execute(connection)
        })
        try {
          const result = await cli(['list'], cliEnv(location))
          expect(result.code, result.stderr).toBe(1)
          expect(result.stderr).toContain(`owned by ${role}`)
          expect(await isSuperuser(db, role)).toBe(false)
          const { rows } = await sql<{
            called: boolean
          }>`SELECT is_called AS called FROM evil.ran`.execute(db)
          expect(rows[0]!.called).toBe(false)
        } finally {
          await sql`DROP SCHEMA evil CASCADE`.execute(db)
          await unplant(db, role)
        }
      })
    })
  },
)
