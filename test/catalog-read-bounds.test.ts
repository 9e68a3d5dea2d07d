import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { checkDrift, migrateToLatest } from '../src/tooling.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// migrate:check reads the catalog in a transaction of its own. Its waits are bounded by the
// server, as a run's are: a lock held on x402_resources (a migration's, a stuck ALTER) ends the
// read with lock_timeout instead of holding the check, and what queues behind it, until the
// client's own bound (review rev-a7 3).

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a second session needs a server'

describe.skipIf(skipReason)('the drift check’s catalog reads', () => {
  it('give up on a lock held on x402_resources with the server’s lock timeout (55P03)', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateToLatest(db, { env: {} })
      const holder = new pg.Client({ connectionString: serverUrl(location) })
      await holder.connect()
      try {
        await holder.query('BEGIN')
        await holder.query('LOCK TABLE public.x402_resources IN ACCESS EXCLUSIVE MODE')
        // Released after 45 s: without a bound of its own the check waits, then passes.
        const release = setTimeout(() => void holder.query('ROLLBACK').catch(() => {}), 45_000)
        try {
          const outcome = await checkDrift(db).then(
            () => 'completed',
            (error: unknown) => error as { code?: string; message: string },
          )
          expect(outcome).toMatchObject({ code: '55P03' })
          expect((outcome as Error).message).toMatch(/try again once it ends/)
        } finally {
          clearTimeout(release)
        }
      } finally {
        await holder.end().catch(() => {})
      }
    })
  }, 120_000)

  it('give up on a lock held on the module’s own tables with the server’s lock timeout (55P03)', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateToLatest(db, { env: {} })
      const holder = new pg.Client({ connectionString: serverUrl(location) })
      await holder.connect()
      try {
        await holder.query('BEGIN')
        // Every table of the history's schema: the check reads several of them.
        await holder.query(`DO $lock$ BEGIN
          EXECUTE (SELECT 'LOCK TABLE ' || string_agg(c.oid::regclass::text, ', ') || ' IN ACCESS EXCLUSIVE MODE'
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'x402_migrations' AND c.relkind = 'r');
        END $lock$`)
        const release = setTimeout(() => void holder.query('ROLLBACK').catch(() => {}), 45_000)
        try {
          const outcome = await checkDrift(db).then(
            () => 'completed',
            (error: unknown) => error as { code?: string; message: string },
          )
          expect(outcome).toMatchObject({ code: '55P03' })
        } finally {
          clearTimeout(release)
        }
      } finally {
        await holder.end().catch(() => {})
      }
    })
  }, 120_000)
})
