import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'

import {
  BaselineRefusedError,
  baselineMigrations,
  checkDrift,
  formatSchemaDiff,
  migrateTo,
  MIGRATION_LOCK_KEY,
  migrateToLatest,
  migrationChecksum,
  migrationStatus,
  readMigrationChecksums,
  recordedMigrationNames,
} from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { killRunningScripts, startScript } from './support/script-process.js'
import {
  createHandBuiltDatabase,
  createScriptableDatabase,
  PLAN_005_SQL,
  PRODUCTION_ONLY_SQL,
  type ScriptableDatabase,
} from './support/hand-built-database.js'
import { createTestDatabase, serverUrl, testTargets } from './support/test-database.js'
import { BEFORE_005 } from './support/migration-names.js'

// migrate:baseline adopts a database whose schema was built by hand (the SQL Editor): it records
// the migrations up to a name as applied, only where the live schema equals what they produce.

const UP_TO_005 = [
  '000_baseline_ai_models',
  '000_baseline_x402_resources',
  '001_add_prompt_template_fields',
  '002_add_claude_integration',
  '005_add_openrouter_integration',
]
/** What follows 005: what migrate:latest applies on a database adopted at 005. */
const AFTER_005 = migrationNames.filter((name) => name > UP_TO_005.at(-1)!)

/** A difference from the module's 005: no partial index, and the five-type CHECK of 001. */
const DELIBERATE_DIFFERENCE = `
  DROP INDEX idx_x402_resources_openrouter_model;
  ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check;
  ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check
    CHECK (resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static', 'prompt_template']));
`

