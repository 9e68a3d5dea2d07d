import { setTimeout as sleep } from 'node:timers/promises'

import pg from 'pg'

/**
 * Sessions of a test on a PostgreSQL database, and what they see of the others in
 * pg_stat_activity and pg_locks: the means to stop a migration at a chosen statement (hold a
 * lock it needs, wait until it queues) instead of guessing with sleeps.
 */

/** The longest a poll waits for a state before the test fails saying which state it awaited. */
const POLL_LIMIT_MS = 30_000

/**
 * Opens a session of its own on `connectionString`, shown as `applicationName` in
 * pg_stat_activity. End it with `client.end()`.
 *
 * @example
 * ```ts
 * const holder = await openSession(url)
 * await holder.query('BEGIN; LOCK TABLE x402_resources IN ACCESS SHARE MODE')
 * ```
 */
export async function openSession(
  connectionString: string,
  applicationName = 'x402-test-session',
): Promise<pg.Client> {
  const client = new pg.Client({ connectionString, application_name: applicationName })
  await client.connect()
  return client
}

/**
 * The pid of the server backend behind `session`, as pg_stat_activity and pg_locks show it.
 *
 * @example
 * ```ts
 * const holderPid = await backendPid(holder)
 * ```
 */
export async function backendPid(session: pg.Client): Promise<number> {
  const { rows } = await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  return rows[0]!.pid
}

/**
 * Runs `use` with a function that opens sessions on `connectionString` ({@link openSession}),
 * and ends them all when `use` is done or has failed: before the database is dropped, which
 * would otherwise terminate them under the test's feet.
 *
 * @example
 * ```ts
 * await withSessions(url, async (session) => {
 *   const holder = await session('x402-test-holder')
 * })
 * ```
 */
export async function withSessions<T>(
  connectionString: string,
  use: (session: (applicationName: string) => Promise<pg.Client>) => Promise<T>,
): Promise<T> {
  const opened: pg.Client[] = []
  try {
    return await use(async (applicationName) => {
      const client = await openSession(connectionString, applicationName)
      opened.push(client)
      return client
    })
  } finally {
    await Promise.all(opened.map((client) => client.end().catch(() => {})))
  }
}

/**
 * `connectionString` with `application_name` set, so that every session of a process that
 * connects with it can be told apart in pg_stat_activity.
 *
 * @example
 * ```ts
 * withApplicationName('postgres://127.0.0.1/app', 'killed-run') // 'postgres://127.0.0.1/app?application_name=killed-run'
 * ```
 */
export function withApplicationName(connectionString: string, applicationName: string): string {
  const url = new URL(connectionString)
  url.searchParams.set('application_name', applicationName)
  return url.toString()
}

/**
 * Polls until `probe` returns something other than undefined or false, and returns it. Fails
 * after 30 s with `awaited` and the sessions of the database, so that a missed state reads as
 * what it is rather than as a hang.
 *
 * @example
 * ```ts
 * await pollUntil(observer, 'no advisory lock', async () => (await advisoryLocks(observer)).length === 0)
 * ```
 */
export async function pollUntil<T>(
  observer: pg.Client,
  awaited: string,
  probe: () => Promise<T | undefined | false>,
  limitMs = POLL_LIMIT_MS,
): Promise<T> {
  const limit = Date.now() + limitMs
  for (;;) {
    const found = await probe()
    if (found !== undefined && found !== false) return found
    if (Date.now() > limit) {
      const { rows } = await observer.query(
        `SELECT pid, application_name, state, wait_event_type, wait_event, left(query, 120) AS query
         FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
      )
      throw new Error(
        `Waited ${limitMs} ms for ${awaited}; the sessions of the database: ${JSON.stringify(rows)}`,
      )
    }
    await sleep(20)
  }
}

/**
 * Waits until a backend of `applicationName` waits for a lock (a table lock, an advisory lock,
 * another transaction) while it runs a statement that contains `statement`, case-insensitively.
 * Returns the backend's pid.
 *
 * @example
 * ```ts
 * const pid = await waitForLockWait(observer, 'x402-jobs-db', 'VALIDATE CONSTRAINT')
 * ```
 */
export function waitForLockWait(
  observer: pg.Client,
  applicationName: string,
  statement: string,
): Promise<number> {
  return pollUntil(
    observer,
    `a session of ${applicationName} waiting for a lock in "${statement}"`,
    async () => {
      const { rows } = await observer.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'
         AND strpos(lower(query), lower($2)) > 0`,
        [applicationName, statement],
      )
      return rows[0]?.pid
    },
  )
}

/**
 * Waits until the database has no session of `applicationName` left: after a kill, the server
 * has ended the dead client's backends, and with them their transactions.
 *
 * @example
 * ```ts
 * await waitUntilGone(observer, 'killed-run')
 * ```
 */
export async function waitUntilGone(observer: pg.Client, applicationName: string): Promise<void> {
  await pollUntil(observer, `the sessions of ${applicationName} to end`, async () => {
    const { rows } = await observer.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`,
      [applicationName],
    )
    return rows.length === 0
  })
}

/** An advisory lock in pg_locks: held (granted) or waited for. */
export interface AdvisoryLock {
  pid: number
  granted: boolean
  /** The 64-bit key, as pg_advisory_lock(bigint) was given it. */
  key: string
}

/**
 * The advisory locks held or awaited in the session's database.
 *
 * @example
 * ```ts
 * expect(await advisoryLocks(observer)).toEqual([])
 * ```
 */
export async function advisoryLocks(observer: pg.Client): Promise<AdvisoryLock[]> {
  const { rows } = await observer.query<AdvisoryLock>(
    `SELECT pid, granted, ((classid::bigint << 32) | objid::bigint)::text AS key
     FROM pg_locks
     WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
     ORDER BY pid`,
  )
  return rows
}

/**
 * Terminates the session that holds advisory lock `key` in this database (the migration lock,
 * for a test of a run that loses it), and returns its pid; fails when no session holds it.
 *
 * @example
 * ```ts
 * await terminateLockHolder(observer, MIGRATION_LOCK_KEY)
 * ```
 */
export async function terminateLockHolder(observer: pg.Client, key: number): Promise<number> {
  const holder = (await advisoryLocks(observer)).find(
    (lock) => lock.granted && lock.key === String(key),
  )
  if (!holder) throw new Error(`No session of this database holds advisory lock ${key}.`)
  await observer.query('SELECT pg_terminate_backend($1)', [holder.pid])
  return holder.pid
}

/**
 * The names of the migrations recorded as applied in the history table, in order; none where
 * the history table does not exist.
 *
 * @example
 * ```ts
 * expect(await recordedMigrations(observer)).toEqual([])
 * ```
 */
export async function recordedMigrations(observer: pg.Client): Promise<string[]> {
  const { rows: history } = await observer.query<{ found: boolean }>(
    `SELECT to_regclass('x402_migrations.kysely_migration') IS NOT NULL AS found`,
  )
  if (!history[0]!.found) return []
  const { rows } = await observer.query<{ name: string }>(
    `SELECT name FROM x402_migrations.kysely_migration ORDER BY name`,
  )
  return rows.map((row) => row.name)
}
