import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  BaselineRefusedError,
  baselineMigrations,
  checkDrift,
  createDb,
  exportBaselineSql,
  formatDriftReport,
  formatSchemaDiff,
  migrateToLatest,
  planRepair,
  readAcceptedDifferences,
  recordedMigrationNames,
} from '../src/tooling.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import {
  createProductionShapedDatabase,
  createProductionShapedTestDatabase,
  PRODUCTION_ADOPTION_POINT,
} from './support/production-fixture.js'
import { serverUrl, type TestDatabase, testTargets } from './support/test-database.js'

// Taking over a database shaped like production (test/support/production-fixture.ts), built by
// hand and not by the module: adoption at 002 without any hand edit, then the later migrations,
// then a clean migrate:check; and, when it conflicts, a repair plan and the rename diagnosis.

const UP_TO_002 = [
  '000_baseline_ai_models',
  '000_baseline_x402_resources',
  '001_add_prompt_template_fields',
  PRODUCTION_ADOPTION_POINT,
]

async function rowLevelSecurity(db: Kysely<any>, table: string): Promise<boolean> {
  const { rows } = await sql<{
    on: boolean
  }>`SELECT relrowsecurity AS on FROM pg_class WHERE oid = ${`public.${table}`}::regclass`.execute(
    db,
  )
  return rows[0]!.on
}

describe.each(testTargets)('taking over a production-shaped database on %s', (target) => {
  let database: TestDatabase
  let db: Kysely<any>
  beforeAll(async () => {
    database = await createProductionShapedTestDatabase(target)
    db = database.db
  })
  afterAll(async () => {
    await db.destroy().catch(() => {})
    await database.destroy().catch(() => {})
  })

  it('migrate:latest on the hand-built database refuses and points to migrate:baseline', async () => {
    await db.destroy() // the command opens the database itself (PGlite: one process a folder)
    const refused = await cli(['latest'], cliEnv(database.location))
    db = reopen(database)
    expect(refused.code).toBe(1)
    expect(lines(refused.stderr).at(-1)).toMatch(
      /^migrate latest failed: .*already exists.* The database has tables but no migration history: it was built by hand\. Adopt it first at the migration whose schema it has: npm run migrate:baseline -- <name>/,
    )
    expect(await recordedMigrationNames(db)).toEqual([])
  })

  it('adopts at 002 without any hand edit, listing what is equivalent and what production has more', async () => {
    expect(await rowLevelSecurity(db, 'x402_resources')).toBe(true)
    const adopted = await baselineMigrations(db, PRODUCTION_ADOPTION_POINT)
    expect(adopted.recorded).toEqual(UP_TO_002)
    const { diff } = adopted
    expect(diff.conflict).toEqual([])
    const listed = formatSchemaDiff(diff)
    expect(listed).toContain('Equivalent (the same schema, spelled differently; never blocks):\n')
    expect(listed).toContain(
      '  function update_claude_config_updated_at(): definition (the same but for whitespace and letter case)',
    )
    expect(listed).toContain(
      '  x402_resources: column pt_model: comment: live Claude model used to run the template / expected none',
    )
    expect(listed).toContain(
      'Production has more or is stricter (accepted, and recorded at adoption):\n',
    )
    expect(listed).toContain(
      '  x402_resources: table: row level security: live true / expected false (on where the module leaves it off)',
    )
    expect(listed).toContain(
      '  x402_resources: column status: extra: x402_resource_status (no migration creates it)',
    )
    expect(listed).toContain(
      '  x402_resources: column tags: extra: text[] (no migration creates it)',
    )
    expect(listed).toContain(
      '  ai_models: policy "Service role manages models": extra: FOR ALL TO service_role USING true WITH CHECK true (a policy no migration creates)',
    )
    expect(diff.accepted.length).toBeGreaterThan(50)
    expect(await readAcceptedDifferences(db)).toHaveLength(diff.accepted.length)
    expect(await rowLevelSecurity(db, 'x402_resources')).toBe(true)
  })

  it('then applies the later migrations under a concurrent writer, and migrate:check is clean', async () => {
    const writer = target === 'postgres' ? startWriter(serverUrl(database.location)) : undefined
    try {
      await writer?.started
      const applied = (await migrateToLatest(db)).map(({ migrationName }) => migrationName)
      expect(applied.slice(0, 2)).toEqual([
        '005_add_openrouter_integration',
        '006_rename_to_production_names',
      ])
    } finally {
      const written = await writer?.stop()
      if (writer) expect(written).toBeGreaterThan(0)
    }
    expect(await rowLevelSecurity(db, 'x402_resources')).toBe(true)
    const report = await checkDrift(db)
    expect(report.schema?.conflict).toEqual([])
    expect(report.ok).toBe(true)
    expect(formatDriftReport(report)).toMatch(/\nOK: the schema matches /)

    await db.destroy() // the command opens the database itself
    const checked = await cli(['check'], cliEnv(database.location))
    db = reopen(database)
    expect(checked.code).toBe(0)
    expect(checked.stdout).toContain(
      '\n  Production has more or is stricter (accepted, and recorded at adoption):\n',
    )
    expect(lines(checked.stdout).at(-1)).toMatch(/^OK: the schema matches /)
  })

  it('reports a later hand change to an accepted object, and a new difference, as drift', async () => {
    await sql`ALTER TABLE x402_resources ALTER COLUMN tags TYPE varchar[]`.execute(db)
    await sql`CREATE INDEX idx_by_hand ON x402_resources (category)`.execute(db)
    const report = await checkDrift(db)
    expect(report.ok).toBe(false)
    const conflicts = report.schema!.conflict.map(({ line }) => line)
    expect(conflicts).toContain(
      'x402_resources: column tags: extra: character varying[] (no migration creates it; changed since it was accepted ' +
        '(review it, then accept it: npm run migrate:baseline -- <the newest applied migration>))',
    )
    expect(conflicts).toContain(
      'x402_resources: index idx_by_hand: extra: CREATE INDEX idx_by_hand ON public.x402_resources USING btree (category) ' +
        '(no migration creates it; not accepted at adoption (review it, then accept it: npm run migrate:baseline -- <the newest applied migration>))',
    )
    // Accepting them again (adoption at the newest applied migration) makes the check clean.
    await baselineMigrations(db, report.migrationName!)
    expect((await checkDrift(db)).ok).toBe(true)
    // --strict keeps the exact comparison.
    const strict = await checkDrift(db, { strict: true })
    expect(strict.ok).toBe(false)
    expect(strict.schema!.conflict.map(({ line }) => line)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^x402_resources: column category: extra: /)]),
    )
  })
})

