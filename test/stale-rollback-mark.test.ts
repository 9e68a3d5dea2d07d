import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { interruptedRollback as adoptionInterruptedRollback } from '../src/adoption/interrupted-rollback.js'
import { markReverting, readMigrationHistory } from '../src/migrator/history.js'
import { unfinishedRollback } from '../src/migrator/migrator.js'
import { migrationProvider } from '../src/migrator/provider.js'
import { withResumableDowns } from '../src/migrator/resumable-down.js'
import { migrationSettings } from '../src/migrator/settings.js'
import {
  baselineMigrations,
  checkDrift,
  migrateDown,
  migrateOnStartup,
  migrateTo,
  migrateToLatest,
  pendingMigrationNames,
} from '../src/tooling.js'
import { cli } from './support/cli.js'
import { createUser } from './support/fixtures.js'
import { MIGRATION_005, MIGRATION_006, migrationsAfter } from './support/migration-names.js'
import { serverUrl, testTargets, withTestDatabase } from './support/test-database.js'

// 005's down runs outside a transaction: the runner marks the history row ("reverting") before
// its first step, a transaction that moves the rows and adds the rollback CHECK. A kill during
// that transaction leaves the mark and nothing else: no step committed, as 005's own downBegun
// tells. Such a mark is stale: it is no rollback under way. Nothing refuses for it, a run under
// the migration lock clears it, and read-only commands just do not report it. The state is made
// here as the kill leaves it: the mark written as the runner writes it, no step run.

/** A database at 005 (its newest migration), a key stored, and the mark of a killed first attempt. */
async function staleMarkAt005(db: Kysely<any>): Promise<string> {
  await migrateTo(db, MIGRATION_006)
  await migrateDown(db) // 006, in a transaction of its own
  const userId = await createUser(db)
  await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
    db,
  )
  await markReverting(db, MIGRATION_005)
  expect(await marked(db)).toBe(true)
  return userId
}

async function marked(db: Kysely<any>): Promise<boolean> {
  return (await readMigrationHistory(db, { times: false })).some((entry) => entry.reverting)
}

