import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { accessMatrixOf, measureAccess } from '../src/tooling.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Measuring access reads, empties (TRUNCATE … CASCADE), writes and calls everything in the access
// schemas as the connecting user, a superuser: code there that a lesser login wrote (a table it
// owns, whose triggers it attaches; a view it owns, whose query runs as the reader; a function it
// owns, which may RESET ROLE out of the API role it is called as) would run with that power. The
// measurement refuses before it touches anything. Each planted function counts its runs in a
// sequence (which a rollback does not undo) and tries to make its owner a superuser.

/**
 * A lesser login, with `public.probe_<role>_run()`, its function that leaves any role it is
 * called as, counts the call and escalates; dropped with what was planted whatever `use` did.
 */
async function withPlantedCode(
  db: Kysely<any>,
  use: (role: string, run: string) => Promise<void>,
): Promise<void> {
  await withLesserRole(
    db,
    'x402_test_measure',
    async (role) => {
      const run = `public.probe_${role}_run`
      await sql.raw(`CREATE SEQUENCE public.probe_${role}_ran`).execute(db)
      await sql.raw(`GRANT ALL ON SEQUENCE public.probe_${role}_ran TO PUBLIC`).execute(db)
      await sql
        .raw(
          `CREATE FUNCTION ${run}() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN RESET ROLE; PERFORM pg_catalog.nextval('public.probe_${role}_ran'); ${escalate(role)} RETURN 1; END $f$`,
        )
        .execute(db)
      await sql.raw(`GRANT EXECUTE ON FUNCTION ${run}() TO PUBLIC`).execute(db)
      await sql.raw(`ALTER FUNCTION ${run}() OWNER TO ${role}`).execute(db)
      try {
        await use(role, run)
      } finally {
        await sql.raw(`DROP SCHEMA IF EXISTS probe_${role} CASCADE`).execute(db)
        await sql.raw(`DROP TABLE IF EXISTS public.probe_${role}_table CASCADE`).execute(db)
        await sql.raw(`DROP VIEW IF EXISTS public.probe_${role}_view CASCADE`).execute(db)
        await sql.raw(`DROP FUNCTION IF EXISTS public.probe_${role}_fire() CASCADE`).execute(db)
        await sql.raw(`DROP FUNCTION ${run}() CASCADE`).execute(db)
      }
    },
    { login: true },
  )
}

