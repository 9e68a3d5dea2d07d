import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { withDialectHooks } from '../src/connection/dialect-hooks.js'
import { lesserTriggersSql } from '../src/connection/lesser-triggers.js'
import { LESSER_LOGIN_ROLES_SQL } from '../src/connection/shadowed-catalog.js'
import { withoutKyselyMigrationLock } from '../src/connection/without-kysely-migration-lock.js'
import { acceptedDifferenceTableStatements } from '../src/adoption/accepted-differences.js'
import { ensureSupabaseStandIn } from '../src/supabase/stand-in.js'
import {
  baselineMigrations,
  exportBaselineSql,
  IntegrationCipher,
  InterruptedRollbackError,
  MIGRATION_LOCK_KEY,
  migrateDown,
  migrateTo,
  migrateToLatest,
  migrateUp,
  rotateOpenRouterKeys,
} from '../src/tooling.js'
import { createInstantResource, createModel, createUser } from './support/fixtures.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { ALL_MIGRATIONS, MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// A migration's write runs the triggers of the table it writes, and a DDL statement the event
// triggers, as the role that runs the migration. A lesser role that owns such code, or a table
// (its owner can attach a trigger), or that may attach a trigger through the TRIGGER privilege
// (Supabase grants it on every table in public to the API roles, which its authenticator login
// may become), would get that role's power. Each planted function tries to make its owner a
// superuser: the run must refuse, and never call it.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a lesser role needs a server'

/** A lesser role that can log in: one nobody could log in as changes nothing by itself. */
const withLoginRole = (db: Kysely<any>, use: (role: string) => Promise<void>) =>
  withLesserRole(db, 'x402_test_lesser', use, { login: true })

const MIGRATION_006 = '006_rename_to_production_names'

async function applied(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{
    name: string
  }>`SELECT name FROM x402_migrations.kysely_migration ORDER BY name`.execute(db)
  return rows.map((row) => row.name)
}

/** How many lesser logins the server has now, by the lesser-code check's own rule. */
async function lesserLogins(db: Kysely<any>): Promise<number> {
  const { rows } = await sql<{ logins: number }>`
    SELECT count(DISTINCT login)::int AS logins
      FROM (SELECT 'pg_database_owner'::regrole::oid AS db_owner_role) AS owner,
           LATERAL (${sql.raw(LESSER_LOGIN_ROLES_SQL)}) AS lesser`.execute(db)
  return rows[0]!.logins
}

