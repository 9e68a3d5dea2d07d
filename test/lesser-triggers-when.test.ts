import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it, type TestContext } from 'vitest'

import { lesserTriggersSql } from '../src/connection/lesser-triggers.js'
import { exportMigrationSql } from '../src/export/migration-sql.js'
import {
  IntegrationCipher,
  migrateTo,
  migrateToLatest,
  rotateOpenRouterKeys,
} from '../src/tooling.js'
import { runScriptInOneQuery, runScriptWithPsql } from './support/exported-script.js'
import { createUser } from './support/fixtures.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// A trigger's WHEN condition is code of whoever made the trigger: any role with the TRIGGER
// privilege on the table (Supabase grants it on every table in public to anon, authenticated and
// service_role, which its authenticator login may become). Built only of pg_catalog's functions,
// it leaves nothing in pg_depend, and yet it can reach that role's code or change the session:
// pg_input_is_valid(text, 'its.domain') runs the domain's CHECK (PostgreSQL 16+), and
// set_config('search_path', 'its_schema, …', true) makes every later unqualified name of the
// migration resolve to that role's objects. The check refuses a WHEN condition that calls anything
// but immutable functions of trusted roles; a production WHEN such as OLD.* IS DISTINCT FROM NEW.*
// still passes.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a lesser role needs a server'

/** Skips the test on a server older than PostgreSQL 16, which has no pg_input_is_valid. */
async function skipBelowPostgres16(db: Kysely<any>, context: TestContext): Promise<void> {
  const { rows } = await sql<{
    version: number
  }>`SELECT current_setting('server_version_num')::int AS version`.execute(db)
  const version = rows[0]!.version
  if (version < 160_000)
    context.skip(`pg_input_is_valid needs PostgreSQL 16; this server is ${version}`)
}

/** A lesser login role (as Supabase's authenticator, which may become anon). */
const withLoginRole = (db: Kysely<any>, use: (role: string) => Promise<void>) =>
  withLesserRole(db, 'x402_test_lesser', use, { login: true })

async function applied(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{
    name: string
  }>`SELECT name FROM x402_migrations.kysely_migration ORDER BY name`.execute(db)
  return rows.map((row) => row.name)
}

/** One ai_models row with a pricing object: 006's UPDATE of the catalog writes it. */
async function pricedModel(db: Kysely<any>): Promise<void> {
  await sql`INSERT INTO ai_models (openrouter_id, display_name, provider, pricing)
            VALUES ('openai/gpt-4o', 'GPT-4o', 'openai', '{"prompt":"0.000005","completion":"0.000015"}')`.execute(
    db,
  )
}

/**
 * What the lesser role plants, as itself, in a schema of its own: `pwn(text)`, which makes it a
 * superuser when a superuser calls it; a domain whose CHECK calls it; a `to_regclass(text)` that
 * calls it too (006 names to_regclass unqualified); and the TRIGGER privilege on `table`.
 */
async function plant(db: Kysely<any>, role: string, table: string): Promise<void> {
  await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
  await sql.raw(`GRANT TRIGGER ON ${table} TO ${role}`).execute(db)
  await asRole(db, role, [
    `CREATE FUNCTION ${role}.pwn(t text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN true; END $f$`,
    `CREATE DOMAIN ${role}.d AS text CHECK (${role}.pwn(VALUE))`,
    `CREATE FUNCTION ${role}.to_regclass(text) RETURNS regclass LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.pwn('x'); RETURN pg_catalog.to_regclass($1); END $f$`,
  ])
}

/** Runs `statements` on a connection of `db` under SET ROLE `role`, as the authenticator does. */
async function asRole(db: Kysely<any>, role: string, statements: string[]): Promise<void> {
  await db.connection().execute(async (connection) => {
    await sql.raw(`SET ROLE ${role}`).execute(connection)
    try {
      for (const statement of statements) await sql.raw(statement).execute(connection)
    } finally {
      await sql`RESET ROLE`.execute(connection)
    }
  })
}

/** The lesser role's trigger on `table`, with a function of pg_catalog's and `when` as its WHEN. */
const whenTrigger = (table: string, when: string): string =>
  `CREATE TRIGGER zz_when BEFORE UPDATE ON ${table} FOR EACH ROW WHEN (${when}) ` +
  'EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()'