describe.each(testTargets)(
  'a stale rollback mark (a first attempt killed before its first step committed) on %s',
  (target) => {
    it('is no interrupted rollback to the readers, which leave it in place', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await staleMarkAt005(db)
        expect(await pendingMigrationNames(db)).toEqual(migrationsAfter(MIGRATION_005))
        expect(await unfinishedRollback(db, { env: {} })).toBeUndefined()
        expect(await adoptionInterruptedRollback(db)).toBeUndefined()
        const report = await checkDrift(db)
        expect(report.history.join('\n')).not.toMatch(/interrupted|half removed/)
        expect(report.ok).toBe(true)
        // Read-only: the mark is still there for a run to clear.
        expect(await marked(db)).toBe(true)
      })
    })

    it('is cleared by migrate:latest, which then applies what is pending', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await staleMarkAt005(db)
        expect((await migrateToLatest(db, { env: {} })).map((r) => r.migrationName)).toEqual(
          migrationsAfter(MIGRATION_005),
        )
        expect(await marked(db)).toBe(false)
        expect((await checkDrift(db)).ok).toBe(true)
      })
    })

    it('does not stop start-up', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await staleMarkAt005(db)
        const outcome = await migrateOnStartup(db, { env: {}, log: () => {} })
        expect(outcome.applied.map((r) => r.migrationName)).toEqual(migrationsAfter(MIGRATION_005))
        expect(await marked(db)).toBe(false)
      })
    })

    it('is a fresh refusal to migrate:down while a key is stored: the plain refusal, and the mark is cleared', async () => {
      await withTestDatabase(target, async ({ db }) => {
        const userId = await staleMarkAt005(db)
        const refusal = (await migrateDown(db, { env: {} }).catch(
          (error: unknown) => error,
        )) as Error
        expect(refusal).toBeInstanceOf(Error)
        expect(refusal.message).toMatch(/would destroy data/)
        expect(refusal.message).not.toMatch(/half removed|began earlier/)
        expect(await marked(db)).toBe(false)
        const { rows } = await sql<{
          user_id: string
        }>`SELECT user_id FROM user_openrouter_integrations`.execute(db)
        expect(rows).toEqual([{ user_id: userId }])
        expect((await migrateToLatest(db, { env: {} })).map((r) => r.migrationName)).toEqual(
          migrationsAfter(MIGRATION_005),
        )
      })
    })

    it("is none to the resumable down itself (the runner's wrapper), whose refusal clears it", async () => {
      await withTestDatabase(target, async ({ db }) => {
        await staleMarkAt005(db)
        const settings = migrationSettings({ env: {} })
        const migrations = await withResumableDowns(
          migrationProvider(settings),
          settings,
        ).getMigrations()
        const refusal = (await migrations[MIGRATION_005]!.down!(db).catch(
          (error: unknown) => error,
        )) as Error
        expect(refusal).toBeInstanceOf(Error)
        expect(
          String(refusal.cause instanceof Error ? refusal.cause.message : refusal.message),
        ).toMatch(/would destroy data/)
        expect(refusal.message).not.toMatch(/half removed|began earlier/)
        expect(await marked(db)).toBe(false)
      })
    })

    // Step 1 commits the resource types of before 005 with the rollback CHECK: one dropped by
    // hand afterwards (an operator unblocking the app's writes) leaves the other to tell that
    // the rollback began. Before, the mark was taken for stale and 006 to 008 were applied on
    // a half-reverted 005 (openrouter_instant refused).
    it('stands where step 1 committed and its rollback CHECK was dropped by hand: nothing is applied', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await staleMarkAt005(db)
        await sql`ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check,
                    ADD CONSTRAINT x402_resources_resource_type_check
                      CHECK (resource_type IN ('external', 'proxy', 'prompt', 'static', 'prompt_template')) NOT VALID`.execute(
          db,
        )
        const refused = await migrateToLatest(db, { env: {} }).catch((error: unknown) => error)
        expect(String((refused as Error).message)).toMatch(
          /rollback of 005_\w+ .*not complete|began and did not finish/,
        )
        await expect(pendingMigrationNames(db)).rejects.toThrow(/005_add_openrouter_integration/)
        expect(await unfinishedRollback(db, { env: {} })).toBe(MIGRATION_005)
        expect(await marked(db)).toBe(true)
      })
    })

    // What the schema alone says where no mark stands is only the rollback CHECK: a type CHECK
    // written another way (an array literal, from a dump), narrowed or dropped is drift, not a
    // rollback. Before, such a database at 005 was refused for good, with advice to roll 005 back.
    it('no mark, and a type CHECK in another form or dropped: no rollback under way, and latest applies', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await migrateTo(db, MIGRATION_005)
        await sql`ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check,
                    ADD CONSTRAINT x402_resources_resource_type_check
                      CHECK (resource_type = ANY ('{external,proxy,prompt,static,prompt_template,openrouter_instant}'::text[]))`.execute(
          db,
        )
        expect(await unfinishedRollback(db, { env: {} })).toBeUndefined()
        expect(await adoptionInterruptedRollback(db)).toBeUndefined()
        await sql`ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check`.execute(
          db,
        )
        expect(await unfinishedRollback(db, { env: {} })).toBeUndefined()
        expect((await migrateToLatest(db, { env: {} })).map((r) => r.migrationName)).toEqual(
          migrationsAfter(MIGRATION_005),
        )
      })
    })

    // A first step that moved rows, with both constraints put back by hand afterwards: the backup
    // it made tells that it committed. Before, 006 to 008 were applied with the keys only in
    // x402_backup.
    it('stands where a backup of 005 holds what a first step moved, though both constraints were put back', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await staleMarkAt005(db)
        await sql`CREATE SCHEMA IF NOT EXISTS x402_backup`.execute(db)
        // Stamped as 005's first step stamps its backups: after the mark.
        await sql
          .raw(
            `DO $$ BEGIN EXECUTE format('CREATE TABLE x402_backup.%I AS SELECT * FROM user_openrouter_integrations',
               '005_user_openrouter_integrations_' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSMS')); END $$`,
          )
          .execute(db)
        await sql`DELETE FROM user_openrouter_integrations`.execute(db)
        const refused = await migrateToLatest(db, { env: {} }).catch((error: unknown) => error)
        expect(String((refused as Error).message)).toMatch(/rollback of 005_\w+ /)
        expect(await unfinishedRollback(db, { env: {} })).toBe(MIGRATION_005)
        expect(await marked(db)).toBe(true)
      })
    })

    // rev-6 R3: the backups of an earlier rollback that finished (005 applied again since) tell
    // nothing of the attempt that left the mark: only those stamped at or after the mark count.
    it('is cleared where the only backups of 005 are those of an earlier rollback that finished', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await migrateTo(db, MIGRATION_006)
        await migrateDown(db)
        const userId = await createUser(db)
        await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
          db,
        )
        await migrateDown(db, { allowDataLoss: true, env: {} }) // 005, backed up
        await migrateTo(db, MIGRATION_005) // applied again
        await sql`SELECT pg_sleep(0.01)`.execute(db)
        await markReverting(db, MIGRATION_005)
        expect(await unfinishedRollback(db, { env: {} })).toBeUndefined()
        await migrateToLatest(db, { env: {} })
        expect(await marked(db)).toBe(false)
        expect(await pendingMigrationNames(db)).toEqual([])
      })
    })

    it('does not stop migrate:baseline, which clears it', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await staleMarkAt005(db)
        await baselineMigrations(db, MIGRATION_005, { log: () => {} })
        expect(await marked(db)).toBe(false)
      })
    })
  },
)

describe.skipIf(!process.env.TEST_DATABASE_URL)('a stale rollback mark on the command line', () => {
  it('check is OK, dry runs say what they would apply, and latest clears it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await staleMarkAt005(db)
      const env = { DATABASE_URL: serverUrl(location) }
      const check = await cli(['check'], env)
      expect(check.stderr + check.stdout).not.toMatch(/interrupted|half removed/)
      expect(check.code).toBe(0)
      const dry = await cli(['latest', '--dry-run'], env)
      expect(dry.stderr).not.toMatch(/InterruptedRollback|npm run migrate:down/)
      expect(dry.code).toBe(0)
      expect(await marked(db)).toBe(true)
      const latest = await cli(['latest'], env)
      expect(latest.code).toBe(0)
      expect(await marked(db)).toBe(false)
    })
  })
})
