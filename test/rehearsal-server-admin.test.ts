import { randomBytes } from 'node:crypto'

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { rehearse } from '../src/rehearsal/rehearse.js'
import {
  findPostgresBinaries,
  type ScratchCluster,
  startScratchCluster,
} from '../src/rehearsal/scratch-cluster.js'
import { sweepScratchDatabases } from '../src/rehearsal/scratch-database.js'

// The superuser's sessions that a rehearsal opens on a server named for rehearsals
// (REHEARSAL_DATABASE_URL, LINT_LOCKS_DATABASE_URL) run nothing that another role of that server
// put in their way (review revo O1): neither in the server's own database (the sweep of leftover
// scratch databases) nor in the new scratch database (the Supabase stand-in), which is copied from
// template0: whatever template1 holds, even a login event trigger that fires as the session
// connects (review revq Q2), is not in it. The operators planted here have no exact match in pg_catalog, so that
// they would win over pg_catalog's on any search_path that names public: `name ~~ name` (the
// sweep's `datname LIKE …`) and `oid = regrole` (the stand-in's `member = '…'::regrole`). The
// server is a cluster of the test's own, so that its template1 may be changed.

const canStartClusters = findPostgresBinaries().length > 0
// Login event triggers came with PostgreSQL 17; the cluster is started from the newest binaries.
const newestMajor = Math.max(0, ...findPostgresBinaries().map((binaries) => binaries.major))

/** The cluster's connection string, on `database`. */
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

/**
 * SQL, run as `planter` in a database where it may create in public, that plants `public.<op>`
 * over (`left`, `right`), comparing as `compare` does, whose function leaves a trace of every
 * run in public.evidence (of that database) and, run by a superuser, in the planter's own role,
 * which is cluster-wide: a comment naming whom it ran as, and the SUPERUSER attribute.
 */
const plant = (planter: string, op: string, left: string, right: string, compare: string) => `
  SET ROLE ${planter};
  CREATE TABLE public.evidence (who text, superuser text, db text);
  GRANT INSERT ON public.evidence TO PUBLIC;
  CREATE FUNCTION public.planted(a ${left}, b ${right}) RETURNS boolean LANGUAGE plpgsql AS $f$
  BEGIN
    INSERT INTO public.evidence VALUES (current_user, current_setting('is_superuser'), current_database());
    IF current_setting('is_superuser') = 'on' THEN
      EXECUTE format('COMMENT ON ROLE ${planter} IS %L', 'ran as ' || current_user || ' in ' || current_database());
      EXECUTE 'ALTER ROLE ${planter} SUPERUSER';
    END IF;
    RETURN ${compare};
  END $f$;
  CREATE OPERATOR public.${op} (LEFTARG = ${left}, RIGHTARG = ${right}, FUNCTION = public.planted);
  RESET ROLE;`

