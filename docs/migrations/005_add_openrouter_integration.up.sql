-- Migration 005_add_openrouter_integration (up), exported by `npm run migrate:sql` from src/migrations/005_add_openrouter_integration.ts.
-- It runs outside a transaction (CREATE INDEX CONCURRENTLY cannot run inside one): run it with
-- psql -f, never wrapped in BEGIN/COMMIT. If it fails part-way, finish with
-- npm run migrate:latest (or migrate:down), which completes the steps that are missing.
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

-- Stops at the first error, a refusal included: the steps after it must not run.
\set ON_ERROR_STOP on

SET lock_timeout = '2000ms';

SET statement_timeout = '60000ms';

SELECT coalesce(col_description('public.x402_resources'::regclass, (
      SELECT attnum FROM pg_attribute WHERE attrelid = 'public.x402_resources'::regclass
         AND attname = 'openrouter_config' AND NOT attisdropped)) = 'Settings of an openrouter_instant resource: {modelId, systemPrompt, params: {temperature, maxTokens, topP, ...}}.', false) AS done;

BEGIN;

create table "user_openrouter_integrations" ("user_id" uuid primary key references "auth"."users" ("id") on delete cascade, "encrypted_api_key" text not null, "is_valid" boolean default true, "last_verified_at" timestamptz, "is_enabled" boolean default true, "created_at" timestamptz default now(), "updated_at" timestamptz default now());

create index "idx_openrouter_integrations_user_enabled" on "user_openrouter_integrations" ("user_id", "is_enabled");

ALTER TABLE user_openrouter_integrations ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Users can manage their own OpenRouter config" ON user_openrouter_integrations
    FOR ALL
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id);

CREATE POLICY "Service role full access on OpenRouter" ON user_openrouter_integrations
    FOR ALL TO service_role
    USING (true);

CREATE FUNCTION update_openrouter_integration_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
      NEW.updated_at = now();
      RETURN NEW;
    END;
    $$;

CREATE TRIGGER openrouter_integration_updated_at
    BEFORE UPDATE ON user_openrouter_integrations
    FOR EACH ROW EXECUTE FUNCTION update_openrouter_integration_updated_at();

COMMENT ON TABLE user_openrouter_integrations IS
      'OpenRouter API keys of users, encrypted; one row per user. Read by the backend as service_role to run openrouter_instant resources.';

COMMENT ON COLUMN "user_openrouter_integrations"."user_id" IS 'Owner of the key; deleting the auth user deletes the row.';

COMMENT ON COLUMN "user_openrouter_integrations"."encrypted_api_key" IS 'OpenRouter API key, never plaintext: encrypted with INTEGRATION_ENCRYPTION_SECRET as v2:<key id>:<nonce hex>:<ciphertext hex>:<tag hex> (AES-256-GCM, bound to user_id), or in the legacy <iv hex>:<ciphertext hex> (AES-256-CBC) until npm run keys:rotate.';

COMMENT ON COLUMN "user_openrouter_integrations"."is_valid" IS 'False once a check with OpenRouter rejected the key.';

COMMENT ON COLUMN "user_openrouter_integrations"."last_verified_at" IS 'When the key was last checked with OpenRouter.';

COMMENT ON COLUMN "user_openrouter_integrations"."is_enabled" IS 'The user switched the integration on (true) or off (false).';

COMMENT ON COLUMN "user_openrouter_integrations"."created_at" IS 'When the key was first stored.';

COMMENT ON COLUMN "user_openrouter_integrations"."updated_at" IS 'When the row last changed; set by trigger openrouter_integration_updated_at.';

ALTER TABLE x402_resources
      ADD COLUMN openrouter_model_id uuid,
      ADD COLUMN openrouter_config jsonb,
      ADD CONSTRAINT x402_resources_openrouter_model_id_fkey
        FOREIGN KEY (openrouter_model_id) REFERENCES ai_models (id) ON DELETE SET NULL NOT VALID,
      DROP CONSTRAINT x402_resources_resource_type_check,
      ADD CONSTRAINT x402_resources_resource_type_check CHECK (resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static', 'prompt_template', 'openrouter_instant'])) NOT VALID;

COMMENT ON COLUMN "x402_resources"."openrouter_model_id" IS 'Model of an openrouter_instant resource, from ai_models; set to null when the model leaves the catalog.';

COMMENT ON COLUMN "x402_resources"."openrouter_config" IS 'Settings of an openrouter_instant resource: {modelId, systemPrompt, params: {temperature, maxTokens, topP, ...}}.';

COMMIT;

SET statement_timeout = 0;

BEGIN;

ALTER TABLE x402_resources VALIDATE CONSTRAINT x402_resources_resource_type_check;

ALTER TABLE x402_resources VALIDATE CONSTRAINT x402_resources_openrouter_model_id_fkey;

COMMIT;

SELECT indisvalid AND pg_get_indexdef(indexrelid) =
      'CREATE INDEX idx_x402_resources_openrouter_model ON public.x402_resources USING btree (openrouter_model_id) WHERE (openrouter_model_id IS NOT NULL)'
      AS usable
    FROM pg_index WHERE indexrelid = to_regclass('public.idx_x402_resources_openrouter_model');

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_x402_resources_openrouter_model ON x402_resources (openrouter_model_id)
    WHERE openrouter_model_id IS NOT NULL;
