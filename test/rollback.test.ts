import { describe, expect, it } from 'vitest'

import { MigrationError, migrateDown, migrateTo, migrateToLatest, migrateUp, migrationStatus } from '../src/index.js'
import { createResource } from './support/fixtures.js'
import { snapshotPublicSchema } from './support/schema-snapshot.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// down is the complete reverse of 005: the schema after it is the schema before 005, compared
// catalog to catalog, and up, down, up works.

const BEFORE_005 = '002_add_claude_integration'
const MIGRATION_005 = '005_add_openrouter_integration'

describe.each(testTargets)('rolling back 005 on %s', (target) => {
  const database = useTestDatabase(target, BEFORE_005)

  it('restores the schema from before 005 exactly, and up, down, up works', async () => {
    const { db } = database
    const before = await snapshotPublicSchema(db)

    expect((await migrateUp(db)).map((result) => result.migrationName)).toEqual([MIGRATION_005])
    const after = await snapshotPublicSchema(db)
    expect(after).not.toEqual(before)

    expect((await migrateDown(db)).map((result) => result.migrationName)).toEqual([MIGRATION_005])
    expect(await snapshotPublicSchema(db)).toEqual(before)

    await migrateUp(db)
    expect(await snapshotPublicSchema(db)).toEqual(after)
    await migrateDown(db)
    expect(await snapshotPublicSchema(db)).toEqual(before)
    await migrateToLatest(db)
    expect(await snapshotPublicSchema(db)).toEqual(after)
  })

  it('fails before dropping anything while an openrouter_instant resource exists, and keeps it', async () => {
    const { db } = database
    await migrateToLatest(db)
    const schema = await snapshotPublicSchema(db)
    const resourceId = await createResource(db, {
      resource_type: 'openrouter_instant',
      openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: 'keep me', params: {} },
    })

    const error = await migrateDown(db).catch((caught: unknown) => caught)

    expect(error).toBeInstanceOf(MigrationError)
    expect(error).toMatchObject({ migrationName: MIGRATION_005, direction: 'Down', code: '23514' })
    expect((error as Error).message).toMatch(
      /^Migration 005_add_openrouter_integration failed \(down\): check constraint "x402_resources_resource_type_check" of relation "x402_resources" is violated by some row \(SQLSTATE 23514\)\. The run was rolled back/,
    )
    expect(await snapshotPublicSchema(db)).toEqual(schema)
    expect((await migrationStatus(db)).at(-1)).toMatchObject({ name: MIGRATION_005, appliedAt: expect.any(Date) })
    const kept = await db.selectFrom('x402_resources').select('openrouter_config').where('id', '=', resourceId).executeTakeFirst()
    expect(kept?.openrouter_config?.systemPrompt).toBe('keep me')

    await db.deleteFrom('x402_resources').where('id', '=', resourceId).execute()
    await migrateTo(db, BEFORE_005)
  })
})