describe.each(testTargets)('adopting a hand-built database on %s', (target) => {
  let database: ScriptableDatabase | undefined
  afterEach(async () => {
    await database?.destroy()
    database = undefined
  })

  it("adopts the baseline plus the plan's SQL for 005 at 005; migrate:latest then applies only what follows 005", async () => {
    database = await createHandBuiltDatabase(target, BEFORE_005, [PLAN_005_SQL])
    const { db } = database

    const adopted = await baselineMigrations(db, '005')
    expect(adopted).toMatchObject({
      migrationName: UP_TO_005.at(-1),
      recorded: UP_TO_005,
      alreadyRecorded: [],
    })
    expect(adopted.diff).toEqual({ conflict: [], accepted: [], equivalent: [] })

    // Kysely's Migrator reads the rows as its own: applied, in order, and 006 and later pending.
    const status = await migrationStatus(db)
    expect(status.filter((m) => m.appliedAt).map((m) => m.name)).toEqual(UP_TO_005)
    expect(status.filter((m) => !m.appliedAt).map((m) => m.name)).toEqual(AFTER_005)

    const checksums = await readMigrationChecksums(db)
    for (const name of UP_TO_005) {
      expect(checksums.get(name)).toMatchObject({
        origin: 'baseline',
        sha256: await migrationChecksum(name),
      })
    }

    // Adopting again records nothing.
    expect((await baselineMigrations(db, '005')).recorded).toEqual([])

    expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(AFTER_005)
    expect((await checkDrift(db)).ok).toBe(true)
  })

  it('adopts at 005 a database whose migrator stopped at 002 before the plan was pasted in', async () => {
    // On PGlite from the template at 002, where migrateTo finds nothing to do.
    database = await createScriptableDatabase(target, BEFORE_005)
    await migrateTo(database.db, BEFORE_005)
    await database.runScript(PLAN_005_SQL)

    const adopted = await baselineMigrations(database.db, '005_add_openrouter_integration')
    expect(adopted.recorded).toEqual(['005_add_openrouter_integration'])
    expect(adopted.alreadyRecorded).toEqual(UP_TO_005.slice(0, 4))
    expect(await recordedMigrationNames(database.db)).toEqual(UP_TO_005)
  })

  it('accepts columns and indexes that no migration creates on a ported table, and --strict refuses them', async () => {
    database = await createHandBuiltDatabase(target, BEFORE_005, [
      PLAN_005_SQL,
      PRODUCTION_ONLY_SQL,
    ])
    const strict = await baselineMigrations(database.db, '005', { strict: true }).catch(
      (error: unknown) => error,
    )
    expect(strict).toBeInstanceOf(BaselineRefusedError)
    expect(formatSchemaDiff((strict as BaselineRefusedError).diff!)).toContain(
      'Conflicts (adoption refuses; see the repair plan: npm run migrate:baseline -- <name> --plan):\n' +
        '  x402_resources: column search_vector: extra: tsvector (no migration creates it)',
    )

    const adopted = await baselineMigrations(database.db, '005')
    expect(adopted.recorded).toEqual(UP_TO_005)
    expect(
      adopted.diff.accepted.map(({ category, object_name }) => `${category} ${object_name}`),
    ).toEqual(['columns search_vector', 'indexes idx_x402_resources_search'])
  })

  it('refuses a database with a deliberate difference, names it, and records nothing', async () => {
    database = await createHandBuiltDatabase(target, BEFORE_005, [
      PLAN_005_SQL,
      DELIBERATE_DIFFERENCE,
    ])

    const refusal = await baselineMigrations(database.db, '005').catch((error: unknown) => error)
    expect(refusal).toBeInstanceOf(BaselineRefusedError)
    const { message, diff } = refusal as BaselineRefusedError
    expect(message).toMatch(
      /^The live schema conflicts with what the migrations up to 005_add_openrouter_integration produce, in 2 place\(s\)/,
    )
    expect(formatSchemaDiff(diff!).split('\n')).toEqual([
      'Conflicts (adoption refuses; see the repair plan: npm run migrate:baseline -- <name> --plan):',
      "  x402_resources: constraint x402_resources_resource_type_check: definition: live CHECK ((resource_type = ANY (ARRAY['external'::text, 'proxy'::text, 'prompt'::text, 'static'::text, 'prompt_template'::text]))) " +
        "/ expected CHECK ((resource_type = ANY (ARRAY['external'::text, 'proxy'::text, 'prompt'::text, 'static'::text, 'prompt_template'::text, 'openrouter_instant'::text])))",
      '  x402_resources: index idx_x402_resources_openrouter_model: missing: ' +
        'CREATE INDEX idx_x402_resources_openrouter_model ON public.x402_resources USING btree (openrouter_model_id) WHERE (openrouter_model_id IS NOT NULL)',
    ])
    await expectNothingRecorded(database)
  })

  it('refuses to adopt at 002 a database that has 005 already: a later migration creates what is there', async () => {
    database = await createHandBuiltDatabase(target, BEFORE_005, [PLAN_005_SQL])
    const refusal = (await baselineMigrations(database.db, '002').catch(
      (error: unknown) => error,
    )) as BaselineRefusedError
    expect(refusal).toBeInstanceOf(BaselineRefusedError)
    const diff = formatSchemaDiff(refusal.diff!)
    expect(diff).toContain(
      '  user_openrouter_integrations: table: extra (a later migration, 005_add_openrouter_integration, creates it: adopt at that migration)',
    )
    expect(diff).toContain(
      '  x402_resources: column openrouter_config: extra: jsonb (a later migration, 005_add_openrouter_integration, creates it: adopt at that migration)',
    )
    await expectNothingRecorded(database)
  })

  it('refuses when the recorded history disagrees: a migration after the name is recorded already', async () => {
    database = await createScriptableDatabase(target, 'latest')
    await migrateToLatest(database.db)
    const before = await recordedMigrationNames(database.db)

    await expect(baselineMigrations(database.db, '005')).rejects.toThrow(
      `Cannot adopt the database at 005_add_openrouter_integration: the history already records ${AFTER_005.join(', ')}, which come after 005_add_openrouter_integration`,
    )
    expect(await recordedMigrationNames(database.db)).toEqual(before)
  })

  it('migrate:baseline prints the diff on stdout and exits 1 on a difference, and adopts otherwise', async () => {
    database = await createHandBuiltDatabase(target, BEFORE_005, [
      PLAN_005_SQL,
      DELIBERATE_DIFFERENCE,
    ])
    await database.db.destroy() // the command opens the database itself
    const env = cliEnv(database.location)

    const refused = await cli(['baseline', '005'], env)
    expect(refused.code).toBe(1)
    // The diff (a heading and two conflicts), then the entries that would accept each by decision.
    const printed = lines(refused.stdout)
    expect(printed.slice(0, 3)).toEqual([
      expect.stringMatching(/^Conflicts /),
      expect.stringMatching(
        /^ {2}x402_resources: constraint x402_resources_resource_type_check: definition: /,
      ),
      expect.stringMatching(
        /^ {2}x402_resources: index idx_x402_resources_openrouter_model: missing/,
      ),
    ])
    expect(printed[3]).toMatch(
      /^To accept a conflict above by an explicit decision, after review, add its entry to adoption-decisions\.json/,
    )
    expect(printed.slice(-2).map((line) => JSON.parse(line))).toEqual([
      {
        key: 'constraints x402_resources.x402_resources_resource_type_check',
        field: 'definition',
        live: expect.stringMatching(/^CHECK /),
        reason: expect.stringMatching(/^TODO/),
      },
      {
        key: 'indexes x402_resources.idx_x402_resources_openrouter_model',
        field: '',
        live: null,
        reason: expect.stringMatching(/^TODO/),
      },
    ])
    expect(lines(refused.stderr).at(-1)).toMatch(
      /^migrate baseline failed: The live schema conflicts with what the migrations up to 005_add_openrouter_integration produce, in 2 place\(s\)/,
    )

    await database.runScript(`
      CREATE INDEX idx_x402_resources_openrouter_model ON x402_resources (openrouter_model_id) WHERE openrouter_model_id IS NOT NULL;
      ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check;
      ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check
        CHECK (resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static', 'prompt_template', 'openrouter_instant']));
    `)
    await database.db.destroy()
    const adopted = await cli(['baseline', '005'], env)
    expect(adopted.code).toBe(0)
    expect(lines(adopted.stderr).slice(1)).toEqual(UP_TO_005.map((name) => `recorded ${name}`))
    const latest = await cli(['latest'], env)
    expect(
      lines(latest.stderr)
        .slice(1)
        .map((line) => line.replace(/ in [\d.]+ m?s$/, '')),
    ).toEqual(AFTER_005.map((name) => `applied  ${name}`))
  })
})

