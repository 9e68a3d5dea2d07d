import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { IntegrationCipher, migrateTo, rotateOpenRouterKeys } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { MIGRATION_001, MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'
import { withTestDatabase } from './support/test-database.js'

// Review R2: the lesser-code check looked at a column's own type alone. A column of a domain
// that a trusted role owns runs more than that domain: its base type's casts (an enum's owner
// may give it an implicit cast to text, with a function of its own), its CHECKs and what they
// call; an array runs its element type's. Migrating 000→001 ran a lesser login's cast as
// postgres (the CHECK that 001 adds compares resource_type with text), and keys:rotate a
// domain's CHECK calling such a login's function as the role it writes as. Each planted function
// tries to make its owner a superuser, or records who ran it: the run must refuse, and never
// call it.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a lesser role needs a server'

const MIGRATION_000 = '000_baseline_x402_resources'

/** A lesser role that can log in: one nobody could log in as changes nothing by itself. */
const withLoginRole = (db: Kysely<any>, use: (role: string) => Promise<void>) =>
  withLesserRole(db, 'x402_test_lesser', use, { login: true })

async function applied(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{
    name: string
  }>`SELECT name FROM x402_migrations.kysely_migration ORDER BY name`.execute(db)
  return rows.map((row) => row.name)
}

/** Runs `statements` as `role` (its own objects: their owner may change them at any time). */
async function asRole(db: Kysely<any>, role: string, statements: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
    await sql.raw(statements).execute(trx)
  })
}

/**
 * Schema `<role>` of `role`'s, with an enum `<role>.rt` of x402_resources' resource types, an
 * implicit cast of it to text through `<role>.f`, a function `<role>.g(text)` for a CHECK, and a
 * table `<role>.evidence` where `<role>.g` records who runs it once `armed`.
 */
async function plantLesserTypes(db: Kysely<any>, role: string): Promise<void> {
  await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
  await asRole(
    db,
    role,
    `CREATE TYPE ${role}.rt AS ENUM ('external', 'proxy', 'prompt', 'static', 'prompt_template');
     CREATE FUNCTION ${role}.f(v ${role}.rt) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN RETURN format('%s', v); END $f$;
     CREATE CAST (${role}.rt AS text) WITH FUNCTION ${role}.f(${role}.rt) AS IMPLICIT;
     CREATE TABLE ${role}.evidence (who text);
     GRANT USAGE ON SCHEMA ${role} TO PUBLIC;
     GRANT INSERT ON ${role}.evidence TO PUBLIC;
     CREATE FUNCTION ${role}.g(v text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN RETURN true; END $f$;`,
  )
}

/** Gives `<role>.f` and `<role>.g` their payload, as their owner may whenever it likes. */
async function arm(db: Kysely<any>, role: string): Promise<void> {
  await asRole(
    db,
    role,
    `CREATE OR REPLACE FUNCTION ${role}.f(v ${role}.rt) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN
       ${escalate(role)} RETURN format('%s', v); END $f$;
     CREATE OR REPLACE FUNCTION ${role}.g(v text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN
       INSERT INTO ${role}.evidence VALUES (current_user); ${escalate(role)} RETURN true; END $f$;`,
  )
}

async function evidence(db: Kysely<any>, role: string): Promise<string[]> {
  const { rows } = await sql.raw<{ who: string }>(`SELECT who FROM ${role}.evidence`).execute(db)
  return rows.map((row) => row.who)
}

