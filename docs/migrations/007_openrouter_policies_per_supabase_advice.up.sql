-- Migration 007_openrouter_policies_per_supabase_advice (up), exported by `npm run migrate:sql` from src/migrations/007_openrouter_policies_per_supabase_advice.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

DO $$
    DECLARE
      comment text := (SELECT obj_description(oid, 'pg_policy') FROM pg_catalog.pg_policy
                       WHERE polrelid = 'public.x402_user_openrouter_integrations'::regclass
                         AND polname = 'Users can manage their own OpenRouter config');
    BEGIN
      DROP POLICY "Users can manage their own OpenRouter config" ON public.x402_user_openrouter_integrations;
      CREATE POLICY "Users can manage their own OpenRouter config" ON public.x402_user_openrouter_integrations
        FOR ALL TO authenticated
        USING ((select auth.uid()) = user_id)
        WITH CHECK ((select auth.uid()) = user_id);
      IF comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON POLICY "Users can manage their own OpenRouter config" ON public.x402_user_openrouter_integrations IS %L', comment);
      END IF;
    END
    $$;

ALTER FUNCTION update_openrouter_integration_updated_at() SET search_path = '';

COMMIT;
