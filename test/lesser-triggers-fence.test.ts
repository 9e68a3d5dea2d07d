import { setTimeout as sleep } from 'node:timers/promises'

import { type Kysely, sql } from 'kysely'
import type pg from 'pg'
import { describe, expect, it } from 'vitest'

import { lesserTriggersSql } from '../src/connection/lesser-triggers.js'
import {
  baselineMigrations,
  createDb,
  IntegrationCipher,
  migrateToLatest,
  rotateOpenRouterKeys,
} from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { ALL_MIGRATIONS } from './support/migration-names.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { withSessions } from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// The fence of the lesser-trigger check (lesser-triggers.ts): with `lock`, what the check found
// must stay so until the transaction that writes ends. Review revo found three ways around it:
// a view (or a foreign table) in scope was not locked, so a login with the TRIGGER privilege on
// it added an INSTEAD OF trigger after the check (O6); a function created after the check in a
// schema on a reached body's search path answered that body's call (O7); at REPEATABLE READ the
// check read the catalog with a snapshot older than its lock (O5). Each planted function tries to
// make its owner a superuser: it must never run.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a lesser role needs a server'

const CHECK = lesserTriggersSql({ lock: true })

/** A lesser role that can log in: one nobody could log in as changes nothing by itself. */
const withLoginRole = (db: Kysely<any>, use: (role: string) => Promise<void>) =>
  withLesserRole(db, 'x402_test_fence', use, { login: true })

/**
 * public.x402_test_jobs (one row), in the check's scope, with a trusted AFTER UPDATE trigger
 * whose function runs `body` with the function's `settings` (its own SET search_path, say).
 */
async function jobsWithTrigger(db: Kysely<any>, body: string, settings = ''): Promise<void> {
  await sql.raw(`CREATE TABLE public.x402_test_jobs (id integer)`).execute(db)
  await sql.raw(`INSERT INTO public.x402_test_jobs VALUES (1)`).execute(db)
  await sql
    .raw(
      `CREATE FUNCTION public.x402_test_audit() RETURNS trigger LANGUAGE plpgsql ${settings}
         AS $f$ BEGIN ${body} RETURN NULL; END $f$`,
    )
    .execute(db)
  await sql
    .raw(
      `CREATE TRIGGER x402_test_audit AFTER UPDATE ON public.x402_test_jobs
         FOR EACH STATEMENT EXECUTE FUNCTION public.x402_test_audit()`,
    )
    .execute(db)
}

/** Schema x402_test_fence with x402_test_fence.remote, a foreign table (of a wrapper with no handler). */
async function foreignTable(db: Kysely<any>): Promise<void> {
  await sql.raw(`CREATE SCHEMA x402_test_fence`).execute(db)
  await sql.raw(`CREATE FOREIGN DATA WRAPPER x402_test_fdw`).execute(db)
  await sql.raw(`CREATE SERVER x402_test_server FOREIGN DATA WRAPPER x402_test_fdw`).execute(db)
  await sql
    .raw(`CREATE FOREIGN TABLE x402_test_fence.remote (x integer) SERVER x402_test_server`)
    .execute(db)
}

/** A session of `role`'s own (SET ROLE, as Supabase's authenticator does), with a temporary trigger function. */
async function attackerOf(
  session: (name: string) => Promise<pg.Client>,
  role: string,
): Promise<pg.Client> {
  const attacker = await session('x402-test-attacker')
  await attacker.query(`SET ROLE ${role}`)
  await attacker.query(
    `CREATE FUNCTION pg_temp.pwn() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN NEW; END $f$`,
  )
  return attacker
}

