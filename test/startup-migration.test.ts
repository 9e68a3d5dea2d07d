import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { MigrationError, migrateOnStartup, migrateTo, migrationStatus } from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { testTargets, withTestDatabase } from './support/test-database.js'

// The start-up hook: it applies what is pending, logging one line each, is a no-op on an
// up-to-date database, can be switched off, and throws rather than let the app start
// half-migrated.

const ALL_MIGRATIONS = migrationNames

function collectingLog() {
  const lines: string[] = []
  return { lines, log: (line: string) => lines.push(line) }
}

describe.each(testTargets)('start-up migration on %s', (target) => {
  it('applies every pending migration with one log line each, then does nothing', async () => {
    await withTestDatabase(target, async ({ db }) => {
      const first = collectingLog()
      const outcome = await migrateOnStartup(db, { env: {}, log: first.log })
      expect(outcome.applied.map((result) => result.migrationName)).toEqual(ALL_MIGRATIONS)
      expect(first.lines).toEqual(ALL_MIGRATIONS.map((name) => `[db] applied migration ${name}`))

      const second = collectingLog()
      expect(await migrateOnStartup(db, { env: {}, log: second.log })).toEqual({
        skipped: false,
        applied: [],
      })
      expect(second.lines).toEqual([])
      expect((await migrationStatus(db)).every((migration) => migration.appliedAt)).toBe(true)
    })
  })

  it('applies only what is pending on a database that is behind', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateTo(db, '002_add_claude_integration')
      const { lines, log } = collectingLog()
      await migrateOnStartup(db, { env: { AUTO_MIGRATE: 'true' }, log })
      const after002 = ALL_MIGRATIONS.filter((name) => name > '002_add_claude_integration')
      expect(after002[0]).toBe('005_add_openrouter_integration')
      expect(lines).toEqual(after002.map((name) => `[db] applied migration ${name}`))
    })
  })

  it('does nothing with AUTO_MIGRATE=false, and rejects a value it does not know', async () => {
    await withTestDatabase(target, async ({ db }) => {
      const { lines, log } = collectingLog()
      expect(await migrateOnStartup(db, { env: { AUTO_MIGRATE: 'false' }, log })).toEqual({
        skipped: true,
        applied: [],
      })
      expect(lines).toEqual(['[db] AUTO_MIGRATE=false: start-up migration skipped'])
      expect((await migrationStatus(db)).some((migration) => migration.appliedAt)).toBe(false)

      await expect(
        migrateOnStartup(db, { env: { AUTO_MIGRATE: 'sometimes' }, log }),
      ).rejects.toThrow('AUTO_MIGRATE is "sometimes", expected "true" or "false".')
    })
  })

  it('throws with the migration and PostgreSQL’s reason, and rolls back the failed migration alone', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateTo(db, '000_baseline_x402_resources')
      // A table made by hand in the way of 002, as after a paste into the SQL Editor.
      await sql`CREATE TABLE x402_user_claude_configs (user_id uuid PRIMARY KEY)`.execute(db)
      const { lines, log } = collectingLog()

      const error = await migrateOnStartup(db, { env: {}, log }).catch((caught: unknown) => caught)

      expect(error).toBeInstanceOf(MigrationError)
      expect(error).toMatchObject({ migrationName: '002_add_claude_integration', code: '42P07' })
      expect((error as Error).message).toContain(
        'relation "x402_user_claude_configs" already exists (SQLSTATE 42P07)',
      )
      expect((error as Error).message).toContain(
        '002_add_claude_integration was rolled back. 001_add_prompt_template_fields ran earlier in this run and stays done.',
      )
      expect(lines).toEqual([])
      // 001 committed in a transaction of its own before 002 began.
      expect(await appliedNames(db)).toEqual(ALL_MIGRATIONS.slice(0, 3))
      const ptColumn = await sql<{ found: boolean }>`
        SELECT EXISTS (SELECT FROM information_schema.columns WHERE column_name = 'pt_system_prompt') AS found
      `.execute(db)
      expect(ptColumn.rows).toEqual([{ found: true }])
    })
  })

  it('keeps the migrations that committed before a migration that runs outside a transaction fails', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateTo(db, '001_add_prompt_template_fields')
      // A table made by hand in the way of 005's first step.
      await sql`CREATE TABLE user_openrouter_integrations (user_id uuid PRIMARY KEY)`.execute(db)

      const error = await migrateOnStartup(db, { env: {}, log: () => {} }).catch(
        (caught: unknown) => caught,
      )

      expect(error).toMatchObject({
        migrationName: '005_add_openrouter_integration',
        code: '42P07',
      })
      // The table is in the way of every run: the message says so instead of promising that a rerun completes it.
      expect((error as Error).message).toContain(
        '005_add_openrouter_integration runs outside a transaction: the steps it finished stay, it is not recorded as done, ' +
          'and running the migrations again fails the same way. 002_add_claude_integration ran earlier in this run and stays done. ' +
          'The database has this object already, made outside the module',
      )
      expect((error as Error).message).toContain(
        'Adopt the database at the migration whose schema it has instead of migrating it',
      )
      expect(await appliedNames(db)).toEqual(ALL_MIGRATIONS.slice(0, 4))
      const newColumn = await sql<{ found: boolean }>`
        SELECT EXISTS (SELECT FROM information_schema.columns WHERE column_name = 'openrouter_model_id') AS found
      `.execute(db)
      expect(newColumn.rows).toEqual([{ found: false }])
    })
  })
})

async function appliedNames(db: Kysely<any>): Promise<string[]> {
  return (await migrationStatus(db))
    .filter((migration) => migration.appliedAt)
    .map((migration) => migration.name)
}
