import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

import { type Kysely, sql } from 'kysely'

import { createDb, IN_MEMORY } from '../../src/connection/create-db.js'
import { dumpEmbeddedDatabase } from '../../src/connection/embedded-database.js'
import { pgliteVersion, readTemplate, writeTemplate } from '../../src/connection/template-cache.js'
import type { TemplatePoint } from '../../src/migrated-dumps/migrated-template.js'
import { ensureSupabaseStandIn } from '../../src/tooling.js'
import {
  createTestDatabase,
  registerTestTemplate,
  type TestDatabase,
  type TestTarget,
} from './test-database.js'

/**
 * A database shaped like x402-jobs' production as it stood after the hand-written
 * `002_add_claude_integration.sql`, built from the facts in /work/shared/reference/*.md and NOT
 * from the module's own migrations or output: an adoption test on it must find what a real
 * takeover finds.
 *
 * What makes it production-shaped, and why each piece is here:
 * - x402_resources is wide (69 columns; production has about 80): enum, array and jsonb
 *   columns the module never ports, a generated tsvector column with a GIN index, extra indexes,
 *   an updated_at trigger. Row level security is ON with no policy for anon or authenticated, so
 *   only the service role (BYPASSRLS) reaches it; the module's baseline leaves RLS off.
 * - Comments are production's own wording, on objects where the module has none.
 * - Functions say `NOW()` in upper case and are laid out as typed in the SQL Editor;
 *   CHECKs are written `IN (...)` and `BETWEEN`, which PostgreSQL stores as `= ANY (ARRAY[...])`
 *   and `>= AND <=`; the claude trigger uses the old `EXECUTE PROCEDURE` spelling.
 * - Twelve other tables, some referencing x402_resources: executions and reviews and favorites
 *   with ON DELETE CASCADE, payment transactions and job run events with ON DELETE SET NULL.
 * - pgvector is not installed on the test servers (PostgreSQL 15 here, PGlite), so production's
 *   `embedding vector(1536)` is stood in for by `embedding real[]`: harmless, because no
 *   migration of the module touches that column and the comparison leaves extra columns alone.
 *
 * Object names the module ports keep production's names (x402_resources_network_check,
 * x402_resources_resource_type_check, pt_max_tokens_range, idx_claude_configs_user_enabled, …).
 */

/** The migration this fixture's schema corresponds to: adopt it here. */
export const PRODUCTION_ADOPTION_POINT = '002_add_claude_integration'

/** The tables of the fixture that no migration of the module creates. */
export const PRODUCTION_ONLY_TABLES = [
  'x402_servers',
  'x402_user_profiles',
  'x402_user_wallets',
  'x402_jobs',
  'x402_job_runs',
  'x402_job_run_events',
  'x402_resource_executions',
  'x402_payment_transactions',
  'x402_resource_reviews',
  'x402_resource_favorites',
  'x402_notifications',
  'x402_platform_settings',
] as const

/**
 * The fixture as SQL statements, one each, in order. They assume the Supabase platform pieces
 * (roles, auth.users, auth.uid()): on a plain server, apply the stand-in first, as
 * {@link buildProductionShapedDatabase} does.
 */
