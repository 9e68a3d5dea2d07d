import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { DOWN_WATCH_SQL } from '../src/migrator/down-guard.js'
import { checkDrift, migrateDown, migrateTo, migrateToLatest } from '../src/tooling.js'
import { createInstantResource } from './support/fixtures.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { MIGRATION_002, MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// Review rev5 (of 05ddde8): a trusted body (the runner's) planted as an AFTER DELETE trigger on
// public.x402_resources, such that 005's down runs code a lesser login can change. Harness as
// rev2's, with two additions: `after` (SQL run once the body is planted) and `noCheck` (the body
// made with check_function_bodies off, as pg_dump's output makes every function).

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a lesser role needs a server'

const withLoginRole = (db: Kysely<any>, use: (role: string) => Promise<void>) =>
  withLesserRole(db, 'rev5_lesser', use, { login: true })

async function applied(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{
    name: string
  }>`SELECT name FROM x402_migrations.kysely_migration ORDER BY name`.execute(db)
  return rows.map((row) => row.name)
}

interface Options {
  /** What the refusal says, where a case checks it. */
  expects?: string
  /** The server version (server_version_num) from which the case applies. */
  fromVersion?: number
  setUp?: string
  after?: string
  noCheck?: boolean
  /** SQL run after the login's last step. */
  final?: string
  cleanUp?: string
}

async function plant(db: Kysely<any>, role: string, body: string, o: Options): Promise<void> {
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
  if (o.setUp) await sql.raw(o.setUp).execute(db)
  await sql
    .raw(
      `${o.noCheck ? 'SET check_function_bodies = off;' : ''}
       CREATE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${body} RETURN OLD; END $f$;
       ${o.noCheck ? 'RESET check_function_bodies;' : ''}
       CREATE TRIGGER zz_audit AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_audit()`,
    )
    .execute(db)
  if (o.after) await sql.raw(o.after).execute(db)
  await db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
    await sql
      .raw(
        `CREATE OR REPLACE FUNCTION ${role}.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$`,
      )
      .execute(trx)
  })
  if (o.final) await sql.raw(o.final).execute(db)
}

const LATER = `CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
  CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`

/** A trigger function of the lesser login's, in its schema, that escalates. */
const evilTrigger = (role: string) => `
  CREATE FUNCTION ${role}.evil() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN NULL; END $f$;
  ALTER FUNCTION ${role}.evil() OWNER TO ${role}`

/** A table with the login's trigger on it, disabled (the D1 and X3 cases enable it). */
const disabledEvilTrigger = (
  role: string,
) => `CREATE TABLE public.zz_t (x int); ${evilTrigger(role)};
  CREATE TRIGGER zz_evil AFTER INSERT ON public.zz_t FOR EACH ROW EXECUTE FUNCTION ${role}.evil();
  ALTER TABLE public.zz_t DISABLE TRIGGER zz_evil`

/** A btree operator class whose comparison, a superuser's, calls the login's helper(). */
const trustedBtreeOps = (
  role: string,
) => `CREATE FUNCTION public.zz_cmp(int, int) RETURNS int LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN btint4cmp($1, $2); END $f$;
  CREATE OPERATOR CLASS public.zz_bt_ops FOR TYPE int USING btree AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 public.zz_cmp(int, int)`

/** A table in a superuser's schema off the path, whose index expression calls the login's helper. */
const offPathIndexedTable = (role: string): Options => ({
  setUp: `CREATE SCHEMA zz_s; CREATE TABLE zz_s.zz_t (x int); INSERT INTO zz_s.zz_t VALUES (1);
    CREATE FUNCTION zz_s.zz_idx(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN $1; END $f$;
    CREATE INDEX zz_t_idx ON zz_s.zz_t (zz_s.zz_idx(x))`,
  cleanUp: 'DROP SCHEMA IF EXISTS zz_s CASCADE',
})

type Case = [string, (role: string) => string, (role: string) => Options]

/** Review rev12's immutable function `imm()` in `schema`, which calls the login's helper(). */
const immutableOf = (role: string, schema = role) =>
  `CREATE FUNCTION ${schema}.imm() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN 1; END $f$;`

/** `statements` run as the login, in a transaction of their own. */
const asLogin = (role: string, statements: string) =>
  `BEGIN; SET LOCAL ROLE ${role}; ${statements}; COMMIT`

/** A superuser's table zz_s.zz_r off the path, with `then` (its index, a child) calling the login's imm(). */
const offPathRead = (role: string, then: string): Options => ({
  setUp: `${immutableOf(role)} ALTER FUNCTION ${role}.imm() OWNER TO ${role};
    CREATE SCHEMA zz_s; CREATE TABLE zz_s.zz_r (x int); ${then}`,
  cleanUp: 'DROP SCHEMA IF EXISTS zz_s CASCADE',
})

