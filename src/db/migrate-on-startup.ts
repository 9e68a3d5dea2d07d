import type { Kysely } from 'kysely'
import type { MigrationResult } from 'kysely/migration'

import { migrateToLatest } from './migrator.js'

/** Options of {@link migrateOnStartup}. */
export interface MigrateOnStartupOptions {
  /** Where AUTO_MIGRATE is read from; `process.env` by default. */
  env?: NodeJS.ProcessEnv
  /** Receives one line per applied migration, and one when auto-migrate is off. */
  log?: (line: string) => void
}

/**
 * What {@link migrateOnStartup} did: `skipped` when AUTO_MIGRATE=false, otherwise the
 * migrations it applied (none when the database was up to date).
 */
export type StartupMigrationOutcome =
  | { skipped: true; applied: [] }
  | { skipped: false; applied: MigrationResult[] }

/**
 * Brings the database up to date before the app serves. Await it at start-up; if it throws, do
 * not serve: the error ({@link MigrationError}) names the migration and PostgreSQL's reason, and
 * the failed run left the database as it was.
 *
 * AUTO_MIGRATE=false turns it off (for deploys that migrate in a separate step); any value
 * other than true or false is rejected.
 *
 * @example
 * ```ts
 * const db = createDb()
 * await migrateOnStartup(db)
 * app.listen(3000)
 * ```
 */
export async function migrateOnStartup(
  db: Kysely<any>,
  options: MigrateOnStartupOptions = {},
): Promise<StartupMigrationOutcome> {
  const log = options.log ?? ((line: string) => console.info(line))
  if (!isAutoMigrateOn(options.env ?? process.env)) {
    log('[db] AUTO_MIGRATE=false: start-up migration skipped')
    return { skipped: true, applied: [] }
  }
  const applied = await migrateToLatest(db)
  for (const { migrationName } of applied) log(`[db] applied migration ${migrationName}`)
  return { skipped: false, applied }
}

function isAutoMigrateOn(env: NodeJS.ProcessEnv): boolean {
  const value = env.AUTO_MIGRATE?.trim().toLowerCase()
  if (value === undefined || value === '' || value === 'true') return true
  if (value === 'false') return false
  throw new Error(
    `AUTO_MIGRATE is "${env.AUTO_MIGRATE}", expected "true" or "false". ` +
      'Set AUTO_MIGRATE=false to start without migrating, or unset it to migrate at start-up.',
  )
}
