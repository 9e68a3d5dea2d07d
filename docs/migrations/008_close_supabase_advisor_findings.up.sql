-- Migration 008_close_supabase_advisor_findings (up), exported by `npm run migrate:sql` from src/migrations/008_close_supabase_advisor_findings.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

CREATE SCHEMA IF NOT EXISTS x402_migrations;

CREATE TABLE x402_migrations.prior_state_008 (
      migration text PRIMARY KEY CHECK (migration = '008_close_supabase_advisor_findings'),
      resources_rls boolean NOT NULL,
      models_rls boolean NOT NULL,
      claude_policy text NOT NULL CHECK (claude_policy IN ('plan', 'advised', 'other', 'absent')),
      claude_search_path_set boolean NOT NULL
    );

COMMENT ON TABLE x402_migrations.prior_state_008 IS
      'What migration 008 found: RLS of two tables, the shape of the Claude policy (plan: as 002 made it, replaced by 008), whether 008 set the function''s search_path. Its down checks this, restores it and drops the table.';

INSERT INTO x402_migrations.prior_state_008
    SELECT '008_close_supabase_advisor_findings',
           (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.x402_resources'::regclass),
           (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.x402_openrouter_models'::regclass),
           (
  SELECT CASE
    WHEN p.oid IS NULL THEN 'absent'
    WHEN p.polpermissive AND p.polcmd = '*' AND p.polroles = '{0}'
      AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = '(auth.uid() = user_id)'
      AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = '(auth.uid() = user_id)' THEN 'plan'
    WHEN p.polpermissive AND p.polcmd = '*' AND p.polroles = ARRAY['authenticated'::regrole]::oid[]
      AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = '(( SELECT auth.uid() AS uid) = user_id)'
      AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = '(( SELECT auth.uid() AS uid) = user_id)' THEN 'advised'
    ELSE 'other' END
  FROM (SELECT 1) AS one
  LEFT JOIN pg_catalog.pg_policy p ON p.polrelid = 'public.x402_user_claude_configs'::regclass
    AND p.polname = 'Users can manage their own Claude config'
),
           NOT EXISTS (SELECT FROM pg_catalog.pg_proc, unnest(proconfig) AS setting
                       WHERE oid = 'public.update_claude_config_updated_at()'::regprocedure
                         AND setting LIKE 'search_path=%');

DO $$
    DECLARE
      comment text := (SELECT obj_description(oid, 'pg_policy') FROM pg_policy
                       WHERE polrelid = 'public.x402_user_claude_configs'::regclass
                         AND polname = 'Users can manage their own Claude config');
    BEGIN
      IF (SELECT claude_policy FROM x402_migrations.prior_state_008) <> 'plan' THEN
        RETURN;
      END IF;
      DROP POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs;
      CREATE POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs
        FOR ALL TO authenticated
        USING ((select auth.uid()) = user_id)
        WITH CHECK ((select auth.uid()) = user_id);
      IF comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs IS %L', comment);
      END IF;
    END
    $$;

DO $$
    BEGIN
      IF (SELECT claude_search_path_set FROM x402_migrations.prior_state_008) THEN
        ALTER FUNCTION public.update_claude_config_updated_at() SET search_path = '';
      END IF;
    END
    $$;

LOCK TABLE x402_resources IN ACCESS EXCLUSIVE MODE;

ALTER TABLE x402_openrouter_models ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Anyone can read the model catalog" ON x402_openrouter_models
    FOR SELECT TO anon, authenticated
    USING (true);

CREATE POLICY "Service role full access on models" ON x402_openrouter_models
    FOR ALL TO service_role
    USING (true)
    WITH CHECK (true);

ALTER TABLE x402_resources ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Service role full access on resources" ON x402_resources
    FOR ALL TO service_role
    USING (true)
    WITH CHECK (true);

COMMIT;