const cases: Case[] = [
  // Control: the ALTER FUNCTION … SET search_path to the login's schema, plainly: refused.
  [
    'control: ALTER FUNCTION … SET search_path = the schema, plainly',
    (role) => `ALTER FUNCTION public.zz_later() SET search_path = ${role}, public;`,
    () => ({ setUp: LATER }),
  ],
  // T1: standard_conforming_strings off (a function's own SET, which the check does not read):
  // PostgreSQL reads '\' || ' as one string, the check (scs on) as two; the ALTER between
  // is code to PostgreSQL, inside a string to code-ddl.ts. Valid SQL both ways.
  [
    'T1: ALTER FUNCTION … SET search_path hidden by a backslash, in a function whose own SET turns standard_conforming_strings off',
    (role) =>
      `PERFORM '\\' || '; ALTER FUNCTION public.zz_later() SET search_path = ${role}, public; -- ';\n`,
    () => ({
      setUp: LATER,
      after: 'ALTER FUNCTION public.zz_audit() SET standard_conforming_strings = off',
    }),
  ],
  [
    'T1b: ALTER FUNCTION … RESET search_path hidden by a backslash (scs off)',
    () => `PERFORM '\\' || '; ALTER FUNCTION public.zz_later() RESET search_path; -- ';\n`,
    (role) => ({
      setUp: `CREATE FUNCTION public.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
            ALTER FUNCTION public.helper() OWNER TO ${role};
            CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
            CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`,
      after: 'ALTER FUNCTION public.zz_audit() SET standard_conforming_strings = off',
    }),
  ],
  // T4: default settings, valid SQL. An E'…' string continued on the next line ('…' after a
  // newline) is one string to PostgreSQL, read with E's escapes; the check reads the second part
  // as a standard string, where \' is a backslash and a closing quote … so '\'' is, to it, a
  // string still open. PostgreSQL closes it; the ALTER after it is code.
  [
    "T4: ALTER FUNCTION … SET search_path after E'a' continued by '\\'' on the next line (default settings)",
    (role) =>
      `PERFORM E'a'\n'\\''; ALTER FUNCTION public.zz_later() SET search_path = ${role}, public; -- ';\n`,
    () => ({ setUp: LATER }),
  ],
  [
    'T4b: ALTER FUNCTION … RESET search_path (a form refused unread) after an E string continued (default settings)',
    () => `PERFORM E'a'\n'\\''; ALTER FUNCTION public.zz_later() RESET search_path; -- ';\n`,
    (role) => ({
      setUp: `CREATE FUNCTION public.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
            ALTER FUNCTION public.helper() OWNER TO ${role};
            CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
            CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`,
    }),
  ],
  // Review rev6 T4c: a `--` comment between the E string and the line break: the lexer's
  // whitespace_with_newline takes one there too. T4v: from PostgreSQL 16, a vertical tab is space.
  [
    "T4c: ALTER FUNCTION … SET search_path after E'a' --comment⏎'\\'' (default settings)",
    (role) =>
      `PERFORM E'a' --x\n'\\''; ALTER FUNCTION public.zz_later() SET search_path = ${role}, public; -- ';\n`,
    () => ({ setUp: LATER }),
  ],
  [
    "T4v: ALTER FUNCTION … SET search_path after E'a' \\v⏎'\\'' (PostgreSQL 16 and later)",
    (role) =>
      `PERFORM E'a'\v\n'\\''; ALTER FUNCTION public.zz_later() SET search_path = ${role}, public; -- ';\n`,
    () => ({ setUp: LATER, fromVersion: 160000 }),
  ],
  // Review rev6 A1: an aggregate (a superuser's) whose transition function the login owns.
  [
    'A1: a trusted aggregate whose transition function the login owns',
    () => `PERFORM public.zz_agg(v.x) FROM (VALUES (1)) AS v(x);`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.sf(int, int) RETURNS int LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN 0; END $f$;
        ALTER FUNCTION ${role}.sf(int, int) OWNER TO ${role};
        CREATE AGGREGATE public.zz_agg(int) (SFUNC = ${role}.sf, STYPE = int)`,
      expects: `aggregate public.zz_agg(integer) calls ${role}.sf(integer,integer), owned by ${role}`,
    }),
  ],
  // rev6 OP3: the login's operator on its own type, called as OPERATOR(schema.===) with a NULL.
  [
    'OP3: OPERATOR(login_schema.===) on the login’s own type, given NULL',
    (role) => `PERFORM 1 OPERATOR(${role}.===) NULL;`,
    (role) => ({
      setUp: `CREATE TYPE ${role}.t AS (x int); ALTER TYPE ${role}.t OWNER TO ${role};
        CREATE FUNCTION ${role}.opf(int, ${role}.t) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN true; END $f$;
        ALTER FUNCTION ${role}.opf(int, ${role}.t) OWNER TO ${role};
        CREATE OPERATOR ${role}.=== (LEFTARG = int, RIGHTARG = ${role}.t, FUNCTION = ${role}.opf);
        ALTER OPERATOR ${role}.=== (int, ${role}.t) OWNER TO ${role}`,
      expects: `calls ${role}.opf(integer,${role}.t), owned by ${role}`,
    }),
  ],
  // rev6 DEF1: a trusted function whose argument's DEFAULT calls the login's function, called
  // without that argument.
  [
    'DEF1: a trusted function whose argument default calls the login’s function, called without it',
    () => `PERFORM public.zz_def();`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.evi() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN 1; END $f$;
        ALTER FUNCTION ${role}.evi() OWNER TO ${role};
        CREATE FUNCTION public.zz_def(x int DEFAULT ${role}.evi()) RETURNS int LANGUAGE plpgsql AS $f$ BEGIN RETURN x; END $f$`,
      expects: `whose body has an argument default that calls ${role}.evi(), owned by ${role}`,
    }),
  ],
  // T2: a lone $ before E'…': PostgreSQL reads $ (a character) and an E string; the check's
  // look-behind takes the $ as part of a name, and reads a standard string. The statement is
  // never run (IF false), and plpgsql checks no SQL syntax where check_function_bodies is off.
  [
    "T2: ALTER FUNCTION … SET search_path hidden after $E'\\'' (check_function_bodies off)",
    (role) =>
      `IF false THEN PERFORM $E'\\''; END IF; ALTER FUNCTION public.zz_later() SET search_path = ${role}, public; -- '\n`,
    () => ({ setUp: LATER, noCheck: true }),
  ],
  // T3: a digit before a dollar quote: PostgreSQL reads 1 and $a$…$a$; the check's look-behind
  // takes the $ as part of a name, and reads the ' inside as a string's start.
  [
    "T3: ALTER FUNCTION … SET search_path hidden after 1$a$'$a$ (check_function_bodies off)",
    (role) =>
      `IF false THEN PERFORM 1$a$'$a$; END IF; ALTER FUNCTION public.zz_later() SET search_path = ${role}, public; -- '\n`,
    () => ({ setUp: LATER, noCheck: true }),
  ],
  // C1: a function made by the body (a form code-ddl.ts reads) is read with the maker's path,
  // but runs with its caller's: the maker has a SET search_path of its own without public, the
  // function it makes again is the next trigger's, which runs with the session's, where a
  // lesser login's helper() in public answers.
  [
    'C1: CREATE OR REPLACE of the next trigger’s function, read with the maker’s own path, run with the session’s',
    () =>
      `CREATE OR REPLACE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $g$ BEGIN PERFORM helper(); RETURN OLD; END $g$;`,
    (role) => ({
      setUp: `CREATE FUNCTION public.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
            ALTER FUNCTION public.helper() OWNER TO ${role};
            CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN OLD; END $f$;
            CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`,
      after: 'ALTER FUNCTION public.zz_audit() SET search_path = pg_catalog',
    }),
  ],
  // P1: ALTER FUNCTION … SET search_path = a schema a superuser owns (read: its schemas counted)
  // where a lesser login owns a table, not a function: the rule of review rev3 R5 looks for
  // functions there whose names a body holds, not relations (nor types, operators) that the
  // altered function's bare names then find.
  [
    'P1: ALTER FUNCTION … SET search_path = a superuser’s schema holding the login’s table, which the next trigger inserts into by a bare name',
    () => `ALTER FUNCTION public.zz_later() SET search_path = zz_other, public;`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_other; GRANT USAGE ON SCHEMA zz_other TO PUBLIC;
            CREATE TABLE zz_other.zz_t (x int); ${evilTrigger(role)};
            CREATE TRIGGER zz_evil BEFORE INSERT ON zz_other.zz_t FOR EACH ROW EXECUTE FUNCTION ${role}.evil();
            ALTER TABLE zz_other.zz_t OWNER TO ${role};
            CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN INSERT INTO zz_t VALUES (1); RETURN OLD; END $f$;
            CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`,
    }),
  ],
  // U1: ALTER FUNCTION … SET search_path = "$user": searchPathListSql takes the name as written
  // ($user), where PostgreSQL reads the current user's name: a schema of the runner's name that
  // the login owns.
  [
    'U1: ALTER FUNCTION … SET search_path = "$user", where a schema of the runner’s name is the login’s',
    () => `ALTER FUNCTION public.zz_later() SET search_path = "$user";`,
    (role) => ({
      setUp: `CREATE SCHEMA postgres AUTHORIZATION ${role};
            CREATE FUNCTION postgres.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
            ALTER FUNCTION postgres.helper() OWNER TO ${role};
            CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
            CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`,
      after: 'ALTER FUNCTION public.zz_audit() SET search_path = pg_catalog',
    }),
  ],
  // D1: a disabled trigger (the check read only enabled ones until rev8) whose function the login
  // owns, enabled by the body before it writes that table.
  [
    'D1: ALTER TABLE … ENABLE TRIGGER of a disabled trigger calling the login’s function, then an INSERT',
    () => `ALTER TABLE public.zz_t ENABLE TRIGGER zz_evil; INSERT INTO public.zz_t VALUES (1);`,
    (role) => ({
      setUp: disabledEvilTrigger(role),
    }),
  ],
  [
    'D1b: ALTER TABLE … ENABLE ALWAYS TRIGGER of a disabled trigger, then an INSERT',
    () =>
      `ALTER TABLE public.zz_t ENABLE ALWAYS TRIGGER zz_evil; INSERT INTO public.zz_t VALUES (1);`,
    (role) => ({
      setUp: disabledEvilTrigger(role),
    }),
  ],
  // D2: a disabled event trigger whose function the login owns, enabled by the body; the next
  // DDL fires it (the body's own, or the down's).
  [
    'D2: ALTER EVENT TRIGGER … ENABLE of the login’s event trigger function, then DDL',
    () => `ALTER EVENT TRIGGER zz_evt ENABLE; CREATE TEMP TABLE zz_tmp (x int);`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.evt() RETURNS event_trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
        ALTER FUNCTION ${role}.evt() OWNER TO ${role};
        CREATE EVENT TRIGGER zz_evt ON ddl_command_end EXECUTE FUNCTION ${role}.evt();
        ALTER EVENT TRIGGER zz_evt DISABLE`,
      cleanUp: 'DROP EVENT TRIGGER IF EXISTS zz_evt',
    }),
  ],
  // D3: the login's table made a child of a table in scope; a DELETE of the parent deletes its
  // rows and fires its triggers with the writer's power.
  [
    'D3: ALTER TABLE the login’s table INHERIT a public table, then DELETE FROM the parent',
    (role) => `ALTER TABLE ${role}.zz_c INHERIT public.zz_p; DELETE FROM public.zz_p;`,
    (role) => ({
      setUp: `CREATE TABLE public.zz_p (x int); CREATE TABLE ${role}.zz_c (x int); ${evilTrigger(role)};
        CREATE TRIGGER zz_evil BEFORE DELETE ON ${role}.zz_c FOR EACH ROW EXECUTE FUNCTION ${role}.evil();
        INSERT INTO ${role}.zz_c VALUES (1);
        ALTER TABLE ${role}.zz_c OWNER TO ${role}`,
    }),
  ],
  [
    'D3b: ALTER TABLE … ATTACH PARTITION the login’s table, then INSERT INTO the parent',
    (role) =>
      `ALTER TABLE public.zz_p ATTACH PARTITION ${role}.zz_c FOR VALUES IN (1); INSERT INTO public.zz_p VALUES (1);`,
    (role) => ({
      setUp: `CREATE TABLE public.zz_p (x int) PARTITION BY LIST (x); CREATE TABLE ${role}.zz_c (x int); ${evilTrigger(role)};
        CREATE TRIGGER zz_evil BEFORE INSERT ON ${role}.zz_c FOR EACH ROW EXECUTE FUNCTION ${role}.evil();
        ALTER TABLE ${role}.zz_c OWNER TO ${role}`,
    }),
  ],
  // D4: the login's table, with its trigger, moved into public (SET SCHEMA), where the body's
  // bare INSERT INTO then finds it.
  [
    'D4: ALTER TABLE the login’s table SET SCHEMA public, then INSERT INTO its bare name',
    (role) => `ALTER TABLE ${role}.zz_t SET SCHEMA public; INSERT INTO zz_t VALUES (1);`,
    (role) => ({
      setUp: `CREATE TABLE ${role}.zz_t (x int); ${evilTrigger(role)};
        CREATE TRIGGER zz_evil BEFORE INSERT ON ${role}.zz_t FOR EACH ROW EXECUTE FUNCTION ${role}.evil();
        ALTER TABLE ${role}.zz_t OWNER TO ${role}`,
    }),
  ],
  // O1: an operator (resolved by the path and the operands' types, named by no word) on
  // built-in types that no column in scope has, whose function the login owns.
  [
    'O1: an operator on circle whose function the login owns',
    () => `PERFORM '<(0,0),1>'::circle === '<(0,0),1>'::circle;`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.opf(circle, circle) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN true; END $f$;
        ALTER FUNCTION ${role}.opf(circle, circle) OWNER TO ${role};
        CREATE OPERATOR public.=== (LEFTARG = circle, RIGHTARG = circle, FUNCTION = ${role}.opf)`,
    }),
  ],
  [
    'O2: a cast between built-in types whose function the login owns',
    () => `PERFORM '<(0,0),1>'::circle::macaddr8;`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.castf(circle) RETURNS macaddr8 LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN '08:00:2b:01:02:03:04:05'; END $f$;
        ALTER FUNCTION ${role}.castf(circle) OWNER TO ${role};
        CREATE CAST (circle AS macaddr8) WITH FUNCTION ${role}.castf(circle)`,
    }),
  ],
  // Review rev6 (of 41ee435). OP4, CAST4, A2: an operator, a cast or an aggregate whose function
  // is trusted (a superuser's) and calls the login's: run by an expression that names neither.
  [
    'OP4: an operator on circle whose trusted function calls the login’s',
    () => `PERFORM '<(0,0),1>'::circle === '<(0,0),1>'::circle;`,
    (role) => ({
      setUp: `CREATE FUNCTION public.opf(circle, circle) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN true; END $f$;
        CREATE OPERATOR public.=== (LEFTARG = circle, RIGHTARG = circle, FUNCTION = public.opf)`,
      expects: 'operator',
    }),
  ],
  [
    'CAST4: a cast between built-in types whose trusted function calls the login’s',
    () => `PERFORM '<(0,0),1>'::circle::macaddr8;`,
    (role) => ({
      setUp: `CREATE FUNCTION public.castf(circle) RETURNS macaddr8 LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN '08:00:2b:01:02:03:04:05'; END $f$;
        CREATE CAST (circle AS macaddr8) WITH FUNCTION public.castf(circle)`,
      expects: 'cast',
    }),
  ],
  [
    'A2: an aggregate whose trusted transition function calls the login’s',
    () => `PERFORM public.zz_agg(v) FROM (VALUES (1)) AS t(v);`,
    (role) => ({
      setUp: `CREATE FUNCTION public.aggf(int, int) RETURNS int LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN $2; END $f$;
        CREATE AGGREGATE public.zz_agg(int) (SFUNC = public.aggf, STYPE = int)`,
      expects: 'aggregate',
    }),
  ],
  // DOM1, DOM2: a trusted function taking or returning the login's domain, whose CHECK calls the
  // login's function: the call coerces its argument, the return its result, to the domain.
  [
    'DOM1: a trusted function whose argument is the login’s domain',
    () => `PERFORM public.takes(1);`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.chk(int) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN true; END $f$;
        ALTER FUNCTION ${role}.chk(int) OWNER TO ${role};
        CREATE DOMAIN ${role}.zz_d AS int CHECK (${role}.chk(VALUE));
        ALTER DOMAIN ${role}.zz_d OWNER TO ${role};
        CREATE FUNCTION public.takes(x ${role}.zz_d) RETURNS void LANGUAGE plpgsql AS $f$ BEGIN END $f$`,
    }),
  ],
  [
    'DOM2: a trusted function whose result is the login’s domain',
    () => `PERFORM public.gives();`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.chk(int) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN true; END $f$;
        ALTER FUNCTION ${role}.chk(int) OWNER TO ${role};
        CREATE DOMAIN ${role}.zz_d AS int CHECK (${role}.chk(VALUE));
        ALTER DOMAIN ${role}.zz_d OWNER TO ${role};
        CREATE FUNCTION public.gives() RETURNS ${role}.zz_d LANGUAGE plpgsql AS $f$ BEGIN RETURN 1; END $f$`,
    }),
  ],
  // P1b, P1c: ALTER FUNCTION … SET search_path = a superuser's schema whose trusted function (or
  // table with a trigger) calls the login's: the altered function, fired next, finds it by its bare
  // name with the new path.
  [
    'P1b: ALTER FUNCTION … SET search_path = a schema whose trusted helper() calls the login’s',
    () => `ALTER FUNCTION public.zz_later() SET search_path = zz_s, public;`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s;
        CREATE FUNCTION zz_s.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); END $f$;
        ${LATER}`,
      expects: 'zz_s.helper()',
    }),
  ],
  [
    'P1c: ALTER FUNCTION … SET search_path = a schema whose trusted table’s trigger calls the login’s',
    () => `ALTER FUNCTION public.zz_later() SET search_path = zz_s, public;`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s; CREATE TABLE zz_s.zz_t (x int);
        CREATE FUNCTION zz_s.trig() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN NEW; END $f$;
        CREATE TRIGGER zz_trig BEFORE INSERT ON zz_s.zz_t FOR EACH ROW EXECUTE FUNCTION zz_s.trig();
        CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN INSERT INTO zz_t VALUES (1); RETURN OLD; END $f$;
        CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`,
      expects: 'zz_s.trig()',
    }),
  ],
  // C2, C3: a function the body makes, with SET search_path = a superuser's schema, whose code
  // names a trusted domain there (its CHECK calls the login's) or writes a trusted table there
  // (its trigger calls the login's) by a bare name.
  [
    'C2: a made function whose code casts to a trusted domain, found by its own path, whose CHECK calls the login’s',
    () =>
      `CREATE FUNCTION public.zz_made() RETURNS void LANGUAGE plpgsql SET search_path = zz_s AS $m$ BEGIN PERFORM 1::zz_d; END $m$; PERFORM public.zz_made();`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s;
        CREATE FUNCTION ${role}.chk(int) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN true; END $f$;
        ALTER FUNCTION ${role}.chk(int) OWNER TO ${role};
        CREATE DOMAIN zz_s.zz_d AS int CHECK (${role}.chk(VALUE))`,
      expects: 'zz_s.zz_d',
    }),
  ],
  [
    'C3: a made function whose code writes a trusted table, found by its own path, whose trigger calls the login’s',
    () =>
      `CREATE FUNCTION public.zz_made() RETURNS void LANGUAGE plpgsql SET search_path = zz_s AS $m$ BEGIN INSERT INTO zz_t VALUES (1); END $m$; PERFORM public.zz_made();`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s; CREATE TABLE zz_s.zz_t (x int);
        CREATE FUNCTION zz_s.trig() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN NEW; END $f$;
        CREATE TRIGGER zz_trig BEFORE INSERT ON zz_s.zz_t FOR EACH ROW EXECUTE FUNCTION zz_s.trig()`,
      expects: 'zz_s.trig()',
    }),
  ],
  // Review rev7 (of e09b97a).
  // R7-1: an operator class (a superuser's) whose support function is a trusted body that calls
  // the login's: a hash index on a table the body inserts into calls it per row. Its pg_depend
  // names the operator class; only a lesser owner of its functions is refused, a trusted one is
  // never walked.
  [
    'OPC1: a hash index whose trusted operator class function calls the login’s, on a table the body inserts into',
    () => `INSERT INTO public.zz_t VALUES (1);`,
    (role) => ({
      setUp: `CREATE FUNCTION public.zz_hashf(int) RETURNS int LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN $1; END $f$;
        CREATE OPERATOR CLASS public.zz_hash_ops FOR TYPE int USING hash AS OPERATOR 1 =, FUNCTION 1 public.zz_hashf(int);
        CREATE TABLE public.zz_t (x int);
        CREATE INDEX zz_t_x ON public.zz_t USING hash (x public.zz_hash_ops)`,
    }),
  ],
  [
    'OPC2: a btree index whose trusted comparison function calls the login’s',
    () => `INSERT INTO public.zz_t VALUES (1);`,
    (role) => ({
      setUp: `${trustedBtreeOps(role)};
        CREATE TABLE public.zz_t (x int); INSERT INTO public.zz_t VALUES (0);
        CREATE INDEX zz_t_x ON public.zz_t (x public.zz_bt_ops)`,
    }),
  ],
  // R7-2: a range type (a superuser's) whose subtype operator class's comparison is such a body:
  // every value of the range made compares its bounds with it.
  [
    'RNG1: a trusted range type whose subtype operator class compares with a trusted body that calls the login’s',
    () => `PERFORM public.zz_r(1, 2);`,
    (role) => ({
      setUp: `${trustedBtreeOps(role)};
        CREATE TYPE public.zz_r AS RANGE (SUBTYPE = int, SUBTYPE_OPCLASS = public.zz_bt_ops)`,
    }),
  ],
  // R7-3: extended statistics (a superuser's) on an expression that calls the login's function:
  // ANALYZE evaluates it as the table's owner. Not attached code: never read.
  [
    'ST1: ANALYZE of a table with extended statistics on an expression calling the login’s function',
    () => `ANALYZE public.zz_t;`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.sx(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN PERFORM ${role}.helper(); RETURN $1; END $f$;
        ALTER FUNCTION ${role}.sx(int) OWNER TO ${role};
        CREATE TABLE public.zz_t (x int); INSERT INTO public.zz_t SELECT generate_series(1, 10);
        CREATE STATISTICS public.zz_st ON (${role}.sx(x)), x FROM public.zz_t`,
    }),
  ],
  // R7-4: a base type (a superuser's) whose typmod input function is a trusted body that calls
  // the login's: a cast to the type with a modifier runs it.
  [
    'TM1: a trusted type whose typmod_in is a trusted body that calls the login’s',
    () => `PERFORM '1'::public.zz_ty(5);`,
    (role) => ({
      setUp: `CREATE TYPE public.zz_ty;
        CREATE FUNCTION public.zz_ty_in(cstring) RETURNS public.zz_ty LANGUAGE internal IMMUTABLE STRICT AS 'int4in';
        CREATE FUNCTION public.zz_ty_out(public.zz_ty) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'int4out';
        CREATE FUNCTION public.zz_ty_tm(cstring[]) RETURNS int LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN 1; END $f$;
        CREATE TYPE public.zz_ty (INPUT = public.zz_ty_in, OUTPUT = public.zz_ty_out, TYPMOD_IN = public.zz_ty_tm, LIKE = int4)`,
    }),
  ],
  // R7-5: ALTER FUNCTION … SET search_path = "$user" of a SECURITY DEFINER function of another
  // superuser: at run time "$user" is that owner, whose name is a schema the login owns.
  [
    'U2: ALTER FUNCTION … SET search_path = "$user" of another superuser’s SECURITY DEFINER function',
    () => `ALTER FUNCTION public.zz_later() SET search_path = "$user";`,
    (role) => ({
      setUp: `CREATE ROLE zz_admin SUPERUSER NOLOGIN;
        CREATE SCHEMA zz_admin AUTHORIZATION ${role};
        CREATE FUNCTION zz_admin.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
        ALTER FUNCTION zz_admin.helper() OWNER TO ${role};
        CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
        ALTER FUNCTION public.zz_later() OWNER TO zz_admin;
        CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`,
      cleanUp: `REASSIGN OWNED BY zz_admin TO postgres; DROP OWNED BY zz_admin; DROP ROLE zz_admin`,
    }),
  ],
  [
    'X2: an UPDATE of pg_proc.proconfig gives the next trigger’s function a path',
    () =>
      `UPDATE pg_catalog.pg_proc SET proconfig = ARRAY['search_path=zz_s, pg_catalog'] WHERE oid = 'public.zz_later()'::pg_catalog.regprocedure;`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s;
        CREATE FUNCTION zz_s.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); END $f$;
        CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
        CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`,
      after: 'ALTER FUNCTION public.zz_audit() SET search_path = pg_catalog',
    }),
  ],
  [
    'X3: an UPDATE of pg_trigger enables a disabled trigger that calls the login’s function, then an INSERT',
    () =>
      `UPDATE pg_catalog.pg_trigger SET tgenabled = 'O' WHERE tgname = 'zz_evil'; ALTER TABLE public.zz_t ADD COLUMN y int; INSERT INTO public.zz_t VALUES (1);`,
    (role) => ({
      setUp: disabledEvilTrigger(role),
    }),
  ],
  [
    'GIST1: a trusted range type whose trusted subtype_diff calls the login’s, in a GiST index the body fills',
    () =>
      `INSERT INTO public.zz_t SELECT public.zz_r(i, i + 1) FROM generate_series(1, 2000) AS i;`,
    (role) => ({
      setUp: `CREATE FUNCTION public.zz_diff(int, int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN PERFORM ${role}.helper(); RETURN $1 - $2; END $f$;
        CREATE TYPE public.zz_r AS RANGE (SUBTYPE = int, SUBTYPE_DIFF = public.zz_diff);
        CREATE TABLE public.zz_t (r public.zz_r); CREATE INDEX ON public.zz_t USING gist (r)`,
    }),
  ],
  // rev8 R8-3: a trusted in_range support function added to a built-in operator family
  // (integer_ops, oid < 16384): implicit_functions keeps only families made after initdb, so
  // the function is never walked; a window frame RANGE with a numeric offset over int4 calls it.
  [
    'OPF1: a trusted in_range function added to built-in family integer_ops calls the login’s',
    () =>
      `PERFORM count(*) OVER (ORDER BY x RANGE BETWEEN 1.5 PRECEDING AND CURRENT ROW) FROM (VALUES (1), (2)) AS v(x);`,
    (role) => ({
      setUp: `CREATE FUNCTION public.zz_inrange(int4, int4, numeric, bool, bool) RETURNS bool LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN true; END $f$;
        ALTER OPERATOR FAMILY integer_ops USING btree ADD FUNCTION 3 (int4, numeric) public.zz_inrange(int4, int4, numeric, bool, bool)`,
      cleanUp: 'ALTER OPERATOR FAMILY integer_ops USING btree DROP FUNCTION 3 (int4, numeric)',
    }),
  ],
  // rev8 R8-4: a trusted typmod_in given to built-in type int4 (ALTER TYPE … SET): implicit_functions
  // keeps only types made after initdb.
  [
    'TM2: ALTER TYPE int4 SET (TYPMOD_IN = a trusted body that calls the login’s)',
    () => `PERFORM '1'::int4(5);`,
    (role) => ({
      setUp: `CREATE FUNCTION public.zz_tm(cstring[]) RETURNS int LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN 1; END $f$;
        ALTER TYPE int4 SET (TYPMOD_IN = public.zz_tm)`,
      cleanUp: 'ALTER TYPE int4 SET (TYPMOD_IN = NONE)',
    }),
  ],
  // rev8 R8-5: "$user" in a path a body gives a SECURITY INVOKER function, called from a SECURITY
  // DEFINER function of another superuser: at run time "$user" is the caller's owner, not the
  // altered function's owner, the current or the session's user (rev7's U2 expansion).
  [
    'U3: ALTER FUNCTION … SET search_path = "$user" of an invoker function a SECURITY DEFINER function of another superuser calls',
    () => `ALTER FUNCTION public.zz_inner() SET search_path = "$user";`,
    (role) => ({
      setUp: `CREATE ROLE zz_admin SUPERUSER NOLOGIN;
        CREATE SCHEMA zz_admin AUTHORIZATION ${role};
        CREATE FUNCTION zz_admin.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
        ALTER FUNCTION zz_admin.helper() OWNER TO ${role};
        CREATE FUNCTION public.zz_inner() RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ BEGIN PERFORM helper(); END $f$;
        CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $f$ BEGIN PERFORM public.zz_inner(); RETURN OLD; END $f$;
        ALTER FUNCTION public.zz_later() OWNER TO zz_admin;
        CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`,
      cleanUp: `REASSIGN OWNED BY zz_admin TO postgres; DROP OWNED BY zz_admin; DROP ROLE zz_admin`,
    }),
  ],
  // Review rev8 R8-6, R8-7: a disabled trigger of the login's, enabled by dynamic SQL whose words
  // are split: read like an enabled one.
  [
    'X3b: EXECUTE of an UPDATE of pg_trig||ger enables a disabled trigger of the login’s, then an INSERT',
    () =>
      `EXECUTE 'UPDATE pg_catalog.pg_trig' || 'ger SET tgenabled = ''O'' WHERE tgname = ''zz_evil'''; ALTER TABLE public.zz_t ADD COLUMN y int; INSERT INTO public.zz_t VALUES (1);`,
    (role) => ({
      setUp: disabledEvilTrigger(role),
      // The login's schema given to a superuser (its functions stay the login's): with EXECUTE
      // every schema is on the path, and a lesser login's schema would be refused for that alone.
      final: `ALTER SCHEMA ${role} OWNER TO postgres`,
    }),
  ],
  [
    'D1c: EXECUTE of ALTER TABLE … ENA||BLE TRIGGER of a disabled trigger of the login’s, then an INSERT',
    () =>
      `EXECUTE 'ALTER TABLE public.zz_t ENA' || 'BLE TRIGGER zz_evil'; INSERT INTO public.zz_t VALUES (1);`,
    (role) => ({
      setUp: disabledEvilTrigger(role),
      // The login's schema given to a superuser (its functions stay the login's): with EXECUTE
      // every schema is on the path, and a lesser login's schema would be refused for that alone.
      final: `ALTER SCHEMA ${role} OWNER TO postgres`,
    }),
  ],
  // Y1: domain_in runs a domain's CHECKs for a type given by oid (pg_input_is_valid's kind).
  [
    'Y1: domain_in of the login’s domain, its name built as text',
    (role) =>
      `PERFORM pg_catalog.domain_in('1'::cstring, pg_catalog.to_regtype('${role}.zz_' || 'd'), -1);`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.chk(int) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN true; END $f$;
        ALTER FUNCTION ${role}.chk(int) OWNER TO ${role};
        CREATE DOMAIN ${role}.zz_d AS int CHECK (${role}.chk(VALUE));
        ALTER DOMAIN ${role}.zz_d OWNER TO ${role}`,
    }),
  ],
  // Review rev9 R9-1, R9-2: a trusted SECURITY DEFINER function of another superuser runs with
  // "$user" as its owner's name, a schema the login owns: through the session's path (it has
  // none of its own), or through a callee's own SET search_path = "$user".
  [
    'R9-1: a SECURITY DEFINER function of another superuser, with no path of its own, names helper() bare',
    () => `PERFORM public.zz_sd();`,
    (role) => ({
      setUp: `CREATE ROLE ${role}_su SUPERUSER NOLOGIN;
        CREATE SCHEMA ${role}_su AUTHORIZATION ${role};
        CREATE FUNCTION ${role}_su.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
        ALTER FUNCTION ${role}_su.helper() OWNER TO ${role};
        CREATE FUNCTION public.zz_sd() RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $f$ BEGIN PERFORM helper(); END $f$;
        ALTER FUNCTION public.zz_sd() OWNER TO ${role}_su`,
      cleanUp: `REASSIGN OWNED BY ${role}_su TO postgres; DROP OWNED BY ${role}_su; DROP ROLE ${role}_su`,
    }),
  ],
  [
    'R9-2: a callee’s own SET search_path = "$user", called by a SECURITY DEFINER function of another superuser',
    () => `PERFORM public.zz_sd();`,
    (role) => ({
      setUp: `CREATE ROLE ${role}_su SUPERUSER NOLOGIN;
        CREATE SCHEMA ${role}_su AUTHORIZATION ${role};
        CREATE FUNCTION ${role}_su.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
        ALTER FUNCTION ${role}_su.helper() OWNER TO ${role};
        CREATE FUNCTION public.zz_f() RETURNS void LANGUAGE plpgsql SET search_path = "$user", pg_catalog AS $f$ BEGIN PERFORM helper(); END $f$;
        CREATE FUNCTION public.zz_sd() RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $f$ BEGIN PERFORM public.zz_f(); END $f$;
        ALTER FUNCTION public.zz_sd() OWNER TO ${role}_su`,
      cleanUp: `REASSIGN OWNED BY ${role}_su TO postgres; DROP OWNED BY ${role}_su; DROP ROLE ${role}_su`,
    }),
  ],
  // Review rev9 R9-3 (PostgreSQL 16 on): a member of the session's user WITH INHERIT TRUE, SET
  // FALSE owns what that user owns, but cannot become it: a superuser's power is not inherited.
  [
    'R9-3: a login granted the session’s user WITH INHERIT TRUE, SET FALSE replaces the trusted trigger function',
    () => `NULL;`,
    (role) => ({
      fromVersion: 160000,
      final: `GRANT postgres TO ${role} WITH INHERIT TRUE, SET FALSE;
        SET ROLE ${role};
        CREATE OR REPLACE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN OLD; END $f$;
        RESET ROLE`,
      cleanUp: `REVOKE postgres FROM ${role}`,
    }),
  ],
  // Review rev11 (of a684736).
  [
    'R11 DO1: DO LANGUAGE given as a string constant, code by string continuation (EXECUTE split)',
    (role) =>
      `DO LANGUAGE 'plpgsql' 'BEGIN EX'\n'ECUTE ''SELECT ${role.slice(0, 3)}'' || ''${role.slice(3)}.helper()''; END';`,
    () => ({}),
  ],
  [
    'R11 DO5: DO LANGUAGE as a string constant with E-string code (escape for the E of EXECUTE)',
    (role) =>
      `DO LANGUAGE 'plpgsql' E'BEGIN \\x45XECUTE ''SELECT ${role.slice(0, 3)}'' || ''${role.slice(3)}.helper()''; END';`,
    () => ({}),
  ],
  [
    'R11 MV1: ALTER MATERIALIZED VIEW … SET ACCESS METHOD rewrites, rebuilding an expression index that calls the login’s helper',
    () => `ALTER MATERIALIZED VIEW zz_s.zz_mv SET ACCESS METHOD zz_heap2;`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s; CREATE ACCESS METHOD zz_heap2 TYPE TABLE HANDLER heap_tableam_handler;
        CREATE FUNCTION zz_s.zz_idx(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN $1; END $f$;
        CREATE MATERIALIZED VIEW zz_s.zz_mv AS SELECT 1 AS x;
        CREATE INDEX zz_mv_idx ON zz_s.zz_mv (zz_s.zz_idx(x))`,
      cleanUp: 'DROP SCHEMA IF EXISTS zz_s CASCADE; DROP ACCESS METHOD IF EXISTS zz_heap2',
    }),
  ],
  [
    'R11 PT1: CREATE TABLE … PARTITION OF scans the default partition, evaluating a partition key expression that calls the login’s helper',
    () => `CREATE TABLE zz_s.zz_p1 PARTITION OF zz_s.zz_p FOR VALUES IN (5);`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s;
        CREATE FUNCTION zz_s.zz_k(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN $1; END $f$;
        CREATE TABLE zz_s.zz_p (x int) PARTITION BY LIST (zz_s.zz_k(x));
        CREATE TABLE zz_s.zz_pd PARTITION OF zz_s.zz_p DEFAULT; INSERT INTO zz_s.zz_p VALUES (1)`,
      cleanUp: 'DROP SCHEMA IF EXISTS zz_s CASCADE',
    }),
  ],
  [
    'R11 CP1: COPY … TO PROGRAM runs psql, a session of its own, that calls the login’s helper (name in shell pieces)',
    (role) => {
      const u = new URL(process.env.TEST_DATABASE_URL!)
      const c = `psql -h ${u.hostname} -p ${u.port} -U ${u.username}`
      return `COPY (SELECT 1) TO PROGRAM 'x=${role.slice(0, 3)}; ${c} -Atc "select datname from pg_database" postgres | while read d; do ${c} -d "$d" -c "select \${x}${role.slice(3)}.helper()"; done; true';`
    },
    () => ({}),
  ],
  [
    'R11 LS2: as LS1, the login having made zz_f(int) there (a better match) after the superuser’s',
    () => `PERFORM zz_${'s'.repeat(66)}.zz_f(1);`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_${'s'.repeat(60)}; GRANT USAGE, CREATE ON SCHEMA zz_${'s'.repeat(60)} TO ${role};
        CREATE FUNCTION zz_${'s'.repeat(60)}.zz_f(bigint) RETURNS void LANGUAGE plpgsql AS $f$ BEGIN NULL; END $f$`,
      final: `SET ROLE ${role}; CREATE FUNCTION zz_${'s'.repeat(60)}.zz_f(int) RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); END $f$; RESET ROLE`,
      cleanUp: `DROP SCHEMA IF EXISTS zz_${'s'.repeat(60)} CASCADE`,
    }),
  ],
  [
    'R11 LS3: the login’s table with its trigger, in a superuser’s 63-byte schema, written by a longer schema name PostgreSQL truncates',
    () => `INSERT INTO zz_${'s'.repeat(66)}.zz_t VALUES (1);`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_${'s'.repeat(60)}; GRANT USAGE ON SCHEMA zz_${'s'.repeat(60)} TO ${role}; ${evilTrigger(role)};
        CREATE TABLE zz_${'s'.repeat(60)}.zz_t (x int);
        CREATE TRIGGER zz_evil AFTER INSERT ON zz_${'s'.repeat(60)}.zz_t FOR EACH ROW EXECUTE FUNCTION ${role}.evil();
        ALTER TABLE zz_${'s'.repeat(60)}.zz_t OWNER TO ${role}`,
      cleanUp: `DROP SCHEMA IF EXISTS zz_${'s'.repeat(60)} CASCADE`,
    }),
  ],
  // Review rev10 (of 760af61).
  // R10-7: what a body names qualified in a schema the login owns, or may create in, it may drop
  // and make again (or overload, or make a table of) after the check: refused at the check.
  [
    'S1: a superuser’s function in the login’s schema, named qualified',
    (role) => `PERFORM ${role}.zz_tf();`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.zz_tf() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN NULL; END $f$`,
      expects: `schema ${role}, whose objects public.zz_audit() names, is owned by ${role}`,
    }),
  ],
  [
    'S1b: a superuser’s schema off the path where the login may create, its function named qualified',
    () => `PERFORM zz_s2.f(1);`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s2; GRANT USAGE, CREATE ON SCHEMA zz_s2 TO ${role};
        CREATE FUNCTION zz_s2.f(bigint) RETURNS void LANGUAGE plpgsql AS $f$ BEGIN NULL; END $f$`,
      expects: `schema zz_s2, whose objects public.zz_audit() names, ${role} may create objects in it`,
      cleanUp: 'DROP SCHEMA IF EXISTS zz_s2 CASCADE',
    }),
  ],
  [
    'S5: a table the body writes, missing at the check, in a schema where the login may create',
    () =>
      `BEGIN INSERT INTO zz_s2.zz_log VALUES (1); EXCEPTION WHEN undefined_table THEN NULL; END;`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s2; GRANT USAGE, CREATE ON SCHEMA zz_s2 TO ${role}`,
      cleanUp: 'DROP SCHEMA IF EXISTS zz_s2 CASCADE',
    }),
  ],
  // R10-1: path set by a trusted function's argument default (set_config), then a bare name.
  [
    'SP1: a trusted function whose argument default is set_config(search_path, login schema), then a bare helper()',
    () => `PERFORM public.zz_def(); PERFORM helper();`,
    (role) => ({
      setUp: `CREATE FUNCTION public.zz_def(p text DEFAULT pg_catalog.set_config('search_path', '${role}, public', true)) RETURNS text LANGUAGE sql AS $f$ SELECT p $f$`,
    }),
  ],
  [
    'SP5: a trusted procedure whose argument default sets the path, CALLed, then a bare helper()',
    () => `CALL public.zz_proc(); PERFORM helper();`,
    (role) => ({
      setUp: `CREATE PROCEDURE public.zz_proc(p text DEFAULT pg_catalog.set_config('search_path', '${role}, public', false)) LANGUAGE plpgsql AS $f$ BEGIN NULL; END $f$`,
    }),
  ],
  // R10-2: an aggregate whose transition function is pg_catalog.set_config.
  [
    'SP2: a trusted aggregate whose SFUNC is set_config, then a bare helper()',
    (role) => `PERFORM public.zz_agg('${role}, public', true); PERFORM helper();`,
    () => ({
      setUp: `CREATE AGGREGATE public.zz_agg(text, boolean) (SFUNC = pg_catalog.set_config, STYPE = text, INITCOND = 'search_path')`,
    }),
  ],
  // R10-3: a text runner behind an aggregate or an operator.
  [
    'TR1: a trusted aggregate whose SFUNC is ts_rewrite (a text runner), given SQL naming the login’s function in pieces',
    (role) =>
      `PERFORM public.zz_rw(v.q) FROM (VALUES ('SELECT ${role}.zz_h' || 'q()::tsquery, ''b''::tsquery')) AS v(q);`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.zz_hq() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN 'a'; END $f$;
        ALTER FUNCTION ${role}.zz_hq() OWNER TO ${role};
        CREATE AGGREGATE public.zz_rw(text) (SFUNC = pg_catalog.ts_rewrite, STYPE = tsquery, INITCOND = 'a')`,
    }),
  ],
  [
    'TR2: a trusted operator whose function is ts_rewrite (a text runner), given SQL naming the login’s function in pieces',
    (role) =>
      `PERFORM 'a'::tsquery OPERATOR(public.###) ('SELECT ${role}.zz_h' || 'q()::tsquery, ''b''::tsquery');`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.zz_hq() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN 'a'; END $f$;
        ALTER FUNCTION ${role}.zz_hq() OWNER TO ${role};
        CREATE OPERATOR public.### (LEFTARG = tsquery, RIGHTARG = text, FUNCTION = pg_catalog.ts_rewrite)`,
    }),
  ],
  // R10-4: DDL/maintenance of a table outside the scope runs its CHECK / index expressions as a superuser.
  [
    'V1s: ALTER TABLE … VALIDATE CONSTRAINT on a table in a superuser’s schema off the path, CHECK calls the login’s helper',
    () => `ALTER TABLE zz_s.zz_t VALIDATE CONSTRAINT zz_c;`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s; CREATE TABLE zz_s.zz_t (x int); INSERT INTO zz_s.zz_t VALUES (1);
        CREATE FUNCTION zz_s.zz_chk(int) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN true; END $f$;
        ALTER TABLE zz_s.zz_t ADD CONSTRAINT zz_c CHECK (zz_s.zz_chk(x)) NOT VALID`,
      cleanUp: 'DROP SCHEMA IF EXISTS zz_s CASCADE',
    }),
  ],
  [
    'I1s: ANALYZE of a table in a superuser’s schema off the path, expression index calls the login’s helper',
    () => `ANALYZE zz_s.zz_t;`,
    offPathIndexedTable,
  ],
  [
    'I2s: REINDEX TABLE of a table in a superuser’s schema off the path',
    () => `REINDEX TABLE zz_s.zz_t;`,
    offPathIndexedTable,
  ],
  // R10-5: names holding a double quote or a backslash are never candidates.
  [
    'Q1: the login’s function whose name holds a double quote, called qualified',
    (role) => `PERFORM ${role}."zz""q"();`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}."zz""q"() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); END $f$;
        ALTER FUNCTION ${role}."zz""q"() OWNER TO ${role}`,
    }),
  ],
  [
    'Q2: the login’s function whose name holds a backslash, called qualified',
    (role) => `PERFORM ${role}."zz\\q"();`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}."zz\\q"() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); END $f$;
        ALTER FUNCTION ${role}."zz\\q"() OWNER TO ${role}`,
    }),
  ],
  [
    'Q3: the login’s table (name with a double quote) with its trigger, written qualified',
    (role) => `INSERT INTO ${role}."t""x" VALUES (1);`,
    (role) => ({
      setUp: `${evilTrigger(role)}; CREATE TABLE ${role}."t""x" (x int);
        CREATE TRIGGER zz_evil AFTER INSERT ON ${role}."t""x" FOR EACH ROW EXECUTE FUNCTION ${role}.evil();
        ALTER TABLE ${role}."t""x" OWNER TO ${role}`,
    }),
  ],
  [
    'Q4: a schema of the login’s whose name holds a double quote; its function called qualified',
    () => `PERFORM "zz""s".hx();`,
    (role) => ({
      setUp: `CREATE SCHEMA "zz""s" AUTHORIZATION ${role};
        CREATE FUNCTION "zz""s".hx() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); END $f$;
        ALTER FUNCTION "zz""s".hx() OWNER TO ${role}`,
      cleanUp: 'DROP SCHEMA IF EXISTS "zz""s" CASCADE',
    }),
  ],
  [
    'Q6: the login’s domain (name with a double quote) whose CHECK calls helper, cast to',
    (role) => `PERFORM 1::${role}."d""x";`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.chk(int) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN true; END $f$;
        ALTER FUNCTION ${role}.chk(int) OWNER TO ${role};
        CREATE DOMAIN ${role}."d""x" AS int CHECK (${role}.chk(VALUE)); ALTER DOMAIN ${role}."d""x" OWNER TO ${role}`,
    }),
  ],
  // R10-6: identifiers longer than 63 bytes, which PostgreSQL truncates.
  [
    'Q5: the login’s function with a 63-character name, called by a longer name that PostgreSQL truncates',
    (role) => `PERFORM ${role}.zz_${'a'.repeat(66)}();`,
    (role) => ({
      setUp: `CREATE FUNCTION ${role}.zz_${'a'.repeat(60)}() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); END $f$;
        ALTER FUNCTION ${role}.zz_${'a'.repeat(60)}() OWNER TO ${role}`,
    }),
  ],
  [
    'Q5b: the login’s table (63-character name) with its trigger, written by a longer name PostgreSQL truncates',
    (role) => `INSERT INTO ${role}.zz_${'t'.repeat(66)} VALUES (1);`,
    (role) => ({
      setUp: `${evilTrigger(role)}; CREATE TABLE ${role}.zz_${'t'.repeat(60)} (x int);
        CREATE TRIGGER zz_evil AFTER INSERT ON ${role}.zz_${'t'.repeat(60)} FOR EACH ROW EXECUTE FUNCTION ${role}.evil();
        ALTER TABLE ${role}.zz_${'t'.repeat(60)} OWNER TO ${role}`,
    }),
  ],
  // Review rev12 (of 5853d94): planning any query on a table computes the calls of constant
  // arguments in its indexes' expressions and predicates, and, for a query with a WHERE on an
  // inheritance parent, its children's CHECKs: a lesser login's immutable function there runs
  // with the session's power, on a read of a trusted body (PF1 to PF4, PF8) or of the down's own
  // watch, which reads every table (PF5, PF6).
  [
    'PF1: a trusted body reads a table (off the path) whose partial index predicate calls the login’s immutable function',
    () => `PERFORM 1 FROM zz_s.zz_r WHERE x = 1;`,
    (role) => offPathRead(role, `CREATE INDEX zz_r_idx ON zz_s.zz_r (x) WHERE x > ${role}.imm()`),
  ],
  [
    'PF2: a trusted body reads a table (off the path) whose expression index calls the login’s immutable function with a constant',
    () => `PERFORM 1 FROM zz_s.zz_r WHERE x = 1;`,
    (role) => offPathRead(role, `CREATE INDEX zz_r_idx ON zz_s.zz_r ((x + ${role}.imm()))`),
  ],
  [
    'PF3: a trusted body reads a parent table (off the path) whose inheritance child’s CHECK calls the login’s immutable function',
    () => `PERFORM 1 FROM zz_s.zz_r WHERE x = 1;`,
    (role) =>
      offPathRead(role, `CREATE TABLE zz_s.zz_c (CHECK (x > ${role}.imm())) INHERITS (zz_s.zz_r)`),
  ],
  [
    'PF4: a trusted body reads the login’s table, to which the login adds an inheritance child whose CHECK calls its immutable function',
    () => `PERFORM 1 FROM zz_s.zz_r WHERE x = 1;`,
    (role) => ({
      setUp: `CREATE SCHEMA zz_s; GRANT USAGE ON SCHEMA zz_s TO ${role}; CREATE TABLE zz_s.zz_r (x int); ALTER TABLE zz_s.zz_r OWNER TO ${role}`,
      final: asLogin(
        role,
        `${immutableOf(role)} CREATE TABLE ${role}.zz_c (CHECK (x > ${role}.imm())) INHERITS (zz_s.zz_r)`,
      ),
      cleanUp: 'DROP SCHEMA IF EXISTS zz_s CASCADE',
    }),
  ],
  [
    'PF5: the login’s own table in its own schema, partial index predicate calling its immutable function (no trusted body)',
    () => `NULL;`,
    (role) => ({
      final: asLogin(
        role,
        `${immutableOf(role)} CREATE TABLE ${role}.zz_r (x int); CREATE INDEX zz_r_idx ON ${role}.zz_r (x) WHERE x > ${role}.imm()`,
      ),
    }),
  ],
  [
    'PF6: the login’s own table in its own schema, expression index calling its immutable function on a constant (no trusted body)',
    () => `NULL;`,
    (role) => ({
      final: asLogin(
        role,
        `${immutableOf(role)} CREATE TABLE ${role}.zz_r (x int); CREATE INDEX zz_r_idx ON ${role}.zz_r ((x + ${role}.imm()))`,
      ),
    }),
  ],
  [
    'PF8: a trusted body reads auth.users; its owner (a login, as supabase_auth_admin) adds an inheritance child whose CHECK calls its immutable function',
    () => `PERFORM 1 FROM auth.users WHERE id::text = 'zz';`,
    (role) => ({
      setUp: `ALTER TABLE auth.users OWNER TO ${role}; GRANT ALL ON SCHEMA auth TO ${role}`,
      final: asLogin(
        role,
        `${immutableOf(role, 'auth')} CREATE TABLE auth.zz_users_shadow (CHECK (auth.imm() > 0)) INHERITS (auth.users)`,
      ),
      cleanUp: 'DROP TABLE IF EXISTS auth.zz_users_shadow; DROP FUNCTION IF EXISTS auth.imm()',
    }),
  ],
  // Review rev13 (of f8f189d): CREATE TABLE … (LIKE t INCLUDING …) and INHERITS (t) copy t's
  // defaults and CHECKs into the new table, which the body then inserts into: t's code runs
  // with the writer's power, though the body writes no table the check knew of (L1 to L4).
  [
    'L1: CREATE TEMP TABLE … (LIKE t INCLUDING DEFAULTS), then an insert: t’s default calls the login’s function',
    () =>
      `CREATE TEMP TABLE zz_tmp (LIKE zz_s.zz_r INCLUDING DEFAULTS) ON COMMIT DROP; INSERT INTO zz_tmp DEFAULT VALUES;`,
    (role) => offPathRead(role, `ALTER TABLE zz_s.zz_r ALTER COLUMN x SET DEFAULT ${role}.imm()`),
  ],
  [
    'L2: CREATE TEMP TABLE … () INHERITS (t), then an insert: t’s default calls the login’s function',
    () =>
      `CREATE TEMP TABLE zz_tmp () INHERITS (zz_s.zz_r); INSERT INTO zz_tmp DEFAULT VALUES; DROP TABLE zz_tmp;`,
    (role) => offPathRead(role, `ALTER TABLE zz_s.zz_r ALTER COLUMN x SET DEFAULT ${role}.imm()`),
  ],
  [
    'L3: CREATE TEMP TABLE … (LIKE t INCLUDING CONSTRAINTS), then an insert: t’s CHECK calls the login’s function',
    () =>
      `CREATE TEMP TABLE zz_tmp (LIKE zz_s.zz_r INCLUDING CONSTRAINTS) ON COMMIT DROP; INSERT INTO zz_tmp VALUES (1);`,
    (role) =>
      offPathRead(role, `ALTER TABLE zz_s.zz_r ADD CONSTRAINT zz_c CHECK (x <= ${role}.imm())`),
  ],
  [
    'L4: CREATE TEMP TABLE … (LIKE public.t INCLUDING ALL), a table of public’s, then an insert',
    () =>
      `CREATE TEMP TABLE zz_tmp (LIKE public.zz_src INCLUDING ALL) ON COMMIT DROP; INSERT INTO zz_tmp DEFAULT VALUES;`,
    (role) => ({
      setUp: `${immutableOf(role)} ALTER FUNCTION ${role}.imm() OWNER TO ${role};
        CREATE TABLE public.zz_src (x int DEFAULT ${role}.imm())`,
      cleanUp: 'DROP TABLE IF EXISTS public.zz_src',
    }),
  ], // The review of those fixes: a list of parents (or of truncated tables) read up to a `)` or a
  // `;`, which a quoted name or a comment before the parent holds (INH1, INH2, TRL1).
  [
    'INH1: INHERITS (a quoted parent holding a parenthesis, then t): t’s default calls the login’s function',
    () =>
      `CREATE TEMP TABLE zz_tmp () INHERITS (zz_s."a)b", zz_s.zz_r); INSERT INTO zz_tmp DEFAULT VALUES; DROP TABLE zz_tmp;`,
    (role) =>
      offPathRead(
        role,
        `CREATE TABLE zz_s."a)b" (y int); ALTER TABLE zz_s.zz_r ALTER COLUMN x SET DEFAULT ${role}.imm()`,
      ),
  ],
  [
    'INH2: INHERITS (a parent, a comment holding a parenthesis, then t): t’s default calls the login’s function',
    () =>
      `CREATE TEMP TABLE zz_tmp () INHERITS (zz_s.zz_q /* ) */, zz_s.zz_r); INSERT INTO zz_tmp DEFAULT VALUES; DROP TABLE zz_tmp;`,
    (role) =>
      offPathRead(
        role,
        `CREATE TABLE zz_s.zz_q (y int); ALTER TABLE zz_s.zz_r ALTER COLUMN x SET DEFAULT ${role}.imm()`,
      ),
  ],
  [
    'TRL1: TRUNCATE (a quoted table holding a semicolon, then t): t’s trigger is the login’s',
    () => `TRUNCATE zz_s."a;b", zz_s.zz_r;`,
    (role) => ({
      ...offPathRead(
        role,
        `CREATE TABLE zz_s."a;b" (y int); ${evilTrigger(role)};
        CREATE TRIGGER zz_evil AFTER TRUNCATE ON zz_s.zz_r FOR EACH STATEMENT EXECUTE FUNCTION ${role}.evil()`,
      ),
      expects: 'would let roles that cannot act as',
    }),
  ],
]