/** The backups that rollbacks of 005 made, qualified and quoted as the runner names them. */
async function backupsOf005(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT format('x402_backup.%I', table_name) AS name FROM information_schema.tables
    WHERE table_schema = 'x402_backup' AND table_name LIKE '005_%' ORDER BY 1
  `.execute(db)
  return rows.map((row) => row.name)
}

/** A function of `role`'s, in a schema of its own: a trigger's, or an event trigger's. */
async function lesserFunction(
  db: Kysely<any>,
  role: string,
  returns: 'trigger' | 'event_trigger',
): Promise<string> {
  const name = `${role}.pwn_${returns}`
  await sql`CREATE SCHEMA ${sql.id(role)} AUTHORIZATION ${sql.id(role)}`.execute(db)
  await sql
    .raw(
      `CREATE FUNCTION ${name}() RETURNS ${returns} LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} ${returns === 'trigger' ? 'RETURN NULL;' : ''} END $f$`,
    )
    .execute(db)
  await sql.raw(`ALTER FUNCTION ${name}() OWNER TO ${role}`).execute(db)
  return name
}

/**
 * A session of `role`'s own (SET ROLE, as the authenticator does), which attaches a trigger to
 * `table` calling a function in its pg_temp schema, and stays open: the temporary function lives
 * as long as it does.
 */
async function temporaryTrigger(url: string, role: string, table: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`SET ROLE ${role}`)
  await client.query(
    `CREATE FUNCTION pg_temp.pwn() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN NULL; END $f$`,
  )
  await client.query(
    `CREATE TRIGGER zz_pwn AFTER UPDATE OR DELETE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.pwn()`,
  )
  return client
}

describe.skipIf(skipReason)('code of a lesser role on the tables a run writes', () => {
  it('a trigger calling a lesser role’s function: the run refuses, naming it, and never calls it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        const fn = await lesserFunction(db, role, 'trigger')
        await sql
          .raw(
            `CREATE TRIGGER zz_pwn AFTER UPDATE ON ai_models FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
          )
          .execute(db)
        const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
        expect(String((error as Error).message)).toContain(
          `trigger zz_pwn on public.ai_models calls ${fn}(), owned by ${role}`,
        )
        expect(await isSuperuser(db, role)).toBe(false)
        expect(await applied(db)).not.toContain(MIGRATION_006)
      })
    })
  })

  it('a table owned by a lesser role: the run refuses, naming it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        await sql.raw(`ALTER TABLE ai_models OWNER TO ${role}`).execute(db)
        const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
        expect(String((error as Error).message)).toContain(
          `table public.ai_models is owned by ${role}`,
        )
        expect(await applied(db)).not.toContain(MIGRATION_006)
      })
    })
  })

  it('an event trigger calling a lesser role’s function: the run refuses, naming it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        const fn = await lesserFunction(db, role, 'event_trigger')
        await sql
          .raw(`CREATE EVENT TRIGGER zz_pwn ON ddl_command_end EXECUTE FUNCTION ${fn}()`)
          .execute(db)
        try {
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect(String((error as Error).message)).toContain(
            `event trigger zz_pwn calls ${fn}(), owned by ${role}`,
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).not.toContain(MIGRATION_006)
        } finally {
          await sql`DROP EVENT TRIGGER zz_pwn`.execute(db)
        }
      })
    })
  })

  it('a temporary trigger of a role with the TRIGGER privilege: 006’s up and 005’s down refuse, and never call it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        await sql
          .raw(
            `GRANT TRIGGER ON ai_models, x402_resources, user_openrouter_integrations TO ${role}`,
          )
          .execute(db)
        for (const [table, run] of [
          ['ai_models', () => migrateTo(db, MIGRATION_006, { env: {} })],
          ['user_openrouter_integrations', () => migrateDown(db, { allowDataLoss: true, env: {} })],
        ] as const) {
          const attacker = await temporaryTrigger(serverUrl(location), role, table)
          try {
            const error = await run().catch((e: unknown) => e)
            expect(String((error as Error).message)).toMatch(
              new RegExp(
                `trigger zz_pwn on public\\.${table} calls pg_temp_\\d+\\.pwn\\(\\), owned by ${role}`,
              ),
            )
            expect(await isSuperuser(db, role)).toBe(false)
            expect(await applied(db)).toContain(MIGRATION_005)
            expect(await applied(db)).not.toContain(MIGRATION_006)
          } finally {
            await attacker.end()
          }
        }
      })
    })
  })

  it('a temporary trigger attached while the run waits for the lock: the run refuses in the transaction that writes', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        await sql.raw(`GRANT TRIGGER ON ai_models TO ${role}`).execute(db)
        const holder = new pg.Client({ connectionString: serverUrl(location) })
        await holder.connect()
        let attacker: pg.Client | undefined
        try {
          await holder.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
          let waiting!: () => void
          const waits = new Promise<void>((resolve) => (waiting = resolve))
          const run = migrateTo(db, MIGRATION_006, {
            env: {},
            log: (line) => {
              if (line.includes('waiting for the migration lock')) waiting()
            },
          }).catch((e: unknown) => e)
          // Every check made before the lock has passed by now.
          await waits
          attacker = await temporaryTrigger(serverUrl(location), role, 'ai_models')
          await holder.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`)
          const error = await run
          expect(String((error as Error).message)).toContain(`trigger zz_pwn on public.ai_models`)
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).not.toContain(MIGRATION_006)
        } finally {
          await attacker?.end()
          await holder.end()
        }
      })
    })
  })

  it('a temporary trigger attached between the transactions of 005’s down: the step that writes refuses, and never calls it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      // A key stored before the rollback: step 1 moves it to x402_backup (review revb F3).
      await db
        .insertInto('user_openrouter_integrations' as any)
        .values({ user_id: await createUser(db), encrypted_api_key: 'aa:bb' })
        .execute()
      await withLoginRole(db, async (role) => {
        await sql.raw(`GRANT TRIGGER ON user_openrouter_integrations TO ${role}`).execute(db)
        // 005's down runs outside the runner's transaction, in three transactions of its own: after
        // step 2 (VALIDATE) commits and step 3 has begun, nothing holds a lock on the keys table.
        // There a user stores a key (step 3 moves it, with the opt-in), and the lesser role
        // attaches a trigger that step 3's DELETE would run.
        let attacker: pg.Client | undefined
        let validating: number | undefined
        let attack: 'armed' | 'done' | undefined
        const run = new Kysely<any>({
          dialect: withoutKyselyMigrationLock(
            withDialectHooks(
              new PostgresDialect({ pool: new pg.Pool({ connectionString: serverUrl(location) }) }),
              {
                onStatement(text, _parameters, connection) {
                  if (text.includes('VALIDATE CONSTRAINT x402_resources_openrouter_rollback_check'))
                    validating = connection
                  else if (text === 'BEGIN' && connection === validating && attack === undefined)
                    attack = 'armed'
                },
                async afterBegin() {
                  if (attack !== 'armed') return
                  attack = 'done'
                  await db
                    .insertInto('user_openrouter_integrations' as any)
                    .values({ user_id: await createUser(db), encrypted_api_key: 'aa:bb' })
                    .execute()
                  attacker = await temporaryTrigger(
                    serverUrl(location),
                    role,
                    'user_openrouter_integrations',
                  )
                },
              },
            ),
          ),
        })
        try {
          const error = await migrateDown(run, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(attack).toBe('done')
          expect(await isSuperuser(db, role)).toBe(false)
          expect(String((error as Error).message)).toMatch(
            new RegExp(
              `trigger zz_pwn on public\\.user_openrouter_integrations calls pg_temp_\\d+\\.pwn\\(\\), owned by ${role}`,
            ),
          )
          expect(await applied(db)).toContain(MIGRATION_005)
          // Steps 1 and 2 committed: the refusal says so, not that no step ran, and step 1's
          // move of the key stored before is where it says.
          expect(String((error as Error).message)).not.toMatch(/no step of its down ran/)
          expect(String((error as Error).message)).toMatch(
            /the steps of its down that finished stay, it stays recorded as applied/,
          )
          const moved = await backupsOf005(db)
          expect(moved).toHaveLength(1)
          expect(String((error as Error).message)).toContain(
            `The rollback copied the data it would destroy to ${moved[0]} (docs/rollback.md says how to restore it).`,
          )
          // Its session gone, the temporary function goes, and the trigger with it.
          await attacker?.end()
          attacker = undefined
          // Steps 1 and 2 committed: the rollback stays half done, and only migrate:down goes on.
          await expect(migrateUp(db, { env: {} })).rejects.toBeInstanceOf(InterruptedRollbackError)
          const lines: string[] = []
          expect(
            (
              await migrateDown(db, {
                allowDataLoss: true,
                env: {},
                log: (line) => lines.push(line),
              })
            ).map((r) => r.migrationName),
          ).toEqual([MIGRATION_005])
          expect(await applied(db)).not.toContain(MIGRATION_005)
          // It names every backup of this rollback: step 1's, of the refused attempt, and the
          // one its own step 3 made of the key stored during step 2.
          const all = await backupsOf005(db)
          expect(all).toHaveLength(2)
          expect(lines).toContain(
            `[db] the rollback copied the data it would destroy to ${all.join(', ')} (docs/rollback.md says how to restore it)`,
          )
          expect(await isSuperuser(db, role)).toBe(false)
        } finally {
          await attacker?.end()
          await run.destroy()
        }
      })
    })
  })

  it('schema x402_backup owned by a lesser role: a down that would back up there refuses', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        // Its owner could drop every backup made there: the stored keys with them.
        await sql`CREATE SCHEMA IF NOT EXISTS x402_backup`.execute(db)
        await sql.raw(`ALTER SCHEMA x402_backup OWNER TO ${role}`).execute(db)
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (e: unknown) => e,
        )
        expect(String((error as Error).message)).toContain(`schema x402_backup is owned by ${role}`)
        expect(await applied(db)).toContain(MIGRATION_005)
      })
    })
  })

  it('a trusted trigger that writes through dblink: 005’s down refuses where no lesser login exists too, and nothing is deleted', async () => {
    // Review N10-8: dblink's connection commits on its own, where the down's count of what it
    // deleted cannot see it; with no lesser login the check had read no body.
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await createInstantResource(db)
      const url = new URL(serverUrl(location))
      const target = `host=${url.hostname} port=${url.port || 5432} dbname=${url.pathname.slice(1)} user=${decodeURIComponent(url.username)}`
      await sql
        .raw(
          `CREATE EXTENSION dblink;
           CREATE TABLE public.zz_precious (id int); INSERT INTO public.zz_precious SELECT generate_series(1, 50);
           CREATE FUNCTION public.zz_wipe() RETURNS trigger LANGUAGE plpgsql AS $f$
           BEGIN PERFORM dblink_exec('${target}', 'DELETE FROM public.zz_precious'); RETURN OLD; END $f$;
           CREATE TRIGGER zz_wipe AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_wipe()`,
        )
        .execute(db)
      const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch((e: unknown) => e)
      expect(String(error)).toContain(
        'public.zz_wipe(), whose body calls a function that runs SQL given as text',
      )
      expect(await applied(db)).toContain(MIGRATION_005)
      const { rows } = await sql<{
        n: number
      }>`SELECT count(*)::int AS n FROM public.zz_precious`.execute(db)
      expect(rows[0]!.n).toBe(50)
    })
  })

  it('a lesser login, or PUBLIC, that may change a table of x402_migrations or x402_backup: a run refuses; the REVOKE it advises lets it go on', async () => {
    // Review N10-3: a down restores from its record (008's prior_state_008): one that a login
    // granted UPDATE on it (a default privilege) had changed switched row level security off.
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        const grants: [string, string, string][] = [
          [`GRANT UPDATE ON x402_migrations.kysely_migration TO ${role}`, role, 'UPDATE'],
          [`GRANT UPDATE (name) ON x402_migrations.kysely_migration TO ${role}`, role, 'UPDATE'],
          ['GRANT DELETE ON x402_migrations.kysely_migration TO PUBLIC', 'PUBLIC', 'DELETE'],
        ]
        for (const [grant, grantee, privilege] of grants) {
          await sql.raw(grant).execute(db)
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect((error as { code?: string }).code).toBe('42501')
          expect(String((error as Error).message)).toContain(
            `may change table x402_migrations.kysely_migration (${privilege}`,
          )
          expect(String((error as Error).message)).toContain(
            `(REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON x402_migrations.kysely_migration FROM ${grantee})`,
          )
          expect(await applied(db)).not.toContain(MIGRATION_006)
          await sql
            .raw(
              `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON x402_migrations.kysely_migration FROM ${grantee}`,
            )
            .execute(db)
        }
        await migrateTo(db, MIGRATION_006, { env: {} })
        expect(await applied(db)).toContain(MIGRATION_006)
      })
    })
  })

  it('a lesser login that may create objects in x402_backup or x402_migrations: a run refuses; the REVOKE it advises lets it go on', async () => {
    // Review revf F3: such a login may add a table there at any moment, between a check and the
    // statement that reads the schema (the restore of 005's backups read it as a backup).
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await sql`CREATE SCHEMA IF NOT EXISTS x402_backup`.execute(db)
      await withLoginRole(db, async (role) => {
        for (const schema of ['x402_backup', 'x402_migrations']) {
          await sql.raw(`GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${role}`).execute(db)
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect((error as { code?: string }).code).toBe('42501')
          expect(String((error as Error).message)).toContain(
            `${role} may create objects in schema ${schema} (REVOKE CREATE ON SCHEMA ${schema} FROM ${role})`,
          )
          expect(String((error as Error).message)).toContain('Nothing was changed.')
          expect(await applied(db)).not.toContain(MIGRATION_006)
          await sql.raw(`REVOKE CREATE ON SCHEMA ${schema} FROM ${role}`).execute(db)
        }
        // Through a role it may become, and granted to PUBLIC: the holder of the right is named.
        await withLesserRole(db, 'x402_test_group', async (group) => {
          await sql.raw(`GRANT ${group} TO ${role}`).execute(db)
          await sql.raw(`GRANT USAGE, CREATE ON SCHEMA x402_backup TO ${group}`).execute(db)
          await sql.raw(`GRANT CREATE ON SCHEMA x402_migrations TO PUBLIC`).execute(db)
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect(String((error as Error).message)).toContain(
            `${role} may create objects in schema x402_backup (as ${group}) (REVOKE CREATE ON SCHEMA x402_backup FROM ${group})`,
          )
          expect(String((error as Error).message)).toContain(
            'any login (one made after this check too) may create objects in schema x402_migrations (granted to PUBLIC) (REVOKE CREATE ON SCHEMA x402_migrations FROM PUBLIC)',
          )
          await sql.raw(`REVOKE CREATE ON SCHEMA x402_backup FROM ${group}`).execute(db)
          await sql.raw(`REVOKE CREATE ON SCHEMA x402_migrations FROM PUBLIC`).execute(db)
        })
        await migrateTo(db, MIGRATION_006, { env: {} })
        expect(await applied(db)).toContain(MIGRATION_006)
      })
    })
  })

  it('a trusted trigger function behind a WHEN condition that calls a lesser role’s temporary function: refused', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await createModel(db, undefined, 'ai_models')
      await withLoginRole(db, async (role) => {
        await sql.raw(`GRANT TRIGGER ON ai_models TO ${role}`).execute(db)
        const attacker = new pg.Client({ connectionString: serverUrl(location) })
        await attacker.connect()
        try {
          await attacker.query(`SET ROLE ${role}`)
          await attacker.query(
            `CREATE FUNCTION pg_temp.w() RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN false; END $f$`,
          )
          await attacker.query(
            'CREATE TRIGGER zz_when BEFORE UPDATE ON ai_models FOR EACH ROW WHEN (pg_temp.w()) ' +
              'EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()',
          )
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect(String((error as Error).message)).toMatch(
            new RegExp(
              `trigger zz_when on public\\.ai_models calls pg_temp_\\d+\\.w\\(\\), owned by ${role}`,
            ),
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).not.toContain(MIGRATION_006)
        } finally {
          await attacker.end()
        }
      })
    })
  })

  it('under SET ROLE, code the role that was set owns is refused too: it could RESET ROLE to the session’s', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        const fn = await lesserFunction(db, role, 'trigger')
        await sql
          .raw(
            `CREATE TRIGGER zz_pwn AFTER UPDATE ON ai_models FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
          )
          .execute(db)
        await sql.raw(`GRANT ALL ON ai_models TO ${role}`).execute(db)
        // As keys:rotate writes as service_role: the trigger's owner can act as the role set.
        const error = await db
          .transaction()
          .execute(async (trx) => {
            await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
            await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
          })
          .catch((e: unknown) => e)
        expect(String((error as Error).message)).toContain(`calls ${fn}(), owned by ${role}`)
      })
    })
  })

  // A policy runs with the writer's power where row security is active for it: a table it owns
  // with FORCE ROW LEVEL SECURITY, or RLS on a table it does not own (keys:rotate writes as
  // service_role), without BYPASSRLS; so does what the policy reads (a view's functions, another
  // table's policies), however deep. Before, policies were left out of the check: a lesser
  // login's function behind the owner's policy ran inside 006's UPDATE as the migrating owner.
  it('row level security that applies to the writer: refused; where the writer bypasses it: runs', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLoginRole(db, async (role) => {
        await withLesserRole(db, 'x402_test_owner', async (owner) => {
          await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
          await sql
            .raw(
              `CREATE FUNCTION ${role}.allowed() RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN true; END $f$`,
            )
            .execute(db)
          await sql.raw(`ALTER FUNCTION ${role}.allowed() OWNER TO ${role}`).execute(db)
          await sql.raw(`GRANT USAGE ON SCHEMA ${role} TO PUBLIC`).execute(db)
          // The migrating owner owns the app's tables and the bookkeeping, as where it made them.
          await sql
            .raw(
              `DO $o$ DECLARE t regclass; BEGIN
                 FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname IN ('public', 'x402_migrations') AND c.relkind IN ('r', 'p') LOOP
                   EXECUTE format('ALTER TABLE %s OWNER TO ${owner}', t);
                 END LOOP;
                 ALTER SCHEMA x402_migrations OWNER TO ${owner};
               END $o$`,
            )
            .execute(db)
          await sql.raw(`ALTER TABLE ai_models ENABLE ROW LEVEL SECURITY`).execute(db)
          await sql.raw(`ALTER TABLE ai_models FORCE ROW LEVEL SECURITY`).execute(db)
          await sql.raw(`CREATE POLICY reads ON ai_models USING (${role}.allowed())`).execute(db)
          const checkAs = (setRole: string) =>
            db
              .transaction()
              .execute(async (trx) => {
                if (setRole) await sql.raw(`SET LOCAL ROLE ${setRole}`).execute(trx)
                await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
              })
              .then(
                () => 'passed',
                (e: unknown) => String((e as Error).message),
              )
          await sql.raw(`GRANT ALL ON ai_models TO ${owner}`).execute(db)
          // The owner, under FORCE ROW LEVEL SECURITY.
          expect(await checkAs(owner)).toContain(
            `row level security applies to ${owner} on public.ai_models`,
          )
          // Another writer without BYPASSRLS, under RLS.
          await sql.raw(`ALTER TABLE ai_models NO FORCE ROW LEVEL SECURITY`).execute(db)
          expect(await checkAs(owner)).toBe('passed')
          await withLesserRole(db, 'x402_test_writer', async (writer) => {
            await sql.raw(`GRANT ALL ON ai_models TO ${writer}`).execute(db)
            expect(await checkAs(writer)).toContain(
              `row level security applies to ${writer} on public.ai_models`,
            )
            expect(await checkAs(writer)).toContain(
              'Run the command as a role that bypasses row level security',
            )
            // A writer that bypasses row security (Supabase's postgres and service_role) runs no policy.
            await sql.raw(`ALTER ROLE ${writer} BYPASSRLS`).execute(db)
            expect(await checkAs(writer)).toBe('passed')
          })
          // The superuser bypasses it too.
          expect(await checkAs('')).toBe('passed')
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })
  })

  // A rule's action reads what it names, views included, and a view reads its own relations:
  // their tables' policies run with the writer's power too. Before, the check followed only
  // the tables a rule names directly, and a FORCE RLS table behind a view ran a lesser login's
  // policy function as the migrating owner.
  it('a rule that reads a view over a table where row security applies to the writer: refused, naming that table', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLesserRole(db, 'x402_test_owner', async (owner) => {
        await sql.raw(`CREATE SCHEMA x402_test_private AUTHORIZATION ${owner}`).execute(db)
        await sql.raw(`CREATE TABLE x402_test_private.gate (x integer)`).execute(db)
        await sql.raw(`ALTER TABLE x402_test_private.gate OWNER TO ${owner}`).execute(db)
        await sql.raw(`ALTER TABLE x402_test_private.gate ENABLE ROW LEVEL SECURITY`).execute(db)
        await sql.raw(`ALTER TABLE x402_test_private.gate FORCE ROW LEVEL SECURITY`).execute(db)
        await sql
          .raw(`CREATE VIEW x402_test_private.v AS SELECT x FROM x402_test_private.gate`)
          .execute(db)
        await sql.raw(`CREATE TABLE public.x402_test_audit (x integer)`).execute(db)
        await sql
          .raw(
            `CREATE RULE x402_test_r AS ON UPDATE TO ai_models DO ALSO INSERT INTO public.x402_test_audit SELECT x FROM x402_test_private.v`,
          )
          .execute(db)
        const error = await db
          .transaction()
          .execute(async (trx) => {
            await sql.raw(`SET LOCAL ROLE ${owner}`).execute(trx)
            await sql.raw(lesserTriggersSql({ lock: false })).execute(trx)
          })
          .catch((e: unknown) => e)
        expect(String((error as Error).message)).toContain(
          `row level security applies to ${owner} on x402_test_private.gate`,
        )
        await sql.raw(`DROP RULE x402_test_r ON ai_models`).execute(db)
        await sql.raw(`DROP TABLE public.x402_test_audit`).execute(db)
        await sql.raw(`DROP SCHEMA x402_test_private CASCADE`).execute(db)
      })
    })
  })

  // Through a view that is not security_invoker, PostgreSQL applies the policies of the view's
  // tables as the view's owner, and runs them as the session that writes: row_security_active
  // of the writer says nothing of them. Before, a rule reading such a view ran a lesser login's
  // policy function as the migrating user, superuser included.
  it('a rule that reads, through a view of another owner, a table with row level security: refused, even as a superuser', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLesserRole(db, 'x402_test_report', async (report) => {
        await sql.raw(`CREATE SCHEMA x402_test_private`).execute(db)
        await sql.raw(`CREATE TABLE x402_test_private.gate (x integer)`).execute(db)
        await sql.raw(`ALTER TABLE x402_test_private.gate ENABLE ROW LEVEL SECURITY`).execute(db)
        await sql.raw(`GRANT USAGE ON SCHEMA x402_test_private TO ${report}`).execute(db)
        await sql.raw(`GRANT SELECT ON x402_test_private.gate TO ${report}`).execute(db)
        await sql
          .raw(`CREATE VIEW x402_test_private.v AS SELECT x FROM x402_test_private.gate`)
          .execute(db)
        await sql.raw(`ALTER VIEW x402_test_private.v OWNER TO ${report}`).execute(db)
        await sql.raw(`CREATE TABLE public.x402_test_audit (x integer)`).execute(db)
        await sql
          .raw(
            `CREATE RULE x402_test_r AS ON UPDATE TO ai_models DO ALSO INSERT INTO public.x402_test_audit SELECT x FROM x402_test_private.v`,
          )
          .execute(db)
        try {
          const error = await db
            .transaction()
            .execute((trx) => sql.raw(lesserTriggersSql({ lock: false })).execute(trx))
            .catch((e: unknown) => e)
          expect(String((error as Error).message)).toContain(
            'a rule reads x402_test_private.gate through view x402_test_private.v, which applies its row level security as the view',
          )
        } finally {
          await sql.raw(`DROP RULE x402_test_r ON ai_models`).execute(db)
          await sql.raw(`DROP TABLE public.x402_test_audit`).execute(db)
          await sql.raw(`DROP SCHEMA x402_test_private CASCADE`).execute(db)
        }
      })
    })
  })

  it('a trigger whose function only a role nobody logs in as owns runs: only roles it trusts can change it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await withLesserRole(db, 'x402_test_platform', async (role) => {
        // As a platform's own role (Database Webhooks' functions, say): NOLOGIN, no member logs in.
        const fn = await lesserFunction(db, role, 'trigger')
        await sql
          .raw(
            `CREATE TRIGGER zz_platform AFTER UPDATE ON ai_models FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
          )
          .execute(db)
        await migrateTo(db, MIGRATION_006, { env: {} })
        expect(await applied(db)).toContain(MIGRATION_006)
      })
    })
  })

  // What a function of pg_catalog runs from text, pg_depend cannot follow: ts_rewrite's second
  // form runs a query (which may read a lesser role's view), pg_input_is_valid a type's input
  // function and a domain's CHECK (PostgreSQL 16 and later). Before, only query_to_xml's kind
  // and ts_stat were found, and only these pass a constraint or a rule unseen.
  it.for([
    [
      'ts_rewrite',
      `CHECK (pg_catalog.ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery') IS NOT NULL)`,
      /constraint zz_text on public\.ai_models calls ts_rewrite\(tsquery,text\), which runs SQL given as text/,
    ],
    [
      'pg_input_is_valid',
      `CHECK (pg_catalog.pg_input_is_valid(display_name, 'text'))`,
      /constraint zz_text on public\.ai_models calls pg_input_is_valid\(text,text\), which runs the code of a type named as text/,
    ],
  ] as const)(
    'a constraint calling %s, which runs what text names: refused',
    async ([name, check, refusal], context) => {
      await withTestDatabase('postgres', async ({ db }) => {
        const { rows } = await sql<{ exists: boolean }>`
          SELECT EXISTS (SELECT FROM pg_catalog.pg_proc
                         WHERE proname = ${name} AND pronamespace = 'pg_catalog'::regnamespace) AS exists`.execute(
          db,
        )
        // pg_input_is_valid: PostgreSQL 16 and later (CI runs the suite on 17 too).
        if (!rows[0]!.exists) return context.skip()
        await migrateTo(db, MIGRATION_005, { env: {} })
        await sql.raw(`ALTER TABLE ai_models ADD CONSTRAINT zz_text ${check} NOT VALID`).execute(db)
        // What the text names matters only where a lesser login exists (the check's early exit:
        // see the case below); one does here, whatever else runs on the server.
        await withLesserRole(
          db,
          'x402_test_reader',
          async () => {
            const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
            expect(String((error as Error).message)).toMatch(refusal)
            expect(await applied(db)).not.toContain(MIGRATION_006)
          },
          { login: true },
        )
      })
    },
  )

  it('where no login exists that cannot act as the session user, reads no code: a constraint calling ts_rewrite runs', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await sql
        .raw(
          `ALTER TABLE ai_models ADD CONSTRAINT zz_text CHECK (pg_catalog.ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery') IS NOT NULL) NOT VALID`,
        )
        .execute(db)
      // Another file's lesser login (one that can log in, or a NOLOGIN role with its session
      // open), on the shared server at the same moment, takes the full path, which must refuse
      // this constraint by its cause: counted by the check's own rule before and after the run.
      const before = await lesserLogins(db)
      const refusal = await migrateTo(db, MIGRATION_006, { env: {} }).then(
        () => undefined,
        (error: unknown) => error,
      )
      if (before > 0 || (refusal !== undefined && (await lesserLogins(db)) > 0)) {
        expect(String(refusal)).toMatch(/constraint zz_text on public\.ai_models calls ts_rewrite/)
        return
      }
      if (refusal !== undefined) throw refusal
      expect(await applied(db)).toContain(MIGRATION_006)
    })
  })

  it.each([
    [
      'a domain whose CHECK calls it',
      (schema: string) => [
        `CREATE FUNCTION pg_temp.f(v text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN <escalate> RETURN true; END $f$`,
        'CREATE DOMAIN pg_temp.d AS text CHECK (pg_temp.f(VALUE))',
        `CREATE TRIGGER zz_when BEFORE UPDATE ON ai_models FOR EACH ROW WHEN (NEW.id::text::${schema}.d IS NOT NULL) ` +
          'EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()',
      ],
      /trigger zz_when on public\.ai_models uses type pg_temp_\d+\.d, owned by/,
    ],
    [
      'query_to_xml, which runs SQL text',
      (schema: string) => [
        `CREATE FUNCTION pg_temp.f() RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN <escalate> RETURN true; END $f$`,
        `CREATE TRIGGER zz_when BEFORE UPDATE ON ai_models FOR EACH ROW WHEN (pg_catalog.query_to_xml('SELECT ${schema}.f()', false, false, '') IS NOT NULL) ` +
          'EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()',
      ],
      /trigger zz_when on public\.ai_models calls query_to_xml\(text,boolean,boolean,text\), which runs SQL given as text/,
    ],
  ] as const)(
    'a WHEN condition that reaches a lesser role’s temporary function through %s: refused',
    async (_, statements, refusal) => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        await createModel(db, undefined, 'ai_models')
        await withLoginRole(db, async (role) => {
          await sql.raw(`GRANT TRIGGER ON ai_models TO ${role}`).execute(db)
          const attacker = new pg.Client({ connectionString: serverUrl(location) })
          await attacker.connect()
          try {
            await attacker.query(`SET ROLE ${role}`)
            await attacker.query('CREATE TEMP TABLE made_temp_schema ()')
            const { rows } = await attacker.query<{ schema: string }>(
              'SELECT nspname AS schema FROM pg_namespace WHERE oid = pg_my_temp_schema()',
            )
            for (const statement of statements(rows[0]!.schema))
              await attacker.query(statement.replace('<escalate>', escalate(role)))
            const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
            expect(String((error as Error).message)).toMatch(refusal)
            expect(await isSuperuser(db, role)).toBe(false)
            expect(await applied(db)).not.toContain(MIGRATION_006)
          } finally {
            await attacker.end()
          }
        })
      })
    },
  )

  it('a stored generated column calling a lesser role’s function: refused (an UPDATE computes it again)', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await createModel(db, undefined, 'ai_models')
      await withLoginRole(db, async (role) => {
        await sql`CREATE SCHEMA ${sql.id(role)} AUTHORIZATION ${sql.id(role)}`.execute(db)
        const g = (body: string) =>
          sql
            .raw(
              `CREATE OR REPLACE FUNCTION ${role}.g(v text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN ${body} RETURN v; END $f$`,
            )
            .execute(db)
        await g('')
        await sql.raw(`ALTER FUNCTION ${role}.g(text) OWNER TO ${role}`).execute(db)
        await sql
          .raw(
            `ALTER TABLE ai_models ADD COLUMN zz_generated text GENERATED ALWAYS AS (${role}.g(id::text)) STORED`,
          )
          .execute(db)
        // Its owner may change it whenever it likes; a volatile function does what an IMMUTABLE one may not.
        await sql
          .raw(
            `CREATE FUNCTION ${role}.act() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$`,
          )
          .execute(db)
        await g(`PERFORM ${role}.act();`)
        const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
        expect(String((error as Error).message)).toContain(
          `generated column zz_generated on public.ai_models calls ${role}.g(text), owned by ${role}`,
        )
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  // Review revy Y1: a rule on a table the module writes inserts into another, filling its defaults.
  it('a rule on the keys table inserting into a table whose column default calls a lesser login’s function: keys:rotate refuses, and never calls it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await migrateToLatest(db, { env: {} })
        const old = new IntegrationCipher({
          current: 'the-old-secret-0123456789abcdef-01234',
          previous: [],
        })
        const cipher = new IntegrationCipher({
          current: 'the-secret-0123456789abcdef-0123456789',
          previous: ['the-old-secret-0123456789abcdef-01234'],
        })
        const userId = await createUser(db)
        await db
          .insertInto('x402_user_openrouter_integrations')
          .values({ user_id: userId, encrypted_api_key: old.encrypt('sk-or-v1-test', userId) })
          .execute()
        await sql
          .raw(
            `CREATE SCHEMA ${role} AUTHORIZATION ${role};
             GRANT USAGE ON SCHEMA ${role} TO PUBLIC;
             CREATE FUNCTION ${role}.actor() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN RESET ROLE; ${escalate(role)} RETURN 'x'; END $f$;
             ALTER FUNCTION ${role}.actor() OWNER TO ${role};
             CREATE SCHEMA zz_elsewhere;
             CREATE TABLE zz_elsewhere.key_history (user_id uuid, actor text DEFAULT ${role}.actor());
             GRANT USAGE ON SCHEMA zz_elsewhere TO PUBLIC;
             GRANT INSERT ON zz_elsewhere.key_history TO PUBLIC;
             CREATE RULE zz_log AS ON UPDATE TO public.x402_user_openrouter_integrations
               DO ALSO INSERT INTO zz_elsewhere.key_history (user_id) VALUES (NEW.user_id)`,
          )
          .execute(db)
        const error = await rotateOpenRouterKeys(db, { cipher, keyId: cipher.currentKeyId }).catch(
          (e: unknown) => e,
        )
        expect(String((error as Error).message)).toContain(
          `default of column actor on zz_elsewhere.key_history calls ${role}.actor(), owned by ${role}`,
        )
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  // Review revz Z3: a rule's INSERT into its own table fills that table's defaults too.
  it('a rule on a table 006 updates inserting into that same table, whose column default calls a lesser login’s function: migrate:latest refuses, and never calls it', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        const model = await createModel(db, undefined, 'ai_models')
        await sql`UPDATE ai_models SET pricing = '{"prompt": "0.1"}' WHERE id = ${model}`.execute(
          db,
        )
        await sql
          .raw(
            `CREATE SCHEMA ${role} AUTHORIZATION ${role};
             GRANT USAGE ON SCHEMA ${role} TO PUBLIC;
             CREATE FUNCTION ${role}.actor() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN 'x'; END $f$;
             ALTER FUNCTION ${role}.actor() OWNER TO ${role};
             ALTER TABLE public.ai_models ADD COLUMN zz_actor text, ALTER COLUMN zz_actor SET DEFAULT ${role}.actor();
             CREATE RULE zz_previous AS ON UPDATE TO public.ai_models DO ALSO
               INSERT INTO public.ai_models (openrouter_id, display_name, provider)
               VALUES (OLD.openrouter_id || '#previous', OLD.display_name, OLD.provider)`,
          )
          .execute(db)
        const error = await migrateToLatest(db, { env: {} }).catch((e: unknown) => e)
        expect(String((error as Error).message)).toContain(
          `default of column zz_actor on public.ai_models calls ${role}.actor(), owned by ${role}`,
        )
        expect(await isSuperuser(db, role)).toBe(false)
        expect(await applied(db)).not.toContain(MIGRATION_006)
      })
    })
  })

  it('a foreign key to a table a lesser login owns (Supabase’s auth.users, its supabase_auth_admin login’s): runs and keys:rotate go on, and that login’s trigger on a written table is still refused', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        // As on Supabase: schema auth, auth.users and its functions belong to the login GoTrue uses.
        await giveAuthTo(db, role)
        // A foreign key runs no code of the referenced table's owner: nothing to refuse.
        await migrateToLatest(db, { env: {} })
        expect(await applied(db)).toEqual([...ALL_MIGRATIONS].sort())

        const cipher = new IntegrationCipher({
          current: 'the-secret-0123456789abcdef-0123456789',
          previous: [],
        })
        const userId = await createUser(db)
        await db
          .insertInto('x402_user_openrouter_integrations')
          .values({ user_id: userId, encrypted_api_key: cipher.encrypt('sk-or-v1-test', userId) })
          .execute()
        const report = await rotateOpenRouterKeys(db, { cipher, keyId: cipher.currentKeyId })
        expect(report).toMatchObject({ scanned: 1, alreadyCurrent: 1, complete: true })

        const fn = await lesserFunction(db, role, 'trigger')
        await sql
          .raw(
            `CREATE TRIGGER zz_pwn AFTER UPDATE ON x402_user_openrouter_integrations FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
          )
          .execute(db)
        const error = await rotateOpenRouterKeys(db, { cipher, keyId: cipher.currentKeyId }).catch(
          (e: unknown) => e,
        )
        expect(String((error as Error).message)).toContain(
          `trigger zz_pwn on public.x402_user_openrouter_integrations calls ${fn}(), owned by ${role}`,
        )
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  // The history, which every run writes; and an earlier rollback's backup, a table of schema
  // x402_backup, where the downs write.
  it.each([
    ['the history in x402_migrations', 'x402_migrations.kysely_migration', ''],
    [
      'a backup in x402_backup',
      'x402_backup.zz_earlier_backup',
      'CREATE SCHEMA IF NOT EXISTS x402_backup; CREATE TABLE x402_backup.zz_earlier_backup (id int);',
    ],
  ])(
    'a trusted trigger on %s calling a lesser login’s function: the run refuses before it writes, and never calls it',
    async (_case, table, setUp) => {
      await withTestDatabase('postgres', async ({ db }) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        if (setUp) await sql.raw(setUp).execute(db)
        await withLoginRole(db, async (role) => {
          const fn = await lesserFunction(db, role, 'trigger')
          await sql
            .raw(
              `CREATE TRIGGER zz_pwn AFTER INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
            )
            .execute(db)
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect(String((error as Error).message)).toContain(
            `trigger zz_pwn on ${table} calls ${fn}(), owned by ${role}`,
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).not.toContain(MIGRATION_006)
        })
      })
    },
  )

  // A rule's action writes a table the run would not otherwise write, running its triggers.
  it.each([
    ['an app table the run updates', 'UPDATE TO public.ai_models'],
    ['the history', 'INSERT TO x402_migrations.kysely_migration'],
  ])(
    'a rule on %s writing a table of another schema, whose trusted trigger calls a lesser login’s function: the run refuses, and never calls it',
    async (_case, event) => {
      await withTestDatabase('postgres', async ({ db }) => {
        await migrateTo(db, MIGRATION_005, { env: {} })
        await withLoginRole(db, async (role) => {
          const fn = await lesserFunction(db, role, 'trigger')
          await sql
            .raw(
              `CREATE SCHEMA zz_audit; CREATE TABLE zz_audit.log (at timestamptz);
               CREATE TRIGGER zz_pwn AFTER INSERT ON zz_audit.log FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();
               CREATE RULE zz_audit AS ON ${event} DO ALSO INSERT INTO zz_audit.log VALUES (now());`,
            )
            .execute(db)
          const error = await migrateTo(db, MIGRATION_006, { env: {} }).catch((e: unknown) => e)
          expect(String((error as Error).message)).toContain(
            `trigger zz_pwn on zz_audit.log calls ${fn}(), owned by ${role}`,
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).not.toContain(MIGRATION_006)
        })
      })
    },
  )

  it('a trusted trigger on the accepted differences calling a lesser login’s function: migrate:baseline refuses before it writes, also where already adopted', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await migrateToLatest(db, { env: {} })
      for (const statement of acceptedDifferenceTableStatements())
        await sql.raw(statement).execute(db)
      await withLoginRole(db, async (role) => {
        const fn = await lesserFunction(db, role, 'trigger')
        await sql
          .raw(
            `CREATE TRIGGER zz_pwn AFTER INSERT OR DELETE ON x402_migrations.accepted_schema_difference FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
          )
          .execute(db)
        const error = await baselineMigrations(db, ALL_MIGRATIONS.at(-1)!).catch((e: unknown) => e)
        expect(String((error as Error).message)).toContain(
          `trigger zz_pwn on x402_migrations.accepted_schema_difference calls ${fn}(), owned by ${role}`,
        )
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  it('the same trigger: the SQL script of migrate:sql -- --baseline refuses before it writes, and never calls it', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateToLatest(db, { env: {} })
      for (const statement of acceptedDifferenceTableStatements())
        await sql.raw(statement).execute(db)
      await withLoginRole(db, async (role) => {
        const fn = await lesserFunction(db, role, 'trigger')
        await sql
          .raw(
            `CREATE TRIGGER zz_pwn AFTER INSERT OR DELETE ON x402_migrations.accepted_schema_difference FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
          )
          .execute(db)
        const script = await exportBaselineSql(ALL_MIGRATIONS.at(-1)!)
        const client = new pg.Client({ connectionString: serverUrl(location) })
        await client.connect()
        try {
          const error = await client.query(script).catch((e: unknown) => e)
          expect(String((error as Error).message)).toContain(
            `trigger zz_pwn on x402_migrations.accepted_schema_difference calls ${fn}(), owned by ${role}`,
          )
        } finally {
          await client.end()
        }
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })
})

