import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  findPostgresBinaries,
  type ScratchCluster,
  startScratchCluster,
} from '../src/rehearsal/scratch-cluster.js'
import { createServerScratch, sweepScratchDatabases } from '../src/rehearsal/scratch-database.js'
import { createDb, migrateTo, type Rehearsal } from '../src/tooling.js'
import { cli } from './support/cli.js'
import { BEFORE_005 } from './support/migration-names.js'

// The scratch database's role runs the target's triggers, and any role may change its own
// password: the author of a trigger could set a password of its own and log in to the rehearsal
// server as that role, then hold a session there so that the role could not be dropped, and keep
// the login for good (review revs S1). The rehearsal server here is a cluster of the test's own,
// whose sessions the test can see in full; it asks for a password of every role (scram).

const canStartClusters = findPostgresBinaries().length > 0

/** The cluster's connection string, on `database`, as `user` with `password` where given. */
function on(cluster: ScratchCluster, database: string, user?: string, password?: string): string {
  const url = new URL(cluster.connectionString)
  url.pathname = `/${database}`
  if (user !== undefined) url.username = user
  if (password !== undefined) url.password = password
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

/** migrate:plan as a user runs it, on `target`, rehearsing on `rehearsal`. */
const plan = (args: string[], target: string, rehearsal: string) =>
  cli(
    args,
    { PGLITE_DATA_DIR: '', MIGRATION_DATABASE_URL: target, REHEARSAL_DATABASE_URL: rehearsal },
    'src/cli/migrate-plan.ts',
  )

describe.skipIf(!canStartClusters)(
  `the scratch role of a rehearsal with --copy-schema${canStartClusters ? '' : ' (skipped: no PostgreSQL server binaries on this machine)'}`,
  () => {
    let target: ScratchCluster
    let rehearsal: ScratchCluster
    let app: string
    const password = `pwned-${randomBytes(6).toString('hex')}`

    beforeAll(async () => {
      ;[target, rehearsal] = await Promise.all([startScratchCluster(), startScratchCluster()])
      await query(target.connectionString, 'CREATE DATABASE shaped_app')
      app = on(target, 'shaped_app')
      const db = createDb({ connectionString: app })
      try {
        await migrateTo(db, BEFORE_005)
      } finally {
        await db.destroy()
      }
      // The seed rows of ai_models (a statement of their own, committed) set the role's password;
      // those of x402_resources, inserted next, wait (within a bound) until the test has logged in
      // with it, or was refused, so that the rehearsal is still running when it tries.
      await query(
        app,
        `CREATE FUNCTION public.take_login() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           EXECUTE format('ALTER ROLE %I PASSWORD %L', current_user, '${password}');
           RETURN NULL;
         END $$;
         CREATE TRIGGER take_login AFTER INSERT ON ai_models FOR EACH STATEMENT EXECUTE FUNCTION public.take_login();
         CREATE FUNCTION public.await_login() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           FOR i IN 1..1200 LOOP
             -- Else the transaction sees the sessions of its first look only.
             PERFORM pg_stat_clear_snapshot();
             EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity
               WHERE application_name IN ('x402-test-attacker', 'x402-test-refused'));
             PERFORM pg_sleep(0.05);
           END LOOP;
           RETURN NULL;
         END $$;
         CREATE TRIGGER await_login AFTER INSERT ON x402_resources FOR EACH STATEMENT EXECUTE FUNCTION public.await_login();`,
      )
    })
    afterAll(async () => {
      await Promise.all([target?.stop(), rehearsal?.stop()])
    })

    it('gives the password its trigger set no login that outlasts the rehearsal, nor any while it runs', async () => {
      let finished = false
      const running = plan(
        ['--json', '--copy-schema', '--max-rows=50'],
        app,
        rehearsal.connectionString,
      ).finally(() => {
        finished = true
      })
      // The trigger's author, as the review did: logs in as the scratch role with the password it
      // set, and holds a temporary table there, which keeps the role from being dropped.
      let attacker: pg.Client | undefined
      let attackerError: unknown
      let refused: string | undefined
      let unblock: pg.Client | undefined
      let role: string | undefined
      while (!finished && !attacker && !refused) {
        role ??= (
          await query<{ rolname: string }>(
            rehearsal.connectionString,
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'x402\\_rehearsal\\_%'",
          )
        )[0]?.rolname
        if (role) {
          const client = new pg.Client({
            connectionString: on(rehearsal, 'postgres', role, password),
            application_name: 'x402-test-attacker',
          })
          client.on('error', (error) => {
            attackerError = error
          })
          try {
            await client.connect()
            await client.query('CREATE TEMP TABLE hold (i int)')
            attacker = client
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error)
            // Before the trigger ran, the password is the rehearsal's own.
            if (!/password authentication failed/.test(message)) refused = message
          }
        }
        if (!attacker && !refused) await sleep(20)
      }
      if (refused) {
        unblock = new pg.Client({
          connectionString: rehearsal.connectionString,
          application_name: 'x402-test-refused',
        })
        await unblock.connect()
      }
      const run = await running
      await unblock?.end()

      expect(run.stderr).not.toMatch(/failed/)
      expect(run.code).toBe(0)
      const report = JSON.parse(run.stdout) as Rehearsal
      expect(report.seeded.map((seeded) => seeded.table)).toEqual(
        expect.arrayContaining(['ai_models', 'x402_resources']),
      )
      expect(role).toBeDefined()
      // The role is gone, and the session that its new password opened was ended.
      expect(
        await query(
          rehearsal.connectionString,
          "SELECT rolname FROM pg_roles WHERE rolname LIKE 'x402\\_rehearsal\\_%'",
        ),
      ).toEqual([])
      if (attacker) {
        await expect(attacker.query('SELECT 1')).rejects.toThrow()
        expect(String(attackerError)).toMatch(/terminat/)
      }
      // And while the rehearsal ran, the password gave no login either.
      expect(attacker).toBeUndefined()
      expect(refused).toMatch(/not permitted to log in/)
    })
  },
)

