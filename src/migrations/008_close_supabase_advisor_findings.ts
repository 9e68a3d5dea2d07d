import { type Kysely, sql } from 'kysely'

/**
 * Closes what Supabase's advisor reports on the module's objects:
 * - rls_disabled_in_public (ERROR) on x402_resources and x402_openrouter_models. Supabase's
 *   default privileges give anon every privilege on both, so with RLS off the browser's anon key
 *   could write them. x402_resources gets RLS with no policy for anon or authenticated, as
 *   production has it: only the service role reaches it (BYPASSRLS, and a policy of its own so
 *   that the table does not read as forgotten, rls_enabled_no_policy). x402_openrouter_models gets
 *   RLS with a read policy for anon and authenticated (the catalog is public) and writes for the
 *   service role only.
 * - auth_rls_initplan and function_search_path_mutable on 002's objects, fixed as 007 fixed 005's:
 *   the user policy `TO authenticated` with `(select auth.uid())`, and the trigger function with
 *   an empty search_path (its body calls only now(), which pg_catalog always provides).
 *
 * Production, adopted at 006, has RLS on x402_resources already. So `up` first records what it
 * finds (RLS of both tables, the Claude user policy as it stands, the function's settings) in
 * x402_migrations.prior_state_008, a schema the API cannot reach, and `down` puts back exactly
 * that (the policy's PERMISSIVE or RESTRICTIVE, command, roles, expressions and comment too), in
 * SQL, so that the script of `migrate:sql -- 008 --down` does the same in the SQL Editor.
 *
 * Catalog changes only, in one short transaction under the runner's lock_timeout (retried when
 * it fires). x402_resources, the busiest table, is locked as late as it can be: just before the
 * catalog, because an app write takes x402_resources first and then x402_openrouter_models (the
 * foreign key of openrouter_model_id), and a migration taking them in the other order deadlocks
 * with a writer whose transaction is between the two. Its ACCESS EXCLUSIVE lock is held only for
 * the catalog changes that follow, until COMMIT.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE SCHEMA IF NOT EXISTS x402_migrations`.execute(db)
  await sql`
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
    )
  `.execute(db)
  await sql`
    COMMENT ON TABLE x402_migrations.prior_state_008 IS
      'What migration 008 found before it changed it; its down restores this and drops the table.'
  `.execute(db)
  await sql`
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
      AND p.polname = 'Users can manage their own Claude config'
  `.execute(db)

  await sql`DROP POLICY "Users can manage their own Claude config" ON x402_user_claude_configs`.execute(db)
  await sql`
    CREATE POLICY "Users can manage their own Claude config" ON x402_user_claude_configs
    FOR ALL TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id)
  `.execute(db)
  // A comment production wrote on the policy documents it; it stays with the new one.
  await sql`
    DO $$
    DECLARE
      comment text := (SELECT claude_policy_comment FROM x402_migrations.prior_state_008);
    BEGIN
      IF comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON POLICY "Users can manage their own Claude config" ON public.x402_user_claude_configs IS %L', comment);
      END IF;
    END
    $$
  `.execute(db)
  await sql`ALTER FUNCTION update_claude_config_updated_at() SET search_path = ''`.execute(db)

  await sql`LOCK TABLE x402_resources IN ACCESS EXCLUSIVE MODE`.execute(db)
  await sql`ALTER TABLE x402_openrouter_models ENABLE ROW LEVEL SECURITY`.execute(db)
  await sql`
    CREATE POLICY "Anyone can read the model catalog" ON x402_openrouter_models
    FOR SELECT TO anon, authenticated
    USING (true)
  `.execute(db)
  await sql`
    CREATE POLICY "Service role full access on models" ON x402_openrouter_models
    FOR ALL TO service_role
    USING (true)
    WITH CHECK (true)
  `.execute(db)

  await sql`ALTER TABLE x402_resources ENABLE ROW LEVEL SECURITY`.execute(db)
  await sql`
    CREATE POLICY "Service role full access on resources" ON x402_resources
    FOR ALL TO service_role
    USING (true)
    WITH CHECK (true)
  `.execute(db)
}

/**
 * Back to what `up` found: RLS off again only where it was off, the Claude policy and the
 * function's settings as recorded. x402_resources is locked before the catalog again, for the same
 * reason.
 */
export async function down(db: Kysely<any>): Promise<void> {
  await sql`
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
    $$
  `.execute(db)
  await sql`DROP TABLE x402_migrations.prior_state_008`.execute(db)
}
