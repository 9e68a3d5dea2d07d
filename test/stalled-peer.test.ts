import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateTo } from '../src/tooling.js'
import { cli } from './support/cli.js'
import { stallingProxy } from './support/stalling-proxy.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// A proxy that stops forwarding, in both directions, and keeps its sockets open: a peer that
// stopped answering, which no server setting and no TCP keepalive can see. The client's own
// bound is node-postgres's query_timeout (5 minutes by default; the URL's query_timeout
// parameter sets it, here to QUERY_TIMEOUT_MS): whatever statement of the run stalls, every
// connection, one migration connection, a COMMIT, the lock session, the sampler of blockers or
// the run's own bookkeeping, the command ends instead of hanging, says that the database did not
// answer, and leaves nothing half done: the server's idle timeout ends what the stalled
// connection held, and the next run completes.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

/** How long the run's client waits for an answer, in ms: short, for a test. */
const QUERY_TIMEOUT_MS = 5_000

/** What the command says when an answer did not come. */
const UNANSWERED = new RegExp(`did not answer within ${QUERY_TIMEOUT_MS} ms`)

/** `url` (the proxy's) with the client's bound on each answer. */
function withQueryTimeout(url: string): string {
  const bounded = new URL(url)
  bounded.searchParams.set('query_timeout', String(QUERY_TIMEOUT_MS))
  return bounded.toString()
}

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
 * `stallAt` (every connection, or only the one that sent it), with query_timeout QUERY_TIMEOUT_MS
 * and `env` over MIGRATION_IDLE_TIMEOUT_MS=3000, while `beside` runs on the test's own connection; then hands
 * the run to `inspect`, and, without the proxy, checks that `latest` (unless `recovered` says the
 * run finished) and `check` pass: nothing was left half done.
 */
async function upThroughStall(options: {
  from: string
  stallAt: string
  scope?: 'all' | 'connection'
  armedBy?: string
  env?: NodeJS.ProcessEnv
  beside?: (db: Kysely<any>, stalled: () => boolean) => Promise<void>
  inspect: (run: StalledRun, db: Kysely<any>) => Promise<void> | void
  afterwards?: 'latest and check' | 'check' | 'nothing'
}): Promise<void> {
  await withTestDatabase('postgres', async ({ db, location }) => {
    await migrateTo(db, options.from)
    const url = new URL(serverUrl(location))
    const proxy = await stallingProxy(
      url,
      options.stallAt,
      options.scope ?? 'connection',
      options.armedBy,
    )
    try {
      // cli() kills the command after 60 s: a hang shows as a null exit code.
      const running = cli(['up'], {
        DATABASE_URL: withQueryTimeout(proxy.url(url)),
        MIGRATION_IDLE_TIMEOUT_MS: '3000',
        ...options.env,
      })
      await options.beside?.(db, () => proxy.stalled())
      const { code, stdout, stderr } = await running
      await options.inspect(
        { code, stdout, stderr, output: `${stdout}\n${stderr}`, stalled: proxy.stalled() },
        db,
      )
    } finally {
      await proxy.close()
    }
    const afterwards = options.afterwards ?? 'latest and check'
    if (afterwards === 'nothing') return
    const env = { DATABASE_URL: url.toString(), MIGRATION_IDLE_TIMEOUT_MS: '3000' }
    if (afterwards === 'latest and check') {
      const latest = await cli(['latest'], env)
      expect({ code: latest.code, stderr: latest.stderr }).toEqual({
        code: 0,
        stderr: expect.any(String),
      })
    }
    const check = await cli(['check'], env)
    expect({ code: check.code, stdout: check.stdout, stderr: check.stderr }).toEqual({
      code: 0,
      stdout: expect.any(String),
      stderr: expect.any(String),
    })
  })
}

