import { randomUUID } from 'node:crypto'

import type { Insertable, Kysely } from 'kysely'

import type { DB, X402Resources } from '../../src/index.js'

/** Inserts a Supabase Auth user (as GoTrue would) and returns its id. */
export async function createUser(db: Kysely<DB>, id: string = randomUUID()): Promise<string> {
  await db
    .insertInto('auth.users')
    .values({
      id,
      aud: 'authenticated',
      role: 'authenticated',
      email: `${id}@example.test`,
      raw_app_meta_data: { provider: 'email' },
      raw_user_meta_data: {},
      created_at: new Date(),
      updated_at: new Date(),
    })
    .execute()
  return id
}

/**
 * Inserts an entry of the model catalog and returns its id: x402_openrouter_models, or `table`
 * (ai_models, the plan's name, before 006).
 */
export async function createModel(
  db: Kysely<DB>,
  openrouterId = `openai/gpt-4o-${randomUUID()}`,
  table: string = 'x402_openrouter_models',
): Promise<string> {
  const { id } = await (db as Kysely<any>)
    .insertInto(table)
    .values({
      openrouter_id: openrouterId,
      display_name: 'GPT-4o',
      provider: 'openai',
      context_length: 128_000,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return id
}

/** Inserts an x402 resource with valid defaults for the required columns, and returns its id. */
export async function createResource(
  db: Kysely<DB>,
  values: Partial<Insertable<X402Resources>> = {},
): Promise<string> {
  const slug = randomUUID()
  const { id } = await db
    .insertInto('x402_resources')
    .values({
      name: `Resource ${slug}`,
      resource_url: `https://api.example.test/${slug}`,
      normalized_url: `api.example.test/${slug}`,
      network: 'base',
      pay_to: '0x000000000000000000000000000000000000dEaD',
      ...values,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return id
}

/**
 * An `openrouter_instant` resource, with a model of its own in `ai_models`, on a database at
 * 005 (before 006 renamed the tables): the row a down of 005 must keep or back up.
 *
 * @example
 * ```ts
 * await migrateTo(db, MIGRATION_005)
 * const id = await createInstantResource(db)
 * ```
 */
export async function createInstantResource(db: Kysely<DB>): Promise<string> {
  return createResource(db, {
    resource_type: 'openrouter_instant',
    openrouter_model_id: await createModel(db, undefined, 'ai_models'),
    openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: '', params: {} },
  })
}
