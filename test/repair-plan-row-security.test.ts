import { randomBytes } from 'node:crypto'

import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { createDb, migrateToLatest, planRepair } from '../src/tooling.js'
import { handOver, withLesserRole } from './support/lesser-role.js'
import { ALL_MIGRATIONS } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// Review revf F4: the repair plan (migrate:baseline -- <name> --plan, which only reads) counts the
// stored rows that stand in the way of a constraint the database lacks. It counted them as the
// operator, outside any read-only transaction: where row level security applied to the operator
// (no superuser, no BYPASSRLS), the table's policy ran with the operator's power, and what it
// wrote committed. The plan must refuse a table whose owner cannot act as the operator before it
// reads it, and read the others with row_security off, where PostgreSQL refuses instead of
// running a policy: no policy code runs.
//
// A server only: PGlite's one user is a superuser, whom row level security never filters.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a role without BYPASSRLS needs a server'

const LATEST = ALL_MIGRATIONS.at(-1)!

/**
 * A database at the latest migration that lacks x402_resources' network CHECK and holds a row
 * that violates it, handed to an operator without BYPASSRLS, and a lesser login whose function
 * `<role>.pwn()` records who runs it and, run by anyone else, grants its owner the keys table.
 */
async function withPlanSetting(
  use: (context: {
    db: Kysely<any>
    asOperator: Kysely<any>
    operator: string
    role: string
    /** That the lesser login's function never ran, and it was granted nothing. */
    noCodeRan: () => Promise<void>
  }) => Promise<void>,
): Promise<void> {
  await withTestDatabase('postgres', async ({ db, location }) => {
    await migrateToLatest(db, { env: {} })
    await sql
      .raw(
        `ALTER TABLE public.x402_resources DROP CONSTRAINT x402_resources_network_check;
         INSERT INTO public.x402_resources (name, resource_url, normalized_url, network, pay_to)
           VALUES ('r', 'https://z.example.test', 'z.example.test', 'not-a-network', '0x1')`,
      )
      .execute(db)
    const operator = `x402_test_planrls_operator_${randomBytes(4).toString('hex')}`
    const url = new URL(serverUrl(location))
    await sql`CREATE ROLE ${sql.id(operator)} LOGIN NOSUPERUSER NOBYPASSRLS`.execute(db)
    const asOperator = createDb({
      connectionString: Object.assign(new URL(url), { username: operator }).toString(),
    })
    try {
      await handOver(db, operator, url.pathname.slice(1))
      await withLesserRole(
        db,
        'x402_test_planrls_lesser',
        async (role) => {
          await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
          await db.transaction().execute(async (trx) => {
            await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
            await sql.raw(`CREATE TABLE ${role}.evidence (who text)`).execute(trx)
            await sql.raw(`GRANT USAGE ON SCHEMA ${role} TO PUBLIC`).execute(trx)
            await sql.raw(`GRANT INSERT ON ${role}.evidence TO PUBLIC`).execute(trx)
            await sql
              .raw(
                `CREATE FUNCTION ${role}.pwn() RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN
                   INSERT INTO ${role}.evidence VALUES (current_user);
                   IF current_user <> '${role}' THEN
                     EXECUTE 'GRANT SELECT ON public.x402_user_openrouter_integrations TO ${role}';
                   END IF;
                   RETURN true;
                 END $f$`,
              )
              .execute(trx)
          })
          const noCodeRan = async () => {
            const { rows: evidence } = await sql
              .raw<{ who: string }>(`SELECT who FROM ${role}.evidence`)
              .execute(db)
            expect(evidence).toEqual([])
            const { rows: granted } = await sql<{ may: boolean }>`
              SELECT has_table_privilege(${role}, 'public.x402_user_openrouter_integrations', 'SELECT') AS may
            `.execute(db)
            expect(granted).toEqual([{ may: false }])
          }
          await use({ db, asOperator, operator, role, noCodeRan })
        },
        { login: true },
      )
    } finally {
      await asOperator.destroy()
      await sql`REASSIGN OWNED BY ${sql.id(operator)} TO CURRENT_USER`.execute(db)
      await sql`DROP OWNED BY ${sql.id(operator)}`.execute(db)
      await sql`DROP ROLE ${sql.id(operator)}`.execute(db)
    }
  })
}

describe.skipIf(skipReason)(
  'the repair plan’s counts of stored rows, by an operator without BYPASSRLS',
  () => {
    it('refuses a table owned by a lesser login before reading it: its policy never runs', async () => {
      await withPlanSetting(async ({ db, asOperator, operator, role, noCodeRan }) => {
        // A table "built by hand" by another login, with row level security of its own.
        await sql.raw(`ALTER TABLE public.x402_resources OWNER TO ${role}`).execute(db)
        await db.transaction().execute(async (trx) => {
          await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
          await sql.raw(`ALTER TABLE public.x402_resources ENABLE ROW LEVEL SECURITY`).execute(trx)
          await sql
            .raw(`CREATE POLICY everyone ON public.x402_resources USING (${role}.pwn())`)
            .execute(trx)
          await sql.raw(`GRANT ALL ON public.x402_resources TO ${operator}`).execute(trx)
        })
        const error = await planRepair(asOperator, LATEST, { decisions: [] }).catch(
          (caught: unknown) => caught,
        )
        await noCodeRan()
        expect(error).toBeInstanceOf(Error)
        expect((error as Error).message).toContain(
          `public.x402_resources is owned by ${role}, a role that cannot act as ${operator}`,
        )
        expect((error as Error).message).toContain('Nothing was changed')
        expect((error as { code?: string }).code).toBe('42501')
      })
    })

    it('reads its own table with row_security off: a policy that applies to it refuses, and never runs', async () => {
      await withPlanSetting(async ({ db, asOperator, role, noCodeRan }) => {
        // The operator's own table, with row level security forced on its owner, and a policy that
        // calls a lesser login's function.
        await sql
          .raw(
            `ALTER TABLE public.x402_resources ENABLE ROW LEVEL SECURITY;
           ALTER TABLE public.x402_resources FORCE ROW LEVEL SECURITY;
           CREATE POLICY everyone ON public.x402_resources USING (${role}.pwn())`,
          )
          .execute(db)
        const error = await planRepair(asOperator, LATEST, { decisions: [] }).catch(
          (caught: unknown) => caught,
        )
        await noCodeRan()
        expect(error).toBeInstanceOf(Error)
        expect((error as Error).message).toMatch(
          /counts the stored rows of public\.x402_resources .*row level security/,
        )
        expect((error as Error).message).toContain('Nothing was changed')
        expect((error as { code?: string }).code).toBe('42501')
      })
    })
  },
)
