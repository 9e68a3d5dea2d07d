import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { createDb, MigrationError, migrateDown, migrationStatus } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { serverUrl, testTargets, useTestDatabase } from './support/test-database.js'
import { MIGRATION_002, MIGRATION_005 } from './support/migration-names.js'

// Only the run's own opt-in (--allow-data-loss, MIGRATION_ALLOW_DATA_LOSS, allowDataLoss) lets a
// down destroy data: a default of the database or the role for x402.allow_data_loss does not.

async function applied(db: Kysely<any>): Promise<string[]> {
  return (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
}

async function databaseOptsIn(db: Kysely<any>, on: boolean): Promise<void> {
  const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(db)
  const database = sql.id(rows[0]!.name)
  await (
    on
      ? sql`ALTER DATABASE ${database} SET x402.allow_data_loss = on`
      : sql`ALTER DATABASE ${database} RESET x402.allow_data_loss`
  ).execute(db)
}

describe.each(testTargets)('a database default of x402.allow_data_loss on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  // A database's default reaches the sessions that start after it: on a server, the run's own.
  it.skipIf(target === 'pglite')(
    "does not opt 005's down in: it refuses, and nothing changes",
    async () => {
      const { db, location } = database
      const userId = await createUser(db)
      await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
        db,
      )
      await databaseOptsIn(db, true)
      try {
        const fresh = createDb({ connectionString: serverUrl(location) })
        const error = await migrateDown(fresh, { env: {} })
          .catch((caught: unknown) => caught)
          .finally(() => fresh.destroy())
        expect(error).toBeInstanceOf(MigrationError)
        expect((error as Error).message).toContain('would destroy data')
        expect(await applied(db)).toContain(MIGRATION_005)
        const { rows } = await sql<{
          n: number
        }>`SELECT count(*)::int AS n FROM user_openrouter_integrations`.execute(db)
        expect(rows).toEqual([{ n: 1 }])
      } finally {
        await databaseOptsIn(db, false)
      }
    },
  )

  it("names 005's backups after a down that made them", async () => {
    const { db } = database
    const userId = await createUser(db)
    await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'cc:dd')`.execute(
      db,
    )
    const lines: string[] = []
    await migrateDown(db, { allowDataLoss: true, env: {}, log: (line) => lines.push(line) })
    expect(await applied(db)).not.toContain(MIGRATION_005)
    expect(await applied(db)).toContain(MIGRATION_002)
    const { rows } = await sql<{ name: string }>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = 'x402_backup' AND table_name LIKE '005_%' ORDER BY 1
    `.execute(db)
    expect(rows.length).toBeGreaterThan(0)
    for (const { name } of rows) expect(lines.join('\n')).toContain(`x402_backup."${name}"`)
  })
})