describe.skipIf(skipReason)('rev5: a trusted body that runs a lesser login’s code unread', () => {
  it.each(cases)('%s: 005’s down refuses', async (_case, body, options) => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        const o = options(role)
        const { rows } = await sql<{
          version: number
        }>`SELECT current_setting('server_version_num')::int AS version`.execute(db)
        if (o.fromVersion && rows[0]!.version < o.fromVersion) return
        try {
          await plant(db, role, body(role), o)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          const outcome = {
            superuser: await isSuperuser(db, role),
            refused: error instanceof Error,
            applied005: (await applied(db)).includes(MIGRATION_005),
          }
          if (process.env.REV5_DEBUG)
            console.log(
              'OUTCOME',
              _case,
              JSON.stringify(outcome),
              String(error).slice(0, Number(process.env.REV5_DEBUG) || 400),
            )
          if (o.expects) expect(String(error)).toContain(o.expects)
          expect(outcome).toEqual({ superuser: false, refused: true, applied005: true })
        } finally {
          if (o.cleanUp) await sql.raw(o.cleanUp).execute(db)
        }
      })
    })
  })
})

// Review rev12: the check refuses PF5/PF6 before the down's watch runs; the watch itself must not
// plan a read of such a table either, for one made between the check and the watch.
describe.skipIf(skipReason)('rev12: the down’s watch of every table', () => {
  it('does not read a table whose index calls a function not built in', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
        await db.transaction().execute(async (trx) => {
          await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
          await sql
            .raw(
              `CREATE FUNCTION ${role}.vol() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
               CREATE FUNCTION ${role}.imm() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.vol(); RETURN 1; END $f$;
               CREATE TABLE ${role}.t (x int);
               CREATE INDEX t_idx ON ${role}.t (x) WHERE x > ${role}.imm()`,
            )
            .execute(trx)
        })
        await db.transaction().execute((trx) => sql.raw(DOWN_WATCH_SQL).execute(trx))
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })
})

