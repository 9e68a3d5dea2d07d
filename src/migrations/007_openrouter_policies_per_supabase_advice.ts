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
  await sql`DROP POLICY "Users can manage their own OpenRouter config" ON x402_user_openrouter_integrations`.execute(db)
  await sql`
    CREATE POLICY "Users can manage their own OpenRouter config" ON x402_user_openrouter_integrations
    FOR ALL TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id)
  `.execute(db)
  await sql`ALTER FUNCTION update_openrouter_integration_updated_at() SET search_path = ''`.execute(db)
}

/** Back to the policy and function as the plan wrote them. */
export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER FUNCTION update_openrouter_integration_updated_at() RESET search_path`.execute(db)
  await sql`DROP POLICY "Users can manage their own OpenRouter config" ON x402_user_openrouter_integrations`.execute(db)
  await sql`
    CREATE POLICY "Users can manage their own OpenRouter config" ON x402_user_openrouter_integrations
    FOR ALL
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id)
  `.execute(db)
}