// Review revs S2: a PL/pgSQL body is opaque to pg_depend. A trusted trigger function that calls a
// lesser login's function by name ran it with the runner's power during 005's down (the login made
// itself a superuser). The check follows the names such bodies hold, and what a SQL-standard body
// (BEGIN ATOMIC) depends on, from function to function.
/**
 * As on Supabase: the stand-in's schema auth, auth.users and auth's functions belong to `role`,
 * a login that cannot act as the runner (Supabase's supabase_auth_admin).
 */
// As hosted Supabase has them (review revz Z4): schema auth stays a superuser's (supabase_admin),
// auth.users and auth's functions are the login's (supabase_auth_admin); `schemaToo` gives the
// login the schema as well, as no Supabase does.
async function giveAuthTo(db: Kysely<any>, role: string, schemaToo = false): Promise<void> {
  await ensureSupabaseStandIn(db)
  if (schemaToo) await sql.raw(`ALTER SCHEMA auth OWNER TO ${role}`).execute(db)
  await sql.raw(`ALTER TABLE auth.users OWNER TO ${role}`).execute(db)
  await sql.raw(`GRANT ALL ON SCHEMA auth TO ${role}`).execute(db)
  await sql
    .raw(
      `DO $$ DECLARE f regprocedure; BEGIN
         FOR f IN SELECT oid FROM pg_proc WHERE pronamespace = 'auth'::regnamespace LOOP
           EXECUTE format('ALTER FUNCTION %s OWNER TO ${role}', f);
         END LOOP; END $$`,
    )
    .execute(db)
}

