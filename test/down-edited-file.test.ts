import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  checkDrift,
  migrateDown,
  migrateRedo,
  migrateTo,
  migrationChecksum,
  migrationStatus,
  readMigrationChecksums,
} from '../src/tooling.js'
import { EARLIER_TEXTS } from '../src/migrator/checksums.js'
import { MIGRATION_006, MIGRATION_007, MIGRATION_008 } from './support/migration-names.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Review revt F4: a down or redo of a migration whose recorded checksum no longer matched its
// file ran the file's down without a word, and the up of a redo then recorded the new file's
// checksum, so that migrate:check said OK: a down that may not match what ran was executed and
// the evidence of the edit was erased. The runner now refuses, before anything changes, to
// revert a migration whose file differs from the text that was applied (`edited`) or that was
// recorded without a checksum (`missing`), the verdicts of migrate:check; an earlier text of a
// corrected migration (`corrected`, EARLIER_TEXTS) still rolls back.

const NEWEST = MIGRATION_008
/** A checksum that no text of any migration has: a file edited after it was applied. */
const OTHER_TEXT = 'e'.repeat(64)

describe.each(testTargets)(
  'a down of a migration whose file is not the one applied on %s',
  (target) => {
    const database = useTestDatabase(target, 'latest')
    const db = () => database.db as Kysely<any>

    const applied = async () =>
      (await migrationStatus(database.db)).filter((m) => m.appliedAt).map((m) => m.name)
    const checksums = async () =>
      [...(await readMigrationChecksums(db())).values()].map(({ name, sha256, origin }) => ({
        name,
        sha256,
        origin,
      }))
    const record = (name: string, sha256: string) =>
      sql`UPDATE x402_migrations.migration_checksum SET sha256 = ${sha256} WHERE name = ${name}`.execute(
        db(),
      )
    const refusal = (run: Promise<unknown>) =>
      run.then(
        () => {
          throw new Error('the run was expected to refuse')
        },
        (error: unknown) => error as Error,
      )

    it('refuses migrate:down and migrate:redo of an edited file, naming it, and changes nothing', async () => {
      await record(NEWEST, OTHER_TEXT)
      const before = { applied: await applied(), checksums: await checksums() }

      // One after the other: the second must find the database as the first refusal left it.
      for (const run of [migrateDown, migrateRedo]) {
        const error = await refusal(run(database.db, { env: {} }))
        expect(error.message).toContain(NEWEST)
        expect(error.message).toContain('differs from the text that was applied')
        expect(error.message).toContain(OTHER_TEXT)
        expect(error.message).toContain('Nothing was changed')
        expect(error.message).toContain(`git log -p -- src/migrations/${NEWEST}.ts`)
        expect({ applied: await applied(), checksums: await checksums() }).toEqual(before)
      }
      // The evidence stays: migrate:check still reports the file as edited.
      expect(
        (await checkDrift(database.db)).checksums.find(({ name }) => name === NEWEST)?.status,
      ).toBe('edited')

      await record(NEWEST, await migrationChecksum(NEWEST))
    })

    it('refuses a migrateTo backwards where an older migration to revert is edited, before reverting any', async () => {
      await record(MIGRATION_007, OTHER_TEXT)
      const before = { applied: await applied(), checksums: await checksums() }

      const error = await refusal(migrateTo(database.db, MIGRATION_006, { env: {} }))
      expect(error.message).toContain(MIGRATION_007)
      expect(error.message).not.toContain(`${NEWEST}:`)
      expect(error.message).toContain('Nothing was changed')
      // 008, whose file is as applied, was not reverted either.
      expect({ applied: await applied(), checksums: await checksums() }).toEqual(before)

      await record(MIGRATION_007, await migrationChecksum(MIGRATION_007))
    })

    it('refuses a down of a migration recorded without a checksum (missing), naming it', async () => {
      const kept = (await readMigrationChecksums(db())).get(NEWEST)!
      await sql`DELETE FROM x402_migrations.migration_checksum WHERE name = ${NEWEST}`.execute(db())
      const before = { applied: await applied(), checksums: await checksums() }

      // One after the other: the second must find the database as the first refusal left it.
      for (const run of [migrateDown, migrateRedo]) {
        const error = await refusal(run(database.db, { env: {} }))
        expect(error.message).toContain(NEWEST)
        expect(error.message).toContain('no checksum was recorded')
        expect(error.message).toContain('Nothing was changed')
        expect(error.message).toContain('migrate:check')
        expect(error.message).toContain(`migrate:baseline -- ${NEWEST}`)
        expect({ applied: await applied(), checksums: await checksums() }).toEqual(before)
      }

      await sql`
      INSERT INTO x402_migrations.migration_checksum (name, sha256, origin)
      VALUES (${kept.name}, ${kept.sha256}, ${kept.origin})
    `.execute(db())
    })

    it('rolls back a migration applied from an earlier text of a corrected migration', async () => {
      const earlier = Object.keys(EARLIER_TEXTS[NEWEST]!)[0]!
      await record(NEWEST, earlier)
      expect(
        (await checkDrift(database.db)).checksums.find(({ name }) => name === NEWEST)?.status,
      ).toBe('corrected')

      const results = await migrateDown(database.db, { env: {} })

      expect(
        results.map(({ migrationName, direction, status }) => [migrationName, direction, status]),
      ).toEqual([[NEWEST, 'Down', 'Success']])
      expect(await applied()).not.toContain(NEWEST)
      expect((await readMigrationChecksums(db())).has(NEWEST)).toBe(false)
    })
  },
)