/** How often the planted function of `role` ran. */
async function runsOf(db: Kysely<any>, role: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END::int AS n FROM ${sql.table(`public.probe_${role}_ran`)}`.execute(
    db,
  )
  return rows[0]!.n
}

/** The error `promise` rejects with (undefined where it resolves). */
async function refusal(
  promise: Promise<unknown>,
): Promise<(Error & { code?: string }) | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => error as Error & { code?: string },
  )
}

describe.each(testTargets)('measuring access with a lesser login’s code on %s', (target) => {
  const database = useTestDatabase(target)

  it('refuses a table a lesser login owns, naming it and its owner, and runs none of its code', async () => {
    const { db } = database
    await withPlantedCode(db, async (role, run) => {
      const table = `probe_${role}_table`
      await sql.raw(`CREATE TABLE public.${table} (id int PRIMARY KEY, note text)`).execute(db)
      await sql.raw(`INSERT INTO public.${table} VALUES (1, 'planted')`).execute(db)
      await sql
        .raw(
          `CREATE FUNCTION public.probe_${role}_fire() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${run}(); RETURN NULL; END $f$`,
        )
        .execute(db)
      await sql.raw(`ALTER FUNCTION public.probe_${role}_fire() OWNER TO ${role}`).execute(db)
      await sql.raw(`ALTER TABLE public.${table} OWNER TO ${role}`).execute(db)
      // Attached by the table's owner, as it may at any moment.
      await sql.raw(`SET ROLE ${role}`).execute(db)
      try {
        await sql
          .raw(
            `CREATE TRIGGER fire BEFORE INSERT OR UPDATE OR DELETE ON public.${table} FOR EACH ROW EXECUTE FUNCTION public.probe_${role}_fire()`,
          )
          .execute(db)
        await sql
          .raw(
            `CREATE TRIGGER fire_truncate BEFORE TRUNCATE ON public.${table} FOR EACH STATEMENT EXECUTE FUNCTION public.probe_${role}_fire()`,
          )
          .execute(db)
      } finally {
        await sql`RESET ROLE`.execute(db)
      }

      const error = await refusal(measureAccess(db))
      expect({ runs: await runsOf(db, role), superuser: await isSuperuser(db, role) }).toEqual({
        runs: 0,
        superuser: false,
      })
      expect(error?.code).toBe('42501')
      expect(error?.message).toContain(`table public.${table} is owned by ${role}`)
      // The matrix, which seeds the tables first, refuses before that too.
      await expect(accessMatrixOf(db)).rejects.toThrow(`table public.${table} is owned by ${role}`)
      expect(await runsOf(db, role)).toBe(0)
    })
  })

  it('refuses a view a lesser login owns, whose query would run as the superuser', async () => {
    const { db } = database
    await withPlantedCode(db, async (role, run) => {
      const view = `probe_${role}_view`
      await sql.raw(`CREATE VIEW public.${view} AS SELECT ${run}() AS x`).execute(db)
      await sql.raw(`ALTER VIEW public.${view} OWNER TO ${role}`).execute(db)
      const error = await refusal(measureAccess(db))
      expect({ runs: await runsOf(db, role), superuser: await isSuperuser(db, role) }).toEqual({
        runs: 0,
        superuser: false,
      })
      expect(error?.code).toBe('42501')
      expect(error?.message).toContain(`view public.${view} is owned by ${role}`)
    })
  })

  it('refuses a function a lesser login owns in an access schema, which it would call', async () => {
    const { db } = database
    await withPlantedCode(db, async (role, run) => {
      const error = await refusal(measureAccess(db))
      expect({ runs: await runsOf(db, role), superuser: await isSuperuser(db, role) }).toEqual({
        runs: 0,
        superuser: false,
      })
      expect(error?.code).toBe('42501')
      expect(error?.message).toContain(`function ${run}() is owned by ${role}`)
    })
  })

  // Review revl F1: the measurement seeds an empty table as the superuser and inserts as the API
  // roles, leaving out the columns with defaults, which PostgreSQL then computes: a default of a
  // trusted table calling a function the login owns in a schema of its own (as tables call
  // auth.uid()) ran it 6 times as the superuser, and COPY … TO PROGRAM with it.
  it('refuses a default of a public table that calls a function of the login’s own schema, and never calls it', async () => {
    const { db } = database
    await withLesserRole(
      db,
      'x402_test_measure',
      async (role) => {
        const own = `probe_${role}`
        const table = `public.probe_${role}_notes`
        await sql.raw(`CREATE SCHEMA ${own} AUTHORIZATION ${role}`).execute(db)
        try {
          await db.transaction().execute(async (trx) => {
            await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
            await sql.raw(`CREATE SEQUENCE ${own}.ran`).execute(trx)
            await sql
              .raw(`CREATE FUNCTION ${own}.note() RETURNS text LANGUAGE sql AS $f$ SELECT 'n' $f$`)
              .execute(trx)
          })
          await sql
            .raw(
              `CREATE TABLE ${table} (id int PRIMARY KEY DEFAULT 1, body text DEFAULT ${own}.note())`,
            )
            .execute(db)
          await db.transaction().execute(async (trx) => {
            await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
            await sql
              .raw(
                `CREATE OR REPLACE FUNCTION ${own}.note() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN
                   RESET ROLE; PERFORM pg_catalog.nextval('${own}.ran'); ${escalate(role)} RETURN 'n'; END $f$`,
              )
              .execute(trx)
          })
          const error = await refusal(measureAccess(db))
          const { rows } = await sql
            .raw<{ n: number }>(
              `SELECT CASE WHEN is_called THEN last_value ELSE 0 END::int AS n FROM ${own}.ran`,
            )
            .execute(db)
          expect({ runs: rows[0]!.n, superuser: await isSuperuser(db, role) }).toEqual({
            runs: 0,
            superuser: false,
          })
          expect(error?.code).toBe('42501')
          expect(error?.message).toContain(
            `default of column body on ${table} calls ${own}.note(), owned by ${role}`,
          )
        } finally {
          await sql.raw(`DROP TABLE IF EXISTS ${table}`).execute(db)
          await sql.raw(`DROP SCHEMA ${own} CASCADE`).execute(db)
        }
      },
      { login: true },
    )
  })

  // TRUNCATE … CASCADE (how INSERT is measured) empties every table whose foreign key references
  // the measured one, whatever the key's ON DELETE action, and fires its TRUNCATE triggers as the
  // superuser (review revj J5): here a plain REFERENCES (Supabase grants REFERENCES on public
  // tables to anon and authenticated) from a schema of the login's own, not an access schema.
  it('refuses a table of the login’s own schema whose plain foreign key references a public table', async () => {
    const { db } = database
    await withLesserRole(
      db,
      'x402_test_measure',
      async (role) => {
        const parent = `public.probe_${role}_parent`
        const own = `probe_${role}`
        for (const statement of [
          `CREATE TABLE ${parent} (id int PRIMARY KEY)`,
          `INSERT INTO ${parent} VALUES (1)`,
          `GRANT REFERENCES ON ${parent} TO ${role}`,
          `CREATE SCHEMA ${own} AUTHORIZATION ${role}`,
        ])
          await sql.raw(statement).execute(db)
        try {
          await db.transaction().execute(async (trx) => {
            await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
            for (const statement of [
              `CREATE SEQUENCE ${own}.ran`,
              `CREATE FUNCTION ${own}.fire() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
                 RESET ROLE; PERFORM pg_catalog.nextval('${own}.ran'); ${escalate(role)} RETURN NULL; END $f$`,
              `CREATE TABLE ${own}.child (parent_id int REFERENCES ${parent} (id))`,
              `CREATE TRIGGER fire BEFORE TRUNCATE ON ${own}.child FOR EACH STATEMENT EXECUTE FUNCTION ${own}.fire()`,
            ])
              await sql.raw(statement).execute(trx)
          })
          const error = await refusal(measureAccess(db))
          const { rows } = await sql
            .raw<{ n: number }>(
              `SELECT CASE WHEN is_called THEN last_value ELSE 0 END::int AS n FROM ${own}.ran`,
            )
            .execute(db)
          expect({ runs: rows[0]!.n, superuser: await isSuperuser(db, role) }).toEqual({
            runs: 0,
            superuser: false,
          })
          expect(error?.code).toBe('42501')
          expect(error?.message).toContain(`${own}.child`)
        } finally {
          await sql.raw(`DROP SCHEMA ${own} CASCADE`).execute(db)
          await sql.raw(`DROP TABLE ${parent} CASCADE`).execute(db)
        }
      },
      { login: true },
    )
  })
})