async function expectNothingRecorded(database: ScriptableDatabase): Promise<void> {
  const { rows } = await sql<{
    schema: string | null
  }>`SELECT to_regnamespace('x402_migrations')::text AS schema`.execute(database.db)
  expect(rows[0]!.schema).toBeNull()
}

// A run holds the lock for as long as it migrates: the operator must see that the baseline
// waits, and for whom, as a migration run says it (before, it waited silently).
describe.skipIf(!process.env.TEST_DATABASE_URL)(
  'migrate:baseline while another run holds the migration lock (PostgreSQL: one process at a time on PGlite)',
  () => {
    afterEach(killRunningScripts)

    it('says that it waits for the lock, naming the holder, then adopts once it is free', async () => {
      const database = await createTestDatabase('postgres')
      try {
        await migrateToLatest(database.db)
        await database.db.connection().execute(async (holder) => {
          await sql`BEGIN`.execute(holder)
          await sql`SELECT pg_catalog.pg_advisory_xact_lock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(
            holder,
          )
          const baseline = startScript('src/cli/migrate.ts', ['baseline', migrationNames.at(-1)!], {
            DATABASE_URL: serverUrl(database.location),
            MIGRATION_LOCK_WAIT_MS: '30000',
          })
          await baseline.lineOn(
            'stderr',
            /^\[db\] waiting for the migration lock: another run holds it \(pid \d+, .*waiting up to 30000 ms \(MIGRATION_LOCK_WAIT_MS\)$/,
          )
          await sql`COMMIT`.execute(holder)
          const adopted = await baseline.exited
          expect(adopted.code).toBe(0)
          expect(adopted.stderr).toContain('Already adopted: every migration up to')
        })
      } finally {
        await database.destroy()
      }
    })
  },
)
