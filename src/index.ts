export { exportBaselineSql } from './db/baseline-sql.js'
export {
  createDb,
  type CreateDbOptions,
  type DatabaseTarget,
  DEFAULT_PGLITE_DATA_DIR,
  describeDatabaseTarget,
  IN_MEMORY,
  resolveDatabaseTarget,
} from './db/create-db.js'
export {
  checkDrift,
  type ChecksumVerdict,
  type DriftCheckOptions,
  type DriftReport,
  driftSummary,
  formatDriftReport,
} from './db/drift-check.js'
export { migrateOnStartup, type MigrateOnStartupOptions, type StartupMigrationOutcome } from './db/migrate-on-startup.js'
export {
  type BaselineOptions,
  BaselineRefusedError,
  type BaselineResult,
  baselineMigrations,
} from './db/migration-baseline.js'
export {
  type ChecksumOrigin,
  MIGRATION_CHECKSUM_TABLE,
  migrationChecksum,
  type MigrationSourceOptions,
  migrationSourcePath,
  readMigrationChecksums,
  type RecordedChecksum,
  type SyncChecksumOptions,
  syncMigrationChecksums,
} from './db/migration-checksums.js'
export { type MigrationFailureContext, MigrationError, TransactionPoolerError } from './db/migration-error.js'
export { historyDisagreements, recordedMigrationNames } from './db/migration-history.js'
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
export { asRequester, asService, asUser, type Requester } from './db/request-context.js'
export {
  diffSchemas,
  type FieldDifference,
  formatSchemaDiff,
  type SchemaDiff,
  type SchemaDiffOptions,
  type SchemaDifference,
  type UnmanagedObject,
} from './db/schema-diff.js'
export { buildSchemaReference, diffWithReference, type SchemaReference } from './db/schema-reference.js'
export {
  SCHEMA_OBJECT_CATEGORIES,
  type SchemaObject,
  type SchemaObjectCategory,
  schemaObjectKey,
  type SchemaSnapshot,
  snapshotPublicSchema,
  snapshotSchema,
} from './db/schema-snapshot.js'
export { ensureSupabaseStandIn, type SupabaseStandInOutcome } from './db/supabase-stand-in.js'
export type * from './db/types.js'
export { API_KEY_CONFIGURATION_ERROR_MESSAGE, ApiKeyConfigurationError } from './integrations/api-key-configuration-error.js'
export {
  DEFAULT_ROTATION_BATCH_SIZE,
  type KeyRotationOptions,
  type KeyRotationReport,
  rotateOpenRouterKeys,
} from './integrations/openrouter-key-rotation.js'
export {
  deleteOpenRouterKey,
  type KeyFailureFields,
  type KeyFailureLog,
  logKeyFailureToConsole,
  markOpenRouterKeyInvalid,
  markOpenRouterKeyVerified,
  type OpenRouterKeyForExecution,
  readOpenRouterKeyForExecution,
  setOpenRouterKeyEnabled,
  storeOpenRouterKey,
} from './integrations/openrouter-keys.js'
export {
  describeStoredKey,
  IntegrationCipher,
  KeyDecryptionError,
  type StoredKeyDescription,
  type StoredKeyFormat,
} from './secrets/integration-cipher.js'
export {
  INTEGRATION_ENCRYPTION_SECRET,
  INTEGRATION_ENCRYPTION_SECRET_PREVIOUS,
  type IntegrationSecrets,
  MIN_SECRET_LENGTH,
  readIntegrationSecrets,
  validateIntegrationSecrets,
} from './secrets/integration-secrets.js'
