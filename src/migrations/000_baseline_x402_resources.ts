import { type Kysely, sql } from 'kysely'

/**
 * Baseline: x402_resources as it stood before the numbered hand-written files. Production
 * carries about 80 columns; this ports the ones the later migrations and the app's queries
 * depend on, under their production names.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('x402_resources')
    .addColumn('id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('slug', 'text')
    .addColumn('description', 'text')
    .addColumn('resource_url', 'text', (col) => col.notNull())
    .addColumn('normalized_url', 'text', (col) => col.notNull())
    .addColumn('network', 'text', (col) => col.notNull())
    .addColumn('pay_to', 'text', (col) => col.notNull())
    .addColumn('resource_type', 'text', (col) => col.notNull().defaultTo('external'))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addCheckConstraint(
      'x402_resources_network_check',
      sql`network = ANY (ARRAY['solana', 'base', 'ethereum', 'polygon', 'base-sepolia', 'ethereum-sepolia', 'solana-devnet'])`,
    )
    .addCheckConstraint(
      'x402_resources_resource_type_check',
      sql`resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static'])`,
    )
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('x402_resources').execute()
}
