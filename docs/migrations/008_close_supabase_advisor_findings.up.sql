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
      claude_policy_permissive boolean NOT NULL,
      claude_policy_command text NOT NULL,
      claude_policy_roles text NOT NULL,
      claude_policy_using text,
      claude_policy_check text,
      claude_function_config text[],
      claude_policy_comment text
    );

COMMENT ON TABLE x402_migrations.prior_state_008 IS
      'What migration 008 found before it changed it; its down restores this and drops the table.';

INSERT INTO x402_migrations.prior_state_008
    SELECT '008_close_supabase_advisor_findings',
           (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.x402_resources'::regclass),
           (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.x402_openrouter_models'::regclass),
           p.polpermissive,
           CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                         WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
           (SELECT string_agg(CASE WHEN r.id = 0 THEN 'public' ELSE quote_ident(pg_catalog.pg_get_userbyid(r.id)) END, ', ')
            FROM unnest(p.polroles) AS r(id)),
           pg_catalog.pg_get_expr(p.polqual, p.polrelid),
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),
           (SELECT proconfig FROM pg_catalog.pg_proc WHERE oid = 'public.update_claude_config_updated_at()'::regprocedure),
           pg_catalog.obj_description(p.oid, 'pg_policy')
    FROM pg_catalog.pg_policy p
    WHERE p.polrelid = 'public.x402_user_claude_configs'::regclass
      AND p.polname = 'Users can manage their own Claude config';

DROP POLICY "Users can manage their own Claude config" ON x402_user_claude_configs;

CREATE POLICY "Users can manage their own Claude config" ON x402_user_claude_configs
    FOR ALL TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id);

DO $$
    DECLARE
      comment text := (SELECT claude_policy_comment FROM x402_migrations.prior_state_008);
    BEGIN
      IF comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs IS %L', comment);
      END IF;
    END
    $$;

ALTER FUNCTION update_claude_config_updated_at() SET search_path = '';

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