describe.each(testTargets)('a production-shaped database that conflicts, on %s', (target) => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createProductionShapedTestDatabase(target)
    await sql`DROP INDEX idx_claude_configs_user_enabled`.execute(database.db)
    await sql`ALTER TABLE x402_user_claude_configs DISABLE ROW LEVEL SECURITY`.execute(database.db)
    await sql`ALTER TABLE ai_models RENAME TO x402_ai_models`.execute(database.db)
  })
  afterAll(async () => {
    await database.destroy()
  })

  it('migrate:baseline prints the conflicts under their class, and --plan prints the repair plan', async () => {
    await database.db.destroy() // the command opens the database itself (PGlite: one process a folder)
    const env = cliEnv(database.location)
    const refused = await cli(['baseline', '002'], env)
    const plan = await cli(['baseline', '002', '--plan'], env)
    reopen(database)
    expect(refused.code).toBe(1)
    expect(lines(refused.stdout).slice(0, 2)).toEqual([
      'Conflicts (adoption refuses; see the repair plan: npm run migrate:baseline -- <name> --plan):',
      expect.stringMatching(/^ {2}ai_models: table: missing \(probably renamed: x402_ai_models/),
    ])
    expect(refused.stdout).toContain(
      '\nEquivalent (the same schema, spelled differently; never blocks):\n',
    )
    expect(lines(refused.stderr).at(-1)).toMatch(
      /^migrate baseline failed: The live schema conflicts with what the migrations up to 002_add_claude_integration produce, in 3 place\(s\).*--plan/,
    )
    expect(plan.code).toBe(0)
    expect(plan.stdout).toMatch(
      /^-- Repair plan: brings the database closer to the schema of the migrations up to 002_add_claude_integration/,
    )
    expect(plan.stdout).toContain(
      '\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_claude_configs_user_enabled ON public.x402_user_claude_configs',
    )
    expect(lines(plan.stderr).at(-1)).toBe(
      'Repair plan for 002_add_claude_integration: 2 statement(s) to review and run, 1 conflict(s) left to decide (listed at the end of the plan).',
    )
  })

  it('is refused with each conflict named, the rename as probable, and a repair plan that fixes what it safely can', async () => {
    const { db } = database
    const refusal = await baselineMigrations(db, '002').catch((error: unknown) => error)
    expect(refusal).toBeInstanceOf(BaselineRefusedError)
    const { diff } = refusal as BaselineRefusedError
    expect(diff!.conflict.map(({ line }) => line)).toEqual([
      'ai_models: table: missing (probably renamed: x402_ai_models has its columns and keys. Decide whether it is the same table; ' +
        'if so, rename it to ai_models by hand, then adopt again)',
      'x402_user_claude_configs: table: row level security: live false / expected true (off where the module has it on)',
      'x402_user_claude_configs: index idx_claude_configs_user_enabled: missing: ' +
        'CREATE INDEX idx_claude_configs_user_enabled ON public.x402_user_claude_configs USING btree (user_id, is_enabled)',
    ])
    expect(await recordedMigrationNames(db)).toEqual([])

    const plan = await planRepair(db, '002')
    expect(plan.statements).toEqual([
      'ALTER TABLE public.x402_user_claude_configs ENABLE ROW LEVEL SECURITY',
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_claude_configs_user_enabled ON public.x402_user_claude_configs USING btree (user_id, is_enabled)',
    ])
    expect(plan.script).toMatch(/^-- Repair plan: .*\n(--.*\n)*SET lock_timeout = '\d+ms';\n/)
    expect(plan.script).toContain('--     Decide: rename it back only if it is the same table')
    expect(plan.script).not.toMatch(/\b(DROP|DISABLE|TRUNCATE|DELETE)\b/)

    for (const statement of plan.statements) await sql.raw(statement).execute(db)
    const again = (await baselineMigrations(db, '002').catch(
      (error: unknown) => error,
    )) as BaselineRefusedError
    expect(again.diff!.conflict.map(({ line }) => line)).toEqual([
      expect.stringMatching(/^ai_models: table: missing \(probably renamed/),
    ])

    // The person decides it is the same table.
    await sql`ALTER TABLE x402_ai_models RENAME TO ai_models`.execute(db)
    expect((await baselineMigrations(db, '002')).recorded).toEqual(UP_TO_002)
  })
})

