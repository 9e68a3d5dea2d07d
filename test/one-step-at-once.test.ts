import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { createDb, MIGRATION_LOCK_KEY, migrateDown, migrateTo, migrateUp } from '../src/tooling.js'
import { MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'
import { recordedMigrations, withSessions } from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// Review revg F5: `migrate:down` reverts the newest migration, and `migrate:up` applies the next
// one. Two of them started together (two terminals, a retried deploy job) moved the history two
// steps: the one that waited for the other's lock planned its step from the history it found
// then. Each moves from where the history stood when it was asked, or changes nothing.
// PostgreSQL only: PGlite has one connection, so no run waits for another's lock there.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

type Outcome = { results: unknown[] } | { error: unknown }

/** Runs `step` twice at once, both waiting for a lock held until both wait, and their outcomes. */
async function twiceAtOnce(connectionString: string, step: typeof migrateDown): Promise<Outcome[]> {
  const holder = new pg.Client({ connectionString })
  await holder.connect()
  const dbs = [createDb({ connectionString }), createDb({ connectionString })]
  try {
    await holder.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
    const waits: Promise<void>[] = []
    const runs = dbs.map((db) => {
      let waiting!: () => void
      waits.push(new Promise<void>((resolve) => (waiting = resolve)))
      return step(db, {
        env: {},
        lockWaitMs: 60_000,
        log: (line) => {
          if (line.includes('waiting for the migration lock')) waiting()
        },
      }).then(
        (results): Outcome => ({ results }),
        (error: unknown): Outcome => ({ error }),
      )
    })
    await Promise.all(waits)
    await holder.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`)
    return await Promise.all(runs)
  } finally {
    await holder.end()
    await Promise.all(dbs.map((db) => db.destroy()))
  }
}

function refusals(outcomes: Outcome[]): string[] {
  return outcomes.flatMap((outcome) => ('error' in outcome ? [String(outcome.error)] : []))
}

describe.skipIf(skipReason)('two one-step runs started together', () => {
  it('migrate:down reverts one migration, the newest when asked; the other changes nothing and says why', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_006)
      const outcomes = await twiceAtOnce(connectionString, migrateDown)
      const [refusal, ...more] = refusals(outcomes)
      expect(more).toEqual([])
      expect(refusal).toMatch(
        /asked when the newest applied migration was 006_rename_to_production_names/,
      )
      expect(refusal).toMatch(/now 005_add_openrouter_integration/)
      expect(refusal).toMatch(/Nothing was changed/)
      await withSessions(connectionString, async (session) => {
        expect((await recordedMigrations(await session('x402-test-observer'))).at(-1)).toBe(
          MIGRATION_005,
        )
      })
    })
  })

  // Review revh H2: the read of the history before the lock had no lock_timeout, and waited behind
  // an ACCESS EXCLUSIVE on the history up to the client's 5-minute query timeout.
  it('reads where the history stands within lock_timeout, as every read of a run does', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_006)
      const holder = new pg.Client({ connectionString })
      await holder.connect()
      const runDb = createDb({ connectionString })
      try {
        await holder.query('BEGIN')
        await holder.query('LOCK TABLE x402_migrations.kysely_migration IN ACCESS EXCLUSIVE MODE')
        const down = migrateDown(runDb, { env: {}, lockTimeoutMs: 200 }).then(
          () => undefined,
          (error: unknown) => error,
        )
        // Let go after 20 s, where the read would otherwise wait for the holder.
        const later = new Promise<string>((resolve) =>
          setTimeout(() => resolve('still waiting'), 20_000).unref(),
        )
        const error = await Promise.race([down, later])
        expect((error as { code?: string }).code).toBe('55P03')
      } finally {
        await holder.query('ROLLBACK').catch(() => {})
        await holder.end()
        await runDb.destroy()
      }
    })
  }, 60_000)

  it('migrate:up applies one migration, the next when asked', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_005)
      const outcomes = await twiceAtOnce(connectionString, migrateUp)
      expect(refusals(outcomes)).toHaveLength(1)
      await withSessions(connectionString, async (session) => {
        expect((await recordedMigrations(await session('x402-test-observer'))).at(-1)).toBe(
          MIGRATION_006,
        )
      })
    })
  })
})
