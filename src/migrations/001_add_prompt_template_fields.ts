import { type Kysely, sql } from 'kysely'

/**
 * Port of production's hand-written `001_add_prompt_template_fields.sql`: the prompt-template
 * fields, and 'prompt_template' added to the resource types. The constraint is dropped and added
 * again under its production name, the pattern that 005 follows.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('x402_resources')
    .addColumn('pt_system_prompt', 'text')
    .addColumn('pt_parameters', 'jsonb', (col) => col.defaultTo(sql`'[]'::jsonb`))
    .addColumn('pt_model', 'varchar(100)', (col) => col.defaultTo('claude-sonnet-4-20250514'))
    .addColumn('pt_max_tokens', 'integer', (col) => col.defaultTo(4096))
    .addColumn('pt_allows_user_message', 'boolean', (col) => col.defaultTo(false))
    .execute()

  await db.schema
    .alterTable('x402_resources')
    .addCheckConstraint(
      'pt_max_tokens_range',
      sql`pt_max_tokens IS NULL OR (pt_max_tokens >= 1 AND pt_max_tokens <= 8192)`,
    )
    .execute()

  await db.schema.alterTable('x402_resources').dropConstraint('x402_resources_resource_type_check').execute()
  await db.schema
    .alterTable('x402_resources')
    .addCheckConstraint(
      'x402_resources_resource_type_check',
      sql`resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static', 'prompt_template'])`,
    )
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('x402_resources').dropConstraint('x402_resources_resource_type_check').execute()
  await db.schema
    .alterTable('x402_resources')
    .addCheckConstraint(
      'x402_resources_resource_type_check',
      sql`resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static'])`,
    )
    .execute()

  await db.schema.alterTable('x402_resources').dropConstraint('pt_max_tokens_range').execute()
  await db.schema
    .alterTable('x402_resources')
    .dropColumn('pt_allows_user_message')
    .dropColumn('pt_max_tokens')
    .dropColumn('pt_model')
    .dropColumn('pt_parameters')
    .dropColumn('pt_system_prompt')
    .execute()
}
