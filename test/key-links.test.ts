import type { Kysely } from 'kysely'
import { describe, expect, it } from 'vitest'

import { createModel, createResource, createUser } from './support/fixtures.js'
import { targetsAndNames } from './support/openrouter-names.js'
import { useTestDatabase } from './support/test-database.js'

// The plan's key links: user_openrouter_integrations.user_id -> auth.users(id) ON DELETE CASCADE,
// and x402_resources.openrouter_model_id -> ai_models(id) ON DELETE SET NULL; at 005 under the
// plan's names, and at the newest migration under production's (x402_user_openrouter_integrations,
// x402_openrouter_models).

describe.each(targetsAndNames)('the key links on %s, at %s', (target, _at, names) => {
  const database = useTestDatabase(target, names.at)

  it('deletes a user’s OpenRouter key with the user, and only that user’s', async () => {
    const db = database.db as Kysely<any>
    const leaving = await createUser(db)
    const staying = await createUser(db)
    await db
      .insertInto(names.keys)
      .values([
        { user_id: leaving, encrypted_api_key: 'aa:bb' },
        { user_id: staying, encrypted_api_key: 'cc:dd' },
      ])
      .execute()

    await db.deleteFrom('auth.users').where('id', '=', leaving).execute()

    const remaining = await db
      .selectFrom(names.keys)
      .select('user_id')
      .where('user_id', 'in', [leaving, staying])
      .execute()
    expect(remaining).toEqual([{ user_id: staying }])
  })

  it('keeps a resource when its model leaves the catalog, with the model reference cleared', async () => {
    const db = database.db as Kysely<any>
    const modelId = await createModel(db, undefined, names.models)
    const resourceId = await createResource(db, {
      resource_type: 'openrouter_instant',
      openrouter_model_id: modelId,
      openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: '', params: {} },
    })

    await db.deleteFrom(names.models).where('id', '=', modelId).execute()

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
