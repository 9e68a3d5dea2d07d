import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type pg from 'pg'
import { describe, expect, it } from 'vitest'

import type { ResumableDown } from '../src/migrator/resumable-down.js'
import { runsInTransaction } from '../src/migrator/provider.js'
import { migrations } from '../src/migrations/index.js'
import {
  checkDrift,
  createDb,
  InterruptedRollbackError,
  MigrationError,
  migrateDown,
  migrateOnStartup,
  migrateTo,
  migrateToLatest,
  migrateUp,
  migrationStatus,
} from '../src/tooling.js'
import { cli } from './support/cli.js'
import { createUser } from './support/fixtures.js'
import {
  MIGRATION_002,
  MIGRATION_005,
  MIGRATION_006,
  migrationsAfter,
} from './support/migration-names.js'
import {
  pollUntil,
  waitForLockWait,
  withApplicationName,
  withSessions,
} from './support/server-sessions.js'
import {
  serverUrl,
  testTargets,
  useTestDatabase,
  withTestDatabase,
} from './support/test-database.js'

// A rollback that runs outside a transaction (005's) can be interrupted between its steps. The
// history then says so (a mark on the migration's row, set before the first step), and until the
// rollback is completed nothing migrates forward: `migrate:latest`, `migrate:up` and start-up
// refuse, naming the migration and `migrate:down`, which completes it from wherever it stopped.
// Each test starts at 006, so that one `migrate:down` (which reverts the newest migration) takes
// the database to 005 and the next one is 005's; what `latest` then applies is derived from the
// list of migrations, whatever came after 006.

const RUN = 'x402-interrupted-down'
const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set: only a server lets a session stop a run at a statement'

it('has a completion check for the down of every migration that runs outside a transaction', () => {
  const outside = Object.entries(migrations)
    .filter(([, migration]) => !runsInTransaction(migration))
    .map(([name]) => name)
  expect(outside).toContain(MIGRATION_005)
  for (const name of outside) {
    expect(typeof (migrations[name] as ResumableDown).downDone, name).toBe('function')
    expect(typeof (migrations[name] as ResumableDown).downBegun, name).toBe('function')
  }
})

describe.each(testTargets)('a refused rollback on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_006)

  it('leaves no mark: it changed nothing, and the migrations still run forward', async () => {
    const { db } = database
    const userId = await createUser(db)
    await db
      .insertInto('x402_user_openrouter_integrations')
      .values({ user_id: userId, encrypted_api_key: 'aa:bb' })
      .execute()
    await migrateDown(db) // 006
    await expect(migrateDown(db, { env: {} })).rejects.toThrow(/would destroy data/)
    expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
      migrationsAfter(MIGRATION_005),
    )
  })
})

/**
 * Runs `migrate:down -- --allow-data-loss` on 005 while `holder` takes the lock `hold` (once the
 * run sends a statement matching `after`, or at once), and terminates the run's backend when it
 * waits for that lock in `statement`, as a lost connection or a kill would stop it there.
 */
async function interruptedAt(
  connectionString: string,
  observer: pg.Client,
  holder: pg.Client,
  hold: string,
  statement: string,
  after?: RegExp,
): Promise<MigrationError> {
  let held: Promise<unknown> | undefined
  const takeHold = () => (held ??= holder.query('BEGIN').then(() => holder.query(hold)))
  const db = createDb({
    connectionString: withApplicationName(connectionString, RUN),
    onStatement: (text) => {
      if (after?.test(text)) void takeHold()
    },
  })
  let run: Promise<unknown> | undefined
  try {
    if (!after) await takeHold()
    run = migrateDown(db, { allowDataLoss: true, lockTimeoutMs: 600_000, env: {} }).then(
      () => undefined,
      (error: unknown) => error,
    )
    const pid = await waitForLockWait(observer, RUN, statement)
    await observer.query('SELECT pg_terminate_backend($1)', [pid])
    const error = await run
    expect(error).toBeInstanceOf(MigrationError)
    return error as MigrationError
  } finally {
    await held
    await holder.query('ROLLBACK').catch(() => {})
    await run
    await db.destroy()
  }
}

/**
 * Interrupts 005's down in the middle: a reader's open transaction, begun while step 2
 * validates, holds step 3's drops (which take ACCESS EXCLUSIVE on x402_resources), and the run
 * is terminated while it waits.
 */
