/**
 * An environment setting (MIGRATION_*, AUTO_MIGRATE) whose value cannot be right: a usage error
 * (the CLI exits with 2), found before any database is opened.
 */
export class SettingError extends Error {
  override readonly name = 'SettingError'
}
