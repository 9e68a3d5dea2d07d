import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  exportMigrationSql,
  MigrationError,
  migrateDown,
  migrateTo,
  migrateToLatest,
  migrationStatus,
} from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { createModel, createResource, createUser } from './support/fixtures.js'
import { snapshotPublicSchema } from '../src/schema/snapshot.js'
import { testTargets, useTestDatabase } from './support/test-database.js'
import { MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'

// Rolling back 005 never loses data silently: it refuses, before changing anything, while users'
// keys or OpenRouter resources exist, and names each table with its row count. With the opt-in
// it goes ahead, and the rows are in schema x402_backup, from where they can be put back.

describe.each(testTargets)('rolling back 005 with data on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_005)
  // At 005 the plan's names are the schema's: the generated types have production's.
  const plain = () => database.db as Kysely<any>

  async function seed() {
    const { db } = database
    const userId = await createUser(db)
    await plain()
      .insertInto('user_openrouter_integrations')
      .values({ user_id: userId, encrypted_api_key: 'aa:bb' })
      .execute()
    const modelId = await createModel(db, undefined, 'ai_models')
    const instantId = await createResource(db, {
      resource_type: 'openrouter_instant',
      openrouter_model_id: modelId,
      openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: 'keep me', params: {} },
    })
    const configuredId = await createResource(db, {
      resource_type: 'proxy',
      openrouter_config: { modelId: 'x', systemPrompt: '', params: {} },
    })
    const plainId = await createResource(db)
    return { userId, instantId, configuredId, plainId }
  }

  it('refuses before changing anything, naming each table and its row count', async () => {
    const { db } = database
    const { instantId } = await seed()
    const schema = await snapshotPublicSchema(db)

    const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)

    expect(error).toBeInstanceOf(MigrationError)
    expect(error).toMatchObject({ migrationName: MIGRATION_005, direction: 'Down' })
    const message = (error as Error).message
    expect(message).toContain("user_openrouter_integrations (users' stored OpenRouter keys): 1")
    expect(message).toContain(
      "x402_resources of type 'openrouter_instant' (the restored resource_type check rejects them): 1",
    )
    expect(message).toContain(
      'other x402_resources with openrouter_model_id or openrouter_config set: 1',
    )
    expect(message).toContain('Nothing was changed.')
    expect(message).toContain('npm run migrate:down -- --allow-data-loss')

    expect(await snapshotPublicSchema(db)).toEqual(schema)
    expect(
      (await migrationStatus(db)).find((m) => m.name === MIGRATION_005)?.appliedAt,
    ).toBeInstanceOf(Date)
    expect(
      await plain()
        .selectFrom('user_openrouter_integrations')
        .select('encrypted_api_key')
        .execute(),
    ).toEqual([{ encrypted_api_key: 'aa:bb' }])
    const instant = await db
      .selectFrom('x402_resources')
      .select('openrouter_config')
      .where('id', '=', instantId)
      .executeTakeFirst()
    expect(instant?.openrouter_config?.systemPrompt).toBe('keep me')
  })

  it('refuses in the exported down script too, as the SQL Editor would run it, and changes nothing', async () => {
    const { db } = database
    const schema = await snapshotPublicSchema(db)
    const script = await exportMigrationSql(MIGRATION_005, 'down')
    // Without psql's \set, which only psql understands: an error stops the loop as it stops psql.
    const statements = script
      .replace(/^\\.*\n/gm, '')
      .split(/;\n\n/)
      .filter((statement) => !/^\s*(--.*\n?)*\s*$/.test(statement))

    const error = await db
      .connection()
      .execute(async (connection) => {
        try {
          for (const statement of statements) await sql.raw(statement).execute(connection)
        } finally {
          await sql`ROLLBACK`.execute(connection).catch(() => {})
        }
      })
      .catch((caught: unknown) => caught)

    expect((error as Error).message).toContain(
      "Rolling back 005_add_openrouter_integration would destroy data: user_openrouter_integrations (users' stored OpenRouter keys): 1",
    )
    expect(await snapshotPublicSchema(db)).toEqual(schema)
    expect(
      await plain()
        .selectFrom('user_openrouter_integrations')
        .select('encrypted_api_key')
        .execute(),
    ).toEqual([{ encrypted_api_key: 'aa:bb' }])
  })

  it('refuses through the later migrations too: migrateTo before 005 stops at each down that would lose data', async () => {
    const { db } = database
    await migrateToLatest(db)
    // 006 first: the catalog's row has values in the columns 006 added (modality, is_curated, …).
    // The later migrations' downs ran in the same transaction as 006's, and went back with it.
    const error = await migrateTo(db, '002_add_claude_integration', { env: {} }).catch(
      (caught: unknown) => caught,
    )
    expect(error).toMatchObject({ migrationName: MIGRATION_006, direction: 'Down' })
    expect((error as Error).message).toContain(
      'column public.x402_openrouter_models.modality (dropped): 1 value(s)',
    )
    expect((error as Error).message).toContain('Nothing was changed.')
    expect((await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)).toEqual(
      migrationNames,
    )

    // With 006 rolled back (its catalog copied to x402_backup first), 005 refuses in turn.
    await migrateTo(db, MIGRATION_005, { env: {}, allowDataLoss: true })
    const refused = await migrateTo(db, '002_add_claude_integration', { env: {} }).catch(
      (caught: unknown) => caught,
    )
    expect(refused).toMatchObject({ migrationName: MIGRATION_005, direction: 'Down' })
    expect(
      (await migrationStatus(db))
        .filter((m) => m.appliedAt)
        .map((m) => m.name)
        .at(-1),
    ).toBe(MIGRATION_005)
  })

  it('with the opt-in, rolls back and keeps every row it dropped in x402_backup, restorable', async () => {
    const { db } = database
    const before = await db.selectFrom('x402_resources').selectAll().orderBy('id').execute()
    const keys = await plain().selectFrom('user_openrouter_integrations').selectAll().execute()
    expect(keys.length).toBeGreaterThan(0)

    await migrateDown(db, { allowDataLoss: true })

    expect(
      (await migrationStatus(db)).find((m) => m.name === MIGRATION_005)?.appliedAt,
    ).toBeUndefined()
    const { rows: backups } = await sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = 'x402_backup' ORDER BY table_name
    `.execute(db)
    const keysBackup = backups.find((row) =>
      row.table_name.startsWith('005_user_openrouter_integrations_'),
    )!.table_name
    const resourcesBackup = backups.find((row) =>
      row.table_name.startsWith('005_x402_resources_'),
    )!.table_name

    const { rows: backedUpKeys } = await sql<
      Record<string, unknown>
    >`SELECT * FROM ${sql.id('x402_backup', keysBackup)}`.execute(db)
    expect(backedUpKeys).toEqual(keys)
    const { rows: backedUpResources } = await sql<{ id: string; openrouter_config: unknown }>`
      SELECT id, openrouter_config FROM ${sql.id('x402_backup', resourcesBackup)} ORDER BY id
    `.execute(db)
    const touched = before.filter(
      (row) =>
        row.resource_type === 'openrouter_instant' ||
        row.openrouter_config ||
        row.openrouter_model_id,
    )
    expect(backedUpResources).toEqual(
      touched.map(({ id, openrouter_config }) => ({ id, openrouter_config })),
    )

    // The documented way back: apply 005 again, then copy the rows back.
    await migrateTo(db, MIGRATION_005)
    await sql`INSERT INTO user_openrouter_integrations SELECT * FROM ${sql.id('x402_backup', keysBackup)}`.execute(
      db,
    )
    await sql`
      INSERT INTO x402_resources SELECT * FROM ${sql.id('x402_backup', resourcesBackup)} b
      WHERE b.resource_type = 'openrouter_instant'
    `.execute(db)
    await sql`
      UPDATE x402_resources r SET openrouter_model_id = b.openrouter_model_id, openrouter_config = b.openrouter_config
      FROM ${sql.id('x402_backup', resourcesBackup)} b WHERE r.id = b.id
    `.execute(db)
    expect(await db.selectFrom('x402_resources').selectAll().orderBy('id').execute()).toEqual(
      before,
    )
    expect(await plain().selectFrom('user_openrouter_integrations').selectAll().execute()).toEqual(
      keys,
    )
  })

  it('rolls back without the opt-in when there is nothing to lose', async () => {
    const { db } = database
    await plain().deleteFrom('user_openrouter_integrations').execute()
    await db
      .deleteFrom('x402_resources')
      .where('resource_type', '=', 'openrouter_instant')
      .execute()
    await db
      .updateTable('x402_resources')
      .set({ openrouter_model_id: null, openrouter_config: null })
      .execute()
    expect((await migrateDown(db, { env: {} })).map((result) => result.migrationName)).toEqual([
      MIGRATION_005,
    ])
  })
})