const outcome = (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    () => 'done',
    (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`,
  )

describe.skipIf(skipReason)('the fence of the lesser-trigger check (review revo)', () => {
  // O6: LOCK took only relkind r and p. A view that a reached body writes fires its INSTEAD OF
  // triggers with the writer's power; CREATE TRIGGER on a view takes SHARE ROW EXCLUSIVE on it,
  // and LOCK TABLE on a view (which recurses to its relations) takes ROW EXCLUSIVE: they conflict.
  it('a view a reached body writes is locked: an INSTEAD OF trigger cannot be added after the check', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await sql.raw(`CREATE SCHEMA x402_test_fence`).execute(db)
      await sql.raw(`CREATE TABLE x402_test_fence.log (x integer)`).execute(db)
      await sql
        .raw(`CREATE VIEW x402_test_fence.log_view AS SELECT x FROM x402_test_fence.log`)
        .execute(db)
      await jobsWithTrigger(
        db,
        'INSERT INTO x402_test_fence.log_view VALUES (1);',
        'SET search_path = pg_catalog',
      )
      await withLoginRole(db, async (role) => {
        await sql.raw(`GRANT USAGE ON SCHEMA x402_test_fence TO ${role}`).execute(db)
        await sql.raw(`GRANT TRIGGER ON x402_test_fence.log_view TO ${role}`).execute(db)
        await withSessions(serverUrl(location), async (session) => {
          const writer = await session('x402-test-writer')
          const attacker = await attackerOf(session, role)
          await writer.query('BEGIN')
          await writer.query(CHECK)
          await attacker.query(`SET lock_timeout = '300ms'`)
          const attached = await outcome(
            attacker.query(
              `CREATE TRIGGER zz_pwn INSTEAD OF INSERT ON x402_test_fence.log_view
                 FOR EACH ROW EXECUTE FUNCTION pg_temp.pwn()`,
            ),
          )
          await writer.query('UPDATE public.x402_test_jobs SET id = id')
          await writer.query('COMMIT')
          expect(await isSuperuser(db, role)).toBe(false)
          expect(attached).toMatch(/^55P03: /)
        })
      })
    })
  })

  // A view whose owner may not lock its relations cannot be locked by the session either (LOCK
  // checks the view's relations as its owner): where a lesser login may add a trigger to it, refused.
  it('a view that cannot be locked, on which a lesser login has TRIGGER: refused, naming both', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await sql.raw(`CREATE SCHEMA x402_test_fence`).execute(db)
      await sql.raw(`CREATE TABLE x402_test_fence.log (x integer)`).execute(db)
      await jobsWithTrigger(
        db,
        'INSERT INTO x402_test_fence.log_view VALUES (1);',
        'SET search_path = pg_catalog',
      )
      await withLesserRole(db, 'x402_test_viewer', async (viewer) => {
        await sql.raw(`GRANT USAGE, CREATE ON SCHEMA x402_test_fence TO ${viewer}`).execute(db)
        await sql.raw(`GRANT SELECT ON x402_test_fence.log TO ${viewer}`).execute(db)
        await sql
          .raw(`CREATE VIEW x402_test_fence.log_view AS SELECT x FROM x402_test_fence.log`)
          .execute(db)
        await sql.raw(`ALTER VIEW x402_test_fence.log_view OWNER TO ${viewer}`).execute(db)
        await sql.raw(`REVOKE CREATE ON SCHEMA x402_test_fence FROM ${viewer}`).execute(db)
        await withLoginRole(db, async (role) => {
          const check = () =>
            outcome(db.transaction().execute((trx) => sql.raw(CHECK).execute(trx)))
          expect(await check()).toBe('done')
          await sql.raw(`GRANT TRIGGER ON x402_test_fence.log_view TO ${role}`).execute(db)
          expect(await check()).toContain(
            `view x402_test_fence.log_view cannot be locked against a new trigger, and ${role} may add one (REVOKE TRIGGER ON x402_test_fence.log_view FROM ${role})`,
          )
        })
      })
    })
  })

  // A foreign table cannot be locked (PostgreSQL 15 and 17: "This operation is not supported for
  // foreign tables"), and takes triggers: where a lesser login may add one, refused.
  it('a foreign table a reached body writes, on which a lesser login has TRIGGER: refused', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await foreignTable(db)
      await jobsWithTrigger(
        db,
        'INSERT INTO x402_test_fence.remote VALUES (1);',
        'SET search_path = pg_catalog',
      )
      await withLoginRole(db, async (role) => {
        const check = () => outcome(db.transaction().execute((trx) => sql.raw(CHECK).execute(trx)))
        expect(await check()).toBe('done')
        await sql.raw(`GRANT TRIGGER ON x402_test_fence.remote TO ${role}`).execute(db)
        expect(await check()).toContain(
          `foreign table x402_test_fence.remote cannot be locked against a new trigger, and ${role} may add one (REVOKE TRIGGER ON x402_test_fence.remote FROM ${role})`,
        )
        // Without the fence (no lock asked), nothing is refused for it: nothing is held anyway.
        expect(await outcome(sql.raw(lesserTriggersSql({ lock: false })).execute(db))).toBe('done')
      })
    })
  })

  // review rev-final F6: what a rule writes, or what a view a body writes reads, joined the scope
  // only where it was a table or a view: a foreign table so reached was never read, its triggers
  // were never checked, and the refusal above never saw it.
  it('a foreign table reached through a rule or a view, on which a lesser login has TRIGGER: refused', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await foreignTable(db)
      await sql.raw(`CREATE TABLE x402_test_fence.log (x integer)`).execute(db)
      await sql
        .raw(
          `CREATE RULE copy AS ON INSERT TO x402_test_fence.log DO ALSO INSERT INTO x402_test_fence.remote VALUES (NEW.x)`,
        )
        .execute(db)
      await sql
        .raw(`CREATE VIEW x402_test_fence.remote_view AS SELECT x FROM x402_test_fence.remote`)
        .execute(db)
      await jobsWithTrigger(
        db,
        'INSERT INTO x402_test_fence.log VALUES (1);',
        'SET search_path = pg_catalog',
      )
      await withLoginRole(db, async (role) => {
        const check = () => outcome(db.transaction().execute((trx) => sql.raw(CHECK).execute(trx)))
        expect(await check()).toBe('done')
        await sql.raw(`GRANT TRIGGER ON x402_test_fence.remote TO ${role}`).execute(db)
        const refused = `foreign table x402_test_fence.remote cannot be locked against a new trigger, and ${role} may add one`
        expect(await check()).toContain(refused)
        // Through an auto-updatable view over it.
        await sql.raw(`DROP RULE copy ON x402_test_fence.log`).execute(db)
        expect(await check()).toBe('done')
        await sql
          .raw(
            `CREATE OR REPLACE FUNCTION public.x402_test_audit() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog
               AS $f$ BEGIN INSERT INTO x402_test_fence.remote_view VALUES (1); RETURN NULL; END $f$`,
          )
          .execute(db)
        expect(await check()).toContain(refused)
      })
    })
  })

  // O7: no lock stops a CREATE in a schema. A trusted body that calls helper() unqualified, with
  // a schema on its path where a lesser login may create, ran that login's helper() made after
  // the check.
  it('a schema on a reached body’s path where a lesser login may create: refused before the write', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await withLoginRole(db, async (role) => {
        await sql.raw(`CREATE SCHEMA x402_test_fence_own AUTHORIZATION ${role}`).execute(db)
        await sql
          .raw(`CREATE FUNCTION public.x402_test_helper() RETURNS void LANGUAGE sql AS 'SELECT'`)
          .execute(db)
        await jobsWithTrigger(
          db,
          'PERFORM x402_test_helper();',
          'SET search_path = x402_test_fence_own, public',
        )
        await withSessions(serverUrl(location), async (session) => {
          const writer = await session('x402-test-writer')
          const attacker = await session('x402-test-attacker')
          await attacker.query(`SET ROLE ${role}`)
          await writer.query('BEGIN')
          const checked = await outcome(writer.query(CHECK))
          if (checked === 'done') {
            // What the unfixed check let through: the login's function, made now, answers the call.
            await attacker.query(
              `CREATE FUNCTION x402_test_fence_own.x402_test_helper() RETURNS void LANGUAGE plpgsql
                 AS $f$ BEGIN ${escalate(role)} END $f$`,
            )
            await writer.query('UPDATE public.x402_test_jobs SET id = id')
            await writer.query('COMMIT')
          } else await writer.query('ROLLBACK')
          expect(await isSuperuser(db, role)).toBe(false)
          expect(checked).toContain(
            `schema x402_test_fence_own, on the search path public.x402_test_audit() runs with, is owned by ${role}`,
          )
        })
        // The right to create, granted: named with the REVOKE that ends it.
        await sql.raw(`CREATE SCHEMA x402_test_fence_shared`).execute(db)
        await sql.raw(`GRANT USAGE, CREATE ON SCHEMA x402_test_fence_shared TO ${role}`).execute(db)
        await sql
          .raw(
            `ALTER FUNCTION public.x402_test_audit() SET search_path = x402_test_fence_shared, public`,
          )
          .execute(db)
        const check = (path?: string) =>
          outcome(
            db.transaction().execute(async (trx) => {
              if (path) await sql.raw(`SET LOCAL search_path = ${path}`).execute(trx)
              await sql.raw(CHECK).execute(trx)
            }),
          )
        expect(await check()).toContain(
          `${role} may create objects in schema x402_test_fence_shared, on the search path public.x402_test_audit() runs with ` +
            `(REVOKE CREATE ON SCHEMA x402_test_fence_shared FROM ${role}, or give the function a SET search_path without it)`,
        )
        // A body without a path of its own runs with the session's.
        await sql.raw(`ALTER FUNCTION public.x402_test_audit() RESET search_path`).execute(db)
        expect(await check()).toBe('done')
        expect(await check('x402_test_fence_shared, public')).toContain(
          `${role} may create objects in schema x402_test_fence_shared, on the search path public.x402_test_audit() runs with`,
        )
        await sql.raw(`REVOKE CREATE ON SCHEMA x402_test_fence_shared FROM ${role}`).execute(db)
        expect(await check('x402_test_fence_shared, public')).toBe('done')
      })
    })
  })

  // review rev-final F1: a schema named on a reached body's own path that does not exist yet was
  // skipped; a lesser login that may create schemas in the database made it, and its helper(),
  // after the check.
  it('a missing schema on a reached body’s path, where a lesser login may create schemas: refused', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      // Where x402_backup is missing, a login's database CREATE is refused anyway (ordinal 4).
      await sql.raw(`CREATE SCHEMA x402_backup`).execute(db)
      await sql
        .raw(`CREATE FUNCTION public.x402_test_helper() RETURNS void LANGUAGE sql AS 'SELECT'`)
        .execute(db)
      await jobsWithTrigger(
        db,
        'PERFORM x402_test_helper();',
        'SET search_path = x402_test_ghost, public',
      )
      const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(db)
      const database = rows[0]!.name
      await withLoginRole(db, async (role) => {
        const check = () => outcome(db.transaction().execute((trx) => sql.raw(CHECK).execute(trx)))
        expect(await check()).toBe('done')
        await sql.raw(`GRANT CREATE ON DATABASE "${database}" TO ${role}`).execute(db)
        try {
          await withSessions(serverUrl(location), async (session) => {
            const writer = await session('x402-test-writer')
            const attacker = await session('x402-test-attacker')
            await attacker.query(`SET ROLE ${role}`)
            await writer.query('BEGIN')
            const checked = await outcome(writer.query(CHECK))
            if (checked === 'done') {
              // What the unfixed check let through: the schema and the login's function, made now.
              await attacker.query(`CREATE SCHEMA x402_test_ghost`)
              await attacker.query(
                `CREATE FUNCTION x402_test_ghost.x402_test_helper() RETURNS void LANGUAGE plpgsql
                   AS $f$ BEGIN ${escalate(role)} END $f$`,
              )
              await writer.query('UPDATE public.x402_test_jobs SET id = id')
              await writer.query('COMMIT')
            } else await writer.query('ROLLBACK')
            expect(await isSuperuser(db, role)).toBe(false)
            expect(checked).toContain(
              `${role} may create schema x402_test_ghost, on the search path public.x402_test_audit() runs with, ` +
                `which does not exist (REVOKE CREATE ON DATABASE ${database} FROM ${role}, or give the function a SET search_path without it)`,
            )
          })
        } finally {
          await sql.raw(`DROP SCHEMA IF EXISTS x402_test_ghost CASCADE`).execute(db)
          await sql.raw(`REVOKE CREATE ON DATABASE "${database}" FROM ${role}`).execute(db)
        }
      })
    })
  })

  // Review rev-last N1, N2: a path of the empty name alone (SET search_path = '', the advisor's
  // fix and the module's own triggers'), or with pg_temp (the session's own), names no schema a
  // login could make.
  it.each(["''", 'public', 'public, pg_temp'])(
    'a reached body with SET search_path = %s, where a lesser login may create schemas: not refused',
    async (path) => {
      await withTestDatabase('postgres', async ({ db }) => {
        await sql.raw(`CREATE SCHEMA x402_backup`).execute(db)
        await jobsWithTrigger(db, 'NULL;', `SET search_path = ${path}`)
        const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(db)
        await withLoginRole(db, async (role) => {
          await sql.raw(`GRANT CREATE ON DATABASE "${rows[0]!.name}" TO ${role}`).execute(db)
          try {
            const check = () =>
              outcome(db.transaction().execute((trx) => sql.raw(CHECK).execute(trx)))
            expect(await check()).toBe('done')
          } finally {
            await sql.raw(`REVOKE CREATE ON DATABASE "${rows[0]!.name}" FROM ${role}`).execute(db)
          }
        })
      })
    },
  )

  // Review rev-last N3: a body that sets its path as it runs may set it to a schema not made yet,
  // which a lesser login that may create schemas makes after the check.
  it('a reached body that sets its search_path as it runs, where a lesser login may create schemas: refused', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await sql.raw(`CREATE SCHEMA x402_backup`).execute(db)
      await sql
        .raw(`CREATE FUNCTION public.x402_test_helper() RETURNS void LANGUAGE sql AS 'SELECT'`)
        .execute(db)
      await jobsWithTrigger(
        db,
        'SET LOCAL search_path = x402_test_ghost, public; PERFORM x402_test_helper();',
      )
      const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(db)
      await withLoginRole(db, async (role) => {
        const check = () => outcome(db.transaction().execute((trx) => sql.raw(CHECK).execute(trx)))
        expect(await check()).toBe('done')
        await sql.raw(`GRANT CREATE ON DATABASE "${rows[0]!.name}" TO ${role}`).execute(db)
        try {
          expect(await check()).toContain(
            `${role} may create schemas in the database, and public.x402_test_audit() may change the search path as it runs`,
          )
        } finally {
          await sql.raw(`REVOKE CREATE ON DATABASE "${rows[0]!.name}" FROM ${role}`).execute(db)
        }
      })
    })
  })

  // O5: at REPEATABLE READ the check read the catalog with the transaction's snapshot, taken
  // before its LOCK waited: a trigger committed meanwhile was not seen, and the write fired it.
  it('at REPEATABLE READ or SERIALIZABLE the fenced check refuses: a trigger committed while it waited is not missed', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await jobsWithTrigger(db, '', 'SET search_path = pg_catalog')
      await withLoginRole(db, async (role) => {
        await sql.raw(`GRANT TRIGGER ON public.x402_test_jobs TO ${role}`).execute(db)
        await withSessions(serverUrl(location), async (session) => {
          const writer = await session('x402-test-writer')
          const attacker = await attackerOf(session, role)
          await writer.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
          await writer.query('SELECT 1')
          await attacker.query('BEGIN')
          await attacker.query(
            `CREATE TRIGGER zz_pwn AFTER UPDATE ON public.x402_test_jobs
               FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.pwn()`,
          )
          const checking = outcome(writer.query(CHECK))
          // Unfixed, the check waits for the attacker's lock in its LOCK; fixed, it refuses at once.
          await Promise.race([checking, sleep(1000)])
          await attacker.query('COMMIT')
          const checked = await checking
          if (checked === 'done') {
            await writer.query('UPDATE public.x402_test_jobs SET id = id')
            await writer.query('COMMIT')
          } else await writer.query('ROLLBACK')
          expect(await isSuperuser(db, role)).toBe(false)
          expect(checked).toContain('runs at REPEATABLE READ')
          expect(checked).toContain('READ COMMITTED')
        })
        for (const level of ['REPEATABLE READ', 'SERIALIZABLE']) {
          const refused = await outcome(
            db
              .transaction()
              .setIsolationLevel(level.toLowerCase() as 'serializable')
              .execute((trx) => sql.raw(CHECK).execute(trx)),
          )
          expect(refused).toContain(`runs at ${level}`)
          // Unfenced (measureAccess), the snapshot is the statement's concern alone: not refused.
          expect(
            await outcome(
              db
                .transaction()
                .setIsolationLevel(level.toLowerCase() as 'serializable')
                .execute((trx) => sql.raw(lesserTriggersSql({ lock: false })).execute(trx)),
            ),
          ).toBe('done')
        }
      })
    })
  })

  // What the module runs with the fenced check runs at READ COMMITTED whatever the database's
  // default, so that the check's refusal at other levels refuses none of it.
  it('a database whose default isolation is REPEATABLE READ: a run, keys:rotate and migrate:baseline are not refused', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(db)
      await sql
        .raw(
          `ALTER DATABASE "${rows[0]!.name}" SET default_transaction_isolation = 'repeatable read'`,
        )
        .execute(db)
      const repeatable = createDb({ connectionString: serverUrl(location) })
      try {
        const level = await sql<{
          level: string
        }>`SELECT current_setting('transaction_isolation') AS level`
        expect((await level.execute(repeatable)).rows[0]!.level).toBe('repeatable read')
        await migrateToLatest(repeatable, { env: {} })
        const cipher = new IntegrationCipher({
          current: 'the-secret-0123456789abcdef-0123456789',
          previous: [],
        })
        const userId = await createUser(repeatable)
        await repeatable
          .insertInto('x402_user_openrouter_integrations')
          .values({ user_id: userId, encrypted_api_key: cipher.encrypt('sk-or-v1-test', userId) })
          .execute()
        expect(
          await rotateOpenRouterKeys(repeatable, { cipher, keyId: cipher.currentKeyId }),
        ).toMatchObject({ scanned: 1, complete: true })
        await baselineMigrations(repeatable, ALL_MIGRATIONS.at(-1)!)
      } finally {
        await repeatable.destroy()
      }
    })
  })
})
