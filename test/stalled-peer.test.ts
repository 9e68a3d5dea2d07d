import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateTo } from '../src/tooling.js'
import { cli } from './support/cli.js'
import { stallingProxy } from './support/stalling-proxy.js'
import { withTestDatabase } from './support/test-database.js'

// Issue 13 #5: "the pg client gets a query timeout above the statement timeout, so that a dead
// peer cannot hang a command". A proxy that stops forwarding (and keeps its sockets open) while
// a statement of 005 is in flight.
//
// Every connection stalled, while 005's CREATE INDEX CONCURRENTLY (statement_timeout lifted) is
// in flight: the heartbeat finds the lock session unanswered, the run cuts its connections, and
// the command exits with an error instead of waiting for ever. (It used to log that the lock was
// lost and hang.)
//
// Only the migration connection stalled, while the lock session goes on answering: the server
// finished the statement (or ended the session) and the answer never arrives. The heartbeat
// reads the migration backend's state and ends the run. (It used to hang until the 60 s kill.)

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

/** What `migrate:up` through a stalling proxy printed, how it exited, and whether the stall began. */
interface StalledRun {
  code: number
  stdout: string
  stderr: string
  output: string
  stalled: boolean
}

/**
 * On a new server database migrated to `from`: runs `migrate:up` through a proxy that stalls at
 * `stallAt` (every connection, or only the one that sent it), with `env` over
 * MIGRATION_IDLE_TIMEOUT_MS=3000, while `beside` runs on the test's own connection; then hands
 * the run to `inspect`, and, without the proxy, checks that `latest` (unless `recovered` says the
 * run finished) and `check` pass: nothing was left half done.
 */
async function upThroughStall(options: {
  from: string
  stallAt: string
  scope?: 'all' | 'connection'
  env?: NodeJS.ProcessEnv
  beside?: (db: Kysely<any>, stalled: () => boolean) => Promise<void>
  inspect: (run: StalledRun, db: Kysely<any>) => Promise<void> | void
  afterwards?: 'latest and check' | 'check' | 'nothing'
}): Promise<void> {
  await withTestDatabase('postgres', async ({ db, location }) => {
    await migrateTo(db, options.from)
    const url = new URL((location as { connectionString: string }).connectionString)
    const proxy = await stallingProxy(url, options.stallAt, options.scope ?? 'connection')
    try {
      // cli() kills the command after 60 s: a hang shows as a null exit code.
      const running = cli(['up'], { DATABASE_URL: proxy.url(url), MIGRATION_IDLE_TIMEOUT_MS: '3000', ...options.env })
      await options.beside?.(db, () => proxy.stalled())
      const { code, stdout, stderr } = await running
      await options.inspect({ code, stdout, stderr, output: `${stdout}\n${stderr}`, stalled: proxy.stalled() }, db)
    } finally {
      await proxy.close()
    }
    const afterwards = options.afterwards ?? 'latest and check'
    if (afterwards === 'nothing') return
    const env = { DATABASE_URL: url.toString(), MIGRATION_IDLE_TIMEOUT_MS: '3000' }
    if (afterwards === 'latest and check') {
      const latest = await cli(['latest'], env)
      expect({ code: latest.code, stderr: latest.stderr }).toEqual({ code: 0, stderr: expect.any(String) })
    }
    const check = await cli(['check'], env)
    expect({ code: check.code, stdout: check.stdout, stderr: check.stderr }).toEqual({ code: 0, stdout: expect.any(String), stderr: expect.any(String) })
  })
}