describe.skipIf(!canStartClusters)(
  `the superuser's sessions on a rehearsal server${canStartClusters ? '' : ' (skipped: no PostgreSQL server binaries on this machine)'}`,
  () => {
    let server: ScratchCluster
    // One planter for each route: a superuser that ran the first's code would have made it one.
    const suffix = randomBytes(3).toString('hex')
    const sweepPlanter = `sweep_planter_${suffix}`
    const templatePlanter = `template_planter_${suffix}`
    const eventPlanter = `event_planter_${suffix}`
    const loginPlanter = `login_planter_${suffix}`
    const serverLoginPlanter = `server_login_planter_${suffix}`
    /** What a planter's role shows: a superuser that ran its code made it one, and said so. */
    const planterRole = async (planter: string) =>
      (
        await query<{ rolsuper: boolean; comment: string | null }>(
          server.connectionString,
          `SELECT rolsuper, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = '${planter}'`,
        )
      )[0]

    beforeAll(async () => {
      server = await startScratchCluster()
      // As PostgreSQL up to 14 lets every role create in public, in every database.
      await query(
        server.connectionString,
        `CREATE ROLE ${sweepPlanter} LOGIN NOSUPERUSER; CREATE ROLE ${templatePlanter} LOGIN NOSUPERUSER;
         CREATE ROLE ${eventPlanter} LOGIN NOSUPERUSER; CREATE ROLE ${loginPlanter} LOGIN NOSUPERUSER;
         CREATE ROLE ${serverLoginPlanter} LOGIN NOSUPERUSER`,
      )
    })
    afterAll(async () => {
      await server?.stop()
    })

    describe("with a lesser role's `name ~~ name` in the server's own database", () => {
      const evidence = () =>
        query<{ who: string; superuser: string }>(
          server.connectionString,
          'SELECT who, superuser FROM public.evidence',
        )
      beforeAll(async () => {
        // A leftover scratch database of a rehearsal killed long ago, for the sweep to find.
        await query(server.connectionString, 'CREATE DATABASE x402_rehearsal_1000000000_1_ab')
        await query(
          server.connectionString,
          `GRANT CREATE ON SCHEMA public TO ${sweepPlanter};
           ${plant(sweepPlanter, '~~', 'name', 'name', 'a::text OPERATOR(pg_catalog.~~) b::text')}`,
        )
      })
      afterAll(async () => {
        await query(
          server.connectionString,
          `DROP OWNED BY ${sweepPlanter}; REVOKE CREATE ON SCHEMA public FROM ${sweepPlanter}`,
        )
      })

      it('sweeps leftovers without running it', async () => {
        expect(await sweepScratchDatabases(server.connectionString)).toEqual([
          'x402_rehearsal_1000000000_1_ab',
        ])
        expect(await evidence()).toEqual([])
        expect(await planterRole(sweepPlanter)).toEqual({ rolsuper: false, comment: null })
      })

      it('rehearses without running it', async () => {
        const rehearsal = await rehearse([{ name: 'noop', script: 'SELECT 1;' }], {
          server: server.connectionString,
          startingPoint: null,
          rows: {},
        })
        expect(rehearsal.migrations.map((step) => step.error ?? 'ok')).toEqual(['ok'])
        expect(await evidence()).toEqual([])
        expect(await planterRole(sweepPlanter)).toEqual({ rolsuper: false, comment: null })
      })
    })

    describe("with a lesser role's `oid = regrole` in template1", () => {
      beforeAll(async () => {
        await query(
          on(server, 'template1'),
          `GRANT CREATE ON SCHEMA public TO ${templatePlanter};
           ${plant(templatePlanter, '=', 'oid', 'regrole', 'a OPERATOR(pg_catalog.=) b::oid')}`,
        )
      })
      afterAll(async () => {
        await query(
          on(server, 'template1'),
          `DROP OWNED BY ${templatePlanter}; REVOKE CREATE ON SCHEMA public FROM ${templatePlanter}`,
        )
      })

      it('rehearses in a scratch database that it is not in, and runs nothing of it', async () => {
        const rehearsal = await rehearse([{ name: 'noop', script: 'SELECT 1;' }], {
          server: server.connectionString,
          startingPoint: null,
          rows: {},
        })
        expect(rehearsal.migrations.map((step) => step.error ?? 'ok')).toEqual(['ok'])
        expect(await planterRole(templatePlanter)).toEqual({ rolsuper: false, comment: null })
        expect(
          await query(on(server, 'template1'), 'SELECT who, superuser, db FROM public.evidence'),
        ).toEqual([])
        // The scratch database and its role are dropped.
        expect(
          await query(
            server.connectionString,
            `SELECT datname FROM pg_database WHERE datname LIKE 'x402\\_rehearsal\\_%'
             UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE 'x402\\_rehearsal\\_%'`,
          ),
        ).toEqual([])
      })
    })

    // Review revp P3: CREATE DATABASE copies template1's event triggers too, and the stand-in's
    // DDL, run by the superuser, fires them with their functions' code.
    describe("with an event trigger in template1 over a lesser role's function", () => {
      beforeAll(async () => {
        await query(
          on(server, 'template1'),
          `CREATE FUNCTION public.planted_event() RETURNS event_trigger LANGUAGE plpgsql AS $f$
           BEGIN
             IF current_setting('is_superuser') = 'on' THEN
               EXECUTE format('COMMENT ON ROLE ${eventPlanter} IS %L', 'ran as ' || current_user);
             END IF;
           END $f$;
           ALTER FUNCTION public.planted_event() OWNER TO ${eventPlanter};
           CREATE EVENT TRIGGER planted_event ON ddl_command_end EXECUTE FUNCTION public.planted_event();`,
        )
      })
      afterAll(async () => {
        await query(
          on(server, 'template1'),
          'DROP EVENT TRIGGER planted_event; DROP FUNCTION public.planted_event()',
        )
      })

      it("rehearses in a scratch database that it is not in, and fires it on none of the superuser's DDL", async () => {
        const rehearsal = await rehearse([{ name: 'noop', script: 'SELECT 1;' }], {
          server: server.connectionString,
          startingPoint: null,
          rows: {},
        })
        expect(rehearsal.migrations.map((step) => step.error ?? 'ok')).toEqual(['ok'])
        expect(await planterRole(eventPlanter)).toEqual({ rolsuper: false, comment: null })
      })
    })

    // Review revs S4: the superuser's sessions also connect to the server's own database (the
    // sweep, CREATE ROLE and DATABASE, the drop), where a login event trigger fires as they do.
    describe.skipIf(newestMajor < 17)(
      `with a login event trigger in the server's own database over a lesser role's function${newestMajor < 17 ? ' (skipped: no PostgreSQL 17 binaries on this machine)' : ''}`,
      () => {
        // The test's own sessions there say who they are, so that the trigger leaves them alone.
        const observer = () => {
          const url = new URL(server.connectionString)
          url.searchParams.set('application_name', 'x402-test-observer')
          return url.toString()
        }
        beforeAll(async () => {
          await query(
            observer(),
            `CREATE FUNCTION public.planted_server_login() RETURNS event_trigger LANGUAGE plpgsql AS $f$
             BEGIN
               IF current_setting('is_superuser') = 'on' AND current_setting('application_name') <> 'x402-test-observer' THEN
                 EXECUTE format('COMMENT ON ROLE ${serverLoginPlanter} IS %L', 'ran as ' || current_user || ' in ' || current_database());
               END IF;
             END $f$;
             ALTER FUNCTION public.planted_server_login() OWNER TO ${serverLoginPlanter};
             CREATE EVENT TRIGGER planted_server_login ON login EXECUTE FUNCTION public.planted_server_login();`,
          )
        })
        afterAll(async () => {
          await query(
            observer(),
            'DROP EVENT TRIGGER planted_server_login; DROP FUNCTION public.planted_server_login()',
          )
        })

        it('rehearses, and runs it on none of its sessions', async () => {
          const settled = await Promise.allSettled([
            rehearse([{ name: 'noop', script: 'SELECT 1;' }], {
              server: server.connectionString,
              startingPoint: null,
              rows: {},
            }),
          ])
          expect(
            await query(
              observer(),
              `SELECT rolsuper, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = '${serverLoginPlanter}'`,
            ),
          ).toEqual([{ rolsuper: false, comment: null }])
          expect(settled[0]).toMatchObject({ status: 'fulfilled' })
        })
      },
    )

    // Review revq Q2: a login event trigger fires as each session connects, before it runs
    // anything: in a copy of template1, the superuser's first connection would run it.
    describe.skipIf(newestMajor < 17)(
      `with a login event trigger in template1 over a lesser role's function${newestMajor < 17 ? ' (skipped: no PostgreSQL 17 binaries on this machine)' : ''}`,
      () => {
        beforeAll(async () => {
          await query(
            on(server, 'template1'),
            `CREATE FUNCTION public.planted_login() RETURNS event_trigger LANGUAGE plpgsql AS $f$
             BEGIN
               IF current_setting('is_superuser') = 'on' AND current_database() <> 'template1' THEN
                 EXECUTE format('COMMENT ON ROLE ${loginPlanter} IS %L', 'ran as ' || current_user || ' in ' || current_database());
               END IF;
             END $f$;
             ALTER FUNCTION public.planted_login() OWNER TO ${loginPlanter};
             CREATE EVENT TRIGGER planted_login ON login EXECUTE FUNCTION public.planted_login();`,
          )
        })
        afterAll(async () => {
          await query(
            on(server, 'template1'),
            'DROP EVENT TRIGGER planted_login; DROP FUNCTION public.planted_login()',
          )
        })

        it('rehearses in a scratch database that it is not in, and runs it on no connection', async () => {
          const rehearsing = rehearse([{ name: 'noop', script: 'SELECT 1;' }], {
            server: server.connectionString,
            startingPoint: null,
            rows: {},
          })
          // Whatever the rehearsal says, first: had a superuser's session run it, the role shows it.
          const settled = await Promise.allSettled([rehearsing])
          expect(await planterRole(loginPlanter)).toEqual({ rolsuper: false, comment: null })
          expect(settled[0].status).toBe('fulfilled')
          const rehearsal = await rehearsing
          expect(rehearsal.migrations.map((step) => step.error ?? 'ok')).toEqual(['ok'])
        })
      },
    )
  },
)