async function interruptedInTheMiddle(connectionString: string): Promise<MigrationError> {
  return withSessions(connectionString, async (session) => {
    return interruptedAt(
      connectionString,
      await session('x402-test-observer'),
      await session('x402-test-holder'),
      'SELECT count(*) FROM x402_resources',
      'DROP',
      /VALIDATE CONSTRAINT x402_resources_openrouter_rollback_check/,
    )
  })
}

async function expectForwardRefused(db: Kysely<any>, connectionString: string): Promise<void> {
  for (const attempt of [
    () => migrateToLatest(db),
    () => migrateUp(db),
    () => migrateOnStartup(db, { env: { DATABASE_URL: connectionString }, log: () => {} }),
  ]) {
    const error = await attempt().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(InterruptedRollbackError)
    expect((error as Error).message).toContain(MIGRATION_005)
    expect((error as Error).message).toContain('npm run migrate:down')
  }
  // A dry run says what the run would say, not what it would apply.
  for (const command of ['latest', 'up']) {
    const { code, stdout, stderr } = await cli([command, '--dry-run'], {
      DATABASE_URL: connectionString,
    })
    expect({ code, stdout }).toEqual({ code: 1, stdout: '' })
    expect(stderr).toContain(MIGRATION_005)
    expect(stderr).toContain('npm run migrate:down')
  }
}

// The script that `migrate:sql -- 005 --down` exports for the SQL Editor is 005's own down: run
// to its end by hand, it leaves 005 recorded, its objects gone and no mark of the runner's.
describe.each(testTargets)('a rollback of 005 completed outside the runner on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_006)

  it('is recorded by migrate:down, after which the migrations run forward', async () => {
    {
      const { db } = database
      await migrateDown(db) // 006
      await migrations[MIGRATION_005]!.down!(db)
      expect((await migrateDown(db, { env: {} })).map((result) => result.migrationName)).toEqual([
        MIGRATION_005,
      ])
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
        migrationsAfter(MIGRATION_002),
      )
      expect((await checkDrift(db)).ok).toBe(true)
    }
  })
})

