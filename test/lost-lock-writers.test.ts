import { execFileSync } from 'node:child_process'

import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { baselineMigrations, createDb, MIGRATION_LOCK_KEY, migrateTo } from '../src/tooling.js'
import { MIGRATION_002 } from './support/migration-names.js'
import { recordedMigrations, withApplicationName, withSessions } from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// No write without the lock, for the commands that write the history beside the runner: a
// baseline whose lock session is terminated before it writes the history records nothing.
// PostgreSQL only: PGlite's lock has no session to terminate.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'
const RUN = 'x402-lost-lock-writer'

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

describe.skipIf(skipReason)('a writer of the history that loses the migration lock', () => {
  it('migrate:baseline records nothing when its lock session is terminated before the history INSERT', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      // A database built by hand at 002: the schema, and no history.
      await migrateTo(db, MIGRATION_002)
      await sql`DROP SCHEMA x402_migrations CASCADE`.execute(db)
      let terminated = false
      const runDb = createDb({
        connectionString: withApplicationName(connectionString, RUN),
        onStatement: (text) => {
          if (!terminated && /insert into "x402_migrations"\."kysely_migration"/i.test(text)) {
            terminated = true
            terminateMigrationLock(connectionString)
          }
        },
      })
      try {
        const error = await baselineMigrations(runDb, MIGRATION_002).catch(
          (caught: unknown) => caught,
        )
        expect(terminated).toBe(true)
        expect(error).toBeInstanceOf(Error)
        expect((error as Error).message).toMatch(
          /^The migration lock was lost \(.+\): another run may hold it by now, so this run stopped before its next write\. Nothing was recorded\. Run migrate:baseline -- 002_add_claude_integration again\.$/,
        )
      } finally {
        await runDb.destroy()
      }
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        expect(await recordedMigrations(observer)).toEqual([])
      })
    })
  })
})
