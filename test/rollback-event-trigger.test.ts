import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateDown, migrationStatus } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Every step of 005's down runs in a transaction that compares, before COMMIT, what each table
// lost or had changed with what the down reported: an event trigger fired by one of its DDL
// statements (here, the drop of its index) that changes rows of another table is caught there,
// where a statement outside a transaction could only have been checked by counting rows.

describe.each(testTargets)("an event trigger on 005's index drop on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('that changes rows of another table rolls that step back, naming the table', async () => {
    const { db } = database
    await sql`CREATE TABLE public.notes (id int PRIMARY KEY, body text NOT NULL)`.execute(db)
    await sql`INSERT INTO public.notes VALUES (1, 'kept'), (2, 'kept')`.execute(db)
    await sql`
      CREATE FUNCTION public.hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN UPDATE public.notes SET body = 'overwritten'; END $fn$
    `.execute(db)
    await sql`CREATE EVENT TRIGGER hostile ON ddl_command_end WHEN TAG IN ('DROP INDEX') EXECUTE FUNCTION public.hostile()`.execute(
      db,
    )
    try {
      const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(Error)
      expect((error as Error).message).toContain('public.notes')
      const { rows } = await sql<{
        body: string
      }>`SELECT body FROM public.notes ORDER BY id`.execute(db)
      expect(rows).toEqual([{ body: 'kept' }, { body: 'kept' }])
      expect(
        (await migrationStatus(db)).find((m) => m.name === MIGRATION_005)?.appliedAt,
      ).toBeDefined()
    } finally {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
    }
  })
})

describe.each(testTargets)("an event trigger of the backup in 005's last step on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  // A key stored while the rollback ran is moved by its last step, whose backup is DDL: what an
  // event trigger of it drops counts, as in the first step.
  it('that drops a table with rows when the last step backs up a key: rolls that step back, naming it', async () => {
    const { db } = database
    const user = await createUser(db)
    await sql`DROP TABLE IF EXISTS public.kept`.execute(db)
    await sql`CREATE TABLE public.kept (id int PRIMARY KEY)`.execute(db)
    await sql`INSERT INTO public.kept SELECT generate_series(1, 25)`.execute(db)
    // Stores a key during the rollback (at its VALIDATE step), as a user might.
    await sql
      .raw(
        `CREATE OR REPLACE FUNCTION public.store_key() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          IF to_regclass('public.user_openrouter_integrations') IS NOT NULL THEN
            EXECUTE 'INSERT INTO public.user_openrouter_integrations (user_id, encrypted_api_key)
                     SELECT ''${user}'', ''v2:k:n:c:t'' WHERE NOT EXISTS (SELECT FROM public.user_openrouter_integrations)';
          END IF;
        END $fn$`,
      )
      .execute(db)
    await sql`CREATE EVENT TRIGGER store_key ON ddl_command_end WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION public.store_key()`.execute(
      db,
    )
    // Drops public.kept once the rollback's CHECK is validated: in the last step only.
    await sql`
      CREATE OR REPLACE FUNCTION public.drop_kept() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF EXISTS (SELECT FROM pg_constraint WHERE conname = 'x402_resources_openrouter_rollback_check' AND convalidated) THEN
          DROP TABLE IF EXISTS public.kept;
        END IF;
      END $fn$
    `.execute(db)
    await sql`CREATE EVENT TRIGGER drop_kept ON ddl_command_end WHEN TAG IN ('CREATE TABLE AS') EXECUTE FUNCTION public.drop_kept()`.execute(
      db,
    )
    try {
      const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(Error)
      expect((error as Error).message).toContain('public.kept')
      const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM public.kept`.execute(db)
      expect(Number(rows[0]!.n)).toBe(25)
      expect(
        (await migrationStatus(db)).find((m) => m.name === MIGRATION_005)?.appliedAt,
      ).toBeDefined()
    } finally {
      await sql`DROP EVENT TRIGGER IF EXISTS store_key`.execute(db)
      await sql`DROP EVENT TRIGGER IF EXISTS drop_kept`.execute(db)
    }
  })
})
