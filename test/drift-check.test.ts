import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'

import {
  baselineMigrations,
  checkDrift,
  createDb,
  formatAdvisorReport,
  formatDriftReport,
  migrateDown,
  migrateTo,
  migrateToLatest,
  migrateUp,
  migrationChecksum,
  migrationSourcePath,
  readMigrationChecksums,
  runAdvisor,
  syncMigrationChecksums,
} from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import { type TestTarget, testTargets } from './support/test-database.js'
import { MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'

// migrate:check compares the live schema with what the applied migrations produce, and each
// applied migration's file with the checksum recorded when it was applied.

const ALL = migrationNames
const NEWEST = migrationNames.at(-1)!

/** A copy of src/migrations to edit, so that the real comparison sees an edited file. */
const sourceCopy = mkdtempSync(join(tmpdir(), 'x402-migration-sources-'))
cpSync(join(migrationSourcePath(MIGRATION_005), '..'), sourceCopy, { recursive: true })
afterAll(() => rmSync(sourceCopy, { recursive: true, force: true }))

/**
 * Runs `use` on a new database of its own, dropped afterwards: on the server an empty one, on
 * PGlite a copy of the template at `startAt` in a data folder, where the test's own
 * migrateToLatest then finds nothing to do (the template was built by the same migrator).
 */
async function withDatabase(
  target: TestTarget,
  startAt: 'none' | 'latest',
  use: (database: ScriptableDatabase) => Promise<void>,
): Promise<void> {
  const database = await createScriptableDatabase(target, startAt)
  try {
    await use(database)
  } finally {
    await database.destroy()
  }
}

describe('migration checksums', () => {
  it('are the sha256 of the source file, the same with CRLF line endings', async () => {
    const crlf = mkdtempSync(join(tmpdir(), 'x402-migration-crlf-'))
    try {
      const source = readFileSync(migrationSourcePath(MIGRATION_005), 'utf8')
      writeFileSync(join(crlf, `${MIGRATION_005}.ts`), source.replaceAll('\n', '\r\n'))
      const checksum = await migrationChecksum(MIGRATION_005)
      expect(checksum).toMatch(/^[0-9a-f]{64}$/)
      expect(await migrationChecksum(MIGRATION_005, { sourceDir: crlf })).toBe(checksum)
      expect(await migrationChecksum(MIGRATION_006)).not.toBe(checksum)
      await expect(migrationChecksum(MIGRATION_006, { sourceDir: crlf })).rejects.toThrow(
        `Cannot read the source of migration ${MIGRATION_006} at ${join(crlf, `${MIGRATION_006}.ts`)}`,
      )
    } finally {
      rmSync(crlf, { recursive: true, force: true })
    }
  })
})

describe.each(testTargets)('migrate:check on %s', (target) => {
  it('counts an object added by hand to a table the module creates whole, and accepts one on a ported table once adopted', async () => {
    await withDatabase(target, 'latest', async ({ db }) => {
      await migrateToLatest(db)
      await sql`CREATE INDEX by_hand_on_resources ON x402_resources (name)`.execute(db)
      // A new difference is drift until it is accepted, by adopting at the newest migration.
      const unaccepted = await checkDrift(db)
      expect(unaccepted.ok).toBe(false)
      expect(
        unaccepted.schema?.conflict.map(({ reason, object_name }) => [object_name, reason]),
      ).toEqual([['by_hand_on_resources', expect.stringContaining('not accepted at adoption')]])
      const newest = unaccepted.migrationName!
      expect(
        (await baselineMigrations(db, newest)).diff.accepted.map(({ object_name }) => object_name),
      ).toEqual(['by_hand_on_resources'])
      const lenient = await checkDrift(db)
      expect(lenient.ok).toBe(true)
      expect(lenient.schema?.accepted.map(({ object_name }) => object_name)).toEqual([
        'by_hand_on_resources',
      ])

      await sql`CREATE INDEX by_hand_on_keys ON x402_user_openrouter_integrations (encrypted_api_key)`.execute(
        db,
      )
      const drifted = await checkDrift(db)
      expect(drifted.ok).toBe(false)
      expect(drifted.schema?.conflict.map(({ kind, object_name }) => [kind, object_name])).toEqual([
        ['extra', 'by_hand_on_keys'],
      ])
      await expect(baselineMigrations(db, newest)).rejects.toThrow(
        /conflicts with what the migrations up to .* produce, in 1 place/,
      )
    })
  })

  it('passes on a database the migrator built, and finds a change made live', async () => {
    await withDatabase(target, 'latest', async ({ db }) => {
      await migrateToLatest(db)
      const clean = await checkDrift(db)
      expect(clean).toMatchObject({ ok: true, migrationName: NEWEST, history: [], pending: [] })
      expect(clean.schema).toEqual({ conflict: [], accepted: [], equivalent: [] })
      // The runner recorded each checksum as it applied the migration.
      expect(clean.checksums.map(({ status }) => status)).toEqual(ALL.map(() => 'ok'))
      expect(formatDriftReport(clean)).toMatch(
        new RegExp(
          `OK: the schema matches ${NEWEST}, and ${ALL.length} of ${ALL.length} applied migrations match their checksums\\.\n$`,
        ),
      )

      await sql`ALTER TABLE x402_user_openrouter_integrations DISABLE ROW LEVEL SECURITY`.execute(
        db,
      )
      await sql`CREATE POLICY "Anyone reads keys" ON x402_user_openrouter_integrations FOR SELECT USING (true)`.execute(
        db,
      )
      await sql`ALTER TABLE x402_resources ALTER COLUMN resource_type SET DEFAULT 'proxy'`.execute(
        db,
      )
      const drifted = await checkDrift(db)
      expect(drifted.ok).toBe(false)
      const report = formatDriftReport(drifted)
      expect(report).toContain(
        [
          `Schema, compared with what the migrations up to ${NEWEST} produce:`,
          '  Conflicts (adoption refuses; see the repair plan: npm run migrate:baseline -- <name> --plan):',
          "    x402_resources: column resource_type: default: live 'proxy'::text / expected 'external'::text",
          '    x402_user_openrouter_integrations: table: row level security: live false / expected true (off where the module has it on)',
          '    x402_user_openrouter_integrations: policy "Anyone reads keys": extra: FOR SELECT TO public USING true (no migration creates it, on a table the module creates whole)',
        ].join('\n'),
      )
      expect(report).toMatch(new RegExp(`DRIFT: 3 schema difference\\(s\\) from ${NEWEST}\\.\n$`))
    })
  })

  // A name is whatever CREATE TABLE accepted: shown raw, an escape sequence in it would reach
  // the terminal of whoever reads the report (and a line break would forge a line of it).
  it("shows the names in its report and the advisor's escaped, and keeps them exact in JSON", async () => {
    await withDatabase(target, 'latest', async ({ db }) => {
      await migrateToLatest(db)
      await sql`CREATE TABLE ${sql.id('evil\x1b[2J')} (id int)`.execute(db)
      await sql`CREATE TABLE ${sql.id('two\nOK: forged')} (id int)`.execute(db)
      const drifted = await checkDrift(db)
      const report = formatDriftReport(drifted)
      expect(report).toContain('evil\\x1b[2J')
      expect(report).toContain('two\\nOK: forged')
      expect(report).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/)
      expect(report).not.toMatch(/^\s*OK: forged/m)
      expect(JSON.stringify(drifted)).toContain(JSON.stringify('evil\x1b[2J').slice(1, -1))
      const advice = formatAdvisorReport(await runAdvisor(db, { schemas: ['public'] }))
      expect(advice).toContain('evil\\x1b[2J')
      expect(advice).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/)
      expect(advice).not.toMatch(/^\s*OK: forged/m)
    })
  })

  it('fails on a database where no migration is recorded, and says what to run', async () => {
    await withDatabase(target, 'none', async ({ db }) => {
      const report = await checkDrift(db)
      expect(report).toMatchObject({
        ok: false,
        migrationName: undefined,
        schema: undefined,
        applied: [],
      })
      expect(formatDriftReport(report)).toBe(
        'Migration history:\n' +
          '  no migration is recorded as applied: run `npm run migrate:latest`, or adopt a hand-built database with `npm run migrate:baseline -- <name>`\n\n' +
          'DRIFT: 1 history problem(s).\n',
      )
    })
  })

  it('finds a migration file edited after it was applied, and only that one', async () => {
    await withDatabase(target, 'latest', async ({ db }) => {
      await migrateToLatest(db)
      await syncMigrationChecksums(db)
      expect((await checkDrift(db, { sourceDir: sourceCopy })).ok).toBe(true)

      const edited = join(sourceCopy, `${MIGRATION_005}.ts`)
      const original = readFileSync(edited, 'utf8')
      writeFileSync(
        edited,
        original.replace("'openrouter_instant']", "'openrouter_instant', 'openrouter_batch']"),
      )
      try {
        const report = await checkDrift(db, { sourceDir: sourceCopy })
        expect(report.ok).toBe(false)
        expect(report.schema?.conflict).toEqual([])
        expect(
          report.checksums.filter(({ status }) => status === 'edited').map(({ name }) => name),
        ).toEqual([MIGRATION_005])
        const recorded = (await readMigrationChecksums(db)).get(MIGRATION_005)!.sha256
        expect(formatDriftReport(report, { sourceDir: sourceCopy })).toContain(
          `  ${MIGRATION_005}: ${edited} has sha256 ${await migrationChecksum(MIGRATION_005, { sourceDir: sourceCopy })}, but ${recorded} was recorded`,
        )
      } finally {
        writeFileSync(edited, original)
      }
    })
  })

  it('records checksums as the history changes: backfill where checksums are new, applied for a run, removed on down', async () => {
    await withDatabase(target, 'latest', async ({ db }) => {
      await migrateToLatest(db)
      await sql`DROP TABLE IF EXISTS x402_migrations.migration_checksum`.execute(db)

      // A database migrated before checksums existed: reported, not an error.
      const before = await checkDrift(db)
      expect(before.ok).toBe(true)
      expect(before.checksums.map(({ status }) => status)).toEqual(ALL.map(() => 'unrecorded'))
      expect(formatDriftReport(before)).toContain(
        `No checksum recorded yet (the next run that applies or reverts a migration records it, or now: npm run migrate:baseline -- ${NEWEST}):`,
      )

      // What migrate:baseline at the newest applied migration does for them.
      expect((await baselineMigrations(db, NEWEST)).recorded).toEqual([])
      const backfilled = await checkDrift(db)
      expect(backfilled.checksums.map(({ status }) => status)).toEqual(ALL.map(() => 'backfilled'))
      expect(formatDriftReport(backfilled)).toContain(
        `Checksums recorded after the fact (applied before checksums existed; edits before that date cannot be seen):\n  000_baseline_ai_models: recorded `,
      )

      await migrateDown(db)
      await syncMigrationChecksums(db)
      expect([...(await readMigrationChecksums(db)).keys()]).toEqual(ALL.slice(0, -1))

      await migrateUp(db)
      await syncMigrationChecksums(db)
      expect((await readMigrationChecksums(db)).get(NEWEST)).toMatchObject({
        origin: 'applied',
        sha256: await migrationChecksum(NEWEST),
      })
      expect((await checkDrift(db)).checksums.find(({ name }) => name === NEWEST)?.status).toBe(
        'ok',
      )

      // The transaction that wrote a history row gets exact origins, even where it creates the table.
      await sql`DROP TABLE x402_migrations.migration_checksum`.execute(db)
      await syncMigrationChecksums(db, { changes: [{ migrationName: NEWEST, direction: 'Up' }] })
      const origins = [...(await readMigrationChecksums(db)).values()].map(({ origin }) => origin)
      expect(origins).toEqual([...ALL.slice(0, -1).map(() => 'backfill'), 'applied'])
    })
  })

  it('records the checksums of the migrations a run committed before a later one failed', async () => {
    await withDatabase(target, 'none', async ({ db }) => {
      await migrateTo(db, '002_add_claude_integration')
      // 006 cannot rename ai_models onto a table that is already there.
      await sql`CREATE TABLE x402_openrouter_models (id int)`.execute(db)
      await expect(migrateToLatest(db)).rejects.toThrow(MIGRATION_006)
      const recorded = await readMigrationChecksums(db)
      expect(recorded.get(MIGRATION_005)).toMatchObject({
        origin: 'applied',
        sha256: await migrationChecksum(MIGRATION_005),
      })
      expect(recorded.has(MIGRATION_006)).toBe(false)
      expect(
        (await checkDrift(db)).checksums.filter(({ status }) => status === 'unrecorded'),
      ).toEqual([])
    })
  })

  it('exits 0 with the report on stdout when nothing drifted, and 3 (drift) with a one-line reason when something did; --json prints it as JSON', async () => {
    await withDatabase(target, 'latest', async (database) => {
      await migrateToLatest(database.db)
      await syncMigrationChecksums(database.db)
      await database.db.destroy() // the command opens the database itself
      const env = cliEnv(database.location)

      const clean = await cli(['check'], env)
      expect(clean.code).toBe(0)
      expect(lines(clean.stdout).at(-1)).toMatch(new RegExp(`^OK: the schema matches ${NEWEST}`))
      const cleanJson = await cli(['check', '--json'], env)
      expect(cleanJson.code).toBe(0)
      expect(JSON.parse(cleanJson.stdout)).toMatchObject({
        ok: true,
        migrationName: NEWEST,
        pending: [],
        history: [],
      })

      const changer = createDb(database.location)
      await sql`DROP INDEX idx_openrouter_integrations_user_enabled`.execute(changer)
      await changer.destroy()
      const drifted = await cli(['check'], env)
      expect(drifted.code).toBe(3)
      expect(drifted.stdout).toContain(
        '    x402_user_openrouter_integrations: index idx_openrouter_integrations_user_enabled: missing: CREATE INDEX',
      )
      expect(lines(drifted.stderr).at(-1)).toBe(
        `migrate check failed: drift found: 1 schema difference(s) from ${NEWEST} (the report above says what and where).`,
      )

      // The whole of stdout is one JSON document; the reason is on stderr, as without --json.
      const driftedJson = await cli(['check', '--json'], env)
      expect(driftedJson.code).toBe(3)
      const report = JSON.parse(driftedJson.stdout) as {
        ok: boolean
        schema: Record<string, Array<{ table?: string; name?: string }>>
      }
      expect(report.ok).toBe(false)
      expect(JSON.stringify(report.schema)).toContain('idx_openrouter_integrations_user_enabled')
      expect(lines(driftedJson.stderr).at(-1)).toBe(
        `migrate check failed: drift found: 1 schema difference(s) from ${NEWEST} (the JSON on stdout says what and where).`,
      )

      const unknownFlag = await cli(['check', '--frobnicate'], env)
      expect(unknownFlag.code).toBe(2)
      expect(lines(unknownFlag.stderr).at(-1)).toMatch(
        /^migrate check failed: migrate:check does not know the flag --frobnicate; it takes --strict, --json\./,
      )
    })
  })
})
