import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

import { sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { exportMigrationSql, migrateTo } from '../src/tooling.js'
import { snapshotPublicSchema } from '../src/schema/snapshot.js'
import { createInstantResource, createResource, createUser } from './support/fixtures.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { MIGRATION_002, MIGRATION_005 } from './support/migration-names.js'
import { withScriptFile } from './support/exported-script.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// The SQL Editor runs no runner: the script of `npm run migrate:sql -- 002 --down` would drop
// x402_user_claude_configs, with every stored Claude key, and commit. Each exported down that
// drops a table or a column refuses in SQL, naming what it would destroy, unless the session set
// x402.allow_data_loss = on; then it copies the tables concerned to x402_backup first.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

async function runScript(connectionString: string, script: string): Promise<string | undefined> {
  const client = new pg.Client(connectionString)
  await client.connect()
  try {
    await client.query(script)
    return undefined
  } catch (error) {
    return (error as Error).message
  } finally {
    await client.end()
  }
}

/** The script with its one marked line edited to opt in, as its comment tells the reader. */
function optedIn(script: string): string {
  expect(script.match(/x402\.allow_data_loss = off/g)).toHaveLength(1)
  return script.replace('x402.allow_data_loss = off', 'x402.allow_data_loss = on')
}

describe.skipIf(skipReason)('the SQL Editor script of a down that drops data', () => {
  it('refuses for 002 and 001, and with x402.allow_data_loss = on backs the data up first', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const url = serverUrl(location)
      await migrateTo(db, '002_add_claude_integration')
      const userId = await createUser(db)
      await sql`INSERT INTO x402_user_claude_configs (user_id, api_key_encrypted) VALUES (${userId}, 'iv:secret')`.execute(
        db,
      )
      const resourceId = await createResource(db, { pt_system_prompt: 'You are terse.' } as never)
      const present = async () =>
        (
          await sql<{
            present: boolean
          }>`SELECT to_regclass('public.x402_user_claude_configs') IS NOT NULL AS present`.execute(
            db,
          )
        ).rows[0]!.present
      const backups = async (prefix: string) =>
        (
          await sql<{
            name: string
          }>`SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                      WHERE n.nspname = 'x402_backup' AND c.relname LIKE ${`${prefix}%`}`.execute(
            db,
          )
        ).rows.map((row) => row.name)

      const down002 = await exportMigrationSql('002_add_claude_integration', 'down')
      expect(await runScript(url, down002)).toMatch(
        /^Rolling back 002_add_claude_integration would destroy data: table public\.x402_user_claude_configs \(dropped\): 1 row\(s\)\. Nothing was changed\./,
      )
      expect(await present()).toBe(true)

      // A default of the database or role, or the session's, does not opt in: only the script's line does.
      expect(await runScript(url, `SET x402.allow_data_loss = on;\n${down002}`)).toMatch(
        /^Rolling back 002_add_claude_integration would destroy data: /,
      )
      expect(await present()).toBe(true)
      expect(await runScript(url, optedIn(down002))).toBeUndefined()
      expect(await present()).toBe(false)
      const [keysBackup, ...more] = await backups('002_x402_user_claude_configs_')
      expect(more).toEqual([])
      const { rows: keys } = await sql<{ user_id: string; api_key_encrypted: string }>`
        SELECT user_id, api_key_encrypted FROM ${sql.id('x402_backup', keysBackup!)}`.execute(db)
      expect(keys).toEqual([{ user_id: userId, api_key_encrypted: 'iv:secret' }])

      const down001 = await exportMigrationSql('001_add_prompt_template_fields', 'down')
      const refusal = await runScript(url, down001)
      expect(refusal).toMatch(/^Rolling back 001_add_prompt_template_fields would destroy data: /)
      expect(refusal).toContain(
        'column public.x402_resources.pt_system_prompt (dropped): 1 value(s)',
      )
      const { rows: columns } = await sql<{ count: number }>`
        SELECT count(*)::int AS count FROM information_schema.columns WHERE table_name = 'x402_resources' AND column_name LIKE 'pt\\_%'`.execute(
        db,
      )
      expect(columns[0]!.count).toBe(5)

      expect(await runScript(url, optedIn(down001))).toBeUndefined()
      const [resourcesBackup] = await backups('001_x402_resources_')
      const { rows: saved } = await sql<{ pt_system_prompt: string }>`
        SELECT pt_system_prompt FROM ${sql.id('x402_backup', resourcesBackup!)} WHERE id = ${resourceId}`.execute(
        db,
      )
      expect(saved).toEqual([{ pt_system_prompt: 'You are terse.' }])
    })
  })

  it('adds no guard where the down drops nothing, and leaves 005 to its own', async () => {
    expect(await exportMigrationSql('001_add_prompt_template_fields', 'up')).not.toContain(
      '$guard$',
    )
    const down005 = await exportMigrationSql('005_add_openrouter_integration', 'down')
    expect(down005).not.toContain('$guard$')
    expect(down005).toContain('x402.allow_data_loss')
  })
})

