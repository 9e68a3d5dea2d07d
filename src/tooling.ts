/**
 * The tooling entry point, for scripts and tools that manage the schema: the migrate functions
 * and status, adoption of a hand-built database, the drift check, the SQL export, and key
 * rotation. It includes everything the app's entry point (`./index.js`) exports.
 */
export * from './index.js'
export { ACCEPTED_DIFFERENCE_TABLE, readAcceptedDifferences } from './adoption/accepted-differences.js'
export { type BaselineSqlOptions, exportBaselineSql } from './adoption/baseline-sql.js'
export { type BaselineOptions, BaselineRefusedError, type BaselineResult, baselineMigrations } from './adoption/baseline.js'
export { checkDrift, type DriftCheckOptions, type DriftReport, driftSummary, formatDriftReport } from './adoption/drift-check.js'
export { planRepair, type RepairPlan, type UnresolvedConflict } from './adoption/repair-plan.js'
export { exportMigrationSql, type MigrationDirection } from './export/migration-sql.js'
export {
  migrationChecksum,
  migrationSourcePath,
  readMigrationChecksums,
  type RecordedChecksum,
  syncMigrationChecksums,
} from './migrator/checksums.js'
export { MIGRATION_TABLE_SCHEMA, recordedMigrationNames } from './migrator/history.js'
export { MIGRATION_LOCK_KEY, withMigrationLock } from './migrator/lock.js'
export { resolveMigrationName } from './migrator/migration-names.js'
export {
  createMigrator,
  migrateDown,
  migrateTo,
  migrateToLatest,
  migrateUp,
  type MigrationStatus,
  migrationStatus,
  pendingMigrationNames,
} from './migrator/migrator.js'
export type { MigrateOptions } from './migrator/settings.js'
export { formatSchemaDiff, type SchemaDiff, type SchemaDifference } from './schema/diff.js'
export { CLASS_HEADINGS, DIFFERENCE_CLASSES, type DifferenceClass } from './schema/rules.js'
export { type SchemaSnapshot, snapshotSchema } from './schema/snapshot.js'
export { ensureSupabaseStandIn } from './supabase/stand-in.js'
export { DEFAULT_ROTATION_BATCH_SIZE, type KeyRotationReport, rotateOpenRouterKeys } from './integrations/openrouter-key-rotation.js'
