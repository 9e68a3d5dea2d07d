import { sql } from 'kysely'
import type pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'

import { createDb, IN_MEMORY, MIGRATION_LOCK_KEY, migrateOnStartup } from '../src/tooling.js'
import { ALL_MIGRATIONS } from './support/migration-names.js'
import { killRunningScripts, type ScriptResult, startScript } from './support/script-process.js'
import {
  advisoryLocks,
  backendPid,
  recordedMigrations,
  withSessions,
} from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// Many app instances start at once against one database. Each is an OS process of its own
// (test/support/startup-instance.ts) calling migrateOnStartup(createDb()), as the app does. All
// of them succeed, every migration is applied exactly once, and an instance that cannot get the
// migration lock in time fails with a message that names the holder and says what to do.

const INSTANCES = 8

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set: app instances are processes on one server'

function startInstance(connectionString: string, env: NodeJS.ProcessEnv = {}) {
  return startScript('test/support/startup-instance.ts', [], {
    DATABASE_URL: connectionString,
    ...env,
  })
}

function appliedLines(result: ScriptResult): string[] {
  return result.stdout.split('\n').filter((line) => line.startsWith('[db] applied migration '))
}

/** An empty server database of the test's own, and a session on it, named as a deploy step. */
function withServerDatabase(
  use: (connectionString: string, holder: pg.Client) => Promise<void>,
): Promise<void> {
  return withTestDatabase('postgres', ({ location }) => {
    const connectionString = serverUrl(location)
    return withSessions(connectionString, async (session) =>
      use(connectionString, await session('x402-deploy-step')),
    )
  })
}

async function holdMigrationLock(holder: pg.Client): Promise<void> {
  await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`)
}

describe.skipIf(skipReason !== undefined)(
  `instances starting at once on postgres${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    afterEach(killRunningScripts)

    it(`${INSTANCES} processes on an empty database all succeed, and each migration is applied once`, async () => {
      await withServerDatabase(async (connectionString, holder) => {
        // A bound on the wait: a run that waits for its waiters shows up as failed instances, not a hang.
        const instances = Array.from({ length: INSTANCES }, () =>
          startInstance(connectionString, { MIGRATION_LOCK_WAIT_MS: '30000' }),
        )
        await Promise.all(instances.map((instance) => instance.lineOn('stdout', 'ready')))

        // The test holds the migration lock while it gives the start signal, and lets go once
        // all eight say they wait for it: proof that they ran at the same time, each having
        // found the migrations pending. Then they race for the lock itself.
        const holderPid = await backendPid(holder)
        await holdMigrationLock(holder)
        for (const instance of instances) instance.child.stdin!.end()
        const waitingNotice = new RegExp(
          `^\\[db\\] waiting for the migration lock: another run holds it \\(pid ${holderPid}, x402-deploy-step, `,
        )
        await Promise.all(instances.map((instance) => instance.lineOn('stdout', waitingNotice)))
        await holder.query('COMMIT')

        const results = await Promise.all(instances.map((instance) => instance.exited))
        expect(results.map(({ code, stderr }) => ({ code, stderr }))).toEqual(
          results.map(() => ({ code: 0, stderr: '' })),
        )
        expect(await recordedMigrations(holder)).toEqual(ALL_MIGRATIONS)
        // One instance applied everything; the others then found nothing left to do.
        const logs = results.map(appliedLines).filter((lines) => lines.length > 0)
        expect(logs).toEqual([ALL_MIGRATIONS.map((name) => `[db] applied migration ${name}`)])
        expect(await advisoryLocks(holder)).toEqual([])
      })
    })

    it('an instance that does not get the lock within MIGRATION_LOCK_WAIT_MS fails, naming the holder, and starts once it is free', async () => {
      await withServerDatabase(async (connectionString, holder) => {
        const holderPid = await backendPid(holder)
        await holdMigrationLock(holder)

        const refused = startInstance(connectionString, { MIGRATION_LOCK_WAIT_MS: '500' })
        refused.child.stdin!.end()
        const failed = await refused.exited
        expect(failed.code).toBe(1)
        expect(failed.stderr.trim()).toMatch(
          new RegExp(
            '^start-up failed: The migration run failed before any migration ran: ' +
              `Waited 500 ms for the migration lock, but another run holds it \\(pid ${holderPid}, x402-deploy-step, for [\\d:]+, idle in transaction\\)\\. ` +
              'Another instance or a deploy step is migrating this database: let it finish and start again, ' +
              'or allow a longer wait with MIGRATION_LOCK_WAIT_MS\\. Nothing was changed\\.$',
          ),
        )
        expect(appliedLines(failed)).toEqual([])
        expect(await recordedMigrations(holder)).toEqual([])

        await holder.query('COMMIT')
        const started = startInstance(connectionString, { MIGRATION_LOCK_WAIT_MS: '500' })
        started.child.stdin!.end()
        const result = await started.exited
        expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' })
        expect(appliedLines(result)).toEqual(
          ALL_MIGRATIONS.map((name) => `[db] applied migration ${name}`),
        )
        expect(await advisoryLocks(holder)).toEqual([])
      })
    })
  },
)

describe('callers starting at once on pglite', () => {
  // PGlite's folder belongs to one process (a second one is refused, see
  // embedded-database.test.ts), so "many instances" are many callers in that process.
  it(`${INSTANCES} concurrent start-ups on one database apply each migration once`, async () => {
    const db = createDb({ dataDir: IN_MEMORY })
    try {
      const logs = Array.from({ length: INSTANCES }, () => [] as string[])
      const outcomes = await Promise.all(
        logs.map((lines) => migrateOnStartup(db, { env: {}, log: (line) => lines.push(line) })),
      )
      expect(outcomes.map((outcome) => outcome.applied.length).sort((a, b) => a - b)).toEqual([
        ...Array(INSTANCES - 1).fill(0),
        ALL_MIGRATIONS.length,
      ])
      expect(logs.filter((lines) => lines.length > 0)).toEqual([
        ALL_MIGRATIONS.map((name) => `[db] applied migration ${name}`),
      ])
      const { rows } = await sql<{
        name: string
      }>`SELECT name FROM x402_migrations.kysely_migration ORDER BY name`.execute(db)
      expect(rows.map((row) => row.name)).toEqual(ALL_MIGRATIONS)
    } finally {
      await db.destroy()
    }
  })
})