// psql goes on after an error unless ON_ERROR_STOP is set: the header's advice alone would let
// the statements after a refusal run. A refused down must change nothing whoever runs it.
describe.skipIf(skipReason)(
  'an exported down script run with psql -f, without ON_ERROR_STOP',
  () => {
    /** psql's output, as a reader runs the script: no psqlrc, no variables set on the command line. */
    function psql(url: string, script: string): Promise<string> {
      // From a file: psql stops reading at the script's refusal, and a script larger than a
      // pipe's buffer written to its stdin failed with EPIPE.
      return withScriptFile(script, (file) => {
        const run = spawnSync('psql', ['-X', '-q', '-d', url, '-f', file], { encoding: 'utf8' })
        if (run.error) throw run.error
        return run.stderr
      })
    }

    it("stops at 005's refusal: its later steps, outside a transaction, do not run", async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, MIGRATION_005)
        const userId = await createUser(db)
        await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
          db,
        )
        const schema = await snapshotPublicSchema(db)

        const output = await psql(
          serverUrl(location),
          await exportMigrationSql(MIGRATION_005, 'down'),
        )

        expect(output).toContain('Rolling back 005_add_openrouter_integration would destroy data')
        const { rows } = await sql<{ present: boolean }>`
        SELECT to_regclass('public.idx_x402_resources_openrouter_model') IS NOT NULL AS present`.execute(
          db,
        )
        expect(rows).toEqual([{ present: true }])
        expect(await snapshotPublicSchema(db)).toEqual(schema)
      })
    })

    it('changes nothing with a transactional script either: its refusal aborts the transaction', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, MIGRATION_002)
        const userId = await createUser(db)
        await sql`INSERT INTO x402_user_claude_configs (user_id, api_key_encrypted) VALUES (${userId}, 'iv:secret')`.execute(
          db,
        )
        const schema = await snapshotPublicSchema(db)

        const output = await psql(
          serverUrl(location),
          await exportMigrationSql(MIGRATION_002, 'down'),
        )

        expect(output).toContain('Rolling back 002_add_claude_integration would destroy data')
        expect(await snapshotPublicSchema(db)).toEqual(schema)
      })
    })
  },
)

// Review revp P1: the guard counts with the server's row counters, which count nothing where
// track_counts is off; 005's script, whose checks are its own, ran on with them blind.
describe.skipIf(skipReason)('an exported down script with track_counts off', () => {
  it.each([MIGRATION_002, MIGRATION_005])(
    'of %s refuses before it changes anything',
    async (name) => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, name)
        const script = await exportMigrationSql(name, 'down')
        const before = await snapshotPublicSchema(db)
        // As a reader runs it, with psql -f (005's holds psql's own commands).
        const refusal = await withScriptFile(`SET track_counts = off;\n${script}`, (file) => {
          const run = spawnSync('psql', ['-X', '-q', '-d', serverUrl(location), '-f', file], {
            encoding: 'utf8',
          })
          if (run.error) throw run.error
          return run.stderr
        })
        expect(refusal).toContain('track_counts is off')
        expect(await snapshotPublicSchema(db)).toEqual(before)
      })
    },
  )
})

