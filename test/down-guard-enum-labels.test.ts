import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { MigrationError, migrateDown, migrateTo, migrationStatus } from '../src/tooling.js'
import { createInstantResource } from './support/fixtures.js'
import { MIGRATION_002, MIGRATION_005, MIGRATION_008 } from './support/migration-names.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// A row keeps an enum value as the oid of its label in pg_enum: ALTER TYPE … RENAME VALUE changes
// what every row holding it reads, though no row counter, storage or column of the table changes.
// The watch of every down, and 005's own, note the labels of the enum types that the columns of a
// table holding rows use (directly, as an array's elements, through a domain or within a composite
// type), and refuse the down where one was renamed or is gone. A label added is no loss.

function moveTo(db: Kysely<any>, migration: string) {
  return migrateTo(db, migration, { allowDataLoss: true, env: {} })
}

async function applied(db: Kysely<any>): Promise<string[]> {
  return (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
}

/** Every account's states, as text. */
async function states(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ row: string }>`
    SELECT concat_ws(' | ', state::text, many::text, via_domain::text, nested::text, span::text,
                     spans::text) AS row
    FROM public.accounts ORDER BY id
  `.execute(db)
  return rows.map((row) => row.row)
}

/**
 * Table accounts, whose columns each use an enum type of their own: account_state directly,
 * array_state as an array's elements, domain_state through a domain, nested_state within a
 * composite type, range_state in a range and a multirange; with `rows` rows, all 'active'.
 */
async function accounts(db: Kysely<any>, rows: number): Promise<void> {
  await sql`CREATE TYPE public.account_state AS ENUM ('active', 'suspended')`.execute(db)
  await sql`CREATE TYPE public.array_state AS ENUM ('active', 'suspended')`.execute(db)
  await sql`CREATE TYPE public.domain_state AS ENUM ('active', 'suspended')`.execute(db)
  await sql`CREATE TYPE public.nested_state AS ENUM ('active', 'suspended')`.execute(db)
  await sql`CREATE TYPE public.range_state AS ENUM ('active', 'suspended')`.execute(db)
  await sql`
    CREATE TYPE public.state_range AS RANGE (subtype = public.range_state,
                                             multirange_type_name = public.state_ranges)
  `.execute(db)
  await sql`CREATE DOMAIN public.checked_state AS public.domain_state`.execute(db)
  await sql`CREATE TYPE public.badge AS (label text, state public.nested_state)`.execute(db)
  await sql`
    CREATE TABLE public.accounts (id int PRIMARY KEY, state public.account_state,
                                  many public.array_state[], via_domain public.checked_state,
                                  nested public.badge, span public.state_range,
                                  spans public.state_ranges)
  `.execute(db)
  await sql`
    INSERT INTO public.accounts
    SELECT g, 'active', ARRAY['active']::public.array_state[], 'active',
           ROW('b' || g, 'active')::public.badge, '[active,suspended]'::public.state_range,
           '{[active,active]}'::public.state_ranges
    FROM generate_series(1, ${sql.lit(rows)}) AS g
  `.execute(db)
}

async function cleanUp(db: Kysely<any>): Promise<void> {
  await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
  await sql`DROP FUNCTION IF EXISTS hostile() CASCADE`.execute(db)
  await sql`DROP TABLE IF EXISTS public.accounts`.execute(db)
  await sql`
    DROP TYPE IF EXISTS public.badge, public.checked_state, public.state_range, public.account_state,
                        public.array_state, public.domain_state, public.nested_state,
                        public.range_state CASCADE
  `.execute(db)
}

/** An event trigger of the down's drops that runs `change` on enum `type` where it has 'active'. */
async function hostile(db: Kysely<any>, type: string, change: string): Promise<void> {
  await sql
    .raw(
      `CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF EXISTS (SELECT FROM pg_enum WHERE enumtypid = '${type}'::regtype AND enumlabel = 'active')
           AND NOT EXISTS (SELECT FROM pg_enum WHERE enumtypid = '${type}'::regtype AND enumlabel = 'added') THEN
          ALTER TYPE ${type} ${change};
        END IF;
      END $fn$`,
    )
    .execute(db)
  await sql`CREATE EVENT TRIGGER hostile ON sql_drop EXECUTE FUNCTION hostile()`.execute(db)
}

const RENAME = "RENAME VALUE 'active' TO 'closed'"

describe.each(testTargets)('an enum label renamed during a down on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it.each([
    [MIGRATION_008, 'public.account_state'],
    [MIGRATION_002, 'public.account_state'],
    [MIGRATION_005, 'public.account_state'],
    [MIGRATION_008, 'public.array_state'],
    [MIGRATION_008, 'public.domain_state'],
    [MIGRATION_008, 'public.nested_state'],
    [MIGRATION_005, 'public.array_state'],
    [MIGRATION_005, 'public.domain_state'],
    [MIGRATION_005, 'public.nested_state'],
    [MIGRATION_008, 'public.range_state'],
    [MIGRATION_005, 'public.range_state'],
  ])(
    "rolls %s's down back where a label of %s is renamed, naming it; every value is kept",
    async (migration, type) => {
      const { db } = database
      await moveTo(db, migration)
      await cleanUp(db)
      await accounts(db, 25)
      const before = await states(db)
      await hostile(db, type, RENAME)
      try {
        const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(MigrationError)
        const message = (error as Error).message
        expect(message).toContain(type)
        expect(message).toContain("'active'")
        expect(message).toContain("'closed'")
        expect(message).toContain('public.accounts')
        expect(message).toContain('Nothing was changed')
        expect(await states(db)).toEqual(before)
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
    await accounts(db, 25)
    const before = await states(db)
    await hostile(db, 'public.account_state', RENAME)
    try {
      const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(MigrationError)
      const message = (error as Error).message
      expect(message).toContain('public.account_state')
      expect(message).toContain("'active'")
      expect(message).toContain("'closed'")
      expect(message).toContain('public.accounts')
      expect(await states(db)).toEqual(before)
      expect((await applied(db)).at(-1)).toBe(MIGRATION_005)
    } finally {
      await cleanUp(db)
      await sql`DELETE FROM x402_resources`.execute(db)
    }
  })

  it.each([MIGRATION_008, MIGRATION_005])(
    "lets %s's down go where a label is only added",
    async (migration) => {
      const { db } = database
      await moveTo(db, migration)
      await cleanUp(db)
      await accounts(db, 25)
      const before = await states(db)
      await hostile(db, 'public.account_state', "ADD VALUE 'added'")
      try {
        await migrateDown(db, { env: {} })
        expect((await applied(db)).at(-1)).not.toBe(migration)
        expect(await states(db)).toEqual(before)
      } finally {
        await cleanUp(db)
      }
    },
  )

  it.each([MIGRATION_008, MIGRATION_005])(
    "lets %s's down go where no table using the enum holds a row",
    async (migration) => {
      const { db } = database
      await moveTo(db, migration)
      await cleanUp(db)
      await accounts(db, 0)
      await hostile(db, 'public.account_state', RENAME)
      try {
        await migrateDown(db, { env: {} })
        expect((await applied(db)).at(-1)).not.toBe(migration)
      } finally {
        await cleanUp(db)
      }
    },
  )
})