// Review rev13 (of f8f189d): code that the module's own statements run, with no trusted body
// between: a default of a bookkeeping table its inserts leave out (B1; 006's and baseline's
// tables alike), and a trusted function named as one of pg_catalog's, in public, that the
// migrations' unqualified calls resolve to where its argument types fit better (S1, S2).
const own: [string, string, (role: string) => string][] = [
  [
    'B1: the default of x402_migrations.migration_checksum.recorded_at calls the login’s function',
    MIGRATION_002,
    (role) =>
      `${asLogin(role, `CREATE FUNCTION ${role}.stamp() RETURNS timestamptz LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN pg_catalog.now(); END $f$`)};
       ALTER TABLE x402_migrations.migration_checksum ALTER COLUMN recorded_at SET DEFAULT ${role}.stamp()`,
  ],
  [
    'S1: a superuser’s public.col_description(regclass, integer), which 005’s up calls unqualified, calls the login’s function',
    MIGRATION_002,
    (role) =>
      `CREATE FUNCTION public.col_description(regclass, integer) RETURNS text LANGUAGE plpgsql
         AS $f$ BEGIN PERFORM ${role}.helper(); RETURN pg_catalog.col_description($1, $2); END $f$`,
  ],
  [
    'S2: a superuser’s public.obj_description(oid, text), which 006 to 008 call unqualified, calls the login’s function',
    MIGRATION_005,
    (role) =>
      `CREATE FUNCTION public.obj_description(oid, text) RETURNS text LANGUAGE plpgsql
         AS $f$ BEGIN PERFORM ${role}.helper(); RETURN pg_catalog.obj_description($1, $2::name); END $f$`,
  ],
]

