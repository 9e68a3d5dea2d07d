-- Migration 001_add_prompt_template_fields (down), exported by `npm run migrate:sql` from src/migrations/001_add_prompt_template_fields.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

-- Refuses, before anything changes, where this down would destroy data, unless the session ran
-- SET x402.allow_data_loss = on; then it first copies each table concerned whole to schema x402_backup.
DO $guard$
DECLARE
  n bigint;
  lost text[] := '{}';
  concerned text[] := '{}';
  backup text;
  backups text[] := '{}';
  stamp text := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSMS');
BEGIN
  -- Writes wait until the transaction ends: nothing arrives between the counts and the down.
  IF current_setting('lock_timeout') = '0' THEN PERFORM set_config('lock_timeout', '2s', true); END IF;
  LOCK TABLE public.x402_resources IN SHARE MODE;
  SELECT count(d.pt_system_prompt) INTO n FROM public.x402_resources d;
  IF n > 0 THEN
    lost := lost || ('column public.x402_resources.pt_system_prompt (dropped): ' || n || ' value(s)');
    concerned := concerned || 'public.x402_resources'::text;
  END IF;
  SELECT count(d.pt_parameters) INTO n FROM public.x402_resources d;
  IF n > 0 THEN
    lost := lost || ('column public.x402_resources.pt_parameters (dropped): ' || n || ' value(s)');
    concerned := concerned || 'public.x402_resources'::text;
  END IF;
  SELECT count(d.pt_model) INTO n FROM public.x402_resources d;
  IF n > 0 THEN
    lost := lost || ('column public.x402_resources.pt_model (dropped): ' || n || ' value(s)');
    concerned := concerned || 'public.x402_resources'::text;
  END IF;
  SELECT count(d.pt_max_tokens) INTO n FROM public.x402_resources d;
  IF n > 0 THEN
    lost := lost || ('column public.x402_resources.pt_max_tokens (dropped): ' || n || ' value(s)');
    concerned := concerned || 'public.x402_resources'::text;
  END IF;
  SELECT count(d.pt_allows_user_message) INTO n FROM public.x402_resources d;
  IF n > 0 THEN
    lost := lost || ('column public.x402_resources.pt_allows_user_message (dropped): ' || n || ' value(s)');
    concerned := concerned || 'public.x402_resources'::text;
  END IF;
  IF cardinality(lost) = 0 THEN RETURN; END IF;
  IF current_setting('x402.allow_data_loss', true) IS DISTINCT FROM 'on' THEN
    RAISE EXCEPTION USING ERRCODE = '5X402', MESSAGE =
      'Rolling back 001_add_prompt_template_fields would destroy data: ' ||
      array_to_string(lost, '; ') ||
      '. Nothing was changed. Keep 001_add_prompt_template_fields, or move the data first; to roll back anyway, run npm run migrate:down -- --allow-data-loss (or set MIGRATION_ALLOW_DATA_LOSS=true), or in SQL run SET x402.allow_data_loss = on before the down: each table concerned is then copied whole to schema x402_backup first.';
  END IF;
  CREATE SCHEMA IF NOT EXISTS x402_backup;
  IF 'public.x402_resources' = ANY (concerned) THEN
    backup := '001_x402_resources_' || stamp;
    EXECUTE format('CREATE TABLE x402_backup.%I AS TABLE %s', backup, 'public.x402_resources');
    backups := backups || ('x402_backup.' || backup);
  END IF;
  -- The runner reports the backups from here.
  PERFORM set_config('x402.backups', array_to_json(backups)::text, true);
END
$guard$;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

alter table "x402_resources" drop constraint "x402_resources_resource_type_check";

alter table "x402_resources" add constraint "x402_resources_resource_type_check" check (resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static']));

alter table "x402_resources" drop constraint "pt_max_tokens_range";

alter table "x402_resources" drop column "pt_allows_user_message", drop column "pt_max_tokens", drop column "pt_model", drop column "pt_parameters", drop column "pt_system_prompt";

COMMIT;
