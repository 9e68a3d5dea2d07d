-- Migration 002_add_claude_integration (down), exported by `npm run migrate:sql` from src/migrations/002_add_claude_integration.ts.
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
  EXECUTE 'LOCK TABLE "public"."x402_user_claude_configs" IN SHARE MODE';
  EXECUTE 'SELECT count(*) FROM "public"."x402_user_claude_configs"' INTO n;
  IF n > 0 THEN
    lost := array_append(lost, 'table public.x402_user_claude_configs: ' || n || ' row(s)');
    IF NOT ('["public","x402_user_claude_configs"]' = ANY (concerned)) THEN concerned := array_append(concerned, '["public","x402_user_claude_configs"]'::text); END IF;
  END IF;
  IF cardinality(lost) = 0 THEN RETURN; END IF;
  IF coalesce(current_setting('x402.allow_data_loss', true), '') <> 'on' THEN
    RAISE EXCEPTION 'Rolling back 002_add_claude_integration would destroy data: %. Nothing was changed. To roll back anyway, run npm run migrate:down -- --allow-data-loss, or run SET x402.allow_data_loss = on before this script: either copies the data to schema x402_backup first.', array_to_string(lost, '; ');
  END IF;
  CREATE SCHEMA IF NOT EXISTS x402_backup;
  FOREACH item IN ARRAY concerned LOOP
    EXECUTE format('CREATE TABLE x402_backup.%I AS TABLE %I.%I',
      left('002_' || CASE WHEN item::json->>0 = 'public' THEN '' ELSE (item::json->>0) || '_' END || (item::json->>1), 62 - length(stamp)) || '_' || stamp,
      item::json->>0, item::json->>1);
  END LOOP;
END
$guard$;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

drop table "x402_user_claude_configs";

DROP FUNCTION update_claude_config_updated_at();

COMMIT;
