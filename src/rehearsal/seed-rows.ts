import { type Kysely, sql } from 'kysely'

/** How many rows the rehearsal put into a table that existed before the migration. */
export interface SeededTable {
  table: string
  rows: number
}

/**
 * Fills the tables that carry the app's traffic with `rows[table]` rows of plausible values, so
 * that a scan or a rewrite takes the time it takes on data, and then analyzes them (autovacuum
 * then has nothing to do while the rehearsal runs). Only the columns the baselines create are
 * written: every later column is nullable or has a default. Tables it does not know, or that do not exist yet, stay empty.
 *
 * @example
 * ```ts
 * await seedRepresentativeRows(scratch, { x402_resources: 100_000, ai_models: 300, x402_openrouter_models: 300 })
 * ```
 */
export async function seedRepresentativeRows(
  db: Kysely<any>,
  rows: Readonly<Record<string, number>>,
): Promise<SeededTable[]> {
  const seeded: SeededTable[] = []
  const { rows: present } = await sql<{ models: boolean; catalog: boolean; resources: boolean }>`
    SELECT to_regclass('public.ai_models') IS NOT NULL AS models,
           to_regclass('public.x402_openrouter_models') IS NOT NULL AS catalog,
           to_regclass('public.x402_resources') IS NOT NULL AS resources
  `.execute(db)
  const models = present[0]!.models ? Math.max(0, Math.floor(rows.ai_models ?? 0)) : 0
  if (models > 0) {
    await sql`
      INSERT INTO ai_models (openrouter_id, display_name, provider, context_length, pricing)
      SELECT 'provider-' || n % 40 || '/model-' || n, 'Model ' || n, 'provider-' || n % 40, 8192 * (1 + n % 16),
             jsonb_build_object('prompt', '0.000001', 'completion', '0.000002')
      FROM generate_series(1, ${sql.lit(models)}) AS n
    `.execute(db)
    seeded.push({ table: 'ai_models', rows: models })
  }
  // The catalog under the name 006 gives it, where the rehearsal starts after 006.
  const catalog = present[0]!.catalog
    ? Math.max(0, Math.floor(rows.x402_openrouter_models ?? 0))
    : 0
  if (catalog > 0) {
    await sql`
      INSERT INTO x402_openrouter_models (openrouter_id, display_name, provider, context_length, pricing_prompt, pricing_completion)
      SELECT 'provider-' || n % 40 || '/model-' || n, 'Model ' || n, 'provider-' || n % 40, 8192 * (1 + n % 16), '0.000001', '0.000002'
      FROM generate_series(1, ${sql.lit(catalog)}) AS n
    `.execute(db)
    seeded.push({ table: 'x402_openrouter_models', rows: catalog })
  }
  const resources = present[0]!.resources ? Math.max(0, Math.floor(rows.x402_resources ?? 0)) : 0
  if (resources > 0) {
    await sql`
      INSERT INTO x402_resources (name, slug, description, resource_url, normalized_url, network, pay_to, resource_type)
      SELECT 'Resource ' || n, 'resource-' || n,
             left(repeat('Pay-per-call API on the x402 protocol, answers in JSON. ', 4), 200),
             'https://api' || n % 997 || '.example.com/v1/resources/' || n,
             'api' || n % 997 || '.example.com/v1/resources/' || n,
             (ARRAY['base', 'solana', 'ethereum', 'polygon', 'base-sepolia'])[1 + n % 5],
             '0x' || lpad(to_hex(n), 40, '0'),
             (ARRAY['external', 'proxy', 'prompt', 'static'])[1 + n % 4]
      FROM generate_series(1, ${sql.lit(resources)}) AS n
    `.execute(db)
    seeded.push({ table: 'x402_resources', rows: resources })
  }
  for (const { table } of seeded) await sql`VACUUM ANALYZE ${sql.table(table)}`.execute(db)
  return seeded
}

/** The tables {@link seedRepresentativeRows} knows how to fill. */
export const SEEDED_TABLES = ['ai_models', 'x402_openrouter_models', 'x402_resources'] as const
