import type { Kysely } from 'kysely'
import { type MigrationResult, type MigrationResultSet, Migrator, NO_MIGRATIONS } from 'kysely/migration'

import { MigrationError } from './migration-error.js'
import { migrationProvider } from './migration-provider.js'

/**
 * The schema that holds Kysely's history tables (kysely_migration, kysely_migration_lock). Not
 * `public`: Supabase's default privileges would expose them through the API to anon.
 */
export const MIGRATION_TABLE_SCHEMA = 'x402_migrations'

/** One migration and when it was applied; `appliedAt` is undefined while it is pending. */
export interface MigrationStatus {
  name: string
  appliedAt: Date | undefined
}

/**
 * The Kysely Migrator of this module. Every entry point (the command line, start-up, kysely-ctl
 * and the tests) migrates through it.
 *
 * @example
 * ```ts
 * const { error, results } = await createMigrator(db).migrateToLatest()
 * ```
 */
export function createMigrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: migrationProvider, migrationTableSchema: MIGRATION_TABLE_SCHEMA })
}

/**
 * Applies every pending migration, in one transaction. Returns what it applied; throws a
 * {@link MigrationError} if any migration fails, and then nothing of the run is applied.
 *
 * @example
 * ```ts
 * const applied = await migrateToLatest(db)
 * for (const { migrationName } of applied) console.log(`applied ${migrationName}`)
 * ```
 */
export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResult[]> {
  return successes(await createMigrator(db).migrateToLatest())
}

/**
 * Applies the next pending migration, if there is one.
 *
 * @example
 * ```ts
 * const [applied] = await migrateUp(db) // undefined when nothing is pending
 * ```
 */
export async function migrateUp(db: Kysely<any>): Promise<MigrationResult[]> {
  return successes(await createMigrator(db).migrateUp())
}

/**
 * Reverts the most recently applied migration, if there is one.
 *
 * @example
 * ```ts
 * const [reverted] = await migrateDown(db) // undefined when nothing is applied
 * ```
 */
export async function migrateDown(db: Kysely<any>): Promise<MigrationResult[]> {
  return successes(await createMigrator(db).migrateDown())
}

/**
 * Migrates up or down until `name` is the last applied migration; `null` reverts them all.
 *
 * @example
 * ```ts
 * await migrateTo(db, '002_add_claude_integration') // the schema before 005
 * ```
 */
export async function migrateTo(db: Kysely<any>, name: string | null): Promise<MigrationResult[]> {
  return successes(await createMigrator(db).migrateTo(name ?? NO_MIGRATIONS))
}

/**
 * Lists every migration the module knows, in order, with the time it was applied.
 *
 * @example
 * ```ts
 * const pending = (await migrationStatus(db)).filter((m) => !m.appliedAt)
 * ```
 */
export async function migrationStatus(db: Kysely<any>): Promise<MigrationStatus[]> {
  try {
    const migrations = await createMigrator(db).getMigrations()
    return migrations.map(({ name, executedAt }) => ({ name, appliedAt: executedAt }))
  } catch (error) {
    throw new MigrationError({ error }, 'status')
  }
}

function successes(resultSet: MigrationResultSet): MigrationResult[] {
  if (resultSet.error !== undefined) throw new MigrationError(resultSet)
  return (resultSet.results ?? []).filter((result) => result.status === 'Success')
}