// Review revq Q4: 005's script runs in several transactions, and checked track_counts once, at
// its start: counters turned off between two of its steps (a reload of postgresql.conf, a
// superuser's SET) left the later steps' checks blind.
describe.skipIf(skipReason)(
  'the exported down script of 005 with track_counts off after its first step',
  () => {
    it('refuses in the next step', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, MIGRATION_005)
        const script = await exportMigrationSql(MIGRATION_005, 'down')
        const firstCommit = script.indexOf('\nCOMMIT;\n')
        expect(firstCommit).toBeGreaterThan(0)
        const cut = firstCommit + '\nCOMMIT;\n'.length
        // As a reader runs it, with psql -f (it holds psql's own commands).
        const refusal = await withScriptFile(
          `${script.slice(0, cut)}SET track_counts = off;\n${script.slice(cut)}`,
          (file) => {
            const run = spawnSync('psql', ['-X', '-q', '-d', serverUrl(location), '-f', file], {
              encoding: 'utf8',
            })
            if (run.error) throw run.error
            return run.stderr
          },
        )
        expect(refusal).toContain('track_counts is off')
      })
    })
  },
)

// Review revq Q1: the track_counts check ran first in each script, calling current_setting
// unqualified: a lesser login's schema before pg_catalog on the path ran its own as the reader.
describe.skipIf(skipReason)(
  'an exported down script with a lesser schema first on the path',
  () => {
    it('runs none of its functions before the search_path check refuses', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, MIGRATION_002)
        const role = `x402_test_path_${randomBytes(4).toString('hex')}`
        await sql.raw(`CREATE ROLE ${role} LOGIN NOSUPERUSER`).execute(db)
        try {
          await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
          await db.transaction().execute(async (trx) => {
            await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
            await sql.raw(`CREATE SEQUENCE ${role}.calls`).execute(trx)
            await sql.raw(`GRANT USAGE ON SCHEMA ${role} TO PUBLIC`).execute(trx)
            await sql.raw(`GRANT ALL ON SEQUENCE ${role}.calls TO PUBLIC`).execute(trx)
            await sql
              .raw(
                `CREATE FUNCTION ${role}.current_setting(text) RETURNS text LANGUAGE plpgsql AS $f$
               BEGIN PERFORM pg_catalog.nextval('${role}.calls'); RETURN pg_catalog.current_setting($1); END $f$`,
              )
              .execute(trx)
          })
          const script = await exportMigrationSql(MIGRATION_002, 'down')
          const refusal = await runScript(
            serverUrl(location),
            `SET search_path = ${role}, pg_catalog, public;\n${script}`,
          )
          expect(refusal).toContain(`schema ${role} comes before pg_catalog`)
          const { rows } = await sql
            .raw<{ n: number }>(
              `SELECT CASE WHEN is_called THEN last_value ELSE 0 END::int AS n FROM ${role}.calls`,
            )
            .execute(db)
          expect(rows).toEqual([{ n: 0 }])
        } finally {
          await sql.raw(`DROP SCHEMA ${role} CASCADE`).execute(db)
          await sql.raw(`DROP ROLE ${role}`).execute(db)
        }
      })
    })
  },
)

