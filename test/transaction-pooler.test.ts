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
import { migrationNames } from '../src/migrations/index.js'
import { pgbouncerSkipReason, usePgBouncer } from './support/pgbouncer.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// Through a real PgBouncer in transaction mode (Supabase's port 6543 works the same way): the
// runner finds out that statements of one session reach different server connections, runs
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
