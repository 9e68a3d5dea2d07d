import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { createDb, migrateDown, migrateTo, migrateUp } from '../src/tooling.js'
import { lateAnswerProxy } from './support/late-answer-proxy.js'
import { MIGRATION_002, MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// No write without the lock, when the lock session's "still held" answer comes late: the
// network path of the lock session stalls while the server ends that session (its
// idle-in-transaction timeout, which lets another run take the lock), then heals and delivers
// the old answer first. The next statement of a migration outside a transaction commits by
// itself; it must not land. PostgreSQL only: PGlite's lock has no session.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'
const IDLE_TIMEOUT_MS = 1_000
const HOLD_MS = 3_000

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
        /^Migration 005_\w+ failed \(down\): The migration lock was lost \(.+\): another run may hold it by now, so this run stopped before its next write\. 005_\w+ runs outside a transaction: the steps of its down that finished stay, it stays recorded as applied/,
      )
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
        /^Migration 005_\w+ failed \(up\): The migration lock was lost \(.+\): another run may hold it by now, so this run stopped before its next write\. .*it is not recorded as done, and running the migrations again completes it\./,
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