/** The login's schema and its helper(), which escalates from the start; then `setUp`. */
async function plantEscalating(db: Kysely<any>, role: string, setUp: string): Promise<void> {
  await sql
    .raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}; GRANT USAGE ON SCHEMA ${role} TO PUBLIC`)
    .execute(db)
  await sql
    .raw(
      asLogin(
        role,
        `CREATE FUNCTION ${role}.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$`,
      ),
    )
    .execute(db)
  await sql.raw(setUp).execute(db)
}

describe.skipIf(skipReason)('rev13: code the module’s own statements run', () => {
  it.each(own)('%s: migrate:latest refuses', async (_case, from, setUp) => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await migrateTo(db, from, { env: {} })
        await plantEscalating(db, role, setUp(role))
        const error = await migrateToLatest(db, { env: {} }).catch((e: unknown) => e)
        if (process.env.REV5_DEBUG) console.log('OUTCOME', _case, String(error).slice(0, 400))
        expect({ superuser: await isSuperuser(db, role), refused: error instanceof Error }).toEqual(
          {
            superuser: false,
            refused: true,
          },
        )
      })
    })
  })
})

// The review of rev13: the read commands (migrate:check, migrate:baseline --plan) run the catalog
// reads with public on the path, and no walk of the code they run without a name: a trusted
// function named as one of pg_catalog's there (R1), or a trusted cast between built-in types (R2),
// ran the login's code with the session's power.
const reads: [string, (role: string) => string][] = [
  [
    'R1: a superuser’s public.jsonb_build_object(text, boolean), which the snapshot calls unqualified, calls the login’s function',
    (role) => `CREATE UNLOGGED TABLE public.zz_cache (x int);
      CREATE FUNCTION public.jsonb_build_object(text, boolean) RETURNS jsonb LANGUAGE plpgsql
        AS $f$ BEGIN PERFORM ${role}.helper(); RETURN pg_catalog.jsonb_build_object($1, $2); END $f$`,
  ],
  [
    'R2: a superuser’s cast (regnamespace AS text), which the snapshot runs, calls the login’s function',
    (role) => `CREATE FUNCTION public.zz_c(regnamespace) RETURNS text LANGUAGE plpgsql
        AS $f$ BEGIN PERFORM ${role}.helper(); RETURN pg_catalog.regnamespaceout($1)::text; END $f$;
      CREATE CAST (regnamespace AS text) WITH FUNCTION public.zz_c(regnamespace)`,
  ],
]

describe.skipIf(skipReason)('rev13: code the module’s catalog reads run', () => {
  it.each(reads)('%s: migrate:check refuses', async (_case, setUp) => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await migrateToLatest(db, { env: {} })
        await plantEscalating(db, role, setUp(role))
        try {
          const error = await checkDrift(db).then(
            () => undefined,
            (e: unknown) => e,
          )
          if (process.env.REV5_DEBUG) console.log('OUTCOME', _case, String(error).slice(0, 400))
          expect({
            superuser: await isSuperuser(db, role),
            refused: error instanceof Error,
          }).toEqual({
            superuser: false,
            refused: true,
          })
        } finally {
          await sql.raw('DROP CAST IF EXISTS (regnamespace AS text)').execute(db)
        }
      })
    })
  })
})

// Over-refusal: bodies shaped as Supabase's event trigger functions (own words, own schemas),
// behind enabled event triggers on CREATE EXTENSION (read by the check, not run by the down),
// and the same statements run by the planted trigger itself. They must not be refused.
const NET = `CREATE SCHEMA zz_net;
  CREATE FUNCTION zz_net.http_get(url text, params jsonb DEFAULT '{}'::jsonb, headers jsonb DEFAULT '{}'::jsonb,
                                  timeout_milliseconds integer DEFAULT 2000) RETURNS bigint LANGUAGE sql AS $f$ SELECT 1::bigint $f$`
const NET_BODY = `
    GRANT USAGE ON SCHEMA zz_net TO postgres;
    ALTER function zz_net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) SECURITY DEFINER;
    ALTER function zz_net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) SET search_path = zz_net;
    REVOKE ALL ON FUNCTION zz_net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) FROM PUBLIC;`
const GRAPHQL = `CREATE SCHEMA zz_graphql; CREATE SCHEMA zz_graphql_public;
  CREATE FUNCTION zz_graphql.resolve(query text, variables jsonb, "operationName" text, extensions jsonb) RETURNS jsonb
    LANGUAGE sql AS $f$ SELECT '{}'::jsonb $f$`
const GRAPHQL_BODY = `
    create or replace function zz_graphql_public.graphql(
        "operationName" text default null,
        query text default null,
        variables jsonb default null,
        extensions jsonb default null
    )
        returns jsonb
        language sql
    as $$
        select zz_graphql.resolve(
            query := query,
            variables := coalesce(variables, '{}'),
            "operationName" := "operationName",
            extensions := extensions
        );
    $$;
    grant usage on schema zz_graphql_public to postgres;`
const PLACEHOLDER_BODY = `
    create or replace function zz_graphql_public.graphql(
        "operationName" text default null,
        query text default null,
        variables jsonb default null,
        extensions jsonb default null
    )
        returns jsonb
        language plpgsql
    as $$
        DECLARE
            server_version float;
        BEGIN
            server_version = (SELECT (SPLIT_PART((select version()), ' ', 2))::float);
            IF server_version >= 14 THEN
                RETURN jsonb_build_object('errors', jsonb_build_array(jsonb_build_object('message', 'the extension is not on')));
            ELSE
                RETURN jsonb_build_object('errors', jsonb_build_array(jsonb_build_object('message', 'needs PostgreSQL 14')));
            END IF;
        END;
    $$;`

const eventTrigger = (name: string, body: string) => `
  CREATE FUNCTION public.${name}() RETURNS event_trigger LANGUAGE plpgsql AS $f$
  BEGIN
    IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() AS ev JOIN pg_extension AS ext ON ev.objid = ext.oid
                WHERE ext.extname = 'zz_none') THEN ${body}
    END IF;
  END $f$;
  CREATE EVENT TRIGGER ${name} ON ddl_command_end WHEN TAG IN ('CREATE EXTENSION') EXECUTE FUNCTION public.${name}()`

/** The login made the owner of auth.users, as supabase_auth_admin is (schema auth a superuser's). */
const AUTH = (role: string) =>
  `ALTER TABLE auth.users OWNER TO ${role}; GRANT ALL ON SCHEMA auth TO ${role}`
type Plain = [string, string | ((role: string) => string), string, ((role: string) => string)?]
const plain: Plain[] = [
  [
    'net access, as an event trigger function',
    `${NET}; ${eventTrigger('zz_net_access', NET_BODY)}`,
    'NULL;',
    () => 'DROP EVENT TRIGGER zz_net_access',
  ],
  [
    'graphql access, as an event trigger function',
    `${GRAPHQL}; ${eventTrigger('zz_graphql_access', GRAPHQL_BODY)}`,
    'NULL;',
    () => 'DROP EVENT TRIGGER zz_graphql_access',
  ],
  [
    'graphql placeholder, as an event trigger function',
    `${GRAPHQL}; ${eventTrigger('zz_graphql_placeholder', PLACEHOLDER_BODY)}`,
    'NULL;',
    () => 'DROP EVENT TRIGGER zz_graphql_placeholder',
  ],
  ['net access, run by the trigger', NET, NET_BODY],
  ['graphql access, run by the trigger', GRAPHQL, GRAPHQL_BODY],
  ['graphql placeholder, run by the trigger', GRAPHQL, PLACEHOLDER_BODY],
  // Review rev8 OR-1, OR-2: auth's functions and types, the owner of auth.users's (walked as
  // trusted, as auth.uid() is): an argument or a result of auth's type is not refused.
  [
    'an auth function whose argument is a domain of auth, both the auth.users owner’s',
    (role) => `${AUTH(role)};
      CREATE DOMAIN auth.zz_email AS text CHECK (VALUE ~ '@'); ALTER DOMAIN auth.zz_email OWNER TO ${role};
      CREATE FUNCTION auth.zz_email_ok(e auth.zz_email) RETURNS bool LANGUAGE sql STABLE AS 'SELECT true';
      ALTER FUNCTION auth.zz_email_ok(auth.zz_email) OWNER TO ${role}`,
    `PERFORM auth.zz_email_ok('a@b');`,
  ],
  [
    'an auth function returning an enum of auth (aal_level-like), both the auth.users owner’s',
    (role) => `${AUTH(role)};
      CREATE TYPE auth.zz_aal AS ENUM ('aal1', 'aal2'); ALTER TYPE auth.zz_aal OWNER TO ${role};
      CREATE FUNCTION auth.zz_aal_of() RETURNS auth.zz_aal LANGUAGE sql STABLE AS $q$SELECT 'aal1'::auth.zz_aal$q$;
      ALTER FUNCTION auth.zz_aal_of() OWNER TO ${role}`,
    `PERFORM auth.zz_aal_of();`,
  ],
  // Review rev9 R9-1's rule, not more: "$user" as a trusted SECURITY DEFINER function's owner
  // names no schema, and no login may create one; the login's own schema is not its name.
  [
    'a SECURITY DEFINER function of another superuser, with no path of its own, names a trusted helper bare',
    (role) => `CREATE ROLE ${role}_su SUPERUSER NOLOGIN;
      CREATE FUNCTION public.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN END $f$;
      CREATE FUNCTION public.zz_sd() RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $f$ BEGIN PERFORM helper(); END $f$;
      ALTER FUNCTION public.zz_sd() OWNER TO ${role}_su`,
    `PERFORM public.zz_sd();`,
    (role) =>
      `REASSIGN OWNED BY ${role}_su TO postgres; DROP OWNED BY ${role}_su; DROP ROLE ${role}_su`,
  ],
  // Review rev11's over-refusals: variables named as maintenance statements, a "then do $%" in a
  // string, a trusted function whose name the check cannot match.
  [
    'R11 OR15: an unreached superuser function with a 63-byte name in an unrelated schema',
    `CREATE SCHEMA zz_x; CREATE FUNCTION zz_x.zz_${'b'.repeat(60)}() RETURNS void LANGUAGE sql AS $q$ SELECT $q$`,
    `NULL;`,
    () => `DROP SCHEMA IF EXISTS zz_x CASCADE`,
  ],
  [
    'R11 OR16: an unreached superuser function whose quoted name holds a double quote, in an unrelated schema',
    `CREATE SCHEMA zz_x; CREATE FUNCTION zz_x."say ""hi""" () RETURNS void LANGUAGE sql AS $q$ SELECT $q$`,
    `NULL;`,
    () => `DROP SCHEMA IF EXISTS zz_x CASCADE`,
  ],
  [
    'R11 OR13: a notice text that says “then do $…”',
    '',
    `RAISE NOTICE 'refund pending, then do $% refund', 5;`,
  ],
  [
    'R11 OR14: a CASE that assigns a variable named cluster',
    '',
    `DECLARE cluster text; BEGIN CASE WHEN OLD.id IS NULL THEN cluster := 'a'; ELSE cluster := 'b'; END CASE; END;`,
  ],
  [
    'R11 OR1: a variable named cluster assigned after THEN',
    '',
    `DECLARE cluster text; BEGIN IF OLD.id IS NOT NULL THEN cluster := 'eu'; ELSE cluster := 'us'; END IF; END;`,
  ],
  [
    'R11 OR2: a variable named vacuum assigned after ELSE',
    '',
    `DECLARE vacuum boolean; BEGIN IF OLD.id IS NULL THEN NULL; ELSE vacuum := true; END IF; END;`,
  ],
  [
    'R11 OR8: a variable named reindex assigned after LOOP',
    '',
    `DECLARE reindex int := 0; BEGIN FOR i IN 1..2 LOOP reindex := reindex + i; END LOOP; END;`,
  ],
  [
    'R11 OR7: a trusted function with a 63-byte name (as an extension may make), called',
    `CREATE FUNCTION public.zz_${'a'.repeat(60)}() RETURNS void LANGUAGE sql AS $q$ SELECT $q$`,
    `PERFORM public.zz_${'a'.repeat(60)}();`,
    () => `DROP FUNCTION IF EXISTS public.zz_${'a'.repeat(60)}()`,
  ],
  // Review rev10's over-refusals: DO NOTHING and a comment's "then do" are no DO statement.
  [
    'P6: MERGE … WHEN NOT MATCHED THEN DO NOTHING',
    `CREATE TABLE public.zz_counts (id int PRIMARY KEY, n int)`,
    `MERGE INTO public.zz_counts c USING (SELECT 1 AS id) s ON c.id = s.id WHEN MATCHED THEN UPDATE SET n = c.n - 1 WHEN NOT MATCHED THEN DO NOTHING;`,
  ],
  [
    'P7: a comment that says “then do”',
    '',
    `-- when the resource had no model, then do nothing more
     NULL;`,
  ],
]

// Review rev8 R8-1: a NOLOGIN role is trusted (no one can log in to change its code), but one made
// NOLOGIN while a session of it stays open can still change its code.
describe.skipIf(skipReason)('rev8: a login made NOLOGIN with a session still open', () => {
  it('005’s down refuses to run its code', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await withLoginRole(db, async (role) => {
        await plant(db, role, `PERFORM ${role}.helper();`, {})
        const url = new URL(serverUrl(location))
        url.username = role
        const session = new pg.Client({ connectionString: url.toString() })
        await session.connect()
        try {
          await sql.raw(`ALTER ROLE ${role} NOLOGIN`).execute(db)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect({
            superuser: await isSuperuser(db, role),
            refused: error instanceof Error,
            applied005: (await applied(db)).includes(MIGRATION_005),
          }).toEqual({ superuser: false, refused: true, applied005: true })
          expect(String(error)).toContain(`${role}.helper()`)
        } finally {
          await session.end()
        }
      })
    })
  })
})

// Review rev8 R8-2: CREATE granted to PUBLIC on a schema a reached body's path names was asked
// only where a lesser login existed at the check; a login made while the down runs may use it.
describe.skipIf(skipReason)(
  'rev8: CREATE granted to PUBLIC on a schema a trusted body’s path names',
  () => {
    it('005’s down refuses, a lesser login or none', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        await createInstantResource(db)
        await sql
          .raw(
            `CREATE SCHEMA zz_open; GRANT USAGE, CREATE ON SCHEMA zz_open TO PUBLIC;
           CREATE FUNCTION public.zz_helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN END $f$;
           CREATE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql SET search_path = zz_open, public
             AS $f$ BEGIN PERFORM zz_helper(); RETURN OLD; END $f$;
           CREATE TRIGGER zz_audit AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_audit()`,
          )
          .execute(db)
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (e: unknown) => e,
        )
        expect(String(error)).toContain(
          'any login (one made after this check too) may create objects in schema zz_open (granted to PUBLIC), on the search path public.zz_audit() runs with (REVOKE CREATE ON SCHEMA zz_open FROM PUBLIC',
        )
        expect(await applied(db)).toContain(MIGRATION_005)
      })
    })
  },
)

describe.skipIf(skipReason)('rev5: Supabase-shaped DDL of code is not refused', () => {
  it.each(plain)('%s: 005’s down runs', async (_case, setUp, body, cleanUp) => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        try {
          await plant(db, role, body, {
            setUp: typeof setUp === 'function' ? setUp(role) : setUp,
          })
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          if (process.env.REV5_DEBUG)
            console.log(
              'OUTCOME',
              _case,
              String(error).slice(0, Number(process.env.REV5_DEBUG) || 600),
            )
          const outcome = {
            superuser: await isSuperuser(db, role),
            refused: error instanceof Error,
            applied005: (await applied(db)).includes(MIGRATION_005),
          }
          expect(outcome).toEqual({ superuser: false, refused: false, applied005: false })
        } finally {
          if (cleanUp) await sql.raw(cleanUp(role)).execute(db)
        }
      })
    })
  })
})
