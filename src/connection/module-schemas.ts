/**
 * The schema that holds the module's bookkeeping: Kysely's history tables (kysely_migration,
 * kysely_migration_lock), the checksums, adoption's records and the migrations' prior states.
 * Not `public`: Supabase's default privileges would expose them through the API to anon. Here,
 * below the migrator, so that the connection's checks (lesser-triggers.ts) cover it too.
 */
export const MIGRATION_TABLE_SCHEMA = 'x402_migrations'
