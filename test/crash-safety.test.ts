import type { Kysely } from 'kysely'
import type pg from 'pg'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'

import { MIGRATION_WRITER_KEY } from '../src/migrator/lock.js'
import { type SchemaSnapshot, snapshotPublicSchema } from '../src/schema/snapshot.js'
import {
  ensureSupabaseStandIn,
  MIGRATION_LOCK_KEY,
  migrateTo,
  migrateToLatest,
} from '../src/tooling.js'
import { ALL_MIGRATIONS, migrationsAfter, migrationsThrough } from './support/migration-names.js'
import {
  killRunningScripts,
  type ScriptProcess,
  type ScriptResult,
  startScript,
} from './support/script-process.js'
import {
  advisoryLocks,
  backendPid,
  pollUntil,
  recordedMigrations,
  waitForLockWait,
  waitUntilGone,
  withApplicationName,
  withSessions,
} from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// `migrate:latest` killed with SIGKILL at chosen points. Each point is reached without sleeps:
// the test holds a lock that the targeted statement needs, waits until pg_stat_activity shows
// the run's backend queued behind it, and kills the process there. Each time the database holds,
// for every migration, its old state or its new one (005, which runs outside a transaction,
// may keep finished steps, and is then not recorded as done), no migration lock is left behind,
// and the next `migrate:latest` completes with the schema of an uninterrupted run.
//
// A killed client's backend that waits for a lock does not notice the death until the wait
// ends (PostgreSQL's default client_connection_check_interval = 0, Supabase's too): it then
// finishes its statement and fails when it replies. The tests let that happen and show it
// commits nothing, except in the one that sets client_connection_check_interval, where the
// server ends the backend during the wait: that is how a killed index build stays INVALID.
//
// PostgreSQL only: PGlite runs inside the killed process, with one connection, so no other
// session can hold the run at a chosen statement.

const THROUGH_002 = migrationsThrough('002_add_claude_integration')
const AFTER_002 = migrationsAfter('002_add_claude_integration')

/** The application_name of the killed run's sessions, to find its backends. */
const KILLED_RUN = 'x402-killed-migrate'

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and only a server lets another session hold a run at a statement'

interface CrashDatabase {
  db: Kysely<any>
  connectionString: string
  /** Reads pg_stat_activity, pg_locks and the catalog; holds nothing. */
  observer: pg.Client
  /** Holds the lock that stops the run. */
  holder: pg.Client
  /** A second session, for a lock queued behind the run's. */
  queued: pg.Client
}

function startMigrateLatest(connectionString: string): ScriptProcess {
  // A lock_timeout long enough that the run waits where the test holds it, never gives up.
  return startScript('src/cli/migrate.ts', ['latest'], {
    DATABASE_URL: withApplicationName(connectionString, KILLED_RUN),
    MIGRATION_LOCK_TIMEOUT_MS: '60000',
  })
}

/** Waits until the run queues for a lock in `statement`, then kills it there. */
async function killWhileWaiting(
  observer: pg.Client,
  run: ScriptProcess,
  statement: string,
): Promise<void> {
  await waitForLockWait(observer, KILLED_RUN, statement)
  expect((await run.kill()).signal).toBe('SIGKILL')
}

async function expectNoMigrationLock(observer: pg.Client): Promise<void> {
  // The lock's transaction sat idle on its own connection: the server ends it as the socket
  // closes. A writer of the killed run whose backend still waits (a server that does not check
  // for dead clients) keeps only the writer key, shared: the fence that holds the next run back
  // until that writer ends (holdWriterLock).
  await pollUntil(observer, 'no migration lock in the database', async () =>
    (await advisoryLocks(observer)).every((lock) => lock.key === String(MIGRATION_WRITER_KEY)),
  )
}

function appliedBy(result: ScriptResult): string[] {
  return (
    result.stderr
      .split('\n')
      .filter((line) => line.startsWith('applied  '))
      // Without the time each took.
      .map((line) => line.slice('applied  '.length).replace(/ in [\d.]+ m?s$/, ''))
  )
}