export const PRODUCTION_SHAPED_STATEMENTS: readonly string[] = [
  `CREATE TYPE x402_resource_status AS ENUM ('draft', 'active', 'paused', 'archived')`,
  `CREATE TYPE x402_health_status AS ENUM ('unknown', 'healthy', 'degraded', 'down')`,
  `CREATE TYPE x402_job_status AS ENUM ('draft', 'active', 'paused', 'archived')`,

  `CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql`,

  `CREATE TABLE x402_servers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id UUID REFERENCES auth.users(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    origin_url TEXT NOT NULL UNIQUE,
    favicon_url TEXT,
    verified BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,

  `CREATE TABLE x402_resources (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    server_id UUID REFERENCES x402_servers(id) ON DELETE SET NULL,
    owner_id UUID REFERENCES auth.users(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    slug TEXT,
    description TEXT,
    resource_url TEXT NOT NULL,
    normalized_url TEXT NOT NULL,
    network TEXT NOT NULL,
    pay_to TEXT NOT NULL,
    resource_type TEXT NOT NULL DEFAULT 'external',
    status x402_resource_status NOT NULL DEFAULT 'active',
    health_status x402_health_status NOT NULL DEFAULT 'unknown',
    category TEXT,
    tags TEXT[] DEFAULT '{}',
    networks_supported TEXT[],
    allowed_origins TEXT[],
    max_amount_required NUMERIC(20, 0),
    price_usdc NUMERIC(12, 6),
    asset TEXT,
    scheme TEXT DEFAULT 'exact',
    x402_version INTEGER DEFAULT 1,
    facilitator_url TEXT,
    mime_type TEXT,
    http_method TEXT DEFAULT 'GET',
    timeout_seconds INTEGER DEFAULT 30,
    input_schema JSONB,
    output_schema JSONB,
    extra JSONB,
    metadata JSONB DEFAULT '{}'::jsonb,
    headers JSONB,
    query_params JSONB,
    body_template JSONB,
    example_request JSONB,
    example_response JSONB,
    documentation_url TEXT,
    avatar_url TEXT,
    image_url TEXT,
    source TEXT DEFAULT 'manual',
    is_public BOOLEAN DEFAULT TRUE,
    is_verified BOOLEAN DEFAULT FALSE,
    is_featured BOOLEAN DEFAULT FALSE,
    call_count BIGINT DEFAULT 0,
    success_count BIGINT DEFAULT 0,
    failure_count BIGINT DEFAULT 0,
    view_count INTEGER DEFAULT 0,
    review_count INTEGER DEFAULT 0,
    avg_rating NUMERIC(3, 2),
    total_earned_usdc NUMERIC(18, 6) DEFAULT 0,
    response_time_ms INTEGER,
    rate_limit_per_minute INTEGER,
    last_called_at TIMESTAMPTZ,
    last_checked_at TIMESTAMPTZ,
    static_content TEXT,
    static_content_type TEXT,
    proxy_target_url TEXT,
    proxy_headers JSONB,
    prompt_text TEXT,
    embedding REAL[],
    search_vector TSVECTOR GENERATED ALWAYS AS (
        to_tsvector('english'::regconfig, coalesce(name, '') || ' ' || coalesce(description, ''))
    ) STORED,
    archived_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT x402_resources_network_check
        CHECK (network IN ('solana', 'base', 'ethereum', 'polygon', 'base-sepolia', 'ethereum-sepolia', 'solana-devnet')),
    CONSTRAINT x402_resources_resource_type_check
        CHECK (resource_type IN ('external', 'proxy', 'prompt', 'static')),
    CONSTRAINT x402_resources_http_method_check
        CHECK (http_method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE'))
)`,
  `CREATE UNIQUE INDEX idx_x402_resources_slug ON x402_resources (slug) WHERE slug IS NOT NULL`,
  `CREATE INDEX idx_x402_resources_server ON x402_resources (server_id)`,
  `CREATE INDEX idx_x402_resources_status ON x402_resources (status) WHERE deleted_at IS NULL`,
  `CREATE INDEX idx_x402_resources_tags ON x402_resources USING GIN (tags)`,
  `CREATE INDEX idx_x402_resources_search ON x402_resources USING GIN (search_vector)`,
  `CREATE TRIGGER update_x402_resources_updated_at
    BEFORE UPDATE ON x402_resources
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()`,
  `ALTER TABLE x402_resources ENABLE ROW LEVEL SECURITY`,
  `COMMENT ON TABLE x402_resources IS 'x402 resources listed in the marketplace (service role only: the API reads them through the backend)'`,
  `COMMENT ON COLUMN x402_resources.embedding IS 'Semantic search embedding (vector(1536) in production)'`,

  // 001_add_prompt_template_fields.sql, as pasted into the SQL Editor.
  `ALTER TABLE x402_resources
    ADD COLUMN IF NOT EXISTS pt_system_prompt TEXT,
    ADD COLUMN IF NOT EXISTS pt_parameters JSONB DEFAULT '[]'::jsonb,
    ADD COLUMN IF NOT EXISTS pt_model VARCHAR(100) DEFAULT 'claude-sonnet-4-20250514',
    ADD COLUMN IF NOT EXISTS pt_max_tokens INTEGER DEFAULT 4096,
    ADD COLUMN IF NOT EXISTS pt_allows_user_message BOOLEAN DEFAULT FALSE`,
  `ALTER TABLE x402_resources ADD CONSTRAINT pt_max_tokens_range
    CHECK (pt_max_tokens IS NULL OR pt_max_tokens BETWEEN 1 AND 8192)`,
  `ALTER TABLE x402_resources DROP CONSTRAINT IF EXISTS x402_resources_resource_type_check`,
  `ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check
    CHECK (resource_type IN ('external', 'proxy', 'prompt', 'static', 'prompt_template'))`,
  `COMMENT ON COLUMN x402_resources.pt_system_prompt IS 'System prompt for prompt_template resources'`,
  `COMMENT ON COLUMN x402_resources.pt_parameters IS 'Parameter definitions: [{name, description, required, default}]'`,
  `COMMENT ON COLUMN x402_resources.pt_model IS 'Claude model used to run the template'`,
  `COMMENT ON COLUMN x402_resources.pt_max_tokens IS 'Max tokens per response (1-8192)'`,

  `CREATE TABLE ai_models (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    openrouter_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    provider TEXT NOT NULL,
    description TEXT,
    context_length INTEGER,
    pricing JSONB,
    input_modalities TEXT[] DEFAULT ARRAY['text'],
    supports_tools BOOLEAN DEFAULT FALSE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    synced_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE INDEX idx_ai_models_active ON ai_models (is_active) WHERE is_active`,
  `ALTER TABLE ai_models ENABLE ROW LEVEL SECURITY`,
  `CREATE POLICY "Service role manages models" ON ai_models FOR ALL TO service_role USING (true) WITH CHECK (true)`,
  `COMMENT ON TABLE ai_models IS 'OpenRouter model catalog, synced by the backend'`,

  // 002_add_claude_integration.sql, as pasted into the SQL Editor.
  `CREATE TABLE IF NOT EXISTS x402_user_claude_configs (
    user_id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
    api_key_encrypted TEXT NOT NULL,
    is_enabled BOOLEAN DEFAULT true,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
)`,
  `CREATE INDEX IF NOT EXISTS idx_claude_configs_user_enabled ON x402_user_claude_configs(user_id, is_enabled)`,
  `CREATE OR REPLACE FUNCTION update_claude_config_updated_at()
RETURNS TRIGGER AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql`,
  `CREATE TRIGGER claude_config_updated_at
  BEFORE UPDATE ON x402_user_claude_configs
  FOR EACH ROW
  EXECUTE PROCEDURE update_claude_config_updated_at()`,
  `ALTER TABLE x402_user_claude_configs ENABLE ROW LEVEL SECURITY`,
  `CREATE POLICY "Users can manage their own Claude config"
  ON x402_user_claude_configs
  FOR ALL
  USING (auth.uid() = user_id)
  WITH CHECK (auth.uid() = user_id)`,
  `CREATE POLICY "Service role full access"
  ON x402_user_claude_configs
  FOR ALL
  TO service_role
  USING (true)`,
  `COMMENT ON TABLE x402_user_claude_configs IS 'Stores encrypted Claude API keys for users (AES-256-CBC)'`,
  `COMMENT ON COLUMN x402_user_claude_configs.api_key_encrypted IS 'iv:ciphertext, hex'`,

  `CREATE TABLE x402_user_profiles (
    id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
    username TEXT UNIQUE,
    display_name TEXT,
    avatar_url TEXT,
    bio TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `ALTER TABLE x402_user_profiles ENABLE ROW LEVEL SECURITY`,
  `CREATE POLICY "Profiles are viewable by everyone" ON x402_user_profiles FOR SELECT USING (true)`,
  `CREATE POLICY "Users can update own profile" ON x402_user_profiles FOR UPDATE USING (auth.uid() = id)`,
  `CREATE TRIGGER update_x402_user_profiles_updated_at
    BEFORE UPDATE ON x402_user_profiles
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()`,

  `CREATE TABLE x402_user_wallets (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    network TEXT NOT NULL CHECK (network IN ('solana', 'base')),
    is_primary BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (user_id, address, network)
)`,

  `CREATE TABLE x402_jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    status x402_job_status NOT NULL DEFAULT 'draft',
    workflow JSONB NOT NULL DEFAULT '{}'::jsonb,
    trigger_type TEXT DEFAULT 'manual' CHECK (trigger_type IN ('manual', 'schedule', 'webhook')),
    schedule_cron TEXT,
    network TEXT DEFAULT 'solana',
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE INDEX idx_x402_jobs_owner ON x402_jobs (owner_id)`,

  `CREATE TABLE x402_job_runs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id UUID NOT NULL REFERENCES x402_jobs(id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    total_cost_usdc NUMERIC(18, 6) DEFAULT 0,
    error TEXT,
    started_at TIMESTAMPTZ DEFAULT NOW(),
    completed_at TIMESTAMPTZ
)`,

  `CREATE TABLE x402_job_run_events (
    id BIGSERIAL PRIMARY KEY,
    run_id UUID NOT NULL REFERENCES x402_job_runs(id) ON DELETE CASCADE,
    resource_id UUID REFERENCES x402_resources(id) ON DELETE SET NULL,
    event_type TEXT NOT NULL,
    payload JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE INDEX idx_x402_job_run_events_run ON x402_job_run_events (run_id, created_at)`,

  `CREATE TABLE x402_resource_executions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id UUID NOT NULL REFERENCES x402_resources(id) ON DELETE CASCADE,
    user_id UUID REFERENCES auth.users(id) ON DELETE SET NULL,
    status TEXT NOT NULL CHECK (status IN ('success', 'error', 'timeout')),
    request JSONB,
    response JSONB,
    duration_ms INTEGER,
    cost_usdc NUMERIC(18, 6),
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE INDEX idx_x402_resource_executions_resource ON x402_resource_executions (resource_id, created_at DESC)`,

  `CREATE TABLE x402_payment_transactions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id UUID REFERENCES x402_resources(id) ON DELETE SET NULL,
    run_id UUID REFERENCES x402_job_runs(id) ON DELETE SET NULL,
    payer_address TEXT NOT NULL,
    pay_to TEXT NOT NULL,
    amount NUMERIC(20, 0) NOT NULL,
    asset TEXT,
    network TEXT NOT NULL,
    tx_signature TEXT UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'settled', 'failed')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `ALTER TABLE x402_payment_transactions ENABLE ROW LEVEL SECURITY`,

  `CREATE TABLE x402_resource_reviews (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id UUID NOT NULL REFERENCES x402_resources(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (resource_id, user_id)
)`,

  `CREATE TABLE x402_resource_favorites (
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    resource_id UUID NOT NULL REFERENCES x402_resources(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (user_id, resource_id)
)`,

  `CREATE TABLE x402_notifications (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    payload JSONB DEFAULT '{}'::jsonb,
    read_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,

  `CREATE TABLE x402_platform_settings (
    key TEXT PRIMARY KEY,
    value JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
]

/** {@link PRODUCTION_SHAPED_STATEMENTS} as one script, as the SQL Editor would run it. */
export const PRODUCTION_SHAPED_SQL = `${PRODUCTION_SHAPED_STATEMENTS.join(';\n\n')};\n`

/**
 * Builds the production-shaped schema (see the top of this file) on an empty database, in one
 * transaction: the Supabase stand-in first (roles, auth.users, auth.uid(); a no-op where they
 * exist), then {@link PRODUCTION_SHAPED_STATEMENTS}. It leaves no migration history, as the
 * hand-applied SQL files left none: adopt it with `baselineMigrations(db, PRODUCTION_ADOPTION_POINT)`.
 * Works on PostgreSQL 15 and PGlite.
 *
 * @example
 * ```ts
 * await withTestDatabase(target, async ({ db }) => {
 *   await buildProductionShapedDatabase(db)
 *   await baselineMigrations(db, PRODUCTION_ADOPTION_POINT)
 * })
 * ```
 */
export async function buildProductionShapedDatabase(db: Kysely<any>): Promise<void> {
  await ensureSupabaseStandIn(db)
  await db.transaction().execute(async (trx) => {
    for (const statement of PRODUCTION_SHAPED_STATEMENTS) await sql.raw(statement).execute(trx)
  })
}

/**
 * The files whose code shapes the fixture: this one (the statements) and the Supabase stand-in.
 * Their contents are part of the cached dump's key, so that an edit to either builds it again.
 */
const FIXTURE_SOURCES = ['./production-fixture.ts', '../../src/supabase/stand-in.ts'].map(
  (file) => new URL(file, import.meta.url),
)

let template: Promise<Blob> | undefined

/**
 * A PGlite data-directory dump of {@link buildProductionShapedDatabase}'s database: read from the
 * template cache (keyed by the fixture's sources and PGlite's version; see readTemplate), or built
 * once in memory and cached. A PGlite test database loads it instead of building the schema again.
 */
function productionShapedTemplate(): Promise<Blob> {
  template ??= (async () => {
    const hash = createHash('sha256')
    for (const file of FIXTURE_SOURCES) hash.update(readFileSync(file)).update('\0')
    const key = `production-shaped-pglite-${pgliteVersion()}-${hash.digest('hex').slice(0, 16)}`
    const cached = readTemplate(key)
    if (cached) return cached
    const scratch = createDb({ dataDir: IN_MEMORY })
    try {
      await buildProductionShapedDatabase(scratch)
      const tarball = await dumpEmbeddedDatabase(scratch)
      await writeTemplate(key, tarball)
      return tarball
    } finally {
      await scratch.destroy()
    }
  })()
  template.catch(() => (template = undefined))
  return template
}

/** The starting point of a PGlite test database that holds the production-shaped fixture. */
const PRODUCTION_SHAPED_START = registerTestTemplate(
  'test:production-shaped',
  productionShapedTemplate,
)

/**
 * A new test database holding the production-shaped fixture (no migration history), made by
 * `create` (createTestDatabase's or createScriptableDatabase's way): on PGlite it starts from the
 * fixture's cached dump; on the server {@link buildProductionShapedDatabase} builds it.
 *
 * @example
 * ```ts
 * const database = await createProductionShapedDatabase(target, createScriptableDatabase)
 * await baselineMigrations(database.db, PRODUCTION_ADOPTION_POINT)
 * ```
 */
export async function createProductionShapedDatabase<T extends TestDatabase>(
  target: TestTarget,
  create: (target: TestTarget, startAt: TemplatePoint) => Promise<T>,
): Promise<T> {
  const database = await create(target, target === 'pglite' ? PRODUCTION_SHAPED_START : 'none')
  try {
    // On PGlite, a first query loads the dump: the folder holds the fixture before a test closes
    // db to hand the folder to a command.
    if (target === 'pglite') await sql`SELECT 1`.execute(database.db)
    else await buildProductionShapedDatabase(database.db)
  } catch (error) {
    await database.destroy().catch(() => {})
    throw error
  }
  return database
}

/**
 * {@link createProductionShapedDatabase} with {@link createTestDatabase}.
 *
 * @example
 * ```ts
 * const { db, destroy } = await createProductionShapedTestDatabase('pglite')
 * ```
 */
export function createProductionShapedTestDatabase(target: TestTarget): Promise<TestDatabase> {
  return createProductionShapedDatabase(target, (on, startAt) =>
    createTestDatabase(on, {}, startAt),
  )
}
