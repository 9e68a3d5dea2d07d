-- Migration 008_close_supabase_advisor_findings (down), exported by `npm run migrate:sql` from src/migrations/008_close_supabase_advisor_findings.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

DO $$
    DECLARE
      prior jsonb;
      policy text := (
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
);
      comment text := (SELECT obj_description(oid, 'pg_policy') FROM pg_policy
                       WHERE polrelid = 'public.x402_user_claude_configs'::regclass
                         AND polname = 'Users can manage their own Claude config');
    BEGIN
      IF to_regclass('x402_migrations.prior_state_008') IS NOT NULL THEN
        SELECT to_jsonb(p) INTO prior FROM x402_migrations.prior_state_008 p;
      END IF;
      IF prior IS NULL THEN
        RAISE EXCEPTION 'Cannot roll back 008_close_supabase_advisor_findings: its record of what it found, x402_migrations.prior_state_008, is missing or has no row, so it cannot know whether RLS was on before it. Nothing was changed. Keep 008 applied, or write the record again as docs/rollback.md describes.';
      END IF;
      IF jsonb_typeof(prior->'resources_rls') IS DISTINCT FROM 'boolean'
         OR jsonb_typeof(prior->'models_rls') IS DISTINCT FROM 'boolean'
         OR jsonb_typeof(prior->'claude_search_path_set') IS DISTINCT FROM 'boolean'
         OR coalesce(prior->>'claude_policy' NOT IN ('plan', 'advised', 'other', 'absent'), true) THEN
        RAISE EXCEPTION 'Cannot roll back 008_close_supabase_advisor_findings: x402_migrations.prior_state_008 holds what 008 does not record (two RLS booleans, claude_policy plan, advised, other or absent, claude_search_path_set): it was edited, or written by an earlier text of 008. Nothing was changed. Keep 008 applied, or write the record again as docs/rollback.md describes.';
      END IF;
      IF prior->>'claude_policy' = 'plan' AND policy <> 'advised' THEN
        RAISE EXCEPTION 'Rolling back 008_close_supabase_advisor_findings would replace the policy "Users can manage their own Claude config" on x402_user_claude_configs, changed since 008 made it (%), with 002''s FOR ALL TO public, which is wider. Nothing was changed. Keep 008 applied.', policy;
      END IF;

      IF prior->>'claude_policy' = 'plan' THEN
        DROP POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs;
        CREATE POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs
          FOR ALL
          USING (auth.uid() = user_id)
          WITH CHECK (auth.uid() = user_id);
        IF comment IS NOT NULL THEN
          EXECUTE format('COMMENT ON POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs IS %L',
                         comment);
        END IF;
      END IF;
      IF (prior->'claude_search_path_set')::boolean AND EXISTS (
        SELECT FROM pg_proc, unnest(proconfig) AS setting
        WHERE oid = 'public.update_claude_config_updated_at()'::regprocedure AND setting = 'search_path=""'
      ) THEN
        ALTER FUNCTION public.update_claude_config_updated_at() RESET search_path;
      END IF;

      LOCK TABLE public.x402_resources IN ACCESS EXCLUSIVE MODE;
      DROP POLICY IF EXISTS "Service role full access on models" ON public.x402_openrouter_models;
      DROP POLICY IF EXISTS "Anyone can read the model catalog" ON public.x402_openrouter_models;
      IF NOT (prior->'models_rls')::boolean THEN
        ALTER TABLE public.x402_openrouter_models DISABLE ROW LEVEL SECURITY;
      END IF;
      DROP POLICY IF EXISTS "Service role full access on resources" ON public.x402_resources;
      IF NOT (prior->'resources_rls')::boolean THEN
        ALTER TABLE public.x402_resources DISABLE ROW LEVEL SECURITY;
      END IF;
    END
    $$;

DROP TABLE x402_migrations.prior_state_008;

COMMIT;
