import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

import { type Kysely, sql } from 'kysely'

import { ACCESS_USERS } from '../../src/access/access-users.js'
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
 * x402-jobs' production as it is today, built from /work/shared/reference/production-today.md
 * (and supabase-platform.md, x402-context.md), never from the module's migrations or output: a
 * takeover test on it finds what a real takeover finds.
 *
 * What it holds, and why:
 * - 44 tables in `public` (40 from the dump of 2026-01-28, 4 added by hand since: the prompt
 *   template usage log, the wallet-export audit, x402_oauth_pending, and production's own "003",
 *   x402_user_openrouter_integrations). Row level security is on in all of them but
 *   x402_openrouter_models and x402_oauth_pending, as production has it.
 * - The plan's objects under production's names: x402_user_openrouter_integrations as production's
 *   003 made it (the plan's 005 with CREATE TABLE IF NOT EXISTS, renamed), and the catalog
 *   x402_openrouter_models in production's shape (text pricing columns, nullable flags, RLS off).
 *   There is no ai_models.
 * - x402_resources with 75 columns: enum and array columns, a generated tsvector, the prompt
 *   template and OpenRouter columns, RLS on with no policy for the API roles; the 6-value
 *   resource_type CHECK (validated) and the FK to x402_openrouter_models ON DELETE SET NULL with
 *   the partial index idx_x402_resources_openrouter_model.
 * - The tables that reference the module's: job run events (SET NULL), resource executions
 *   (CASCADE), payment transactions (SET NULL), prompt template usage logs (CASCADE), reviews and
 *   favorites (CASCADE), collection items (CASCADE).
 * - The view public_x402_resources `WITH (security_invoker = on)`; soft_delete_user_tx(uuid),
 *   SECURITY DEFINER without a fixed search_path, EXECUTE for service_role only.
 * - Production's spelling: `NOW()` in upper case, CHECKs written `IN (...)`, comments worded its
 *   own way (naming x402_openrouter_models), functions laid out as typed in the SQL Editor.
 * - Data: 32 users (among them the access matrix's users A and B), 40 catalog rows, 400
 *   resources (60 of type openrouter_instant pointing at catalog rows), stored OpenRouter and
 *   Claude keys in the legacy `<iv hex>:<ciphertext hex>` format, and rows owned by A and B in
 *   every table with a user_id, so that who may do what can be measured.
 *
 * Not available on the test servers (PostgreSQL 15 from Debian, PGlite), so stood in for:
 * - pgvector: `embedding vector(1536)` columns are `real[]`, and their ivfflat index a GIN index
 *   on a text expression is not attempted: no index at all (no migration of the module reads them);
 * - pgcrypto's digest(), which filled api_keys.key_hash: the core sha256();
 * - uuid-ossp: gen_random_uuid(), core since PostgreSQL 13.
 *
 * Index names the facts file does not give (the catalog's three) are the module's: 006 names them,
 * and production's dump is the reference the module was told to converge to.
 */

/** The migration whose schema production has today: adopt it here. */
export const PRODUCTION_TODAY_ADOPTION_POINT = '006_rename_to_production_names'

/** The tables of the dump of 2026-01-28, 40 of them. */
const DUMP_TABLES = [
  // The module's, under production's names.
  'x402_resources',
  'x402_user_claude_configs',
  'x402_openrouter_models',
  // The rest of the dump.
  'profiles',
  'api_keys',
  'x402_servers',
  'x402_server_verifications',
  'x402_user_wallets',
  'x402_user_x_tokens',
  'x402_jobs',
  'x402_job_runs',
  'x402_job_run_events',
  'x402_job_schedules',
  'x402_job_webhooks',
  'x402_resource_executions',
  'x402_payment_transactions',
  'x402_resource_reviews',
  'x402_resource_favorites',
  'x402_resource_health_checks',
  'x402_resource_categories',
  'x402_resource_tags',
  'x402_resource_embeddings',
  'x402_collections',
  'x402_collection_items',
  'x402_notifications',
  'x402_platform_settings',
  'x402_user_follows',
  'x402_referrals',
  'x402_payouts',
  'x402_earnings',
  'x402_credit_ledger',
  'x402_invoices',
  'x402_api_usage',
  'x402_rate_limits',
  'x402_webhook_deliveries',
  'x402_audit_log',
  'x402_feature_flags',
  'x402_announcements',
  'x402_support_tickets',
  'x402_search_queries',
] as const

/** The tables added by hand since the dump: production's own "003", and three more. */
const SINCE_TABLES = [
  'x402_user_openrouter_integrations',
  'x402_prompt_template_usage_logs',
  'x402_wallet_export_audit',
  'x402_oauth_pending',
] as const

/** Every table of production's `public` schema, 44 of them. */
export const PRODUCTION_TODAY_TABLES: readonly string[] = [...DUMP_TABLES, ...SINCE_TABLES]

/** The tables where production has row level security off. */
export const RLS_OFF_TABLES = ['x402_openrouter_models', 'x402_oauth_pending'] as const

/** Catalog rows the resources point at, and resources, of the data below. */
export const CATALOG_ROWS = 40
export const RESOURCE_ROWS = 400

/** A deterministic uuid for `kind` number `n`, so that the data is the same on every build. */
function id(kind: string, n: number | string): string {
  const hex = createHash('md5').update(`${kind}:${n}`).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

/** SQL for the same uuid as {@link id}, computed from `expression` (an integer) in the database. */
function idSql(kind: string, expression: string): string {
  const hex = `md5('${kind}:' || (${expression})::text)`
  return `(substr(${hex}, 1, 8) || '-' || substr(${hex}, 9, 4) || '-4' || substr(${hex}, 14, 3) || '-8' || substr(${hex}, 18, 3) || '-' || substr(${hex}, 21, 12))::uuid`
}

/** The users: A and B of the access matrix, then 30 more. */
export const USERS = [
  ACCESS_USERS.A,
  ACCESS_USERS.B,
  ...Array.from({ length: 30 }, (_, n) => id('user', n + 1)),
]
const userSql = (expression: string) =>
  `(ARRAY[${USERS.map((user) => `'${user}'`).join(', ')}]::uuid[])[1 + ((${expression}) % ${USERS.length})]`

/** A catalog row's id, and a resource's, by number (1-based). */
export const modelId = (n: number) => id('model', n)
export const resourceId = (n: number) => id('resource', n)

/** Production's model catalog, x402_openrouter_models, as the dump has it (no rows). */
export const PRODUCTION_CATALOG_STATEMENTS: readonly string[] = [
  `CREATE TABLE x402_openrouter_models (
    id UUID NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    openrouter_id TEXT NOT NULL UNIQUE,
    memeputer_name TEXT,
    display_name TEXT NOT NULL,
    description TEXT,
    provider TEXT NOT NULL,
    modality TEXT NOT NULL DEFAULT 'text',
    context_length INTEGER,
    max_tokens INTEGER,
    pricing_prompt TEXT,
    pricing_completion TEXT,
    pricing_image TEXT,
    pricing_web_search TEXT,
    input_cost_per_million NUMERIC,
    output_cost_per_million NUMERIC,
    capabilities JSONB,
    vision_supported BOOLEAN DEFAULT FALSE,
    web_search_supported BOOLEAN DEFAULT FALSE,
    tool_calling_supported BOOLEAN DEFAULT FALSE,
    is_active BOOLEAN DEFAULT TRUE,
    is_curated BOOLEAN NOT NULL DEFAULT FALSE,
    last_synced_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    CONSTRAINT check_modality_valid CHECK (modality IN ('text', 'image', 'video', 'audio', 'embedding', 'multimodal'))
)`,
  `CREATE INDEX idx_x402_openrouter_models_is_active ON x402_openrouter_models (is_active)`,
  `CREATE INDEX idx_x402_openrouter_models_modality ON x402_openrouter_models (modality)`,
  `CREATE INDEX idx_x402_openrouter_models_is_curated ON x402_openrouter_models (is_curated) WHERE is_curated = true`,
  `COMMENT ON TABLE x402_openrouter_models IS 'Models available through OpenRouter (synced from https://openrouter.ai/api/v1/models)'`,
  `COMMENT ON COLUMN x402_openrouter_models.pricing_prompt IS 'USD per prompt token, as returned by OpenRouter'`,
]

/**
 * Production's own "003", pasted into the SQL Editor: the plan's 005 with CREATE TABLE IF NOT
 * EXISTS and ADD COLUMN IF NOT EXISTS, under production's names (the keys table as
 * x402_user_openrouter_integrations, the foreign key to x402_openrouter_models).
 */
export const PRODUCTION_003_STATEMENTS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS x402_user_openrouter_integrations (
    user_id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
    encrypted_api_key TEXT NOT NULL,
    is_valid BOOLEAN DEFAULT true,
    last_verified_at TIMESTAMPTZ,
    is_enabled BOOLEAN DEFAULT true,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
)`,
  `CREATE INDEX IF NOT EXISTS idx_openrouter_integrations_user_enabled
  ON x402_user_openrouter_integrations(user_id, is_enabled)`,
  `ALTER TABLE x402_user_openrouter_integrations ENABLE ROW LEVEL SECURITY`,
  `CREATE POLICY "Users can manage their own OpenRouter config"
  ON x402_user_openrouter_integrations
  FOR ALL
  USING (auth.uid() = user_id)
  WITH CHECK (auth.uid() = user_id)`,
  `CREATE POLICY "Service role full access on OpenRouter"
  ON x402_user_openrouter_integrations
  FOR ALL
  TO service_role
  USING (true)`,
  `CREATE OR REPLACE FUNCTION update_openrouter_integration_updated_at()
RETURNS TRIGGER AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql`,
  `CREATE TRIGGER openrouter_integration_updated_at
  BEFORE UPDATE ON x402_user_openrouter_integrations
  FOR EACH ROW
  EXECUTE FUNCTION update_openrouter_integration_updated_at()`,
  `ALTER TABLE x402_resources
    ADD COLUMN IF NOT EXISTS openrouter_model_id UUID REFERENCES x402_openrouter_models(id) ON DELETE SET NULL,
    ADD COLUMN IF NOT EXISTS openrouter_config JSONB`,
  `ALTER TABLE x402_resources DROP CONSTRAINT IF EXISTS x402_resources_resource_type_check`,
  `ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check
    CHECK (resource_type IN ('external', 'proxy', 'prompt', 'static', 'prompt_template', 'openrouter_instant'))`,
  `CREATE INDEX IF NOT EXISTS idx_x402_resources_openrouter_model
  ON x402_resources(openrouter_model_id)
  WHERE openrouter_model_id IS NOT NULL`,
  `COMMENT ON TABLE x402_user_openrouter_integrations IS 'Per-user OpenRouter API keys (encrypted, iv:ciphertext)'`,
  `COMMENT ON COLUMN x402_user_openrouter_integrations.encrypted_api_key IS 'AES-256-CBC, iv:ciphertext in hex'`,
  `COMMENT ON COLUMN x402_resources.openrouter_model_id IS 'References x402_openrouter_models(id) for openrouter_instant resources'`,
  `COMMENT ON COLUMN x402_resources.openrouter_config IS 'OpenRouter settings: modelId, systemPrompt, params'`,
]

/**
 * The schema as statements, one each, in order. They assume the Supabase platform pieces
 * (roles, auth.users, auth.uid()): on a plain server, apply the stand-in first, as
 * {@link buildProductionToday} does.
 */
export const PRODUCTION_TODAY_SCHEMA: readonly string[] = [
  `CREATE TYPE x402_resource_status AS ENUM ('draft', 'active', 'paused', 'archived')`,
  `CREATE TYPE x402_health_status AS ENUM ('unknown', 'healthy', 'degraded', 'down')`,
  `CREATE TYPE x402_job_status AS ENUM ('draft', 'active', 'paused', 'archived')`,
  `CREATE TYPE x402_payout_status AS ENUM ('pending', 'sent', 'failed')`,

  // Functions of the dump (11), as typed in the SQL Editor.
  `CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql`,
  `CREATE OR REPLACE FUNCTION update_claude_config_updated_at()
RETURNS TRIGGER AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql`,
  `CREATE OR REPLACE FUNCTION generate_slug(title TEXT)
RETURNS TEXT AS $$
  SELECT lower(regexp_replace(coalesce(title, ''), '[^a-zA-Z0-9]+', '-', 'g'));
$$ LANGUAGE sql IMMUTABLE`,
  `CREATE OR REPLACE FUNCTION is_admin()
RETURNS BOOLEAN AS $$
  SELECT coalesce((auth.jwt() -> 'app_metadata' ->> 'role') = 'admin', false);
$$ LANGUAGE sql STABLE`,
  `CREATE OR REPLACE FUNCTION increment_resource_call_count(resource UUID)
RETURNS VOID AS $$
BEGIN
  UPDATE x402_resources SET call_count = call_count + 1, last_called_at = NOW() WHERE id = resource;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER SET search_path = public`,
  `CREATE OR REPLACE FUNCTION update_resource_review_stats()
RETURNS TRIGGER AS $$
BEGIN
  UPDATE x402_resources r
  SET review_count = (SELECT count(*) FROM x402_resource_reviews v WHERE v.resource_id = r.id),
      avg_rating = (SELECT avg(rating) FROM x402_resource_reviews v WHERE v.resource_id = r.id)
  WHERE r.id = coalesce(NEW.resource_id, OLD.resource_id);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql`,
  `CREATE OR REPLACE FUNCTION set_job_run_completed_at()
RETURNS TRIGGER AS $$
BEGIN
  IF NEW.status IN ('succeeded', 'failed', 'cancelled') AND NEW.completed_at IS NULL THEN
    NEW.completed_at = NOW();
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql`,
  `CREATE OR REPLACE FUNCTION record_credit(account UUID, amount NUMERIC)
RETURNS VOID AS $$
BEGIN
  INSERT INTO x402_credit_ledger (user_id, amount) VALUES (account, amount);
END;
$$ LANGUAGE plpgsql`,
  `CREATE OR REPLACE FUNCTION log_audit_event()
RETURNS TRIGGER AS $$
BEGIN
  INSERT INTO x402_audit_log (actor, action, subject) VALUES (auth.uid(), TG_OP, TG_TABLE_NAME);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER SET search_path = public`,

  `CREATE TABLE profiles (
    id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
    username TEXT UNIQUE,
    display_name TEXT,
    avatar_url TEXT,
    bio TEXT,
    wallet_address TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,

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
  `CREATE TABLE x402_server_verifications (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    server_id UUID NOT NULL REFERENCES x402_servers(id) ON DELETE CASCADE,
    token TEXT NOT NULL,
    verified_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,

  ...PRODUCTION_CATALOG_STATEMENTS,

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
    featured_rank INTEGER,
    call_count BIGINT DEFAULT 0,
    success_count BIGINT DEFAULT 0,
    failure_count BIGINT DEFAULT 0,
    view_count INTEGER DEFAULT 0,
    review_count INTEGER DEFAULT 0,
    avg_rating NUMERIC(3, 2),
    total_earned_usdc NUMERIC(18, 6) DEFAULT 0,
    response_time_ms INTEGER,
    avg_latency_ms INTEGER,
    rate_limit_per_minute INTEGER,
    last_called_at TIMESTAMPTZ,
    last_checked_at TIMESTAMPTZ,
    static_content TEXT,
    static_content_type TEXT,
    proxy_target_url TEXT,
    proxy_headers JSONB,
    prompt_text TEXT,
    owner_wallet TEXT,
    last_error TEXT,
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
  `COMMENT ON COLUMN x402_resources.embedding IS 'Semantic search embedding: vector(1536) in production (pgvector, ivfflat index); real[] here'`,

  // Production's 001_add_prompt_template_fields.sql.
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
  `COMMENT ON COLUMN x402_resources.resource_type IS 'external | proxy | prompt | static | prompt_template | openrouter_instant'`,

  // Production's 002_add_claude_integration.sql.
  `CREATE TABLE IF NOT EXISTS x402_user_claude_configs (
    user_id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
    api_key_encrypted TEXT NOT NULL,
    is_enabled BOOLEAN DEFAULT true,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
)`,
  `CREATE INDEX IF NOT EXISTS idx_claude_configs_user_enabled ON x402_user_claude_configs(user_id, is_enabled)`,
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

  ...PRODUCTION_003_STATEMENTS,

  `CREATE OR REPLACE FUNCTION search_resources(query TEXT)
RETURNS SETOF UUID AS $$
  SELECT id FROM x402_resources WHERE search_vector @@ plainto_tsquery('english', coalesce(query, '')) AND deleted_at IS NULL;
$$ LANGUAGE sql STABLE`,
  `CREATE OR REPLACE FUNCTION get_resource_stats(resource UUID)
RETURNS JSONB AS $$
  SELECT jsonb_build_object('calls', call_count, 'earned', total_earned_usdc) FROM x402_resources WHERE id = resource;
$$ LANGUAGE sql STABLE`,
  `CREATE VIEW public_x402_resources WITH (security_invoker = on) AS
  SELECT id, name, slug, description, resource_url, network, resource_type, category, tags, price_usdc,
         avatar_url, avg_rating, review_count, openrouter_model_id, created_at
  FROM x402_resources
  WHERE is_public AND deleted_at IS NULL`,
  `COMMENT ON VIEW public_x402_resources IS 'Public columns of x402_resources for the marketplace'`,

  `CREATE TABLE api_keys (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    last_used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_user_wallets (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    network TEXT NOT NULL CHECK (network IN ('solana', 'base')),
    private_key TEXT,
    mnemonic TEXT,
    is_primary BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (user_id, address, network)
)`,
  `CREATE TABLE x402_user_x_tokens (
    user_id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
    x_user_id TEXT,
    access_token TEXT,
    refresh_token TEXT,
    expires_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    status x402_job_status NOT NULL DEFAULT 'draft',
    workflow JSONB NOT NULL DEFAULT '{}'::jsonb,
    trigger_type TEXT DEFAULT 'manual' CHECK (trigger_type IN ('manual', 'schedule', 'webhook')),
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
  `CREATE TABLE x402_job_schedules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id UUID NOT NULL REFERENCES x402_jobs(id) ON DELETE CASCADE,
    cron TEXT NOT NULL,
    next_run_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_job_webhooks (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id UUID NOT NULL REFERENCES x402_jobs(id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
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
  `CREATE TABLE x402_resource_health_checks (
    id BIGSERIAL PRIMARY KEY,
    resource_id UUID NOT NULL REFERENCES x402_resources(id) ON DELETE CASCADE,
    status x402_health_status NOT NULL,
    response_time_ms INTEGER,
    checked_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_resource_categories (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    position INTEGER DEFAULT 0
)`,
  `CREATE TABLE x402_resource_tags (
    resource_id UUID NOT NULL REFERENCES x402_resources(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (resource_id, tag)
)`,
  `CREATE TABLE x402_resource_embeddings (
    resource_id UUID PRIMARY KEY REFERENCES x402_resources(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    embedding REAL[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `COMMENT ON COLUMN x402_resource_embeddings.embedding IS 'vector(1536) with an ivfflat index in production (pgvector); real[] here'`,
  `CREATE TABLE x402_collections (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_public BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_collection_items (
    collection_id UUID NOT NULL REFERENCES x402_collections(id) ON DELETE CASCADE,
    resource_id UUID NOT NULL REFERENCES x402_resources(id) ON DELETE CASCADE,
    added_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (collection_id, resource_id)
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
  `CREATE TABLE x402_user_follows (
    follower_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (follower_id, user_id)
)`,
  `CREATE TABLE x402_referrals (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    referrer_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_payouts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    amount_usdc NUMERIC(18, 6) NOT NULL,
    status x402_payout_status NOT NULL DEFAULT 'pending',
    tx_signature TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_earnings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    resource_id UUID REFERENCES x402_resources(id) ON DELETE SET NULL,
    amount_usdc NUMERIC(18, 6) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_credit_ledger (
    id BIGSERIAL PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    amount NUMERIC(18, 6) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_invoices (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    total_usdc NUMERIC(18, 6) NOT NULL,
    period_start DATE NOT NULL,
    period_end DATE NOT NULL,
    CHECK (period_end >= period_start)
)`,
  `CREATE TABLE x402_api_usage (
    id BIGSERIAL PRIMARY KEY,
    user_id UUID REFERENCES auth.users(id) ON DELETE SET NULL,
    api_key_id UUID REFERENCES api_keys(id) ON DELETE SET NULL,
    path TEXT NOT NULL,
    status_code INTEGER,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_rate_limits (
    subject TEXT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0
)`,
  `CREATE TABLE x402_webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id UUID NOT NULL REFERENCES x402_job_webhooks(id) ON DELETE CASCADE,
    status_code INTEGER,
    delivered_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_audit_log (
    id BIGSERIAL PRIMARY KEY,
    actor UUID,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_feature_flags (
    key TEXT PRIMARY KEY,
    enabled BOOLEAN NOT NULL DEFAULT FALSE,
    rollout INTEGER DEFAULT 0 CHECK (rollout BETWEEN 0 AND 100)
)`,
  `CREATE TABLE x402_announcements (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    title TEXT NOT NULL,
    body TEXT,
    published_at TIMESTAMPTZ
)`,
  `CREATE TABLE x402_support_tickets (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'closed')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `CREATE TABLE x402_search_queries (
    id BIGSERIAL PRIMARY KEY,
    user_id UUID REFERENCES auth.users(id) ON DELETE SET NULL,
    query TEXT NOT NULL,
    results INTEGER,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,

  // The dump's other triggers (15 with the two above).
  ...[
    'x402_servers',
    'profiles',
    'api_keys',
    'x402_user_wallets',
    'x402_user_x_tokens',
    'x402_jobs',
    'x402_collections',
    'x402_support_tickets',
  ].map(
    (table) => `CREATE TRIGGER update_${table}_updated_at
    BEFORE UPDATE ON ${table}
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()`,
  ),
  `CREATE TRIGGER update_x402_platform_settings_updated_at
    BEFORE UPDATE ON x402_platform_settings
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()`,
  `CREATE TRIGGER resource_review_stats
    AFTER INSERT OR UPDATE OR DELETE ON x402_resource_reviews
    FOR EACH ROW EXECUTE FUNCTION update_resource_review_stats()`,
  `CREATE TRIGGER job_run_completed_at
    BEFORE UPDATE ON x402_job_runs
    FOR EACH ROW EXECUTE FUNCTION set_job_run_completed_at()`,
  `CREATE TRIGGER audit_payouts
    AFTER INSERT OR UPDATE OR DELETE ON x402_payouts
    FOR EACH ROW EXECUTE FUNCTION log_audit_event()`,

  // Row level security, and the dump's 22 policies (the Claude table's two are above).
  ...DUMP_TABLES.filter(
    (table) =>
      !(RLS_OFF_TABLES as readonly string[]).includes(table) &&
      table !== 'x402_resources' &&
      table !== 'x402_user_claude_configs',
  ).map((table) => `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`),
  `CREATE POLICY "Profiles are viewable by everyone" ON profiles FOR SELECT USING (true)`,
  `CREATE POLICY "Users can update own profile" ON profiles FOR UPDATE USING (auth.uid() = id)`,
  `CREATE POLICY "Servers are viewable by everyone" ON x402_servers FOR SELECT USING (true)`,
  `CREATE POLICY "Owners manage their servers" ON x402_servers FOR ALL TO authenticated USING (auth.uid() = owner_id) WITH CHECK (auth.uid() = owner_id)`,
  `CREATE POLICY "Users read own api keys" ON api_keys FOR SELECT USING (auth.uid() = user_id)`,
  `CREATE POLICY "Users delete own api keys" ON api_keys FOR DELETE USING (auth.uid() = user_id)`,
  `CREATE POLICY "Users read own wallets" ON x402_user_wallets FOR SELECT USING (auth.uid() = user_id)`,
  `CREATE POLICY "Users read own x tokens" ON x402_user_x_tokens FOR SELECT USING (auth.uid() = user_id)`,
  `CREATE POLICY "Owners manage their jobs" ON x402_jobs FOR ALL USING (auth.uid() = owner_id) WITH CHECK (auth.uid() = owner_id)`,
  `CREATE POLICY "Owners read their job runs" ON x402_job_runs FOR SELECT USING (EXISTS (SELECT 1 FROM x402_jobs j WHERE j.id = job_id AND j.owner_id = auth.uid()))`,
  `CREATE POLICY "Reviews are public" ON x402_resource_reviews FOR SELECT USING (true)`,
  `CREATE POLICY "Users write own reviews" ON x402_resource_reviews FOR INSERT TO authenticated WITH CHECK (auth.uid() = user_id)`,
  `CREATE POLICY "Users manage own favorites" ON x402_resource_favorites FOR ALL USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id)`,
  `CREATE POLICY "Users read own notifications" ON x402_notifications FOR SELECT USING (auth.uid() = user_id)`,
  `CREATE POLICY "Users mark own notifications read" ON x402_notifications FOR UPDATE USING (auth.uid() = user_id)`,
  `CREATE POLICY "Users manage own collections" ON x402_collections FOR ALL USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id)`,
  `CREATE POLICY "Public collections are viewable" ON x402_collections FOR SELECT USING (is_public)`,
  `CREATE POLICY "Users read own follows" ON x402_user_follows FOR SELECT USING (auth.uid() = user_id OR auth.uid() = follower_id)`,
  `CREATE POLICY "Users read own tickets" ON x402_support_tickets FOR SELECT USING (auth.uid() = user_id)`,
  `CREATE POLICY "Categories are public" ON x402_resource_categories FOR SELECT USING (true)`,

  // By hand since the dump.
  `CREATE TABLE x402_prompt_template_usage_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id UUID NOT NULL REFERENCES x402_resources(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('success', 'failed')),
    input_tokens INTEGER,
    output_tokens INTEGER,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `ALTER TABLE x402_prompt_template_usage_logs ENABLE ROW LEVEL SECURITY`,
  `CREATE POLICY "Users read own usage logs" ON x402_prompt_template_usage_logs FOR SELECT TO authenticated USING (auth.uid() = user_id)`,
  `CREATE POLICY "Service role inserts usage logs" ON x402_prompt_template_usage_logs FOR INSERT TO service_role WITH CHECK (true)`,
  `CREATE POLICY "Template owners read usage of their templates" ON x402_prompt_template_usage_logs FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM x402_resources r JOIN x402_servers s ON s.id = r.server_id
                   WHERE r.id = x402_prompt_template_usage_logs.resource_id AND s.owner_id = auth.uid()))`,

  `ALTER TABLE x402_user_wallets ADD COLUMN encrypted_private_key TEXT, ADD COLUMN encrypted_mnemonic TEXT, ADD COLUMN encryption_version INTEGER`,
  `UPDATE x402_user_wallets SET encrypted_private_key = 'migrated', encryption_version = 1 WHERE encrypted_private_key IS NULL`,
  `ALTER TABLE x402_user_wallets DROP COLUMN private_key, DROP COLUMN mnemonic`,
  `ALTER TABLE x402_user_wallets ALTER COLUMN encrypted_private_key SET NOT NULL`,
  `ALTER TABLE x402_user_wallets ADD CONSTRAINT x402_user_wallets_encryption_consistent
    CHECK ((encrypted_mnemonic IS NULL) OR (encryption_version IS NOT NULL))`,

  `ALTER TABLE api_keys ADD COLUMN key_hash TEXT, ADD COLUMN key_prefix TEXT`,
  // Production filled key_hash with extensions.digest(key, 'sha256') (pgcrypto); the core sha256() is the same.
  `UPDATE api_keys SET key_hash = encode(sha256(convert_to(key, 'UTF8')), 'hex'), key_prefix = left(key, 8)`,
  `CREATE UNIQUE INDEX idx_api_keys_key_hash ON api_keys (key_hash)`,
  `ALTER TABLE api_keys ALTER COLUMN key DROP NOT NULL`,

  `CREATE TABLE x402_wallet_export_audit (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    wallet_id UUID REFERENCES x402_user_wallets(id) ON DELETE SET NULL,
    ip_address TEXT,
    exported_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,
  `ALTER TABLE x402_wallet_export_audit ENABLE ROW LEVEL SECURITY`,
  `CREATE POLICY "Users read own export audit" ON x402_wallet_export_audit FOR SELECT USING (auth.uid() = user_id)`,

  `CREATE TABLE x402_oauth_pending (
    state TEXT PRIMARY KEY,
    user_id UUID REFERENCES auth.users(id) ON DELETE CASCADE,
    code_verifier TEXT NOT NULL,
    oauth_token TEXT,
    oauth_token_secret TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)`,

  `ALTER TABLE x402_user_x_tokens ADD COLUMN access_token_encrypted TEXT, ADD COLUMN refresh_token_encrypted TEXT`,
  `CREATE INDEX idx_x402_user_x_tokens_expiring ON x402_user_x_tokens (expires_at) WHERE refresh_token_encrypted IS NOT NULL`,

  `ALTER TABLE profiles ADD COLUMN deleted_at TIMESTAMPTZ`,
  `CREATE INDEX idx_profiles_active_username ON profiles (username) WHERE deleted_at IS NULL`,
  `CREATE INDEX idx_profiles_deleted ON profiles (deleted_at) WHERE deleted_at IS NOT NULL`,

  `CREATE OR REPLACE FUNCTION soft_delete_user_tx(target_user UUID)
RETURNS VOID AS $$
BEGIN
  UPDATE profiles SET deleted_at = NOW() WHERE id = target_user;
  DELETE FROM x402_user_openrouter_integrations WHERE user_id = target_user;
  DELETE FROM x402_user_claude_configs WHERE user_id = target_user;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER`,
  `REVOKE EXECUTE ON FUNCTION soft_delete_user_tx(UUID) FROM PUBLIC, anon, authenticated`,
  `GRANT EXECUTE ON FUNCTION soft_delete_user_tx(UUID) TO service_role`,
]

/** The data, as statements: deterministic, so that every build holds the same rows. */
export const PRODUCTION_TODAY_ROWS: readonly string[] = [
  `INSERT INTO auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
   SELECT u, 'authenticated', 'authenticated', 'user' || n || '@example.test', '{"provider": "email"}', '{}',
          timestamptz '2025-06-01' + n * interval '1 day', timestamptz '2025-06-01' + n * interval '1 day'
   FROM unnest(ARRAY[${USERS.map((user) => `'${user}'`).join(', ')}]::uuid[]) WITH ORDINALITY AS v(u, n)`,
  `INSERT INTO profiles (id, username, display_name, created_at, updated_at)
   SELECT id, 'user' || row_number() OVER (ORDER BY email), 'User', created_at, created_at FROM auth.users`,
  `INSERT INTO x402_servers (id, owner_id, name, origin_url, verified, created_at, updated_at)
   SELECT ${idSql('server', 'n')}, ${userSql('n')}, 'Server ' || n, 'https://api' || n || '.example.test', n % 3 = 0,
          timestamptz '2025-07-01' + n * interval '1 hour', timestamptz '2025-07-01' + n * interval '1 hour'
   FROM generate_series(1, 20) AS n`,
  `INSERT INTO x402_openrouter_models (id, openrouter_id, memeputer_name, display_name, description, provider, modality, context_length,
                                      max_tokens, pricing_prompt, pricing_completion, pricing_image, pricing_web_search,
                                      input_cost_per_million, output_cost_per_million, capabilities, vision_supported,
                                      tool_calling_supported, is_active, is_curated, last_synced_at, created_at, updated_at)
   SELECT ${idSql('model', 'n')}, 'provider-' || n % 7 || '/model-' || n, CASE WHEN n % 5 = 0 THEN 'meme-' || n END, 'Model ' || n,
          'A model', 'provider-' || n % 7, (ARRAY['text', 'text', 'image', 'multimodal', 'embedding'])[1 + n % 5], 8192 * (1 + n % 16),
          4096, '0.00000' || (1 + n % 9), '0.0000' || (1 + n % 9), CASE WHEN n % 4 = 0 THEN '0.001' END, CASE WHEN n % 6 = 0 THEN '0.01' END,
          (1 + n % 9)::numeric, (10 + n % 9)::numeric, '{"reasoning": false}', n % 4 = 0, n % 2 = 0,
          CASE WHEN n % 13 = 0 THEN NULL ELSE n % 10 <> 0 END, n % 8 = 0, timestamptz '2026-01-20',
          timestamptz '2025-08-01', CASE WHEN n % 11 = 0 THEN NULL ELSE timestamptz '2026-01-20' END
   FROM generate_series(1, ${CATALOG_ROWS}) AS n`,
  `INSERT INTO x402_resources (id, server_id, owner_id, name, slug, description, resource_url, normalized_url, network, pay_to,
                              resource_type, status, category, tags, price_usdc, http_method, is_public, metadata,
                              pt_system_prompt, pt_parameters, openrouter_model_id, openrouter_config, embedding,
                              deleted_at, created_at, updated_at)
   SELECT ${idSql('resource', 'n')}, ${idSql('server', '1 + n % 20')}, ${userSql('n')}, 'Resource ' || n, 'resource-' || n,
          'Pay-per-call API number ' || n, 'https://api' || (1 + n % 20) || '.example.test/r/' || n,
          'api' || (1 + n % 20) || '.example.test/r/' || n,
          (ARRAY['solana', 'base', 'ethereum', 'polygon', 'base-sepolia'])[1 + n % 5], '0x' || lpad(to_hex(n), 40, '0'),
          CASE WHEN n <= 60 THEN 'openrouter_instant' WHEN n <= 100 THEN 'prompt_template'
               ELSE (ARRAY['external', 'proxy', 'prompt', 'static'])[1 + n % 4] END,
          (ARRAY['active', 'active', 'paused', 'draft'])[1 + n % 4]::x402_resource_status,
          (ARRAY['ai', 'data', 'finance', 'media'])[1 + n % 4], ARRAY['tag' || n % 9, 'x402'], (n % 50) / 100.0,
          (ARRAY['GET', 'POST'])[1 + n % 2], n % 10 <> 0, jsonb_build_object('rank', n),
          CASE WHEN n > 60 AND n <= 100 THEN 'You are resource ' || n END,
          CASE WHEN n > 60 AND n <= 100 THEN '[{"name": "topic", "required": true}]'::jsonb ELSE '[]'::jsonb END,
          CASE WHEN n <= 60 THEN ${idSql('model', `1 + n % ${CATALOG_ROWS}`)} END,
          CASE WHEN n <= 60 THEN jsonb_build_object('modelId', 'provider-' || (1 + n % ${CATALOG_ROWS}) % 7 || '/model-' || (1 + n % ${CATALOG_ROWS}),
                                                    'systemPrompt', 'Be brief.', 'params', jsonb_build_object('temperature', 0.2)) END,
          ARRAY[n / 400.0, 1 - n / 400.0]::real[], CASE WHEN n % 97 = 0 THEN timestamptz '2026-01-02' END,
          timestamptz '2025-09-01' + n * interval '1 hour', timestamptz '2025-09-01' + n * interval '1 hour'
   FROM generate_series(1, ${RESOURCE_ROWS}) AS n`,
  `INSERT INTO x402_user_openrouter_integrations (user_id, encrypted_api_key, is_valid, last_verified_at, is_enabled, created_at, updated_at)
   SELECT u, md5('iv' || n) || ':' || md5('ct' || n) || md5('ct2' || n), n % 7 <> 0, timestamptz '2026-01-10', n % 5 <> 0,
          timestamptz '2026-01-05', timestamptz '2026-01-10'
   FROM unnest(ARRAY[${USERS.slice(0, 14)
     .map((user) => `'${user}'`)
     .join(', ')}]::uuid[]) WITH ORDINALITY AS v(u, n)`,
  `INSERT INTO x402_user_claude_configs (user_id, api_key_encrypted, is_enabled, created_at, updated_at)
   SELECT u, md5('claude-iv' || n) || ':' || md5('claude-ct' || n), true, timestamptz '2025-10-01', timestamptz '2025-10-01'
   FROM unnest(ARRAY[${USERS.slice(0, 8)
     .map((user) => `'${user}'`)
     .join(', ')}]::uuid[]) WITH ORDINALITY AS v(u, n)`,
  `INSERT INTO api_keys (id, user_id, name, key, created_at, updated_at)
   SELECT ${idSql('api-key', 'n')}, ${userSql('n - 1')}, 'key ' || n, 'x402_live_' || md5('key' || n), timestamptz '2025-11-01', timestamptz '2025-11-01'
   FROM generate_series(1, 6) AS n`,
  `UPDATE api_keys SET key_hash = encode(sha256(convert_to(key, 'UTF8')), 'hex'), key_prefix = left(key, 8)`,
  `UPDATE api_keys SET key = NULL WHERE name = 'key 5'`,
  `INSERT INTO x402_user_wallets (id, user_id, address, network, encrypted_private_key, encryption_version, is_primary)
   SELECT ${idSql('wallet', 'n')}, ${userSql('n - 1')}, 'addr' || n, (ARRAY['solana', 'base'])[1 + n % 2], md5('wk' || n), 2, n <= 2
   FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_user_x_tokens (user_id, x_user_id, access_token_encrypted, refresh_token_encrypted, expires_at)
   SELECT ${userSql('n - 1')}, 'x' || n, md5('at' || n), md5('rt' || n), timestamptz '2026-02-01' FROM generate_series(1, 4) AS n`,
  `INSERT INTO x402_jobs (id, owner_id, name, status)
   SELECT ${idSql('job', 'n')}, ${userSql('n - 1')}, 'Job ' || n, 'active' FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_job_runs (id, job_id, status, started_at)
   SELECT ${idSql('run', 'n')}, ${idSql('job', '1 + n % 6')}, 'succeeded', timestamptz '2026-01-15' FROM generate_series(1, 8) AS n`,
  `INSERT INTO x402_job_run_events (run_id, resource_id, event_type, created_at)
   SELECT ${idSql('run', '1 + n % 8')}, ${idSql('resource', 'n * 7')}, 'call', timestamptz '2026-01-15' FROM generate_series(1, 12) AS n`,
  `INSERT INTO x402_job_schedules (job_id, cron) SELECT ${idSql('job', 'n')}, '0 * * * *' FROM generate_series(1, 2) AS n`,
  `INSERT INTO x402_job_webhooks (id, job_id, secret) SELECT ${idSql('webhook', 'n')}, ${idSql('job', 'n')}, md5('whs' || n) FROM generate_series(1, 2) AS n`,
  `INSERT INTO x402_webhook_deliveries (webhook_id, status_code) SELECT ${idSql('webhook', '1 + n % 2')}, 200 FROM generate_series(1, 3) AS n`,
  `INSERT INTO x402_resource_executions (resource_id, user_id, status, duration_ms, created_at)
   SELECT ${idSql('resource', '1 + n % 60')}, ${userSql('n % 2')}, 'success', 120, timestamptz '2026-01-16' FROM generate_series(1, 20) AS n`,
  `INSERT INTO x402_payment_transactions (resource_id, payer_address, pay_to, amount, network, tx_signature, status)
   SELECT ${idSql('resource', 'n')}, 'payer' || n, '0xpay', 1000 * n, 'base', 'sig' || n, 'settled' FROM generate_series(1, 10) AS n`,
  `INSERT INTO x402_resource_reviews (resource_id, user_id, rating, body)
   SELECT ${idSql('resource', 'n')}, ${userSql('n - 1')}, 1 + n % 5, 'ok' FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_resource_favorites (user_id, resource_id) SELECT ${userSql('n - 1')}, ${idSql('resource', 'n + 100')} FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_resource_health_checks (resource_id, status, response_time_ms)
   SELECT ${idSql('resource', 'n')}, 'healthy', 90 FROM generate_series(1, 5) AS n`,
  `INSERT INTO x402_resource_categories (slug, name, position) VALUES ('ai', 'AI', 1), ('data', 'Data', 2)`,
  `INSERT INTO x402_resource_tags (resource_id, tag) SELECT ${idSql('resource', 'n')}, 'x402' FROM generate_series(1, 5) AS n`,
  `INSERT INTO x402_resource_embeddings (resource_id, model, embedding)
   SELECT ${idSql('resource', 'n')}, 'text-embedding-3-small', ARRAY[0.1, 0.2]::real[] FROM generate_series(1, 5) AS n`,
  `INSERT INTO x402_collections (id, user_id, name, is_public)
   SELECT ${idSql('collection', 'n')}, ${userSql('n - 1')}, 'Collection ' || n, n % 2 = 0 FROM generate_series(1, 4) AS n`,
  `INSERT INTO x402_collection_items (collection_id, resource_id)
   SELECT ${idSql('collection', '1 + n % 4')}, ${idSql('resource', 'n + 200')} FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_notifications (user_id, kind) SELECT ${userSql('n - 1')}, 'payment' FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_platform_settings (key, value) VALUES ('fee_bps', '250'), ('maintenance', 'false')`,
  `INSERT INTO x402_user_follows (follower_id, user_id) SELECT ${userSql('n + 1')}, ${userSql('n - 1')} FROM generate_series(1, 4) AS n`,
  `INSERT INTO x402_referrals (referrer_id, user_id) SELECT ${userSql('n + 2')}, ${userSql('n - 1')} FROM generate_series(1, 4) AS n`,
  `INSERT INTO x402_payouts (user_id, amount_usdc, status) SELECT ${userSql('n - 1')}, 10 * n, 'sent' FROM generate_series(1, 4) AS n`,
  `INSERT INTO x402_earnings (user_id, resource_id, amount_usdc) SELECT ${userSql('n - 1')}, ${idSql('resource', 'n')}, n FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_credit_ledger (user_id, amount) SELECT ${userSql('n - 1')}, n FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_invoices (user_id, total_usdc, period_start, period_end)
   SELECT ${userSql('n - 1')}, 5 * n, date '2026-01-01', date '2026-01-31' FROM generate_series(1, 4) AS n`,
  `INSERT INTO x402_api_usage (user_id, api_key_id, path, status_code)
   SELECT ${userSql('n - 1')}, ${idSql('api-key', 'n')}, '/v1/resources', 200 FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_rate_limits (subject, window_start, hits) VALUES ('ip:1', timestamptz '2026-01-20', 3), ('ip:2', timestamptz '2026-01-20', 9)`,
  `INSERT INTO x402_audit_log (actor, action, subject) SELECT ${userSql('n - 1')}, 'INSERT', 'x402_payouts' FROM generate_series(1, 3) AS n`,
  `INSERT INTO x402_feature_flags (key, enabled, rollout) VALUES ('openrouter', true, 100), ('jobs_v2', false, 0)`,
  `INSERT INTO x402_announcements (title, published_at) VALUES ('OpenRouter models', timestamptz '2026-01-20'), ('Draft', NULL)`,
  `INSERT INTO x402_support_tickets (user_id, subject) SELECT ${userSql('n - 1')}, 'Help ' || n FROM generate_series(1, 4) AS n`,
  `INSERT INTO x402_search_queries (user_id, query, results) SELECT ${userSql('n - 1')}, 'query ' || n, n FROM generate_series(1, 4) AS n`,
  `INSERT INTO x402_server_verifications (server_id, token) SELECT ${idSql('server', 'n')}, md5('verify' || n) FROM generate_series(1, 3) AS n`,
  `INSERT INTO x402_prompt_template_usage_logs (resource_id, user_id, status, input_tokens, output_tokens)
   SELECT ${idSql('resource', '60 + n')}, ${userSql('n - 1')}, (ARRAY['success', 'failed'])[1 + n % 2], 100, 200 FROM generate_series(1, 6) AS n`,
  `INSERT INTO x402_wallet_export_audit (user_id, wallet_id, ip_address)
   SELECT ${userSql('n - 1')}, ${idSql('wallet', 'n')}, '10.0.0.' || n FROM generate_series(1, 4) AS n`,
  `INSERT INTO x402_oauth_pending (state, user_id, code_verifier, oauth_token)
   SELECT 'state' || n, ${userSql('n - 1')}, md5('verifier' || n), md5('token' || n) FROM generate_series(1, 3) AS n`,
]

/**
 * Builds production today (see the top of this file) on an empty database, in one transaction:
 * the Supabase stand-in first (a no-op where it exists), then the schema and the rows. No
 * migration history, as the hand-applied SQL left none: adopt it with
 * `baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT)`. Works on PostgreSQL 15 and PGlite.
 *
 * @example
 * ```ts
 * await withTestDatabase(target, async ({ db }) => {
 *   await buildProductionToday(db)
 *   await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT)
 * })
 * ```
 */
export async function buildProductionToday(db: Kysely<any>): Promise<void> {
  await ensureSupabaseStandIn(db)
  await db.transaction().execute(async (trx) => {
    for (const statement of [...PRODUCTION_TODAY_SCHEMA, ...PRODUCTION_TODAY_ROWS])
      await sql.raw(statement).execute(trx)
  })
}

/** The files whose code shapes the fixture, part of its cached dump's key. */
const FIXTURE_SOURCES = [
  './production-today.ts',
  '../../src/supabase/stand-in.ts',
  '../../src/access/access-users.ts',
].map((file) => new URL(file, import.meta.url))

let template: Promise<Blob> | undefined

/** A PGlite dump of {@link buildProductionToday}'s database, cached beside the templates. */
function productionTodayTemplate(): Promise<Blob> {
  template ??= (async () => {
    const hash = createHash('sha256')
    for (const file of FIXTURE_SOURCES) hash.update(readFileSync(file)).update('\0')
    const key = `production-today-pglite-${pgliteVersion()}-${hash.digest('hex').slice(0, 16)}`
    const cached = readTemplate(key)
    if (cached) return cached
    const scratch = createDb({ dataDir: IN_MEMORY })
    try {
      await buildProductionToday(scratch)
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

const PRODUCTION_TODAY_START = registerTestTemplate(
  'test:production-today',
  productionTodayTemplate,
)

/**
 * A new test database holding production today (no migration history), made by `create`
 * (createTestDatabase's or createScriptableDatabase's way): on PGlite from the fixture's cached
 * dump; on the server built by {@link buildProductionToday}.
 *
 * @example
 * ```ts
 * const database = await createProductionTodayDatabase(target, createScriptableDatabase)
 * ```
 */
export async function createProductionTodayDatabase<T extends TestDatabase>(
  target: TestTarget,
  create: (target: TestTarget, startAt: TemplatePoint) => Promise<T>,
): Promise<T> {
  const database = await create(target, target === 'pglite' ? PRODUCTION_TODAY_START : 'none')
  try {
    if (target === 'pglite') await sql`SELECT 1`.execute(database.db)
    else await buildProductionToday(database.db)
  } catch (error) {
    await database.destroy().catch(() => {})
    throw error
  }
  return database
}

/**
 * {@link createProductionTodayDatabase} with createTestDatabase.
 *
 * @example
 * ```ts
 * const { db, destroy } = await createProductionTodayTestDatabase('postgres')
 * ```
 */
export function createProductionTodayTestDatabase(target: TestTarget): Promise<TestDatabase> {
  return createProductionTodayDatabase(target, (on, startAt) => createTestDatabase(on, {}, startAt))
}

/**
 * What every table of `public` (and auth.users) holds, as a digest per table: equal before and
 * after means that no row was changed, added or lost.
 *
 * @example
 * ```ts
 * const before = await rowDigests(db)
 * await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT)
 * expect(await rowDigests(db)).toEqual(before)
 * ```
 */
export async function rowDigests(db: Kysely<any>): Promise<Record<string, string>> {
  const { rows: tables } = await sql<{ name: string }>`
    SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND (n.nspname = 'public' OR (n.nspname = 'auth' AND c.relname = 'users')) ORDER BY 1
  `.execute(db)
  const digests: Record<string, string> = {}
  for (const { name } of tables) {
    const { rows } = await sql<{ digest: string; n: number }>`
      SELECT count(*)::int AS n, coalesce(md5(string_agg(to_jsonb(t)::text, E'\\n' ORDER BY to_jsonb(t)::text)), '') AS digest
      FROM ${sql.raw(name)} AS t
    `.execute(db)
    digests[name] = `${rows[0]!.n} row(s) ${rows[0]!.digest}`
  }
  return digests
}

/** Row level security of every table in `public`, by name. */
export async function rowLevelSecurityByTable(db: Kysely<any>): Promise<Record<string, boolean>> {
  const { rows } = await sql<{ name: string; rls: boolean }>`
    SELECT relname::text AS name, relrowsecurity AS rls FROM pg_class
    WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY relname
  `.execute(db)
  return Object.fromEntries(rows.map(({ name, rls }) => [name, rls]))
}

/**
 * Production's own additions that a real take-over meets (the last list of production-today.md),
 * each as the statements that turn production today into that variant. None is the module's;
 * the module must keep every one: the stricter accepted and recorded, the rest a conflict until
 * adoption-decisions.json accepts it.
 */
export const DIVERGENCES = {
  /** An extra permissive policy on a table the module owns: the marketplace reads listed resources. */
  'a public read policy on x402_resources': [
    `CREATE POLICY "Marketplace reads listed resources" ON x402_resources
      FOR SELECT TO anon, authenticated
      USING (is_public AND deleted_at IS NULL AND status = 'active')`,
  ],
  /** An audit trigger on a table that holds keys: it sees every key written. */
  'an audit trigger on the OpenRouter keys table': [
    `CREATE TABLE x402_key_audit (
      id BIGSERIAL PRIMARY KEY,
      user_id UUID NOT NULL,
      action TEXT NOT NULL,
      at TIMESTAMPTZ NOT NULL DEFAULT NOW()
    )`,
    `ALTER TABLE x402_key_audit ENABLE ROW LEVEL SECURITY`,
    `CREATE OR REPLACE FUNCTION audit_openrouter_key_change()
RETURNS TRIGGER AS $$
BEGIN
  INSERT INTO public.x402_key_audit (user_id, action) VALUES (coalesce(NEW.user_id, OLD.user_id), TG_OP);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''`,
    `CREATE TRIGGER audit_openrouter_key_change
      AFTER INSERT OR UPDATE OR DELETE ON x402_user_openrouter_integrations
      FOR EACH ROW EXECUTE FUNCTION audit_openrouter_key_change()`,
  ],
  /** An extra value in a CHECK of the module's, already used by rows. */
  'an extra network in the CHECK, used by rows': [
    `ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_network_check`,
    `ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_network_check
      CHECK (network IN ('solana', 'base', 'ethereum', 'polygon', 'base-sepolia', 'ethereum-sepolia', 'solana-devnet', 'avalanche'))`,
    `UPDATE x402_resources SET network = 'avalanche' WHERE id IN (${[301, 302, 303].map((n) => `'${resourceId(n)}'`).join(', ')})`,
  ],
  /** A constraint of the module's dropped, and rows stored since that it would reject. */
  'pt_max_tokens_range dropped, and rows beyond it': [
    `ALTER TABLE x402_resources DROP CONSTRAINT pt_max_tokens_range`,
    `UPDATE x402_resources SET pt_max_tokens = 16384 WHERE id IN (${[61, 62].map((n) => `'${resourceId(n)}'`).join(', ')})`,
  ],
  /** A trigger function of the module's that does more: it refuses owner changes and keys that are not encrypted. */
  'an updated_at function that does more': [
    `CREATE OR REPLACE FUNCTION update_openrouter_integration_updated_at()
RETURNS TRIGGER AS $$
BEGIN
  IF NEW.user_id IS DISTINCT FROM OLD.user_id THEN
    RAISE EXCEPTION 'The owner of an OpenRouter key cannot change';
  END IF;
  IF NEW.encrypted_api_key !~ '^(v2:[0-9a-f]{8}:|[0-9a-f]{32}:)' THEN
    RAISE EXCEPTION 'OpenRouter keys are stored encrypted';
  END IF;
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql`,
  ],
  /** A policy hardened already as a later migration of the module hardens it (008, the Claude one). */
  'the Claude policy hardened as 008 makes it': [
    `DROP POLICY "Users can manage their own Claude config" ON x402_user_claude_configs`,
    `CREATE POLICY "Users can manage their own Claude config" ON x402_user_claude_configs
      FOR ALL TO authenticated
      USING ((SELECT auth.uid()) = user_id)
      WITH CHECK ((SELECT auth.uid()) = user_id)`,
  ],
} as const satisfies Record<string, readonly string[]>

export type Divergence = keyof typeof DIVERGENCES
