import { type Kysely, sql } from 'kysely'

/**
 * Supabase's advice for the objects 005 created as the plan wrote them: the user policy names
 * its role (`TO authenticated`, so anon's requests skip it) and evaluates `(select auth.uid())`
 * once per statement instead of once per row, and the trigger function gets a fixed, empty
 * search_path, so that a caller's schema cannot shadow now().
 *
 * A migration of its own, not part of 005, so that databases where the plan's SQL was pasted
 * into the SQL Editor can be adopted at 005 (or, under production's names, at 006) as they are
 * and then brought here. Catalog changes on the small x402_user_openrouter_integrations table
 * only, in one short transaction.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // A comment production wrote on the policy stays with the new one.
  await sql`
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
    $$
  `.execute(db)
  await sql`ALTER FUNCTION update_openrouter_integration_updated_at() SET search_path = ''`.execute(db)
}

/**
 * Back to the policy and function as the plan wrote them, only where they are still as `up`
 * made them: a policy changed since (narrowed by hand, or dropped) is never replaced with the
 * plan's, which every role passes; the down refuses and changes nothing. A search_path set
 * since to something other than 007's empty one stays, and so does the policy's comment.
 */
export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DO $$
    DECLARE
      comment text := (SELECT obj_description(oid, 'pg_policy') FROM pg_catalog.pg_policy
                       WHERE polrelid = 'public.x402_user_openrouter_integrations'::regclass
                         AND polname = 'Users can manage their own OpenRouter config');
    BEGIN
      IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_policy p
        WHERE p.polrelid = 'public.x402_user_openrouter_integrations'::regclass
          AND p.polname = 'Users can manage their own OpenRouter config'
          AND p.polpermissive AND p.polcmd = '*'
          AND p.polroles = ARRAY['authenticated'::regrole]::oid[]
          AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = '(( SELECT auth.uid() AS uid) = user_id)'
          AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = '(( SELECT auth.uid() AS uid) = user_id)'
      ) THEN
        RAISE EXCEPTION 'Rolling back 007_openrouter_policies_per_supabase_advice would replace the policy "Users can manage their own OpenRouter config" on x402_user_openrouter_integrations, changed or dropped since 007 made it, with the plan''s FOR ALL TO public, which every role passes. Nothing was changed. Keep 007 applied.';
      END IF;
      IF EXISTS (
        SELECT FROM pg_catalog.pg_proc, unnest(proconfig) AS setting
        WHERE oid = 'public.update_openrouter_integration_updated_at()'::regprocedure AND setting = 'search_path=""'
      ) THEN
        ALTER FUNCTION public.update_openrouter_integration_updated_at() RESET search_path;
      END IF;
      DROP POLICY "Users can manage their own OpenRouter config" ON public.x402_user_openrouter_integrations;
      CREATE POLICY "Users can manage their own OpenRouter config" ON public.x402_user_openrouter_integrations
        FOR ALL
        USING (auth.uid() = user_id)
        WITH CHECK (auth.uid() = user_id);
      IF comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON POLICY "Users can manage their own OpenRouter config" ON public.x402_user_openrouter_integrations IS %L', comment);
      END IF;
    END
    $$
  `.execute(db)
}
