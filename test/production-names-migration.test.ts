import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { MigrationError, migrateDown, migrateTo, migrateUp } from '../src/tooling.js'
import { snapshotPublicSchema } from '../src/schema/snapshot.js'
import { createResource, createUser } from './support/fixtures.js'
import { testTargets, useTestDatabase } from './support/test-database.js'
import { MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'

// 006 brings a database the module built to production's names and shape: the keys table and the
// catalog under production's names, the catalog with production's columns, CHECK, indexes and
// nullability, and OpenRouter's pricing object moved into production's four text columns. Nothing
// is lost either way, and what cannot come back unchanged is refused, naming the rows.

/** x402_openrouter_models as production-today.md describes it: type, NOT NULL, default. */
const PRODUCTION_CATALOG_COLUMNS = {
  id: ['uuid', true, 'gen_random_uuid()'],
  openrouter_id: ['text', true, null],
  memeputer_name: ['text', false, null],
  display_name: ['text', true, null],
  description: ['text', false, null],
  provider: ['text', true, null],
  modality: ['text', true, "'text'::text"],
  context_length: ['integer', false, null],
  max_tokens: ['integer', false, null],
  pricing_prompt: ['text', false, null],
  pricing_completion: ['text', false, null],
  pricing_image: ['text', false, null],
  pricing_web_search: ['text', false, null],
  input_cost_per_million: ['numeric', false, null],
  output_cost_per_million: ['numeric', false, null],
  capabilities: ['jsonb', false, null],
  vision_supported: ['boolean', false, 'false'],
  web_search_supported: ['boolean', false, 'false'],
  tool_calling_supported: ['boolean', false, 'false'],
  is_active: ['boolean', false, 'true'],
  is_curated: ['boolean', true, 'false'],
  last_synced_at: ['timestamp with time zone', false, null],
  created_at: ['timestamp with time zone', false, 'now()'],
  updated_at: ['timestamp with time zone', false, 'now()'],
}

async function insertModel(
  db: Kysely<any>,
  openrouterId: string,
  pricing: unknown,
): Promise<string> {
  const { rows } = await sql<{ id: string }>`
    INSERT INTO ai_models (openrouter_id, display_name, provider, pricing)
    VALUES (${openrouterId}, ${openrouterId}, 'p', ${pricing === undefined ? null : JSON.stringify(pricing)}::jsonb) RETURNING id
  `.execute(db)
  return rows[0]!.id
}

describe.each(testTargets)('006, production’s names and catalog, on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('renames the keys table with its keys named as production’s CREATE TABLE names them, and keeps the rows', async () => {
    const db = database.db as Kysely<any>
    const userId = await createUser(db)
    await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
      db,
    )
    await migrateTo(db, MIGRATION_006)
    const schema = await snapshotPublicSchema(db)
    expect(schema.relations.user_openrouter_integrations).toBeUndefined()
    expect(schema.relations.ai_models).toBeUndefined()
    const on = (category: keyof typeof schema, table: string) =>
      Object.values(schema[category])
        .filter((object) => object.table === table)
        .map((object) => object.name)
        .sort()
    expect(on('constraints', 'x402_user_openrouter_integrations')).toEqual([
      'x402_user_openrouter_integrations_pkey',
      'x402_user_openrouter_integrations_user_id_fkey',
    ])
    expect(on('indexes', 'x402_user_openrouter_integrations')).toEqual([
      'idx_openrouter_integrations_user_enabled',
      'x402_user_openrouter_integrations_pkey',
    ])
    expect(on('triggers', 'x402_user_openrouter_integrations')).toEqual([
      'openrouter_integration_updated_at',
    ])
    expect(on('policies', 'x402_user_openrouter_integrations')).toEqual([
      'Service role full access on OpenRouter',
      'Users can manage their own OpenRouter config',
    ])
    expect(schema.functions['update_openrouter_integration_updated_at()']).toBeDefined()
    const { rows } =
      await sql`SELECT user_id, encrypted_api_key FROM x402_user_openrouter_integrations`.execute(
        db,
      )
    expect(rows).toEqual([{ user_id: userId, encrypted_api_key: 'aa:bb' }])
    await migrateDown(db)
  })

  it('gives the catalog production’s exact shape: columns, CHECK, indexes, nullability, RLS off', async () => {
    const db = database.db as Kysely<any>
    await migrateTo(db, MIGRATION_006)
    const schema = await snapshotPublicSchema(db)
    const columns = Object.fromEntries(
      Object.values(schema.columns)
        .filter((column) => column.table === 'x402_openrouter_models')
        .map(({ name, definition }) => [
          name,
          [definition.type, definition['not null'], definition.default],
        ]),
    )
    expect(columns).toEqual(PRODUCTION_CATALOG_COLUMNS)
    const of = (category: 'constraints' | 'indexes') =>
      Object.values(schema[category])
        .filter((object) => object.table === 'x402_openrouter_models')
        .map((object) => object.definition.definition)
        .sort()
    expect(of('constraints')).toEqual([
      "CHECK ((modality = ANY (ARRAY['text'::text, 'image'::text, 'video'::text, 'audio'::text, 'embedding'::text, 'multimodal'::text])))",
      'PRIMARY KEY (id)',
      'UNIQUE (openrouter_id)',
    ])
    expect(schema.constraints['x402_openrouter_models.check_modality_valid']).toBeDefined()
    expect(of('indexes')).toEqual([
      'CREATE INDEX idx_x402_openrouter_models_is_active ON public.x402_openrouter_models USING btree (is_active)',
      'CREATE INDEX idx_x402_openrouter_models_is_curated ON public.x402_openrouter_models USING btree (is_curated) WHERE (is_curated = true)',
      'CREATE INDEX idx_x402_openrouter_models_modality ON public.x402_openrouter_models USING btree (modality)',
      'CREATE UNIQUE INDEX x402_openrouter_models_openrouter_id_key ON public.x402_openrouter_models USING btree (openrouter_id)',
      'CREATE UNIQUE INDEX x402_openrouter_models_pkey ON public.x402_openrouter_models USING btree (id)',
    ])
    expect(schema.relations.x402_openrouter_models!.definition['row level security']).toBe(false)
    expect(
      schema.constraints['x402_resources.x402_resources_openrouter_model_id_fkey']!.definition
        .definition,
    ).toBe(
      'FOREIGN KEY (openrouter_model_id) REFERENCES x402_openrouter_models(id) ON DELETE SET NULL',
    )
    await migrateDown(db)
  })

  it('moves pricing into the four text columns, keeps the resources that point at the models, and puts it back on down', async () => {
    const db = database.db as Kysely<any>
    const full = await insertModel(db, 'openai/gpt-4o', {
      prompt: '0.0000025',
      completion: '0.00001',
      image: '0.003613',
      web_search: '0.01',
    })
    const partial = await insertModel(db, 'meta/llama', { prompt: '0', completion: '0' })
    const none = await insertModel(db, 'free/none', undefined)
    const resource = await createResource(db, {
      resource_type: 'openrouter_instant',
      openrouter_model_id: full,
    })
    const before =
      await sql`SELECT to_jsonb(m) AS row FROM ai_models m ORDER BY openrouter_id`.execute(db)

    await migrateTo(db, MIGRATION_006)
    const { rows } = await sql`
      SELECT id, pricing_prompt, pricing_completion, pricing_image, pricing_web_search, modality, is_curated
      FROM x402_openrouter_models ORDER BY openrouter_id
    `.execute(db)
    expect(rows).toEqual([
      {
        id: none,
        pricing_prompt: null,
        pricing_completion: null,
        pricing_image: null,
        pricing_web_search: null,
        modality: 'text',
        is_curated: false,
      },
      {
        id: partial,
        pricing_prompt: '0',
        pricing_completion: '0',
        pricing_image: null,
        pricing_web_search: null,
        modality: 'text',
        is_curated: false,
      },
      {
        id: full,
        pricing_prompt: '0.0000025',
        pricing_completion: '0.00001',
        pricing_image: '0.003613',
        pricing_web_search: '0.01',
        modality: 'text',
        is_curated: false,
      },
    ])
    const { rows: pointing } =
      await sql`SELECT openrouter_model_id FROM x402_resources WHERE id = ${resource}`.execute(db)
    expect(pointing).toEqual([{ openrouter_model_id: full }])

    // The columns 006 added hold values (modality, is_curated, …): the runner's guard refuses
    // the down without the opt-in, and with it copies the catalog to x402_backup first.
    await expect(migrateDown(db, { env: {} })).rejects.toThrow(
      /column public\.x402_openrouter_models\.modality \(dropped\): 3 value\(s\)/,
    )
    await migrateDown(db, { env: {}, allowDataLoss: true })
    expect(
      (await sql`SELECT to_jsonb(m) AS row FROM ai_models m ORDER BY openrouter_id`.execute(db))
        .rows,
    ).toEqual(before.rows)
    await sql`DELETE FROM x402_resources`.execute(db)
    await sql`DELETE FROM ai_models`.execute(db)
    await sql`DROP SCHEMA x402_backup CASCADE`.execute(db)
  })

  it('refuses, naming the models, a pricing object that the four columns would not give back unchanged, and changes nothing', async () => {
    const db = database.db as Kysely<any>
    await insertModel(db, 'fits/one', { prompt: '1', completion: '2' })
    await insertModel(db, 'extra/key', { prompt: '1', request: '0' })
    await insertModel(db, 'number/value', { prompt: 0.5 })
    await insertModel(db, 'empty/object', {})
    const schema = await snapshotPublicSchema(db)

    const error = await migrateUp(db, { env: {} }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(MigrationError)
    expect(error).toMatchObject({ migrationName: MIGRATION_006, direction: 'Up' })
    const message = (error as Error).message
    expect(message).toContain('the pricing of 3 model(s) would not come back unchanged from them: ')
    expect(message).toContain(
      'empty/object ({}); extra/key ({"prompt": "1", "request": "0"}); number/value ({"prompt": 0.5})',
    )
    expect(message).not.toContain('fits/one')
    expect(message).toContain('Nothing was changed.')
    expect(await snapshotPublicSchema(db)).toEqual(schema)
    await sql`DELETE FROM ai_models`.execute(db)
  })

  // A database adopted before 006 may have production's pricing columns already, with values.
  it('keeps the values of pricing columns a database had before 006, and refuses, naming the models, where pricing says otherwise', async () => {
    const db = database.db as Kysely<any>
    await sql`ALTER TABLE ai_models ADD COLUMN pricing_prompt text, ADD COLUMN pricing_image text`.execute(
      db,
    )
    await insertModel(db, 'kept/values', { completion: '0.000015' })
    await insertModel(db, 'same/values', { prompt: '0.0000025', completion: '0.00001' })
    await sql`UPDATE ai_models SET pricing_prompt = '0.000003', pricing_image = '0.0048' WHERE openrouter_id = 'kept/values'`.execute(
      db,
    )
    await sql`UPDATE ai_models SET pricing_prompt = '0.0000025', pricing_image = '0.003613' WHERE openrouter_id = 'same/values'`.execute(
      db,
    )
    await insertModel(db, 'other/value', { prompt: '2' })
    await sql`UPDATE ai_models SET pricing_prompt = '1' WHERE openrouter_id = 'other/value'`.execute(
      db,
    )
    const schema = await snapshotPublicSchema(db)

    const error = await migrateUp(db, { env: {} }).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ migrationName: MIGRATION_006, direction: 'Up' })
    const message = (error as Error).message
    expect(message).toContain("other/value (pricing_prompt is '1', pricing says '2')")
    expect(message).not.toContain('kept/values')
    expect(message).toContain('Nothing was changed.')
    expect(await snapshotPublicSchema(db)).toEqual(schema)

    await sql`DELETE FROM ai_models WHERE openrouter_id = 'other/value'`.execute(db)
    await migrateUp(db, { env: {} })
    const { rows } = await sql<{
      id: string
      prompt: string | null
      completion: string | null
      image: string | null
    }>`SELECT openrouter_id AS id, pricing_prompt AS prompt, pricing_completion AS completion, pricing_image AS image
       FROM x402_openrouter_models ORDER BY openrouter_id`.execute(db)
    expect(rows).toEqual([
      { id: 'kept/values', prompt: '0.000003', completion: '0.000015', image: '0.0048' },
      { id: 'same/values', prompt: '0.0000025', completion: '0.00001', image: '0.003613' },
    ])
    await migrateDown(db, { allowDataLoss: true, env: {} })
    await sql`DELETE FROM ai_models`.execute(db)
    await sql`DROP SCHEMA IF EXISTS x402_backup CASCADE`.execute(db)
    await sql`ALTER TABLE ai_models DROP COLUMN IF EXISTS pricing_prompt, DROP COLUMN IF EXISTS pricing_image`.execute(
      db,
    )
  })

  it('refuses, naming it, a pricing column a database had before 006 with another type than text, and changes nothing', async () => {
    const db = database.db as Kysely<any>
    await sql`ALTER TABLE ai_models ADD COLUMN pricing_image numeric`.execute(db)
    await insertModel(db, 'some/model', { prompt: '1' })
    const schema = await snapshotPublicSchema(db)
    const error = await migrateUp(db, { env: {} }).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ migrationName: MIGRATION_006, direction: 'Up' })
    const message = (error as Error).message
    expect(message).toContain('pricing_image is of type numeric')
    expect(message).toContain('Nothing was changed.')
    expect(await snapshotPublicSchema(db)).toEqual(schema)
    await sql`DELETE FROM ai_models`.execute(db)
    await sql`ALTER TABLE ai_models DROP COLUMN pricing_image`.execute(db)
  })

  // A collation that ignores case (or punctuation) calls two different values equal: the
  // comparison is of the characters, whatever the column's collation.
  it('refuses a conflict that a pricing column’s own collation would call equal, and a generated pricing column, and changes nothing', async (context) => {
    const db = database.db as Kysely<any>
    if (target === 'pglite') context.skip('PGlite has no ICU collations')
    await sql`CREATE COLLATION IF NOT EXISTS x402_test_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`.execute(
      db,
    )
    await sql`ALTER TABLE ai_models ADD COLUMN pricing_prompt text COLLATE x402_test_ci`.execute(db)
    await insertModel(db, 'case/differs', { prompt: 'FREE' })
    await sql`UPDATE ai_models SET pricing_prompt = 'free'`.execute(db)
    const schema = await snapshotPublicSchema(db)
    const conflict = (await migrateUp(db, { env: {} }).catch((caught: unknown) => caught)) as Error
    expect(conflict.message).toContain(
      "case/differs (pricing_prompt is 'free', pricing says 'FREE')",
    )
    expect(await snapshotPublicSchema(db)).toEqual(schema)
    await sql`DELETE FROM ai_models`.execute(db)
    await sql`ALTER TABLE ai_models DROP COLUMN pricing_prompt`.execute(db)

    await sql`ALTER TABLE ai_models ADD COLUMN pricing_image text GENERATED ALWAYS AS (display_name) STORED`.execute(
      db,
    )
    await insertModel(db, 'some/model', { image: '1' })
    const generated = (await migrateUp(db, { env: {} }).catch((caught: unknown) => caught)) as Error
    expect(generated.message).toContain('pricing_image is a generated column')
    expect(generated.message).toContain('Nothing was changed.')
    await sql`DELETE FROM ai_models`.execute(db)
    await sql`ALTER TABLE ai_models DROP COLUMN pricing_image`.execute(db)
    await sql`DROP COLLATION x402_test_ci`.execute(db)
  })

  it('refuses the down, naming the models, where NOT NULL cannot be put back, and changes nothing', async () => {
    const db = database.db as Kysely<any>
    await migrateTo(db, MIGRATION_006)
    await sql`INSERT INTO x402_openrouter_models (openrouter_id, display_name, provider, is_active) VALUES ('synced/unknown', 'U', 'p', NULL)`.execute(
      db,
    )
    const schema = await snapshotPublicSchema(db)
    const error = await migrateDown(db, { env: {}, allowDataLoss: true }).catch(
      (caught: unknown) => caught,
    )
    expect(error).toMatchObject({ migrationName: MIGRATION_006, direction: 'Down' })
    expect((error as Error).message).toContain(
      'puts NOT NULL back on x402_openrouter_models.is_active, created_at and updated_at, and 1 model(s) have no value there: synced/unknown. Nothing was changed.',
    )
    expect(await snapshotPublicSchema(db)).toEqual(schema)
    await sql`DELETE FROM x402_openrouter_models`.execute(db)
    await migrateDown(db, { env: {} })
  })

  it('goes down to the plan’s exact schema when the catalog is empty, and up again to the same', async () => {
    const db = database.db as Kysely<any>
    const at005 = await snapshotPublicSchema(db)
    await migrateTo(db, MIGRATION_006)
    const at006 = await snapshotPublicSchema(db)
    await migrateDown(db, { env: {} })
    expect(await snapshotPublicSchema(db)).toEqual(at005)
    await migrateUp(db)
    expect(await snapshotPublicSchema(db)).toEqual(at006)
    await migrateDown(db, { env: {} })
  })
})
