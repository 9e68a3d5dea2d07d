import { sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { readExistingTables } from '../src/rehearsal/existing-tables.js'
import { LockSampler } from '../src/rehearsal/lock-sampler.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// A statement run outside a transaction is timed from the moment the sampler lets it go. CI failed
// once on a negative time ("held -0.4 ms"): the sampler took that moment after its COMMIT's answer,
// and the statement's own answer, sent by the server as soon as the COMMIT freed it, was sometimes
// read first. PostgreSQL only: PGlite has no second session.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

describe.skipIf(skipReason)('the lock sampler', () => {
  it('never takes the release for later than the end of the statement it held back', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await sql`CREATE TABLE sampled (id int)`.execute(db)
      const tables = await readExistingTables(db)
      const url = serverUrl(location)
      const sampler = await LockSampler.open(url)
      const statement = new pg.Client({ connectionString: url })
      await statement.connect()
      try {
        const pid = Number((await statement.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)
        const late: number[] = []
        for (let round = 0; round < 200; round += 1) {
          const { result: endedAt, sampled } = await sampler.watch(
            pid,
            tables,
            tables,
            async () => {
              // One short statement that queues behind the sampler's hold, as VALIDATE does.
              await statement.query(
                'BEGIN; LOCK TABLE sampled IN SHARE UPDATE EXCLUSIVE MODE; COMMIT',
              )
              return performance.now()
            },
          )
          expect(sampled.releasedAt).toBeDefined()
          if (sampled.releasedAt! > endedAt) late.push(round)
        }
        expect(late).toEqual([])
      } finally {
        await statement.end()
        await sampler.close()
      }
    })
  })
})
