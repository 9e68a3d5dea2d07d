-- Migration 007_openrouter_policies_per_supabase_advice (down), exported by `npm run migrate:sql` from src/migrations/007_openrouter_policies_per_supabase_advice.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

-- Notes each table's row counters and storage, for the check before COMMIT.
DO $watch$
BEGIN
  PERFORM set_config('x402.down_watch', coalesce((
    SELECT jsonb_object_agg(c.oid::text, jsonb_build_array(pg_stat_get_xact_tuples_deleted(c.oid),
             pg_stat_get_xact_tuples_updated(c.oid), c.relfilenode::text))::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\_%'
      AND n.nspname NOT IN ('information_schema', 'x402_migrations', 'x402_backup')), '{}'), true);
END
$watch$;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

ALTER FUNCTION update_openrouter_integration_updated_at() RESET search_path;

DROP POLICY "Users can manage their own OpenRouter config" ON x402_user_openrouter_integrations;

CREATE POLICY "Users can manage their own OpenRouter config" ON x402_user_openrouter_integrations
    FOR ALL
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id);

-- Rolls it all back where the down deleted, changed, truncated or rewrote rows of a table that the
-- guard did not back up: what no rehearsal foresaw (a trigger, a rule) is never committed.
DO $check$
DECLARE
  watched jsonb := coalesce(nullif(current_setting('x402.down_watch', true), ''), '{}')::jsonb;
  covered jsonb := coalesce(nullif(current_setting('x402.down_covered', true), ''), '[]')::jsonb;
  unreported text[];
BEGIN
  SELECT array_agg(format('table %I.%I: %s', n.nspname, c.relname, array_to_string(array_remove(ARRAY[
           CASE WHEN c.relfilenode::text <> w.v ->> 2 THEN 'truncated or rewritten' END,
           CASE WHEN pg_stat_get_xact_tuples_deleted(c.oid) > (w.v ->> 0)::bigint
                THEN (pg_stat_get_xact_tuples_deleted(c.oid) - (w.v ->> 0)::bigint) || ' row(s) deleted' END,
           CASE WHEN pg_stat_get_xact_tuples_updated(c.oid) > (w.v ->> 1)::bigint
                THEN (pg_stat_get_xact_tuples_updated(c.oid) - (w.v ->> 1)::bigint) || ' row(s) changed' END
         ], NULL), ', ')) ORDER BY c.oid)
    INTO unreported
    FROM jsonb_each(watched) AS w(k, v) JOIN pg_class c ON c.oid = w.k::oid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE NOT covered ? c.oid::text
     AND (c.relfilenode::text <> w.v ->> 2
          OR pg_stat_get_xact_tuples_deleted(c.oid) > (w.v ->> 0)::bigint
          OR pg_stat_get_xact_tuples_updated(c.oid) > (w.v ->> 1)::bigint);
  IF unreported IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '5X402', MESSAGE =
      'Rolling back 007_openrouter_policies_per_supabase_advice deleted or changed rows it did not report or back up, through a trigger, a rule or its own statements: ' ||
      array_to_string(unreported, '; ') ||
      '. Nothing was changed (it was rolled back). Keep 007_openrouter_policies_per_supabase_advice, or roll back once nothing deletes, truncates or rewrites those tables with the down.';
  END IF;
END
$check$;

COMMIT;
