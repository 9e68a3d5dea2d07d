import { type Kysely, sql } from 'kysely'

/**
 * Port of production's hand-written `002_add_claude_integration.sql`, kept as production has it
 * (including `auth.uid()` evaluated per row): this is history, and 005 improves on it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('x402_user_claude_configs')
    .addColumn('user_id', 'uuid', (col) =>
      col.primaryKey().references('auth.users.id').onDelete('cascade'),
    )
    .addColumn('api_key_encrypted', 'text', (col) => col.notNull())
    .addColumn('is_enabled', 'boolean', (col) => col.defaultTo(true))
    .addColumn('created_at', 'timestamptz', (col) => col.defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.defaultTo(sql`now()`))
    .execute()

  await db.schema
    .createIndex('idx_claude_configs_user_enabled')
    .on('x402_user_claude_configs')
    .columns(['user_id', 'is_enabled'])
    .execute()

  await sql`
    CREATE FUNCTION update_claude_config_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
      NEW.updated_at = now();
      RETURN NEW;
    END;
    $$
  `.execute(db)

  await sql`
    CREATE TRIGGER claude_config_updated_at
    BEFORE UPDATE ON x402_user_claude_configs
    FOR EACH ROW EXECUTE FUNCTION update_claude_config_updated_at()
  `.execute(db)

  await sql`ALTER TABLE x402_user_claude_configs ENABLE ROW LEVEL SECURITY`.execute(db)

  await sql`
    CREATE POLICY "Users can manage their own Claude config" ON x402_user_claude_configs
    FOR ALL
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id)
  `.execute(db)

  await sql`
    CREATE POLICY "Service role full access" ON x402_user_claude_configs
    FOR ALL TO service_role
    USING (true)
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  // Dropping the table takes its index, trigger and policies with it.
  await db.schema.dropTable('x402_user_claude_configs').execute()
  await sql`DROP FUNCTION update_claude_config_updated_at()`.execute(db)
}
