import { randomUUID } from 'node:crypto'

import type { Kysely } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { createDb } from '../src/connection/create-db.js'
import { type DB, MigrationError, migrateTo, migrateToLatest } from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// The lock profile of 005 on x402_resources, the busiest table: app writes go on while it
// validates and while it builds its index, and a statement that cannot get its lock gives up
// after lock_timeout and is retried, instead of queueing every query behind it. Shown with
// real sessions on PostgreSQL: the test holds a conflicting lock, waits until the migration is
// queued behind it (pg_stat_activity), and then writes. PGlite has one connection, so none of
// this can happen there.

/** A key as the app's query may quote it: never shown in a lock wait's message. */
const BLOCKER_KEY = `sk-or-v1-${'0123456789abcdef'.repeat(4)}`
/** What a run from a database at 002 applies: 005 and everything after it. */
const FROM_005 = migrationNames.filter((name) => name >= '005_add_openrouter_integration')
const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip

/** A session of its own, as an app instance has. */
async function session(connectionString: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString, application_name: 'x402-test-session' })
  await client.connect()
  // A bound on each of its statements: a write that hangs fails the test instead of hanging it.
  await client.query(`SET statement_timeout = '10s'`)
  return client
}

async function waitUntilQueued(observer: pg.Client, queryPart: string): Promise<void> {
  for (;;) {
    const { rows } = await observer.query(
      `SELECT 1 FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = 'x402-jobs-db' AND wait_event_type = 'Lock' AND query ILIKE $1`,
      [`%${queryPart}%`],
    )
    if (rows.length > 0) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Whether a migration statement of this database waits for a lock. */
async function queued(observer: pg.Client): Promise<boolean> {
  const { rows } = await observer.query(
    `SELECT 1 FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'x402-jobs-db' AND wait_event_type = 'Lock'`,
  )
  return rows.length > 0
}

async function insertResource(client: pg.Client, resourceType = 'external'): Promise<void> {
  const slug = randomUUID()
  await client.query(
    `INSERT INTO x402_resources (name, resource_url, normalized_url, network, pay_to, resource_type)
     VALUES ($1, $2, $3, 'base', '0xdead', $4)`,
    [`r ${slug}`, `https://x.test/${slug}`, `x.test/${slug}`, resourceType],
  )
}

/**
 * A database at 002 (before 005), with two sessions of the test's own: `holder` takes the
 * conflicting lock, `writer` writes as the app does and watches pg_stat_activity.
 */
async function withSessionsBefore005(
  use: (db: Kysely<DB>, sessions: { holder: pg.Client; writer: pg.Client }) => Promise<void>,
): Promise<void> {
  await withTestDatabase('postgres', async ({ db, location }) => {
    const connectionString = serverUrl(location)
    await migrateTo(db, '002_add_claude_integration')
    const holder = await session(connectionString)
    const writer = await session(connectionString)
    try {
      await use(db, { holder, writer })
    } finally {
      await holder.end()
      await writer.end()
    }
  })
}

postgres('the lock profile of 005 on postgres', () => {
  it('lets writes through while VALIDATE CONSTRAINT is queued, after a run lost its connection mid-way', async () => {
    await withSessionsBefore005(async (db, { holder, writer }) => {
      // Any lock that VALIDATE waits for, step 1 waits for first. So: a first run stops in
      // step 3 (its backend is terminated while the index build waits for an old snapshot),
      // and the second run, which skips step 1, is then made to queue at VALIDATE.
      await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      await holder.query('SELECT count(*) FROM ai_models')
      const firstRun = migrateToLatest(db, { env: {} }).catch((caught: unknown) => caught)
      await waitUntilQueued(writer, 'CREATE INDEX CONCURRENTLY')
      await writer.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'x402-jobs-db' AND query ILIKE '%CREATE INDEX CONCURRENTLY%'`,
      )
      expect(await firstRun).toMatchObject({
        migrationName: '005_add_openrouter_integration',
        code: '57P01',
      })
      await holder.query('COMMIT')
      const invalid = await writer.query(
        `SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_x402_resources_openrouter_model'::regclass`,
      )
      expect(invalid.rows).toEqual([{ indisvalid: false }])

      // SHARE UPDATE EXCLUSIVE, as a running VACUUM or ANALYZE holds it.
      await holder.query('BEGIN; LOCK TABLE x402_resources IN SHARE UPDATE EXCLUSIVE MODE')
      const secondRun = migrateToLatest(db, { env: {}, lockTimeoutMs: 60_000 })
      await waitUntilQueued(writer, 'VALIDATE CONSTRAINT')
      await insertResource(writer, 'openrouter_instant')
      await insertResource(writer)
      await holder.query('COMMIT')

      expect((await secondRun).map((result) => result.migrationName)).toEqual(FROM_005)
      const { rows } = await writer.query(
        `SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'x402_resources'::regclass
         AND conname IN ('x402_resources_resource_type_check', 'x402_resources_openrouter_model_id_fkey') ORDER BY conname`,
      )
      expect(rows).toEqual([
        { conname: 'x402_resources_openrouter_model_id_fkey', convalidated: true },
        { conname: 'x402_resources_resource_type_check', convalidated: true },
      ])
      const valid = await writer.query(
        `SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_x402_resources_openrouter_model'::regclass`,
      )
      expect(valid.rows).toEqual([{ indisvalid: true }])
    })
  })

  it('lets writes through while CREATE INDEX CONCURRENTLY waits for an old transaction', async () => {
    await withSessionsBefore005(async (db, { holder, writer }) => {
      // A long report: a snapshot that the concurrent build must outwait.
      await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      await holder.query('SELECT count(*) FROM ai_models')
      const migrating = migrateToLatest(db, { env: {} })
      await waitUntilQueued(writer, 'CREATE INDEX CONCURRENTLY')

      await insertResource(writer)
      await insertResource(writer, 'openrouter_instant')

      await holder.query('COMMIT')
      await migrating
      const { rows } = await writer.query(
        `SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_x402_resources_openrouter_model'::regclass`,
      )
      expect(rows).toEqual([{ indisvalid: true }])
    })
  })

  it('gives up on a table lock after lock_timeout, retries, and succeeds once the blocker is gone', async () => {
    await withSessionsBefore005(async (db, { holder }) => {
      await holder.query('BEGIN; SELECT count(*) FROM x402_resources')
      const lines: string[] = []
      const applied = await migrateToLatest(db, {
        env: {},
        lockTimeoutMs: 200,
        lockAttempts: 3,
        retryDelayMs: 50,
        // The blocker finishes after the first retry is announced.
        log: (line) => {
          lines.push(line)
          void holder.query('COMMIT')
        },
      })
      expect(applied.map((result) => result.migrationName)).toEqual(FROM_005)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(
        /^\[db\] 005_add_openrouter_integration hit lock_timeout \(attempt 1 of 3; blocked by pid \d+ \(idle in transaction, transaction open for [\d:]+: BEGIN … \(the rest not shown\)\)\); trying again in 50 ms$/,
      )
    })
  })

  // Review N10-2: the blocking session's query was quoted whole (its first 200 characters): it
  // is the app's, not the operator's input, and may hold a key and terminal escape codes.
  it("names the blocker's statement by its first keyword only, never its text", async () => {
    await withSessionsBefore005(async (db, { holder }) => {
      const { rows } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      await holder.query('BEGIN')
      await holder.query(`SELECT count(*) FROM x402_resources WHERE '${BLOCKER_KEY}' <> '\x1b[2J'`)
      const lines: string[] = []
      // Long enough for the watch's samples (every 100 ms) to see the blocker in each attempt.
      const error = await migrateToLatest(db, {
        env: {},
        lockTimeoutMs: 500,
        lockAttempts: 2,
        retryDelayMs: 10,
        log: (line) => lines.push(line),
      }).catch((caught: unknown) => caught)
      await holder.query('ROLLBACK')

      expect(error).toBeInstanceOf(MigrationError)
      expect((error as Error).message).toMatch(
        new RegExp(
          `blocked by pid ${rows[0]!.pid} \\(idle in transaction, transaction open for [\\d:]+: SELECT … \\(the rest not shown\\)\\)`,
        ),
      )
      for (const text of [(error as Error).message, ...lines]) {
        expect(text).not.toContain('sk-or-v1')
        expect(text).not.toContain('\x1b')
      }
    })
  })

  it("fails after the last attempt with the blocking pid and its statement's keyword, and records nothing", async () => {
    await withSessionsBefore005(async (db, { holder }) => {
      const { rows } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      await holder.query('BEGIN; SELECT count(*) FROM x402_resources')

      const error = await migrateToLatest(db, {
        env: {},
        lockTimeoutMs: 100,
        lockAttempts: 2,
        retryDelayMs: 10,
        log: () => {},
      }).catch((caught: unknown) => caught)

      expect(error).toBeInstanceOf(MigrationError)
      expect(error).toMatchObject({
        migrationName: '005_add_openrouter_integration',
        code: '55P03',
      })
      expect((error as Error).message).toContain(
        `It could not get its lock within lock_timeout in 2 attempt(s), blocked by pid ${rows[0]!.pid} (idle in transaction`,
      )
      expect((error as Error).message).toContain(': BEGIN … (the rest not shown))')
      const history = await holder.query(
        `SELECT name FROM x402_migrations.kysely_migration WHERE name LIKE '005%'`,
      )
      expect(history.rows).toEqual([])
      await holder.query('COMMIT')
      await migrateToLatest(db, { env: {} })
    })
  })
})

postgres('the lock order of 006 and 008 on postgres', () => {
  // 006 renames the catalog (ACCESS EXCLUSIVE on it); 008 locks x402_resources and the catalog.
  it.each([
    ['005_add_openrouter_integration', 'ai_models', '006_rename_to_production_names'],
    [
      '007_openrouter_policies_per_supabase_advice',
      'x402_openrouter_models',
      '008_close_supabase_advisor_findings',
    ],
  ])(
    'from %s, takes x402_resources before %s, as app writes do, so a writer in the middle of a transaction does not deadlock with %s',
    async (from, catalog, migration) => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        const connectionString = serverUrl(location)
        await migrateTo(db, from)
        const writer = await session(connectionString)
        try {
          const { rows } = await writer.query<{ id: string }>(
            `INSERT INTO ${catalog} (openrouter_id, display_name, provider) VALUES ('test/model', 'Model', 'test') RETURNING id`,
          )
          // The app's transaction holds x402_resources (ROW EXCLUSIVE) and will next read the
          // catalog through the foreign key of openrouter_model_id.
          await writer.query('BEGIN')
          await insertResource(writer)
          let settled = false
          const migrating = migrateTo(db, migration).finally(() => (settled = true))
          // 008 queues behind the writer's lock on x402_resources; 006 needs none of its locks.
          while (!settled && !(await queued(writer)))
            await new Promise((resolve) => setTimeout(resolve, 20))
          const modelId = rows[0]!.id
          await writer.query(
            `INSERT INTO x402_resources (name, resource_url, normalized_url, network, pay_to, openrouter_model_id)
             VALUES ('second', 'https://x.test/second', 'x.test/second', 'base', '0xdead', $1)`,
            [modelId],
          )
          await writer.query('COMMIT')
          expect((await migrating).map((result) => result.migrationName)).toEqual([migration])
        } finally {
          await writer.end()
        }
      })
    },
  )
})

