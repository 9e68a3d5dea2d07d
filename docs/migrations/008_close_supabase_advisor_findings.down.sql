-- Migration 008_close_supabase_advisor_findings (down), exported by `npm run migrate:sql` from src/migrations/008_close_supabase_advisor_findings.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

DO $$
    DECLARE
      prior x402_migrations.prior_state_008;
      setting text;
    BEGIN
      SELECT * INTO STRICT prior FROM x402_migrations.prior_state_008;

      DROP POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs;
      EXECUTE format(
        'CREATE POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs AS %s FOR %s TO %s%s%s',
        CASE WHEN prior.claude_policy_permissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
        prior.claude_policy_command,
        prior.claude_policy_roles,
        CASE WHEN prior.claude_policy_using IS NOT NULL THEN format(' USING (%s)', prior.claude_policy_using) ELSE '' END,
        CASE WHEN prior.claude_policy_check IS NOT NULL THEN format(' WITH CHECK (%s)', prior.claude_policy_check) ELSE '' END
      );
      IF prior.claude_policy_comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs IS %L',
                       prior.claude_policy_comment);
      END IF;
      -- proconfig holds name=value. A list setting (search_path) is stored already quoted, as
      -- it is written; any other value is one string.
      ALTER FUNCTION public.update_claude_config_updated_at() RESET ALL;
      FOREACH setting IN ARRAY coalesce(prior.claude_function_config, '{}') LOOP
        EXECUTE format(
          'ALTER FUNCTION public.update_claude_config_updated_at() SET %s = %s',
          split_part(setting, '=', 1),
          CASE WHEN split_part(setting, '=', 1) = 'search_path' THEN substr(setting, strpos(setting, '=') + 1)
               ELSE quote_literal(substr(setting, strpos(setting, '=') + 1)) END
        );
      END LOOP;

      LOCK TABLE public.x402_resources IN ACCESS EXCLUSIVE MODE;
      DROP POLICY "Service role full access on models" ON public.x402_openrouter_models;
      DROP POLICY "Anyone can read the model catalog" ON public.x402_openrouter_models;
      IF NOT prior.models_rls THEN
        ALTER TABLE public.x402_openrouter_models DISABLE ROW LEVEL SECURITY;
      END IF;

      DROP POLICY "Service role full access on resources" ON public.x402_resources;
      IF NOT prior.resources_rls THEN
        ALTER TABLE public.x402_resources DISABLE ROW LEVEL SECURITY;
      END IF;
    END
    $$;

DROP TABLE x402_migrations.prior_state_008;

COMMIT;
