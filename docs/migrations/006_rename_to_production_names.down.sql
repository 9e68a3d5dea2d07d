-- Migration 006_rename_to_production_names (down), exported by `npm run migrate:sql` from src/migrations/006_rename_to_production_names.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

-- Refuses, before anything changes, where this down would destroy data (rows of a table it drops,
-- non-null values of a column it drops), unless the session ran SET x402.allow_data_loss = on;
-- then it first copies each table concerned whole to schema x402_backup.
DO $guard$
DECLARE
  n bigint;
  lost text[] := '{}';
  concerned text[] := '{}';
  item text;
  stamp text := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSMS');
BEGIN
  PERFORM set_config('lock_timeout', '2000ms', true);
  EXECUTE 'LOCK TABLE "public"."x402_openrouter_models" IN SHARE MODE';
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "memeputer_name" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.memeputer_name: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "description" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.description: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "modality" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.modality: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "max_tokens" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.max_tokens: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "pricing_prompt" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.pricing_prompt: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "pricing_completion" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.pricing_completion: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "pricing_image" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.pricing_image: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "pricing_web_search" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.pricing_web_search: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "input_cost_per_million" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.input_cost_per_million: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "output_cost_per_million" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.output_cost_per_million: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "capabilities" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.capabilities: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "vision_supported" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.vision_supported: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "web_search_supported" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.web_search_supported: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "tool_calling_supported" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.tool_calling_supported: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "is_curated" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.is_curated: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  EXECUTE 'SELECT count(*) FROM "public"."x402_openrouter_models" WHERE "last_synced_at" IS NOT NULL' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'column public.x402_openrouter_models.last_synced_at: ' || n || ' value(s)');
    IF NOT ('["public","x402_openrouter_models"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_openrouter_models"]'::text); END IF;
  END IF;
  IF cardinality(lost) = 0 THEN RETURN; END IF;
  IF coalesce(current_setting('x402.allow_data_loss', true), '') <> 'on' THEN
    RAISE EXCEPTION 'Rolling back 006_rename_to_production_names would destroy data: %. Nothing was changed. To roll back anyway, run npm run migrate:down -- --allow-data-loss, or run SET x402.allow_data_loss = on before this script: either copies the data to schema x402_backup first.', array_to_string(lost, '; ');
  END IF;
  CREATE SCHEMA IF NOT EXISTS x402_backup;
  FOREACH item IN ARRAY concerned LOOP
    EXECUTE format('CREATE TABLE x402_backup.%I AS TABLE %I.%I',
      left('006_' || CASE WHEN item::json->>0 = 'public' THEN '' ELSE (item::json->>0) || '_' END || (item::json->>1), 62 - length(stamp)) || '_' || stamp,
      item::json->>0, item::json->>1);
  END LOOP;
END
$guard$;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

LOCK TABLE x402_resources IN SHARE MODE;

DO $not_null$
DECLARE
  found bigint;
  named text;
BEGIN
  SELECT count(*), string_agg(openrouter_id, ', ' ORDER BY openrouter_id) FILTER (WHERE n <= 20)
                     || CASE WHEN count(*) > 20 THEN format(' and %s more', count(*) - 20) ELSE '' END
    INTO found, named
  FROM (SELECT openrouter_id, row_number() OVER (ORDER BY openrouter_id) AS n
        FROM public.x402_openrouter_models
        WHERE is_active IS NULL OR created_at IS NULL OR updated_at IS NULL) AS empty;
  IF found > 0 THEN
    RAISE EXCEPTION 'Rolling back 006_rename_to_production_names puts NOT NULL back on x402_openrouter_models.is_active, created_at and updated_at, and % model(s) have no value there: %. Nothing was changed. Keep 006, or give those models a value first (is_active as the sync decides; created_at and updated_at the time they were synced), then roll back.',
      found, named;
  END IF;
END
$not_null$;

COMMENT ON COLUMN x402_resources.openrouter_model_id IS
      'Model of an openrouter_instant resource, from ai_models; set to null when the model leaves the catalog.';

ALTER TABLE x402_openrouter_models ADD COLUMN pricing jsonb;

UPDATE x402_openrouter_models SET pricing = CASE WHEN num_nonnulls(pricing_prompt, pricing_completion, pricing_image, pricing_web_search) = 0 THEN NULL
                  ELSE jsonb_strip_nulls(jsonb_build_object('prompt', pricing_prompt, 'completion', pricing_completion, 'image', pricing_image, 'web_search', pricing_web_search)) END
    WHERE num_nonnulls(pricing_prompt, pricing_completion, pricing_image, pricing_web_search) > 0;

-- squawk-ignore require-concurrent-index-deletion
    DROP INDEX idx_x402_openrouter_models_is_curated;

-- squawk-ignore require-concurrent-index-deletion
    DROP INDEX idx_x402_openrouter_models_modality;

-- squawk-ignore require-concurrent-index-deletion
    DROP INDEX idx_x402_openrouter_models_is_active;

