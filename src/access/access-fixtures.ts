import { type Kysely, sql } from 'kysely'

import { migrateTo, migrateToLatest } from '../migrator/migrator.js'
import { ACCESS_USERS } from './access-users.js'
import { seedEmptyTables } from './generic-seed.js'
import { refuseLesserCode } from './measure-access.js'

export { ACCESS_USERS } from './access-users.js'

const MODELS = ['11111111-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000002']
const RESOURCES = ['22222222-0000-4000-8000-000000000001', '22222222-0000-4000-8000-000000000002']

/**
 * Builds, on an empty database, what the access matrix measures: every migration, and two
 * users' rows in every table of the schemas it covers. x402_backup gets its tables the way
 * production would: a rollback to 002 with the data-loss opt-in moves the users' keys there
 * (005) and copies the model catalog (006), and migrate:latest then brings the schema back. Any other empty table is seeded generically.
 *
 * @example
 * ```ts
 * const db = createDb({ dataDir: 'memory://' })
 * await seedAccessFixtures(db)
 * ```
 */
export async function seedAccessFixtures(db: Kysely<any>): Promise<void> {
  const quiet = { env: {}, log: () => {} }
  // It writes every table as the session's user: code a lesser login may change is refused first.
  await refuseLesserCode(db)
  await migrateToLatest(db, quiet)
  for (const [name, id] of Object.entries(ACCESS_USERS)) {
    await sql`
      INSERT INTO auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
      VALUES (${id}, 'authenticated', 'authenticated', ${`user-${name.toLowerCase()}@example.test`}, '{}', '{}', now(), now())
    `.execute(db)
  }
  for (const [index, id] of MODELS.entries()) {
    await sql`
      INSERT INTO x402_openrouter_models (id, openrouter_id, display_name, provider, context_length)
      VALUES (${id}, ${`provider/model-${index}`}, ${`Model ${index}`}, 'provider', 8192)
    `.execute(db)
  }
  await seedOpenRouterRows(db)

  await migrateTo(db, '002_add_claude_integration', { ...quiet, allowDataLoss: true })
  await migrateToLatest(db, quiet)
  await seedOpenRouterRows(db)
  await sql`
    INSERT INTO x402_resources (id, name, resource_url, normalized_url, network, pay_to)
    VALUES (${RESOURCES[1]}, 'External', 'https://api.example.test/external', 'api.example.test/external', 'base', '0x0')
  `.execute(db)
  for (const id of Object.values(ACCESS_USERS)) {
    await sql`INSERT INTO x402_user_claude_configs (user_id, api_key_encrypted) VALUES (${id}, 'aa:bb')`.execute(
      db,
    )
  }
  // A table added later and not seeded above still gets two rows where its columns allow.
  await seedEmptyTables(db)
}

/** The rows a rollback of 005 moves to x402_backup: both users' keys, one openrouter_instant resource. */
async function seedOpenRouterRows(db: Kysely<any>): Promise<void> {
  for (const id of Object.values(ACCESS_USERS)) {
    await sql`INSERT INTO x402_user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${id}, 'cc:dd')`.execute(
      db,
    )
  }
  await sql`
    INSERT INTO x402_resources (id, name, resource_url, normalized_url, network, pay_to, resource_type, openrouter_model_id, openrouter_config)
    VALUES (${RESOURCES[0]}, 'Instant', 'https://api.example.test/instant', 'api.example.test/instant', 'base', '0x0',
            'openrouter_instant', ${MODELS[0]}, '{"modelId": "provider/model-0"}')
  `.execute(db)
}
