import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateDown, migrateTo } from '../src/tooling.js'
import { createInstantResource } from './support/fixtures.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { withTestDatabase } from './support/test-database.js'

// A trusted body may name a type, not a function: a cast to a domain (`'x'::d`), a variable of
// it (`DECLARE v d`) runs the domain's CHECKs with the writer's power, whoever owns the domain
// and whatever its CHECK calls. The check followed types through columns and signatures alone.
// Review rev-paths F6 too: a trusted domain whose CHECK calls set_config('search_path', …), and
// an alias of set_config (LANGUAGE internal 'set_config_by_name'), change the path of the body
// that runs them without its text saying so. Each planted function tries to make its owner a
// superuser: the run must refuse, and never call it.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a lesser role needs a server'

const withLoginRole = (db: Kysely<any>, use: (role: string) => Promise<void>) =>
  withLesserRole(db, 'x402_test_lesser', use, { login: true })

async function applied(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{
    name: string
  }>`SELECT name FROM x402_migrations.kysely_migration ORDER BY name`.execute(db)
  return rows.map((row) => row.name)
}

/**
 * 005 applied, a row 005's down deletes, schema `<role>` of `role`'s with `<role>.helper()` and
 * `<role>.g(text)` (both escalate) and a domain `<role>.d` over text whose CHECK calls g; then
 * `setUp` (run as the test's superuser), and a trigger on x402_resources (AFTER DELETE) whose
 * function, owned by the runner, runs the PL/pgSQL statements `body`.
 */
async function plant(db: Kysely<any>, role: string, body: string, setUp = ''): Promise<void> {
  await migrateTo(db, MIGRATION_005, { env: {} })
  await createInstantResource(db)
  await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
  await db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
    await sql
      .raw(
        `CREATE FUNCTION ${role}.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
         CREATE FUNCTION ${role}.g(v text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN true; END $f$;
         CREATE DOMAIN ${role}.d AS text CHECK (${role}.g(VALUE));
         GRANT USAGE ON SCHEMA ${role} TO PUBLIC`,
      )
      .execute(trx)
  })
  if (setUp) await sql.raw(setUp).execute(db)
  await sql
    .raw(
      `CREATE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${body} RETURN OLD; END $f$;
       CREATE TRIGGER zz_audit AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_audit()`,
    )
    .execute(db)
}

