import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { lesserTriggersSql } from '../src/connection/lesser-triggers.js'
import { SHADOWED_CATALOG_SQL } from '../src/connection/shadowed-catalog.js'
import { exportMigrationSql } from '../src/export/migration-sql.js'
import { API_ROLE_ADMINS_SQL } from '../src/supabase/api-role-admins.js'
import { migrateTo } from '../src/tooling.js'
import { cli } from './support/cli.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'
import { runScriptInOneQuery, runScriptWithPsql } from './support/exported-script.js'

// migrate:sql exports a migration for the Supabase SQL Editor (which runs as postgres) or psql.
// The script must refuse what the runner refuses: a search_path that lets lesser roles shadow
// pg_catalog, and code of a role that a lesser login can act as on the tables it writes (a
// trigger calling a function of its pg_temp schema, attached through the TRIGGER privilege that
// Supabase grants to its API roles). Pasted as postgres, such a trigger would run as postgres.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a lesser role needs a server'

const MIGRATION_006 = '006_rename_to_production_names'

/**
 * A session of `role`'s own (SET ROLE, as Supabase's authenticator does) that attaches to
 * `table` a trigger calling a function of its pg_temp schema, which records that it ran and
 * tries to make `role` a superuser. It stays open: the function lives as long as it does.
 */
async function temporaryTrigger(url: string, role: string, table: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`SET ROLE ${role}`)
  await client.query(
    `CREATE FUNCTION pg_temp.pwn() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
       INSERT INTO public.pwn_proof VALUES (session_user); ${escalate(role)} RETURN NULL; END $f$`,
  )
  await client.query(
    `CREATE TRIGGER zz_pwn AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.pwn()`,
  )
  return client
}

/** The table the planted function writes to, writable by `role`: a row there means it ran. */
async function proofTable(db: Kysely<any>, role: string): Promise<void> {
  await sql`CREATE TABLE public.pwn_proof (who text)`.execute(db)
  await sql.raw(`GRANT INSERT ON public.pwn_proof TO ${role}`).execute(db)
}

async function proofRows(db: Kysely<any>): Promise<number> {
  const { rows } = await sql<{
    n: number
  }>`SELECT count(*)::int AS n FROM public.pwn_proof`.execute(db)
  return rows[0]!.n
}

async function exists(db: Kysely<any>, relation: string): Promise<boolean> {
  const { rows } = await sql<{
    found: boolean
  }>`SELECT to_regclass(${relation}) IS NOT NULL AS found`.execute(db)
  return rows[0]!.found
}

describe.skipIf(skipReason)('an exported migration script and code of a lesser role', () => {
  it('006’s script, exported by migrate:sql, refuses (42501) a temporary trigger of a role with TRIGGER on ai_models, and never runs it', async () => {
    const exported = await cli(['sql', '006', '--no-locks'], {})
    expect(exported.code).toBe(0)
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLesserRole(
        db,
        'x402_test_lesser',
        async (role) => {
          await proofTable(db, role)
          await sql.raw(`GRANT TRIGGER ON ai_models TO ${role}`).execute(db)
          const url = serverUrl(location)
          const attacker = await temporaryTrigger(url, role, 'ai_models')
          try {
            expect(await runScriptInOneQuery(url, exported.stdout)).toBe('42501')
            expect(await runScriptWithPsql(url, exported.stdout)).toMatch(
              /ERROR: {2}42501: .*trigger zz_pwn on public\.ai_models calls pg_temp_\d+\.pwn\(\)/,
            )
            expect(await proofRows(db)).toBe(0)
            expect(await isSuperuser(db, role)).toBe(false)
            // Nothing of 006 was done.
            expect(await exists(db, 'public.ai_models')).toBe(true)
          } finally {
            await attacker.end()
          }
        },
        { login: true },
      )
    })
  })

  it('005’s down script (outside a transaction) refuses (42501) a temporary trigger on the keys table before its first step', async () => {
    const script = await exportMigrationSql(MIGRATION_005, 'down')
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLesserRole(
        db,
        'x402_test_lesser',
        async (role) => {
          await proofTable(db, role)
          await sql.raw(`GRANT TRIGGER ON user_openrouter_integrations TO ${role}`).execute(db)
          const url = serverUrl(location)
          const attacker = await temporaryTrigger(url, role, 'user_openrouter_integrations')
          try {
            expect(await runScriptWithPsql(url, script)).toMatch(
              /ERROR: {2}42501: .*trigger zz_pwn on public\.user_openrouter_integrations calls pg_temp_\d+\.pwn\(\)/,
            )
            expect(await proofRows(db)).toBe(0)
            expect(await isSuperuser(db, role)).toBe(false)
            expect(await exists(db, 'public.user_openrouter_integrations')).toBe(true)
          } finally {
            await attacker.end()
          }
        },
        { login: true },
      )
    })
  })

  it('a script runs the runner’s checks first in each of its transactions, and before what it runs outside one', async () => {
    const fenced = `${SHADOWED_CATALOG_SQL};\n\n${API_ROLE_ADMINS_SQL};\n\n${lesserTriggersSql({ lock: true })};`
    for (const [name, direction] of [
      [MIGRATION_006, 'up'],
      [MIGRATION_006, 'down'],
      [MIGRATION_005, 'up'],
      [MIGRATION_005, 'down'],
    ] as const) {
      const script = await exportMigrationSql(name, direction)
      const transactions = script.split(/^BEGIN ISOLATION LEVEL READ COMMITTED;\n\n/m).slice(1)
      expect(transactions.length, `${name} ${direction}`).toBeGreaterThan(0)
      for (const transaction of transactions) {
        // Only settings of the transaction come before the checks: nothing that reads or writes.
        const head = transaction.slice(0, transaction.indexOf(fenced))
        expect(transaction.indexOf(fenced), `${name} ${direction}`).toBeGreaterThanOrEqual(0)
        expect(
          head
            .split(/;\n\n/)
            .filter((statement) => statement.trim() !== '')
            .filter(
              (statement) => !/^(?:--[^\n]*\n)*SET (LOCAL )?[\w.]+ = /.test(statement.trim()),
            ),
          `${name} ${direction}`,
        ).toEqual([])
      }
      // Outside a transaction: the statements after COMMIT (or before the first BEGIN) that are
      // not settings come after the unlocked check.
      const outside = script.split(/^BEGIN ISOLATION LEVEL READ COMMITTED;\n[\s\S]*?^COMMIT;\n/m)
      for (const part of outside) {
        const statements = part
          .split(/;\n\n/)
          .map((statement) => statement.replace(/^(?:--[^\n]*\n|\\[^\n]*\n|\s)+/, ''))
          .filter((statement) => statement !== '' && !/^SET [\w.]+ = /.test(statement))
        if (statements.length > 0) {
          expect(statements.slice(0, 3), `${name} ${direction}`).toEqual([
            SHADOWED_CATALOG_SQL,
            API_ROLE_ADMINS_SQL,
            lesserTriggersSql({ lock: false }),
          ])
        }
      }
    }
  }, 120_000)
})
