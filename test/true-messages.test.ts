import { type Kysely, sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'

import {
  MigrationError,
  migrateTo,
  migrateToLatest,
  planRepair,
  recordedMigrationNames,
} from '../src/tooling.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import { MIGRATION_002, migrationsThrough } from './support/migration-names.js'
import {
  PRODUCTION_003_STATEMENTS,
  PRODUCTION_CATALOG_STATEMENTS,
} from './support/production-today.js'
import { testTargets } from './support/test-database.js'

// What the module tells a user after a failure is true: a rerun is advised only where it can
// help, and adopting at an earlier migration only where there is one that fits.

describe.each(testTargets)('messages that are true, on %s', (target) => {
  let database: ScriptableDatabase | undefined
  afterEach(async () => {
    await database?.destroy()
    database = undefined
  })

  it('after production’s own 003 was pasted, migrate:latest says to adopt, not to run again, and the plan names 006', async () => {
    database = await createScriptableDatabase(target, MIGRATION_002)
    const db = database.db as Kysely<any>
    await migrateTo(db, MIGRATION_002)
    await database.runScript(
      [...PRODUCTION_CATALOG_STATEMENTS, ...PRODUCTION_003_STATEMENTS].join(';\n'),
    )

    for (let run = 0; run < 2; run++) {
      const error = await migrateToLatest(db, { env: {} }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(MigrationError)
      expect(error).toMatchObject({
        migrationName: '005_add_openrouter_integration',
        code: '42P07',
      })
      const message = (error as Error).message
      expect(message).toContain(
        'relation "idx_openrouter_integrations_user_enabled" already exists',
      )
      expect(message).toContain('running the migrations again fails the same way')
      expect(message).not.toContain('completes it')
      expect(message).toContain(
        'Adopt the database at the migration whose schema it has instead of migrating it',
      )
      expect(await recordedMigrationNames(db)).toEqual(migrationsThrough(MIGRATION_002))
    }

    const plan = await planRepair(db, '005', { decisions: [] })
    expect(
      plan.unresolved.find(({ line }) =>
        line.startsWith('user_openrouter_integrations: table: missing'),
      ),
    ).toEqual({
      line:
        'user_openrouter_integrations: table: missing (the database has it as x402_user_openrouter_integrations, ' +
        'the name 006_rename_to_production_names gives it: adopt at that migration)',
      decide: expect.stringMatching(
        /^the database has it as x402_user_openrouter_integrations, .*adopt at that migration; the plan never renames or moves data itself\.$/,
      ),
    })
  })

  it('offers adopting at an earlier migration only where one exists that does not have the missing table', async () => {
    database = await createScriptableDatabase(target, MIGRATION_002)
    const db = database.db as Kysely<any>
    await migrateTo(db, MIGRATION_002)
    await sql`DROP SCHEMA x402_migrations CASCADE`.execute(db)
    await sql`DROP TABLE ai_models CASCADE`.execute(db)
    await sql`DROP TABLE x402_user_claude_configs`.execute(db)
    const plan = await planRepair(db, MIGRATION_002, { decisions: [] })
    const decide = (table: string) =>
      plan.unresolved.find(({ line }) => line.startsWith(`${table}: table: missing`))?.decide
    // The catalog is the very first migration's: there is no earlier one to adopt at.
    expect(decide('ai_models')).toBe(
      "000_baseline_ai_models creates it: create it with that migration's SQL (npm run migrate:sql -- 000_baseline_ai_models) after review.",
    )
    expect(decide('x402_user_claude_configs')).toBe(
      "002_add_claude_integration creates it: create it with that migration's SQL (npm run migrate:sql -- 002_add_claude_integration) " +
        'after review, or adopt at 001_add_prompt_template_fields, whose schema does not have it yet.',
    )
  })
})
