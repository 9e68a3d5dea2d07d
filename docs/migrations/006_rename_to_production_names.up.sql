-- Migration 006_rename_to_production_names (up), exported by `npm run migrate:sql` from src/migrations/006_rename_to_production_names.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

COMMENT ON COLUMN x402_resources.openrouter_model_id IS
      'Model of an openrouter_instant resource, from x402_openrouter_models; set to null when the model leaves the catalog.';

-- squawk-ignore renaming-table
    ALTER TABLE user_openrouter_integrations RENAME TO x402_user_openrouter_integrations;

ALTER TABLE x402_user_openrouter_integrations RENAME CONSTRAINT user_openrouter_integrations_pkey TO x402_user_openrouter_integrations_pkey;

ALTER TABLE x402_user_openrouter_integrations RENAME CONSTRAINT user_openrouter_integrations_user_id_fkey TO x402_user_openrouter_integrations_user_id_fkey;

DO $pricing$
DECLARE
  found bigint;
  named text;
BEGIN
  SELECT count(*), string_agg(format('%s (%s)', openrouter_id, pricing::text), '; ' ORDER BY openrouter_id) FILTER (WHERE n <= 20)
                     || CASE WHEN count(*) > 20 THEN format('; and %s more', count(*) - 20) ELSE '' END
    INTO found, named
  FROM (SELECT openrouter_id, pricing, row_number() OVER (ORDER BY openrouter_id) AS n
        FROM public.ai_models WHERE pricing IS DISTINCT FROM CASE WHEN num_nonnulls(pricing ->> 'prompt', pricing ->> 'completion', pricing ->> 'image', pricing ->> 'web_search') = 0 THEN NULL
                  ELSE jsonb_strip_nulls(jsonb_build_object('prompt', pricing ->> 'prompt', 'completion', pricing ->> 'completion', 'image', pricing ->> 'image', 'web_search', pricing ->> 'web_search')) END) AS unfit;
  IF found > 0 THEN
    RAISE EXCEPTION 'Migration 006_rename_to_production_names moves ai_models.pricing into the text columns pricing_prompt, pricing_completion, pricing_image and pricing_web_search, as production''s x402_openrouter_models has them, and the pricing of % model(s) would not come back unchanged from them: %. Nothing was changed. Only string values under the keys prompt, completion, image and web_search fit. Save the other values where you want to keep them, take them out of pricing, then run the migrations again; until then the database stays at 005.',
      found, named;
  END IF;
END
$pricing$;

-- squawk-ignore renaming-table
    ALTER TABLE ai_models RENAME TO x402_openrouter_models;

ALTER TABLE x402_openrouter_models RENAME CONSTRAINT ai_models_pkey TO x402_openrouter_models_pkey;

ALTER TABLE x402_openrouter_models RENAME CONSTRAINT ai_models_openrouter_id_key TO x402_openrouter_models_openrouter_id_key;

ALTER TABLE x402_openrouter_models
      ADD COLUMN IF NOT EXISTS memeputer_name text,
      ADD COLUMN IF NOT EXISTS description text,
      ADD COLUMN IF NOT EXISTS modality text NOT NULL DEFAULT 'text',
      -- squawk-ignore prefer-bigint-over-int
      ADD COLUMN IF NOT EXISTS max_tokens integer,
      ADD COLUMN IF NOT EXISTS pricing_prompt text,
      ADD COLUMN IF NOT EXISTS pricing_completion text,
      ADD COLUMN IF NOT EXISTS pricing_image text,
      ADD COLUMN IF NOT EXISTS pricing_web_search text,
      ADD COLUMN IF NOT EXISTS input_cost_per_million numeric,
      ADD COLUMN IF NOT EXISTS output_cost_per_million numeric,
      ADD COLUMN IF NOT EXISTS capabilities jsonb,
      ADD COLUMN IF NOT EXISTS vision_supported boolean DEFAULT false,
      ADD COLUMN IF NOT EXISTS web_search_supported boolean DEFAULT false,
      ADD COLUMN IF NOT EXISTS tool_calling_supported boolean DEFAULT false,
      ADD COLUMN IF NOT EXISTS is_curated boolean NOT NULL DEFAULT false,
      ADD COLUMN IF NOT EXISTS last_synced_at timestamptz,
      -- squawk-ignore ban-drop-not-null
      ALTER COLUMN is_active DROP NOT NULL,
      -- squawk-ignore ban-drop-not-null
      ALTER COLUMN created_at DROP NOT NULL,
      -- squawk-ignore ban-drop-not-null
      ALTER COLUMN updated_at DROP NOT NULL,
      -- squawk-ignore constraint-missing-not-valid
      ADD CONSTRAINT check_modality_valid
        CHECK (modality IN ('text', 'image', 'video', 'audio', 'embedding', 'multimodal'));

UPDATE x402_openrouter_models
    SET pricing_prompt = pricing ->> 'prompt', pricing_completion = pricing ->> 'completion',
        pricing_image = pricing ->> 'image', pricing_web_search = pricing ->> 'web_search'
    WHERE pricing IS NOT NULL;

