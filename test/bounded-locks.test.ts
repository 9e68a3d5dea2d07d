import { execFileSync } from 'node:child_process'

import { type Kysely, sql } from 'kysely'
import { afterEach, describe, expect, it, type TestContext } from 'vitest'

import {
  createDb,
  ensureSupabaseStandIn,
  MIGRATION_LOCK_KEY,
  MigrationError,
  migrateDown,
  migrateTo,
  migrateToLatest,
  migrationStatus,
} from '../src/tooling.js'
import {
  ALL_MIGRATIONS,
  MIGRATION_002,
  MIGRATION_005,
  MIGRATION_006,
  migrationsAfter,
  migrationsThrough,
} from './support/migration-names.js'
import { killRunningScripts, startScript } from './support/script-process.js'
import {
  pollUntil,
  recordedMigrations,
  terminateLockHolder,
  waitForLockWait,
  withApplicationName,
  withSessions,
} from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// What a migration run holds is bounded: a stalled client loses its locks after
// MIGRATION_IDLE_TIMEOUT_MS (a few seconds at the defaults, and transaction_timeout on
// PostgreSQL 17), a run that lost the migration lock stops before its next write and records
// nothing, and every transaction of the runner is READ COMMITTED whatever the database's default.
// PostgreSQL only: each needs a second session, a stopped process or a database default.
// A run that must revert 005 starts at 006, so that `migrate:down` (the newest migration) has
// 005 next; what `latest` applies is derived from the list of migrations.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'
const RUN = 'x402-bounded-run'
/** The migration that runs outside a transaction, and builds its index concurrently. */
const CONCURRENT = migrationsAfter(MIGRATION_002)[0]!

afterEach(killRunningScripts)

/** Skips the test on a server older than PostgreSQL 17, which has no transaction_timeout. */
async function skipBelowPostgres17(db: Kysely<any>, context: TestContext): Promise<void> {
  const { rows } = await sql<{
    version: number
  }>`SELECT current_setting('server_version_num')::int AS version`.execute(db)
  const version = rows[0]!.version
  if (version < 170_000)
    context.skip(`transaction_timeout needs PostgreSQL 17; this server is ${version}`)
}

