import { sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { exportBaselineSql } from '../src/adoption/baseline-sql.js'
import { exportMigrationSql } from '../src/export/migration-sql.js'
import { migrateTo } from '../src/tooling.js'
import { BEFORE_005, MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// An exported script run with psql -f (as 005's must be) whose client stalls in the middle of a
// transaction (a psql stopped by Ctrl-Z, a frozen VM or laptop, a stalled network path) must not
// keep that transaction's locks for as long as the server allows (for ever at PostgreSQL's
// default): each transaction of a script bounds its idle time as the runner bounds a run's.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a stalled client needs a server'

/** The script's statements as psql sends them, its own switches (`\set`) left out. */
function statementsOf(script: string): string[] {
  return script
    .replace(/^\\.*$/gm, '')
    .split(/;\n\n/)
    .filter((statement) => statement.replace(/^--.*$/gm, '').trim() !== '')
}

/**
 * A client that sends `statements` and then nothing more, holding its transaction open; `ended`
 * settles with the error the server ended its session with (undefined if it ended without one).
 */
async function stalledClient(
  url: string,
  statements: string[],
): Promise<{ client: pg.Client; pid: number; ended: Promise<unknown> }> {
  const client = new pg.Client({ connectionString: url })
  const ended = new Promise<unknown>((resolve) => {
    client.on('error', resolve)
    client.on('end', () => resolve(undefined))
  })
  await client.connect()
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  for (const statement of statements) await client.query(statement)
  return { client, pid: rows[0]!.pid, ended }
}

describe.skipIf(skipReason)('an exported script whose client stalls inside a transaction', () => {
  it("005 up, stalled after its ALTER TABLE x402_resources: the server ends the script's session (25P03) and an app writer gets through", async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, BEFORE_005)
      const url = serverUrl(location)
      const statements = statementsOf(await exportMigrationSql(MIGRATION_005))
      const alter = statements.findIndex((statement) =>
        /^ALTER TABLE x402_resources\b/m.test(statement),
      )
      expect(alter).toBeGreaterThan(0)
      const { client, pid, ended } = await stalledClient(url, statements.slice(0, alter + 1))
      try {
        // It holds ACCESS EXCLUSIVE on x402_resources, in a transaction the client left idle.
        const { rows: held } = await sql<{ mode: string }>`
          SELECT mode FROM pg_catalog.pg_locks
           WHERE pid = ${pid} AND granted AND relation = 'public.x402_resources'::regclass`.execute(
          db,
        )
        expect(held.map((lock) => lock.mode)).toContain('AccessExclusiveLock')

        // An app writer, bounded far above the script's idle bound.
        const writer = new pg.Client({ connectionString: url, statement_timeout: 30_000 })
        await writer.connect()
        try {
          await writer.query('DELETE FROM x402_resources WHERE false')
        } finally {
          await writer.end()
        }
        expect((await ended) as { code?: string }).toMatchObject({ code: '25P03' })
      } finally {
        await client.end().catch(() => {})
      }
    })
  }, 90_000)

  it('the baseline script, stalled after it took the migration lock: the server ends its session (25P03) and a migration run gets the lock', async () => {
    await withTestDatabase('postgres', async ({ location }) => {
      const url = serverUrl(location)
      const statements = statementsOf(await exportBaselineSql('005'))
      const lock = statements.findIndex((statement) =>
        statement.includes('pg_catalog.pg_advisory_xact_lock('),
      )
      expect(lock).toBeGreaterThan(0)
      const { client, ended } = await stalledClient(url, statements.slice(0, lock + 1))
      try {
        // A run's lock session, bounded far above the script's idle bound.
        const run = new pg.Client({ connectionString: url, statement_timeout: 30_000 })
        await run.connect()
        try {
          await run.query('BEGIN')
          await run.query('SELECT pg_catalog.pg_advisory_xact_lock(402005000::pg_catalog.int8)')
          await run.query('ROLLBACK')
        } finally {
          await run.end()
        }
        expect((await ended) as { code?: string }).toMatchObject({ code: '25P03' })
      } finally {
        await client.end().catch(() => {})
      }
    })
  }, 90_000)
})
