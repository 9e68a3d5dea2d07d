import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import type { OpenRouterConfig } from '../src/index.js'
import { createModel, createResource } from './support/fixtures.js'
import { targetsAndNames } from './support/openrouter-names.js'
import { useTestDatabase } from './support/test-database.js'

// Plan truth 3: OpenRouter resources can reference a model from the ai_models table; at 005 under
// the plan's name, and at the newest migration as production names it (x402_openrouter_models).

describe.each(targetsAndNames)(
  'OpenRouter resources and their model on %s, at %s',
  (target, _at, names) => {
    const database = useTestDatabase(target, names.at)

    it('references a catalog row and stores its OpenRouter settings as typed JSON', async () => {
      const { db } = database
      const modelId = await createModel(db, 'openai/gpt-4o', names.models)
      const config: OpenRouterConfig = {
        modelId: 'openai/gpt-4o',
        systemPrompt: 'Answer in one sentence.',
        params: { temperature: 0.2, maxTokens: 256, topP: 0.9 },
      }
      const id = await createResource(db, {
        resource_type: 'openrouter_instant',
        openrouter_model_id: modelId,
        openrouter_config: config,
      })

      const row = await (db as Kysely<any>)
        .selectFrom('x402_resources')
        .innerJoin(`${names.models} as models`, 'models.id', 'x402_resources.openrouter_model_id')
        .select(['x402_resources.openrouter_config', 'models.openrouter_id'])
        .where('x402_resources.id', '=', id)
        .executeTakeFirstOrThrow()
      expect(row.openrouter_id).toBe('openai/gpt-4o')
      expect(row.openrouter_config).toEqual(config)
      expect((row.openrouter_config as OpenRouterConfig).params.maxTokens).toBe(256)
    })

    it('refuses a model id that is not in the catalog', async () => {
      await expect(
        createResource(database.db, {
          openrouter_model_id: '00000000-0000-4000-8000-000000000000',
        }),
      ).rejects.toMatchObject({
        code: '23503',
        constraint: 'x402_resources_openrouter_model_id_fkey',
      })
    })

    it('leaves other resources without a model (both new columns are optional)', async () => {
      const { db } = database
      const id = await createResource(db, { resource_type: 'prompt_template' })
      const row = await db
        .selectFrom('x402_resources')
        .select(['openrouter_model_id', 'openrouter_config'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
      expect(row).toEqual({ openrouter_model_id: null, openrouter_config: null })
    })

    it('finds the resources of a model through the partial index idx_x402_resources_openrouter_model', async () => {
      const { db } = database
      const modelId = await createModel(db, undefined, names.models)
      await createResource(db, {
        resource_type: 'openrouter_instant',
        openrouter_model_id: modelId,
      })
      const plan = await db.transaction().execute(async (trx) => {
        await sql`SET LOCAL enable_seqscan = off`.execute(trx)
        const { rows } = await sql<{ 'QUERY PLAN': string }>`
        EXPLAIN SELECT id FROM x402_resources WHERE openrouter_model_id = ${modelId}
      `.execute(trx)
        return rows.map((row) => row['QUERY PLAN']).join('\n')
      })
      expect(plan).toContain('idx_x402_resources_openrouter_model')
    })
  },
)
