/**
 * The app's entry point: the database connection, start-up migration, the request helpers that
 * act as PostgREST does, access to the stored OpenRouter keys, the errors they throw, and the
 * generated table types. Tooling (the migrate functions, adoption, drift, SQL export) is in
 * `./tooling.js`.
 */
export {
  createDb,
  type CreateDbOptions,
  type DatabaseTarget,
  DEFAULT_PGLITE_DATA_DIR,
  describeDatabaseTarget,
  IN_MEMORY,
  resolveDatabaseTarget,
} from './connection/create-db.js'
export { QueryError } from './connection/query-error.js'
export {
  migrateOnStartup,
  type MigrateOnStartupOptions,
  type StartupMigrationOutcome,
} from './migrator/migrate-on-startup.js'
export {
  HistoryMovedError,
  InterruptedRollbackError,
  MigrationError,
  TransactionPoolerError,
  UnknownMigrationsError,
  UnverifiedDownError,
} from './migrator/migration-error.js'
export { DataLossRefusal } from './migrator/down-guard.js'
export { MigrationLockTimeoutError } from './migrator/lock.js'
export { HistoryLockedError } from './migrator/locked-history.js'
export { asRequester, asService, asUser, type Requester } from './supabase/request-context.js'
export { assertUserId, InvalidUserIdError } from './supabase/user-id.js'
export {
  API_KEY_CONFIGURATION_ERROR_MESSAGE,
  ApiKeyConfigurationError,
} from './integrations/api-key-configuration-error.js'
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
} from './secrets/integration-cipher.js'
export { type IntegrationSecrets, readIntegrationSecrets } from './secrets/integration-secrets.js'
export type * from './types/database.js'
export {
  type Network,
  NETWORKS,
  RESOURCE_TYPES,
  type ResourceType,
} from './types/allowed-values.js'
export type { OpenRouterConfig, OpenRouterParams } from './types/openrouter-config.js'
