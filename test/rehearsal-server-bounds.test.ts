import { sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { migrateTo, rehearse } from '../src/tooling.js'
import { BEFORE_005, MIGRATION_005 } from './support/migration-names.js'
import { pgDumpSkipReason } from './support/pg-dump.js'
import { stallingProxy } from './support/stalling-proxy.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// A rehearsal with --copy-schema runs the target's code (its triggers fire on the seed rows and
// on the migrations' writes) on the rehearsal server. A loop there must be ended by the server
// itself, not only by the client giving up on its answer, which leaves the statement running
// (review revt F5: pg_dump's script sets statement_timeout to 0, and the sessions had none).

const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip

postgres("the target's code in a rehearsal", () => {
  it('runs under the server’s statement_timeout and idle_in_transaction_session_timeout', async (context) => {
    const dumpSkip = await pgDumpSkipReason(process.env.TEST_DATABASE_URL!)
    if (dumpSkip) context.skip(dumpSkip)
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, BEFORE_005)
      // It reports the bounds it runs under, through the error that stops the seeding.
      await sql
        .raw(
          `CREATE FUNCTION public.report_bounds() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             RAISE EXCEPTION 'bounds: statement_timeout=% idle_in_transaction_session_timeout=%',
               current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout');
           END $$;
           CREATE TRIGGER report_bounds BEFORE INSERT ON public.x402_resources
             FOR EACH ROW EXECUTE FUNCTION public.report_bounds()`,
        )
        .execute(db)
      const url = serverUrl(location)
      const error = await rehearse([{ migration: MIGRATION_005 }], {
        server: url,
        copySchemaFrom: url,
        startingPoint: BEFORE_005,
        rows: { x402_resources: 1 },
      }).catch((caught: unknown) => caught)
      const message = String((error as Error).message)
      expect(message).toContain('bounds: statement_timeout=')
      expect(message).not.toMatch(/statement_timeout=0 /)
      expect(message).not.toMatch(/idle_in_transaction_session_timeout=0$/m)
    })
  })
})

// Review revq N1: a rehearsal server that logs in and then stops answering. The scratch role was
// made before the stall; the error must say that it stays, and who removes it.
postgres('a rehearsal server that stops answering while the scratch role is made', () => {
  it('fails within its query_timeout, naming the scratch role it leaves and what removes it', async () => {
    const server = new URL(process.env.TEST_DATABASE_URL!)
    const proxy = await stallingProxy(server, 'CREATE ROLE', 'all')
    const through = new URL(proxy.url(server))
    through.searchParams.set('query_timeout', '1000')
    let left: string | undefined
    try {
      const error = await rehearse([{ migration: MIGRATION_005 }], {
        server: through.toString(),
        startingPoint: BEFORE_005,
        rows: {},
      }).catch((caught: unknown) => caught)
      const message = String((error as Error).message)
      left = /x402_rehearsal_\d+_\d+_[0-9a-f]+/.exec(message)?.[0]
      expect(message).toContain('did not answer')
      expect(left).toBeDefined()
      expect(message).toContain('the next rehearsal on that server removes')
    } finally {
      await proxy.close()
      const leftovers = left ? [left] : []
      const client = new pg.Client({ connectionString: server.toString() })
      await client.connect()
      try {
        for (const name of leftovers) {
          await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
          await client.query(`DROP ROLE IF EXISTS ${name}`)
        }
      } finally {
        await client.end()
      }
    }
  })
})
