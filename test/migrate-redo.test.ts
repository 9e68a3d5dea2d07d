import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { MigrationError, migrateRedo, migrationStatus } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// migrate:redo reverts the newest migration and applies it again, through the same data-loss
// guard as migrate:down: where the down would drop data it refuses, before anything changes,
// unless the run opts in; then the data is backed up first.

const MIGRATION_005 = '005_add_openrouter_integration'

describe.each(testTargets)('migrateRedo on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_005)
  // At 005 the plan's names are the schema's: the generated types have production's.
  const plain = () => database.db as Kysely<any>

  it('refuses where the down would drop a stored key, and changes nothing', async () => {
    const userId = await createUser(database.db)
    await plain()
      .insertInto('user_openrouter_integrations')
      .values({ user_id: userId, encrypted_api_key: 'aa:bb' })
      .execute()

    const refused = await migrateRedo(database.db, { env: {} }).catch((caught: unknown) => caught)

    expect(refused).toBeInstanceOf(MigrationError)
    expect(refused).toMatchObject({ migrationName: MIGRATION_005, direction: 'Down' })
    expect((refused as Error).message).toContain(
      "user_openrouter_integrations (users' stored OpenRouter keys): 1",
    )
    expect((refused as Error).message).toContain('--allow-data-loss')
    expect(
      (await migrationStatus(database.db)).find((m) => m.name === MIGRATION_005)?.appliedAt,
    ).toBeInstanceOf(Date)
    expect(
      await plain()
        .selectFrom('user_openrouter_integrations')
        .select('encrypted_api_key')
        .execute(),
    ).toEqual([{ encrypted_api_key: 'aa:bb' }])
  })

  it('with the opt-in, backs the key up, reverts and applies again', async () => {
    const results = await migrateRedo(database.db, { env: {}, allowDataLoss: true })

    expect(
      results.map(({ migrationName, direction, status }) => [migrationName, direction, status]),
    ).toEqual([
      [MIGRATION_005, 'Down', 'Success'],
      [MIGRATION_005, 'Up', 'Success'],
    ])
    expect((await migrationStatus(database.db)).filter((m) => m.appliedAt).at(-1)?.name).toBe(
      MIGRATION_005,
    )
    // Applied again: the table is back, empty; its row is in x402_backup.
    expect(await plain().selectFrom('user_openrouter_integrations').selectAll().execute()).toEqual(
      [],
    )
    const { rows } = await sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = 'x402_backup' AND table_name LIKE '%user_openrouter_integrations%'
    `.execute(database.db)
    expect(rows).toHaveLength(1)
    const backedUp = await sql<{
      encrypted_api_key: string
    }>`SELECT encrypted_api_key FROM ${sql.table(`x402_backup.${rows[0]!.table_name}`)}`.execute(
      database.db,
    )
    expect(backedUp.rows).toEqual([{ encrypted_api_key: 'aa:bb' }])
  })
})

describe.each(testTargets)('migrateRedo with nothing applied on %s', (target) => {
  const database = useTestDatabase(target, 'none')

  it('does nothing', async () => {
    expect(await migrateRedo(database.db, { env: {} })).toEqual([])
    expect((await migrationStatus(database.db)).every((m) => !m.appliedAt)).toBe(true)
  })
})
