import { randomBytes } from 'node:crypto'

import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  createDb,
  MigrationError,
  migrateDown,
  migrateTo,
  migrationStatus,
} from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'
import { MIGRATION_005 } from './support/migration-names.js'

// A down run by a role that owns the tables without BYPASSRLS (a local or self-hosted server),
// where production forced row level security on a table: every count the down makes would see no
// row of that table, and it would be dropped with its rows. The down must see them, or refuse.
//
// A server only: PGlite's one user is a superuser, whom row level security never filters.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a role without BYPASSRLS needs a server'

const CASES = [
  {
    migration: '002_add_claude_integration',
    table: 'x402_user_claude_configs',
    insert: (userId: string) =>
      sql`INSERT INTO x402_user_claude_configs (user_id, api_key_encrypted) VALUES (${userId}, 'aa:bb')`,
  },
  {
    migration: MIGRATION_005,
    table: 'user_openrouter_integrations',
    insert: (userId: string) =>
      sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`,
  },
]

/** Hands every table and function of public and x402_migrations to `role`, as an owner would have them. */
async function handOver(db: Kysely<any>, role: string, database: string): Promise<void> {
  await sql`GRANT CREATE, CONNECT ON DATABASE ${sql.id(database)} TO ${sql.id(role)}`.execute(db)
  await sql`ALTER SCHEMA x402_migrations OWNER TO ${sql.id(role)}`.execute(db)
  await sql`GRANT USAGE ON SCHEMA auth TO ${sql.id(role)}`.execute(db)
  await sql`GRANT SELECT, REFERENCES ON auth.users TO ${sql.id(role)}`.execute(db)
  await sql
    .raw(
      `DO $$ DECLARE r record; BEGIN
        FOR r IN SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname IN ('public', 'x402_migrations') AND c.relkind IN ('r', 'p') LOOP
          EXECUTE format('ALTER TABLE %s OWNER TO %I', r.t, '${role}');
        END LOOP;
        FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = 'public' LOOP
          EXECUTE format('ALTER FUNCTION %s OWNER TO %I', r.f, '${role}');
        END LOOP;
      END $$`,
    )
    .execute(db)
}

describe.skipIf(skipReason)(
  'a down by an owner without BYPASSRLS, on a table with FORCE ROW LEVEL SECURITY',
  () => {
    it.each(CASES)(
      "$migration's down keeps the table and its row",
      async ({ migration, table, insert }) => {
        await withTestDatabase('postgres', async ({ db, location }) => {
          await migrateTo(db, migration)
          const role = `x402_test_owner_${randomBytes(4).toString('hex')}`
          const url = new URL(serverUrl(location))
          await sql`CREATE ROLE ${sql.id(role)} LOGIN NOSUPERUSER NOBYPASSRLS`.execute(db)
          const asOwner = createDb({
            connectionString: Object.assign(url, { username: role }).toString(),
          })
          try {
            await handOver(db, role, url.pathname.slice(1))
            await insert(await createUser(db)).execute(db)
            await sql.raw(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`).execute(db)

            for (const allowDataLoss of [false, true]) {
              const error = await migrateDown(asOwner, { allowDataLoss, env: {} }).catch(
                (caught: unknown) => caught,
              )
              expect(error).toBeInstanceOf(MigrationError)
              // Refused before the down begins, by the check every write runs: the policies would
              // run with the owner's power, and hide the row from the down's count and its backup.
              expect((error as Error).message).toContain(
                `row level security applies to ${role} on public.${table}. Nothing was changed.`,
              )
              const { rows } = await sql
                .raw<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)
                .execute(db)
              expect(Number(rows[0]!.n)).toBe(1)
              // Read as its owner: a superuser refuses a history whose owner cannot act as it.
              const applied = (await migrationStatus(asOwner))
                .filter((m) => m.appliedAt)
                .map((m) => m.name)
              expect(applied.at(-1)).toBe(migration)
            }
          } finally {
            await asOwner.destroy()
            await sql`REASSIGN OWNED BY ${sql.id(role)} TO CURRENT_USER`.execute(db)
            await sql`DROP OWNED BY ${sql.id(role)}`.execute(db)
            await sql`DROP ROLE ${sql.id(role)}`.execute(db)
          }
        })
      },
    )
  },
)