describe.skipIf(skipReason)('a peer that stops answering in the middle of a migration', () => {
  it('ends the command with an error naming the lost lock, instead of hanging', async () => {
    await upThroughStall({
      from: '002_add_claude_integration',
      stallAt: 'CREATE INDEX CONCURRENTLY',
      scope: 'all',
      env: { MIGRATION_IDLE_TIMEOUT_MS: '2000' },
      inspect: ({ code, output, stalled }) => {
        expect(stalled).toBe(true)
        expect({ code, lost: /migration lock was lost/.test(output) }).toEqual({ code: 1, lost: true })
      },
      afterwards: 'nothing',
    })
  }, 90_000)

  it.each([
    // The server finishes the build and the backend goes idle; no server timeout applies.
    ['step 3, CREATE INDEX CONCURRENTLY (statement_timeout lifted)', 'CREATE INDEX CONCURRENTLY'],
    // ACCESS EXCLUSIVE on x402_resources, idle in transaction until the server's idle timeout
    // ends the session.
    ['step 1, the ALTER TABLE of x402_resources', 'ADD CONSTRAINT x402_resources_resource_type_check'],
  ])('ends the command when only the migration connection stalls in %s, and the next run completes', async (_step, stallAt) => {
    await upThroughStall({
      from: '002_add_claude_integration',
      stallAt,
      inspect: async ({ code, output, stalled }, db) => {
        expect(stalled).toBe(true)
        expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(/migration connection .*stopped answering/) })
        expect(output).toMatch(/Run the migrations again/)
        // No lock is left on the table: a write goes through (the server's own idle timeout
        // bounds how long a transaction that was open can wait), and then no other session holds one.
        await db.transaction().execute(async (trx) => {
          await sql`SET LOCAL lock_timeout = '20s'`.execute(trx)
          await sql`UPDATE x402_resources SET name = name WHERE false`.execute(trx)
        })
        // Client sessions only: autovacuum may be at work on the table just changed (seen under load).
        const { rows } = await sql<{ pid: number; mode: string; granted: boolean; query: string }>`
          SELECT l.pid, l.mode, l.granted, a.query FROM pg_locks l JOIN pg_stat_activity a USING (pid)
          WHERE l.relation = to_regclass('public.x402_resources') AND l.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
        `.execute(db)
        expect(rows).toEqual([])
      },
    })
  }, 150_000)

  // Review r3: the watch saw only the statements the migration's Kysely instance sends, not the
  // COMMIT that Kysely's driver sends to end a transaction. The server commits, the answer is
  // lost, and the run waited for ever with the lock held (the heartbeat kept it alive). The
  // pattern is the simple-query message of a lowercase "commit", which only Kysely's driver sends
  // ("read committed" and the lock session's "COMMIT" do not match it).
  it.each([
    // 006, a transactional block: the runner's own transaction.
    ['the COMMIT of a transactional block (006)', '005_add_openrouter_integration'],
    // 005, outside a transaction: the COMMIT of step 1, a transaction 005 opens itself.
    ['the COMMIT of a transaction that 005 opens itself (step 1)', '002_add_claude_integration'],
  ])('ends the command when only the migration connection stalls at %s, and the next run completes', async (_what, from) => {
    await upThroughStall({
      from,
      stallAt: 'commit\u0000',
      inspect: ({ code, output, stalled }) => {
        expect(stalled).toBe(true)
        expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(/migration connection .*stopped answering/) })
      },
    })
  }, 150_000)

  // Review r3: the lock session's own COMMIT, once every migration is done, was sent without a
  // bound: a stall there hung the command for ever. The server commits (the lock goes with it),
  // so the run is done: it cuts the connection and reports what it applied.
  it('finishes the command when the lock session stalls at its final COMMIT', async () => {
    await upThroughStall({
      from: '005_add_openrouter_integration',
      stallAt: 'COMMIT\u0000',
      inspect: ({ code, stderr, output, stalled }) => {
        expect(stalled).toBe(true)
        expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) })
        expect(output).toMatch(/006_rename_to_production_names/)
      },
      afterwards: 'check',
    })
  }, 150_000)

  // Review r3: the runner samples what blocks the migration on another connection of the pool,
  // and waits for the last sample when the block ends, without a bound: a stall of that
  // connection alone hung the command for ever, however the migration went. A lock held by
  // another session makes 005 wait, so that the sampler runs (and stalls) while it waits.
  it('ends the command when only the connection that samples the blockers stalls', async () => {
    await upThroughStall({
      from: '002_add_claude_integration',
      stallAt: 'pg_blocking_pids',
      env: { MIGRATION_LOCK_TIMEOUT_MS: '10000' },
      beside: (db, stalled) =>
        db.transaction().execute(async (trx) => {
          await sql`LOCK TABLE x402_resources IN ACCESS SHARE MODE`.execute(trx)
          while (!stalled()) await new Promise((resolve) => setTimeout(resolve, 50))
        }),
      inspect: ({ code, output }) => {
        expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(/did not answer the query that samples what blocks the migration/) })
      },
    })
  }, 150_000)

  // Review r3: the run's own statements on other connections of the pool (the history reads,
  // the Supabase stand-in, the checksums it records after the migrations) were neither watched
  // nor bounded: a stall of one of them hung the command for ever, with the migration lock held.
  // Here, the INSERT of 006's checksum, once 006 has committed.
  it('ends the command when a connection stalls at the checksums recorded after the migrations', async () => {
    await upThroughStall({
      from: '005_add_openrouter_integration',
      stallAt: 'INSERT INTO x402_migrations.migration_checksum',
      inspect: ({ code, output, stalled }) => {
        expect(stalled).toBe(true)
        expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(/did not answer|stopped answering/) })
      },
    })
  }, 150_000)

  it('ends the command when the server ends the stalled migration session and the client never hears of it', async () => {
    await upThroughStall({
      from: '002_add_claude_integration',
      stallAt: 'ADD CONSTRAINT x402_resources_resource_type_check',
      // The session is terminated as soon as it is idle, long before the watch would take an
      // idle session for a lost answer (at least 5 s).
      env: { MIGRATION_IDLE_TIMEOUT_MS: '6000' },
      beside: async (db) => {
        let terminated = 0
        while (terminated === 0) {
          await new Promise((resolve) => setTimeout(resolve, 100))
          const { rows } = await sql<{ terminated: number }>`
            SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS terminated FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle%'
              AND query LIKE '%ADD CONSTRAINT x402_resources_resource_type_check%'
          `.execute(db)
          terminated = rows[0]!.terminated
        }
      },
      inspect: ({ code, output }) => {
        expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(/has ended that session, but the answer never arrived/) })
      },
    })
  }, 150_000)
})
