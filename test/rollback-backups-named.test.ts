import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { MigrationError, migrateDown, migrateTo } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { testTargets, withTestDatabase } from './support/test-database.js'

// review revb F3: 005's down runs outside a transaction, in steps; its first step moves the keys
// and the rows it would destroy to x402_backup. An attempt stopped after that step named no
// backup (the runner named only the tables that appeared during a block that committed), and
// the run that completed the rollback found them there already and said only "reverted 005".
// Here the attempt fails at step 2's first statement, after step 1 committed, as a lost
// connection would stop it: its error, and the run that completes the rollback, name every
// backup this rollback made, and not the backup of an earlier rollback that finished.

/** What the runner says of a rollback's backups, in its log and in its errors. */
const SAID =
  /the rollback copied the data it would destroy to (.+) \(docs\/rollback\.md says how to restore it\)/i

async function backupsOf005(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT format('x402_backup.%I', table_name) AS name FROM information_schema.tables
    WHERE table_schema = 'x402_backup' AND table_name LIKE '005_%' ORDER BY 1
  `.execute(db)
  return rows.map((row) => row.name)
}

async function storeKey(db: Kysely<any>): Promise<void> {
  await db
    .insertInto('user_openrouter_integrations')
    .values({ user_id: await createUser(db), encrypted_api_key: 'aa:bb' })
    .execute()
}

/**
 * Once armed, fails the first statement of step 2 of 005's down before it is sent, once, as a
 * lost connection would stop the down there, with step 1 committed.
 */
function stopAfterStepOne() {
  let armed = false
  return {
    arm: () => (armed = true),
    fired: () => !armed,
    onStatement(text: string) {
      if (armed && text.includes('VALIDATE CONSTRAINT x402_resources_openrouter_rollback_check')) {
        armed = false
        throw new Error('the connection to the server was lost (test)')
      }
    },
  }
}

/** The backups that `text` names in the runner's words, or undefined where it names none. */
function named(text: string): string[] | undefined {
  return SAID.exec(text)?.[1]!.split(', ')
}

describe.each(testTargets)('a rollback of 005 stopped after its first step on %s', (target) => {
  it('names its backups in the error, and again in the run that completes it', async () => {
    const stop = stopAfterStepOne()
    await withTestDatabase(
      target,
      async ({ db }) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        // An earlier rollback that finished, with its own backup: not this rollback's.
        await storeKey(db)
        await migrateDown(db, { allowDataLoss: true, env: {} })
        await migrateTo(db, MIGRATION_005, { env: {} })
        const earlier = await backupsOf005(db)
        expect(earlier).toHaveLength(1)

        await storeKey(db)
        stop.arm()
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (caught: unknown) => caught,
        )
        expect(stop.fired()).toBe(true)
        expect(error).toBeInstanceOf(MigrationError)
        const made = (await backupsOf005(db)).filter((name) => !earlier.includes(name))
        expect(made).toHaveLength(1)
        const message = (error as Error).message
        expect(message).toMatch(/005_add_openrouter_integration runs outside a transaction/)
        expect(named(message)?.sort()).toEqual(made)

        const lines: string[] = []
        const completed = await migrateDown(db, {
          allowDataLoss: true,
          env: {},
          log: (line) => lines.push(line),
        })
        expect(completed.map((result) => result.migrationName)).toEqual([MIGRATION_005])
        const said = lines.filter((line) => SAID.test(line))
        expect(said).toHaveLength(1)
        expect(said[0]).toMatch(/^\[db\] the rollback copied/)
        expect(named(said[0]!)?.sort()).toEqual(made)
      },
      { onStatement: (text) => stop.onStatement(text) },
    )
  })

  // Hostile review (of f8f189d, F1): the connection lost at the listing of the backups, after
  // every step of the down ran and before the history's COMMIT, said "The migration run failed
  // before any migration ran … Nothing was changed", with the keys table dropped.
  it('lost at the listing of its backups, after its steps ran, says what stays done', async () => {
    let armed = false
    await withTestDatabase(
      target,
      async ({ db }) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        await storeKey(db)
        armed = true
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (caught: unknown) => caught,
        )
        expect(armed).toBe(false)
        expect(error).toBeInstanceOf(MigrationError)
        const message = (error as Error).message
        expect(message).not.toMatch(/before any migration ran|Nothing was changed/)
        expect(message).toMatch(/005_add_openrouter_integration runs outside a transaction/)
        expect(named(message)).toEqual(await backupsOf005(db))
      },
      {
        onStatement(text) {
          if (armed && text.includes("format('x402_backup.%I', c.relname)")) {
            armed = false
            throw new Error('the connection to the server was lost (test)')
          }
        },
      },
    )
  })

  it('with its mark cleared by hand, the run that completes it still names them', async () => {
    const stop = stopAfterStepOne()
    await withTestDatabase(
      target,
      async ({ db }) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        await storeKey(db)
        stop.arm()
        await expect(migrateDown(db, { allowDataLoss: true, env: {} })).rejects.toBeInstanceOf(
          MigrationError,
        )
        const made = await backupsOf005(db)
        expect(made).toHaveLength(1)
        // A "stale flag" cleared by hand: the schema still shows the rollback begun, and every
        // backup of 005 is named, in doubt.
        await sql`UPDATE x402_migrations.kysely_migration SET reverting_since = NULL`.execute(db)
        const lines: string[] = []
        await migrateDown(db, { allowDataLoss: true, env: {}, log: (line) => lines.push(line) })
        expect(lines.map(named).filter(Boolean)).toEqual([made])
      },
      { onStatement: (text) => stop.onStatement(text) },
    )
  })
})
