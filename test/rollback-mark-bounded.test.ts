import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { createDb, MigrationError, migrateDown, migrateTo } from '../src/tooling.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// Review revg F3: the first rollback of 005 adds its mark's column to the history with ALTER
// TABLE, which queues for ACCESS EXCLUSIVE behind any reader of the history, and every app
// start-up's one question queues behind it. It ran before the migration's lock_timeout was set:
// it waited as long as the reader. It is bounded as the migration's own statements are, and
// retried as they are. PostgreSQL only: PGlite has one connection, so nothing reads beside a run.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

describe.skipIf(skipReason)("the mark of 005's first rollback", () => {
  it('waits for a reader of the history no longer than lock_timeout, then fails as a lock timeout', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_005)
      const reader = new pg.Client({ connectionString })
      await reader.connect()
      const runDb = createDb({ connectionString })
      try {
        const { rows } = await reader.query(`SELECT count(*)::int AS n FROM pg_attribute
          WHERE attrelid = 'x402_migrations.kysely_migration'::regclass AND attname = 'reverting_since'`)
        expect(rows[0].n).toBe(0)
        await reader.query('BEGIN')
        await reader.query('SELECT count(*) FROM x402_migrations.kysely_migration')
        const down = migrateDown(runDb, { env: {}, lockTimeoutMs: 200, lockAttempts: 1 }).then(
          () => undefined,
          (error: unknown) => error,
        )
        // Before the fix the run waited for the reader: it is let go after 20 s, and the run then
        // succeeded. Now it fails first, of a lock timeout.
        const released = new Promise<void>((resolve) => setTimeout(resolve, 20_000).unref())
        const error = await Promise.race([down, released.then(() => 'still waiting')])
        expect(error).toBeInstanceOf(MigrationError)
        expect((error as MigrationError).code).toBe('55P03')
      } finally {
        await reader.query('ROLLBACK').catch(() => {})
        await reader.end()
        await runDb.destroy()
      }
    })
  }, 60_000)
})
