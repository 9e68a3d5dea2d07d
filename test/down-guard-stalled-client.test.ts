import { type Kysely, sql } from 'kysely'
import type pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'

import { migrateToLatest, migrationStatus } from '../src/tooling.js'
import { MIGRATION_008 } from './support/migration-names.js'
import { killRunningScripts, type ScriptProcess, startScript } from './support/script-process.js'
import { pollUntil, withApplicationName, withSessions } from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// The data-loss guard of a down compares the catalog before and after a rehearsal of the down,
// while the rehearsal's locks are held: 008's down holds ACCESS EXCLUSIVE on x402_resources. A
// client stopped (SIGSTOP, a frozen VM) while the server sends it a result larger than the two
// sockets hold leaves its backend blocked in ClientWrite, state active: the idle timeout never
// starts, and PostgreSQL handles neither statement_timeout nor transaction_timeout there
// (review revg F6). Writers must still get through at the run's idle bound, whatever the size of
// the app's schema. PostgreSQL only: it needs a stopped process and a second session.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'
const RUN = 'x402-stalled-guard'
const READER = 'x402-stalled-reader'
/**
 * An app schema whose catalog of columns (about 8 MB as the guard read it, one row per column)
 * is larger than what loopback sockets hold in flight: at 60 partitions the stopped client's
 * sockets still took it whole, and the idle timeout ended its transaction.
 */
const PARTITIONS = 100
const COLUMNS = 1000
/** How long the first case waits to see the guard at work, and the most it may take in all. */
const GUARD_POLL_MS = 90_000
const FIRST_CASE_TIMEOUT_MS = 400_000

afterEach(killRunningScripts)

