import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  baselineMigrations,
  createDb,
  MIGRATION_LOCK_KEY,
  migrateDown,
  migrateTo,
  migrateToLatest,
  migrateUp,
  withMigrationLock,
} from '../src/tooling.js'
import { lateAnswerProxy } from './support/late-answer-proxy.js'
import {
  MIGRATION_002,
  MIGRATION_005,
  ALL_MIGRATIONS,
  migrationsAfter,
  migrationsThrough,
} from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// No write without the lock, when the lock session's "still held" answer comes late: the
// network path of the lock session stalls while the server ends that session (its
// idle-in-transaction timeout, which lets another run take the lock), then heals and delivers
// the old answer first. The next statement of a migration outside a transaction commits by
// itself; it must not land. PostgreSQL only: PGlite's lock has no session.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'
const IDLE_TIMEOUT_MS = 1_000
const HOLD_MS = 3_000

/** Ends the session that holds the migration lock (the server's side), and waits until it is gone. */
async function terminateLockSession(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ terminated: boolean }>`
    SELECT pg_terminate_backend(pid, 10000) AS terminated FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = ${MIGRATION_LOCK_KEY}
      AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  `.execute(db)
  expect(rows).toEqual([{ terminated: true }])
}

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

describe.skipIf(skipReason)('a late answer of the lock session', () => {
  it("005's down writes no rollback mark once its lock session has ended", async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const url = new URL(serverUrl(location))
      await migrateTo(db, MIGRATION_005)
      // As after any earlier rollback of 005: the mark's column is there.
      await sql`ALTER TABLE x402_migrations.kysely_migration ADD COLUMN reverting_since timestamptz`.execute(
        db,
      )
      const proxy = await lateAnswerProxy(url, 'AND NOT attisdropped) AS present', HOLD_MS)
      const runDb = createDb({ connectionString: proxy.url(url) })
      let error: unknown
      try {
        error = await migrateDown(runDb, {
          allowDataLoss: true,
          idleTimeoutMs: IDLE_TIMEOUT_MS,
        }).catch((caught: unknown) => caught)
        expect(proxy.delivered()).toBe(true)
      } finally {
        await runDb.destroy()
        await proxy.close()
      }
      const { rows } = await sql<{ name: string; marked: boolean }>`
        SELECT name, reverting_since IS NOT NULL AS marked FROM x402_migrations.kysely_migration
        WHERE name = ${MIGRATION_005}`.execute(db)
      expect(rows).toEqual([{ name: MIGRATION_005, marked: false }])
      expect(error).toBeInstanceOf(Error)
      expect((error as Error).message).toMatch(
        /^Migration 005_\w+ failed \(down\): The migration lock was lost \(.+\): another run may hold it by now, so this run stopped before its next write\. 005_\w+ runs outside a transaction: the steps of its down that finished stay, and another run may have gone on since\. Run npm run migrate:list to see what is recorded; another run may have finished this rollback, or migrated forward since\. Roll back again only where 005_\w+ is still the newest migration recorded and you still want it reverted\.$/,
      )
    })
  })

  it("005's down writes no rollback mark after another run migrated, once its lock session was terminated", async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const url = new URL(serverUrl(location))
      await migrateTo(db, MIGRATION_005)
      await sql`ALTER TABLE x402_migrations.kysely_migration ADD COLUMN reverting_since timestamptz`.execute(
        db,
      )
      // The lock session's "still held" before the rollback mark is held back; meanwhile its
      // session is terminated (pg_terminate_backend, or PostgreSQL 17's transaction_timeout),
      // and another run migrates. The answer comes once that run is done, or waits for this one.
      const held = signal()
      const otherWaitsOrEnds = signal()
      // Armed by the check before the mark's COMMIT (its one history row updated): the last
      // "still held" before that COMMIT is the late one.
      const proxy = await lateAnswerProxy(url, 'marked bigint := 1;', 30_000, {
        onHeld: held.resolve,
        release: otherWaitsOrEnds.promise,
      })
      // Idle bounds far beyond the hold: only a fence can keep the late write out.
      const runDb = createDb({ connectionString: proxy.url(url) })
      const otherDb = createDb({ connectionString: serverUrl(location) })
      let error: unknown
      let otherError: unknown
      try {
        const first = migrateDown(runDb, { allowDataLoss: true, idleTimeoutMs: 60_000 }).catch(
          (caught: unknown) => caught,
        )
        await held.promise
        await terminateLockSession(db)
        otherError = await migrateToLatest(otherDb, {
          lockWaitMs: 30_000,
          log: (line) => {
            if (line.includes('waiting for the migration lock')) otherWaitsOrEnds.resolve()
          },
        })
          .then(() => undefined)
          .catch((caught: unknown) => caught)
          .finally(otherWaitsOrEnds.resolve)
        error = await first
        expect(proxy.delivered()).toBe(true)
      } finally {
        await runDb.destroy()
        await otherDb.destroy()
        await proxy.close()
      }
      const { rows } = await sql<{ name: string; marked: boolean }>`
        SELECT name, reverting_since IS NOT NULL AS marked FROM x402_migrations.kysely_migration
        ORDER BY name`.execute(db)
      // Either the mark landed before the other run could take the lock (that run then found the
      // rollback begun, and migrated nothing over it), or this run found its lock lost before the
      // mark and wrote nothing (the other run then migrated). Never a mark over the other's work.
      expect(error).toBeInstanceOf(Error)
      expect((error as Error).message).toMatch(/The migration lock was lost/)
      if (otherError === undefined) {
        expect(rows).toEqual(ALL_MIGRATIONS.map((name) => ({ name, marked: false })))
      } else {
        expect(rows).toEqual(
          migrationsThrough(MIGRATION_005).map((name) => ({
            name,
            marked: name === MIGRATION_005,
          })),
        )
        expect((otherError as Error).message).toMatch(
          /^The rollback of 005_\w+ began and did not finish/,
        )
      }
    })
  })

  it('migrate:baseline commits no history while another run holds the lock, once its lock session was terminated', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const url = new URL(serverUrl(location))
      // A database built by hand at 002: the schema, and no history.
      await migrateTo(db, MIGRATION_002)
      await sql`DROP SCHEMA x402_migrations CASCADE`.execute(db)
      const held = signal()
      const otherWaitsOrHolds = signal()
      // The baseline's last statement before it confirms the lock: its search_path put back.
      const proxy = await lateAnswerProxy(url, "set_config('search_path', $1, true)", 30_000, {
        onHeld: held.resolve,
        release: otherWaitsOrHolds.promise,
      })
      const runDb = createDb({ connectionString: proxy.url(url) })
      const otherDb = createDb({ connectionString: serverUrl(location) })
      const recorded = async () => {
        const { rows } = await sql<{ present: boolean }>`
          SELECT to_regclass('x402_migrations.kysely_migration') IS NOT NULL AS present`.execute(db)
        if (!rows[0]!.present) return 0
        const { rows: counted } = await sql<{ count: number }>`
          SELECT count(*)::int AS count FROM x402_migrations.kysely_migration`.execute(db)
        return counted[0]!.count
      }
      let changedUnderOtherRun: number[] | undefined
      let result: unknown
      try {
        const baseline = baselineMigrations(runDb, MIGRATION_002).catch((caught: unknown) => caught)
        await held.promise
        await terminateLockSession(db)
        await withMigrationLock(
          otherDb,
          async () => {
            const before = await recorded()
            otherWaitsOrHolds.resolve()
            await baseline
            changedUnderOtherRun = [before, await recorded()]
          },
          {
            lockWaitMs: 30_000,
            log: (line) => {
              if (line.includes('waiting for the migration lock')) otherWaitsOrHolds.resolve()
            },
          },
        )
        result = await baseline
        expect(proxy.delivered()).toBe(true)
      } finally {
        await runDb.destroy()
        await otherDb.destroy()
        await proxy.close()
      }
      // The history the baseline wrote was there before the other run took the lock.
      expect(result).not.toBeInstanceOf(Error)
      const count = migrationsThrough(MIGRATION_002).length
      expect(changedUnderOtherRun).toEqual([count, count])
    })
  })

  it("005's up builds no index once its lock session has ended", async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const url = new URL(serverUrl(location))
      await migrateTo(db, MIGRATION_002)
      const proxy = await lateAnswerProxy(url, 'AS usable', HOLD_MS)
      const runDb = createDb({ connectionString: proxy.url(url) })
      let error: unknown
      try {
        error = await migrateUp(runDb, { idleTimeoutMs: IDLE_TIMEOUT_MS }).catch(
          (caught: unknown) => caught,
        )
        expect(proxy.delivered()).toBe(true)
      } finally {
        await runDb.destroy()
        await proxy.close()
      }
      const { rows } = await sql<{ index: string | null }>`
        SELECT to_regclass('public.idx_x402_resources_openrouter_model')::text AS index`.execute(db)
      expect(rows).toEqual([{ index: null }])
      expect(error).toBeInstanceOf(Error)
      expect((error as Error).message).toMatch(
        /^Migration 005_\w+ failed \(up\): The migration lock was lost \(.+\): another run may hold it by now, so this run stopped before its next write\. .*another run may have gone on since\. Run npm run migrate:list to see what is recorded, then run the migrations again\.$/,
      )
    })
  })

  it("leaves no idle_session_timeout on the pool's connections after 005's up", async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, MIGRATION_002)
      const runDb = createDb({ connectionString: serverUrl(location) })
      try {
        await migrateUp(runDb, { idleTimeoutMs: IDLE_TIMEOUT_MS })
        // As many connections at once as the pool holds: the migration's among them.
        const settings = await Promise.all(
          Array.from({ length: 10 }, () =>
            runDb.connection().execute(async (connection) => {
              const { rows } = await sql<{
                value: string
              }>`SELECT current_setting('idle_session_timeout') AS value`.execute(connection)
              await new Promise((resolve) => setTimeout(resolve, 200))
              return rows[0]!.value
            }),
          ),
        )
        expect(new Set(settings)).toEqual(new Set(['0']))
      } finally {
        await runDb.destroy()
      }
    })
  })
})
