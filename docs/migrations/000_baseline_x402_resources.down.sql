-- Migration 000_baseline_x402_resources (down), exported by `npm run migrate:sql` from src/migrations/000_baseline_x402_resources.ts.
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
  SELECT count(*) INTO n FROM public.x402_resources;
  IF n > 0 THEN
    lost := lost || ('table public.x402_resources (dropped): ' || n || ' row(s)');
    concerned := concerned || 'public.x402_resources'::text;
  END IF;
  IF cardinality(lost) = 0 THEN RETURN; END IF;
  IF current_setting('x402.allow_data_loss', true) IS DISTINCT FROM 'on' THEN
    RAISE EXCEPTION USING ERRCODE = '5X402', MESSAGE =
      'Rolling back 000_baseline_x402_resources would destroy data: ' ||
      array_to_string(lost, '; ') ||
      '. Nothing was changed. Keep 000_baseline_x402_resources, or move the data first; to roll back anyway, run npm run migrate:down -- --allow-data-loss (or set MIGRATION_ALLOW_DATA_LOSS=true), or in SQL run SET x402.allow_data_loss = on before the down: each table concerned is then copied whole to schema x402_backup first.';
  END IF;
  CREATE SCHEMA IF NOT EXISTS x402_backup;
  IF 'public.x402_resources' = ANY (concerned) THEN
    backup := '000_x402_resources_' || stamp;
    EXECUTE format('CREATE TABLE x402_backup.%I AS TABLE %s', backup, 'public.x402_resources');
    backups := backups || ('x402_backup.' || backup);
  END IF;
  -- The runner reports the backups from here.
  PERFORM set_config('x402.backups', array_to_json(backups)::text, true);
END
$guard$;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

drop table "x402_resources";

COMMIT;
