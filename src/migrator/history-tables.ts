/**
 * The names of the module's history tables, apart from the code that reads and writes them so
 * that the command line's no-op check (up-to-date-at-once.ts) names them without loading kysely.
 */

/**
 * The schema that holds Kysely's history tables (kysely_migration, kysely_migration_lock). Not
 * `public`: Supabase's default privileges would expose them through the API to anon.
 */
export const MIGRATION_TABLE_SCHEMA = 'x402_migrations'

/** Kysely's history table, schema-qualified, for SQL text. */
export const MIGRATION_HISTORY_TABLE = `${MIGRATION_TABLE_SCHEMA}.kysely_migration`

/**
 * The history table's column that marks a migration whose non-transactional `down` has begun
 * and not finished. Added by the runner the first time such a down runs; Kysely's Migrator reads
 * only name and timestamp, so it is not disturbed by it.
 */
export const REVERTING_COLUMN = 'reverting_since'

/** The table, in schema x402_migrations, that keeps a checksum of each applied migration. */
export const MIGRATION_CHECKSUM_TABLE = 'migration_checksum'

/**
 * The table in which a migration's up records what it found, for its down to check and restore,
 * such as `x402_migrations.prior_state_008`: its own down reads and drops it, so the check after
 * that down lets it go (down-guard.ts, downCheckSql).
 */
export function priorStateTable(migration: string): string {
  return `${MIGRATION_TABLE_SCHEMA}.prior_state_${migration.split('_')[0]}`
}
