import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  holdWriterLock,
  MIGRATION_WRITER_KEY,
  MigrationLockTimeoutError,
  withMigrationLock,
} from '../src/migrator/lock.js'
import { createDb } from '../src/tooling.js'
import { backendPid, withSessions } from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// The fence of the migration lock: no run takes it while a writer of an earlier run (a holder
// of MIGRATION_WRITER_KEY, shared) still lives; the wait is bounded by the lock wait and names
// the writer. PostgreSQL only: PGlite has one connection and no fence.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

describe.skipIf(skipReason)('the writer fence of the migration lock', () => {
  it('a run waits for a writer of an earlier run, names it, and takes the lock once it ends', async () => {
    await withTestDatabase('postgres', async ({ location }) => {
      const url = serverUrl(location)
      const db = createDb({ connectionString: url })
      try {
        await withSessions(url, async (session) => {
          const writer = await session('x402-test-writer')
          const writerPid = await backendPid(writer)
          await writer.query('SELECT pg_advisory_lock_shared($1)', [MIGRATION_WRITER_KEY])
          const lines: string[] = []
          let ran = false
          const error = await withMigrationLock(
            db,
            async () => {
              ran = true
            },
            { lockWaitMs: 500, log: (line) => lines.push(line) },
          ).catch((caught: unknown) => caught)
          expect(ran).toBe(false)
          expect(error).toBeInstanceOf(MigrationLockTimeoutError)
          expect((error as Error).message).toMatch(
            new RegExp(
              `^Waited 500 ms for the migration lock, but a writer of an earlier run is still open \\(pid ${writerPid}, x402-test-writer, for `,
            ),
          )
          expect(lines).toEqual([
            expect.stringMatching(
              new RegExp(
                `^\\[db\\] waiting for the migration lock: .*pid ${writerPid}, x402-test-writer`,
              ),
            ),
          ])
          // The migration lock itself was let go: no one holds it.
          const { rows } = await writer.query(
            `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = 402005000
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          )
          expect(rows).toEqual([])

          await writer.query('SELECT pg_advisory_unlock_shared($1)', [MIGRATION_WRITER_KEY])
          await withMigrationLock(
            db,
            async () => {
              ran = true
            },
            { lockWaitMs: 500 },
          )
          expect(ran).toBe(true)
        })
      } finally {
        await db.destroy()
      }
    })
  })

  it("a run's transaction fences the lock until it ends, and writers do not wait for each other", async () => {
    await withTestDatabase('postgres', async ({ location }) => {
      const url = serverUrl(location)
      const db = createDb({ connectionString: url })
      const other = createDb({ connectionString: url })
      try {
        await db.transaction().execute(async (trx) => {
          await holdWriterLock(trx, 'transaction')
          // A second writer (of the same run) takes it too, at once.
          await other.transaction().execute(async (second) => {
            await sql`SET LOCAL lock_timeout = '200ms'`.execute(second)
            await holdWriterLock(second, 'transaction')
          })
          const error = await withMigrationLock(other, async () => {}, { lockWaitMs: 300 }).catch(
            (caught: unknown) => caught,
          )
          expect(error).toBeInstanceOf(MigrationLockTimeoutError)
          expect((error as Error).message).toMatch(/a writer of an earlier run is still open/)
        })
        let ran = false
        await withMigrationLock(
          other,
          async () => {
            ran = true
          },
          { lockWaitMs: 300 },
        )
        expect(ran).toBe(true)
      } finally {
        await db.destroy()
        await other.destroy()
      }
    })
  })
})
