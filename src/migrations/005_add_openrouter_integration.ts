import { type Kysely, sql } from 'kysely'

/**
 * OpenRouter integration (plan 11-01): per-user encrypted OpenRouter API keys, and
 * x402_resources extended for the 'openrouter_instant' resource type.
 *
 * The five sections follow the plan; the table follows 002's x402_user_claude_configs, with
 * Supabase's advice applied on top: the user policy is `TO authenticated` and evaluates
 * `(select auth.uid())` once per statement, and the trigger function has a fixed search_path.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // Section 1: the table. encrypted_api_key holds `<iv hex>:<ciphertext hex>`, the format
  // shared by every integration.
  await db.schema
    .createTable('user_openrouter_integrations')
    .addColumn('user_id', 'uuid', (col) =>
      col.primaryKey().references('auth.users.id').onDelete('cascade'),
    )
    .addColumn('encrypted_api_key', 'text', (col) => col.notNull())
    .addColumn('is_valid', 'boolean', (col) => col.defaultTo(true))
    .addColumn('last_verified_at', 'timestamptz')
    .addColumn('is_enabled', 'boolean', (col) => col.defaultTo(true))
    .addColumn('created_at', 'timestamptz', (col) => col.defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.defaultTo(sql`now()`))
    .execute()

  await db.schema
    .createIndex('idx_openrouter_integrations_user_enabled')
    .on('user_openrouter_integrations')
    .columns(['user_id', 'is_enabled'])
    .execute()

  // Section 2: row level security. PostgREST reaches this table as anon or authenticated,
  // and Supabase's default privileges grant them everything: the policies are the protection.
  await sql`ALTER TABLE user_openrouter_integrations ENABLE ROW LEVEL SECURITY`.execute(db)

  await sql`
    CREATE POLICY "Users can manage their own OpenRouter config" ON user_openrouter_integrations
    FOR ALL TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id)
  `.execute(db)

  await sql`
    CREATE POLICY "Service role full access on OpenRouter" ON user_openrouter_integrations
    FOR ALL TO service_role
    USING (true)
  `.execute(db)

  // Section 3: updated_at. An empty search_path stops a caller's schema from shadowing now().
  await sql`
    CREATE FUNCTION update_openrouter_integration_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = ''
    AS $$
    BEGIN
      NEW.updated_at = now();
      RETURN NEW;
    END;
    $$
  `.execute(db)

  await sql`
    CREATE TRIGGER openrouter_integration_updated_at
    BEFORE UPDATE ON user_openrouter_integrations
    FOR EACH ROW EXECUTE FUNCTION update_openrouter_integration_updated_at()
  `.execute(db)

  // Section 4: x402_resources. A resource outlives the catalog entry of its model.
  await db.schema
    .alterTable('x402_resources')
    .addColumn('openrouter_model_id', 'uuid', (col) =>
      col.references('ai_models.id').onDelete('set null'),
    )
    .addColumn('openrouter_config', 'jsonb')
    .execute()

  await db.schema
    .alterTable('x402_resources')
    .dropConstraint('x402_resources_resource_type_check')
    .execute()
  await db.schema
    .alterTable('x402_resources')
    .addCheckConstraint(
      'x402_resources_resource_type_check',
      sql`resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static', 'prompt_template', 'openrouter_instant'])`,
    )
    .execute()

  await db.schema
    .createIndex('idx_x402_resources_openrouter_model')
    .on('x402_resources')
    .column('openrouter_model_id')
    .where('openrouter_model_id', 'is not', null)
    .execute()

  // Section 5: comments.
  await sql`
    COMMENT ON TABLE user_openrouter_integrations IS
      'OpenRouter API keys of users, encrypted; one row per user. Read by the backend as service_role to run openrouter_instant resources.'
  `.execute(db)
  const columnComments: Array<[string, string]> = [
    ['user_openrouter_integrations.user_id', 'Owner of the key; deleting the auth user deletes the row.'],
    ['user_openrouter_integrations.encrypted_api_key', 'OpenRouter API key, encrypted with INTEGRATION_ENCRYPTION_SECRET as <iv hex>:<ciphertext hex>. Never plaintext.'],
    ['user_openrouter_integrations.is_valid', 'False once a check with OpenRouter rejected the key.'],
    ['user_openrouter_integrations.last_verified_at', 'When the key was last checked with OpenRouter.'],
    ['user_openrouter_integrations.is_enabled', 'The user switched the integration on (true) or off (false).'],
    ['user_openrouter_integrations.created_at', 'When the key was first stored.'],
    ['user_openrouter_integrations.updated_at', 'When the row last changed; set by trigger openrouter_integration_updated_at.'],
    ['x402_resources.openrouter_model_id', 'Model of an openrouter_instant resource, from ai_models; set to null when the model leaves the catalog.'],
    ['x402_resources.openrouter_config', 'Settings of an openrouter_instant resource: {modelId, systemPrompt, params: {temperature, maxTokens, topP, ...}}.'],
  ]
  for (const [column, comment] of columnComments) {
    await sql`COMMENT ON COLUMN ${sql.ref(column)} IS ${sql.lit(comment)}`.execute(db)
  }
}

/**
 * The complete reverse of `up`. The five-type constraint goes back first: if a resource of type
 * 'openrouter_instant' exists it fails with 23514 before anything is dropped, and the migrator's
 * transaction keeps the database as it was.
 */
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('x402_resources')
    .dropConstraint('x402_resources_resource_type_check')
    .execute()
  await db.schema
    .alterTable('x402_resources')
    .addCheckConstraint(
      'x402_resources_resource_type_check',
      sql`resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static', 'prompt_template'])`,
    )
    .execute()

  await db.schema.dropIndex('idx_x402_resources_openrouter_model').execute()
  await db.schema
    .alterTable('x402_resources')
    .dropColumn('openrouter_config')
    .dropColumn('openrouter_model_id')
    .execute()

  await sql`DROP TRIGGER openrouter_integration_updated_at ON user_openrouter_integrations`.execute(db)
  await sql`DROP FUNCTION update_openrouter_integration_updated_at()`.execute(db)
  await sql`DROP POLICY "Service role full access on OpenRouter" ON user_openrouter_integrations`.execute(db)
  await sql`DROP POLICY "Users can manage their own OpenRouter config" ON user_openrouter_integrations`.execute(db)
  await db.schema.dropIndex('idx_openrouter_integrations_user_enabled').execute()
  await db.schema.dropTable('user_openrouter_integrations').execute()
}