describe.skipIf(skipReason)('a peer that stops answering in the middle of a migration', () => {
  it('ends the command with an error, instead of hanging, when every connection stalls', async () => {
    await upThroughStall({
      from: '002_add_claude_integration',
      stallAt: 'CREATE INDEX CONCURRENTLY',
      scope: 'all',
      env: { MIGRATION_IDLE_TIMEOUT_MS: '2000' },
      inspect: ({ code, output, stalled }) => {
        expect(stalled).toBe(true)
        expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(UNANSWERED) })
      },
      afterwards: 'nothing',
    })
  }, 90_000)

  it.each([
    // The server finishes the build and the backend goes idle; no server timeout applies.
    ['step 3, CREATE INDEX CONCURRENTLY (statement_timeout lifted)', 'CREATE INDEX CONCURRENTLY'],
    // ACCESS EXCLUSIVE on x402_resources, idle in transaction until the server's idle timeout
    // ends the session.
    [
      'step 1, the ALTER TABLE of x402_resources',
      'ADD CONSTRAINT x402_resources_resource_type_check',
    ],
  ])(
    'ends the command when only the migration connection stalls in %s, and the next run completes',
    async (_step, stallAt) => {
      await upThroughStall({
        from: '002_add_claude_integration',
        stallAt,
        inspect: async ({ code, output, stalled }, db) => {
          expect(stalled).toBe(true)
          expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(UNANSWERED) })
          expect(output).toMatch(/run the migrations again/)
          // No lock is left on the table: a write goes through (the server's own idle timeout
          // bounds how long a transaction that was open can wait), and then no other session holds one.
          await db.transaction().execute(async (trx) => {
            await sql`SET LOCAL lock_timeout = '20s'`.execute(trx)
            await sql`UPDATE x402_resources SET name = name WHERE false`.execute(trx)
          })
          // Client sessions only: autovacuum may be at work on the table just changed (seen under load).
          const { rows } = await sql<{
            pid: number
            mode: string
            granted: boolean
            query: string
          }>`
          SELECT l.pid, l.mode, l.granted, a.query FROM pg_locks l JOIN pg_stat_activity a USING (pid)
          WHERE l.relation = to_regclass('public.x402_resources') AND l.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
        `.execute(db)
          expect(rows).toEqual([])
        },
      })
    },
    150_000,
  )

  // The COMMIT that Kysely's driver sends to end a transaction: the server commits, and the
  // answer is lost. The pattern is the simple-query message of a lowercase "commit", which only
  // Kysely's driver sends ("read committed" and the lock session's "COMMIT" do not match it),
  // on the connection that sent a statement of the migration first.
  it.each([
    // 006, a transactional block: the runner's own transaction. Only the server knows whether
    // it committed, and the run says so.
    [
      'the COMMIT of a transactional block (006)',
      '005_add_openrouter_integration',
      'RENAME TO x402_openrouter_models',
      /The server may have committed it or rolled it back/,
    ],
    // 005, outside a transaction: the COMMIT of step 1, a transaction 005 opens itself.
    [
      'the COMMIT of a transaction that 005 opens itself (step 1)',
      '002_add_claude_integration',
      'ADD CONSTRAINT x402_resources_resource_type_check',
      /runs outside a transaction/,
    ],
  ])(
    'ends the command when only the migration connection stalls at %s, and the next run completes',
    async (_what, from, armedBy, outcome) => {
      await upThroughStall({
        from,
        stallAt: 'commit\u0000',
        armedBy,
        inspect: ({ code, output, stalled }) => {
          expect(stalled).toBe(true)
          expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(UNANSWERED) })
          expect(output).toMatch(outcome)
        },
      })
    },
    150_000,
  )

  // The lock session's own COMMIT, once every migration is done: the lock transaction writes
  // nothing, so the run is done whatever became of it, and reports what it applied.
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

  // The runner samples what blocks the migration on another connection of the pool, and waits
  // for the last sample when the block ends. A lock held by another session makes 005 wait, so
  // that the sampler runs (and stalls) while it waits. The sample is only there to name a
  // blocker: its stall costs the run nothing, and the pool drops the stalled connection.
  it('finishes the command when only the connection that samples the blockers stalls', async () => {
    await upThroughStall({
      from: '002_add_claude_integration',
      stallAt: 'pg_blocking_pids',
      env: { MIGRATION_LOCK_TIMEOUT_MS: '10000' },
      beside: (db, stalled) =>
        db.transaction().execute(async (trx) => {
          await sql`LOCK TABLE x402_resources IN ACCESS SHARE MODE`.execute(trx)
          while (!stalled()) await new Promise((resolve) => setTimeout(resolve, 50))
        }),
      inspect: ({ code, stderr, stalled }) => {
        expect(stalled).toBe(true)
        expect({ code, stderr }).toEqual({
          code: 0,
          stderr: expect.stringContaining('applied  005_add_openrouter_integration'),
        })
      },
    })
  }, 150_000)

  // The run's own statements on other connections of the pool (the history reads, the Supabase
  // stand-in, the checksums it records after the migrations). Here, the INSERT of 006's
  // checksum, once 006 has committed.
  it('ends the command when a connection stalls at the checksums recorded after the migrations', async () => {
    await upThroughStall({
      from: '005_add_openrouter_integration',
      stallAt: 'INSERT INTO x402_migrations.migration_checksum',
      inspect: ({ code, output, stalled }) => {
        expect(stalled).toBe(true)
        expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(UNANSWERED) })
      },
    })
  }, 150_000)

  it('ends the command when the server ends the stalled migration session and the client never hears of it', async () => {
    await upThroughStall({
      from: '002_add_claude_integration',
      stallAt: 'ADD CONSTRAINT x402_resources_resource_type_check',
      // Terminated as soon as it is idle, before the server's own idle timeout would end it.
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
        expect({ code, output }).toEqual({ code: 1, output: expect.stringMatching(UNANSWERED) })
      },
    })
  }, 150_000)
})