-- squawk-ignore ban-drop-column
    ALTER TABLE x402_openrouter_models DROP COLUMN pricing;

-- squawk-ignore require-concurrent-index-creation
    CREATE INDEX idx_x402_openrouter_models_is_active ON x402_openrouter_models (is_active);

-- squawk-ignore require-concurrent-index-creation
    CREATE INDEX idx_x402_openrouter_models_modality ON x402_openrouter_models (modality);

-- squawk-ignore require-concurrent-index-creation
    CREATE INDEX idx_x402_openrouter_models_is_curated ON x402_openrouter_models (is_curated) WHERE is_curated = true;

COMMENT ON TABLE x402_openrouter_models IS
      'OpenRouter model catalog, synced by the backend (service_role) from OpenRouter''s model list; x402_resources.openrouter_model_id points here.';

DO $accepted$
BEGIN
  IF to_regclass('x402_migrations.accepted_schema_difference') IS NULL THEN
    RETURN;
  END IF;
  UPDATE x402_migrations.accepted_schema_difference AS a
  SET key = k.category || ' ' || coalesce((SELECT n.new_name FROM (VALUES ('ai_models', 'x402_openrouter_models'), ('user_openrouter_integrations', 'x402_user_openrouter_integrations'), ('ai_models_pkey', 'x402_openrouter_models_pkey'), ('ai_models_openrouter_id_key', 'x402_openrouter_models_openrouter_id_key'), ('user_openrouter_integrations_pkey', 'x402_user_openrouter_integrations_pkey'), ('user_openrouter_integrations_user_id_fkey', 'x402_user_openrouter_integrations_user_id_fkey')) AS n(old_name, new_name) WHERE n.old_name = k.table_name), k.table_name)
            || CASE WHEN k.object_name IS NULL THEN ''
                    ELSE '.' || coalesce((SELECT n.new_name FROM (VALUES ('ai_models', 'x402_openrouter_models'), ('user_openrouter_integrations', 'x402_user_openrouter_integrations'), ('ai_models_pkey', 'x402_openrouter_models_pkey'), ('ai_models_openrouter_id_key', 'x402_openrouter_models_openrouter_id_key'), ('user_openrouter_integrations_pkey', 'x402_user_openrouter_integrations_pkey'), ('user_openrouter_integrations_user_id_fkey', 'x402_user_openrouter_integrations_user_id_fkey')) AS n(old_name, new_name) WHERE n.old_name = k.object_name), k.object_name) END
  FROM (SELECT key, split_part(key, ' ', 1) AS category,
               split_part(substr(key, strpos(key, ' ') + 1), '.', 1) AS table_name,
               nullif(substr(substr(key, strpos(key, ' ') + 1), strpos(substr(key, strpos(key, ' ') + 1), '.') + 1),
                      substr(key, strpos(key, ' ') + 1)) AS object_name
        FROM x402_migrations.accepted_schema_difference
        WHERE split_part(key, ' ', 1) <> 'functions') AS k
  WHERE a.key = k.key
    AND split_part(substr(a.key, strpos(a.key, ' ') + 1), '.', 1) IN (SELECT n.old_name FROM (VALUES ('ai_models', 'x402_openrouter_models'), ('user_openrouter_integrations', 'x402_user_openrouter_integrations'), ('ai_models_pkey', 'x402_openrouter_models_pkey'), ('ai_models_openrouter_id_key', 'x402_openrouter_models_openrouter_id_key'), ('user_openrouter_integrations_pkey', 'x402_user_openrouter_integrations_pkey'), ('user_openrouter_integrations_user_id_fkey', 'x402_user_openrouter_integrations_user_id_fkey')) AS n(old_name, new_name));
  -- An index's or trigger's definition names its table, as the server deparses it.
  UPDATE x402_migrations.accepted_schema_difference
  SET live = replace(replace(live::text, ' ON public.ai_models ', ' ON public.x402_openrouter_models '),
                     ' ON public.user_openrouter_integrations ', ' ON public.x402_user_openrouter_integrations ')::jsonb
  WHERE live::text LIKE '% ON public.%';
END
$accepted$;

COMMENT ON COLUMN "x402_openrouter_models"."openrouter_id" IS 'OpenRouter''s model identifier, such as openai/gpt-4o.';

COMMENT ON COLUMN "x402_openrouter_models"."modality" IS 'What the model produces: text, image, video, audio, embedding or multimodal.';

COMMENT ON COLUMN "x402_openrouter_models"."pricing_prompt" IS 'OpenRouter''s pricing.prompt: USD per prompt token, as the text OpenRouter sends.';

COMMENT ON COLUMN "x402_openrouter_models"."pricing_completion" IS 'OpenRouter''s pricing.completion: USD per completion token, as text.';

COMMENT ON COLUMN "x402_openrouter_models"."pricing_image" IS 'OpenRouter''s pricing.image: USD per input image, as text.';

COMMENT ON COLUMN "x402_openrouter_models"."pricing_web_search" IS 'OpenRouter''s pricing.web_search: USD per web search, as text.';

COMMENT ON COLUMN "x402_openrouter_models"."is_curated" IS 'Shown in the app''s curated list of models.';

COMMIT;
