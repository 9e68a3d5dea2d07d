/**
 * The tooling entry point, for scripts and tools that manage the schema: the migrate functions
 * and status, adoption of a hand-built database, the drift check, the SQL export, and key
 * rotation, the access matrix, and Supabase's advisor lints. It includes everything the app's entry point (`./index.js`) exports.
 */
export * from './index.js'
export { ACCESS_USERS, seedAccessFixtures } from './access/access-fixtures.js'
export {
  ACCESS_MATRIX_FILE,
  accessMatrixOf,
  buildAccessMatrix,
  compareAccessMatrix,
  formatAccessMatrix,
} from './access/access-matrix.js'
export {
  ACCESS_SCHEMAS,
  type AccessEntry,
  type AccessOperation,
  measureAccess,
} from './access/measure-access.js'
export {
  ACCEPTED_DIFFERENCE_TABLE,
  readAcceptedDifferences,
} from './adoption/accepted-differences.js'
export { PRODUCTION_OBJECT_TABLE, readProductionObjects } from './adoption/production-objects.js'
export {
  ADOPTION_DECISIONS_FILE,
  type AdoptionDecision,
  formatDecisionEntries,
  parseAdoptionDecisions,
  readAdoptionDecisions,
} from './adoption/adoption-decisions.js'
export { type BaselineSqlOptions, exportBaselineSql } from './adoption/baseline-sql.js'
export {
  type BaselineOptions,
  BaselineRefusedError,
  type BaselineResult,
  baselineMigrations,
} from './adoption/baseline.js'
export {
  AcceptedFindingsError,
  ADVISOR_ACCEPTED_FILE,
  type AcceptedFinding,
  parseAcceptedFindings,
  readAcceptedFindings,
} from './advisor/accepted-findings.js'
export {
  ADVISOR_LINTS,
  type AdvisorCategory,
  type AdvisorLevel,
  type AdvisorLint,
} from './advisor/advisor-lints.js'
export {
  type AdvisorFinding,
  type AdvisorOptions,
  type AdvisorReport,
  DEFAULT_EXPOSED_SCHEMAS,
  failingFindings,
  formatAdvisorReport,
  runAdvisor,
} from './advisor/run-advisor.js'
export {
  checkDrift,
  type DriftCheckOptions,
  type DriftReport,
  driftSummary,
  formatDriftReport,
} from './adoption/drift-check.js'
export {
  planRepair,
  type RepairPlan,
  type RepairPlanOptions,
  type UnresolvedConflict,
} from './adoption/repair-plan.js'
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
  migrateRedo,
  migrateTo,
  migrateToLatest,
  migrateUp,
  type MigrationStatus,
  migrationStatus,
  pendingMigrationNames,
} from './migrator/migrator.js'
export type { MigrateOptions, MigrationEvent } from './migrator/settings.js'
export { describeStatement, formatRehearsal } from './rehearsal/format-rehearsal.js'
export { type LockLint, lintMigrationLocks } from './rehearsal/lint-locks.js'
export {
  checkLockPolicy,
  type LockPolicy,
  type LockViolation,
  readLockExceptions,
  readLockPolicy,
} from './rehearsal/lock-policy.js'
export type { LockMode } from './rehearsal/lock-modes.js'
export type {
  MeasuredStatement,
  MigrationRehearsal,
  TableLock,
} from './rehearsal/measured-statement.js'
export { planPendingMigrations, type RowBounds } from './rehearsal/plan-pending.js'
export {
  type Rehearsal,
  type RehearsalOptions,
  type RehearsalStep,
  rehearse,
} from './rehearsal/rehearse.js'
export { formatSchemaDiff, type SchemaDiff, type SchemaDifference } from './schema/diff.js'
export { CLASS_HEADINGS, DIFFERENCE_CLASSES, type DifferenceClass } from './schema/rules.js'
export { type SchemaSnapshot, snapshotSchema } from './schema/snapshot.js'
export { ensureSupabaseStandIn } from './supabase/stand-in.js'
export {
  DEFAULT_ROTATION_BATCH_SIZE,
  type KeyRotationReport,
  rotateOpenRouterKeys,
} from './integrations/openrouter-key-rotation.js'