/** The hostile WHEN conditions: each reaches the lesser role's code through pg_catalog alone. */
const HOSTILE = {
  pg_input_is_valid: {
    when: (role: string) => `pg_catalog.pg_input_is_valid('x', '${role}.d')`,
    refusal:
      /trigger zz_when on public\.ai_models calls pg_input_is_valid\(text,text\) in its WHEN condition, which is stable, not immutable/,
    needs16: true,
  },
  set_config: {
    when: (role: string) =>
      `pg_catalog.set_config('search_path', '${role}, pg_catalog, public', true) IS NOT NULL`,
    refusal:
      /trigger zz_when on public\.ai_models calls set_config\(text,text,boolean\) in its WHEN condition, which is volatile, not immutable/,
    needs16: false,
  },
} as const

async function exists(db: Kysely<any>, relation: string): Promise<boolean> {
  const { rows } = await sql<{
    found: boolean
  }>`SELECT to_regclass(${relation}) IS NOT NULL AS found`.execute(db)
  return rows[0]!.found
}

describe.skipIf(skipReason)('a trigger’s WHEN condition written by a lesser role', () => {
  it.for(Object.entries(HOSTILE))(
    'WHEN calling pg_catalog.%s: migrate to 006 refuses (42501) before it writes, and never runs the role’s code',
    async ([_name, hostile], context) => {
      await withTestDatabase('postgres', async ({ db }) => {
        if (hostile.needs16) await skipBelowPostgres16(db, context)
        await migrateTo(db, MIGRATION_005, { env: {} })
        await pricedModel(db)
        await withLoginRole(db, async (role) => {
          await plant(db, role, 'ai_models')
          await asRole(db, role, [whenTrigger('public.ai_models', hostile.when(role))])
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect((error as { code?: string }).code).toBe('42501')
          expect(String((error as Error).message)).toMatch(hostile.refusal)
          // And what to do about it.
          expect(String((error as Error).message)).toContain(
            'drop such a trigger, or create it again with a WHEN condition of immutable built-in functions',
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).not.toContain(MIGRATION_006)
        })
      })
    },
  )

  it.for(Object.entries(HOSTILE))(
    'WHEN calling pg_catalog.%s: 006’s exported script refuses (42501), run as one query and with psql, and never runs the role’s code',
    async ([_name, hostile], context) => {
      const script = await exportMigrationSql(MIGRATION_006, 'up')
      await withTestDatabase('postgres', async ({ db, location }) => {
        if (hostile.needs16) await skipBelowPostgres16(db, context)
        await migrateTo(db, MIGRATION_005, { env: {} })
        await pricedModel(db)
        await withLoginRole(db, async (role) => {
          await plant(db, role, 'ai_models')
          await asRole(db, role, [whenTrigger('public.ai_models', hostile.when(role))])
          const url = serverUrl(location)
          expect(await runScriptInOneQuery(url, script)).toBe('42501')
          expect(await runScriptWithPsql(url, script)).toMatch(
            new RegExp(`ERROR: {2}42501: .*${hostile.refusal.source}`),
          )
          expect(await isSuperuser(db, role)).toBe(false)
          // Nothing of 006 was done.
          expect(await exists(db, 'public.ai_models')).toBe(true)
        })
      })
    },
  )

  it('WHEN calling pg_catalog.set_config on the keys table: keys:rotate refuses before it writes', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateToLatest(db, { env: {} })
      const cipher = new IntegrationCipher({
        current: 'the-secret-0123456789abcdef-0123456789',
        previous: [],
      })
      const userId = await createUser(db)
      await db
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: userId, encrypted_api_key: cipher.encrypt('sk-or-v1-test', userId) })
        .execute()
      await withLoginRole(db, async (role) => {
        await plant(db, role, 'x402_user_openrouter_integrations')
        await asRole(db, role, [
          whenTrigger('public.x402_user_openrouter_integrations', HOSTILE.set_config.when(role)),
        ])
        const error = await rotateOpenRouterKeys(db, { cipher, keyId: cipher.currentKeyId }).catch(
          (e: unknown) => e,
        )
        expect((error as { code?: string }).code).toBe('42501')
        expect(String((error as Error).message)).toContain(
          'trigger zz_when on public.x402_user_openrouter_integrations calls set_config(text,text,boolean) in its WHEN condition, which is volatile, not immutable',
        )
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  it.each([
    [
      'a GREATEST, whose comparison the check does not look up',
      'greatest(NEW.context_length, 1) > 1',
      'GREATEST or LEAST',
    ],
    ['current_user', "current_user = 'postgres'", 'current_user'],
  ])(
    'WHEN with %s: refused as something the check cannot vouch for',
    async (_name, when, named) => {
      await withTestDatabase('postgres', async ({ db }) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        await withLoginRole(db, async (role) => {
          await sql.raw(`GRANT TRIGGER ON ai_models TO ${role}`).execute(db)
          await asRole(db, role, [whenTrigger('public.ai_models', when)])
          const error = await db
            .transaction()
            .execute((trx) => sql.raw(lesserTriggersSql({ lock: true })).execute(trx))
            .catch((e: unknown) => e)
          expect(String((error as Error).message)).toContain('trigger zz_when on public.ai_models')
          expect(String((error as Error).message)).toContain(named)
        })
      })
    },
  )

  it('common production WHEN conditions, on a trigger the lesser role made: the run goes on, and 006 is applied', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await pricedModel(db)
      await withLoginRole(db, async (role) => {
        await sql.raw(`GRANT TRIGGER ON ai_models TO ${role}`).execute(db)
        const conditions = [
          'OLD.* IS DISTINCT FROM NEW.*',
          'NEW.display_name <> OLD.display_name',
          'NEW.updated_at IS DISTINCT FROM OLD.updated_at AND NEW.is_active',
          "('{\"a\": 1}'::jsonb ->> 'a') IS DISTINCT FROM NEW.display_name",
          "NEW.provider IN ('openai', 'anthropic') AND NEW.context_length IS NOT NULL",
          'coalesce(NEW.context_length, 0) <> coalesce(OLD.context_length, 0)',
          "CASE WHEN NEW.provider = 'openai' THEN NEW.display_name::text <> '' ELSE false END",
          '(NEW.provider, NEW.display_name) IS DISTINCT FROM (OLD.provider, OLD.display_name)',
          'NEW.context_length::text <> OLD.context_length::text',
          'NEW.id <> ALL (ARRAY[OLD.id])',
          "lower(NEW.display_name) LIKE 'gpt%'",
        ]
        await asRole(
          db,
          role,
          conditions.map(
            (when, i) =>
              `CREATE TRIGGER zz_ok_${i} BEFORE UPDATE ON public.ai_models FOR EACH ROW WHEN (${when}) ` +
              'EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()',
          ),
        )
        // Checked by itself first: the fenced check of the run says the same. It turns JIT off
        // while it reads (its estimate is far above jit_above_cost), and puts the setting back.
        const jit = await db.transaction().execute(async (trx) => {
          await sql`SET LOCAL jit = on`.execute(trx)
          await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
          return (await sql<{ jit: string }>`SELECT current_setting('jit') AS jit`.execute(trx))
            .rows[0]!.jit
        })
        expect(jit).toBe('on')
        await migrateTo(db, MIGRATION_006, { env: {} })
        expect(await applied(db)).toContain(MIGRATION_006)
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })
})

// A trigger's arguments are written by whoever created it, as its WHEN condition is. contrib's
// refint (check_primary_key, check_foreign_key; Supabase offers it) runs SQL built from them: a
// relation named there may be the lesser role's view, whose functions run as the writer.
describe.skipIf(skipReason)('a trigger of contrib’s refint, made by a lesser role', () => {
  it('naming the role’s view in its arguments: migrate to 006 refuses (42501) before it writes, and never runs the role’s code', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await pricedModel(db)
      await sql`CREATE SCHEMA x402_test_refint`.execute(db)
      await sql`CREATE EXTENSION refint SCHEMA x402_test_refint`.execute(db)
      try {
        await withLoginRole(db, async (role) => {
          await plant(db, role, 'ai_models')
          await sql.raw(`GRANT USAGE ON SCHEMA x402_test_refint TO ${role}`).execute(db)
          await asRole(db, role, [
            `CREATE VIEW ${role}.keys AS SELECT k FROM (VALUES ('openai/gpt-4o')) v(k) WHERE ${role}.pwn(k)`,
            `CREATE TRIGGER zz_refint BEFORE UPDATE ON public.ai_models FOR EACH ROW
               EXECUTE FUNCTION x402_test_refint.check_primary_key('openrouter_id', '${role}.keys', 'k')`,
          ])
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect((error as { code?: string }).code).toBe('42501')
          expect(String((error as Error).message)).toMatch(
            /trigger zz_refint on public\.ai_models calls x402_test_refint\.check_primary_key\(\) with arguments, and it runs SQL built from them/,
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).not.toContain(MIGRATION_006)
          await sql`DROP TRIGGER zz_refint ON public.ai_models`.execute(db)
        })
      } finally {
        await sql`DROP SCHEMA x402_test_refint CASCADE`.execute(db)
      }
    })
  })
})
