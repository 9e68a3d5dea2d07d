import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrationNames } from '../src/migrations/index.js'
import { comparisonQuery } from '../src/schema/rules.js'
import { buildSchemaReference, comparisonInputs } from '../src/schema/reference.js'
import { pinCatalogReads } from '../src/schema/snapshot.js'
import { checkDrift } from '../src/tooling.js'
import { type TestTarget, testTargets, useTestDatabase } from './support/test-database.js'

// The comparison query of migrate:check and migrate:baseline is estimated far above
// jit_above_cost, though it reads a few hundred catalog rows: with JIT on (PostgreSQL's default
// where the server has it, as Debian's and Supabase's have), the server spent seconds compiling
// it before it ran. Only PostgreSQL has JIT.

const statements: string[] = []

// Only PostgreSQL has JIT: without TEST_DATABASE_URL the suite is skipped, not empty.
describe.skipIf(!testTargets.includes('postgres')).each(['postgres' as TestTarget])(
  'the catalog reads of migrate:check, on %s',
  (target: TestTarget) => {
    const database = useTestDatabase(target, 'latest', {
      onStatement: (text) => statements.push(text),
    })

    it('plan the comparison query without JIT, where the server would JIT it', async () => {
      const reference = await buildSchemaReference(migrationNames.at(-1)!)
      const query = comparisonQuery(comparisonInputs(reference, { strict: true }))
      const planned = await database.db.transaction().execute(async (trx) => {
        const { rows: available } = await sql<{
          jit: boolean
        }>`SELECT pg_catalog.pg_jit_available() AND current_setting('jit')::boolean AS jit`.execute(
          trx,
        )
        const explain = async () =>
          JSON.stringify((await sql.raw(`EXPLAIN (FORMAT JSON) ${query}`).execute(trx)).rows)
        const before = await explain()
        await pinCatalogReads(trx)
        return { jit: available[0]!.jit, before, after: await explain() }
      })
      // The control: on a server with JIT on, the query as written is JIT-compiled.
      if (planned.jit) expect(planned.before).toContain('"JIT"')
      expect(planned.after).not.toContain('"JIT"')
    })

    it('are pinned before checkDrift sends its comparison', async () => {
      statements.length = 0
      const report = await checkDrift(database.db, { decisions: [] })
      expect(report.ok).toBe(true)
      const comparison = statements.findIndex((text) => text.includes('WITH live_rows AS ('))
      const pinned = statements.findIndex((text) => text.includes(`'jit', 'off'`))
      expect(comparison).toBeGreaterThan(-1)
      expect(pinned).toBeGreaterThan(-1)
      expect(pinned).toBeLessThan(comparison)
    })
  },
)