postgres('a deadlock with an app transaction on postgres', () => {
  // 006 renames the keys table, then the catalog. An app transaction that wrote a resource with a
  // model (the foreign key holds the catalog) and then stores a key waits for 006 while 006 waits
  // for it: PostgreSQL cancels one of the two. A transactional migration is rolled back whole, so
  // it is tried again, as after lock_timeout, and the app's transaction goes through.
  // PostgreSQL checks for a deadlock once, deadlock_timeout after a session starts to wait, and
  // cancels the session whose check finds the cycle. The migration waits first; at the default
  // 1 s its check could come before the writer (slowed by a loaded machine) waits, and the
  // writer's would then find the cycle. So the migration checks after 5 s, and the writer never
  // does (its statements end at 10 s): the test shows the runner's retry, not who wins a race.
  it('is tried again once the deadlock is broken, and both go through', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, '005_add_openrouter_integration')
      const writer = await session(connectionString)
      const observer = await session(connectionString)
      const migrationUrl = new URL(connectionString)
      migrationUrl.searchParams.set('options', '-c deadlock_timeout=5s')
      const migrationDb = createDb({ connectionString: migrationUrl.toString() })
      try {
        await writer.query(`SET deadlock_timeout = '60s'`)
        const { rows: users } = await writer.query<{ id: string }>(
          `INSERT INTO auth.users (id) VALUES (gen_random_uuid()) RETURNING id`,
        )
        const { rows: models } = await writer.query<{ id: string }>(
          `INSERT INTO ai_models (openrouter_id, display_name, provider) VALUES ('test/model', 'Model', 'test') RETURNING id`,
        )
        await writer.query('BEGIN')
        await writer.query(
          `INSERT INTO x402_resources (name, resource_url, normalized_url, network, pay_to, openrouter_model_id)
           VALUES ('r', 'https://x.test/r', 'x.test/r', 'base', '0xdead', $1)`,
          [models[0]!.id],
        )
        const lines: string[] = []
        const migrating = migrateTo(migrationDb, '006_rename_to_production_names', {
          env: {},
          lockTimeoutMs: 60_000,
          retryDelayMs: 10,
          log: (line) => lines.push(line),
        })
        // 006 holds the keys table and waits for the catalog, which the writer holds.
        await waitUntilQueued(observer, 'ai_models')
        await writer.query(
          `INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES ($1, 'aa:bb')`,
          [users[0]!.id],
        )
        await writer.query('COMMIT')
        expect((await migrating).map((result) => result.migrationName)).toEqual([
          '006_rename_to_production_names',
        ])
        expect(lines.some((line) => line.includes('deadlock'))).toBe(true)
        const { rows } = await observer.query(
          'SELECT count(*)::int AS n FROM x402_user_openrouter_integrations',
        )
        expect(rows).toEqual([{ n: 1 }])
      } finally {
        await writer.end()
        await observer.end()
        await migrationDb.destroy()
      }
    })
  })
})