describe.skipIf(skipReason)('bounded locks on postgres', () => {
  // At the default settings: the server ends the stopped client's transaction a few seconds after
  // its last statement (bench/lock-stall.bench.ts measures how long writers wait). Only the lock
  // wait is raised, so that the run waits where the test holds it.
  it('releases ACCESS EXCLUSIVE on x402_resources and the migration lock when the client stalls in 005, at the defaults', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_002)
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        const holder = await session('x402-test-holder')
        await holder.query('BEGIN')
        await holder.query('SELECT count(*) FROM x402_resources')
        const run = startScript('src/cli/migrate.ts', ['latest'], {
          DATABASE_URL: withApplicationName(connectionString, RUN),
          MIGRATION_LOCK_TIMEOUT_MS: '600000',
        })
        await waitForLockWait(observer, RUN, 'ALTER TABLE x402_resources')
        // Stopped while step 1 waits: once the holder lets go, step 1's ALTER TABLE gets ACCESS
        // EXCLUSIVE, and the stopped client never sends the rest of the transaction.
        run.child.kill('SIGSTOP')
        await holder.query('ROLLBACK')
        await pollUntil(
          observer,
          'the stalled run to hold no lock on x402_resources and no advisory lock',
          async () => {
            const { rows } = await observer.query(
              `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE a.datname = current_database() AND a.application_name = $1
               AND (l.relation = 'x402_resources'::regclass OR l.locktype = 'advisory')`,
              [RUN],
            )
            return rows.length === 0
          },
        )
        run.child.kill('SIGKILL')
        await run.exited
      })
      // Step 1 is one transaction: it was rolled back whole, and the next run completes.
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
        migrationsAfter(MIGRATION_002),
      )
    })
  })

  it('stops a run whose migration lock was lost before its next attempt', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_002)
      const runDb = createDb({ connectionString: withApplicationName(connectionString, RUN) })
      try {
        await withSessions(connectionString, async (session) => {
          const observer = await session('x402-test-observer')
          const holder = await session('x402-test-holder')
          await holder.query('BEGIN')
          await holder.query('SELECT count(*) FROM x402_resources')
          const lines: string[] = []
          const run = migrateToLatest(runDb, {
            lockTimeoutMs: 1000,
            lockAttempts: 5,
            retryDelayMs: 0,
            log: (line) => lines.push(line),
          }).catch((error: unknown) => error)
          await waitForLockWait(observer, RUN, 'ALTER TABLE x402_resources')
          await terminateLockHolder(observer, MIGRATION_LOCK_KEY)
          const error = await run
          await holder.query('ROLLBACK')
          expect((error as Error).message).toContain('The migration lock was lost')
          // Whichever attempt the lock session was ended in (a busy machine may reach the
          // second), the run stopped there: no attempt after it timed out and was retried.
          const retried = lines.filter((line) => /hit lock_timeout \(attempt (\d+)/.test(line))
          expect(retried.length).toBeLessThanOrEqual(1)
          expect(retried.filter((line) => !line.includes('(attempt 1 of'))).toEqual([])
        })
      } finally {
        await runDb.destroy()
      }
      expect((await migrationStatus(db)).filter((m) => m.appliedAt).at(-1)?.name).toBe(
        MIGRATION_002,
      )
    })
  })

  it('commits nothing of a transactional migration whose lock session is terminated in the middle of it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_005)
      const runDb = createDb({ connectionString: withApplicationName(connectionString, RUN) })
      try {
        await withSessions(connectionString, async (session) => {
          const observer = await session('x402-test-observer')
          const holder = await session('x402-test-holder')
          // A writer in the middle of its transaction: 008 waits for it to lock x402_resources.
          await holder.query('BEGIN')
          await holder.query('UPDATE x402_resources SET name = name WHERE false')
          const run = migrateToLatest(runDb, { lockTimeoutMs: 600_000 }).catch(
            (error: unknown) => error,
          )
          await waitForLockWait(observer, RUN, 'LOCK TABLE x402_resources')
          await terminateLockHolder(observer, MIGRATION_LOCK_KEY)
          await holder.query('ROLLBACK')
          expect(((await run) as Error).message).toContain('The migration lock was lost')
        })
      } finally {
        await runDb.destroy()
      }
      // The migrations before 008 committed, each in its own transaction; nothing of 008 did.
      const last = '007_openrouter_policies_per_supabase_advice'
      expect((await migrationStatus(db)).filter((m) => m.appliedAt).at(-1)?.name).toBe(last)
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
        migrationsAfter(last),
      )
    })
  })

  it('stops 005 at its next statement when the lock is lost in the middle of it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_006)
      await migrateDown(db) // 006
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        const holder = await session('x402-test-holder')
        let held: Promise<unknown> | undefined
        const runDb = createDb({
          connectionString: withApplicationName(connectionString, RUN),
          // A reader queues behind step 1's ACCESS EXCLUSIVE, so that it holds the table from
          // step 1's commit on, and step 3's DROP INDEX must wait for it. Sent in one message
          // while step 1 still holds the table: a reader that starts later races steps 2 and 3,
          // and loses on a fast machine.
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
          await waitForLockWait(observer, RUN, 'DROP INDEX IF EXISTS')
          await terminateLockHolder(observer, MIGRATION_LOCK_KEY)
          // A run that ends some other way fails the assertion below instead of hanging here.
          await Promise.race([lossLogged, run])
          await held
          await holder.query('ROLLBACK')
          expect((await run) as Error).toMatchObject({
            message: expect.stringContaining('The migration lock was lost'),
          })
        } finally {
          await runDb.destroy()
        }
      })
      // Step 3, which drops the keys table, never committed; the rollback is recorded as
      // interrupted.
      const { rows } = await sql<{
        present: boolean
      }>`SELECT to_regclass('public.user_openrouter_integrations') IS NOT NULL AS present`.execute(
        db,
      )
      expect(rows).toEqual([{ present: true }])
      await expect(migrateToLatest(db)).rejects.toThrow('npm run migrate:down')
      await migrateDown(db, { env: {} })
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
        migrationsAfter(MIGRATION_002),
      )
    })
  })

  // A stale run must not write beside the run that holds the lock now: at the defaults, the
  // heartbeat alone would notice the loss seconds later, after the build finished and the
  // history recorded 005.
  it('stops a run whose lock session is terminated in 005 before its next write, and it records nothing', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_002)
      const runDb = createDb({ connectionString: withApplicationName(connectionString, RUN) })
      try {
        await withSessions(connectionString, async (session) => {
          const observer = await session('x402-test-observer')
          const holder = await session('x402-test-holder')
          // A report's snapshot, which the index build must outwait.
          await holder.query(
            'BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM ai_models',
          )
          const run = migrateToLatest(runDb, { env: {}, log: () => {} }).catch(
            (error: unknown) => error,
          )
          await waitForLockWait(observer, RUN, 'CREATE INDEX CONCURRENTLY')
          await terminateLockHolder(observer, MIGRATION_LOCK_KEY)
          // The build goes on at once, and 005's next write would be its record in the history.
          await holder.query('COMMIT')
          const error = await run
          expect(error).toBeInstanceOf(MigrationError)
          expect((error as Error).message).toContain('The migration lock was lost')
          expect(await recordedMigrations(observer)).toEqual(migrationsThrough(MIGRATION_002))
        })
      } finally {
        await runDb.destroy()
      }
      // The next run, which holds the lock, completes 005 and what follows.
      expect(
        (await migrateToLatest(db, { env: {} })).map((result) => result.migrationName),
      ).toEqual(migrationsAfter(MIGRATION_002))
    })
  })

  // The lock confirmed as 005's last statement ends is not enough: the lock session may die
  // between that answer and the history's INSERT, which runs outside a transaction. Terminated
  // there (synchronously, before the INSERT is sent), the record must not be written.
  it('records nothing when the lock session is terminated just before the history INSERT of 005', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_002)
      let terminated = false
      const runDb = createDb({
        connectionString: withApplicationName(connectionString, RUN),
        onStatement: (text, parameters) => {
          if (
            !terminated &&
            /insert into "x402_migrations"\."kysely_migration"/i.test(text) &&
            parameters[0] === CONCURRENT
          ) {
            terminated = true
            execFileSync('psql', [
              connectionString,
              '-qAtc',
              `SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory'
                 AND granted AND classid = 0 AND objid = ${MIGRATION_LOCK_KEY} AND objsubid = 1
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
            ])
          }
        },
      })
      try {
        const error = await migrateToLatest(runDb, { env: {}, log: () => {} }).catch(
          (caught: unknown) => caught,
        )
        expect(terminated).toBe(true)
        expect(error).toBeInstanceOf(MigrationError)
        // What to do next is said once: the lost lock's own wording gives way to the run's.
        expect((error as Error).message).toMatch(
          new RegExp(
            `^Migration ${CONCURRENT} failed \\(up\\): The migration lock was lost \\(.+\\): another run may hold it by now, ` +
              `so this run stopped before its next write\\. ${CONCURRENT} runs outside a transaction: the steps it finished stay, ` +
              'and another run may have gone on since\\. Run npm run migrate:list to see what is recorded, then run the migrations again\\.$',
          ),
        )
        expect((error as Error).message.match(/migrations again/gi)).toHaveLength(1)
      } finally {
        await runDb.destroy()
      }
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        expect(await recordedMigrations(observer)).toEqual(migrationsThrough(MIGRATION_002))
      })
      expect(
        (await migrateToLatest(db, { env: {} })).map((result) => result.migrationName),
      ).toEqual(migrationsAfter(MIGRATION_002))
    })
  })

  // A run of another version, or one that lost its lock a round trip before its record, may
  // still record a migration that this run applies too: the history's primary key refuses this
  // run's record, and the message must not say that the migration is not recorded.
  it('says so when another run recorded the migration that this run applied', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_002)
      const runDb = createDb({ connectionString: withApplicationName(connectionString, RUN) })
      try {
        await withSessions(connectionString, async (session) => {
          const observer = await session('x402-test-observer')
          const holder = await session('x402-test-holder')
          await holder.query(
            'BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM ai_models',
          )
          const run = migrateToLatest(runDb, { env: {}, log: () => {} }).catch(
            (error: unknown) => error,
          )
          await waitForLockWait(observer, RUN, 'CREATE INDEX CONCURRENTLY')
          await observer.query(
            `INSERT INTO x402_migrations.kysely_migration (name, timestamp) VALUES ($1, now()::text)`,
            [CONCURRENT],
          )
          await holder.query('COMMIT')
          const message = ((await run) as Error).message
          expect(message).not.toContain('not recorded as done')
          expect(message).toContain(
            `Another run recorded ${CONCURRENT} as applied while this run applied it`,
          )
          expect(await recordedMigrations(observer)).toEqual(migrationsThrough(CONCURRENT))
        })
      } finally {
        await runDb.destroy()
      }
    })
  })

  // transaction_timeout (PostgreSQL 17) bounds each transaction of the runner whatever the idle
  // timeout: here the idle timeout is far away, and the stopped client's transaction still ends.
  // 002 waits for a sign-up in progress, as in crash-safety.test.ts.
  it('ends the transaction of a stopped run at MIGRATION_TRANSACTION_TIMEOUT_MS on PostgreSQL 17', async (context) => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await skipBelowPostgres17(db, context)
      const connectionString = serverUrl(location)
      await ensureSupabaseStandIn(db)
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        const holder = await session('x402-test-holder')
        await holder.query('BEGIN; LOCK TABLE auth.users IN ROW EXCLUSIVE MODE')
        const run = startScript('src/cli/migrate.ts', ['latest'], {
          DATABASE_URL: withApplicationName(connectionString, RUN),
          MIGRATION_LOCK_TIMEOUT_MS: '600000',
          MIGRATION_IDLE_TIMEOUT_MS: '600000',
          MIGRATION_TRANSACTION_TIMEOUT_MS: '3000',
        })
        await waitForLockWait(observer, RUN, 'create table "x402_user_claude_configs"')
        run.child.kill('SIGSTOP')
        await holder.query('COMMIT')
        await pollUntil(observer, 'the stopped run to hold no lock on auth.users', async () => {
          const { rows: held } = await observer.query(
            `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE a.datname = current_database() AND a.application_name = $1 AND l.relation = 'auth.users'::regclass`,
            [RUN],
          )
          return held.length === 0
        })
        run.child.kill('SIGKILL')
        await run.exited
      })
      // 000 and 001 committed, each in a transaction of its own; nothing of 002 did.
      expect((await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)).toEqual(
        ALL_MIGRATIONS.slice(0, 3),
      )
    })
  })

  // A shorter transaction_timeout that the database defaults to (PostgreSQL 17) neither ends the
  // lock session, whose transaction lasts the run, nor caps MIGRATION_TRANSACTION_TIMEOUT_MS: the
  // timer is armed at BEGIN from the default, and a larger SET LOCAL after it re-arms nothing.
  it('bounds its transactions by its own settings where the database defaults to a shorter transaction_timeout, on PostgreSQL 17', async (context) => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await skipBelowPostgres17(db, context)
      const connectionString = serverUrl(location)
      await ensureSupabaseStandIn(db)
      const name = new URL(connectionString).pathname.slice(1)
      await sql`ALTER DATABASE ${sql.id(name)} SET transaction_timeout = '1s'`.execute(db)
      await withSessions(connectionString, async (session) => {
        const holder = await session('x402-test-holder')
        // 002 waits 2.5 s for a sign-up in progress, as in crash-safety.test.ts.
        await holder.query('SET transaction_timeout = 0')
        await holder.query('BEGIN; LOCK TABLE auth.users IN ROW EXCLUSIVE MODE')
        const released = new Promise((resolve) => setTimeout(resolve, 2500)).then(() =>
          holder.query('COMMIT'),
        )
        const fresh = createDb({ connectionString })
        try {
          const applied = await migrateToLatest(fresh, {
            lockTimeoutMs: 60_000,
            transactionTimeoutMs: 60_000,
          })
          expect(applied.map((result) => result.migrationName)).toEqual(ALL_MIGRATIONS)
        } finally {
          await released
          await fresh.destroy()
        }
      })
    })
  })

  it('applies 005 where the database defaults to REPEATABLE READ', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_002)
      const name = new URL(connectionString).pathname.slice(1)
      await sql`ALTER DATABASE ${sql.id(name)} SET default_transaction_isolation = 'repeatable read'`.execute(
        db,
      )
      const fresh = createDb({ connectionString })
      try {
        const { rows } = await sql<{
          level: string
        }>`SELECT current_setting('transaction_isolation') AS level`.execute(fresh)
        expect(rows).toEqual([{ level: 'repeatable read' }])
        expect(
          (await migrateToLatest(fresh, { lockAttempts: 1, lockTimeoutMs: 5000 })).map(
            (result) => result.migrationName,
          ),
        ).toEqual(migrationsAfter(MIGRATION_002))
      } finally {
        await fresh.destroy()
      }
    })
  })
})
