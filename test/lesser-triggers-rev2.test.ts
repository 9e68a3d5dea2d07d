import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateDown, migrateTo } from '../src/tooling.js'
import { createInstantResource } from './support/fixtures.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { withTestDatabase } from './support/test-database.js'

// Review rev2 (of 1dc91b4): bodies that change the search path (or run other code) as they run, spelled so
// that setsPath does not see it. Each planted body, owned by the runner, sets the path to a
// lesser login's schema; a second trusted trigger then calls helper() unqualified, which
// resolves to that login's helper(), which tries to make its owner a superuser.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a lesser role needs a server'

const withLoginRole = (db: Kysely<any>, use: (role: string) => Promise<void>) =>
  withLesserRole(db, 'rev2_lesser', use, { login: true })

async function applied(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{
    name: string
  }>`SELECT name FROM x402_migrations.kysely_migration ORDER BY name`.execute(db)
  return rows.map((row) => row.name)
}

async function hasExtension(db: Kysely<any>, name: string): Promise<boolean> {
  const { rows } = await sql<{
    found: boolean
  }>`SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = ${name}) AS found`.execute(db)
  return rows[0]!.found
}

/** As lesser-triggers.test.ts's plant(): 005, a row its down deletes, zz_audit with `body`. */
async function plant(db: Kysely<any>, role: string, body: string, setUp = ''): Promise<void> {
  await migrateTo(db, MIGRATION_005, { env: {} })
  await createInstantResource(db)
  await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
  await db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
    await sql
      .raw(`CREATE FUNCTION ${role}.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN END $f$`)
      .execute(trx)
    await sql.raw(`GRANT USAGE ON SCHEMA ${role} TO PUBLIC`).execute(trx)
  })
  if (setUp) await sql.raw(setUp).execute(db)
  await sql
    .raw(
      `CREATE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${body} RETURN OLD; END $f$;
       CREATE TRIGGER zz_audit AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_audit()`,
    )
    .execute(db)
  await db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
    await sql
      .raw(
        `CREATE OR REPLACE FUNCTION ${role}.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$`,
      )
      .execute(trx)
  })
}

const LATER = `CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
  CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`