/** A table of `role`'s whose trigger (any write) calls `role`.zz_evil(). */
/** zz_elsewhere.log, whose column default calls `role`'s function, which escalates. */
const LESSER_DEFAULT_LOG = (
  role: string,
) => `CREATE FUNCTION ${role}.actor() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN 'x'; END $f$;
  ALTER FUNCTION ${role}.actor() OWNER TO ${role};
  CREATE SCHEMA zz_elsewhere;
  CREATE TABLE zz_elsewhere.log (id text, actor text DEFAULT ${role}.actor())`

const LESSER_AUDIT = (role: string) => `CREATE TABLE ${role}.audit (id text);
  ALTER TABLE ${role}.audit OWNER TO ${role};
  CREATE TRIGGER zz_evil BEFORE INSERT OR UPDATE OR DELETE ON ${role}.audit FOR EACH STATEMENT EXECUTE FUNCTION ${role}.zz_evil()`

// Review revw O2: Supabase's Database Webhooks are triggers that call
// supabase_functions.http_request(), which its supabase_functions_admin login owns, in a schema
// the platform's superuser owns, SECURITY DEFINER with a search_path of its own: it runs as its
// owner, not with the writer's power, and refusing it refused every down of a project with one.
describe.skipIf(skipReason)('a Supabase Database Webhook on a table a down writes', () => {
  /** Supabase's webhook function as the platform makes it, owned by `role`; `definer` as there. */
  async function webhook(db: Kysely<any>, role: string, schemaOwner: string, definer: boolean) {
    await migrateTo(db, MIGRATION_005, { env: {} })
    await createInstantResource(db)
    await sql
      .raw(
        `CREATE SCHEMA supabase_functions AUTHORIZATION ${schemaOwner};
         GRANT ALL ON SCHEMA supabase_functions TO ${role};
         CREATE TABLE supabase_functions.hooks (id bigserial PRIMARY KEY, hook_name text, ran_as text);
         ALTER TABLE supabase_functions.hooks OWNER TO ${role};
         CREATE FUNCTION supabase_functions.http_request() RETURNS trigger LANGUAGE plpgsql
           ${definer ? 'SECURITY DEFINER SET search_path = supabase_functions' : ''} AS $f$
           BEGIN
             ${escalate(role)}
             INSERT INTO supabase_functions.hooks (hook_name, ran_as) VALUES (TG_NAME, current_user);
             RETURN OLD;
           END $f$;
         ALTER FUNCTION supabase_functions.http_request() OWNER TO ${role};
         CREATE TRIGGER zz_webhook AFTER DELETE ON public.x402_resources
           FOR EACH ROW EXECUTE FUNCTION supabase_functions.http_request('https://example.test/hook', 'POST', '{}', '{}', '1000')`,
      )
      .execute(db)
  }

  it('as Supabase makes it: 005’s down runs, and the webhook runs as its owner', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await webhook(db, role, 'CURRENT_USER', true)
        await migrateDown(db, { allowDataLoss: true, env: {} })
        expect(await applied(db)).not.toContain(MIGRATION_005)
        const { rows } = await sql<{
          ran_as: string
        }>`SELECT DISTINCT ran_as FROM supabase_functions.hooks`.execute(db)
        expect(rows).toEqual([{ ran_as: role }])
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  // Review rev-final F2: an event trigger's function without a path of its own (PostgREST's
  // pgrst_ddl_watch) is walked with the paths of the trusted bodies a run reaches, not with every
  // function's own: the webhook's (supabase_functions, where its login may create) is not one.
  it('beside an event trigger whose function has no search_path of its own: 005’s down runs', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await webhook(db, role, 'CURRENT_USER', true)
        await sql
          .raw(
            `CREATE FUNCTION public.zz_ddl_watch() RETURNS event_trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM 1; END $f$;
             CREATE EVENT TRIGGER zz_ddl_watch ON ddl_command_end EXECUTE FUNCTION public.zz_ddl_watch()`,
          )
          .execute(db)
        await migrateDown(db, { allowDataLoss: true, env: {} })
        expect(await applied(db)).not.toContain(MIGRATION_005)
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  // Supabase Realtime's broadcast from a trigger: realtime.send() (the platform's) runs
  // `EXECUTE format('SET LOCAL realtime.topic TO %L', topic)`, a setting of its own and not the
  // path, beside a schema a lesser login may create in (the webhook's): not refused.
  it('beside a Realtime broadcast trigger (realtime.send sets realtime.topic): 005’s down runs', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await webhook(db, role, 'CURRENT_USER', true)
        await sql
          .raw(
            `CREATE SCHEMA realtime;
             CREATE TABLE realtime.messages (topic text, event text, payload jsonb, private boolean, extension text);
             CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
               RETURNS void LANGUAGE plpgsql AS $f$
               BEGIN
                 BEGIN
                   -- the topic, for the policies of realtime.messages
                   EXECUTE format('SET LOCAL realtime.topic TO %L', topic);
                   INSERT INTO realtime.messages (payload, event, topic, private, extension)
                     VALUES (payload, event, topic, private, 'broadcast');
                 EXCEPTION WHEN OTHERS THEN
                   RAISE WARNING 'broadcast not sent: %', SQLERRM;
                 END;
               END $f$;
             CREATE FUNCTION public.zz_broadcast() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $f$
               BEGIN
                 PERFORM realtime.send(jsonb_build_object('old', to_jsonb(OLD)), TG_OP, 'resources:' || OLD.id::text, true);
                 RETURN NULL;
               END $f$;
             CREATE TRIGGER zz_broadcast AFTER DELETE ON public.x402_resources
               FOR EACH ROW EXECUTE FUNCTION public.zz_broadcast()`,
          )
          .execute(db)
        await migrateDown(db, { allowDataLoss: true, env: {} })
        expect(await applied(db)).not.toContain(MIGRATION_005)
        const { rows } = await sql<{
          n: number
        }>`SELECT count(*)::int AS n FROM realtime.messages`.execute(db)
        expect(rows[0]?.n).toBeGreaterThan(0)
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  // Review revy R1: the webhook is the platform's wherever the walk reaches it.
  it('on a table a trusted trigger body writes: 005’s down runs', async () => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await webhook(db, role, 'CURRENT_USER', true)
        await sql
          .raw(
            `CREATE TABLE public.zz_notifications (id text);
             CREATE TRIGGER zz_webhook AFTER INSERT ON public.zz_notifications
               FOR EACH ROW EXECUTE FUNCTION supabase_functions.http_request('https://example.test/hook', 'POST', '{}', '{}', '1000');
             CREATE FUNCTION public.zz_notify() RETURNS trigger LANGUAGE plpgsql AS $f$
               BEGIN INSERT INTO public.zz_notifications VALUES (OLD.id::text); RETURN OLD; END $f$;
             CREATE TRIGGER zz_notify AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_notify()`,
          )
          .execute(db)
        await migrateDown(db, { allowDataLoss: true, env: {} })
        expect(await applied(db)).not.toContain(MIGRATION_005)
        expect(await isSuperuser(db, role)).toBe(false)
      })
    })
  })

  it.each([
    ['not SECURITY DEFINER', true, false],
    ['in a schema the login owns', false, true],
  ])('%s: 005’s down refuses, and never calls it', async (_case, superuserSchema, definer) => {
    await withTestDatabase('postgres', async ({ db }) => {
      await withLoginRole(db, async (role) => {
        await webhook(db, role, superuserSchema ? 'CURRENT_USER' : role, definer)
        const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
          (e: unknown) => e,
        )
        expect(String((error as Error).message)).toContain(
          `calls supabase_functions.http_request(), owned by ${role}`,
        )
        expect(await isSuperuser(db, role)).toBe(false)
        expect(await applied(db)).toContain(MIGRATION_005)
      })
    })
  })
})

