import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { AccessEntry } from '../src/access/measure-access.js'
import {
  asService,
  baselineMigrations,
  checkDrift,
  exportBaselineSql,
  IntegrationCipher,
  migrateToLatest,
  planRepair,
  readAcceptedDifferences,
  readProductionObjects,
  readOpenRouterKeyForExecution,
  recordedMigrationNames,
  storeOpenRouterKey,
} from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { gainedAccess, whoMayDoWhat } from './support/access-gained.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import {
  createProductionTodayDatabase,
  modelId,
  PRODUCTION_TODAY_ADOPTION_POINT,
  RLS_OFF_TABLES,
  rowDigests,
  rowLevelSecurityByTable,
  USERS,
} from './support/production-today.js'
import { type TestTarget, testTargets } from './support/test-database.js'

// Production as it is today (test/support/production-today.ts), taken over by running only what
// the module proposes: its repair plan, then adoption at 006, where the module's history reaches
// production's names; then migrate:latest applies only what production lacks. No row changes,
// row level security stays on wherever it was, the app's queries by production's names work as
// service_role, and anon and authenticated reach nothing new.

const UP_TO_006 = migrationNames.filter((name) => name <= PRODUCTION_TODAY_ADOPTION_POINT)
const AFTER_006 = migrationNames.filter((name) => name > PRODUCTION_TODAY_ADOPTION_POINT)
const SECRET = 'production-today-integration-secret-0123456789'

