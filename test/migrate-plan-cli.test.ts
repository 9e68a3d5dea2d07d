import { describe, expect, it } from 'vitest'

import {
  createDb,
  migrateTo,
  pendingMigrationNames,
  type Rehearsal,
  snapshotSchema,
} from '../src/tooling.js'
import { cli, cliEnv } from './support/cli.js'
import { createTestDatabase, testTargets } from './support/test-database.js'

// `npm run migrate:plan` and `npm run lint:locks` as a user runs them: child processes. The plan
// reads the target and rehearses elsewhere; the target is compared before and after.

describe.each(testTargets)('migrate:plan on %s', (target) => {
  it('rehearses the pending migrations of a database at 002, as JSON, and leaves it as it was', async () => {
    // On PGlite, from the template the migrator built to 002 (cached): migrateTo has nothing left to do there.
    const database = await createTestDatabase(target, {}, '002_add_claude_integration')
    try {
      const { db, location } = database
      await migrateTo(db, '002_add_claude_integration')
      const before = await snapshotSchema(db, 'public')
      // The command opens the database itself: release this process's hold on it.
      await db.destroy()

      const plan = await cli(
        ['--json', '--max-rows=200'],
        cliEnv(location),
        'src/cli/migrate-plan.ts',
      )
      expect(plan.stderr).not.toMatch(/failed/)
      expect(plan.code).toBe(0)
      const report = JSON.parse(plan.stdout) as Rehearsal
      expect(report.scratch).toBe(target)
      expect(report.startingPoint).toBe('002_add_claude_integration')
      expect(report.seeded).toContainEqual({ table: 'x402_resources', rows: 200 })
      expect(report.migrations.map((migration) => migration.name)).toEqual([
        '005_add_openrouter_integration',
        '006_rename_to_production_names',
        '007_openrouter_policies_per_supabase_advice',
        '008_close_supabase_advisor_findings',
      ])
      const validate = report.migrations[0]!.statements.find((statement) =>
        /VALIDATE CONSTRAINT/.test(statement.sql),
      )!
      expect(validate.locks).toContainEqual(
        expect.objectContaining({ table: 'x402_resources', mode: 'SHARE UPDATE EXCLUSIVE' }),
      )

      // The table, once (each run on PGlite boots two embedded databases).
      if (target === 'postgres') {
        const text = await cli(['--max-rows=200'], cliEnv(location), 'src/cli/migrate-plan.ts')
        expect(text.stdout).toMatch(
          /^Rehearsed on a scratch PostgreSQL database at 002_add_claude_integration/,
        )
        expect(text.stdout).toMatch(
          /x402_resources ACCESS EXCLUSIVE \(blocks reads and writes\) held [\d.]+ ms; no rewrite, no scan/,
        )
      }

      const reopened = createDb(
        'connectionString' in location
          ? { connectionString: location.connectionString }
          : { dataDir: location.dataDir },
      )
      try {
        expect(await pendingMigrationNames(reopened)).toEqual([
          '005_add_openrouter_integration',
          '006_rename_to_production_names',
          '007_openrouter_policies_per_supabase_advice',
          '008_close_supabase_advisor_findings',
        ])
        expect(await snapshotSchema(reopened, 'public')).toEqual(before)
      } finally {
        await reopened.destroy()
      }
    } finally {
      await database.destroy()
    }
  })
})

describe('lint:locks', () => {
  // It rehearses four migrations on PGlite, seeded: over a minute on two busy cores.
  it(
    "passes the module's migrations, on PGlite saying that the check is partial and what it could not measure",
    { timeout: 240_000 },
    async () => {
      const lint = await cli(
        [],
        { LINT_LOCKS_DATABASE_URL: undefined },
        'src/cli/lint-locks.ts',
        230_000,
      )
      expect(lint.stderr).toMatch(
        /lint:locks: 4 migrations rehearsed \(005_add_openrouter_integration, 006_rename_to_production_names, 007_openrouter_policies_per_supabase_advice, 008_close_supabase_advisor_findings\)/,
      )
      expect(lint.stderr).toMatch(
        /^not measured: 005_add_openrouter_integration statement \d+ \(CREATE INDEX CONCURRENTLY/im,
      )
      // The last line, the one a user reads, does not claim a full pass.
      expect(lint.stderr.trim().split('\n').at(-1)).toMatch(
        /^lint:locks: PARTIAL CHECK: \d+ statements? could not be measured/,
      )
      expect(lint.stdout).toBe('')
      expect(lint.code).toBe(0)
    },
  )
})

describe('migrate:plan on bad input', () => {
  it('refuses an unknown flag and a row count that is not a number, in one line', async () => {
    const flag = await cli(['--fast'], {}, 'src/cli/migrate-plan.ts')
    expect(flag.code).toBe(2)
    expect(flag.stderr.trim()).toMatch(
      /^migrate:plan failed: migrate:plan does not know the flag --fast; it takes --json, --copy-schema, --max-rows\. usage: /,
    )
    const rows = await cli(['--max-rows=many'], {}, 'src/cli/migrate-plan.ts')
    expect(rows.stderr.trim()).toMatch(
      /^migrate:plan failed: --max-rows must be a positive whole number, such as --max-rows=20000, not "many"/,
    )
  })
})
