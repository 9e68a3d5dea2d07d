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
 * Production, adopted at 006, has RLS on x402_resources already, and may have hardened or
 * replaced the Claude policy by hand. So `up` changes only what it knows: the policy if it is
 * 002's (a policy of another shape, or under another name, is production's own and stays), and
 * the function's search_path if none is set. It records what it found in
 * x402_migrations.prior_state_008, a schema the API cannot reach: booleans and one word, which
 * `down` checks before it changes anything. The record is never run as SQL: what it holds is
 * checked against what 008 can find, and within that it is obeyed. Only the record's owner, the
 * role that migrates, can edit it, and that role could change the tables directly.
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
      claude_policy text NOT NULL CHECK (claude_policy IN ('plan', 'advised', 'other', 'absent')),
      claude_search_path_set boolean NOT NULL
    )
  `.execute(db)
  await sql`
    COMMENT ON TABLE x402_migrations.prior_state_008 IS
      'What migration 008 found: RLS of two tables, the shape of the Claude policy (plan: as 002 made it, replaced by 008), whether 008 set the function''s search_path. Its down checks this, restores it and drops the table.'
  `.execute(db)
  await sql`
    INSERT INTO x402_migrations.prior_state_008
    SELECT '008_close_supabase_advisor_findings',
           (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.x402_resources'::regclass),
           (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.x402_openrouter_models'::regclass),
           ${claudePolicyShape},
           NOT EXISTS (SELECT FROM pg_catalog.pg_proc, unnest(proconfig) AS setting
                       WHERE oid = 'public.update_claude_config_updated_at()'::regprocedure
                         AND setting LIKE 'search_path=%')
  `.execute(db)

  // Only 002's policy is replaced; a comment production wrote on it stays with the new one.
  await sql`
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
    $$
  `.execute(db)
  await sql`
    DO $$
    BEGIN
      IF (SELECT claude_search_path_set FROM x402_migrations.prior_state_008) THEN
        ALTER FUNCTION public.update_claude_config_updated_at() SET search_path = '';
      END IF;
    END
    $$
  `.execute(db)

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
 * The shape of the Claude user policy, as one word: `plan` (002's: every role, auth.uid() per
 * row), `advised` (what 008 makes), `other` (production's own), or `absent` (none of that name).
 */
const claudePolicyShape = sql`(
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
)`

/**
 * Back to what `up` found, from its record, checked first: RLS off again only where it was off,
 * 002's policy back only where 008 replaced it and the policy is still as 008 made it (a policy
 * narrowed since is never widened back: the down refuses), and the function's search_path reset
 * only where 008 set it and it is still empty. x402_resources is locked before the catalog
 * again, for the same reason.
 */
export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DO $$
    DECLARE
      prior jsonb;
      record_rows bigint;
      policy text := ${claudePolicyShape};
      comment text := (SELECT obj_description(oid, 'pg_policy') FROM pg_policy
                       WHERE polrelid = 'public.x402_user_claude_configs'::regclass
                         AND polname = 'Users can manage their own Claude config');
    BEGIN
      -- One row, kept to one by its primary key and to known values by its checks, as up made
      -- it: of two rows, whichever came first would be read, and a forged one could win.
      IF to_regclass('x402_migrations.prior_state_008') IS NOT NULL THEN
        -- Held until COMMIT, so that the table checked below is the one read.
        LOCK TABLE x402_migrations.prior_state_008 IN ACCESS SHARE MODE;
        IF (SELECT count(*) FROM pg_catalog.pg_constraint
            WHERE conrelid = 'x402_migrations.prior_state_008'::regclass AND convalidated
              AND pg_catalog.pg_get_constraintdef(oid) IN (
                'PRIMARY KEY (migration)',
                'CHECK ((migration = ''008_close_supabase_advisor_findings''::text))',
                'CHECK ((claude_policy = ANY (ARRAY[''plan''::text, ''advised''::text, ''other''::text, ''absent''::text])))'))
           <> 3
           OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = 'x402_migrations.prior_state_008'::regclass) <> 'r' THEN
          RAISE EXCEPTION 'Cannot roll back 008_close_supabase_advisor_findings: x402_migrations.prior_state_008 is not the table 008 made: its primary key (migration) or its CHECK constraints on migration and claude_policy were dropped or changed, so it cannot be trusted to hold one row of what 008 found. Nothing was changed. Keep 008 applied, or write the record again as docs/rollback.md describes.';
        END IF;
        -- Read by named columns of up's built-in types only: a column of another type, or an
        -- owner who cannot already act as the role running the down, could run its own code
        -- (a cast, a policy, a trigger) with that role's privileges.
        IF (SELECT pg_catalog.array_agg(a.attname::text || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
            FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = 'x402_migrations.prior_state_008'::regclass AND a.attnum > 0 AND NOT a.attisdropped)
           IS DISTINCT FROM ARRAY['migration text', 'resources_rls boolean', 'models_rls boolean', 'claude_policy text', 'claude_search_path_set boolean'] THEN
          RAISE EXCEPTION 'Cannot roll back 008_close_supabase_advisor_findings: x402_migrations.prior_state_008 is not the table 008 made: it has columns other than migration, resources_rls, models_rls, claude_policy and claude_search_path_set of their types, and reading one could run code that whoever added it wrote. Nothing was read from it or changed. Keep 008 applied, or write the record again as docs/rollback.md describes.';
        END IF;
        IF NOT (SELECT pg_catalog.pg_has_role(c.relowner, current_user, 'USAGE') FROM pg_catalog.pg_class c
                WHERE c.oid = 'x402_migrations.prior_state_008'::regclass) THEN
          RAISE EXCEPTION 'Cannot roll back 008_close_supabase_advisor_findings: x402_migrations.prior_state_008 is owned by %, which cannot act as role % that runs the down, and an owner''s code on the table (a policy, a trigger) would run as %. Nothing was read from it or changed. Run the down as a role its owner can act as, or, once you have checked the record, give the table to a role that can act as % (ALTER TABLE … OWNER TO).',
            (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c WHERE c.oid = 'x402_migrations.prior_state_008'::regclass),
            current_user, current_user, current_user;
        END IF;
        SELECT count(*) INTO record_rows FROM ONLY x402_migrations.prior_state_008;
        IF record_rows > 1 THEN
          RAISE EXCEPTION 'Cannot roll back 008_close_supabase_advisor_findings: x402_migrations.prior_state_008 has % rows, where 008 writes one: it was edited, and which row is what 008 found cannot be told. Nothing was changed. Keep 008 applied, or write the record again as docs/rollback.md describes.', record_rows;
        END IF;
        SELECT jsonb_build_object('resources_rls', p.resources_rls, 'models_rls', p.models_rls,
                                  'claude_policy', p.claude_policy, 'claude_search_path_set', p.claude_search_path_set)
        INTO prior FROM ONLY x402_migrations.prior_state_008 p;
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
    $$
  `.execute(db)
  await sql`DROP TABLE x402_migrations.prior_state_008`.execute(db)
}
