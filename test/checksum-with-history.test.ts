import { execFileSync } from 'node:child_process'

import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  checkDrift,
  createDb,
  formatDriftReport,
  MIGRATION_LOCK_KEY,
  migrateRedo,
  migrateTo,
  migrateToLatest,
  migrationChecksum,
  readMigrationChecksums,
} from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { createScriptableDatabase } from './support/hand-built-database.js'
import {
  BEFORE_005,
  MIGRATION_005,
  MIGRATION_006,
  MIGRATION_007,
} from './support/migration-names.js'
import { recordedMigrations, withApplicationName, withSessions } from './support/server-sessions.js'
import { serverUrl, testTargets, withTestDatabase } from './support/test-database.js'

// A migration's checksum commits with its history row (review revr R1): a run that stops after a
// migration committed (SIGKILL, a lost lock) cannot leave it recorded without the checksum of the
// text that ran, for a later run, from another checkout, to fill in with its own file's as
// `backfill`, which migrate:check counted as a match. Where the checksum table is kept, a
// recorded migration without a checksum is reported by name, and never filled in by a run.

const NEWEST = migrationNames.at(-1)!
const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

describe.each(testTargets)('a migration recorded without its checksum on %s', (target) => {
  it('is named by migrate:check, as drift, and the next run does not fill it in as backfill', async () => {
    const database = await createScriptableDatabase(target, 'none')
    try {
      const { db } = database
      await migrateTo(db, MIGRATION_005)
      // As a run killed once 005's history committed left it (before this fix): no checksum row.
      await sql`DELETE FROM x402_migrations.migration_checksum WHERE name = ${MIGRATION_005}`.execute(
        db,
      )
      // The next run, possibly from another checkout with another text of 005, applies the rest.
      await migrateToLatest(db)

      const recorded = await readMigrationChecksums(db)
      expect(recorded.has(MIGRATION_005)).toBe(false)
      expect(recorded.get(MIGRATION_006)?.origin).toBe('applied')

      const report = await checkDrift(db)
      expect(report.ok).toBe(false)
      expect(
        report.checksums
          .filter(({ status }) => status !== 'ok')
          .map(({ name, status }) => ({
            name,
            status,
          })),
      ).toEqual([{ name: MIGRATION_005, status: 'missing' }])
      const text = formatDriftReport(report)
      expect(text).toContain(
        `Applied migrations whose checksum was never recorded (the text that ran is unknown; compare the schema and record them with npm run migrate:baseline -- ${NEWEST}):\n  ${MIGRATION_005}\n`,
      )
      expect(text).toMatch(/\nDRIFT: 1 applied migration\(s\) without a checksum\.\n$/)
    } finally {
      await database.destroy()
    }
  })
})

describe.each(testTargets)('a database migrated before checksums existed, on %s', (target) => {
  it('gets the checksums of what it recorded before as backfill, from the run that makes the table', async () => {
    const database = await createScriptableDatabase(target, 'none')
    try {
      const { db } = database
      await migrateTo(db, MIGRATION_005)
      await sql`DROP TABLE x402_migrations.migration_checksum`.execute(db)
      await migrateToLatest(db)
      const origins = Object.fromEntries(
        [...(await readMigrationChecksums(db)).values()].map(({ name, origin }) => [name, origin]),
      )
      const upTo005 = migrationNames.slice(0, migrationNames.indexOf(MIGRATION_005) + 1)
      expect(origins).toEqual(
        Object.fromEntries(
          migrationNames.map((name) => [name, upTo005.includes(name) ? 'backfill' : 'applied']),
        ),
      )
      const report = await checkDrift(db)
      expect(report.ok).toBe(true)
      expect(
        report.checksums.filter(({ status }) => status === 'backfilled').map(({ name }) => name),
      ).toEqual(upTo005)
    } finally {
      await database.destroy()
    }
  })
})

/** Ends the session that holds the migration lock in the database of `connectionString`, and waits for it to be gone. */
function terminateMigrationLock(connectionString: string): void {
  execFileSync('psql', [
    connectionString,
    '-qAtc',
    `SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory'
       AND granted AND classid = 0 AND objid = ${MIGRATION_LOCK_KEY} AND objsubid = 1
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  ])
}

/**
 * A database handle whose migration lock is terminated at the `n`th statement that writes the
 * history (an INSERT into, or a DELETE from, x402_migrations.kysely_migration): that migration's
 * transaction does not commit, and those before it did.
 */
function losingLockAt(connectionString: string, n: number, name: string) {
  let seen = 0
  const state = { terminated: false }
  const db = createDb({
    connectionString: withApplicationName(connectionString, name),
    onStatement: (text) => {
      if (/(insert into|delete from) "x402_migrations"\."kysely_migration"/i.test(text)) {
        seen++
        if (seen === n && !state.terminated) {
          state.terminated = true
          terminateMigrationLock(connectionString)
        }
      }
    },
  })
  return { db, state }
}

describe.skipIf(skipReason)('a run that loses its lock after some migrations committed', () => {
  it('leaves each of them with the checksum of the text that ran, committed with its history row', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, BEFORE_005)
      // 005 (outside a transaction) and 006 (in one) commit; the lock goes at 007's history write.
      const run = losingLockAt(connectionString, 3, 'x402-test-r1-up')
      try {
        await expect(migrateToLatest(run.db)).rejects.toThrow(/lock/)
        expect(run.state.terminated).toBe(true)
      } finally {
        await run.db.destroy()
      }
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        expect((await recordedMigrations(observer)).slice(-2)).toEqual([
          MIGRATION_005,
          MIGRATION_006,
        ])
      })
      const recorded = await readMigrationChecksums(db)
      for (const name of [MIGRATION_005, MIGRATION_006]) {
        expect(recorded.get(name)).toMatchObject({
          origin: 'applied',
          sha256: await migrationChecksum(name),
        })
      }
      expect(recorded.has(MIGRATION_007)).toBe(false)
    })
  })

  it('leaves a reverted migration without its checksum, deleted with its history row', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateToLatest(db)
      // A redo: the down of the newest commits, and the lock goes at its up's history write.
      const run = losingLockAt(connectionString, 2, 'x402-test-r1-down')
      try {
        await expect(migrateRedo(run.db)).rejects.toThrow(/lock/)
        expect(run.state.terminated).toBe(true)
      } finally {
        await run.db.destroy()
      }
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        expect(await recordedMigrations(observer)).not.toContain(NEWEST)
      })
      expect((await readMigrationChecksums(db)).has(NEWEST)).toBe(false)
    })
  })
})
