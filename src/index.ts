export {
  createDb,
  type CreateDbOptions,
  type DatabaseTarget,
  DEFAULT_PGLITE_DATA_DIR,
  describeDatabaseTarget,
  IN_MEMORY,
  resolveDatabaseTarget,
} from './db/create-db.js'
export { migrateOnStartup, type MigrateOnStartupOptions, type StartupMigrationOutcome } from './db/migrate-on-startup.js'
export { type MigrationFailureContext, MigrationError, TransactionPoolerError } from './db/migration-error.js'
export {
  DEFAULT_LOCK_WAIT_MS,
  MIGRATION_LOCK_KEY,
  type MigrationLockOptions,
  MigrationLockTimeoutError,
  type MigrationSession,
  withMigrationLock,
  withoutKyselyMigrationLock,
} from './db/migration-lock.js'
export { type MigrationConfig, migrationProvider, runsInTransaction } from './db/migration-provider.js'
export { type MigrationTarget, runMigrations } from './db/migration-runner.js'
export { type MigrateOptions, type MigrationSettings, migrationSettings } from './db/migration-settings.js'
export { exportMigrationSql, type MigrationDirection, resolveMigrationName } from './db/migration-sql.js'
export {
  createMigrator,
  MIGRATION_TABLE_SCHEMA,
  migrateDown,
  migrateTo,
  migrateToLatest,
  migrateUp,
  type MigrationStatus,
  migrationStatus,
  pendingMigrationNames,
} from './db/migrator.js'
export type { OpenRouterConfig, OpenRouterParams } from './db/openrouter-config.js'
export { QueryError, toQueryError } from './db/query-error.js'
export { ensureSupabaseStandIn, type SupabaseStandInOutcome } from './db/supabase-stand-in.js'
export type * from './db/types.js'
