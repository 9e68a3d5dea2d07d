import type { Kysely } from 'kysely'
import type { MigrationResult } from 'kysely/migration'

import { givenConnectionString } from '../connection/connection-string.js'
import { createDb } from '../connection/create-db.js'
import { booleanSetting, type MigrateOptions, migrationSettings } from './settings.js'
import { migrateToLatest, pendingMigrationNames } from './migrator.js'

/** Options of {@link migrateOnStartup}: those of a migration run, and where to log. */
export interface MigrateOnStartupOptions extends Omit<MigrateOptions, 'log'> {
  /** Receives one line per applied migration, one when auto-migrate is off, one when it waits for another run's lock, and retries. */
  log?: (line: string) => void
}

/**
 * What {@link migrateOnStartup} did: `skipped` when AUTO_MIGRATE=false, otherwise the
 * migrations it applied (none when the database was up to date).
 */
export type StartupMigrationOutcome =
  { skipped: true; applied: [] } | { skipped: false; applied: MigrationResult[] }

/**
 * Brings the database up to date before the app serves. Await it at start-up; if it throws, do
 * not serve: the error ({@link MigrationError}) names the migration and PostgreSQL's reason, and
 * what stayed applied.
 *
 * Every start pays one query, on `db`: it compares the applied names with the known ones, and
 * when nothing is pending it is done. Otherwise it runs the migrations under the migration
 * lock, on MIGRATION_DATABASE_URL when set (a direct connection, where the app's DATABASE_URL
 * goes through a transaction-mode pooler), else on `db`. Of many instances starting at once,
 * one migrates while the others wait for the lock (MIGRATION_LOCK_WAIT_MS) and then find
 * nothing left to do.
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
  const env = options.env ?? process.env
  const autoMigrate = booleanSetting(
    env,
    'AUTO_MIGRATE',
    true,
    'Set AUTO_MIGRATE=false to start without migrating, or unset it to migrate at start-up.',
  )
  if (!autoMigrate) {
    log('[db] AUTO_MIGRATE=false: start-up migration skipped')
    return { skipped: true, applied: [] }
  }
  // Checked at every start, also when nothing is pending: a wrong option must fail the first
  // start, not the deploy that ships the next migration. No statement is sent for it.
  migrationSettings({ ...options, env })
  if ((await pendingMigrationNames(db)).length === 0) return { skipped: false, applied: [] }

  // Checked under its own name: a refusal says which variable to fix.
  const migrationUrl = givenConnectionString(env.MIGRATION_DATABASE_URL, 'MIGRATION_DATABASE_URL')
  const migrationDb = migrationUrl ? createDb({ connectionString: migrationUrl }) : db
  try {
    const applied = await migrateToLatest(migrationDb, { ...options, env, log })
    for (const { migrationName } of applied) log(`[db] applied migration ${migrationName}`)
    return { skipped: false, applied }
  } finally {
    if (migrationDb !== db) await migrationDb.destroy()
  }
}
