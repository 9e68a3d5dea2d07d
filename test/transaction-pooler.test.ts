import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import {
  createDb,
  MIGRATION_LOCK_KEY,
  migrateOnStartup,
  migrateTo,
  migrateToLatest,
  pendingMigrationNames,
  TransactionPoolerError,
  withMigrationLock,
} from '../src/tooling.js'
import { withDialectHooks } from '../src/connection/dialect-hooks.js'
import { withoutKyselyMigrationLock } from '../src/connection/without-kysely-migration-lock.js'
import { migrationNames } from '../src/migrations/index.js'
import { type PgBouncer, pgbouncerSkipReason, usePgBouncer } from './support/pgbouncer.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// Through a real PgBouncer in transaction mode (Supabase's port 6543 works the same way): the
// runner finds out that its sessions do not keep server connections of their own, runs
// what can run inside transactions, refuses the rest before changing anything (pointing to
// MIGRATION_DATABASE_URL), and never leaves an advisory lock behind on any server connection.

const skipReason = pgbouncerSkipReason()

async function advisoryLocks(serverUrl: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: serverUrl })
  await client.connect()
  try {
    // This database's only: other test files take the same key in databases of their own.
    const { rows } = await client.query(
      `SELECT pid, objid, granted FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    )
    return rows
  } finally {
    await client.end()
  }
}

function throughPooler(directUrl: string, poolerUrl: (database: string) => string): string {
  return poolerUrl(new URL(directUrl).pathname.slice(1))
}

/**
 * Leaves exactly `count` idle server connections in `pooler`'s pool for the database of
 * `directUrl` (a new database starts with none): as many clients each hold one in a
 * transaction at once, then all let go.
 */
async function fillPool(pooler: PgBouncer, directUrl: string, count: number): Promise<void> {
  const database = new URL(directUrl).pathname.slice(1)
  const clients = Array.from(
    { length: count },
    () => new pg.Client({ connectionString: pooler.url(database) }),
  )
  try {
    for (const client of clients) {
      await client.connect()
      await client.query('BEGIN')
      await client.query('SELECT 1')
    }
    for (const client of clients) await client.query('COMMIT')
  } finally {
    await Promise.all(clients.map((client) => client.end()))
  }
  const servers = await pooler.adminQuery('SHOW SERVERS')
  expect(servers.filter((server) => server.database === database)).toHaveLength(count)
}

/**
 * Whether the migration lock finds a transaction pooler on its way to a new database, reached
 * through `pooler` with `idle` idle server connections left in its pool first.
 */
async function findsTransactionPooler(pooler: PgBouncer, idle: number): Promise<boolean> {
  return withTestDatabase('postgres', async ({ location }) => {
    const connectionString = serverUrl(location)
    await fillPool(pooler, connectionString, idle)
    const pooled = createDb({ connectionString: throughPooler(connectionString, pooler.url) })
    try {
      return await withMigrationLock(pooled, async (session) => session.transactionPooler)
    } finally {
      await pooled.destroy()
    }
  })
}

const SETTINGS_SQL = `SELECT concat_ws(' ', current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout'),
  current_setting('lock_timeout'), coalesce(current_setting('x402.allow_data_loss', true), '-')) AS settings`

/**
 * The session settings of every server connection in `pooler`'s pool for the database of
 * `directUrl`, as the app's clients would get them: as many clients as there are server
 * connections each hold one in a transaction at once, so that each client gets another.
 */
async function settingsInPool(pooler: PgBouncer, directUrl: string): Promise<string[]> {
  const database = new URL(directUrl).pathname.slice(1)
  const count = (await pooler.adminQuery('SHOW SERVERS')).filter(
    (server) => server.database === database,
  ).length
  const clients = Array.from(
    { length: count },
    () => new pg.Client({ connectionString: pooler.url(database) }),
  )
  try {
    const seen: string[] = []
    for (const client of clients) {
      await client.connect()
      await client.query('BEGIN')
      seen.push((await client.query<{ settings: string }>(SETTINGS_SQL)).rows[0]!.settings)
    }
    for (const client of clients) await client.query('COMMIT')
    return seen
  } finally {
    await Promise.all(clients.map((client) => client.end()))
  }
}

describe.skipIf(skipReason !== undefined)(
  `migrating through PgBouncer in transaction mode${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    const pooler = usePgBouncer()

    it('detects the pooler, and finds a direct connection to be none', async () => {
      await withTestDatabase('postgres', async ({ db: direct, location }) => {
        const connectionString = serverUrl(location)
        const pooled = createDb({ connectionString: throughPooler(connectionString, pooler().url) })
        try {
          expect(
            await withMigrationLock(pooled, async (session) => session.transactionPooler),
          ).toBe(true)
          expect(
            await withMigrationLock(direct, async (session) => session.transactionPooler),
          ).toBe(false)
        } finally {
          await pooled.destroy()
        }
      })
    })

    it('runs transactional migrations, refuses 005 before changing anything, and leaks no lock', async () => {
      await withTestDatabase('postgres', async ({ location }) => {
        const connectionString = serverUrl(location)
        const pooled = createDb({ connectionString: throughPooler(connectionString, pooler().url) })
        try {
          const applied = await migrateTo(pooled, '002_add_claude_integration', { env: {} })
          expect(applied.map((result) => result.migrationName)).toHaveLength(4)
          expect(await advisoryLocks(connectionString)).toEqual([])

          const error = await migrateToLatest(pooled, { env: {} }).catch(
            (caught: unknown) => caught,
          )
          expect(error).toBeInstanceOf(TransactionPoolerError)
          expect((error as Error).message).toContain(
            '005_add_openrouter_integration must run outside a transaction',
          )
          expect((error as Error).message).toContain(
            'Nothing was changed. Set MIGRATION_DATABASE_URL to a direct connection',
          )
          expect(await pendingMigrationNames(pooled)).toEqual(
            migrationNames.filter((name) => name >= '005_add_openrouter_integration'),
          )
          expect(await advisoryLocks(connectionString)).toEqual([])
          // pg_locks covers every server connection, and PgBouncer still holds some, idle.
          const servers = await pooler().adminQuery('SHOW SERVERS')
          expect(servers.length).toBeGreaterThan(0)
        } finally {
          await pooled.destroy()
        }
      })
    })

    it('migrates at start-up on MIGRATION_DATABASE_URL while the app talks through the pooler', async () => {
      await withTestDatabase('postgres', async ({ location }) => {
        const connectionString = serverUrl(location)
        const app = createDb({ connectionString: throughPooler(connectionString, pooler().url) })
        try {
          const lines: string[] = []
          const outcome = await migrateOnStartup(app, {
            env: { MIGRATION_DATABASE_URL: connectionString },
            log: (line) => lines.push(line),
          })
          expect(outcome.applied).toHaveLength(migrationNames.length)
          expect(await pendingMigrationNames(app)).toEqual([])
          // The next start is the one-query no-op, which is safe through the pooler.
          expect(await migrateOnStartup(app, { env: {}, log: () => {} })).toEqual({
            skipped: false,
            applied: [],
          })
          expect(await advisoryLocks(connectionString)).toEqual([])
        } finally {
          await app.destroy()
        }
      })
    })

    it('holds the lock against a second run through the pooler, and releases it on every path', async () => {
      await withTestDatabase('postgres', async ({ location }) => {
        const connectionString = serverUrl(location)
        const first = createDb({ connectionString: throughPooler(connectionString, pooler().url) })
        const second = createDb({ connectionString: throughPooler(connectionString, pooler().url) })
        try {
          await withMigrationLock(first, async () => {
            const held = await advisoryLocks(connectionString)
            expect(held).toEqual([
              expect.objectContaining({ objid: MIGRATION_LOCK_KEY, granted: true }),
            ])
            const waited = await withMigrationLock(second, async () => 'ran', {
              lockWaitMs: 200,
            }).catch((caught: unknown) => caught)
            expect((waited as Error).message).toMatch(
              /^Waited 200 ms for the migration lock, but another run holds it \(pid \d+/,
            )
          })
          await expect(
            withMigrationLock(first, async () => Promise.reject(new Error('boom'))),
          ).rejects.toThrow('boom')
          expect(await advisoryLocks(connectionString)).toEqual([])
        } finally {
          await first.destroy()
          await second.destroy()
        }
      })
    })
  },
)

// A transaction pooler is told from a session by which server connection comes back, and
// PgBouncer reuses idle ones last in, first out by default, first in, first out with
// server_round_robin = 1. The detection must not depend on either order, nor on how many idle
// server connections the pool holds when the run starts: with two in round-robin order, the
// probe and the lock session can each keep one of them, as sessions would.
describe.skipIf(skipReason !== undefined).each([
  { order: 'last in, first out', roundRobin: false },
  { order: 'round robin', roundRobin: true },
])(
  `through PgBouncer in transaction mode, reusing server connections $order${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  ({ roundRobin }) => {
    const pooler = usePgBouncer({ roundRobin })

    it.each([0, 1, 2, 3])(
      'detects the pooler with %i idle server connections in the pool',
      async (idle) => {
        expect(await findsTransactionPooler(pooler(), idle)).toBe(true)
      },
    )

    it('detects the pooler when an app request takes the server connection the probe left, while the lock session begins', async () => {
      await withTestDatabase('postgres', async ({ location }) => {
        const connectionString = serverUrl(location)
        const poolerUrl = throughPooler(connectionString, pooler().url)
        await fillPool(pooler(), connectionString, 2)
        const app = new pg.Client({ connectionString: poolerUrl })
        await app.connect()
        let appBegun = false
        // Just before the lock session's BEGIN, an app request takes the idle server connection
        // reused next (last in, first out: the one the probe just left), and gives it back
        // before the probe asks again.
        const pooled = new Kysely<any>({
          dialect: withoutKyselyMigrationLock(
            withDialectHooks(
              new PostgresDialect({ pool: new pg.Pool({ connectionString: poolerUrl }) }),
              {
                async aroundQuery(_connection, query, run) {
                  if (appBegun || !query.sql.startsWith('BEGIN')) return run()
                  appBegun = true
                  await app.query('BEGIN')
                  await app.query('SELECT 1')
                  const result = await run()
                  await app.query('COMMIT')
                  return result
                },
              },
            ),
          ),
        })
        try {
          expect(
            await withMigrationLock(pooled, async (session) => session.transactionPooler),
          ).toBe(true)
          expect(appBegun).toBe(true)
        } finally {
          await pooled.destroy()
          await app.end()
        }
      })
    })

    it('detects the pooler when an app request ends just before the lock session begins, and the lock session gets its server connection', async () => {
      // Review revb F1 (a): the app's request holds a server connection while the probe asks, and
      // ends as the lock session begins; last in, first out, the lock session gets that one.
      await withTestDatabase('postgres', async ({ location }) => {
        const connectionString = serverUrl(location)
        const poolerUrl = throughPooler(connectionString, pooler().url)
        const app = new pg.Client({ connectionString: poolerUrl })
        await app.connect()
        let appEnded = false
        const pooled = new Kysely<any>({
          dialect: withoutKyselyMigrationLock(
            withDialectHooks(
              new PostgresDialect({ pool: new pg.Pool({ connectionString: poolerUrl }) }),
              {
                async aroundQuery(_connection, query, run) {
                  if (!appEnded && query.sql.startsWith('BEGIN')) {
                    appEnded = true
                    await app.query('COMMIT')
                  }
                  return run()
                },
              },
            ),
          ),
        })
        try {
          await app.query('BEGIN')
          await app.query('SELECT 1')
          expect(
            await withMigrationLock(pooled, async (session) => session.transactionPooler),
          ).toBe(true)
          expect(appEnded).toBe(true)
        } finally {
          await pooled.destroy()
          await app.end()
        }
      })
    })

    it('refuses 005 with two idle server connections in the pool, and leaves no session setting on them', async () => {
      await withTestDatabase('postgres', async ({ db: direct, location }) => {
        const connectionString = serverUrl(location)
        await migrateTo(direct, '002_add_claude_integration', { env: {} })
        const poolerUrl = throughPooler(connectionString, pooler().url)
        const { rows: defaults } = await sql.raw<{ settings: string }>(SETTINGS_SQL).execute(direct)
        await fillPool(pooler(), connectionString, 2)
        const pooled = createDb({ connectionString: poolerUrl })
        try {
          const error = await migrateToLatest(pooled, { env: {} }).catch(
            (caught: unknown) => caught,
          )
          expect(error).toBeInstanceOf(TransactionPoolerError)
          expect(await pendingMigrationNames(direct)).toEqual(
            migrationNames.filter((name) => name >= '005_add_openrouter_integration'),
          )
          expect(await advisoryLocks(connectionString)).toEqual([])
        } finally {
          await pooled.destroy()
        }
        const inPool = await settingsInPool(pooler(), connectionString)
        expect(inPool.length).toBeGreaterThanOrEqual(2)
        expect(inPool).toEqual(inPool.map(() => defaults[0]!.settings))
      })
    })
  },
)

// A session pooler gives each client one server connection for as long as it stays connected:
// it carries 005 as a direct connection does, and must not be refused, in either order.
describe.skipIf(skipReason !== undefined).each([
  { order: 'last in, first out', roundRobin: false },
  { order: 'round robin', roundRobin: true },
])(
  `through PgBouncer in session mode, reusing server connections $order${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  ({ roundRobin }) => {
    const pooler = usePgBouncer({ poolMode: 'session', roundRobin })

    it.each([0, 1, 2, 3])(
      'finds no transaction pooler with %i idle server connections in the pool',
      async (idle) => {
        expect(await findsTransactionPooler(pooler(), idle)).toBe(false)
      },
    )

    it('applies every migration, 005 among them', async () => {
      await withTestDatabase('postgres', async ({ location }) => {
        const connectionString = serverUrl(location)
        await fillPool(pooler(), connectionString, 2)
        const pooled = createDb({
          connectionString: throughPooler(connectionString, pooler().url),
        })
        try {
          const applied = await migrateToLatest(pooled, { env: {} })
          expect(applied.map((result) => result.migrationName)).toEqual(migrationNames)
          expect(await advisoryLocks(connectionString)).toEqual([])
        } finally {
          await pooled.destroy()
        }
      })
    })
  },
)