describe.skipIf(skipReason)('code of a lesser login that a column’s type reaches', () => {
  it('a domain of postgres over a lesser login’s enum with an implicit cast: 000→001 refuses, and never runs the cast', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_000, { env: {} })
      await withLoginRole(db, async (role) => {
        await plantLesserTypes(db, role)
        // The constraint 001 replaces, here one that runs no code but pg_catalog's.
        await sql
          .raw(
            `CREATE DOMAIN public.zz_rt AS ${role}.rt;
             ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check,
               ALTER COLUMN resource_type DROP DEFAULT,
               ALTER COLUMN resource_type TYPE public.zz_rt USING resource_type::text::public.zz_rt,
               ALTER COLUMN resource_type SET DEFAULT 'external',
               ADD CONSTRAINT x402_resources_resource_type_check
                 CHECK (resource_type IS NOT NULL);
             INSERT INTO x402_resources (name, resource_url, normalized_url, network, pay_to)
               VALUES ('r', 'https://z.example.test', 'z.example.test', 'base', '0x1');`,
          )
          .execute(db)
        await arm(db, role)
        // 001's CHECK compares resource_type with text: the implicit cast runs for every row.
        const error = await migrateTo(db, MIGRATION_001, { env: {} }).catch((e: unknown) => e)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String((error as Error).message)).toContain(
          `column resource_type of public.x402_resources is of type public.zz_rt, a domain over ${role}.rt, owned by ${role}`,
        )
        expect(await applied(db)).not.toContain(MIGRATION_001)
      })
    })
  })

  it('a domain of postgres whose CHECK calls a lesser login’s function, on the keys: keys:rotate refuses, and never calls it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_006, { env: {} })
      await withLoginRole(db, async (role) => {
        await plantLesserTypes(db, role)
        await sql
          .raw(
            `CREATE DOMAIN public.zz_key AS text CHECK (${role}.g(VALUE));
             ALTER TABLE x402_user_openrouter_integrations ALTER COLUMN encrypted_api_key TYPE public.zz_key`,
          )
          .execute(db)
        const previous = new IntegrationCipher({
          current: 'the-old-secret-0123456789abcdef-012345',
          previous: [],
        })
        const rotating = new IntegrationCipher({
          current: 'the-new-secret-0123456789abcdef-012345',
          previous: ['the-old-secret-0123456789abcdef-012345'],
        })
        const userId = await createUser(db)
        await db
          .insertInto('x402_user_openrouter_integrations')
          .values({ user_id: userId, encrypted_api_key: previous.encrypt('sk-or-v1-test', userId) })
          .execute()
        await arm(db, role)
        // The rotation's UPDATE makes each new value of the domain: its CHECK runs.
        const error = await rotateOpenRouterKeys(db, {
          cipher: rotating,
          keyId: rotating.currentKeyId,
        }).catch((e: unknown) => e)
        expect(await evidence(db, role)).toEqual([])
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String((error as Error).message)).toContain(
          `column encrypted_api_key of public.x402_user_openrouter_integrations is of type public.zz_key, ` +
            `whose constraint zz_key_check calls ${role}.g(text), owned by ${role}`,
        )
      })
    })
  })

  it.each([
    [
      'a domain of postgres whose CHECK calls it',
      (role: string) => `CREATE DOMAIN public.zz_d AS text CHECK (${role}.g(VALUE));
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_d`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_d, whose constraint zz_d_check calls ${role}.g(text), owned by ${role}`,
    ],
    [
      'a domain over such a domain',
      (role: string) => `CREATE DOMAIN public.zz_d AS text CHECK (${role}.g(VALUE));
         CREATE DOMAIN public.zz_dd AS public.zz_d;
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_dd`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_dd, a domain over public.zz_d, whose constraint zz_d_check calls ${role}.g(text), owned by ${role}`,
    ],
    [
      'a domain whose CHECK casts to such a domain',
      (role: string) => `CREATE DOMAIN public.zz_d AS text CHECK (${role}.g(VALUE));
         CREATE DOMAIN public.zz_c AS text CHECK (VALUE::public.zz_d IS NOT NULL);
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_c`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_c, whose constraint zz_c_check uses type public.zz_d, whose constraint zz_d_check calls ${role}.g(text), owned by ${role}`,
    ],
    [
      'an array of a domain of postgres over the lesser login’s enum',
      (role: string) => `CREATE DOMAIN public.zz_rt AS ${role}.rt;
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_rt[]`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_rt[], which reaches public.zz_rt, a domain over ${role}.rt, owned by ${role}`,
    ],
    [
      'a range of postgres over the lesser login’s enum',
      (role: string) => `CREATE TYPE public.zz_range AS RANGE (subtype = ${role}.rt);
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_range`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_range, a range of ${role}.rt, owned by ${role}`,
    ],
    [
      'a composite type of postgres with an attribute of the lesser login’s enum',
      (role: string) => `CREATE TYPE public.zz_pair AS (kind ${role}.rt, n int);
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_pair`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_pair, whose attribute kind is of type ${role}.rt, owned by ${role}`,
    ],
    [
      'a CHECK of the table that casts to a domain of postgres whose CHECK calls it',
      (role: string) => `CREATE DOMAIN public.zz_d AS text CHECK (${role}.g(VALUE));
         ALTER TABLE x402_resources ADD CONSTRAINT zz_cast CHECK (name::public.zz_d IS NOT NULL)`,
      (role: string) =>
        `constraint zz_cast on public.x402_resources uses type public.zz_d, whose constraint zz_d_check calls ${role}.g(text), owned by ${role}`,
    ],
    [
      // Review revj J3: an index's operator class runs its family's support functions.
      'an index of postgres whose operator class has a support function of the lesser login',
      (
        role: string,
      ) => `CREATE FUNCTION public.zz_cmp(a text, b text) RETURNS int LANGUAGE sql IMMUTABLE AS $f$ SELECT bttextcmp(a, b) $f$;
         ALTER FUNCTION public.zz_cmp(text, text) OWNER TO ${role};
         CREATE OPERATOR CLASS public.zz_ops FOR TYPE text USING btree AS
           OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 public.zz_cmp(text, text);
         CREATE INDEX zz_idx ON x402_resources (name public.zz_ops)`,
      (role: string) =>
        `index public.zz_idx on public.x402_resources calls public.zz_cmp(text,text), owned by ${role}, support function 1 of operator class public.zz_ops`,
    ],
    [
      // Review revj J1: the walk stopped at depth 16, silently.
      '17 domains of postgres, each over the next, the last over the lesser login’s enum',
      (role: string) => {
        let ddl = `CREATE DOMAIN public.zz_d17 AS ${role}.rt;`
        for (let i = 16; i >= 1; i--) ddl += `CREATE DOMAIN public.zz_d${i} AS public.zz_d${i + 1};`
        return `${ddl} ALTER TABLE x402_resources ADD COLUMN zz public.zz_d1`
      },
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_d1, which reaches public.zz_d17, a domain over ${role}.rt, owned by ${role}`,
    ],
    [
      // Review revk K5: 005's down deletes WHERE resource_type = 'openrouter_instant'. In public
      // the search_path's check refuses it first (review revn N3); the type walk refuses an
      // operator on the type in any schema, here one off the path.
      'an operator of postgres on a trusted enum, over a lesser login’s function',
      (role: string) => `CREATE TYPE public.zz_e AS ENUM ('a');
         CREATE FUNCTION ${role}.eq(a public.zz_e, b public.zz_e) RETURNS boolean LANGUAGE sql AS 'SELECT a::text = b::text';
         ALTER FUNCTION ${role}.eq(public.zz_e, public.zz_e) OWNER TO ${role};
         CREATE SCHEMA zz_ops;
         CREATE OPERATOR zz_ops.= (LEFTARG = public.zz_e, RIGHTARG = public.zz_e, FUNCTION = ${role}.eq);
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_e`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_e, whose operator zz_ops.=(public.zz_e,public.zz_e) calls ${role}.eq(public.zz_e,public.zz_e), owned by ${role}`,
    ],
    [
      // Review revk K1: a range's values are ordered by its subtype's operator class, whose
      // support function runs wherever a value of the range is made or compared.
      'a range of postgres whose subtype operator class has a support function of the lesser login',
      (
        role: string,
      ) => `CREATE FUNCTION public.zz_cmp(a text, b text) RETURNS int LANGUAGE sql IMMUTABLE AS $f$ SELECT bttextcmp(a, b) $f$;
         ALTER FUNCTION public.zz_cmp(text, text) OWNER TO ${role};
         CREATE OPERATOR CLASS public.zz_ops FOR TYPE text USING btree AS
           OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 public.zz_cmp(text, text);
         CREATE TYPE public.zz_tr AS RANGE (subtype = text, subtype_opclass = public.zz_ops);
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_tr`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_tr, whose subtype operator class calls public.zz_cmp(text,text), owned by ${role}, support function 1 of operator class public.zz_ops`,
    ],
    [
      // Review revk K1: and a type's default operator class runs wherever its values are
      // compared, sorted or grouped (an array's, a composite's comparison of this attribute).
      'an enum of postgres whose default operator class has a support function of the lesser login',
      (role: string) => `CREATE TYPE public.zz_e AS ENUM ('a');
         CREATE FUNCTION public.zz_cmp(a public.zz_e, b public.zz_e) RETURNS int LANGUAGE sql IMMUTABLE AS $f$ SELECT enum_cmp(a, b) $f$;
         ALTER FUNCTION public.zz_cmp(public.zz_e, public.zz_e) OWNER TO ${role};
         CREATE OPERATOR CLASS public.zz_ops DEFAULT FOR TYPE public.zz_e USING btree AS
           OPERATOR 1 < (anyenum, anyenum), OPERATOR 2 <= (anyenum, anyenum), OPERATOR 3 = (anyenum, anyenum),
           OPERATOR 4 >= (anyenum, anyenum), OPERATOR 5 > (anyenum, anyenum), FUNCTION 1 public.zz_cmp(public.zz_e, public.zz_e);
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_e[]`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_e[], an array of public.zz_e, whose default operator class calls public.zz_cmp(public.zz_e,public.zz_e), owned by ${role}, support function 1 of operator class public.zz_ops`,
    ],
    [
      // Review revm M3: pg_catalog's classes for arrays are declared on anyarray, so a default
      // class for text[] exactly, in another schema, is the one PostgreSQL takes for text[].
      'a default operator class for text[] (a pg_catalog type) with a support function of the lesser login',
      (
        role: string,
      ) => `CREATE FUNCTION public.zz_cmp(a text[], b text[]) RETURNS int LANGUAGE sql IMMUTABLE AS $f$ SELECT btarraycmp(a, b) $f$;
         ALTER FUNCTION public.zz_cmp(text[], text[]) OWNER TO ${role};
         CREATE OPERATOR CLASS public.zz_ops DEFAULT FOR TYPE text[] USING btree AS
           OPERATOR 1 < (anyarray, anyarray), OPERATOR 2 <= (anyarray, anyarray), OPERATOR 3 = (anyarray, anyarray),
           OPERATOR 4 >= (anyarray, anyarray), OPERATOR 5 > (anyarray, anyarray), FUNCTION 1 public.zz_cmp(text[], text[]);
         ALTER TABLE x402_resources ADD COLUMN zz text[]`,
      (role: string) =>
        `column zz of public.x402_resources is of type text[], whose default operator class calls public.zz_cmp(text[],text[]), owned by ${role}, support function 1 of operator class public.zz_ops`,
    ],
    [
      // Review revm M1: a column left out of an INSERT takes its domain's default.
      'a domain of postgres whose DEFAULT calls it',
      (
        role: string,
      ) => `CREATE FUNCTION public.zz_note() RETURNS text LANGUAGE sql AS $f$ SELECT 'n' $f$;
         ALTER FUNCTION public.zz_note() OWNER TO ${role};
         CREATE DOMAIN public.zz_d AS text DEFAULT public.zz_note();
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_d`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_d, whose default calls public.zz_note(), owned by ${role}`,
    ],
    [
      // Review revm M2: every row routed into a partitioned table runs its key's operator class.
      'a partitioned table of postgres whose key’s operator class has a support function of the lesser login',
      (
        role: string,
      ) => `CREATE FUNCTION public.zz_cmp(a text, b text) RETURNS int LANGUAGE sql IMMUTABLE AS $f$ SELECT bttextcmp(a, b) $f$;
         ALTER FUNCTION public.zz_cmp(text, text) OWNER TO ${role};
         CREATE OPERATOR CLASS public.zz_ops FOR TYPE text USING btree AS
           OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 public.zz_cmp(text, text);
         CREATE TABLE public.zz_part (id int, k text) PARTITION BY RANGE (k public.zz_ops);
         CREATE TABLE public.zz_part_a PARTITION OF public.zz_part DEFAULT`,
      (role: string) =>
        `partition key on public.zz_part calls public.zz_cmp(text,text), owned by ${role}, support function 1 of operator class public.zz_ops`,
    ],
    [
      // Review revm M2: and its key's expressions.
      'a partitioned table of postgres whose key’s expression calls it',
      (
        role: string,
      ) => `CREATE FUNCTION public.zz_bucket(k text) RETURNS int LANGUAGE sql IMMUTABLE AS $f$ SELECT length(k) $f$;
         ALTER FUNCTION public.zz_bucket(text) OWNER TO ${role};
         CREATE TABLE public.zz_part (id int, k text) PARTITION BY LIST ((public.zz_bucket(k)));
         CREATE TABLE public.zz_part_a PARTITION OF public.zz_part DEFAULT`,
      (role: string) =>
        `partition key on public.zz_part calls public.zz_bucket(text), owned by ${role}`,
    ],
    [
      // Review revn N1: a row written to a partition is checked against its parents' keys.
      'a public partition of a table of another schema whose key’s operator class has a support function of the lesser login',
      (
        role: string,
      ) => `CREATE FUNCTION public.zz_cmp(a text, b text) RETURNS int LANGUAGE sql IMMUTABLE AS $f$ SELECT bttextcmp(a, b) $f$;
         ALTER FUNCTION public.zz_cmp(text, text) OWNER TO ${role};
         CREATE OPERATOR CLASS public.zz_ops FOR TYPE text USING btree AS
           OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 public.zz_cmp(text, text);
         CREATE SCHEMA zz_other;
         CREATE TABLE zz_other.zz_part (id int, k text) PARTITION BY RANGE (k public.zz_ops);
         CREATE TABLE public.zz_child PARTITION OF zz_other.zz_part DEFAULT`,
      (role: string) =>
        `partition key on zz_other.zz_part calls public.zz_cmp(text,text), owned by ${role}, support function 1 of operator class public.zz_ops`,
    ],
    [
      // Review revn N2: what a superuser adds to schema pg_catalog is not PostgreSQL's own.
      'a default operator class for text[] in schema pg_catalog with a support function of the lesser login',
      (
        role: string,
      ) => `CREATE FUNCTION public.zz_cmp(a text[], b text[]) RETURNS int LANGUAGE sql IMMUTABLE AS $f$ SELECT btarraycmp(a, b) $f$;
         ALTER FUNCTION public.zz_cmp(text[], text[]) OWNER TO ${role};
         CREATE OPERATOR CLASS pg_catalog.zz_ops DEFAULT FOR TYPE text[] USING btree AS
           OPERATOR 1 < (anyarray, anyarray), OPERATOR 2 <= (anyarray, anyarray), OPERATOR 3 = (anyarray, anyarray),
           OPERATOR 4 >= (anyarray, anyarray), OPERATOR 5 > (anyarray, anyarray), FUNCTION 1 public.zz_cmp(text[], text[]);
         ALTER TABLE x402_resources ADD COLUMN zz text[]`,
      (role: string) =>
        `column zz of public.x402_resources is of type text[], whose default operator class calls public.zz_cmp(text[],text[]), owned by ${role}, support function 1 of operator class pg_catalog.zz_ops`,
    ],
    [
      'a domain in schema pg_catalog over a domain whose CHECK calls it',
      (role: string) => `CREATE DOMAIN public.zz_d AS text CHECK (${role}.g(VALUE));
         CREATE DOMAIN pg_catalog.zz_dd AS public.zz_d;
         ALTER TABLE x402_resources ADD COLUMN zz pg_catalog.zz_dd`,
      (role: string) =>
        `column zz of public.x402_resources is of type zz_dd, a domain over public.zz_d, whose constraint zz_d_check calls ${role}.g(text), owned by ${role}`,
    ],
    [
      // Review revk K4: 005's down casts resource_type to text.
      'a cast of a trusted enum to text whose trusted function returns a domain whose CHECK calls it',
      (role: string) => `CREATE DOMAIN public.zz_d AS text CHECK (${role}.g(VALUE));
         CREATE TYPE public.zz_e AS ENUM ('a');
         CREATE FUNCTION public.zz_e_text(v public.zz_e) RETURNS public.zz_d LANGUAGE plpgsql IMMUTABLE
           AS $f$ BEGIN RETURN v::name::text; END $f$;
         CREATE CAST (public.zz_e AS text) WITH FUNCTION public.zz_e_text(public.zz_e);
         ALTER TABLE x402_resources ADD COLUMN zz public.zz_e`,
      (role: string) =>
        `column zz of public.x402_resources is of type public.zz_e, whose cast to text calls public.zz_e_text(public.zz_e), which returns type public.zz_d, whose constraint zz_d_check calls ${role}.g(text), owned by ${role}`,
    ],
  ] as const)(
    '%s, on x402_resources: 005→006 refuses, naming the way',
    async (_case, setUp, refusal) => {
      await withTestDatabase('postgres', async ({ db }) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        await withLoginRole(db, async (role) => {
          await plantLesserTypes(db, role)
          await sql.raw(setUp(role)).execute(db)
          await arm(db, role)
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect(String((error as Error).message)).toContain(refusal(role))
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).not.toContain(MIGRATION_006)
        })
      })
    },
  )

  it('domains, arrays, ranges and composites of trusted roles, whose CHECKs call pg_catalog alone: 005→006 goes on', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await sql
        .raw(
          `CREATE TYPE public.zz_kind AS ENUM ('a', 'b');
           CREATE DOMAIN public.zz_short AS text CHECK (length(VALUE) < 100);
           CREATE DOMAIN public.zz_kinds AS public.zz_kind[] CHECK (cardinality(VALUE) < 10);
           CREATE TYPE public.zz_range AS RANGE (subtype = public.zz_kind);
           CREATE TYPE public.zz_pair AS (kind public.zz_kind, label public.zz_short);
           ALTER TABLE x402_resources ADD COLUMN zz_a public.zz_short[], ADD COLUMN zz_b public.zz_kinds,
             ADD COLUMN zz_c public.zz_range, ADD COLUMN zz_d public.zz_pair`,
        )
        .execute(db)
      await migrateTo(db, MIGRATION_006, { env: {} })
      expect(await applied(db)).toContain(MIGRATION_006)
    })
  })
})

// Review revj J1, J2, J3, J8, J9: ways to a lesser login's code that the walk missed, or that made
// it exponential.
describe.skipIf(skipReason)('code of a lesser login that a type reaches by other ways', () => {
  /** x402_resources.resource_type of `type`, with a row, and a CHECK that runs no code. */
  const resourceTypeOf = (
    type: string,
  ) => `ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check,
       ALTER COLUMN resource_type DROP DEFAULT,
       ALTER COLUMN resource_type TYPE ${type} USING resource_type::text::${type},
       ALTER COLUMN resource_type SET DEFAULT 'external',
       ADD CONSTRAINT x402_resources_resource_type_check CHECK (resource_type IS NOT NULL);
     INSERT INTO x402_resources (name, resource_url, normalized_url, network, pay_to)
       VALUES ('r', 'https://z.example.test', 'z.example.test', 'base', '0x1');`

  it('17 domains of postgres over a lesser login’s enum with an implicit cast: 000→001 refuses, and never runs the cast', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_000, { env: {} })
      await withLoginRole(db, async (role) => {
        await plantLesserTypes(db, role)
        let ddl = `CREATE DOMAIN public.zz_d17 AS ${role}.rt;`
        for (let i = 16; i >= 1; i--) ddl += `CREATE DOMAIN public.zz_d${i} AS public.zz_d${i + 1};`
        await sql.raw(ddl + resourceTypeOf('public.zz_d1')).execute(db)
        await arm(db, role)
        const error = await migrateTo(db, MIGRATION_001, { env: {} }).catch((e: unknown) => e)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String((error as Error).message)).toContain(
          `column resource_type of public.x402_resources is of type public.zz_d1, which reaches public.zz_d17, ` +
            `a domain over ${role}.rt, owned by ${role}`,
        )
        expect(await applied(db)).not.toContain(MIGRATION_001)
      })
    })
  })

  it('an enum of postgres whose implicit cast to text is a lesser login’s function: 000→001 refuses, and never runs it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_000, { env: {} })
      await withLoginRole(db, async (role) => {
        await sql
          .raw(
            `CREATE SCHEMA ${role} AUTHORIZATION ${role};
             CREATE TYPE public.zz_rt AS ENUM ('external', 'proxy', 'prompt', 'static', 'prompt_template');`,
          )
          .execute(db)
        await asRole(
          db,
          role,
          `CREATE FUNCTION ${role}.f(v public.zz_rt) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN RETURN format('%s', v); END $f$;`,
        )
        await sql
          .raw(
            `CREATE CAST (public.zz_rt AS text) WITH FUNCTION ${role}.f(public.zz_rt) AS IMPLICIT;` +
              resourceTypeOf('public.zz_rt'),
          )
          .execute(db)
        await asRole(
          db,
          role,
          `CREATE OR REPLACE FUNCTION ${role}.f(v public.zz_rt) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN
             ${escalate(role)} RETURN format('%s', v); END $f$;`,
        )
        const error = await migrateTo(db, MIGRATION_001, { env: {} }).catch((e: unknown) => e)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String((error as Error).message)).toContain(
          `column resource_type of public.x402_resources is of type public.zz_rt, whose cast to text calls ` +
            `${role}.f(public.zz_rt), owned by ${role}`,
        )
        expect(await applied(db)).not.toContain(MIGRATION_001)
      })
    })
  })

  /** One integration of a new user, its key encrypted with the old secret; the rotation to run. */
  async function integration(db: Kysely<any>) {
    const previous = new IntegrationCipher({
      current: 'the-old-secret-0123456789abcdef-012345',
      previous: [],
    })
    const rotating = new IntegrationCipher({
      current: 'the-new-secret-0123456789abcdef-012345',
      previous: ['the-old-secret-0123456789abcdef-012345'],
    })
    const userId = await createUser(db)
    await db
      .insertInto('x402_user_openrouter_integrations')
      .values({ user_id: userId, encrypted_api_key: previous.encrypt('sk-or-v1-test', userId) })
      .execute()
    return () =>
      rotateOpenRouterKeys(db, { cipher: rotating, keyId: rotating.currentKeyId }).catch(
        (e: unknown) => e,
      )
  }

  it('a range of postgres whose subtype_diff is a lesser login’s function, under a GiST index: keys:rotate refuses, and never calls it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_006, { env: {} })
      await withLoginRole(db, async (role) => {
        await plantLesserTypes(db, role)
        await asRole(
          db,
          role,
          `CREATE FUNCTION ${role}.diff(a text, b text) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN RETURN 0; END $f$;`,
        )
        await sql
          .raw(
            `CREATE TYPE public.zz_tr AS RANGE (subtype = text, subtype_diff = ${role}.diff);
             ALTER TABLE x402_user_openrouter_integrations ADD COLUMN zz public.zz_tr;
             CREATE INDEX zz_gist ON x402_user_openrouter_integrations USING gist (zz);`,
          )
          .execute(db)
        const rotate = await integration(db)
        await sql
          .raw(`UPDATE x402_user_openrouter_integrations SET zz = public.zz_tr('a', 'z')`)
          .execute(db)
        await asRole(
          db,
          role,
          `CREATE OR REPLACE FUNCTION ${role}.diff(a text, b text) RETURNS float8 LANGUAGE plpgsql VOLATILE AS $f$ BEGIN
             INSERT INTO ${role}.evidence VALUES (current_user); RETURN 0; END $f$;`,
        )
        const error = await rotate()
        expect(await evidence(db, role)).toEqual([])
        expect(String((error as Error).message)).toContain(
          `column zz of public.x402_user_openrouter_integrations is of type public.zz_tr, whose subtype_diff function is ` +
            `${role}.diff(text,text), owned by ${role}`,
        )
      })
    })
  })

  it('a CHECK calling a function of postgres that returns a domain whose CHECK calls a lesser login’s function: keys:rotate refuses, and never calls it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_006, { env: {} })
      await withLoginRole(db, async (role) => {
        await plantLesserTypes(db, role)
        await sql
          .raw(
            `CREATE DOMAIN public.zz_d AS text CHECK (${role}.g(VALUE));
             CREATE FUNCTION public.zz_f(v text) RETURNS public.zz_d LANGUAGE plpgsql AS $f$ BEGIN RETURN v; END $f$;
             ALTER TABLE x402_user_openrouter_integrations
               ADD CONSTRAINT zz_key CHECK (public.zz_f(encrypted_api_key) IS NOT NULL);`,
          )
          .execute(db)
        const rotate = await integration(db)
        await arm(db, role)
        const error = await rotate()
        expect(await evidence(db, role)).toEqual([])
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String((error as Error).message)).toContain(
          `constraint zz_key on public.x402_user_openrouter_integrations calls public.zz_f(text), which returns type ` +
            `public.zz_d, whose constraint zz_d_check calls ${role}.g(text), owned by ${role}`,
        )
      })
    })
  })

  it('a CHECK calling a function of postgres with an OUT parameter of a domain whose CHECK calls a lesser login’s function: keys:rotate refuses, and never calls it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_006, { env: {} })
      await withLoginRole(db, async (role) => {
        await plantLesserTypes(db, role)
        // Review revk K6: the function's result is a record; the domain is one of its OUT parameters.
        await sql
          .raw(
            `CREATE DOMAIN public.zz_d AS text CHECK (${role}.g(VALUE));
             CREATE FUNCTION public.zz_f(IN v text, OUT ok boolean, OUT shown public.zz_d) LANGUAGE plpgsql
               AS $f$ BEGIN shown := v; ok := true; END $f$;
             ALTER TABLE x402_user_openrouter_integrations
               ADD CONSTRAINT zz_key CHECK ((public.zz_f(encrypted_api_key)).ok);`,
          )
          .execute(db)
        const rotate = await integration(db)
        await arm(db, role)
        const error = await rotate()
        expect(await evidence(db, role)).toEqual([])
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String((error as Error).message)).toContain(
          `constraint zz_key on public.x402_user_openrouter_integrations calls public.zz_f(text), which gives type ` +
            `public.zz_d, whose constraint zz_d_check calls ${role}.g(text), owned by ${role}`,
        )
      })
    })
  })

  it('17 composite types of a lesser login, each with two attributes of the next: 005→006 refuses with one line per way, not per path', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
        let ddl = `CREATE TYPE ${role}.t16 AS (a int);`
        for (let i = 15; i >= 0; i--)
          ddl += `CREATE TYPE ${role}.t${i} AS (a1 ${role}.t${i + 1}, a2 ${role}.t${i + 1});`
        await asRole(db, role, ddl)
        await sql.raw(`ALTER TABLE x402_resources ADD COLUMN zz ${role}.t0`).execute(db)
        const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
        const message = String((error as Error).message)
        expect(message).toContain(
          `column zz of public.x402_resources is of type ${role}.t0, which reaches ${role}.t15, ` +
            `whose attribute a2 is of type ${role}.t16, owned by ${role}`,
        )
        // Each (type, attribute) once: 2 × 16 ways and the column's own type, not 2^16 paths.
        expect(message.split(`owned by ${role}`).length - 1).toBeLessThan(40)
        expect(await applied(db)).not.toContain(MIGRATION_006)
      })
    })
  })
})