describe.each(testTargets)(
  'taking over a production-shaped database by the SQL Editor path, on %s',
  (target) => {
    let database: ScriptableDatabase
    beforeAll(async () => {
      database = await createProductionShapedDatabase(target, createScriptableDatabase)
    })
    afterAll(async () => {
      await database.destroy()
    })

    it('adopts it at 002 with the script, recording what it accepted, so that migrate:check is clean', async () => {
      await database.runScript(await exportBaselineSql(PRODUCTION_ADOPTION_POINT))
      expect(await recordedMigrationNames(database.db)).toEqual(UP_TO_002)
      expect((await readAcceptedDifferences(database.db)).length).toBeGreaterThan(50)
      const report = await checkDrift(database.db)
      expect(report.schema?.conflict).toEqual([])
      expect(report.ok).toBe(true)
      expect(await rowLevelSecurity(database.db, 'x402_resources')).toBe(true)
    })
  },
)

function reopen(database: TestDatabase): Kysely<any> {
  const { location } = database
  const db = createDb(
    'connectionString' in location
      ? { connectionString: location.connectionString }
      : { dataDir: location.dataDir },
  )
  // The test database's destroy() closes the instance it was created with; this one is closed by afterAll.
  ;(database as { db: Kysely<any> }).db = db
  return db
}

/**
 * An app instance writing to x402_resources in a loop on its own connection, as production's
 * traffic does while a migration runs. `stop` ends it and gives how many rows it wrote; a
 * failed write fails the test.
 */
function startWriter(connectionString: string): {
  started: Promise<void>
  stop: () => Promise<number>
} {
  const client = new pg.Client({ connectionString })
  let running = true
  let written = 0
  let markStarted: () => void = () => {}
  const started = new Promise<void>((resolve) => (markStarted = resolve))
  const loop = (async () => {
    await client.connect()
    while (running) {
      await client.query(
        `INSERT INTO x402_resources (name, resource_url, normalized_url, network, pay_to, tags)
         VALUES ('w', 'https://w.example', 'w.example', 'base', '0xabc', ARRAY['t'])`,
      )
      written += 1
      markStarted()
    }
  })()
  return {
    started,
    async stop() {
      running = false
      try {
        await loop
      } finally {
        await client.end()
      }
      return written
    },
  }
}
