import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { MigrationError, migrateDown, migrateTo, migrationStatus } from '../src/tooling.js'
import { createModel, createResource } from './support/fixtures.js'
import { MIGRATION_002, MIGRATION_005 } from './support/migration-names.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Large objects live outside any table the per-table counters watch: a trigger that unlinks
// them while a down runs would destroy them unreported. The watch of every down, and 005's own,
// compares the database's large objects before COMMIT.

async function largeObjects(db: Kysely<any>): Promise<number> {
  const { rows } = await sql<{
    n: string
  }>`SELECT count(*) AS n FROM pg_catalog.pg_largeobject_metadata`.execute(db)
  return Number(rows[0]!.n)
}

describe.each(testTargets)(
  'an event trigger that unlinks large objects during a down on %s',
  (target) => {
    const database = useTestDatabase(target, MIGRATION_005)

    it.each([MIGRATION_005, MIGRATION_002])(
      "rolls %s's down back, naming them; nothing is lost",
      async (migration) => {
        const { db } = database
        await migrateTo(db, migration)
        await sql`SELECT lo_from_bytea(0, 'invoice one'), lo_from_bytea(0, 'invoice two')`.execute(
          db,
        )
        await sql`
        CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
        BEGIN PERFORM lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata; END $fn$
      `.execute(db)
        await sql`CREATE EVENT TRIGGER hostile ON sql_drop EXECUTE FUNCTION hostile()`.execute(db)
        try {
          const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
          expect(error).toBeInstanceOf(MigrationError)
          expect((error as Error).message).toContain('large objects: 2 removed')
          expect(await largeObjects(db)).toBe(2)
          const applied = (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
          expect(applied.at(-1)).toBe(migration)
        } finally {
          await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
          await sql`DROP FUNCTION IF EXISTS hostile()`.execute(db)
          await sql`SELECT lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata`.execute(db)
        }
      },
    )

    it("rolls 005's down back where a trigger of the rows it moves removes large objects, with the opt-in", async () => {
      const { db } = database
      await migrateTo(db, MIGRATION_005)
      await createResource(db, {
        resource_type: 'openrouter_instant',
        openrouter_model_id: await createModel(db, undefined, 'ai_models'),
        openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: '', params: {} },
      })
      await sql`SELECT lo_from_bytea(0, 'receipt')`.execute(db)
      await sql`
        CREATE FUNCTION hostile() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN PERFORM lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata; RETURN OLD; END $fn$
      `.execute(db)
      await sql`CREATE TRIGGER hostile AFTER DELETE ON x402_resources FOR EACH ROW EXECUTE FUNCTION hostile()`.execute(
        db,
      )
      try {
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (caught: unknown) => caught,
        )
        expect(error).toBeInstanceOf(MigrationError)
        expect((error as Error).message).toContain('large objects: 1 removed')
        expect(await largeObjects(db)).toBe(1)
        const applied = (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
        expect(applied.at(-1)).toBe(MIGRATION_005)
      } finally {
        await sql`DROP TRIGGER IF EXISTS hostile ON x402_resources`.execute(db)
        await sql`DROP FUNCTION IF EXISTS hostile()`.execute(db)
        await sql`SELECT lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata`.execute(db)
      }
    })
  },
)