describe.skipIf(skipReason)('an interrupted rollback of 005 on postgres', () => {
  it('killed after its last step, before the history forgets it: forward refuses, migrate:down completes it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_006)
      await db
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: await createUser(db), encrypted_api_key: 'aa:bb' })
        .execute()
      await migrateDown(db) // 006, in a transaction of its own
      // The marker column exists from earlier rollbacks; a key-share lock on the history row lets
      // the mark through and stops only the DELETE that ends the rollback.
      await sql`ALTER TABLE x402_migrations.kysely_migration ADD COLUMN IF NOT EXISTS reverting_since timestamptz`.execute(
        db,
      )
      await withSessions(connectionString, async (session) => {
        const observer = await session('x402-test-observer')
        await interruptedAt(
          connectionString,
          observer,
          await session('x402-test-holder'),
          `SELECT 1 FROM x402_migrations.kysely_migration WHERE name = '${MIGRATION_005}' FOR KEY SHARE`,
          'delete from',
        )
        await pollUntil(observer, 'the terminated run to end', async () => {
          const { rows } = await observer.query(
            'SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
            [RUN],
          )
          return rows.length === 0
        })
      })
      expect(
        await sql`SELECT to_regclass('public.user_openrouter_integrations') AS t`.execute(db),
      ).toMatchObject({ rows: [{ t: null }] })
      expect(
        (await migrationStatus(db)).find((m) => m.name === MIGRATION_005)?.appliedAt,
      ).toBeInstanceOf(Date)

      await expectForwardRefused(db, connectionString)
      expect((await migrateDown(db, { env: {} })).map((result) => result.migrationName)).toEqual([
        MIGRATION_005,
      ])
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
        migrationsAfter(MIGRATION_002),
      )
      expect((await checkDrift(db)).ok).toBe(true)
    })
  })

  it('killed in the middle, then refused while a key was stored: the mark stays, and forward still refuses', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_006)
      await migrateDown(db) // 006
      await interruptedInTheMiddle(connectionString)
      const userId = await createUser(db)
      await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
        db,
      )
      const refusal = (await migrateDown(db, { env: {} }).catch((error: unknown) => error)) as Error
      expect(refusal.message).toMatch(/would destroy data/)
      expect(refusal.message).toMatch(/began earlier and is not complete/)
      await expectForwardRefused(db, connectionString)
      await migrateDown(db, { allowDataLoss: true, env: {} })
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
        migrationsAfter(MIGRATION_002),
      )
      expect((await checkDrift(db)).ok).toBe(true)
    })
  })

  // Review revg F7: the resumed attempt's failure was rewrapped without its SQLSTATE, so a lock
  // timeout after the mark stood was final, whatever MIGRATION_LOCK_ATTEMPTS said.
  it('killed in the middle, then resumed behind a reader: it retries on lock_timeout as any run does', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_006)
      await migrateDown(db) // 006
      await interruptedInTheMiddle(connectionString)
      await withSessions(connectionString, async (session) => {
        const reader = await session('x402-test-reader')
        await reader.query('BEGIN')
        await reader.query('SELECT count(*) FROM x402_resources')
        const log: string[] = []
        await migrateDown(db, {
          allowDataLoss: true,
          lockTimeoutMs: 200,
          lockAttempts: 5,
          retryDelayMs: 10,
          env: {},
          log: (line) => {
            log.push(line)
            if (/hit lock_timeout \(attempt 1 of 5/.test(line)) void reader.query('ROLLBACK')
          },
        })
        expect(log.join('\n')).toMatch(/hit lock_timeout \(attempt 1 of 5/)
      })
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
        migrationsAfter(MIGRATION_002),
      )
    })
  })

  it('killed in the middle, its mark then cleared by hand: forward still refuses, from what the schema shows', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_006)
      await migrateDown(db) // 006
      await interruptedInTheMiddle(connectionString)
      // A "stale flag" cleared by hand: the half-reverted schema is still there.
      await sql`UPDATE x402_migrations.kysely_migration SET reverting_since = NULL`.execute(db)
      await expectForwardRefused(db, connectionString)
      await migrateDown(db, { env: {} })
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
        migrationsAfter(MIGRATION_002),
      )
      expect((await checkDrift(db)).ok).toBe(true)
    })
  })

  it('killed in the middle: forward refuses instead of passing for applied, and migrate:down completes it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateTo(db, MIGRATION_006)
      const userId = await createUser(db)
      await db
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: userId, encrypted_api_key: 'aa:bb' })
        .execute()
      await migrateDown(db) // 006
      const error = await interruptedInTheMiddle(connectionString)
      // review revb F3: step 1 moved the key; the terminated run's message, read on another
      // connection, and the run that completes the rollback both say where it is.
      const backups = (
        await sql<{ name: string }>`
          SELECT format('x402_backup.%I', table_name) AS name FROM information_schema.tables
          WHERE table_schema = 'x402_backup' AND table_name LIKE '005_%'
        `.execute(db)
      ).rows.map((row) => row.name)
      expect(backups).toHaveLength(1)
      const said = `the rollback copied the data it would destroy to ${backups[0]} (docs/rollback.md says how to restore it)`
      expect(error.message).toContain(`T${said.slice(1)}.`)
      expect(error.backups).toEqual(backups)
      await expectForwardRefused(db, connectionString)
      const lines: string[] = []
      await migrateDown(db, { allowDataLoss: true, env: {}, log: (line) => lines.push(line) })
      expect(lines).toContain(`[db] ${said}`)
      expect(
        (await migrationStatus(db)).find((m) => m.name === MIGRATION_005)?.appliedAt,
      ).toBeUndefined()
      expect((await migrateToLatest(db)).map((result) => result.migrationName)).toEqual(
        migrationsAfter(MIGRATION_002),
      )
      expect((await checkDrift(db)).ok).toBe(true)
      const { rows } = await sql<{ table_name: string }>`
        SELECT table_name FROM information_schema.tables WHERE table_schema = 'x402_backup' AND table_name LIKE '005_user_openrouter_integrations_%'
      `.execute(db)
      const { rows: kept } = await sql<{
        user_id: string
      }>`SELECT user_id FROM ${sql.id('x402_backup', rows[0]!.table_name)}`.execute(db)
      expect(kept).toEqual([{ user_id: userId }])
    })
  })
})
