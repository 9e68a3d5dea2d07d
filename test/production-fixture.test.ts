import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  buildProductionShapedDatabase,
  PRODUCTION_ONLY_TABLES,
} from './support/production-fixture.js'
import { testTargets, withTestDatabase } from './support/test-database.js'

// The fixture other tests adopt must stay as wide as production, or they prove less than they say.
describe.each(testTargets)('the production-shaped fixture on %s', (target) => {
  it('has a wide x402_resources with RLS on and no policy, and the other tables referencing it', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await buildProductionShapedDatabase(db)
      const { rows } = await sql<{
        columns: number
        rls: boolean
        policies: number
        tables: number
        rules: string[]
      }>`
        SELECT (SELECT count(*)::int FROM pg_attribute WHERE attrelid = 'public.x402_resources'::regclass AND attnum > 0 AND NOT attisdropped) AS columns,
               (SELECT relrowsecurity FROM pg_class WHERE oid = 'public.x402_resources'::regclass) AS rls,
               (SELECT count(*)::int FROM pg_policy WHERE polrelid = 'public.x402_resources'::regclass) AS policies,
               (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY (${PRODUCTION_ONLY_TABLES as unknown as string[]})) AS tables,
               (SELECT array_agg(DISTINCT confdeltype::text ORDER BY confdeltype::text) FROM pg_constraint
                 WHERE confrelid = 'public.x402_resources'::regclass AND contype = 'f') AS rules
      `.execute(db)
      expect(rows[0]).toEqual({
        columns: 69,
        rls: true,
        policies: 0,
        tables: PRODUCTION_ONLY_TABLES.length,
        rules: ['c', 'n'],
      })
      expect(PRODUCTION_ONLY_TABLES.length).toBeGreaterThanOrEqual(10)
    })
  })
})
