import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { planRepair } from '../src/tooling.js'
import { withLesserRole } from './support/lesser-role.js'
import { ALL_MIGRATIONS } from './support/migration-names.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Review revh H1: the repair plan counts the stored rows that a foreign key the database lacks
// would reject, matching them with the table it references. That table is not held to the owner
// check (on Supabase it is auth.users, Supabase Auth's own), so its owner could put a view of its
// own in its place, or give its key a type whose implicit cast is a function of its own: either
// ran with the operator's power in the plan's read. The referenced relation must be a table, and
// each key column of the same type on both sides, or the plan refuses before it reads.

const LATEST = ALL_MIGRATIONS.at(-1)!

// The plan reads in a READ ONLY transaction, which stops an ALTER ROLE but not a read of the keys
// sent out (the review set application_name): the planted code says that it ran, and as whom.
const PLANTED = `RAISE EXCEPTION 'the planted code ran as %', current_user;`

/** The database lacks its foreign keys to auth.users, whose owner is `role`. */
async function lackingTheKey(db: Kysely<any>, role: string): Promise<void> {
  // Every key to auth.users goes (the module's and others'): its key column may then change type.
  const { rows } = await sql<{ name: string; table: string }>`
    SELECT quote_ident(conname) AS name, conrelid::regclass::text AS table FROM pg_constraint
    WHERE confrelid = 'auth.users'::regclass`.execute(db)
  for (const { name, table } of rows)
    await sql.raw(`ALTER TABLE ${table} DROP CONSTRAINT ${name}`).execute(db)
  // A user, and a key whose user is gone: rows for the count to match.
  await sql`INSERT INTO auth.users (id) VALUES (gen_random_uuid())`.execute(db)
  await sql`INSERT INTO public.x402_user_openrouter_integrations (user_id, encrypted_api_key)
            VALUES (gen_random_uuid(), 'aa:bb')`.execute(db)
  await sql.raw(`ALTER SCHEMA auth OWNER TO ${role}`).execute(db)
  await sql.raw(`ALTER TABLE auth.users OWNER TO ${role}`).execute(db)
  await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
}

/** What `role` sets up as itself (the owner of auth.users). */
async function asRole(db: Kysely<any>, role: string, statements: string[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
    for (const statement of statements) await sql.raw(statement).execute(trx)
  })
}

describe.each(testTargets)(
  'the repair plan and the table a missing foreign key references, on %s',
  (target) => {
    const database = useTestDatabase(target, 'latest')

    it('refuses a view in its place, and runs none of its code', async () => {
      const { db } = database
      await withLesserRole(
        db,
        'x402_test_auth_owner',
        async (role) => {
          await lackingTheKey(db, role)
          await asRole(db, role, [
            `CREATE FUNCTION ${role}.g() RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${PLANTED} END $f$`,
            'ALTER TABLE auth.users RENAME TO users_real',
            `CREATE VIEW auth.users AS SELECT u.* FROM auth.users_real u WHERE ${role}.g()`,
          ])
          const error = await planRepair(db, LATEST, { decisions: [] }).catch(
            (caught: unknown) => caught,
          )
          expect(String(error)).not.toMatch(/planted code ran/)
          expect(String(error)).toMatch(/auth\.users is not a table/)
        },
        { login: true },
      )
    })
  },
)

describe.each(testTargets)(
  'the repair plan and the table a missing foreign key references, on %s',
  (target) => {
    const database = useTestDatabase(target, 'latest')

    it('refuses a key of another type than the column it matches, and runs no cast', async () => {
      const { db } = database
      await withLesserRole(
        db,
        'x402_test_auth_owner',
        async (role) => {
          await lackingTheKey(db, role)
          await asRole(db, role, [
            `CREATE TYPE ${role}.id AS (v uuid)`,
            `CREATE FUNCTION ${role}.to_uuid(${role}.id) RETURNS uuid LANGUAGE plpgsql AS $f$ BEGIN ${PLANTED} END $f$`,
            `CREATE CAST (${role}.id AS uuid) WITH FUNCTION ${role}.to_uuid(${role}.id) AS IMPLICIT`,
            'ALTER TABLE auth.users ALTER COLUMN id DROP DEFAULT',
            `ALTER TABLE auth.users ALTER COLUMN id TYPE ${role}.id USING ROW(id)::${role}.id`,
          ])
          const error = await planRepair(db, LATEST, { decisions: [] }).catch(
            (caught: unknown) => caught,
          )
          expect(String(error)).not.toMatch(/planted code ran/)
          expect(String(error)).toMatch(/not of the same type/)
        },
        { login: true },
      )
    })
  },
)
