import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { MigrationError, migrateDown, migrateTo, migrationStatus } from '../src/tooling.js'
import { createInstantResource } from './support/fixtures.js'
import { MIGRATION_002, MIGRATION_005, MIGRATION_008 } from './support/migration-names.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// A column of a composite type keeps its values in the table, but their fields are the type's
// attributes: ALTER TYPE … DROP ATTRIBUTE … CASCADE destroys a field of every row, though no row
// counter, storage or column of the table changes. The watch of every down, and 005's own, note
// the attributes of the composite types that the columns of a table holding rows use (directly,
// as an array's elements, through a domain or another composite type), and refuse the down where
// one is gone or changed type.

/**
 * Moves the database to `migration`, through downs that earlier tests left data for (their
 * resources and models): with the opt-in, that data goes to x402_backup.
 */
function moveTo(db: Kysely<any>, migration: string) {
  return migrateTo(db, migration, { allowDataLoss: true, env: {} })
}

async function applied(db: Kysely<any>): Promise<string[]> {
  return (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
}

/** Every customer's contacts, as text. */
async function contacts(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ row: string }>`
    SELECT concat_ws(' | ', c::text, many::text, via_domain::text, nested::text) AS row
    FROM public.customers ORDER BY id
  `.execute(db)
  return rows.map((row) => row.row)
}

/**
 * Table customers, whose columns use type contact directly, as an array, through a domain, and
 * nested in another composite type; with `rows` rows.
 */
async function customers(db: Kysely<any>, rows: number): Promise<void> {
  await sql`CREATE TYPE public.contact AS (email text, phone text)`.execute(db)
  await sql`CREATE DOMAIN public.checked_contact AS public.contact`.execute(db)
  await sql`CREATE TYPE public.card AS (label text, who public.contact)`.execute(db)
  await sql`
    CREATE TABLE public.customers (id int PRIMARY KEY, c public.contact, many public.contact[],
                                   via_domain public.checked_contact, nested public.card)
  `.execute(db)
  await sql`
    INSERT INTO public.customers
    SELECT g, ROW('u' || g || '@x.io', '+1-555-' || g)::public.contact,
           ARRAY[ROW('a' || g, 'p' || g)::public.contact],
           ROW('d' || g, 'q' || g)::public.contact::public.checked_contact,
           ROW('card', ROW('n' || g, 'r' || g)::public.contact)::public.card
    FROM generate_series(1, ${sql.lit(rows)}) AS g
  `.execute(db)
}

async function cleanUp(db: Kysely<any>): Promise<void> {
  await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
  await sql`DROP FUNCTION IF EXISTS hostile() CASCADE`.execute(db)
  await sql`DROP TABLE IF EXISTS public.customers`.execute(db)
  await sql`DROP TYPE IF EXISTS public.card, public.checked_contact, public.contact CASCADE`.execute(
    db,
  )
}

/** An event trigger of the down's drops that drops attribute `attribute` of type `type`. */
async function hostile(db: Kysely<any>, type: string, attribute: string): Promise<void> {
  await sql
    .raw(
      `CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = '${type}'::regclass AND attname = '${attribute}'
                   AND NOT attisdropped) THEN
          ALTER TYPE ${type} DROP ATTRIBUTE ${attribute} CASCADE;
        END IF;
      END $fn$`,
    )
    .execute(db)
  await sql`CREATE EVENT TRIGGER hostile ON sql_drop EXECUTE FUNCTION hostile()`.execute(db)
}

describe.each(testTargets)(
  'an attribute of a composite type dropped during a down on %s',
  (target) => {
    const database = useTestDatabase(target, MIGRATION_005)

    it.each([
      [MIGRATION_008, 'public.contact', 'phone'],
      [MIGRATION_002, 'public.contact', 'phone'],
      [MIGRATION_005, 'public.contact', 'phone'],
      [MIGRATION_008, 'public.card', 'who'],
      [MIGRATION_005, 'public.card', 'who'],
    ])(
      "rolls %s's down back where %s loses %s, naming it; every value is kept",
      async (migration, type, attribute) => {
        const { db } = database
        await moveTo(db, migration)
        await cleanUp(db)
        await customers(db, 25)
        const before = await contacts(db)
        await hostile(db, type, attribute)
        try {
          const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
          expect(error).toBeInstanceOf(MigrationError)
          expect((error as Error).message).toContain(`${type}.${attribute}`)
          expect((error as Error).message).toContain('Nothing was changed')
          expect(await contacts(db)).toEqual(before)
          expect((await applied(db)).at(-1)).toBe(migration)
        } finally {
          await cleanUp(db)
        }
      },
    )

    it("rolls 005's down back with the opt-in, which backs up only 005's rows", async () => {
      const { db } = database
      await moveTo(db, MIGRATION_005)
      await cleanUp(db)
      await createInstantResource(db)
      await customers(db, 25)
      const before = await contacts(db)
      await hostile(db, 'public.contact', 'phone')
      try {
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (caught: unknown) => caught,
        )
        expect(error).toBeInstanceOf(MigrationError)
        expect((error as Error).message).toContain('public.contact.phone')
        expect(await contacts(db)).toEqual(before)
        expect((await applied(db)).at(-1)).toBe(MIGRATION_005)
      } finally {
        await cleanUp(db)
        await sql`DELETE FROM x402_resources`.execute(db)
      }
    })

    it.each([MIGRATION_008, MIGRATION_005])(
      "lets %s's down go where no table using the type holds a row",
      async (migration) => {
        const { db } = database
        await moveTo(db, migration)
        await cleanUp(db)
        await customers(db, 0)
        await hostile(db, 'public.contact', 'phone')
        try {
          await migrateDown(db, { env: {} })
          expect((await applied(db)).at(-1)).not.toBe(migration)
        } finally {
          await cleanUp(db)
        }
      },
    )
  },
)
