import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateDown } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// A trigger on the history fires when a down's record is deleted, after the down's own
// statements; a deferred one fires at COMMIT, after every check. What either deletes must be
// counted all the same, or it is lost without report or backup.

describe.each(testTargets)(
  'a down whose trigger on the history deletes rows elsewhere, on %s',
  (target) => {
    describe.each([
      ['the newest migration', 'latest', 'at once', ''],
      ['the newest migration', 'latest', 'deferred to COMMIT', 'DEFERRABLE INITIALLY DEFERRED'],
      ['005, outside a transaction', MIGRATION_005, 'at once', ''],
      [
        '005, outside a transaction',
        MIGRATION_005,
        'deferred to COMMIT',
        'DEFERRABLE INITIALLY DEFERRED',
      ],
    ])('of %s, firing %s', (_which, point, _when, deferral) => {
      const database = useTestDatabase(target, point)

      it('is refused, and the rows stay', async () => {
        const { db } = database
        await sql`CREATE TABLE public.bystanders (id int PRIMARY KEY)`.execute(db)
        await sql`INSERT INTO public.bystanders SELECT generate_series(1, 5)`.execute(db)
        await sql`
        CREATE FUNCTION public.clear_bystanders() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN DELETE FROM public.bystanders; RETURN NULL; END $$
      `.execute(db)
        // On the history, whose row every down deletes: the trigger fires whatever the down is.
        await sql`
        CREATE CONSTRAINT TRIGGER clear_bystanders AFTER DELETE ON x402_migrations.kysely_migration
        ${sql.raw(deferral)} FOR EACH ROW EXECUTE FUNCTION public.clear_bystanders()
      `.execute(db)

        const refusal = await migrateDown(db).catch((error: unknown) => error)
        expect(refusal).toBeInstanceOf(Error)
        expect(String((refusal as Error).message)).toMatch(
          /table public\.bystanders: 5 row\(s\) deleted/,
        )
        const { rows } = await sql<{
          count: string
        }>`SELECT count(*) FROM public.bystanders`.execute(db)
        expect(Number(rows[0]!.count)).toBe(5)
        const { rows: recorded } = await sql<{ name: string }>`
        SELECT name FROM x402_migrations.kysely_migration ORDER BY name DESC LIMIT 1
      `.execute(db)
        expect(point === 'latest' || recorded[0]?.name === point).toBe(true)
      })
    })
  },
)

// 005's down deletes the keys it backs up; a trigger of that DELETE that writes a table whose
// deferred trigger deletes elsewhere acts at COMMIT, after 005's own check.
describe.each(testTargets)(
  "005's down, with a deferred trigger one step from its DELETE, on %s",
  (target) => {
    const database = useTestDatabase(target, MIGRATION_005)

    it('is refused with the opt-in too, and the rows stay', async () => {
      const { db } = database
      await sql`CREATE TABLE public.bystanders (id int PRIMARY KEY)`.execute(db)
      await sql`INSERT INTO public.bystanders SELECT generate_series(1, 5)`.execute(db)
      await sql`CREATE TABLE public.audit (id serial PRIMARY KEY)`.execute(db)
      await sql`
      CREATE FUNCTION public.note_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO public.audit DEFAULT VALUES; RETURN NULL; END $$
    `.execute(db)
      await sql`
      CREATE TRIGGER note_deletion AFTER DELETE ON user_openrouter_integrations
      FOR EACH ROW EXECUTE FUNCTION public.note_deletion()
    `.execute(db)
      await sql`
      CREATE FUNCTION public.clear_bystanders() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN DELETE FROM public.bystanders; RETURN NULL; END $$
    `.execute(db)
      await sql`
      CREATE CONSTRAINT TRIGGER clear_bystanders AFTER INSERT ON public.audit
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.clear_bystanders()
    `.execute(db)
      const userId = await createUser(db)
      await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
        db,
      )

      const refusal = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (error: unknown) => error,
      )
      expect(refusal).toBeInstanceOf(Error)
      expect(String((refusal as Error).message)).toMatch(/public\.bystanders/)
      const { rows } = await sql<{ count: string }>`SELECT count(*) FROM public.bystanders`.execute(
        db,
      )
      expect(Number(rows[0]!.count)).toBe(5)
    })
  },
)
