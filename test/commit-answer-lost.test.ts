import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { createDb, MigrationError, migrateDown, migrateTo, migrateUp } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { MIGRATION_002, MIGRATION_005 } from './support/migration-names.js'
import { stallingProxy } from './support/stalling-proxy.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// The COMMIT that writes the history of a migration outside a transaction (005) reaches the
// server and its answer never comes: only the server knows whether it committed. The run says
// so, as for a transaction's COMMIT, names the migration, and names the backups a down made:
// not "Cannot reach the database", which sends the reader to the connection string.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'
const QUERY_TIMEOUT_MS = 3_000

function withQueryTimeout(url: string): string {
  const bounded = new URL(url)
  bounded.searchParams.set('query_timeout', String(QUERY_TIMEOUT_MS))
  return bounded.toString()
}

const UNKNOWN_COMMIT = (name: string) =>
  new RegExp(
    `^The COMMIT of the transaction of ${name} failed: .+\\. The server may have committed it or rolled it back\\..* Run npm run migrate:list to see what is recorded`,
  )

describe.skipIf(skipReason)(
  'a migration outside a transaction whose history COMMIT gets no answer',
  () => {
    it("005's down says the server may have committed it, and names its backups", async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        const url = new URL(serverUrl(location))
        await migrateTo(db, MIGRATION_005)
        const userId = await createUser(db)
        await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'cc:dd')`.execute(
          db,
        )
        const proxy = await stallingProxy(
          url,
          'COMMIT\u0000',
          'connection',
          'delete from "x402_migrations"."kysely_migration"',
        )
        const runDb = createDb({ connectionString: withQueryTimeout(proxy.url(url)) })
        let error: unknown
        try {
          error = await migrateDown(runDb, { allowDataLoss: true, env: {} }).catch(
            (caught: unknown) => caught,
          )
          expect(proxy.stalled()).toBe(true)
        } finally {
          await runDb.destroy()
          await proxy.close()
        }
        const { rows } = await sql<{ name: string }>`
        SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = 'x402_backup' AND table_name LIKE '005_%' ORDER BY 1`.execute(db)
        expect(rows.length).toBeGreaterThan(0)
        expect(error).toBeInstanceOf(MigrationError)
        const message = (error as Error).message
        expect(message).toMatch(UNKNOWN_COMMIT(MIGRATION_005))
        expect(message).not.toMatch(/Cannot reach the database/)
        for (const { name } of rows) expect(message).toContain(`x402_backup."${name}"`)
        expect(message).toMatch(
          /Run npm run migrate:list to see what is recorded before anything else: where 005_\w+ is no longer recorded, the rollback committed, and another migrate:down would revert the migration before it\.$/,
        )
      })
    })

    it("005's up says the server may have committed it", async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        const url = new URL(serverUrl(location))
        await migrateTo(db, MIGRATION_002)
        const proxy = await stallingProxy(
          url,
          'COMMIT\u0000',
          'connection',
          'insert into "x402_migrations"."kysely_migration"',
        )
        const runDb = createDb({ connectionString: withQueryTimeout(proxy.url(url)) })
        let error: unknown
        try {
          error = await migrateUp(runDb, { env: {} }).catch((caught: unknown) => caught)
          expect(proxy.stalled()).toBe(true)
        } finally {
          await runDb.destroy()
          await proxy.close()
        }
        expect(error).toBeInstanceOf(MigrationError)
        expect((error as Error).message).toMatch(UNKNOWN_COMMIT(MIGRATION_005))
        expect((error as MigrationError).migrationName).toBe(MIGRATION_005)
      })
    })
  },
)