/** Whether the two constraints that 005 adds NOT VALID and then validates are validated; absent ones are left out. */
async function constraintsValidated(observer: pg.Client): Promise<Record<string, boolean>> {
  const { rows } = await observer.query<{ conname: string; convalidated: boolean }>(
    `SELECT conname, convalidated FROM pg_constraint
     WHERE conrelid = 'public.x402_resources'::regclass
       AND conname IN ('x402_resources_resource_type_check', 'x402_resources_openrouter_model_id_fkey')`,
  )
  return Object.fromEntries(rows.map((row) => [row.conname, row.convalidated]))
}

/**
 * Whether `relation` exists, read without a lock: while the killed run's backend still queues
 * for a table, every lock on that table queues behind it (the full schema snapshot, whose
 * pg_get_*def calls take ACCESS SHARE, waits until it is gone).
 */
async function relationExists(observer: pg.Client, relation: string): Promise<boolean> {
  const { rows } = await observer.query<{ found: boolean }>(
    'SELECT to_regclass($1) IS NOT NULL AS found',
    [relation],
  )
  return rows[0]!.found
}

const BOTH_VALIDATED = {
  x402_resources_resource_type_check: true,
  x402_resources_openrouter_model_id_fkey: true,
}
const NEITHER_VALIDATED = {
  x402_resources_resource_type_check: false,
  x402_resources_openrouter_model_id_fkey: false,
}

/** 005's partial index: its oid and whether it is valid, or undefined where it does not exist. */
async function openrouterIndex(
  observer: pg.Client,
): Promise<{ oid: number; valid: boolean } | undefined> {
  const { rows } = await observer.query<{ oid: number; valid: boolean }>(
    `SELECT indexrelid::int AS oid, indisvalid AS valid FROM pg_index
     WHERE indexrelid = to_regclass('public.idx_x402_resources_openrouter_model')`,
  )
  return rows[0]
}

