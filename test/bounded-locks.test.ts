import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'

import { createDb, MIGRATION_LOCK_KEY, migrateDown, migrateTo, migrateToLatest, migrationStatus } from '../src/tooling.js'
import { migrationsAfter } from './support/migration-names.js'
import { killRunningScripts, startScript } from './support/script-process.js'
import { pollUntil, terminateLockHolder, waitForLockWait, withApplicationName, withSessions } from './support/server-sessions.js'
import { withTestDatabase } from './support/test-database.js'

// What a migration run holds is bounded: a stalled client loses its locks after
// MIGRATION_IDLE_TIMEOUT_MS, a run that lost the migration lock stops before its next attempt,
// and every transaction of the runner is READ COMMITTED whatever the database's default.
// PostgreSQL only: each needs a second session, a stopped process or a database default.
// A run that must revert 005 starts at 006, so that `migrate:down` (the newest migration) has
// 005 next; what `latest` applies is derived from the list of migrations.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'
const RUN = 'x402-bounded-run'
const M002 = '002_add_claude_integration'
const M006 = '006_rename_to_production_names'

afterEach(killRunningScripts)

describe.skipIf(skipReason)('bounded locks on postgres', () => {
  it('releases ACCESS EXCLUSIVE on x402_resources and the migration lock when the client stalls in 005', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const { connectionString } = location as { connectionString: string }
      await migrateTo(db, M002)
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        const holder = await session('x402-test-holder')
        await holder.query('BEGIN')
        await holder.query('SELECT count(*) FROM x402_resources')
        const run = startScript('src/cli/migrate.ts', ['latest'], {
          DATABASE_URL: withApplicationName(connectionString, RUN),
          MIGRATION_LOCK_TIMEOUT_MS: '600000',
          MIGRATION_IDLE_TIMEOUT_MS: '1000',
        })
        await waitForLockWait(observer, RUN, 'ALTER TABLE x402_resources')
        // Stopped while step 1 waits: once the holder lets go, step 1's ALTER TABLE gets ACCESS
        // EXCLUSIVE, and the stopped client never sends the rest of the transaction.
        run.child.kill('SIGSTOP')
        await holder.query('ROLLBACK')
        await pollUntil(observer, 'the stalled run to hold no lock on x402_resources and no advisory lock', async () => {
          const { rows } = await observer.query(
            `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE a.datname = current_database() AND a.application_name = $1
               AND (l.relation = 'x402_resources'::regclass OR l.locktype = 'advisory')`,
            [RUN],
          )
          return rows.length === 0
        })
        run.child.kill('SIGKILL')
        await run.exited
      })
      // Step 1 is one transaction: it was rolled back whole, and the next run completes.
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(migrationsAfter(M002))
    })
  })

  it('stops a run whose migration lock was lost before its next attempt', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const { connectionString } = location as { connectionString: string }
      await migrateTo(db, M002)
      const runDb = createDb({ connectionString: withApplicationName(connectionString, RUN) })
      try {
        await withSessions(connectionString, async (session) => {
          const observer = await session('x402-test-observer')
          const holder = await session('x402-test-holder')
          await holder.query('BEGIN')
          await holder.query('SELECT count(*) FROM x402_resources')
          const lines: string[] = []
          const run = migrateToLatest(runDb, { lockTimeoutMs: 1000, lockAttempts: 5, retryDelayMs: 0, log: (line) => lines.push(line) }).catch(
            (error: unknown) => error,
          )
          await waitForLockWait(observer, RUN, 'ALTER TABLE x402_resources')
          await terminateLockHolder(observer, MIGRATION_LOCK_KEY)
          const error = await run
          await holder.query('ROLLBACK')
          expect((error as Error).message).toContain('The migration lock was lost')
          expect(lines.filter((line) => line.includes('hit lock_timeout'))).toHaveLength(1)
        })
      } finally {
        await runDb.destroy()
      }
      expect((await migrationStatus(db)).filter((m) => m.appliedAt).at(-1)?.name).toBe(M002)
    })
  })

  it('stops 005 at its next statement when the lock is lost in the middle of it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const { connectionString } = location as { connectionString: string }
      await migrateTo(db, M006)
      await migrateDown(db) // 006
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        const holder = await session('x402-test-holder')
        let held: Promise<unknown> | undefined
        const runDb = createDb({
          connectionString: withApplicationName(connectionString, RUN),
          // A reader queues behind step 1's ACCESS EXCLUSIVE, so that it holds the table from
          // step 1's commit on, and step 3 (DROP INDEX CONCURRENTLY) must wait for it. Sent in
          // one message while step 1 still holds the table: a reader that starts later races
          // steps 2 and 3, and loses on a fast machine.
          onStatement: (text) => {
            if (/DROP CONSTRAINT IF EXISTS x402_resources_openrouter_rollback_check/.test(text)) {
              held ??= holder.query('BEGIN; SELECT count(*) FROM x402_resources')
            }
          },
        })
        try {
          let noticed!: () => void
          const lossLogged = new Promise<void>((resolve) => (noticed = resolve))
          const run = migrateDown(runDb, {
            lockTimeoutMs: 600_000,
            idleTimeoutMs: 1000,
            env: {},
            log: (line) => line.includes('migration lock was lost') && noticed(),
          }).catch((error: unknown) => error)
          await waitForLockWait(observer, RUN, 'DROP INDEX CONCURRENTLY')
          await terminateLockHolder(observer, MIGRATION_LOCK_KEY)
          // A run that ends some other way fails the assertion below instead of hanging here.
          await Promise.race([lossLogged, run])
          await held
          await holder.query('ROLLBACK')
          expect((await run) as Error).toMatchObject({ message: expect.stringContaining('The migration lock was lost') })
        } finally {
          await runDb.destroy()
        }
      })
      // Step 4, which drops the keys table, never ran; the rollback is recorded as interrupted.
      const { rows } = await sql<{ present: boolean }>`SELECT to_regclass('public.user_openrouter_integrations') IS NOT NULL AS present`.execute(db)
      expect(rows).toEqual([{ present: true }])
      await expect(migrateToLatest(db)).rejects.toThrow('npm run migrate:down')
      await migrateDown(db, { env: {} })
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(migrationsAfter(M002))
    })
  })

  it('applies 005 where the database defaults to REPEATABLE READ', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const { connectionString } = location as { connectionString: string }
      await migrateTo(db, M002)
      const name = new URL(connectionString).pathname.slice(1)
      await sql`ALTER DATABASE ${sql.id(name)} SET default_transaction_isolation = 'repeatable read'`.execute(db)
      const fresh = createDb({ connectionString })
      try {
        const { rows } = await sql<{ level: string }>`SELECT current_setting('transaction_isolation') AS level`.execute(fresh)
        expect(rows).toEqual([{ level: 'repeatable read' }])
        expect((await migrateToLatest(fresh, { lockAttempts: 1, lockTimeoutMs: 5000 })).map((result) => result.migrationName)).toEqual(
          migrationsAfter(M002),
        )
      } finally {
        await fresh.destroy()
      }
    })
  })
})
