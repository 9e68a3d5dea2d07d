import { describe, expect, it } from 'vitest'

import { createModel, createResource, createUser } from './support/fixtures.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// The plan's key links: user_openrouter_integrations.user_id -> auth.users(id) ON DELETE CASCADE,
// and x402_resources.openrouter_model_id -> ai_models(id) ON DELETE SET NULL.

describe.each(testTargets)('the key links on %s', (target) => {
  const database = useTestDatabase(target)

  it('deletes a user’s OpenRouter key with the user, and only that user’s', async () => {
    const { db } = database
    const leaving = await createUser(db)
    const staying = await createUser(db)
    await db
      .insertInto('user_openrouter_integrations')
      .values([
        { user_id: leaving, encrypted_api_key: 'aa:bb' },
        { user_id: staying, encrypted_api_key: 'cc:dd' },
      ])
      .execute()

    await db.deleteFrom('auth.users').where('id', '=', leaving).execute()

    const remaining = await db
      .selectFrom('user_openrouter_integrations')
      .select('user_id')
      .where('user_id', 'in', [leaving, staying])
      .execute()
    expect(remaining).toEqual([{ user_id: staying }])
  })

  it('keeps a resource when its model leaves the catalog, with the model reference cleared', async () => {
    const { db } = database
    const modelId = await createModel(db)
    const resourceId = await createResource(db, {
      resource_type: 'openrouter_instant',
      openrouter_model_id: modelId,
      openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: '', params: {} },
    })

    await db.deleteFrom('ai_models').where('id', '=', modelId).execute()

    const resource = await db
      .selectFrom('x402_resources')
      .select(['id', 'resource_type', 'openrouter_model_id', 'openrouter_config'])
      .where('id', '=', resourceId)
      .executeTakeFirst()
    expect(resource).toEqual({
      id: resourceId,
      resource_type: 'openrouter_instant',
      openrouter_model_id: null,
      openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: '', params: {} },
    })
  })
})
