import { describe, expect, it } from 'vitest'

import { migrateDown, migrateTo, migrateUp } from '../src/tooling.js'
import { snapshotPublicSchema } from '../src/schema/snapshot.js'
import { testTargets, useTestDatabase } from './support/test-database.js'
import { BEFORE_005, MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'

// down is the complete reverse of 005 and of 006 (production's names): the schema after it is the
// schema before, compared catalog to catalog, and up, down, up works. (What down does with data is in
// rollback-keeps-data.test.ts.)

describe.each(testTargets)('rolling back on %s', (target) => {
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
  })

  it('restores the schema of 005 when 006 is rolled back, and both go down together', async () => {
    const { db } = database
    const before = await snapshotPublicSchema(db)
    await migrateUp(db)
    const at005 = await snapshotPublicSchema(db)

    expect((await migrateTo(db, MIGRATION_006)).map((result) => result.migrationName)).toEqual([
      MIGRATION_006,
    ])
    const latest = await snapshotPublicSchema(db)
    expect(Object.keys(latest.relations)).toEqual(
      expect.arrayContaining(['x402_openrouter_models', 'x402_user_openrouter_integrations']),
    )
    expect(Object.keys(latest.relations)).not.toEqual(expect.arrayContaining(['ai_models']))
    expect(Object.keys(latest.relations)).not.toEqual(
      expect.arrayContaining(['user_openrouter_integrations']),
    )

    expect((await migrateDown(db)).map((result) => result.migrationName)).toEqual([MIGRATION_006])
    expect(await snapshotPublicSchema(db)).toEqual(at005)

    await migrateTo(db, MIGRATION_006)
    const reverted = await migrateTo(db, BEFORE_005)
    expect(reverted.map((result) => [result.migrationName, result.direction])).toEqual([
      [MIGRATION_006, 'Down'],
      [MIGRATION_005, 'Down'],
    ])
    expect(await snapshotPublicSchema(db)).toEqual(before)
  })
})
