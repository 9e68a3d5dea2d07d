import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { MigrationError, migrateDown, migrateTo, migrationStatus } from '../src/tooling.js'
import { createInstantResource } from './support/fixtures.js'
import { MIGRATION_002, MIGRATION_005, MIGRATION_008 } from './support/migration-names.js'
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
      await createInstantResource(db)
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

// Emptying a large object (lo_truncate) or overwriting it (lo_put) keeps its oid: the watch of
// the oids sees nothing, but the server counts the pages of pg_catalog.pg_largeobject that the
// transaction deleted and updated, and a down that deleted or updated one rolls back.

/**
 * Moves the database to `migration`, through downs that earlier tests left data for (their
 * resources and models): with the opt-in, that data goes to x402_backup.
 */
function moveTo(db: Kysely<any>, migration: string) {
  return migrateTo(db, migration, { allowDataLoss: true, env: {} })
}

/** The content of every large object, by oid. */
async function largeObjectContents(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ content: string }>`
    SELECT oid::text || '=' || encode(lo_get(oid), 'hex') AS content
    FROM pg_catalog.pg_largeobject_metadata ORDER BY oid
  `.execute(db)
  return rows.map((row) => row.content)
}

/** Several pages each (2 kB a page): emptying one deletes rows of pg_largeobject. */
const DOCUMENTS = sql`SELECT lo_from_bytea(0, convert_to(repeat('contract one ', 700), 'UTF8')),
                             lo_from_bytea(0, convert_to(repeat('contract two ', 700), 'UTF8'))`

/** What a hostile function does to the first large object: it stays, emptied or overwritten. */
const CONTENT_CHANGES = [
  [
    'empties',
    `fd := lo_open((SELECT min(oid) FROM pg_catalog.pg_largeobject_metadata), 131072);
     PERFORM lo_truncate(fd, 0); PERFORM lo_close(fd);`,
  ],
  [
    'overwrites',
    `PERFORM lo_put((SELECT min(oid) FROM pg_catalog.pg_largeobject_metadata), 0, '\\x00000000'::bytea);`,
  ],
] as const

describe.each(testTargets)(
  'an event trigger that empties or overwrites a large object during a down on %s',
  (target) => {
    const database = useTestDatabase(target, MIGRATION_005)

    describe.each(CONTENT_CHANGES)('one that %s it', (_, change) => {
      it.each([MIGRATION_005, MIGRATION_002, MIGRATION_008])(
        "rolls %s's down back, naming large objects; every byte is kept",
        async (migration) => {
          const { db } = database
          await moveTo(db, migration)
          await DOCUMENTS.execute(db)
          const before = await largeObjectContents(db)
          await sql
            .raw(
              `CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
              DECLARE fd int;
              BEGIN ${change} END $fn$`,
            )
            .execute(db)
          await sql`CREATE EVENT TRIGGER hostile ON sql_drop EXECUTE FUNCTION hostile()`.execute(db)
          try {
            const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
            expect(error).toBeInstanceOf(MigrationError)
            expect((error as Error).message).toContain(
              'large objects: content deleted or overwritten',
            )
            expect((error as Error).message).toContain('Nothing was changed')
            expect(await largeObjectContents(db)).toEqual(before)
            const applied = (await migrationStatus(db))
              .filter((m) => m.appliedAt)
              .map((m) => m.name)
            expect(applied.at(-1)).toBe(migration)
          } finally {
            await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
            await sql`DROP FUNCTION IF EXISTS hostile()`.execute(db)
            await sql`SELECT lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata`.execute(db)
          }
        },
      )

      it("rolls 005's down back where a trigger of the rows it moves does it, with the opt-in", async () => {
        const { db } = database
        await moveTo(db, MIGRATION_005)
        await createInstantResource(db)
        await DOCUMENTS.execute(db)
        const before = await largeObjectContents(db)
        await sql
          .raw(
            `CREATE FUNCTION hostile() RETURNS trigger LANGUAGE plpgsql AS $fn$
            DECLARE fd int;
            BEGIN ${change} RETURN NULL; END $fn$`,
          )
          .execute(db)
        await sql`CREATE TRIGGER hostile AFTER DELETE ON x402_resources FOR EACH STATEMENT EXECUTE FUNCTION hostile()`.execute(
          db,
        )
        try {
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (caught: unknown) => caught,
          )
          expect(error).toBeInstanceOf(MigrationError)
          expect((error as Error).message).toContain(
            'large objects: content deleted or overwritten',
          )
          expect((error as Error).message).toContain('Nothing was changed')
          expect(await largeObjectContents(db)).toEqual(before)
          const applied = (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
          expect(applied.at(-1)).toBe(MIGRATION_005)
        } finally {
          await sql`DROP TRIGGER IF EXISTS hostile ON x402_resources`.execute(db)
          await sql`DROP FUNCTION IF EXISTS hostile()`.execute(db)
          await sql`DELETE FROM x402_resources`.execute(db)
          await sql`SELECT lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata`.execute(db)
        }
      })
    })
  },
)