describe.skipIf(skipReason)(
  'a trusted trigger function whose body names a lesser login’s function',
  () => {
    /**
     * 005 applied, a row 005's down deletes, and a trigger on x402_resources (AFTER DELETE) whose
     * function, owned by the runner, has `body` (PL/pgSQL statements) after `setUp` ran; then
     * `role.helper()`, which `role` writes after the trigger was made and which escalates.
     */
    async function plant(db: Kysely<any>, role: string, body: string, setUp = ''): Promise<void> {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await createInstantResource(db)
      await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
      await db.transaction().execute(async (trx) => {
        await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
        await sql
          .raw(
            `CREATE FUNCTION ${role}.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN END $f$`,
          )
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

    it.each([
      ['calls it', (role: string) => [`PERFORM ${role}.helper();`, '']],
      [
        'calls it quoted and in capitals',
        (role: string) => [
          `PERFORM "${role}"."helper"(); PERFORM ${role.toUpperCase()}.HELPER();`,
          '',
        ],
      ],
      [
        'calls a trusted PL/pgSQL function that calls it',
        (role: string) => [
          'PERFORM public.zz_middle();',
          `CREATE FUNCTION public.zz_middle() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); END $f$`,
        ],
      ],
      [
        'calls a trusted SQL function (no BEGIN ATOMIC) that calls it',
        (role: string) => [
          'PERFORM public.zz_middle();',
          `CREATE FUNCTION public.zz_middle() RETURNS void LANGUAGE sql AS $f$ SELECT ${role}.helper() $f$`,
        ],
      ],
      [
        'calls a trusted BEGIN ATOMIC function that calls it',
        (role: string) => [
          'PERFORM public.zz_middle();',
          `CREATE FUNCTION public.zz_middle() RETURNS void LANGUAGE sql BEGIN ATOMIC SELECT ${role}.helper(); END`,
        ],
      ],
      [
        'calls a trusted function whose own search_path names its schema, which calls it unqualified',
        (role: string) => [
          'PERFORM public.zz_middle();',
          `CREATE FUNCTION public.zz_middle() RETURNS void LANGUAGE plpgsql SET search_path = "${role}", pg_temp
             AS $f$ BEGIN PERFORM Helper(); END $f$`,
        ],
      ],
      [
        'calls it qualified with spaces around the dot',
        (role: string) => [`PERFORM ${role} . "helper" ();`, ''],
      ],
      // Review revu R3: a body may change its own path as it runs; its bare names are then taken
      // to resolve in every schema.
      [
        'sets its own search_path (SET LOCAL) to its schema and calls it unqualified',
        (role: string) => [`SET LOCAL search_path = ${role}, public; PERFORM helper();`, ''],
      ],
      [
        'sets its own search_path (set_config) to its schema and calls it unqualified',
        (role: string) => [
          `PERFORM set_config('Search_Path', '${role}, public', true); PERFORM helper();`,
          '',
        ],
      ],
      // Review revx V3: the schema-per-tenant pattern, a SET built with format() and run by EXECUTE.
      [
        'sets its search_path through EXECUTE format() of a dollar-quoted string, and calls it unqualified',
        (role: string) => [
          `EXECUTE format($q$SET LOCAL search_path TO %I, public$q$, '${role}'); PERFORM helper();`,
          '',
        ],
      ],
      // Review revy Y3, Y4: quoted names.
      [
        'sets its search_path through a quoted "set_config", and calls it unqualified',
        (role: string) => [
          `PERFORM pg_catalog."set_config"('search_path', '${role}, public', true); PERFORM helper();`,
          '',
        ],
      ],
      [
        'sets its search_path with SET LOCAL "search_path", and calls it unqualified',
        (role: string) => [`SET LOCAL "search_path" = ${role}, public; PERFORM helper();`, ''],
      ],
      // Review revz Z5: a name after an escape of an E'' string that EXECUTE runs.
      [
        'calls it qualified after a tab escape in an E string that EXECUTE runs',
        (role: string) => [`EXECUTE E'SELECT\\t${role}.helper()';`, ''],
      ],
      [
        'sets its search_path and calls it unqualified after a newline escape in an E string that EXECUTE runs',
        (role: string) => [
          `SET LOCAL search_path = ${role}, public; EXECUTE E'SELECT\\nhelper()';`,
          '',
        ],
      ],
      // Review revr R3: any other backslash of an E'' string stands for the character after it.
      [
        'calls it qualified with an escaped dot in an E string that EXECUTE runs',
        (role: string) => [`EXECUTE E'SELECT ${role}\\.helper()';`, ''],
      ],
      [
        'sets its search_path after an escaped space in an E string that EXECUTE runs, and calls it unqualified',
        (role: string) => [
          `EXECUTE E'\\ SET LOCAL search_path = ${role}, public'; PERFORM helper();`,
          '',
        ],
      ],
      [
        'sets its search_path with an escaped letter in an E string that EXECUTE runs, and calls it unqualified',
        (role: string) => [
          `EXECUTE E'SET LOCAL \\search_path = ${role}, public'; PERFORM helper();`,
          '',
        ],
      ],
      // Review revv V3: the setting's name spelled so that no plain string holds it.
      [
        'sets its search_path through set_config with an escaped name, and calls it unqualified',
        (role: string) => [
          `PERFORM set_config(E'search\\137path', '${role}, public', true); PERFORM helper();`,
          '',
        ],
      ],
      [
        'sets its search_path through set_config with a name built by ||, and calls it unqualified',
        (role: string) => [
          `PERFORM set_config('search_' || 'path', '${role}, public', true); PERFORM helper();`,
          '',
        ],
      ],
      [
        'sets its search_path (SET LOCAL) to its schema and calls a trusted function that calls it unqualified',
        (role: string) => [
          `SET LOCAL search_path = ${role}, public; PERFORM public.zz_middle();`,
          `CREATE FUNCTION public.zz_middle() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); END $f$`,
        ],
      ],
    ])(
      'whose body %s: 005’s down refuses, naming it and its owner, and never calls it',
      async (_case, planted) => {
        await withTestDatabase('postgres', async ({ db }) => {
          await withLoginRole(db, async (role) => {
            const [body, setUp] = planted(role)
            await plant(db, role, body!, setUp)
            const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
              (e: unknown) => e,
            )
            expect(String((error as Error).message)).toContain(
              `whose body names ${role}.helper(), owned by ${role}`,
            )
            expect(String((error as Error).message)).toContain(
              'trigger zz_audit on public.x402_resources',
            )
            expect(await isSuperuser(db, role)).toBe(false)
            expect(await applied(db)).toContain(MIGRATION_005)
          })
        })
      },
    )

    // Review revs S2 refined: Supabase's supabase_storage_admin login owns storage.search(),
    // storage.extension(), storage.filename() …, outside the search path; a body that holds those
    // words (a comment, a string, a column) calls none of them.
    it('whose body holds the names of a lesser login’s functions outside its search path, and calls none: 005’s down runs', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION ${role}.extension() RETURNS text LANGUAGE sql AS $f$ SELECT 'x' $f$;
            CREATE FUNCTION ${role}.search(text) RETURNS text LANGUAGE sql AS $f$ SELECT $1 $f$;
            ALTER FUNCTION ${role}.extension() OWNER TO ${role};
            ALTER FUNCTION ${role}.search(text) OWNER TO ${role}`
          await plant(
            db,
            role,
            `-- the extension's search, and no helper: nothing of ${role}'s is called
             RAISE DEBUG 'extension % search % helper() %', 1, 2, '${role}';`,
            setUp,
          )
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })

    // Review rev-paths F5: a function's own SET role makes "$user" that role, as a body's does.
    it('beside a trusted trigger with its own SET role of a lesser login, that calls a bare name: 005’s down refuses, and never calls it', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
            ALTER FUNCTION public.zz_later() SET role = ${role};
            CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`
          await plant(db, role, 'NULL;', setUp)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String((error as Error).message)).toContain(
            `trigger zz_later on public.x402_resources reaches public.zz_later(), whose body names ${role}.helper(), owned by ${role}`,
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    })

    // Bodies that change no path, beside a lesser login's function whose name they hold outside
    // the path (extension()): none widens the names.
    it.each([
      // Supabase apps set their own settings (set_config('request.jwt.claims', …)): a setting
      // named in a plain string is not the search path.
      [
        'sets a setting of its own with set_config',
        `PERFORM pg_catalog.set_config('app.deleted_by', 'extension cleanup', true);
         PERFORM set_config ( 'request.jwt.claims', '{}', true );`,
      ],
      // Review rev-paths F7: a comment is a whole comment; "set role" in it sets nothing.
      [
        'holds a comment that starts with “set role”',
        `IF OLD.id IS NULL THEN
           -- set role to default, set search_path later (extension cleanup)
           NULL;
         END IF;`,
      ],
    ])(
      'whose body %s, and holds the names of a lesser login’s functions outside its search path: 005’s down runs',
      async (_case, body) => {
        await withTestDatabase('postgres', async ({ db }) => {
          await withLoginRole(db, async (role) => {
            const setUp = `CREATE FUNCTION ${role}.extension() RETURNS text LANGUAGE sql AS $f$ SELECT 'x' $f$;
              ALTER FUNCTION ${role}.extension() OWNER TO ${role};
              CREATE TABLE public.zz_notes (note text)`
            await plant(db, role, body, setUp)
            await migrateDown(db, { allowDataLoss: true, env: {} })
            expect(await applied(db)).not.toContain(MIGRATION_005)
            expect(await isSuperuser(db, role)).toBe(false)
          })
        })
      },
    )

    // Review rev-final F7: an UPDATE built as it runs, whose ' SET ' is a string of its own. It ran
    // once no rule read a SET in that string; but a body that EXECUTEs a string it builds may
    // change the path whatever the string spells (review rev-final F3), so it is taken to, and
    // its bare names (the lesser login's extension(), in a schema it owns) resolve anywhere: the
    // refusal says so, and what to do (a SET search_path of the function's own).
    it("whose body builds an UPDATE with a ' SET ' string and EXECUTEs it, and holds the name of a lesser login’s function outside its search path: 005’s down refuses, saying the body may change the path", async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION ${role}.extension() RETURNS text LANGUAGE sql AS $f$ SELECT 'x' $f$;
            ALTER FUNCTION ${role}.extension() OWNER TO ${role};
            CREATE TABLE public.zz_notes (note text)`
          await plant(
            db,
            role,
            `EXECUTE 'UPDATE public.zz_notes' || ' SET ' || quote_ident('note') || ' = ''extension'' WHERE false';`,
            setUp,
          )
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String((error as Error).message)).toContain(
            `whose body names ${role}.extension(), owned by ${role}`,
          )
          // The message says why a name in a string counted (its own bare names, on the first pass).
          expect(String((error as Error).message)).toContain(
            'in any schema, since public.zz_audit() may change the search path as it runs (SET search_path, set_config, EXECUTE)',
          )
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    })

    // Supabase's event trigger functions (extensions.grant_pg_net_access()) set functions'
    // search_path with ALTER FUNCTION: DDL, which changes no session's path.
    it('beside an event trigger function that sets a function’s search_path (ALTER FUNCTION … SET), whose body holds the name of a lesser login’s function outside the path: 005’s down runs', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION ${role}.search(text) RETURNS text LANGUAGE sql AS $f$ SELECT $1 $f$;
            ALTER FUNCTION ${role}.search(text) OWNER TO ${role};
            CREATE FUNCTION public.zz_nothing() RETURNS void LANGUAGE sql AS $f$ SELECT $f$;
            CREATE FUNCTION public.zz_grant_access() RETURNS event_trigger LANGUAGE plpgsql AS $f$
              BEGIN
                IF false THEN
                  ALTER FUNCTION public.zz_nothing() SECURITY DEFINER;
                  ALTER FUNCTION public.zz_nothing() SET search_path = public;
                  ALTER FUNCTION public.zz_nothing() SET SCHEMA public;
                END IF;
              END $f$;
            CREATE EVENT TRIGGER zz_issue_access ON ddl_command_end WHEN TAG IN ('CREATE EXTENSION')
              EXECUTE FUNCTION public.zz_grant_access()`
          await plant(db, role, `-- keeps the search index in step\n RAISE DEBUG 'deleted';`, setUp)
          try {
            await migrateDown(db, { allowDataLoss: true, env: {} })
          } finally {
            await sql.raw('DROP EVENT TRIGGER zz_issue_access').execute(db)
          }
          expect(await applied(db)).not.toContain(MIGRATION_005)
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })

    // Supabase's event trigger functions (extensions.grant_pg_graphql_access() and its kin) hold
    // EXECUTE as a privilege (GRANT/REVOKE EXECUTE ON …), in a comment ("executes"), in a trigger's
    // EXECUTE FUNCTION, and the body of a function they make: none of these runs dynamic SQL, so
    // none of them may change the path (a body that runs EXECUTE as a statement may).
    it('beside an event trigger function shaped as Supabase’s, that grants and revokes EXECUTE and makes functions and triggers, whose body holds the name of a lesser login’s function outside the path: 005’s down runs', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION ${role}.search(text) RETURNS text LANGUAGE sql AS $f$ SELECT $1 $f$;
            ALTER FUNCTION ${role}.search(text) OWNER TO ${role};
            CREATE FUNCTION public.zz_nothing(url text, params jsonb) RETURNS void LANGUAGE sql AS $f$ SELECT $f$;
            CREATE TABLE public.zz_notes (note text);
            CREATE FUNCTION public.zz_grant_access() RETURNS event_trigger LANGUAGE plpgsql AS $f$
              DECLARE
                cmd record;
              BEGIN
                -- This hook executes when the search extension is made, and opens its functions.
                FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
                  IF cmd.object_identity = 'zz_search' THEN
                    grant usage on schema public to postgres;
                    grant execute on all functions in schema public to postgres;
                    GRANT EXECUTE ON FUNCTION public.zz_nothing(text, jsonb) TO postgres;
                    REVOKE EXECUTE ON FUNCTION public.zz_nothing(text, jsonb) FROM PUBLIC;
                    ALTER function public.zz_nothing(url text, params jsonb) SECURITY DEFINER;
                    ALTER function public.zz_nothing(url text, params jsonb) SET search_path = public;
                    create or replace function public.zz_placeholder() returns text language plpgsql as $$
                      declare
                        server_version float;
                      begin
                        -- executes until the search extension is there
                        return 'search is not installed';
                      end;
                    $$;
                    create or replace function public.zz_search(
                        "queryText" text default null,
                        options jsonb default null
                    )
                        returns jsonb
                        language sql
                    as $$
                        select options;
                    $$;
                    CREATE TRIGGER zz_noted AFTER INSERT ON public.zz_notes
                      FOR EACH ROW EXECUTE FUNCTION public.zz_placeholder();
                    CREATE EVENT TRIGGER zz_later_access ON ddl_command_end WHEN TAG IN ('CREATE FUNCTION')
                      EXECUTE PROCEDURE public.zz_placeholder();
                  END IF;
                END LOOP;
              END $f$;
            CREATE EVENT TRIGGER zz_issue_access ON ddl_command_end WHEN TAG IN ('CREATE EXTENSION')
              EXECUTE FUNCTION public.zz_grant_access()`
          await plant(db, role, `-- keeps the search index in step\n RAISE DEBUG 'deleted';`, setUp)
          try {
            await migrateDown(db, { allowDataLoss: true, env: {} })
          } finally {
            await sql.raw('DROP EVENT TRIGGER zz_issue_access').execute(db)
          }
          expect(await applied(db)).not.toContain(MIGRATION_005)
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })

    // A body in a language other than SQL and PL/pgSQL is not read: it may run any SQL it builds,
    // a SET of the path among it, so it is taken to change the path. (Here a language of
    // PL/pgSQL's own handler under another name; its body sets nothing.)
    it('beside a trusted trigger function in another language, before another trusted trigger calls a bare name: 005’s down refuses, and never calls it', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE LANGUAGE zz_other HANDLER plpgsql_call_handler;
            CREATE FUNCTION public.zz_other() RETURNS trigger LANGUAGE zz_other AS $f$ BEGIN RETURN OLD; END $f$;
            CREATE TRIGGER zz_other AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_other();
            CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
            CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`
          await plant(db, role, 'NULL;', setUp)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String((error as Error).message)).toContain(
            `trigger zz_later on public.x402_resources reaches public.zz_later(), whose body names ${role}.helper(), owned by ${role}`,
          )
          expect(String((error as Error).message)).toContain(
            'in any schema, since public.zz_other() may change the search path as it runs',
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    })

    // Review revo O1: DDL that a reached trusted body runs with its own SET search_path fires the
    // event triggers with that path, so an event trigger function without a path of its own
    // resolves its bare names there too (here the lesser login's helper() before public's).
    it('whose body calls a trusted function with its own search_path (a lesser login’s schema first) that creates a temporary table, firing a trusted event trigger function that calls a bare name: 005’s down refuses, and never calls it', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION public.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN END $f$;
            CREATE FUNCTION public.zz_scratch() RETURNS void LANGUAGE plpgsql SET search_path = ${role}, pg_catalog, public
              AS $f$ BEGIN CREATE TEMP TABLE IF NOT EXISTS zz_scratch (id text); END $f$;
            CREATE FUNCTION public.zz_note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); END $f$;
            CREATE EVENT TRIGGER zz_note_ddl ON ddl_command_end EXECUTE FUNCTION public.zz_note_ddl()`
          try {
            await plant(db, role, 'PERFORM public.zz_scratch();', setUp)
            const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
              (e: unknown) => e,
            )
            // First: where the check lets the down run, the event trigger made the login a superuser.
            expect(await isSuperuser(db, role)).toBe(false)
            expect(String((error as Error).message)).toContain(
              `event trigger zz_note_ddl reaches public.zz_note_ddl(), whose body names ${role}.helper(), owned by ${role}`,
            )
            expect(await applied(db)).toContain(MIGRATION_005)
          } finally {
            await sql.raw('DROP EVENT TRIGGER IF EXISTS zz_note_ddl').execute(db)
          }
        })
      })
    })

    // Review revo O9: a hub table that many tables reference ON DELETE CASCADE, each with a
    // trusted trigger writing the hub, so that every trigger reaches every other's function (the
    // check's cost grew with the cube of their number). Every trigger that reaches the one
    // function naming the lesser login's helper() is named with it, once; no other is.
    it('whose body writes a hub table that 8 tables reference ON DELETE CASCADE, each with a trusted trigger writing the hub, one of which calls the lesser login’s function: 005’s down refuses, naming each trigger that reaches it once', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const children = [1, 2, 3, 4, 5, 6, 7, 8]
          const setUp = [
            'CREATE TABLE public.zz_hub (id text PRIMARY KEY, n int)',
            ...children.flatMap((i) => [
              `CREATE TABLE public.zz_child_${i} (id text REFERENCES public.zz_hub ON DELETE CASCADE)`,
              `CREATE FUNCTION public.zz_child_${i}() RETURNS trigger LANGUAGE plpgsql AS $f$
                 BEGIN UPDATE public.zz_hub SET n = n + 1 WHERE id = OLD.id; ${i === 5 ? `PERFORM ${role}.helper();` : ''} RETURN NULL; END $f$`,
              `CREATE TRIGGER zz_child_${i} AFTER DELETE ON public.zz_child_${i} FOR EACH ROW EXECUTE FUNCTION public.zz_child_${i}()`,
            ]),
            // Writes nothing: reaches no child's function.
            'CREATE TABLE public.zz_lone (id text)',
            'CREATE FUNCTION public.zz_lone() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NULL; END $f$',
            'CREATE TRIGGER zz_lone AFTER DELETE ON public.zz_lone FOR EACH ROW EXECUTE FUNCTION public.zz_lone()',
          ].join(';\n')
          await plant(db, role, 'DELETE FROM public.zz_hub WHERE id = OLD.id::text;', setUp)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          const message = String((error as Error).message)
          const named = `reaches public.zz_child_5(), whose body names ${role}.helper(), owned by ${role}`
          for (const i of children) {
            expect(message).toContain(`trigger zz_child_${i} on public.zz_child_${i} ${named}`)
          }
          expect(message).toContain(`trigger zz_audit on public.x402_resources ${named}`)
          expect(message.split(named).length - 1).toBe(children.length + 1)
          expect(message).not.toContain('zz_lone')
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    })

    it('whose body calls unqualified a lesser login’s function of a schema on the session’s search path (public): 005’s down refuses, and never calls it', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          // Its owner may replace it at any moment (it needs no CREATE on public to do so).
          const setUp = `CREATE FUNCTION public.zz_lesser_helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$;
            ALTER FUNCTION public.zz_lesser_helper() OWNER TO ${role}`
          await plant(db, role, 'PERFORM zz_lesser_helper();', setUp)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String((error as Error).message)).toContain(
            `whose body names public.zz_lesser_helper(), owned by ${role}`,
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    })

    // Review revu R1: writing a table fires its triggers (and rules) with the writer's power; a
    // table a reached body writes is covered as the app's tables are.
    it.each([
      [
        'writes a lesser login’s table (qualified, outside the path), whose trigger calls its function',
        (role: string) => [
          `INSERT INTO ${role}.audit VALUES (OLD.id::text);`,
          `CREATE TABLE ${role}.audit (id text);
           ALTER TABLE ${role}.audit OWNER TO ${role};
           CREATE TRIGGER zz_evil BEFORE INSERT ON ${role}.audit FOR EACH ROW EXECUTE FUNCTION ${role}.zz_evil()`,
          `${role}.audit`,
        ],
      ],
      [
        'writes a trusted table outside the path (quoted, with spaces), whose trigger calls a lesser login’s function',
        (role: string) => [
          `INSERT   INTO "zz_elsewhere" . "Audit" VALUES (OLD.id::text);`,
          `CREATE SCHEMA zz_elsewhere;
           CREATE TABLE zz_elsewhere."Audit" (id text);
           CREATE TRIGGER zz_evil BEFORE INSERT ON zz_elsewhere."Audit" FOR EACH ROW EXECUTE FUNCTION ${role}.zz_evil()`,
          `zz_elsewhere."Audit"`,
        ],
      ],
      [
        'writes a trusted table outside the path whose trusted trigger writes a lesser login’s table',
        (role: string) => [
          `INSERT INTO zz_elsewhere.hop VALUES (OLD.id::text);`,
          `CREATE TABLE ${role}.audit (id text);
           ALTER TABLE ${role}.audit OWNER TO ${role};
           CREATE TRIGGER zz_evil BEFORE INSERT ON ${role}.audit FOR EACH ROW EXECUTE FUNCTION ${role}.zz_evil();
           CREATE SCHEMA zz_elsewhere;
           CREATE TABLE zz_elsewhere.hop (id text);
           CREATE FUNCTION zz_elsewhere.hop() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN UPDATE ${role}.audit SET id = NEW.id; RETURN NEW; END $f$;
           CREATE TRIGGER zz_hop AFTER INSERT ON zz_elsewhere.hop FOR EACH ROW EXECUTE FUNCTION zz_elsewhere.hop()`,
          `${role}.audit`,
        ],
      ],
      // TRUNCATE … CASCADE empties every table whose key references the one named, whatever
      // its action, and fires their TRUNCATE triggers.
      [
        'truncates with CASCADE a trusted table outside the path that a lesser login’s table references, whose TRUNCATE trigger calls its function',
        (role: string) => [
          `TRUNCATE zz_elsewhere.hop CASCADE;`,
          `CREATE SCHEMA zz_elsewhere;
           CREATE TABLE zz_elsewhere.hop (id text PRIMARY KEY);
           GRANT USAGE ON SCHEMA zz_elsewhere TO ${role};
           GRANT REFERENCES ON zz_elsewhere.hop TO ${role};
           CREATE TABLE ${role}.audit (id text REFERENCES zz_elsewhere.hop);
           ALTER TABLE ${role}.audit OWNER TO ${role};
           CREATE TRIGGER zz_evil AFTER TRUNCATE ON ${role}.audit FOR EACH STATEMENT EXECUTE FUNCTION ${role}.zz_evil()`,
          // Refused before the down runs, not by the data-loss guard after it, which rolls back.
          `which writes ${role}.audit, whose trigger zz_evil calls ${role}.zz_evil(), owned by ${role}`,
        ],
      ],
      // Review revp P4: that table joins the check's scope (its owner, its triggers' WHEN).
      [
        'truncates with CASCADE a trusted table outside the path that a lesser login’s table references, whose TRUNCATE trigger’s WHEN calls its function',
        (role: string) => [
          `TRUNCATE zz_elsewhere.hop CASCADE;`,
          `CREATE SCHEMA zz_elsewhere;
           CREATE TABLE zz_elsewhere.hop (id text PRIMARY KEY);
           GRANT USAGE ON SCHEMA zz_elsewhere TO ${role};
           GRANT REFERENCES ON zz_elsewhere.hop TO ${role};
           CREATE TABLE ${role}.audit (id text REFERENCES zz_elsewhere.hop);
           ALTER TABLE ${role}.audit OWNER TO ${role}`,
          `table ${role}.audit is owned by ${role}`,
        ],
      ],
      // Review revw B1: an INSERT computes the columns' defaults with the writer's power.
      [
        'inserts into an app table (in public) whose column default calls a lesser login’s function',
        (role: string) => [
          `INSERT INTO public.zz_audit_log (id) VALUES (OLD.id::text);`,
          `CREATE FUNCTION ${role}.actor() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN 'x'; END $f$;
           ALTER FUNCTION ${role}.actor() OWNER TO ${role};
           CREATE TABLE public.zz_audit_log (id text, actor text DEFAULT ${role}.actor())`,
          `default of column actor on public.zz_audit_log calls ${role}.actor(), owned by ${role}`,
        ],
      ],
      [
        'inserts into a table outside the path whose column default calls a lesser login’s function',
        (role: string) => [
          `INSERT INTO zz_elsewhere.log (id) VALUES (OLD.id::text);`,
          LESSER_DEFAULT_LOG(role),
          `default of column actor on zz_elsewhere.log calls ${role}.actor(), owned by ${role}`,
        ],
      ],
      // Review revz Z5: an escape of an E'' string before the statement EXECUTE runs.
      [
        'inserts, through EXECUTE of an E string with a newline escape, into a table whose column default calls a lesser login’s function',
        (role: string) => [
          `EXECUTE E'\\nINSERT INTO zz_elsewhere.log (id) VALUES (''x'')';`,
          LESSER_DEFAULT_LOG(role),
          `default of column actor on zz_elsewhere.log calls ${role}.actor(), owned by ${role}`,
        ],
      ],
      // Review revp P8: an octal code followed by a letter (\011delete).
      [
        'deletes, through EXECUTE of an E string that starts with an octal tab code, from a lesser login’s table',
        (role: string) => [
          `EXECUTE E'\\011delete from ${role}.audit';`,
          LESSER_AUDIT(role),
          `${role}.audit`,
        ],
      ],
      // Review revx V1, V2: an INSERT through a view, or a rule's, fills the table's defaults.
      [
        'inserts through a view into a table whose column default calls a lesser login’s function',
        (role: string) => [
          `INSERT INTO zz_elsewhere.recent (id) VALUES (OLD.id::text);`,
          `CREATE FUNCTION ${role}.actor() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN 'x'; END $f$;
           ALTER FUNCTION ${role}.actor() OWNER TO ${role};
           CREATE SCHEMA zz_elsewhere;
           CREATE TABLE zz_elsewhere.events (id text, actor text DEFAULT ${role}.actor());
           CREATE VIEW zz_elsewhere.recent AS SELECT id FROM zz_elsewhere.events`,
          `default of column actor on zz_elsewhere.events calls ${role}.actor(), owned by ${role}`,
        ],
      ],
      [
        'inserts into a table whose rule inserts into one whose column default calls a lesser login’s function',
        (role: string) => [
          `INSERT INTO zz_elsewhere.events (id) VALUES (OLD.id::text);`,
          `CREATE FUNCTION ${role}.actor() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN 'x'; END $f$;
           ALTER FUNCTION ${role}.actor() OWNER TO ${role};
           CREATE SCHEMA zz_elsewhere;
           CREATE TABLE zz_elsewhere.events (id text);
           CREATE TABLE zz_elsewhere.events_log (id text, actor text DEFAULT ${role}.actor());
           CREATE RULE log AS ON INSERT TO zz_elsewhere.events DO ALSO INSERT INTO zz_elsewhere.events_log (id) VALUES (NEW.id)`,
          `default of column actor on zz_elsewhere.events_log calls ${role}.actor(), owned by ${role}`,
        ],
      ],
      // Review revy Y2: ON DELETE SET DEFAULT computes the referencing column's default.
      [
        'deletes from a table whose rows another references ON DELETE SET DEFAULT, with a default of a lesser login’s function',
        (role: string) => [
          `DELETE FROM zz_elsewhere.owners;`,
          `CREATE FUNCTION ${role}.fallback() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN 0; END $f$;
           ALTER FUNCTION ${role}.fallback() OWNER TO ${role};
           CREATE SCHEMA zz_elsewhere;
           CREATE TABLE zz_elsewhere.owners (id int PRIMARY KEY);
           INSERT INTO zz_elsewhere.owners VALUES (0), (1);
           CREATE TABLE zz_elsewhere.items (owner int DEFAULT ${role}.fallback() REFERENCES zz_elsewhere.owners ON DELETE SET DEFAULT);
           INSERT INTO zz_elsewhere.items VALUES (1)`,
          `default of column owner on zz_elsewhere.items calls ${role}.fallback(), owned by ${role}`,
        ],
      ],
      // Review revx V4: EXECUTE of a dollar-quoted string is a statement of its own.
      [
        'deletes from a lesser login’s table through EXECUTE of a dollar-quoted string',
        (role: string) => [
          `EXECUTE $q$DELETE FROM ${role}.audit$q$;`,
          LESSER_AUDIT(role),
          `${role}.audit`,
        ],
      ],
      // Review revr R3: a U&'' string may spell any statement, with an escape of its own choosing.
      [
        'sets its search_path through EXECUTE of a U& string with UESCAPE, which the check cannot read',
        (role: string) => [
          `EXECUTE U&'!0009SET LOCAL search_path = ${role}, public' UESCAPE '!'; PERFORM helper();`,
          '',
          'U&',
        ],
      ],
      // Review revv V1: comments are space between a statement's words and around the dot.
      [
        'writes a lesser login’s table with a block comment between INSERT and INTO',
        (role: string) => [
          `INSERT /* audit */ INTO ${role}.audit VALUES (OLD.id::text);`,
          LESSER_AUDIT(role),
          `${role}.audit`,
        ],
      ],
      [
        'writes a lesser login’s table with a line comment between DELETE and FROM',
        (role: string) => [
          `DELETE -- all\n FROM ${role}.audit;`,
          LESSER_AUDIT(role),
          `${role}.audit`,
        ],
      ],
      [
        'writes a lesser login’s table with comments around the dot',
        (role: string) => [
          `UPDATE ${role}/* x */./* y */audit SET id = OLD.id::text;`,
          LESSER_AUDIT(role),
          `${role}.audit`,
        ],
      ],
      // Review rev-final F5: PostgreSQL's block comments nest, where a regular expression's
      // comment ends at the first */: a body that holds one inside another is refused, unread.
      [
        'sets its search_path with a nested block comment after SET LOCAL, and calls it unqualified',
        (role: string) => [
          `SET LOCAL /* x /* y */ z */ search_path = ${role}, public; PERFORM helper();`,
          '',
          'a block comment inside another',
        ],
      ],
      [
        'writes a lesser login’s table with a nested block comment between INSERT and INTO',
        (role: string) => [
          `INSERT /* /* */ */ INTO ${role}.audit VALUES (OLD.id::text);`,
          LESSER_AUDIT(role),
          'a block comment inside another',
        ],
      ],
      [
        'writes a lesser login’s table with a nested block comment before the dot',
        (role: string) => [
          `DELETE FROM ${role} /* /* */ */ . audit;`,
          LESSER_AUDIT(role),
          'a block comment inside another',
        ],
      ],
      [
        'calls it qualified with a nested block comment before the dot',
        (role: string) => [
          `PERFORM ${role} /* /* */ */ . helper();`,
          '',
          'a block comment inside another',
        ],
      ],
      [
        'calls it qualified with a nested block comment, spelled with an octal code, in an E string that EXECUTE runs',
        (role: string) => [
          `EXECUTE E'SELECT ${role} /* \\057* */ */ . helper()';`,
          '',
          'a block comment inside another',
        ],
      ],
      [
        'writes a lesser login’s table named with its database (three parts)',
        (role: string) => [
          `DELETE FROM "zz_database_name".${role}.audit;`,
          LESSER_AUDIT(role),
          `${role}.audit`,
        ],
      ],
      [
        'writes a table named with a U& identifier, which the check cannot read',
        (role: string) => [`DELETE FROM ${role}.U&"\\0061udit";`, LESSER_AUDIT(role), 'U&'],
      ],
      [
        'calls a trusted BEGIN ATOMIC function that writes a lesser login’s table',
        (role: string) => [
          `PERFORM public.zz_write();`,
          `${LESSER_AUDIT(role)};
           CREATE FUNCTION public.zz_write() RETURNS void LANGUAGE sql BEGIN ATOMIC INSERT INTO ${role}.audit VALUES ('x'); END`,
          `${role}.audit`,
        ],
      ],
      [
        'sets its search_path and deletes unqualified from a lesser login’s table',
        (role: string) => [
          `SET LOCAL search_path = ${role}, public; DELETE FROM audit;`,
          `CREATE TABLE ${role}.audit (id text);
           ALTER TABLE ${role}.audit OWNER TO ${role};
           CREATE TRIGGER zz_evil BEFORE DELETE ON ${role}.audit FOR EACH STATEMENT EXECUTE FUNCTION ${role}.zz_evil()`,
          `${role}.audit`,
        ],
      ],
    ])('whose body %s: 005’s down refuses, and never runs it', async (_case, planted) => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(
            db,
          )
          const [plantedBody, tables, named] = planted(role)
          const body = plantedBody!.replace('zz_database_name', rows[0]!.name)
          const setUp = `CREATE FUNCTION ${role}.zz_evil() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN NULL; END $f$;
            ALTER FUNCTION ${role}.zz_evil() OWNER TO ${role};
            ${tables}`
          await plant(db, role, body!, setUp)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String((error as Error).message)).toContain(named!)
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    })

    it('whose body writes a trusted table outside the path, whose trigger is trusted: 005’s down runs, and writes it', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE SCHEMA zz_elsewhere;
            CREATE TABLE zz_elsewhere.audit (id text, note text);
            CREATE FUNCTION zz_elsewhere.note() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN NEW.note := 'noted'; RETURN NEW; END $f$;
            CREATE TRIGGER zz_note BEFORE INSERT ON zz_elsewhere.audit FOR EACH ROW EXECUTE FUNCTION zz_elsewhere.note()`
          await plant(db, role, 'INSERT INTO zz_elsewhere.audit VALUES (OLD.id::text);', setUp)
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
          const { rows } = await sql<{ note: string }>`SELECT note FROM zz_elsewhere.audit`.execute(
            db,
          )
          expect(rows.map((r) => r.note)).toEqual(['noted'])
        })
      })
    })

    // Review rev-final F5: comments one after another, -- comments and a '/*' string hold no
    // nested comment.
    it('whose body holds block comments one after another, -- comments and a string /*: 005’s down runs, and writes', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE SCHEMA zz_elsewhere;
            CREATE TABLE zz_elsewhere.audit (id text, note text)`
          await plant(
            db,
            role,
            `/* one */ INSERT /* two */ INTO zz_elsewhere.audit /**/ VALUES (OLD.id::text, '*/'); /*** three ***/
             -- four /* five */ six
             -- seven */
             INSERT INTO zz_elsewhere.audit VALUES ('x', '/*');`,
            setUp,
          )
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
          const { rows } = await sql<{
            note: string
          }>`SELECT note FROM zz_elsewhere.audit ORDER BY note COLLATE "C"`.execute(db)
          expect(rows.map((r) => r.note)).toEqual(['*/', '/*'])
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })

    // Review rev-last N4: a BEGIN ATOMIC body runs no DDL, so the path it runs with fires no event
    // trigger.
    it('whose body calls a trusted BEGIN ATOMIC function with its own search_path, where a lesser login may create, beside an event trigger whose function has no path of its own: 005’s down runs', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE SCHEMA zz_open;
            GRANT USAGE, CREATE ON SCHEMA zz_open TO ${role};
            CREATE FUNCTION public.zz_atomic() RETURNS int LANGUAGE sql SET search_path = zz_open, pg_catalog
              BEGIN ATOMIC SELECT 1; END;
            CREATE FUNCTION public.zz_ddl_watch() RETURNS event_trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM 1; END $f$;
            CREATE EVENT TRIGGER zz_ddl_watch ON ddl_command_end EXECUTE FUNCTION public.zz_ddl_watch()`
          await plant(db, role, 'PERFORM public.zz_atomic();', setUp)
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })

    // Review revp P6: a key with no action fires nothing of its table, but for TRUNCATE … CASCADE.
    it('whose body updates a trusted table outside the path that a lesser login’s table references with no action: 005’s down runs', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION ${role}.zz_evil() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN NULL; END $f$;
            ALTER FUNCTION ${role}.zz_evil() OWNER TO ${role};
            CREATE SCHEMA zz_elsewhere;
            CREATE TABLE zz_elsewhere.hop (id text PRIMARY KEY, seen int DEFAULT 0);
            GRANT USAGE ON SCHEMA zz_elsewhere TO ${role};
            GRANT REFERENCES ON zz_elsewhere.hop TO ${role};
            ${LESSER_AUDIT(role)};
            ALTER TABLE ${role}.audit ADD FOREIGN KEY (id) REFERENCES zz_elsewhere.hop`
          await plant(db, role, 'UPDATE zz_elsewhere.hop SET seen = seen + 1;', setUp)
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })

    // Review revv V2: a SET LOCAL lasts to the end of the transaction, so one trigger's path is
    // the path of every body that runs after it.
    it.each([
      ['with SET LOCAL', (role: string) => `SET LOCAL search_path = ${role}, public;`],
      // Review revz Z2: the session's path through pg_settings (its rule calls set_config), and a
      // SET after an escape of an E'' string that EXECUTE runs.
      [
        'through pg_settings',
        (role: string) =>
          `UPDATE pg_settings SET setting = '${role}, public' WHERE name = 'search_path';`,
      ],
      [
        'with SET LOCAL after a newline escape in an E string that EXECUTE runs',
        (role: string) => `EXECUTE E'\\nSET LOCAL search_path = ${role}, public';`,
      ],
      // Review revo O2: UPDATE ONLY, and a three-part name.
      [
        'through UPDATE ONLY pg_settings',
        (role: string) =>
          `UPDATE ONLY pg_settings SET setting = '${role}, public' WHERE name = 'search_path';`,
      ],
      [
        'through pg_settings named with the database',
        (role: string, database: string) =>
          `UPDATE "${database}".pg_catalog.pg_settings SET setting = '${role}, public' WHERE name = 'search_path';`,
      ],
      // Review revo O8: "$user" on the session's path is the role set, whose schema the body's
      // bare names then reach (and a function of that role's may RESET ROLE).
      ['through SET LOCAL ROLE', (role: string) => `SET LOCAL ROLE ${role};`],
      // Review rev-last N5: a SET string joined to the rest of the statement.
      [
        "with ' SET ' joined to the path's name",
        (role: string) => `EXECUTE ' SET ' || 'search_path = ${role}, public';`,
      ],
      [
        "with ' SET' joined to ' LOCAL …'",
        (role: string) => `EXECUTE ' SET' || ' LOCAL search_path = ${role}, public';`,
      ],
      [
        'with a dollar-quoted SET joined to the rest',
        (role: string) => `EXECUTE $x$SET$x$ || ' search_path = ${role}, public';`,
      ],
      // Review rev-final F4: a carriage return ends a -- comment too.
      [
        'with SET LOCAL after a comment ended by a carriage return',
        (role: string) => `NULL; -- note\rSET LOCAL search_path = ${role}, public;`,
      ],
      // Review rev-paths F1, F4, F2, F3: two words before AUTHORIZATION, a quoted name with no
      // space before it, a SET built by format() or ||, a name spelled by an E string's code.
      [
        'through SET LOCAL SESSION AUTHORIZATION',
        (role: string) => `SET LOCAL SESSION AUTHORIZATION ${role};`,
      ],
      [
        'with SET LOCAL and no space before a quoted name',
        (role: string) => `SET LOCAL"search_path" = ${role}, public;`,
      ],
      [
        'through UPDATE with no space before a quoted pg_settings',
        (role: string) =>
          `UPDATE"pg_settings" SET setting = '${role}, public' WHERE name = 'search_path';`,
      ],
      [
        'with SET LOCAL built by format()',
        (role: string) => `EXECUTE format('SET LOCAL %I TO %s', 'search_path', '${role}, public');`,
      ],
      [
        'with SET LOCAL built by ||',
        (role: string) => `EXECUTE 'SET' || ' LOCAL search_path = ${role}, public';`,
      ],
      [
        'with SET LOCAL whose name an octal code spells in an E string',
        (role: string) => `EXECUTE E'SET LOCAL search\\137path = ${role}, public';`,
      ],
      [
        'through UPDATE of pg_settings whose name a hex code spells in an E string',
        (role: string) =>
          `EXECUTE E'UPDATE pg\\x5fsettings SET setting = ''${role}, public'' WHERE name = ''search_path''';`,
      ],
      [
        'through set_config of role',
        (role: string) => `PERFORM set_config('role', '${role}', true);`,
      ],
      // Dynamic SQL, spelled so that no rule of a SET in a string read it: the setting's name in
      // a variable, and split between two strings (review rev-final F3). A body that EXECUTEs may
      // change the path, however it builds the statement.
      [
        "with ' SET ' joined to a variable that holds the path's name",
        (role: string) =>
          `DECLARE v text := 'search' || '_path'; BEGIN EXECUTE ' SET ' || v || ' TO ${role}, public'; END;`,
      ],
      [
        'with SET LOCAL whose name is split between two strings',
        (role: string) => `EXECUTE 'SET LOCAL search_' || 'path = ${role}, public';`,
      ],
      [
        'through set_config built as a string that FOR … IN EXECUTE runs',
        (role: string) =>
          `DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT set_' || 'config(''search_path'', ''${role}, public'', true)' LOOP END LOOP; END;`,
      ],
      [
        'through set_config built as a string that OPEN … FOR EXECUTE runs',
        (role: string) =>
          `DECLARE c refcursor; r record; BEGIN OPEN c FOR EXECUTE 'SELECT set_' || 'config(''search_path'', ''${role}, public'', true)'; FETCH c INTO r; CLOSE c; END;`,
      ],
      // An EXECUTE of a setting of the app's own (realtime.send's) is not taken as setting the
      // path, but only where the statement is that SET alone.
      [
        'in a string joined to a setting of its own that EXECUTE runs',
        (role: string) =>
          `EXECUTE 'SET LOCAL app.topic TO x' || '; SET LOCAL search_' || 'path = ${role}, public';`,
      ],
      [
        'in a string joined to a format() of a setting of its own that EXECUTE runs',
        (role: string) =>
          `EXECUTE format('SET LOCAL app.topic TO %L', 'x') || '; SET LOCAL search_' || 'path = ${role}, public';`,
      ],
    ])(
      'whose body sets the search_path %s to a lesser login’s schema, before another trusted trigger calls a bare name: 005’s down refuses, and never calls it',
      async (_case, sets: (role: string, database: string) => string) => {
        await withTestDatabase('postgres', async ({ db }) => {
          await withLoginRole(db, async (role) => {
            const setUp = `CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
            CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`
            const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(
              db,
            )
            await plant(db, role, sets(role, rows[0]!.name), setUp)
            const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
              (e: unknown) => e,
            )
            expect(String((error as Error).message)).toContain(
              `trigger zz_later on public.x402_resources reaches public.zz_later(), whose body names ${role}.helper(), owned by ${role}`,
            )
            // Review revw O1: the message says which body widened the names.
            expect(String((error as Error).message)).toContain(
              'in any schema, since public.zz_audit() may change the search path as it runs',
            )
            expect(await isSuperuser(db, role)).toBe(false)
            expect(await applied(db)).toContain(MIGRATION_005)
          })
        })
      },
    )

    // Review revp P7: the path set through a view of pg_settings, or by a column's default.
    it.each([
      [
        'updates a view of pg_settings',
        (role: string) => [
          `UPDATE public.zz_settings SET setting = '${role}, public' WHERE name = 'search_path';`,
          'CREATE VIEW public.zz_settings AS SELECT name, setting FROM pg_catalog.pg_settings',
        ],
      ],
      [
        'inserts into a table whose column default calls set_config',
        (role: string) => [
          'INSERT INTO public.zz_cfg (id) VALUES (OLD.id::text);',
          `CREATE TABLE public.zz_cfg (id text, note text DEFAULT pg_catalog.set_config('search_path', '${role}, public', true))`,
        ],
      ],
      // Review revo O3: a domain's CHECK or default, as a column default.
      [
        'inserts into a table whose column’s domain CHECK calls set_config',
        (role: string) => [
          'INSERT INTO public.zz_cfg (id) VALUES (OLD.id::text);',
          `CREATE DOMAIN public.zz_cfgd AS text CHECK (pg_catalog.set_config('search_path', '${role}, public', true) IS NOT NULL);
           CREATE TABLE public.zz_cfg (id public.zz_cfgd)`,
        ],
      ],
      [
        'inserts into a table whose column’s domain default calls set_config',
        (role: string) => [
          'INSERT INTO public.zz_cfg (id) VALUES (OLD.id::text);',
          `CREATE DOMAIN public.zz_cfgd AS text DEFAULT pg_catalog.set_config('search_path', '${role}, public', true);
           CREATE TABLE public.zz_cfg (id text, note public.zz_cfgd)`,
        ],
      ],
    ])(
      'whose body %s, setting the search_path to a lesser login’s schema, before another trusted trigger calls a bare name: 005’s down refuses, and never calls it',
      async (_case, planted) => {
        await withTestDatabase('postgres', async ({ db }) => {
          await withLoginRole(db, async (role) => {
            const [body, tables] = planted(role)
            const setUp = `${tables};
              CREATE FUNCTION public.zz_later() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN OLD; END $f$;
              CREATE TRIGGER zz_later AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_later()`
            await plant(db, role, body!, setUp)
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

    // Review revx V5: a trigger runs with the path of the function whose write fires it.
    it('whose body calls a trusted function with its own search_path (a lesser login’s schema first) that writes an app table, whose trusted trigger calls a bare name: 005’s down refuses, and never calls it', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE TABLE public.zz_log (id text);
            CREATE FUNCTION public.zz_log_note() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN NEW; END $f$;
            CREATE TRIGGER zz_log_note AFTER INSERT ON public.zz_log FOR EACH ROW EXECUTE FUNCTION public.zz_log_note();
            CREATE FUNCTION public.zz_write_log(id text) RETURNS void LANGUAGE plpgsql SET search_path = ${role}, public
              AS $f$ BEGIN INSERT INTO public.zz_log VALUES (id); END $f$`
          await plant(db, role, 'PERFORM public.zz_write_log(OLD.id::text);', setUp)
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
    })

    // Review revz Z1: what a write fires beyond the table it names (a partition's triggers, a
    // cascade's, a rule's target's) runs with the writer's path too.
    it.each([
      [
        'into a partitioned table, whose partition’s trusted trigger',
        `CREATE TABLE public.zz_log (id text) PARTITION BY LIST (id);
         CREATE TABLE public.zz_log_rest PARTITION OF public.zz_log DEFAULT;
         CREATE TRIGGER zz_log_note AFTER INSERT ON public.zz_log_rest FOR EACH ROW EXECUTE FUNCTION public.zz_log_note()`,
        'INSERT INTO public.zz_log VALUES (id);',
      ],
      [
        'deleting from a table whose rows another references ON DELETE CASCADE, whose trusted trigger',
        `CREATE TABLE public.zz_log (id text PRIMARY KEY);
         CREATE TABLE public.zz_log_child (id text REFERENCES public.zz_log ON DELETE CASCADE);
         CREATE TRIGGER zz_log_note AFTER DELETE ON public.zz_log_child FOR EACH ROW EXECUTE FUNCTION public.zz_log_note()`,
        'DELETE FROM public.zz_log WHERE zz_log.id = zz_write_log.id;',
      ],
      [
        'into a table whose rule inserts into another, whose trusted trigger',
        `CREATE TABLE public.zz_log (id text);
         CREATE TABLE public.zz_log_copy (id text);
         CREATE RULE zz_copy AS ON INSERT TO public.zz_log DO ALSO INSERT INTO public.zz_log_copy VALUES (NEW.id);
         CREATE TRIGGER zz_log_note AFTER INSERT ON public.zz_log_copy FOR EACH ROW EXECUTE FUNCTION public.zz_log_note()`,
        'INSERT INTO public.zz_log VALUES (id);',
      ],
      // Review revr R1: the written table's own code (a default, a CHECK) runs with that path too.
      [
        'into a table whose column default calls a trusted function, which',
        `CREATE FUNCTION public.zz_stamp() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN 'x'; END $f$;
         CREATE TABLE public.zz_log (id text, stamp text DEFAULT public.zz_stamp())`,
        'INSERT INTO public.zz_log (id) VALUES (id);',
      ],
      [
        'into a table whose CHECK calls a trusted function, which',
        `CREATE FUNCTION public.zz_ok(text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN true; END $f$;
         CREATE TABLE public.zz_log (id text CHECK (public.zz_ok(id)))`,
        'INSERT INTO public.zz_log (id) VALUES (id);',
      ],
      // Review revp P2, P5: the code of what the write reaches beyond the relation it names.
      [
        'into a partitioned table whose partition has a CHECK calling a trusted function, which',
        `CREATE FUNCTION public.zz_ok(text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN true; END $f$;
         CREATE TABLE public.zz_log (id text) PARTITION BY LIST (id);
         CREATE TABLE public.zz_log_rest PARTITION OF public.zz_log (CHECK (public.zz_ok(id))) DEFAULT`,
        'INSERT INTO public.zz_log VALUES (id);',
      ],
      [
        'into a table whose rule inserts into one with a CHECK calling a trusted function, which',
        `CREATE FUNCTION public.zz_ok(text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN true; END $f$;
         CREATE TABLE public.zz_log (id text);
         CREATE TABLE public.zz_log_copy (id text CHECK (public.zz_ok(id)));
         CREATE RULE zz_copy AS ON INSERT TO public.zz_log DO ALSO INSERT INTO public.zz_log_copy VALUES (NEW.id)`,
        'INSERT INTO public.zz_log VALUES (id);',
      ],
      [
        'through a view into a table with a CHECK calling a trusted function, which',
        `CREATE FUNCTION public.zz_ok(text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN true; END $f$;
         CREATE TABLE public.zz_log (id text CHECK (public.zz_ok(id)));
         CREATE VIEW public.zz_recent AS SELECT id FROM public.zz_log`,
        'INSERT INTO public.zz_recent VALUES (id);',
      ],
      [
        'into a partition directly, of a table partitioned by a trusted function, which',
        `CREATE FUNCTION public.zz_key(text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN PERFORM helper(); RETURN $1; END $f$;
         CREATE TABLE public.zz_log (id text) PARTITION BY LIST (public.zz_key(id));
         CREATE TABLE public.zz_log_rest PARTITION OF public.zz_log DEFAULT`,
        'INSERT INTO public.zz_log_rest VALUES (id);',
      ],
      // Review revp P1: a column's type's code (a domain's CHECK) runs with the writer's path too.
      [
        'into a table whose column’s domain has a CHECK calling a trusted function, which',
        `CREATE FUNCTION public.zz_ok(text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN true; END $f$;
         CREATE DOMAIN public.zz_note AS text CHECK (public.zz_ok(VALUE));
         CREATE TABLE public.zz_log (id public.zz_note)`,
        'INSERT INTO public.zz_log VALUES (id);',
      ],
      [
        'truncating with CASCADE a table another references (with no action), whose trusted TRUNCATE trigger',
        `CREATE TABLE public.zz_log (id text PRIMARY KEY);
         CREATE TABLE public.zz_log_child (id text REFERENCES public.zz_log);
         CREATE TRIGGER zz_log_note AFTER TRUNCATE ON public.zz_log_child FOR EACH STATEMENT EXECUTE FUNCTION public.zz_log_note()`,
        'TRUNCATE public.zz_log CASCADE;',
      ],
    ])(
      'whose body calls a trusted function with its own search_path (a lesser login’s schema first) that writes %s calls a bare name: 005’s down refuses, and never calls it',
      async (_case, tables, write) => {
        await withTestDatabase('postgres', async ({ db }) => {
          await withLoginRole(db, async (role) => {
            const setUp = `CREATE FUNCTION public.zz_log_note() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM helper(); RETURN NULL; END $f$;
              ${tables};
              CREATE FUNCTION public.zz_write_log(id text) RETURNS void LANGUAGE plpgsql SET search_path = ${role}, public
                AS $f$ BEGIN ${write} END $f$`
            await plant(db, role, 'PERFORM public.zz_write_log(OLD.id::text);', setUp)
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

    // Review revx R1: a BEGIN ATOMIC body prints a setting's name as 'app.tenant'::text.
    it('beside a BEGIN ATOMIC function that sets an app setting, whose body holds the name of a lesser login’s function outside the path: 005’s down runs', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION ${role}.search(text) RETURNS text LANGUAGE sql AS $f$ SELECT $1 $f$;
            ALTER FUNCTION ${role}.search(text) OWNER TO ${role};
            CREATE FUNCTION public.zz_tenant(t text) RETURNS text LANGUAGE sql
              BEGIN ATOMIC SELECT set_config('app.tenant', t, true); END`
          await plant(
            db,
            role,
            `PERFORM public.zz_tenant('a'); -- keeps the search index in step\n`,
            setUp,
          )
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })

    // Review revr R6: pgsodium's event trigger function reads pg_settings; only an UPDATE of it
    // sets the path.
    it('whose body reads pg_settings, and holds the name of a lesser login’s function outside the path: 005’s down runs', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION ${role}.search(text) RETURNS text LANGUAGE sql AS $f$ SELECT $1 $f$;
            ALTER FUNCTION ${role}.search(text) OWNER TO ${role}`
          await plant(
            db,
            role,
            `PERFORM setting FROM pg_catalog.pg_settings WHERE name = 'search_path'; -- keeps the search index in step\n`,
            setUp,
          )
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })

    // A Supabase audit table's created_by DEFAULT auth.uid(): the platform's, as a body's is.
    it('whose body inserts into an app table whose column default calls a Supabase-shaped auth.uid() (its login’s): 005’s down runs', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          await giveAuthTo(db, role)
          await migrateTo(db, MIGRATION_005, { env: {} })
          await createInstantResource(db)
          await sql
            .raw(
              `CREATE TABLE public.zz_audit_log (id text, created_by uuid DEFAULT auth.uid());
               CREATE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql AS $f$
                 BEGIN INSERT INTO public.zz_audit_log (id) VALUES (OLD.id::text); RETURN OLD; END $f$;
               CREATE TRIGGER zz_audit AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_audit()`,
            )
            .execute(db)
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
        })
      })
    })

    // Review revv V4: a BEGIN ATOMIC body depends on what it reads as on what it writes; only
    // what it writes runs that table's triggers.
    it('whose body calls a trusted BEGIN ATOMIC function that only reads a lesser login’s table: 005’s down runs', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION ${role}.zz_evil() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN NULL; END $f$;
            ALTER FUNCTION ${role}.zz_evil() OWNER TO ${role};
            ${LESSER_AUDIT(role)};
            CREATE FUNCTION public.zz_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM ${role}.audit; END`
          await plant(db, role, 'PERFORM public.zz_count();', setUp)
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
          expect(await isSuperuser(db, role)).toBe(false)
        })
      })
    })

    // Review revv V5: the message says which function writes the table that brought the code in,
    // and does not have the user take a table that is not theirs (a platform's).
    it('whose body deletes from a platform login’s table with a trigger of its own: the refusal names the function that writes it, and advises leaving the table’s owner', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          const setUp = `CREATE FUNCTION ${role}.zz_evil() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN NULL; END $f$;
            ALTER FUNCTION ${role}.zz_evil() OWNER TO ${role};
            ${LESSER_AUDIT(role)}`
          await plant(db, role, `DELETE FROM ${role}.audit WHERE id = OLD.id::text;`, setUp)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          const message = String((error as Error).message)
          expect(message).toContain(`${role}.audit (written by public.zz_audit())`)
          expect(message).toContain('leave its owner as it is')
          // Review revw O1: never advise taking a platform's code.
          expect(message).toContain("never a platform's")
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    })

    // Review revz Z4: the platform's auth is in a schema a superuser owns (Supabase's
    // supabase_admin); one a lesser login made itself is its code.
    it('whose body calls auth.uid() of a schema auth that a lesser login made (the schema and auth.users its own): 005’s down refuses, and never calls it', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          await giveAuthTo(db, role, true)
          await migrateTo(db, MIGRATION_005, { env: {} })
          await createInstantResource(db)
          await sql
            .raw(
              `CREATE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql AS $f$
               BEGIN PERFORM auth.uid(); RETURN OLD; END $f$;
             CREATE TRIGGER zz_audit AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_audit()`,
            )
            .execute(db)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String((error as Error).message)).toContain(
            `whose body names auth.uid(), owned by ${role}`,
          )
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    })

    // Review revr R4: auth.uid()'s body calls current_setting() unqualified, with its caller's path.
    it('whose body calls a trusted function whose own search_path puts a lesser login’s schema before pg_catalog, which calls a Supabase-shaped auth.uid(): 005’s down refuses, and never calls the login’s current_setting()', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          await giveAuthTo(db, role)
          const setUp = `CREATE FUNCTION ${role}.current_setting(text, boolean) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN RETURN NULL; END $f$;
            ALTER FUNCTION ${role}.current_setting(text, boolean) OWNER TO ${role};
            CREATE FUNCTION public.zz_who() RETURNS uuid LANGUAGE plpgsql SET search_path = ${role}, pg_catalog, public
              AS $f$ BEGIN RETURN auth.uid(); END $f$`
          await plant(db, role, 'PERFORM public.zz_who();', setUp)
          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (e: unknown) => e,
          )
          expect(String((error as Error).message)).toContain(
            `whose body names ${role}.current_setting(text,boolean), owned by ${role}`,
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(await applied(db)).toContain(MIGRATION_005)
        })
      })
    })

    it('whose body calls only trusted functions: 005’s down runs, and a Supabase-shaped auth.uid() (its login’s) is not refused', async () => {
      await withTestDatabase('postgres', async ({ db }) => {
        await withLoginRole(db, async (role) => {
          // As on Supabase: auth and its functions belong to the login GoTrue uses (as a policy's
          // auth.uid(), a trigger body's is the platform's, as the stand-in takes it).
          await giveAuthTo(db, role)
          await migrateTo(db, MIGRATION_005, { env: {} })
          await createInstantResource(db)
          await sql
            .raw(
              `CREATE FUNCTION public.zz_trusted() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN NULL; END $f$;
             CREATE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql AS $f$
               BEGIN PERFORM public.zz_trusted(); PERFORM auth.uid(); PERFORM now(); RETURN OLD; END $f$;
             CREATE TRIGGER zz_audit AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_audit()`,
            )
            .execute(db)
          await migrateDown(db, { allowDataLoss: true, env: {} })
          expect(await applied(db)).not.toContain(MIGRATION_005)
        })
      })
    })
  },
)