ALTER TABLE x402_openrouter_models
      DROP CONSTRAINT check_modality_valid,
      DROP COLUMN memeputer_name,
      DROP COLUMN description,
      DROP COLUMN modality,
      DROP COLUMN max_tokens,
      DROP COLUMN pricing_prompt,
      DROP COLUMN pricing_completion,
      DROP COLUMN pricing_image,
      DROP COLUMN pricing_web_search,
      DROP COLUMN input_cost_per_million,
      DROP COLUMN output_cost_per_million,
      DROP COLUMN capabilities,
      DROP COLUMN vision_supported,
      DROP COLUMN web_search_supported,
      DROP COLUMN tool_calling_supported,
      DROP COLUMN is_curated,
      DROP COLUMN last_synced_at,
      -- squawk-ignore adding-not-nullable-field
      ALTER COLUMN is_active SET NOT NULL,
      -- squawk-ignore adding-not-nullable-field
      ALTER COLUMN created_at SET NOT NULL,
      -- squawk-ignore adding-not-nullable-field
      ALTER COLUMN updated_at SET NOT NULL;

COMMENT ON TABLE x402_openrouter_models IS NULL;

COMMENT ON COLUMN x402_openrouter_models.openrouter_id IS NULL;

ALTER TABLE x402_openrouter_models RENAME CONSTRAINT x402_openrouter_models_openrouter_id_key TO ai_models_openrouter_id_key;

ALTER TABLE x402_openrouter_models RENAME CONSTRAINT x402_openrouter_models_pkey TO ai_models_pkey;

-- squawk-ignore renaming-table
    ALTER TABLE x402_openrouter_models RENAME TO ai_models;

ALTER TABLE x402_user_openrouter_integrations RENAME CONSTRAINT x402_user_openrouter_integrations_user_id_fkey TO user_openrouter_integrations_user_id_fkey;

ALTER TABLE x402_user_openrouter_integrations RENAME CONSTRAINT x402_user_openrouter_integrations_pkey TO user_openrouter_integrations_pkey;

-- squawk-ignore renaming-table
    ALTER TABLE x402_user_openrouter_integrations RENAME TO user_openrouter_integrations;

DO $accepted$
BEGIN
  IF to_regclass('x402_migrations.accepted_schema_difference') IS NULL THEN
    RETURN;
  END IF;
  UPDATE x402_migrations.accepted_schema_difference AS a
  SET key = k.category || ' ' || coalesce((SELECT n.new_name FROM (VALUES ('x402_openrouter_models', 'ai_models'), ('x402_user_openrouter_integrations', 'user_openrouter_integrations'), ('x402_openrouter_models_pkey', 'ai_models_pkey'), ('x402_openrouter_models_openrouter_id_key', 'ai_models_openrouter_id_key'), ('x402_user_openrouter_integrations_pkey', 'user_openrouter_integrations_pkey'), ('x402_user_openrouter_integrations_user_id_fkey', 'user_openrouter_integrations_user_id_fkey')) AS n(old_name, new_name) WHERE n.old_name = k.table_name), k.table_name)
            || CASE WHEN k.object_name IS NULL THEN ''
                    ELSE '.' || coalesce((SELECT n.new_name FROM (VALUES ('x402_openrouter_models', 'ai_models'), ('x402_user_openrouter_integrations', 'user_openrouter_integrations'), ('x402_openrouter_models_pkey', 'ai_models_pkey'), ('x402_openrouter_models_openrouter_id_key', 'ai_models_openrouter_id_key'), ('x402_user_openrouter_integrations_pkey', 'user_openrouter_integrations_pkey'), ('x402_user_openrouter_integrations_user_id_fkey', 'user_openrouter_integrations_user_id_fkey')) AS n(old_name, new_name) WHERE n.old_name = k.object_name), k.object_name) END
  FROM (SELECT key, split_part(key, ' ', 1) AS category,
               split_part(substr(key, strpos(key, ' ') + 1), '.', 1) AS table_name,
               nullif(substr(substr(key, strpos(key, ' ') + 1), strpos(substr(key, strpos(key, ' ') + 1), '.') + 1),
                      substr(key, strpos(key, ' ') + 1)) AS object_name
        FROM x402_migrations.accepted_schema_difference
        WHERE split_part(key, ' ', 1) <> 'functions') AS k
  WHERE a.key = k.key
    AND split_part(substr(a.key, strpos(a.key, ' ') + 1), '.', 1) IN (SELECT n.old_name FROM (VALUES ('x402_openrouter_models', 'ai_models'), ('x402_user_openrouter_integrations', 'user_openrouter_integrations'), ('x402_openrouter_models_pkey', 'ai_models_pkey'), ('x402_openrouter_models_openrouter_id_key', 'ai_models_openrouter_id_key'), ('x402_user_openrouter_integrations_pkey', 'user_openrouter_integrations_pkey'), ('x402_user_openrouter_integrations_user_id_fkey', 'user_openrouter_integrations_user_id_fkey')) AS n(old_name, new_name));
  -- An index's or trigger's definition names its table, as the server deparses it.
  UPDATE x402_migrations.accepted_schema_difference
  SET live = replace(replace(live::text, ' ON public.x402_openrouter_models ', ' ON public.ai_models '),
                     ' ON public.x402_user_openrouter_integrations ', ' ON public.user_openrouter_integrations ')::jsonb
  WHERE live::text LIKE '% ON public.%';
END
$accepted$;

COMMIT;