describe.skipIf(skipReason !== undefined)(
  `migrate:latest killed with SIGKILL, on postgres${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let uninterrupted: SchemaSnapshot
    beforeAll(async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await migrateToLatest(db, { env: {} })
        uninterrupted = await snapshotPublicSchema(db)
      })
    })
    afterEach(killRunningScripts)

    async function withCrashDatabase(
      use: (database: CrashDatabase) => Promise<void>,
    ): Promise<void> {
      await withTestDatabase('postgres', async ({ db, location }) => {
        const connectionString = serverUrl(location)
        try {
          await withSessions(connectionString, async (session) =>
            use({
              db,
              connectionString,
              observer: await session('x402-test-observer'),
              holder: await session('x402-test-holder'),
              queued: await session('x402-test-queued'),
            }),
          )
        } finally {
          await killRunningScripts()
        }
      })
    }

    /** The next `migrate:latest` applies `pending` and leaves the schema of an uninterrupted run. */
    async function expectNextRunCompletes(
      { db, connectionString, observer }: CrashDatabase,
      pending: readonly string[],
    ): Promise<void> {
      const result = await startMigrateLatest(connectionString).exited
      expect({ code: result.code, applied: appliedBy(result) }, result.stderr).toEqual({
        code: 0,
        applied: pending,
      })
      expect(await recordedMigrations(observer)).toEqual(ALL_MIGRATIONS)
      expect(await constraintsValidated(observer)).toEqual(BOTH_VALIDATED)
      expect(await openrouterIndex(observer)).toMatchObject({ valid: true })
      expect(await snapshotPublicSchema(db)).toEqual(uninterrupted)
      expect(await advisoryLocks(observer)).toEqual([])
    }

    it('in the transaction of 002: nothing of 002 stays, 000 and 001 stay committed, and the next run applies the rest', async () => {
      await withCrashDatabase(async (database) => {
        const { db, connectionString, observer, holder } = database
        // 002 references auth.users: a sign-up in progress (ROW EXCLUSIVE) holds its CREATE TABLE.
        await ensureSupabaseStandIn(db)
        await holder.query('BEGIN; LOCK TABLE auth.users IN ROW EXCLUSIVE MODE')

        await killWhileWaiting(
          observer,
          startMigrateLatest(connectionString),
          'create table "x402_user_claude_configs"',
        )
        await expectNoMigrationLock(observer)
        // 000 and 001 committed, each in a transaction of its own, before 002 began.
        const committed = ALL_MIGRATIONS.slice(0, 3)
        expect(await recordedMigrations(observer)).toEqual(committed)
        expect(await relationExists(observer, 'public.x402_user_claude_configs')).toBe(false)

        // The dead run's backend still waits; let it through: it cannot commit without its client.
        await holder.query('COMMIT')
        await waitUntilGone(observer, KILLED_RUN)
        expect(await recordedMigrations(observer)).toEqual(committed)
        expect(await relationExists(observer, 'public.x402_user_claude_configs')).toBe(false)

        await expectNextRunCompletes(database, migrationsAfter('001_add_prompt_template_fields'))
      })
    })

    it('in step 1 of 005, waiting for ACCESS EXCLUSIVE on x402_resources: the schema stays at 002', async () => {
      await withCrashDatabase(async (database) => {
        const { db, connectionString, observer, holder } = database
        await migrateTo(db, '002_add_claude_integration', { env: {} })
        const before = await snapshotPublicSchema(db)
        await holder.query('BEGIN; LOCK TABLE x402_resources IN ACCESS SHARE MODE')

        await killWhileWaiting(
          observer,
          startMigrateLatest(connectionString),
          'ADD COLUMN openrouter_model_id',
        )
        await expectNoMigrationLock(observer)
        expect(await recordedMigrations(observer)).toEqual(THROUGH_002)
        expect(await relationExists(observer, 'public.user_openrouter_integrations')).toBe(false)

        await holder.query('COMMIT')
        await waitUntilGone(observer, KILLED_RUN)
        expect(await recordedMigrations(observer)).toEqual(THROUGH_002)
        expect(await snapshotPublicSchema(db)).toEqual(before)

        await expectNextRunCompletes(database, AFTER_002)
      })
    })

    it('in step 2 of 005, VALIDATE waiting: step 1 stays, NOT VALID, and 005 is not recorded', async () => {
      await withCrashDatabase(async (database) => {
        const { db, connectionString, observer, holder, queued } = database
        await migrateTo(db, '002_add_claude_integration', { env: {} })
        await holder.query('BEGIN; LOCK TABLE x402_resources IN ACCESS SHARE MODE')
        const run = startMigrateLatest(connectionString)
        await waitForLockWait(observer, KILLED_RUN, 'ADD COLUMN openrouter_model_id')
        // A SHARE UPDATE EXCLUSIVE request (a VACUUM's) queues behind step 1's ACCESS EXCLUSIVE:
        // it is granted as step 1 commits, and then holds VALIDATE back.
        const queuedLock = queued.query(
          'BEGIN; LOCK TABLE x402_resources IN SHARE UPDATE EXCLUSIVE MODE',
        )
        await waitForLockWait(observer, 'x402-test-queued', 'SHARE UPDATE EXCLUSIVE')
        await holder.query('COMMIT')
        await queuedLock

        await killWhileWaiting(observer, run, 'VALIDATE CONSTRAINT')
        await expectNoMigrationLock(observer)
        const expectStepOneOnly = async () => {
          expect(await recordedMigrations(observer)).toEqual(THROUGH_002)
          expect(await constraintsValidated(observer)).toEqual(NEITHER_VALIDATED)
          expect(await openrouterIndex(observer)).toBeUndefined()
          expect(await relationExists(observer, 'public.user_openrouter_integrations')).toBe(true)
        }
        await expectStepOneOnly()

        await queued.query('COMMIT')
        await waitUntilGone(observer, KILLED_RUN)
        await expectStepOneOnly()

        await expectNextRunCompletes(database, AFTER_002)
      })
    })

    it('in step 3 of 005, CREATE INDEX CONCURRENTLY waiting, its backend ended: an INVALID index that the next run rebuilds', async () => {
      await withCrashDatabase(async (database) => {
        const { db, connectionString, observer, holder } = database
        await migrateTo(db, '002_add_claude_integration', { env: {} })
        // The server checks the killed run's sockets during lock waits too, and ends its backends.
        const name = new URL(connectionString).pathname.slice(1)
        await observer.query(
          `ALTER DATABASE ${name} SET client_connection_check_interval = '100ms'`,
        )
        // A report's snapshot, older than the build, which the build must outwait.
        await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM ai_models')

        await killWhileWaiting(
          observer,
          startMigrateLatest(connectionString),
          'CREATE INDEX CONCURRENTLY',
        )
        await waitUntilGone(observer, KILLED_RUN)
        await expectNoMigrationLock(observer)
        expect(await recordedMigrations(observer)).toEqual(THROUGH_002)
        expect(await constraintsValidated(observer)).toEqual(BOTH_VALIDATED)
        const killedBuild = await openrouterIndex(observer)
        expect(killedBuild).toMatchObject({ valid: false })

        await holder.query('COMMIT')
        expect(await openrouterIndex(observer)).toEqual(killedBuild)

        await expectNextRunCompletes(database, AFTER_002)
        expect((await openrouterIndex(observer))!.oid).not.toBe(killedBuild!.oid)
      })
    })

    it('in step 3 of 005, on a server that does not check for dead clients: the orphaned build finishes, and 005 is recorded by the next run', async () => {
      await withCrashDatabase(async (database) => {
        const { db, connectionString, observer, holder } = database
        await migrateTo(db, '002_add_claude_integration', { env: {} })
        await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM ai_models')

        await killWhileWaiting(
          observer,
          startMigrateLatest(connectionString),
          'CREATE INDEX CONCURRENTLY',
        )
        await expectNoMigrationLock(observer)
        expect(await recordedMigrations(observer)).toEqual(THROUGH_002)
        expect(await openrouterIndex(observer)).toMatchObject({ valid: false })

        await holder.query('COMMIT')
        await waitUntilGone(observer, KILLED_RUN)
        // The build was one statement the dead client had sent; recording 005 was its next one.
        expect(await openrouterIndex(observer)).toMatchObject({ valid: true })
        expect(await recordedMigrations(observer)).toEqual(THROUGH_002)

        await expectNextRunCompletes(database, AFTER_002)
      })
    })

    it('while it waits for the migration lock: nothing happens, and the holder keeps its lock', async () => {
      await withCrashDatabase(async (database) => {
        const { db, connectionString, observer, holder } = database
        const before = await snapshotPublicSchema(db)
        const holderPid = await backendPid(holder)
        await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`)

        const run = startMigrateLatest(connectionString)
        await run.lineOn(
          'stderr',
          new RegExp(
            `^\\[db\\] waiting for the migration lock: another run holds it \\(pid ${holderPid}, `,
          ),
        )
        expect((await run.kill()).signal).toBe('SIGKILL')
        await waitUntilGone(observer, KILLED_RUN)
        expect(await advisoryLocks(observer)).toEqual([
          { pid: holderPid, granted: true, key: String(MIGRATION_LOCK_KEY) },
        ])
        expect(await recordedMigrations(observer)).toEqual([])
        expect(await snapshotPublicSchema(db)).toEqual(before)

        await holder.query('COMMIT')
        expect(await advisoryLocks(observer)).toEqual([])
        await expectNextRunCompletes(database, ALL_MIGRATIONS)
      })
    })
  },
)
