import { describe, expect, it } from 'vitest'

import type { ResourceType } from '../src/index.js'
import { createResource } from './support/fixtures.js'
import { targetsAndNames } from './support/openrouter-names.js'
import { useTestDatabase } from './support/test-database.js'

// Plan truth 2: x402_resources can be created with resource_type = 'openrouter_instant'; at 005,
// and at the newest migration.

const EARLIER_TYPES: ResourceType[] = ['external', 'proxy', 'prompt', 'static', 'prompt_template']

describe.each(targetsAndNames)(
  'the openrouter_instant resource type on %s, at %s',
  (target, _at, names) => {
    const database = useTestDatabase(target, names.at)

    it('accepts a resource of type openrouter_instant', async () => {
      const { db } = database
      const id = await createResource(db, { resource_type: 'openrouter_instant' })
      const row = await db
        .selectFrom('x402_resources')
        .select('resource_type')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
      expect(row.resource_type).toBe('openrouter_instant')
    })

    it.each(EARLIER_TYPES)('still accepts the earlier type %s', async (resourceType) => {
      await expect(createResource(database.db, { resource_type: resourceType })).resolves.toEqual(
        expect.any(String),
      )
    })

    it('still defaults to external', async () => {
      const { db } = database
      const id = await createResource(db)
      const row = await db
        .selectFrom('x402_resources')
        .select('resource_type')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
      expect(row.resource_type).toBe('external')
    })

    it('rejects a type the constraint does not list, under the constraint production names', async () => {
      await expect(
        createResource(database.db, { resource_type: 'openrouter_batch' as ResourceType }),
      ).rejects.toMatchObject({
        code: '23514',
        constraint: 'x402_resources_resource_type_check',
        message:
          'Value not allowed: "resource_type" on table "x402_resources" must be one of ' +
          "'external', 'proxy', 'prompt', 'static', 'prompt_template', 'openrouter_instant' " +
          '(check constraint "x402_resources_resource_type_check", SQLSTATE 23514).',
      })
    })
  },
)
