import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateDown, migrationStatus } from '../src/tooling.js'
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
