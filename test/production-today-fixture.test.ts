import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  CATALOG_ROWS,
  createProductionTodayTestDatabase,
  PRODUCTION_TODAY_TABLES,
  RESOURCE_ROWS,
  RLS_OFF_TABLES,
  rowLevelSecurityByTable,
} from './support/production-today.js'
import { type TestDatabase, testTargets } from './support/test-database.js'

// The fixture other tests take over must stay as production-today.md describes production, or
// they prove less than they say.
describe.each(testTargets)('the production-today fixture on %s', (target) => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createProductionTodayTestDatabase(target)
  })
  afterAll(async () => {
    await database.destroy()
  })

  it('has the 44 tables, with RLS on in all but the catalog and x402_oauth_pending', async () => {
    const rls = await rowLevelSecurityByTable(database.db)
    expect(Object.keys(rls).sort()).toEqual([...PRODUCTION_TODAY_TABLES].sort())
    expect(PRODUCTION_TODAY_TABLES).toHaveLength(44)
    expect(
      Object.entries(rls)
        .filter(([, on]) => !on)
        .map(([name]) => name)
        .sort(),
    ).toEqual([...RLS_OFF_TABLES].sort())
  })

  it('has the plan’s objects under production’s names, and no ai_models', async () => {
    const { rows } = await sql<Record<string, unknown>>`
      SELECT to_regclass('public.ai_models') AS ai_models, to_regclass('public.user_openrouter_integrations') AS plan_keys,
             (SELECT count(*)::int FROM pg_attribute WHERE attrelid = 'public.x402_resources'::regclass AND attnum > 0 AND NOT attisdropped) AS columns,
             (SELECT count(*)::int FROM pg_policy WHERE polrelid = 'public.x402_resources'::regclass) AS resource_policies,
             (SELECT confrelid::regclass::text FROM pg_constraint WHERE conname = 'x402_resources_openrouter_model_id_fkey') AS catalog,
             (SELECT confdeltype::text FROM pg_constraint WHERE conname = 'x402_resources_openrouter_model_id_fkey') AS on_delete,
             (SELECT convalidated FROM pg_constraint WHERE conname = 'x402_resources_resource_type_check') AS type_check_validated,
             (SELECT reloptions FROM pg_class WHERE oid = 'public.public_x402_resources'::regclass) AS view_options,
             (SELECT prosecdef AND proconfig IS NULL FROM pg_proc WHERE proname = 'soft_delete_user_tx') AS definer_without_path,
             has_function_privilege('anon', 'soft_delete_user_tx(uuid)', 'EXECUTE') AS anon_executes,
             has_function_privilege('service_role', 'soft_delete_user_tx(uuid)', 'EXECUTE') AS service_executes
    `.execute(database.db)
    expect(rows[0]).toEqual({
      ai_models: null,
      plan_keys: null,
      columns: 75,
      resource_policies: 0,
      catalog: 'x402_openrouter_models',
      on_delete: 'n',
      type_check_validated: true,
      view_options: ['security_invoker=on'],
      definer_without_path: true,
      anon_executes: false,
      service_executes: true,
    })
  })

  it('holds the catalog, 400 resources pointing at catalog rows, stored keys, and rows of users A and B', async () => {
    const { rows } = await sql<Record<string, number>>`
      SELECT (SELECT count(*)::int FROM x402_openrouter_models) AS models,
             (SELECT count(*)::int FROM x402_resources) AS resources,
             (SELECT count(*)::int FROM x402_resources r JOIN x402_openrouter_models m ON m.id = r.openrouter_model_id
               WHERE r.resource_type = 'openrouter_instant') AS pointing,
             (SELECT count(*)::int FROM x402_user_openrouter_integrations WHERE encrypted_api_key ~ '^[0-9a-f]{32}:[0-9a-f]+$') AS keys,
             (SELECT count(*)::int FROM x402_user_claude_configs) AS claude_keys,
             (SELECT count(*)::int FROM pg_constraint WHERE contype = 'f'
               AND confrelid IN ('public.x402_resources'::regclass, 'public.x402_openrouter_models'::regclass,
                                 'public.x402_user_openrouter_integrations'::regclass, 'public.x402_user_claude_configs'::regclass)) AS module_fks
    `.execute(database.db)
    expect(rows[0]).toEqual({
      models: CATALOG_ROWS,
      resources: RESOURCE_ROWS,
      pointing: 60,
      keys: 14,
      claude_keys: 8,
      module_fks: 12,
    })
  })
})