describe.skipIf(skipReason)('rev2: a path set where setsPath does not look', () => {
  it.each([
    // Control: the same body with the EXECUTE plainly at a statement's start is refused.
    [
      'with a plain EXECUTE (control)',
      (role: string) => `EXECUTE 'SET LOCAL search_' || 'path = ${role}, public';`,
    ],
    // F1: CUSTOM_SETTING_EXECUTE matched from a comment through the ; that ends the statement
    // before a real EXECUTE: the replacement takes away the ; that made it a statement's start.
    [
      'with an EXECUTE after a statement whose -- comment holds an exempt SET',
      (role: string) =>
        `PERFORM 1 -- execute 'set app.x to y'\n ; EXECUTE 'SET LOCAL search_' || 'path = ${role}, public';`,
    ],
    [
      "with an EXECUTE after a call whose /* */ comment holds an exempt format('SET …', ",
      (role: string) =>
        `PERFORM pg_catalog.length(/* execute format('set app.x to %L', */ OLD.id::text);\n EXECUTE 'SET LOCAL search_' || 'path = ${role}, public';`,
    ],
    // F2: THEN right after a dollar-quoted string: the look-behind of STATEMENT_START takes the $
    // as part of a word.
    [
      'with an EXECUTE after THEN written right after a dollar-quoted string',
      (role: string) =>
        `IF OLD.id::text <> $q$$q$THEN EXECUTE 'SET LOCAL search_' || 'path = ${role}, public'; END IF;`,
    ],
    // F3: DO runs the PL/pgSQL code of a string constant: no EXECUTE, and the constant may be
    // two strings joined by a line break, or an E string with codes.
    [
      'with SET LOCAL inside a DO block whose code is two strings joined by a line break',
      (role: string) => `DO 'BEGIN SET LOCAL search_'\n'path = ${role}, public; END';`,
    ],
    [
      'with SET LOCAL inside a DO block whose code is an E string that spells the name with a code',
      (role: string) => `DO E'BEGIN SET LOCAL search\\137path = ${role}, public; END';`,
    ],
    // F4: ALTER FUNCTION … SET search_path, taken to change no session's path, changes the path
    // of the next trusted trigger function, which the check read before it ran.
    [
      "with ALTER FUNCTION … SET search_path of the next trigger's function",
      (role: string) => `ALTER FUNCTION public.zz_later() SET search_path = ${role}, public;`,
    ],
    // F6: contrib tablefunc's crosstab() (on Supabase, in extensions) runs SQL given as text in
    // the session, as query_to_xml does; setsPath's list of such functions does not hold it.
    [
      'with set_config inside the SQL that tablefunc’s crosstab() runs',
      (role: string) =>
        `PERFORM * FROM public.crosstab('SELECT ''r''::text, ''c''::text, set_' || 'config(''search_path'', ''${role}, public'', true)') AS t(r text, c text);`,
      'CREATE EXTENSION tablefunc SCHEMA public',
    ],
    // Review rev3 (of ea49fe5) R1: a comment after the ; that starts a real EXECUTE, holding an
    // exempt one, which the EXECUTE's own match took in: counted, the two balanced.
    [
      'with an EXECUTE after a /* */ comment that holds an exempt EXECUTE',
      (role: string) =>
        `PERFORM 1; /* ;execute 'set app.x to y'; */ EXECUTE 'SET LOCAL search_' || 'path = ${role}, public';`,
    ],
    [
      'with an EXECUTE after a -- comment that holds an exempt EXECUTE',
      (role: string) =>
        `PERFORM 1; -- ;execute 'set app.x to y';\n EXECUTE 'SET LOCAL search_' || 'path = ${role}, public';`,
    ],
    // R2: DO's language quoted, with no space before it.
    [
      'with SET LOCAL inside DO LANGUAGE"plpgsql" of an E string',
      (role: string) =>
        `DO LANGUAGE"plpgsql" E'BEGIN SET LOCAL search\\137path = ${role}, public; END';`,
    ],
    // Review rev3 R3: ALTER FUNCTION … SET search_path's schemas compared as written.
    [
      'with ALTER FUNCTION … SET search_path = the schema in capitals',
      (role: string) =>
        `ALTER FUNCTION public.zz_later() SET search_path = ${role.toUpperCase()}, public;`,
    ],
    [
      "with ALTER FUNCTION … SET search_path = E'schema'",
      (role: string) => `ALTER FUNCTION public.zz_later() SET search_path = E'${role}', public;`,
    ],
    [
      'with ALTER ROUTINE … SET search_path TO the schema and a -- comment in the list',
      (role: string) =>
        `ALTER ROUTINE public.zz_later() SET search_path TO ${role} -- x\n, public;`,
    ],
    // R6: "$user" on the session's path names no schema at the check; the body renames the
    // login's schema to the runner's name.
    [
      'by renaming the lesser login’s schema to the runner’s name',
      (role: string) => `ALTER SCHEMA ${role} RENAME TO postgres;`,
    ],
    // pg_catalog's query_to_xml runs SQL given as text too: such a body is refused, unread.
    [
      'with set_config inside the SQL that query_to_xml runs',
      (role: string) =>
        `PERFORM query_to_xml('SELECT set_' || 'config(''search_path'', ''${role}, public'', true)', false, false, '');`,
    ],
    // Review rev3 R8b: an alias (LANGUAGE internal, which only a superuser makes) of query_to_xml
    // under another name, found by its symbol as set_config's aliases are.
    [
      'with set_config inside the SQL that an internal alias of query_to_xml runs',
      (role: string) =>
        `PERFORM public.zz_rows('SELECT set_' || 'config(''search_path'', ''${role}, public'', true)', false, false, '');`,
      `CREATE FUNCTION public.zz_rows(text, boolean, boolean, text) RETURNS xml LANGUAGE internal STABLE STRICT AS 'query_to_xml'`,
    ],
    // Review rev4 (of 9f087b2): ALTER FUNCTION's list as a dollar-quoted string, and a ; in a
    // comment inside the statement (the rules read to the first ;).
    [
      'with ALTER FUNCTION … SET search_path = a dollar-quoted string',
      (role: string) => `ALTER FUNCTION public.zz_later() SET search_path = $q$${role}$q$, public;`,
    ],
    [
      'with ALTER FUNCTION … SET search_path after a /* ; */ comment',
      (role: string) =>
        `ALTER FUNCTION public.zz_later() /* ; */ SET search_path = ${role}, public;`,
    ],
    [
      'by renaming the lesser login’s schema after a /* ; */ comment',
      (role: string) => `ALTER SCHEMA ${role} /* ; */ RENAME TO postgres;`,
    ],
    // A function made with a path of its own (CREATE … SET search_path), as ALTER gives one.
    [
      'by making the next trigger’s function again with SET search_path = the schema',
      (role: string) =>
        `CREATE OR REPLACE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $g$ BEGIN PERFORM helper(); RETURN OLD; END; $g$ SET search_path = ${role}, public;`,
    ],
    // rev4: the function made again names the login's helper in two pieces of a string (joined
    // by a line break, as SQL joins them): no whole word to read.
    [
      'by making the next trigger’s function again from a string in two pieces',
      (role: string) =>
        `CREATE OR REPLACE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN PERFORM ${role}.hel'\n'per(); RETURN OLD; END';`,
    ],
    // The same through database_to_xml's kin that reads a view the body never names is below.
  ])(
    'a trusted body that sets the path %s, before another trusted trigger calls a bare name: 005’s down refuses',
    async (_case, sets: (role: string) => string, setUp = '') => {
      await withTestDatabase('postgres', async ({ db }) => {
        // tablefunc is contrib's: a server built without it cannot hold that case.
        if (setUp.includes('tablefunc') && !(await hasExtension(db, 'tablefunc'))) return
        await withLoginRole(db, async (role) => {
          await plant(db, role, sets(role), [LATER, setUp].filter(Boolean).join(';\n'))
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          const outcome = {
            superuser: await isSuperuser(db, role),
            refused: error instanceof Error,
            applied005: (await applied(db)).includes(MIGRATION_005),
          }
          expect(outcome).toEqual({ superuser: false, refused: true, applied005: true })
        })
      })
    },
  )

  // Review rev3 R5: the function altered is not read again with its new path; a lesser login's
  // function already in a schema of that path (one a superuser owns) answers its bare name.
  it('a trusted body that gives the next trigger’s function a path whose schema holds a lesser login’s helper(): 005’s down refuses', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        const setUp = `CREATE SCHEMA zz_safe; CREATE SCHEMA zz_other;
          CREATE FUNCTION zz_other.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
          ALTER FUNCTION zz_other.helper() OWNER TO ${role};
          CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql SET search_path = zz_safe AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
          CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`
        await plant(db, role, 'ALTER FUNCTION public.zz_later() SET search_path = zz_other;', setUp)
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (e: unknown) => e,
        )
        const outcome = {
          superuser: await isSuperuser(db, role),
          refused: error instanceof Error,
          applied005: (await applied(db)).includes(MIGRATION_005),
        }
        expect(outcome).toEqual({ superuser: false, refused: true, applied005: true })
      })
    })
  })

  // Review rev4: the next trigger's function has a path of its own without the helper's schema;
  // the body takes it away, and the function runs with the session's, where a lesser login's
  // helper() in public answers.
  it.each([
    ['RESET search_path', 'RESET search_path'],
    ['RESET ALL', 'RESET ALL'],
    ['SET search_path TO DEFAULT', 'SET search_path TO DEFAULT'],
    ['SET search_path FROM CURRENT', 'SET search_path FROM CURRENT'],
  ])(
    'a trusted body whose ALTER FUNCTION … %s gives the next trigger’s function the session’s path: 005’s down refuses',
    async (_case, action) => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION public.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
            ALTER FUNCTION public.helper() OWNER TO ${role};
            CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
            CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`
          await plant(db, role, `ALTER FUNCTION public.zz_later() ${action};`, setUp)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String(error)).toContain(
            'public.zz_audit(), whose body makes or changes a function, or alters a table, a trigger or an extension, in a form',
          )
          const outcome = {
            superuser: await isSuperuser(db, role),
            refused: error instanceof Error,
            applied005: (await applied(db)).includes(MIGRATION_005),
          }
          expect(outcome).toEqual({ superuser: false, refused: true, applied005: true })
        })
      })
    },
  )

  // Review rev3 R9c: contrib dblink's dblink_exec() in a CHECK of a table a trusted body writes
  // runs SQL given as text on a new connection, as the superuser the connection string names: a
  // text runner that is no function of pg_catalog's.
  it('a trusted body that writes a table whose CHECK calls dblink_exec(): 005’s down refuses, naming the text runner', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      if (!(await hasExtension(db, 'dblink'))) return
      await withLoginRole(db, async (role) => {
        const setUp = `CREATE EXTENSION dblink SCHEMA public;
          CREATE TABLE public.zz_log (id int CHECK (public.dblink_exec(
            format('host=%s port=%s dbname=%s user=%s', host(inet_server_addr()), inet_server_port(), current_database(), current_user),
            'DO $d$ BEGIN PERFORM ${role}.hel' || 'per(); END $d$') IS NOT NULL))`
        await plant(db, role, 'INSERT INTO public.zz_log VALUES (1);', setUp)
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (e: unknown) => e,
        )
        expect(String(error)).toContain('which runs SQL given as text')
        const outcome = {
          superuser: await isSuperuser(db, role),
          refused: error instanceof Error,
          applied005: (await applied(db)).includes(MIGRATION_005),
        }
        expect(outcome).toEqual({ superuser: false, refused: true, applied005: true })
      })
    })
  })

  // F5: database_to_xml (and schema_to_xml, table_to_xml) run SELECT * FROM every view the
  // session may read; a view's functions run as the reader. Not in setsPath's list (query_to_xml,
  // ts_stat, ts_rewrite), and the body names no view.
  it('a trusted body that calls database_to_xml, beside a lesser login’s view of its own function: 005’s down refuses', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await plant(db, role, `PERFORM pg_catalog.database_to_xml(false, false, '');`)
        await db.transaction().execute(async (trx) => {
          await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
          await sql
            .raw(
              `CREATE FUNCTION ${role}.h2() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN 1; END $f$;
               CREATE VIEW ${role}.v AS SELECT ${role}.h2() AS x`,
            )
            .execute(trx)
        })
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (e: unknown) => e,
        )
        const outcome = {
          superuser: await isSuperuser(db, role),
          refused: error instanceof Error,
          applied005: (await applied(db)).includes(MIGRATION_005),
        }
        expect(outcome).toEqual({ superuser: false, refused: true, applied005: true })
      })
    })
  })
})
