import { sql } from 'kysely'
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

describe.skipIf(skipReason)('a peer that stops answering in the middle of a migration', () => {
  it('ends the command with an error naming the lost lock, instead of hanging', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, '002_add_claude_integration')
      const url = new URL((location as { connectionString: string }).connectionString)
      const proxy = await stallingProxy(url, 'CREATE INDEX CONCURRENTLY', 'all')
      try {
        // cli() kills the command after 60 s: a hang shows as a null exit code.
        const { code, stdout, stderr } = await cli(['up'], {
          DATABASE_URL: proxy.url(url),
          MIGRATION_IDLE_TIMEOUT_MS: '2000',
        })
        expect(proxy.stalled()).toBe(true)
        expect({ code, lost: /migration lock was lost/.test(`${stdout}\n${stderr}`) }).toEqual({ code: 1, lost: true })
      } finally {
        await proxy.close()
      }
    })
  }, 90_000)

  it.each([
    // The server finishes the build and the backend goes idle; no server timeout applies.
    ['step 3, CREATE INDEX CONCURRENTLY (statement_timeout lifted)', 'CREATE INDEX CONCURRENTLY'],
    // ACCESS EXCLUSIVE on x402_resources, idle in transaction until the server's idle timeout
    // ends the session.
    ['step 1, the ALTER TABLE of x402_resources', 'ADD CONSTRAINT x402_resources_resource_type_check'],
  ])('ends the command when only the migration connection stalls in %s, and the next run completes', async (_step, stallAt) => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, '002_add_claude_integration')
      const url = new URL((location as { connectionString: string }).connectionString)
      const proxy = await stallingProxy(url, stallAt, 'connection')
      try {
        const { code, stdout, stderr } = await cli(['up'], {
          DATABASE_URL: proxy.url(url),
          MIGRATION_IDLE_TIMEOUT_MS: '3000',
        })
        const output = `${stdout}\n${stderr}`
        expect(proxy.stalled()).toBe(true)
        expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(/migration connection .*stopped answering/) })
        expect(output).toMatch(/Run the migrations again/)
      } finally {
        await proxy.close()
      }
      // No lock is left on the table: a write goes through (the server's own idle timeout bounds
      // how long a transaction that was open can wait), and then no other session holds one.
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
      const env = { DATABASE_URL: url.toString(), MIGRATION_IDLE_TIMEOUT_MS: '3000' }
      const latest = await cli(['latest'], env)
      expect({ code: latest.code, stderr: latest.stderr }).toEqual({ code: 0, stderr: expect.any(String) })
      const check = await cli(['check'], env)
      expect({ code: check.code, stdout: check.stdout, stderr: check.stderr }).toEqual({ code: 0, stdout: expect.any(String), stderr: expect.any(String) })
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
    ["the COMMIT of a transaction that 005 opens itself (step 1)", '002_add_claude_integration'],
  ])('ends the command when only the migration connection stalls at %s, and the next run completes', async (_what, from) => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, from)
      const url = new URL((location as { connectionString: string }).connectionString)
      const proxy = await stallingProxy(url, 'commit\u0000', 'connection')
      try {
        const { code, stdout, stderr } = await cli(['up'], { DATABASE_URL: proxy.url(url), MIGRATION_IDLE_TIMEOUT_MS: '3000' })
        expect(proxy.stalled()).toBe(true)
        expect({ code, output: `${stdout}\n${stderr}` }).toEqual({ code: 1, output: expect.stringMatching(/migration connection .*stopped answering/) })
      } finally {
        await proxy.close()
      }
      const env = { DATABASE_URL: url.toString(), MIGRATION_IDLE_TIMEOUT_MS: '3000' }
      expect((await cli(['latest'], env)).code).toBe(0)
      expect((await cli(['check'], env)).code).toBe(0)
    })
  }, 150_000)

  // Review r3: the lock session's own COMMIT, once every migration is done, was sent without a
  // bound: a stall there hung the command for ever. The server commits (the lock goes with it),
  // so the run is done: it cuts the connection and reports what it applied.
  it('finishes the command when the lock session stalls at its final COMMIT', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, '005_add_openrouter_integration')
      const url = new URL((location as { connectionString: string }).connectionString)
      const proxy = await stallingProxy(url, 'COMMIT\u0000', 'connection')
      try {
        const { code, stdout, stderr } = await cli(['up'], { DATABASE_URL: proxy.url(url), MIGRATION_IDLE_TIMEOUT_MS: '3000' })
        expect(proxy.stalled()).toBe(true)
        expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) })
        expect(`${stdout}\n${stderr}`).toMatch(/006_openrouter_policies_per_supabase_advice/)
      } finally {
        await proxy.close()
      }
      expect((await cli(['check'], { DATABASE_URL: url.toString() })).code).toBe(0)
    })
  }, 150_000)

  // Review r3: the runner samples what blocks the migration on another connection of the pool,
  // and waits for the last sample when the block ends, without a bound: a stall of that
  // connection alone hung the command for ever, however the migration went. A lock held by
  // another session makes 005 wait, so that the sampler runs (and stalls) while it waits.
  it('ends the command when only the connection that samples the blockers stalls', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, '002_add_claude_integration')
      const url = new URL((location as { connectionString: string }).connectionString)
      const proxy = await stallingProxy(url, 'pg_blocking_pids', 'connection')
      try {
        const run = cli(['up'], { DATABASE_URL: proxy.url(url), MIGRATION_IDLE_TIMEOUT_MS: '3000', MIGRATION_LOCK_TIMEOUT_MS: '10000' })
        await db.transaction().execute(async (trx) => {
          await sql`LOCK TABLE x402_resources IN ACCESS SHARE MODE`.execute(trx)
          while (!proxy.stalled()) await new Promise((resolve) => setTimeout(resolve, 50))
        })
        const { code, stdout, stderr } = await run
        expect({ code, output: `${stdout}\n${stderr}` }).toEqual({ code: 1, output: expect.stringMatching(/did not answer the query that samples what blocks the migration/) })
      } finally {
        await proxy.close()
      }
      const env = { DATABASE_URL: url.toString() }
      expect((await cli(['latest'], env)).code).toBe(0)
      expect((await cli(['check'], env)).code).toBe(0)
    })
  }, 150_000)

  // Review r3: the run's own statements on other connections of the pool (the history reads,
  // the Supabase stand-in, the checksums it records after the migrations) were neither watched
  // nor bounded: a stall of one of them hung the command for ever, with the migration lock held.
  // Here, the INSERT of 006's checksum, once 006 has committed.
  it('ends the command when a connection stalls at the checksums recorded after the migrations', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, '005_add_openrouter_integration')
      const url = new URL((location as { connectionString: string }).connectionString)
      const proxy = await stallingProxy(url, 'INSERT INTO x402_migrations.migration_checksum', 'connection')
      try {
        const { code, stdout, stderr } = await cli(['up'], { DATABASE_URL: proxy.url(url), MIGRATION_IDLE_TIMEOUT_MS: '3000' })
        expect(proxy.stalled()).toBe(true)
        expect({ code, output: `${stdout}\n${stderr}` }).toEqual({ code: 1, output: expect.stringMatching(/did not answer|stopped answering/) })
      } finally {
        await proxy.close()
      }
      const env = { DATABASE_URL: url.toString() }
      expect((await cli(['latest'], env)).code).toBe(0)
      expect((await cli(['check'], env)).code).toBe(0)
    })
  }, 150_000)

  it('ends the command when the server ends the stalled migration session and the client never hears of it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, '002_add_claude_integration')
      const url = new URL((location as { connectionString: string }).connectionString)
      const proxy = await stallingProxy(url, 'ADD CONSTRAINT x402_resources_resource_type_check', 'connection')
      try {
        // The session is terminated as soon as it is idle, long before the watch would take an
        // idle session for a lost answer (a heartbeat, 2 s, and a second more).
        const run = cli(['up'], { DATABASE_URL: proxy.url(url), MIGRATION_IDLE_TIMEOUT_MS: '6000' })
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
        const { code, stdout, stderr } = await run
        expect({ code, output: `${stdout}\n${stderr}` }).toEqual({ code: 1, output: expect.stringMatching(/has ended that session, but the answer never arrived/) })
      } finally {
        await proxy.close()
      }
      const env = { DATABASE_URL: url.toString() }
      expect((await cli(['latest'], env)).code).toBe(0)
      expect((await cli(['check'], env)).code).toBe(0)
    })
  }, 150_000)
})
