import { execFileSync } from 'node:child_process'

import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { withDialectHooks } from '../src/connection/dialect-hooks.js'
import { withoutKyselyMigrationLock } from '../src/connection/without-kysely-migration-lock.js'
import { MIGRATION_LOCK_KEY, migrateDown, migrateTo } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// rev-f2 F2: 005's down runs in steps outside a transaction. Its first step committed, its second
// hit lock_timeout, and the lock session was terminated before the retry: the run stopped at the
// retry's lock check, and said "failed before any migration ran … Nothing was changed", with the
// keys in x402_backup and a rollback mark standing. PostgreSQL only: PGlite's lock has no session.
// Nothing here waits on a clock: the blocker holds its lock before step 2's VALIDATE is sent, and
// the lock session is gone before the retry asks for it.

async function backupsOf005(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT format('x402_backup.%I', table_name) AS name FROM information_schema.tables
    WHERE table_schema = 'x402_backup' AND table_name LIKE '005_%' ORDER BY 1
  `.execute(db)
  return rows.map((row) => row.name)
}

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

describe.skipIf(skipReason)(
  'a non-transactional down that loses its lock between two tries',
  () => {
    it('says that its finished steps stay, not that nothing was changed', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        const url = serverUrl(location)
        await migrateTo(db, MIGRATION_005, { env: {} })
        const userId = await createUser(db)
        await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
          db,
        )
        const blocker = new pg.Client({ connectionString: url })
        await blocker.connect()
        let blocked = false
        let terminated = false
        // The terminated lock session's connection reports its end: createDb's pool listens too.
        const pool = new pg.Pool({ connectionString: url })
        pool.on('error', () => {})
        pool.on('connect', (client) => client.on('error', () => {}))
        const run = new Kysely<any>({
          dialect: withoutKyselyMigrationLock(
            withDialectHooks(new PostgresDialect({ pool }), {
              async aroundQuery(_connection, query, run) {
                // Step 2 is about to VALIDATE: another session holds what it needs first.
                if (!blocked && query.sql.includes('VALIDATE CONSTRAINT')) {
                  blocked = true
                  await blocker.query('BEGIN')
                  await blocker.query('LOCK TABLE x402_resources IN SHARE UPDATE EXCLUSIVE MODE')
                }
                return run()
              },
            }),
          ),
        })
        try {
          const error = await migrateDown(run, {
            allowDataLoss: true,
            lockTimeoutMs: 200,
            env: {},
            log: (line) => {
              // The first try hit lock_timeout: the lock session goes before the next. The call
              // returns once its backend has exited (pg_terminate_backend's wait).
              if (terminated || !/trying again/.test(line)) return
              terminated =
                execFileSync(
                  'psql',
                  [
                    url,
                    '-qAtc',
                    `SELECT bool_and(pg_terminate_backend(pid, 60000)) FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND objid = ${MIGRATION_LOCK_KEY} AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
                  ],
                  { encoding: 'utf8' },
                ).trim() === 't'
            },
          }).catch((caught: unknown) => caught)
          expect(blocked).toBe(true)
          expect(terminated).toBe(true)
          const message = String((error as Error).message)
          expect(message).toMatch(/lock was lost/)
          expect(message).not.toMatch(/before any migration ran|Nothing was changed/)
          expect(message).toMatch(/005_add_openrouter_integration/)
          // review revb F3: step 1 moved the key to x402_backup, and the message says where.
          const backups = await backupsOf005(db)
          expect(backups).toHaveLength(1)
          expect(message).toContain(
            `The rollback copied the data it would destroy to ${backups[0]} (docs/rollback.md says how to restore it).`,
          )
          // The run that completes the rollback names it too, though it did not make it.
          await blocker.query('ROLLBACK')
          const lines: string[] = []
          const completed = await migrateDown(db, {
            allowDataLoss: true,
            env: {},
            log: (line) => lines.push(line),
          })
          expect(completed.map((result) => result.migrationName)).toEqual([MIGRATION_005])
          expect(lines).toContain(
            `[db] the rollback copied the data it would destroy to ${backups[0]} (docs/rollback.md says how to restore it)`,
          )
        } finally {
          await blocker.end()
          await run.destroy()
        }
      })
    }, 120_000)
  },
)
