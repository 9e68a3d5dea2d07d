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
import { createResource, createUser } from './support/fixtures.js'
import { handOver, withLesserRole } from './support/lesser-role.js'
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

// Before 005's down, the runner counts the rows of every table with a foreign key to the rows it
// deletes. A lesser login with REFERENCES on x402_resources and a schema of its own can make such
// a table, with row level security whose policy calls its function: read by an owner without
// BYPASSRLS, the policy ran that function with the owner's power, and what it did committed at
// once (review revf F1). The count must refuse before it reads the table, and run no policy.
describe.skipIf(skipReason)(
  "a down of 005 by an owner without BYPASSRLS, with another role's referencing table under row level security",
  () => {
    it.each([
      { login: true, refusal: (role: string) => `table ${role}.refs is owned by ${role}` },
      // A role nobody logs in as is trusted by the owner rule: row_security off refuses instead.
      {
        login: false,
        refusal: (role: string) =>
          `PostgreSQL refused to count them without running its row level security policies (query would be affected by row-level security policy for table "refs")`,
      },
    ])(
      'refuses (login: $login), and never runs the policy; nothing changes',
      async ({ login, refusal }) => {
        await withTestDatabase('postgres', async ({ db, location }) => {
          await migrateTo(db, MIGRATION_005)
          const owner = `x402_test_owner_${randomBytes(4).toString('hex')}`
          const url = new URL(serverUrl(location))
          await sql`CREATE ROLE ${sql.id(owner)} LOGIN NOSUPERUSER NOBYPASSRLS`.execute(db)
          const asOwner = createDb({
            connectionString: Object.assign(new URL(url), { username: owner }).toString(),
          })
          try {
            await handOver(db, owner, url.pathname.slice(1))
            await withLesserRole(
              db,
              'x402_test_refs',
              async (role) => {
                const resource = await createResource(db)
                await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
                await sql.raw(`GRANT REFERENCES ON public.x402_resources TO ${role}`).execute(db)
                await db.transaction().execute(async (trx) => {
                  await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
                  await sql.raw(`CREATE TABLE ${role}.evidence (who text)`).execute(trx)
                  await sql.raw(`GRANT USAGE ON SCHEMA ${role} TO PUBLIC`).execute(trx)
                  await sql.raw(`GRANT INSERT ON ${role}.evidence TO PUBLIC`).execute(trx)
                  await sql
                    .raw(
                      `CREATE FUNCTION ${role}.pwn() RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN
                       INSERT INTO ${role}.evidence VALUES (current_user);
                       IF current_user <> '${role}' THEN EXECUTE 'GRANT SELECT, UPDATE ON public.x402_resources TO ${role}'; END IF;
                       RETURN true;
                     END $f$`,
                    )
                    .execute(trx)
                  await sql
                    .raw(
                      `CREATE TABLE ${role}.refs (resource_id uuid REFERENCES public.x402_resources (id))`,
                    )
                    .execute(trx)
                  await sql.raw(`ALTER TABLE ${role}.refs ENABLE ROW LEVEL SECURITY`).execute(trx)
                  await sql
                    .raw(`CREATE POLICY everyone ON ${role}.refs USING (${role}.pwn())`)
                    .execute(trx)
                  await sql.raw(`GRANT SELECT ON ${role}.refs TO PUBLIC`).execute(trx)
                  await sql.raw(`INSERT INTO ${role}.refs VALUES ('${resource}')`).execute(trx)
                })

                const error = await migrateDown(asOwner, { allowDataLoss: true, env: {} }).catch(
                  (caught: unknown) => caught,
                )
                const { rows: evidence } = await sql
                  .raw<{ who: string }>(`SELECT who FROM ${role}.evidence`)
                  .execute(db)
                expect(evidence).toEqual([])
                const { rows: granted } = await sql<{ may: boolean }>`
                SELECT has_table_privilege(${role}, 'public.x402_resources', 'SELECT') AS may
              `.execute(db)
                expect(granted).toEqual([{ may: false }])
                expect(error).toBeInstanceOf(MigrationError)
                expect((error as Error).message).toContain(refusal(role))
                expect((error as Error).message).toContain('Nothing was changed')
                expect((error as Error).message).toContain('SQLSTATE 42501')
                const applied = (await migrationStatus(asOwner))
                  .filter((m) => m.appliedAt)
                  .map((m) => m.name)
                expect(applied.at(-1)).toBe(MIGRATION_005)
              },
              { login },
            )
          } finally {
            await asOwner.destroy()
            await sql`REASSIGN OWNED BY ${sql.id(owner)} TO CURRENT_USER`.execute(db)
            await sql`DROP OWNED BY ${sql.id(owner)}`.execute(db)
            await sql`DROP ROLE ${sql.id(owner)}`.execute(db)
          }
        })
      },
    )
  },
)