describe.skipIf(!canStartClusters)(
  `a scratch role whose password its own code changed, when the rehearsal ends${canStartClusters ? '' : ' (skipped: no PostgreSQL server binaries on this machine)'}`,
  () => {
    let server: ScratchCluster
    const password = `pwned-${randomBytes(6).toString('hex')}`
    beforeAll(async () => {
      server = await startScratchCluster()
    })
    afterAll(async () => {
      await server?.stop()
    })

    const loginRoles = (name: string) =>
      query<{ rolcanlogin: boolean }>(
        server.connectionString,
        `SELECT rolcanlogin FROM pg_roles WHERE rolname = '${name}'`,
      )

    /**
     * As code the role ran could: gives the role a password of its own, logs in with it to the
     * server's own database, and holds a temporary table there. Returns the session, and what
     * ended it.
     */
    async function holdLogin(scratch: { name: string; connectionString: string }) {
      await query(scratch.connectionString, `ALTER ROLE ${scratch.name} PASSWORD '${password}'`)
      const ended: unknown[] = []
      const client = new pg.Client({
        connectionString: on(server, 'postgres', scratch.name, password),
      })
      client.on('error', (error) => ended.push(error))
      await client.connect()
      await client.query('CREATE TEMP TABLE hold (i int)')
      return { client, ended }
    }

    it('drop() ends its sessions on every database and drops it', async () => {
      const scratch = await createServerScratch(server.connectionString)
      const { client, ended } = await holdLogin(scratch)
      await scratch.drop()
      expect(await loginRoles(scratch.name)).toEqual([])
      await expect(client.query('SELECT 1')).rejects.toThrow()
      expect(String(ended[0])).toMatch(/terminat/)
    })

    it('the sweep of a leftover role ends its sessions and drops it', async () => {
      const scratch = await createServerScratch(server.connectionString)
      const { client } = await holdLogin(scratch)
      // A rehearsal killed after it dropped its database, before its role.
      await query(server.connectionString, `DROP DATABASE ${scratch.name} WITH (FORCE)`)
      await sweepScratchDatabases(server.connectionString, 0)
      expect(await loginRoles(scratch.name)).toEqual([])
      await expect(client.query('SELECT 1')).rejects.toThrow()
      await scratch.drop()
    })

    // Review revt F3: the role owns its database, and may mark it a template, which DROP DATABASE
    // refuses: the target's copied schema stayed on the server, for anyone with CREATEDB to clone.
    it('drop() and the sweep drop a scratch database its own role marked a template', async () => {
      const scratch = await createServerScratch(server.connectionString)
      await query(scratch.connectionString, `ALTER DATABASE ${scratch.name} IS_TEMPLATE true`)
      await scratch.drop()
      const left = () =>
        query(
          server.connectionString,
          `SELECT datname FROM pg_database WHERE datname = '${scratch.name}'
           UNION ALL SELECT rolname FROM pg_roles WHERE rolname = '${scratch.name}'`,
        )
      expect(await left()).toEqual([])

      const leftover = await createServerScratch(server.connectionString)
      await query(leftover.connectionString, `ALTER DATABASE ${leftover.name} IS_TEMPLATE true`)
      // As a rehearsal killed before its drop leaves it.
      expect(await sweepScratchDatabases(server.connectionString, 0)).toContain(leftover.name)
      await leftover.drop()
    })

    // Review revt F6: a new database lets PUBLIC connect and make temporary tables: any login of
    // the rehearsal server could read the copied schema's code there and call it.
    it('lets no other login of the server connect to the scratch database', async () => {
      const scratch = await createServerScratch(server.connectionString)
      try {
        const outsider = `outsider_${randomBytes(3).toString('hex')}`
        await query(server.connectionString, `CREATE ROLE ${outsider} LOGIN PASSWORD '${password}'`)
        try {
          const client = new pg.Client({
            connectionString: on(server, scratch.name, outsider, password),
          })
          client.on('error', () => {})
          await expect(client.connect()).rejects.toThrow(/permission denied for database/)
          await client.end().catch(() => {})
        } finally {
          await query(server.connectionString, `DROP ROLE ${outsider}`)
        }
      } finally {
        await scratch.drop()
      }
    })

    it('a role that cannot be dropped is left NOLOGIN, and drop() says so and how to remove it', async () => {
      const scratch = await createServerScratch(server.connectionString)
      const other = `other_${randomBytes(3).toString('hex')}`
      await query(server.connectionString, `CREATE DATABASE ${other}`)
      // A privilege in another database of the server, which DROP OWNED there alone would revoke.
      await query(
        on(server, other),
        `CREATE TABLE kept (i int); GRANT SELECT ON kept TO ${scratch.name}`,
      )
      const { client } = await holdLogin(scratch)
      await expect(scratch.drop()).rejects.toThrow(
        new RegExp(
          `scratch role ${scratch.name} could not be dropped .*remains on the rehearsal server, NOLOGIN.*DROP OWNED BY ${scratch.name}; in ${other}, then DROP ROLE ${scratch.name};`,
        ),
      )
      expect(await loginRoles(scratch.name)).toEqual([{ rolcanlogin: false }])
      await expect(client.query('SELECT 1')).rejects.toThrow()

      // The sweep, too, leaves a leftover that it cannot drop NOLOGIN at once.
      await query(server.connectionString, `ALTER ROLE ${scratch.name} LOGIN`)
      await sweepScratchDatabases(server.connectionString, 0)
      expect(await loginRoles(scratch.name)).toEqual([{ rolcanlogin: false }])

      await query(on(server, other), `DROP OWNED BY ${scratch.name}`)
      await query(server.connectionString, `DROP ROLE ${scratch.name}`)
    })
  },
)
