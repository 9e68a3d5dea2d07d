import { describe, it } from 'vitest'

import { buildSchemaReference, diffWithReference } from '../src/schema/reference.js'
import { formatSchemaDiff } from '../src/tooling.js'
import { buildProductionShapedDatabase, PRODUCTION_ADOPTION_POINT } from './support/production-fixture.js'
import { testTargets, withTestDatabase } from './support/test-database.js'

describe.each(testTargets)('scratch %s', (target) => {
  it('diff', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await buildProductionShapedDatabase(db)
      const diff = await diffWithReference(db, await buildSchemaReference(PRODUCTION_ADOPTION_POINT))
      console.log(formatSchemaDiff(diff))
    })
  })
})
