import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { createDb, MIGRATION_LOCK_KEY, migrateTo, migrateToLatest } from '../src/tooling.js'
import { MIGRATION_007 } from './support/migration-names.js'
import { recordedMigrations, withSessions } from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// The run checks search_path once, before it takes the lock; the lock session's reads come
// later, while the run waits. An operator planted in public in between (`oid = integer`, an
// exact match for `objid = 402005000` where pg_catalog has only `oid = oid`) must never run
// as the migrating role: every operator and function of lock.ts is pg_catalog's, by name.
// PostgreSQL only: PGlite's lock runs no SQL.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

describe.skipIf(skipReason)('the lock session and an operator planted mid-run', () => {
  it('never calls a public.=(oid, integer) created while the run waits for the lock', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_007)
      const holder = new pg.Client({ connectionString })
      await holder.connect()
      const runDb = createDb({ connectionString })
      try {
        await holder.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
        let waiting!: () => void
        const waits = new Promise<void>((resolve) => (waiting = resolve))
        const run = migrateToLatest(runDb, {
          lockWaitMs: 30_000,
          log: (line) => {
            if (line.includes('waiting for the migration lock')) waiting()
          },
        }).catch((error: unknown) => error)
        await waits
        await holder.query(`
          CREATE FUNCTION public.planted_eq(oid, integer) RETURNS boolean LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'the planted operator ran'; END $$;
          CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = integer, FUNCTION = public.planted_eq)`)
        // The plant works: an unqualified comparison of this kind runs it.
        await expect(holder.query('SELECT 1::oid = 1')).rejects.toThrow('the planted operator ran')
        await holder.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`)
        const outcome = await run
        expect(outcome instanceof Error ? outcome.message : 'ran').toBe('ran')
      } finally {
        await holder.end()
        await runDb.destroy()
      }
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        expect((await recordedMigrations(observer)).at(-1)).toMatch(/^008_/)
      })
    })
  })
})