describe.skipIf(skipReason)('a down whose client stops while its guard compares catalogs', () => {
  it(
    'leaves no lock on x402_resources that blocks writers for as long as the client stays stopped',
    async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        const connectionString = serverUrl(location)
        await migrateToLatest(db)
        // A partitioned log table of the app: each partition repeats every column in the catalog.
        // Column names of PostgreSQL's longest (63 bytes) make the most of each row of the catalog.
        await sql
          .raw(
            `CREATE SCHEMA app_logs;
          DO $$ BEGIN
            EXECUTE format('CREATE TABLE app_logs.events (part int, %s) PARTITION BY LIST (part)',
              (SELECT string_agg(format('%I text', rpad('column_' || j || '_', 63, 'x')), ', ')
                 FROM generate_series(1, ${COLUMNS}) j));
            FOR i IN 1..${PARTITIONS} LOOP
              EXECUTE format('CREATE TABLE app_logs.%I PARTITION OF app_logs.events FOR VALUES IN (%s)', 'events_' || i, i);
            END LOOP;
          END $$`,
          )
          .execute(db)
        await withSessions(connectionString, async (session) => {
          const observer = await session('x402-test-observer')
          const writer = await session('x402-test-writer')
          const { run, pid } = await stopUnderTheGuardsLock(connectionString, observer, db)
          // An app's write: it waits behind the stopped run for no longer than the server's bounds
          // of that run allow (5 s idle at the defaults). Its lock_timeout, far above, turns a run
          // that keeps the lock into a clear failure (55P03) rather than the test's timeout.
          await writer.query(`SET lock_timeout = '60s'`)
          await writer.query(
            `INSERT INTO x402_resources (name, resource_url, normalized_url, network, pay_to)
           VALUES ('stalled', 'https://api.example.test/stalled', 'api.example.test/stalled', 'base',
                   '0x000000000000000000000000000000000000dEaD')`,
          )
          await sessionEnded(observer, pid)
          await run.kill()
        })
        // Nothing of the down was committed.
        expect(
          (await migrationStatus(db)).find((m) => m.name === MIGRATION_008)?.appliedAt,
        ).toBeTruthy()
      })
    },
    FIRST_CASE_TIMEOUT_MS,
  )

  // The second line: whatever a run's session reads under a lock, a client that stops taking it
  // is dropped by the server's kernel (tcp_user_timeout, PostgreSQL 12 and later; Linux applies
  // it to the probes of a zero window, which a stopped process's kernel answers), and its locks
  // go with it. The reader's idle timeout is far away: only tcp_user_timeout ends it.
  it("drops a run's session whose client stopped while reading a large result under a lock", async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await sql`CREATE TABLE held (i int)`.execute(db)
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        const writer = await session('x402-test-writer')
        const reader = startScript(
          'test/support/large-result-reader.ts',
          [withApplicationName(connectionString, READER), 'public.held', '64'],
          {},
        )
        await reader.lineOn('stdout', 'locked')
        const pid = await pollUntil(observer, 'the reader blocked on its result', async () => {
          const { rows } = await observer.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = $1 AND wait_event = 'ClientWrite'`,
            [READER],
          )
          if (rows[0]) reader.child.kill('SIGSTOP')
          return rows[0]?.pid
        })
        await writer.query('INSERT INTO held VALUES (1)')
        await sessionEnded(observer, pid)
        await reader.kill()
      })
    })
  })
})

/**
 * Starts `migrate:down` and stops its process (SIGSTOP) at the moment its backend holds ACCESS
 * EXCLUSIVE on x402_resources (the rehearsal of 008's down) and compares the catalog. The guard's
 * comparison is short now that it runs on the server: a stop sent just as it ends can land after
 * the rehearsal released the lock, where writers pass and nothing would be tested. Where the lock
 * is no longer held once the process stopped, the run goes on to its end, 008 is applied again,
 * and the stop is tried anew.
 */
async function stopUnderTheGuardsLock(
  connectionString: string,
  observer: pg.Client,
  db: Kysely<any>,
): Promise<{ run: ScriptProcess; pid: number }> {
  const underTheLock = `SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
    WHERE a.datname = current_database() AND a.application_name = $1
      AND l.relation = 'public.x402_resources'::regclass AND l.mode = 'AccessExclusiveLock' AND l.granted`
  for (let attempt = 1; ; attempt++) {
    // The run's tcp_user_timeout, its second line, out of the way: it ends a stopped client's
    // session too, and would hide a guard that reads the catalog to the client again (revj J6).
    const run = startScript('src/cli/migrate.ts', ['down'], {
      DATABASE_URL: withApplicationName(connectionString, RUN),
      MIGRATION_TCP_USER_TIMEOUT_MS: '2147483647',
    })
    // Noting a catalog of 100,000 columns takes its time on two busy cores: seen over 30 s.
    const pid = await pollUntil(
      observer,
      'the guard comparing the catalog under 008',
      async () => {
        const { rows } = await observer.query<{ pid: number }>(
          `${underTheLock} AND a.state = 'active' AND strpos(a.query, 'attisdropped') > 0`,
          [RUN],
        )
        if (rows[0]) run.child.kill('SIGSTOP')
        return rows[0]?.pid
      },
      GUARD_POLL_MS,
    )
    const { rowCount } = await observer.query(`${underTheLock} AND a.pid = $2`, [RUN, pid])
    if (rowCount) return { run, pid }
    if (attempt === 5)
      throw new Error('Five stops of the run all landed after the guard released its lock')
    run.child.kill('SIGCONT')
    expect((await run.exited).code).toBe(0)
    await migrateToLatest(db)
  }
}

/**
 * Waits until the backend `pid` has left pg_stat_activity. A writer that went through because the
 * server ended a stopped client's session wakes while that backend still exits: it clears its
 * weak locks kept beside the lock table (fast-path AccessShare, RowExclusive) and its entry a
 * moment later (CI saw them, on PostgreSQL 17, right after the write).
 */
async function sessionEnded(observer: pg.Client, pid: number): Promise<void> {
  await pollUntil(observer, `the end of the session of backend ${pid}`, async () => {
    const { rowCount } = await observer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [
      pid,
    ])
    return rowCount === 0
  })
}