describe.skipIf(skipReason)('a trusted trigger function whose body names a type', () => {
  it.each([
    [
      'casts to a lesser login’s domain, qualified',
      (role: string) => [`PERFORM 'x'::${role}.d;`, ''],
      (role: string) => `the body of public.zz_audit() names type ${role}.d, owned by ${role}`,
    ],
    [
      'declares a variable of a lesser login’s domain, quoted',
      (role: string) => [`DECLARE v "${role}"."d"; BEGIN v := 'x'; END;`, ''],
      (role: string) => `the body of public.zz_audit() names type ${role}.d, owned by ${role}`,
    ],
    [
      'calls a trusted function that casts, unqualified, to a lesser login’s domain in a schema on its path',
      (role: string) => [
        'PERFORM public.zz_middle();',
        `CREATE DOMAIN public.zz_ld AS text CHECK (${role}.g(VALUE));
         ALTER DOMAIN public.zz_ld OWNER TO ${role};
         CREATE FUNCTION public.zz_middle() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM 'x'::ZZ_LD; END $f$`,
      ],
      (role: string) => `the body of public.zz_middle() names type public.zz_ld, owned by ${role}`,
    ],
    [
      'casts to a domain of postgres whose CHECK calls a lesser login’s function',
      (role: string) => [
        `PERFORM 'x'::public.zz_d;`,
        `CREATE DOMAIN public.zz_d AS text CHECK (${role}.g(VALUE))`,
      ],
      (role: string) =>
        `the body of public.zz_audit() names type public.zz_d, whose constraint zz_d_check calls ${role}.g(text), owned by ${role}`,
    ],
    [
      'declares a variable of a domain of postgres whose default calls a lesser login’s function',
      (role: string) => [
        'DECLARE v zz_d; BEGIN NULL; END;',
        `CREATE DOMAIN public.zz_d AS boolean DEFAULT ${role}.g('x')`,
      ],
      (role: string) =>
        `the body of public.zz_audit() names type public.zz_d, whose default calls ${role}.g(text), owned by ${role}`,
    ],
    // A relation's row type is its columns' types (reading a relation runs nothing of its
    // owner's: review revv V4), walked as a column's are.
    [
      'declares a variable of a trusted table’s row type with a column of a lesser login’s domain',
      (role: string) => [
        `DECLARE r zz_app.t; BEGIN r.v := 'x'; END;`,
        `CREATE SCHEMA zz_app; CREATE TABLE zz_app.t (v ${role}.d)`,
      ],
      (role: string) =>
        `the body of public.zz_audit() names type zz_app.t, whose attribute v is of type ${role}.d, owned by ${role}`,
    ],
  ])(
    'which %s: 005’s down refuses, naming the body and the type, and never runs it',
    async (_case, planted, expected) => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const [body, setUp] = planted(role)
          await plant(db, role, body!, setUp)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String((error as Error).message)).toContain(expected(role))
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    },
  )

  // Review rev-paths F6: the path changed by code the body's text does not spell.
  it.each([
    [
      'casts to a domain of postgres whose CHECK sets the search path',
      (role: string) =>
        `CREATE DOMAIN public.zz_d AS text CHECK (set_config('search_path', '${role}, public', true) IS NOT NULL)`,
      `PERFORM 'x'::public.zz_d; PERFORM helper();`,
    ],
    [
      'calls an alias of set_config (LANGUAGE internal, set_config_by_name)',
      () =>
        `CREATE FUNCTION public.zz_sc(text, text, boolean) RETURNS text LANGUAGE internal AS 'set_config_by_name'`,
      `PERFORM public.zz_sc('search_path', '%ROLE%, public', true); PERFORM helper();`,
    ],
  ])(
    'which %s, then calls a lesser login’s function unqualified: 005’s down refuses, and never calls it',
    async (_case, setUp, body) => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          await plant(db, role, body.replaceAll('%ROLE%', role), setUp(role))
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String((error as Error).message)).toContain(
            `whose body names ${role}.helper(), owned by ${role}`,
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    },
  )

  it('which names PostgreSQL’s types and trusted enums, domains and composites, beside a lesser login’s domain it does not name: 005’s down runs', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        const setUp = `CREATE TYPE public.zz_state AS ENUM ('on', 'off');
          CREATE DOMAIN public.zz_name AS text CHECK (length(VALUE) > 0);
          CREATE TYPE public.zz_pair AS (a public.zz_state, b public.zz_name)`
        await plant(
          db,
          role,
          `DECLARE v zz_state := 'on'; w public.zz_name := 'n'; p zz_pair; j jsonb := '{}'::jsonb;
             BEGIN PERFORM 'x'::text, gen_random_uuid()::uuid, v, w, p, j, 'd'; END;`,
          setUp,
        )
        await migrateDown(db, { allowDataLoss: true, env: {} })
        expect(await applied(db)).not.toContain(MIGRATION_005)
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  // A domain named as built text (pg_input_is_valid, PostgreSQL 16 on) runs its CHECK: no name to
  // match in the body, so such a call is refused, as a call that runs SQL given as text is.
  it('which calls pg_input_is_valid with a lesser login’s domain named as built text: 005’s down refuses, and never runs it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      const { rows } = await sql<{
        found: boolean
      }>`SELECT to_regproc('pg_catalog.pg_input_is_valid') IS NOT NULL AS found`.execute(db)
      if (!rows[0]!.found) return
      await withLoginRole(db, async (role) => {
        await plant(db, role, `PERFORM pg_input_is_valid('x', '${role}' || '.' || 'd');`)
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (e: unknown) => e,
        )
        expect(String((error as Error).message)).toContain(
          'reaches public.zz_audit(), whose body calls a function that runs SQL given as text',
        )
        expect(await isSuperuser(db, role)).toBe(false)
        expect(await applied(db)).toContain(MIGRATION_005)
      })
    })
  })
})