// Review revs S2: a trusted PL/pgSQL trigger function whose body calls a lesser login's function
// by name ran it as the reader during 005's exported down (the login made itself a superuser).
// Review revu R1: a trusted trigger function whose body writes a lesser login's table fired that
// table's trigger, the login's function, as the reader.
describe.skipIf(skipReason)(
  'the exported down script of 005 with a trusted trigger whose body writes a lesser login’s table',
  () => {
    it('refuses before it deletes, naming the table, and never fires its trigger', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, MIGRATION_005)
        await createInstantResource(db)
        await withLesserRole(
          db,
          'x402_test_writes',
          async (role) => {
            await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
            await db.transaction().execute(async (trx) => {
              await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
              await sql
                .raw(
                  `CREATE TABLE ${role}.audit (id text);
                   CREATE FUNCTION ${role}.evil() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN NEW; END $f$;
                   CREATE TRIGGER zz_evil BEFORE INSERT ON ${role}.audit FOR EACH ROW EXECUTE FUNCTION ${role}.evil();
                   GRANT USAGE ON SCHEMA ${role} TO PUBLIC;
                   GRANT INSERT ON ${role}.audit TO PUBLIC`,
                )
                .execute(trx)
            })
            await sql
              .raw(
                `CREATE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN INSERT INTO ${role}.audit VALUES (OLD.id::text); RETURN OLD; END $f$;
                 CREATE TRIGGER zz_audit AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_audit()`,
              )
              .execute(db)
            const script = optedIn(await exportMigrationSql(MIGRATION_005, 'down'))
            const output = await withScriptFile(script, (file) => {
              const run = spawnSync('psql', ['-X', '-q', '-d', serverUrl(location), '-f', file], {
                encoding: 'utf8',
              })
              if (run.error) throw run.error
              return run.stderr
            })
            // The trigger of the table it writes is found in the pass that reads the body (review revv V6).
            expect(output).toContain(`whose body writes ${role}.audit, whose trigger`)
            expect(await isSuperuser(db, role)).toBe(false)
            const { rows } = await sql<{ n: number }>`
              SELECT count(*)::int AS n FROM x402_resources WHERE resource_type = 'openrouter_instant'`.execute(
              db,
            )
            expect(rows).toEqual([{ n: 1 }])
            await sql.raw('DROP TRIGGER zz_audit ON public.x402_resources').execute(db)
            await sql.raw(`DROP SCHEMA ${role} CASCADE`).execute(db)
          },
          { login: true },
        )
      })
    })
  },
)

describe.skipIf(skipReason)(
  'the exported down script of 005 with a trusted trigger whose body calls a lesser login’s function',
  () => {
    it('refuses before it deletes, naming the function and its owner, and never calls it', async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, MIGRATION_005)
        await createInstantResource(db)
        await withLesserRole(
          db,
          'x402_test_opaque',
          async (role) => {
            await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
            await sql
              .raw(
                `CREATE FUNCTION public.zz_audit() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM ${role}.helper(); RETURN OLD; END $f$;
                 CREATE TRIGGER zz_audit AFTER DELETE ON public.x402_resources FOR EACH ROW EXECUTE FUNCTION public.zz_audit()`,
              )
              .execute(db)
            await db.transaction().execute(async (trx) => {
              await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
              await sql
                .raw(
                  `CREATE FUNCTION ${role}.helper() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} END $f$`,
                )
                .execute(trx)
              await sql.raw(`GRANT USAGE ON SCHEMA ${role} TO PUBLIC`).execute(trx)
            })
            const script = optedIn(await exportMigrationSql(MIGRATION_005, 'down'))
            // As a reader runs it, with psql -f (it holds psql's own commands).
            const output = await withScriptFile(script, (file) => {
              const run = spawnSync('psql', ['-X', '-q', '-d', serverUrl(location), '-f', file], {
                encoding: 'utf8',
              })
              if (run.error) throw run.error
              return run.stderr
            })
            expect(output).toContain(`whose body names ${role}.helper(), owned by ${role}`)
            expect(await isSuperuser(db, role)).toBe(false)
            const { rows } = await sql<{ n: number }>`
              SELECT count(*)::int AS n FROM x402_resources WHERE resource_type = 'openrouter_instant'`.execute(
              db,
            )
            expect(rows).toEqual([{ n: 1 }])
            await sql.raw('DROP TRIGGER zz_audit ON public.x402_resources').execute(db)
          },
          { login: true },
        )
      })
    })
  },
)