async function runPlan(db: Kysely<any>): Promise<string[]> {
  const plan = await planRepair(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
  expect(plan.unresolved).toEqual([])
  for (const statement of plan.statements) await sql.raw(statement).execute(db)
  return plan.statements
}

describe.each(testTargets)('taking over production today on %s', (target: TestTarget) => {
  let database: ScriptableDatabase
  let rows: Record<string, string>
  let rls: Record<string, boolean>
  let access: AccessEntry[]
  beforeAll(async () => {
    database = await createProductionTodayDatabase(target, createScriptableDatabase)
    rows = await rowDigests(database.db)
    rls = await rowLevelSecurityByTable(database.db)
    access = await whoMayDoWhat(database.db)
  })
  afterAll(async () => {
    await database.destroy()
  })

  it('adopts at 006 after running only what the repair plan proposes, keeping every row and every RLS flag', async () => {
    const db = database.db as Kysely<any>
    const statements = await runPlan(db)
    // What the plan adds is the module's documentation where production has none.
    for (const statement of statements) expect(statement).toMatch(/^COMMENT ON /)

    const adopted = await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
    expect(adopted.recorded).toEqual(UP_TO_006)
    expect(adopted.diff.conflict).toEqual([])
    const accepted = adopted.diff.accepted.map(({ line }) => line)
    expect(accepted).toContain(
      'x402_resources: table: row level security: live true / expected false (on where the module leaves it off)',
    )
    expect(accepted).toContain(
      "public_x402_resources: view: extra (a view over x402_resources that reads with the caller's rights (security_invoker))",
    )
    expect((await readAcceptedDifferences(db)).length).toBe(adopted.diff.accepted.length)

    expect(await rowDigests(db)).toEqual(rows)
    expect(await rowLevelSecurityByTable(db)).toEqual(rls)
    expect(gainedAccess(access, await whoMayDoWhat(db))).toEqual([])
  })

  it('then migrate:latest applies only what production lacks, and migrate:check exits 0', async () => {
    const db = database.db as Kysely<any>
    expect((await migrateToLatest(db)).map(({ migrationName }) => migrationName)).toEqual(AFTER_006)
    const report = await checkDrift(db, { decisions: [] })
    expect(report.schema?.conflict).toEqual([])
    expect(report.ok).toBe(true)

    // Row level security stays on everywhere; 008 turns it on for the catalog, with a read policy.
    const after = await rowLevelSecurityByTable(db)
    expect(after).toEqual({ ...rls, x402_openrouter_models: true })
    expect(
      Object.entries(after)
        .filter(([, on]) => !on)
        .map(([name]) => name),
    ).toEqual(RLS_OFF_TABLES.filter((name) => name !== 'x402_openrouter_models'))
    expect(await rowDigests(db)).toEqual(rows)
    // Nobody gained anything: the catalog is read-only to the API roles now, and nothing else moved.
    expect(gainedAccess(access, await whoMayDoWhat(db))).toEqual([])

    // The command opens the database itself: PGlite's folder takes one process at a time.
    if (target === 'pglite') await db.destroy()
    const checked = await cli(['check'], cliEnv(database.location))
    if (target === 'pglite') await database.runScript('SELECT 1')
    expect(checked.code).toBe(0)
    expect(lines(checked.stdout).at(-1)).toMatch(
      /^OK: the schema matches 008_close_supabase_advisor_findings/,
    )
  })

  it('serves the app’s queries by production’s names as service_role', async () => {
    const db = database.db as Kysely<any>
    const cipher = new IntegrationCipher({ current: SECRET, previous: [] })
    const owner = USERS[20]!
    await asService(db, (trx) =>
      storeOpenRouterKey(trx, { userId: owner, apiKey: 'sk-or-v1-production-today', cipher }),
    )
    expect(
      await asService(db, (trx) => readOpenRouterKeyForExecution(trx, { userId: owner, cipher })),
    ).toEqual({
      status: 'ready',
      apiKey: 'sk-or-v1-production-today',
    })
    const instant = await asService(db, (trx) =>
      trx
        .selectFrom('x402_resources')
        .innerJoin(
          'x402_openrouter_models',
          'x402_openrouter_models.id',
          'x402_resources.openrouter_model_id',
        )
        .select([
          'x402_resources.id',
          'x402_openrouter_models.openrouter_id',
          'x402_openrouter_models.pricing_prompt',
        ])
        .where('x402_resources.resource_type', '=', 'openrouter_instant')
        .execute(),
    )
    expect(instant).toHaveLength(60)
    const models = await asService(db, (trx) =>
      trx.selectFrom('x402_openrouter_models').select('id').where('id', '=', modelId(1)).execute(),
    )
    expect(models).toEqual([{ id: modelId(1) }])
    await asService(db, (trx) =>
      trx.deleteFrom('x402_user_openrouter_integrations').where('user_id', '=', owner).execute(),
    )
  })
})

describe.each(testTargets)(
  'taking over production today by the SQL Editor path, on %s',
  (target: TestTarget) => {
    let database: ScriptableDatabase
    beforeAll(async () => {
      database = await createProductionTodayDatabase(target, createScriptableDatabase)
    })
    afterAll(async () => {
      await database.destroy()
    })

    it('adopts it at 006 with the script, and migrate:check is clean after migrate:latest', async () => {
      const db = database.db as Kysely<any>
      const rows = await rowDigests(db)
      await database.runScript(
        await exportBaselineSql(PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] }),
      )
      expect(await recordedMigrationNames(db)).toEqual(UP_TO_006)
      expect(await rowDigests(db)).toEqual(rows)
      // Production's own objects are recorded as migrate:baseline records them.
      expect((await readProductionObjects(db)).map(({ key }) => key)).toEqual(
        expect.arrayContaining([
          'relations x402_oauth_pending',
          'functions soft_delete_user_tx(target_user uuid)',
        ]),
      )
      await migrateToLatest(db)
      expect((await checkDrift(db, { decisions: [] })).ok).toBe(true)
      await sql`ALTER TABLE x402_user_wallets DISABLE ROW LEVEL SECURITY`.execute(db)
      expect(
        (await checkDrift(db, { decisions: [] })).schema?.conflict.map(({ key, field }) => [
          key,
          field,
        ]),
      ).toEqual([['relations x402_user_wallets', 'row level security']])
    })
  },
)
