import { type Kysely, sql } from 'kysely'

/**
 * Baseline: the model catalog as production has it, which the backend syncs from OpenRouter's
 * model list. It predates the numbered hand-written files and is ported here so that a new
 * database gets the table that 005 points `x402_resources.openrouter_model_id` at.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ai_models')
    .addColumn('id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('openrouter_id', 'text', (col) => col.notNull().unique())
    .addColumn('display_name', 'text', (col) => col.notNull())
    .addColumn('provider', 'text', (col) => col.notNull())
    .addColumn('context_length', 'integer')
    .addColumn('pricing', 'jsonb')
    .addColumn('is_active', 'boolean', (col) => col.notNull().defaultTo(true))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ai_models').execute()
}
