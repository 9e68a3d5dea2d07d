import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateDown, migrateTo, migrationStatus } from '../src/tooling.js'
import { MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'
import { createUser } from './support/fixtures.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// The module's bookkeeping in schema x402_migrations (the history, the checksums, adoption's
// records, a migration's record of what it found) is data too: a trigger fired by a down that
// deletes from it goes unreported unless the down's check watches that schema as well. The writes
// a down makes there itself, the deletion of its own history record and the drop of its own
// record of what its up found (008's prior_state_008), are allowed.

async function checksums(db: Kysely<any>): Promise<number> {
  const { rows } = await sql<{
    n: string
  }>`SELECT count(*) AS n FROM x402_migrations.migration_checksum`.execute(db)
  return Number(rows[0]!.n)
}

async function applied(db: Kysely<any>): Promise<string[]> {
  return (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
}

async function hostileTrigger(db: Kysely<any>, on: string, body: string): Promise<void> {
  await sql
    .raw(
      `CREATE FUNCTION public.hostile() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN ${body}; RETURN NULL; END $fn$`,
    )
    .execute(db)
  await sql.raw(`CREATE TRIGGER hostile ${on} EXECUTE FUNCTION public.hostile()`).execute(db)
}

/** Runs `migrateDown` and returns its error, checking that it refused and changed no record. */
async function refusedDown(db: Kysely<any>, allowDataLoss = false): Promise<string> {
  const history = await applied(db)
  const before = await checksums(db)
  expect(before).toBeGreaterThan(0)
  const error = await migrateDown(db, { allowDataLoss, env: {} }).catch((caught: unknown) => caught)
  expect(error).toBeInstanceOf(Error)
  expect(await applied(db)).toEqual(history)
  expect(await checksums(db)).toBe(before)
  return (error as Error).message
}

describe.each(testTargets)('rows of x402_migrations deleted during a down on %s', (target) => {
  describe.each([
    ['the newest migration, in a transaction', 'latest'],
    ['005, whose record is deleted after its steps', MIGRATION_005],
  ])('by a trigger on the history, when it deletes the record of %s', (_which, point) => {
    const database = useTestDatabase(target, point)

    it('roll the down back, naming the table, and only that one', async () => {
      const { db } = database
      await hostileTrigger(
        db,
        'AFTER DELETE ON x402_migrations.kysely_migration FOR EACH ROW',
        'DELETE FROM x402_migrations.migration_checksum',
      )
      const message = await refusedDown(db)
      expect(message).toContain('x402_migrations.migration_checksum')
      // The down's own writes there: its history record, and the newest's record of what it found.
      expect(message).not.toContain('x402_migrations.kysely_migration')
      expect(message).not.toContain('prior_state')
    })
  })

  describe('by a trigger on the history that deletes the record of another migration', () => {
    const database = useTestDatabase(target, MIGRATION_006)

    it('roll the down back, naming the history', async () => {
      const { db } = database
      await hostileTrigger(
        db,
        'AFTER DELETE ON x402_migrations.kysely_migration FOR EACH ROW',
        "DELETE FROM x402_migrations.kysely_migration WHERE name = '000_baseline_ai_models'",
      )
      expect(await refusedDown(db)).toContain('x402_migrations.kysely_migration')
    })
  })

  describe("by a trigger on a table that 006's down changes", () => {
    const database = useTestDatabase(target, MIGRATION_006)

    it('roll the down back, even with the opt-in, naming the table', async () => {
      const { db } = database
      await hostileTrigger(
        db,
        'AFTER UPDATE ON x402_openrouter_models FOR EACH STATEMENT',
        'DELETE FROM x402_migrations.migration_checksum',
      )
      expect(await refusedDown(db, true)).toContain('x402_migrations.migration_checksum')
    })
  })

  describe("by an event trigger of 005's own last step", () => {
    const database = useTestDatabase(target, MIGRATION_005)

    it('roll that step back, naming the table', async () => {
      const { db } = database
      await sql`
        CREATE FUNCTION public.hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
        BEGIN DELETE FROM x402_migrations.migration_checksum; END $fn$
      `.execute(db)
      await sql`CREATE EVENT TRIGGER hostile ON sql_drop WHEN TAG IN ('DROP TABLE') EXECUTE FUNCTION public.hostile()`.execute(
        db,
      )
      try {
        expect(await refusedDown(db)).toContain('x402_migrations.migration_checksum')
        const { rows } = await sql<{ present: boolean }>`
          SELECT to_regclass('public.user_openrouter_integrations') IS NOT NULL AS present`.execute(
          db,
        )
        expect(rows).toEqual([{ present: true }])
      } finally {
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      }
    })
  })
})

// The mark of a rollback outside a transaction (005's) is an UPDATE of the history, before the
// first step, and its removal another, after a refusal: a trigger on the history fired by either
// deletes nothing unreported, with or without the opt-in.
describe.each(testTargets)("the mark of 005's rollback in the history on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  async function notes(db: Kysely<any>): Promise<number> {
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM public.notes`.execute(db)
    return Number(rows[0]!.n)
  }

  /** 25 notes, and a trigger on the history's UPDATE (where `when` holds) that deletes them. */
  async function seed(db: Kysely<any>, when: string): Promise<void> {
    await sql`DROP TABLE IF EXISTS public.notes`.execute(db)
    await sql`DROP TRIGGER IF EXISTS hostile ON x402_migrations.kysely_migration`.execute(db)
    await sql`DROP FUNCTION IF EXISTS public.hostile()`.execute(db)
    await migrateTo(db, MIGRATION_005)
    await sql`ALTER TABLE x402_migrations.kysely_migration ADD COLUMN IF NOT EXISTS reverting_since timestamptz`.execute(
      db,
    )
    await sql`CREATE TABLE public.notes (id int PRIMARY KEY)`.execute(db)
    await sql`INSERT INTO public.notes SELECT generate_series(1, 25)`.execute(db)
    await hostileTrigger(
      db,
      `AFTER UPDATE ON x402_migrations.kysely_migration FOR EACH ROW WHEN (${when})`,
      'DELETE FROM public.notes',
    )
  }

  it.each([
    ['without the opt-in', false],
    ['with the opt-in', true],
  ])('by a trigger on its UPDATE, %s: refuses, the rows kept', async (_, allowDataLoss) => {
    const { db } = database
    await seed(db, 'NEW.reverting_since IS NOT NULL')
    const error = await migrateDown(db, { allowDataLoss, env: {} }).catch(
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).toContain('public.notes')
    expect(await notes(db)).toBe(25)
    expect(await applied(db)).toContain(MIGRATION_005)
  })

  it('by a trigger on the UPDATE that removes it after a refusal: the rows kept', async () => {
    const { db } = database
    await seed(db, 'NEW.reverting_since IS NULL')
    await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${await createUser(db)}, 'v2:k:n:c:t')`.execute(
      db,
    )
    const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
    expect((error as Error).message).toMatch(/would destroy data/)
    expect(await notes(db)).toBe(25)
    expect(await applied(db)).toContain(MIGRATION_005)
  })
})
