import { randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  findPostgresBinaries,
  type ScratchCluster,
  startScratchCluster,
} from '../src/rehearsal/scratch-cluster.js'
import { createDb, migrateTo, type Rehearsal } from '../src/tooling.js'
import { cli } from './support/cli.js'
import { BEFORE_005 } from './support/migration-names.js'

// A rehearsal never runs the target's code with more power than its author had, and creates no
// role or login user on the target's server. The target here is a server of the test's own (a
// cluster it starts), so that what the rehearsal does to the target's server can be seen in full.

const canStartClusters = findPostgresBinaries().length > 0
const testServer = process.env.TEST_DATABASE_URL

/** The target cluster's connection string, on `database`. */
function on(cluster: ScratchCluster, database: string): string {
  const url = new URL(cluster.connectionString)
  url.pathname = `/${database}`
  return url.toString()
}

async function query<T extends pg.QueryResultRow>(
  connectionString: string,
  text: string,
): Promise<T[]> {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    return (await client.query<T>(text)).rows
  } finally {
    await client.end()
  }
}

const roles = async (connectionString: string) =>
  (
    await query<{ rolname: string }>(connectionString, 'SELECT rolname FROM pg_roles ORDER BY 1')
  ).map((row) => row.rolname)

/** migrate:plan as a user runs it, on `target`, with only `env` naming servers. */
const plan = (args: string[], target: string, env: NodeJS.ProcessEnv = {}) =>
  cli(
    args,
    {
      PGLITE_DATA_DIR: '',
      MIGRATION_DATABASE_URL: target,
      REHEARSAL_DATABASE_URL: undefined,
      ...env,
    },
    'src/cli/migrate-plan.ts',
  )

describe.skipIf(!canStartClusters)(
  `migrate:plan against a target server${canStartClusters ? '' : ' (skipped: no PostgreSQL server binaries on this machine)'}`,
  () => {
    let target: ScratchCluster
    beforeAll(async () => {
      target = await startScratchCluster()
    })
    afterAll(async () => {
      await target?.stop()
    })

    it("creates no role, login user or database on the target's server, which has no Supabase roles", async () => {
      await query(target.connectionString, 'CREATE DATABASE plain_app')
      const before = await roles(target.connectionString)
      expect(before).not.toContain('anon')

      const run = await plan(['--json', '--max-rows=50'], on(target, 'plain_app'))
      expect(run.stderr).not.toMatch(/failed/)
      expect(run.code).toBe(0)
      expect((JSON.parse(run.stdout) as Rehearsal).scratch).toBe('postgres')

      expect(await roles(target.connectionString)).toEqual(before)
      const databases = await query<{ datname: string }>(
        target.connectionString,
        "SELECT datname FROM pg_database WHERE datname LIKE 'x402%'",
      )
      expect(databases).toEqual([])
    })

    it("refuses REHEARSAL_DATABASE_URL naming the target's own server, before creating anything", async () => {
      const before = await roles(target.connectionString)
      const run = await plan(['--max-rows=50'], on(target, 'plain_app'), {
        REHEARSAL_DATABASE_URL: target.connectionString,
      })
      expect(run.code).toBe(1)
      expect(run.stderr).toMatch(/REHEARSAL_DATABASE_URL names the target's own server/)
      expect(await roles(target.connectionString)).toEqual(before)
    })

    describe('with --copy-schema, a trigger that a user who may create triggers on x402_resources wrote', () => {
      const mallory = `mallory_${randomBytes(3).toString('hex')}`
      const pwned = `x402_pwned_${randomBytes(3).toString('hex')}`
      // Where the server's OS user may write: a superuser's COPY TO PROGRAM would leave this file.
      const markers = mkdtempSync(join(tmpdir(), 'x402-pwned-'))
      chmodSync(markers, 0o1777)
      let app: string

      beforeAll(async () => {
        await query(target.connectionString, 'CREATE DATABASE shaped_app')
        app = on(target, 'shaped_app')
        const db = createDb({ connectionString: app })
        try {
          await migrateTo(db, BEFORE_005)
        } finally {
          await db.destroy()
        }
        // The trigger tries to make its author a superuser, to create a superuser, and to run a
        // program; it records, as an empty table the rehearsal reports, whom it ran as. Its author's
        // right to create in public is taken back after: while a login role has it, every command
        // refuses before it runs anything (shadowed-catalog.test.ts).
        await query(
          app,
          `CREATE ROLE ${mallory} LOGIN;
         GRANT TRIGGER ON x402_resources TO ${mallory};
         GRANT CREATE ON SCHEMA public TO ${mallory};
         SET ROLE ${mallory};
         CREATE FUNCTION public.audit_resource() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           BEGIN EXECUTE 'ALTER ROLE ${mallory} SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
           BEGIN EXECUTE 'CREATE ROLE ${pwned} SUPERUSER LOGIN'; EXCEPTION WHEN OTHERS THEN NULL; END;
           BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch ${markers}/' || current_database()); EXCEPTION WHEN OTHERS THEN NULL; END;
           EXECUTE format('CREATE TABLE IF NOT EXISTS public.%I ()',
             'ran_as_' || current_user || '_' || (SELECT rolsuper FROM pg_roles WHERE rolname = current_user));
           RETURN NEW;
         END $$;
         CREATE TRIGGER audit_resource BEFORE INSERT ON x402_resources FOR EACH ROW EXECUTE FUNCTION public.audit_resource();
         RESET ROLE;
         REVOKE CREATE ON SCHEMA public FROM ${mallory};`,
        )
      })
      afterAll(async () => {
        rmSync(markers, { recursive: true, force: true })
        // Only where a rehearsal let the trigger create it: a role of this test's own.
        if (testServer) await query(testServer, `DROP ROLE IF EXISTS ${pwned}`)
      })

      const servers: [string, string | undefined][] = [['a scratch cluster', undefined]]
      if (testServer) servers.push(['the server named for rehearsals', testServer])
      it.each(servers)(
        'runs it as an unprivileged role, on %s: its author gains nothing',
        async (_where, rehearsalServer) => {
          const run = await plan(['--json', '--copy-schema', '--max-rows=50'], app, {
            REHEARSAL_DATABASE_URL: rehearsalServer,
          })
          expect(run.stderr).not.toMatch(/failed/)
          expect(run.code).toBe(0)
          const report = JSON.parse(run.stdout) as Rehearsal
          expect(report.schema).toBe('copied from the target')
          // The trigger did run, on the rows the rehearsal put in, as the scratch database's own role.
          expect(report.tables).toContainEqual(
            expect.stringMatching(/^ran_as_x402_rehearsal_\d+_\d+_[0-9a-f]+_false$/),
          )

          const [author] = await query<{ rolsuper: boolean }>(
            target.connectionString,
            `SELECT rolsuper FROM pg_roles WHERE rolname = '${mallory}'`,
          )
          expect(author!.rolsuper).toBe(false)
          expect(await roles(target.connectionString)).not.toContain(pwned)
          if (testServer) expect(await roles(testServer)).not.toContain(pwned)
          expect(readdirSync(markers)).toEqual([])
        },
      )
    })
  },
)
