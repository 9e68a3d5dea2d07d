import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { withDialectHooks } from '../src/connection/dialect-hooks.js'
import { withoutKyselyMigrationLock } from '../src/connection/without-kysely-migration-lock.js'
import { withMigrationLock } from '../src/migrator/lock.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// A direct connection is never taken for a transaction pooler. CI failed once on this: its
// other tests' DDL filled the server's shared invalidation queue, the server had the probe's
// idle backend catch up on it, in a transaction of its own, and the probe read the backend's
// transaction count as proof that another client had used it. PostgreSQL only: PGlite has no
// pooler and no probe.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

/**
 * Sends more invalidation messages than the server's queue holds half of (4,096 slots, a signal
 * to the backend furthest behind at half), so every idle backend of the cluster catches up.
 */
async function floodInvalidations(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`
      DO $flood$
      BEGIN
        FOR i IN 1..400 LOOP
          CREATE TEMP TABLE x402_flood (a int, b int, c int);
          DROP TABLE x402_flood;
        END LOOP;
      END
      $flood$`)
    // Gives the signalled backends a moment to catch up while idle, as they do between the
    // probe's queries when other sessions run DDL; the outcome must not depend on it.
    await new Promise((resolve) => setTimeout(resolve, 200))
  } finally {
    await client.end()
  }
}

describe.skipIf(skipReason)('the transaction-pooler probe on a direct connection', () => {
  it('is not fooled by the server catching an idle backend up on invalidations', async () => {
    await withTestDatabase('postgres', async ({ location }) => {
      const url = serverUrl(location)
      for (let round = 0; round < 3; round += 1) {
        let flooded = false
        const db = new Kysely<any>({
          dialect: withoutKyselyMigrationLock(
            withDialectHooks(
              new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }),
              {
                async aroundQuery(_connection, query, run) {
                  // Between the probe's second and third question, as the lock session begins.
                  if (!flooded && query.sql.startsWith('BEGIN')) {
                    flooded = true
                    await floodInvalidations(url)
                  }
                  return run()
                },
              },
            ),
          ),
        })
        try {
          expect(await withMigrationLock(db, async (session) => session.transactionPooler)).toBe(
            false,
          )
          expect(flooded).toBe(true)
        } finally {
          await db.destroy()
        }
      }
    })
  })
})
