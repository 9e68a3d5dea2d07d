import type { Kysely } from 'kysely'
import {
  type MigrationResult,
  type MigrationResultSet,
  Migrator,
  NO_MIGRATIONS,
  type NoMigrations,
} from 'kysely/migration'

import { migrationNames } from '../migrations/index.js'
import { InterruptedRollbackError, MigrationError } from './migration-error.js'
import { migrationProvider } from './provider.js'
import { MIGRATION_TABLE_SCHEMA, readMigrationHistory, revertingSince } from './history.js'
import { interruptedRollback, registeredMigrations, rollbackMarks } from './resumable-down.js'
import { kyselyMigrator, type MigrationTarget, runMigrations } from './runner.js'
import { migrationDatabaseVariable } from '../connection/database-target.js'
import { boundedHistoryRead } from './lock.js'
import { HistoryLockedError } from './locked-history.js'
import { lockTimeoutSetting, type MigrateOptions, migrationSettings } from './settings.js'

/** One migration and when it was applied; `appliedAt` is undefined while it is pending. */
export interface MigrationStatus {
  name: string
  appliedAt: Date | undefined
  /** True for a history row that no migration file of this module has. */
  unknown?: true
  /**
   * True for the applied migration whose rollback began and did not finish (see rollbackMarks),
   * on which nothing may be applied until `migrate:down` completes it.
   */
  reverting?: true
  /** When that rollback began (the history's mark), where the mark stands. */
  revertingSince?: Date
}

/**
 * Kysely's Migrator for this module, for tools that drive a Migrator (kysely-ctl). Its
 * migrate methods go through the module's runner ({@link runMigrations}), with the migration
 * lock, per-migration transactions and lock retries, exactly as the npm scripts and start-up do.
 *
 * @example
 * ```ts
 * const { error, results } = await createMigrator(db).migrateToLatest()
 * ```
 */
export function createMigrator(db: Kysely<any>, options: MigrateOptions = {}): Migrator {
  return new ModuleMigrator(db, options)
}

class ModuleMigrator extends Migrator {
  readonly #db: Kysely<any>
  readonly #options: MigrateOptions

  constructor(db: Kysely<any>, options: MigrateOptions) {
    super({
      db,
      provider: migrationProvider(migrationSettings(options)),
      migrationTableSchema: MIGRATION_TABLE_SCHEMA,
    })
    this.#db = db
    this.#options = options
  }

  override migrateToLatest(): Promise<MigrationResultSet> {
    return this.#run({ kind: 'latest' })
  }

  override migrateUp(): Promise<MigrationResultSet> {
    return this.#run({ kind: 'up' })
  }

  override migrateDown(): Promise<MigrationResultSet> {
    return this.#run({ kind: 'down' })
  }

  override migrateTo(name: string | NoMigrations): Promise<MigrationResultSet> {
    return this.#run({ kind: 'to', name })
  }

  // Kysely's contract: a result set, never a throw.
  async #run(target: MigrationTarget): Promise<MigrationResultSet> {
    try {
      return { results: await runMigrations(this.#db, target, migrationSettings(this.#options)) }
    } catch (error) {
      return { error, results: error instanceof MigrationError ? [...error.results] : undefined }
    }
  }
}

/**
 * Applies every pending migration, each in a transaction of its own, or on a connection of its
 * own where it opts out of transactions. Returns what it
 * applied; throws a {@link MigrationError} if a migration fails, which says what stayed applied.
 *
 * @example
 * ```ts
 * const applied = await migrateToLatest(db)
 * for (const { migrationName } of applied) console.log(`applied ${migrationName}`)
 * ```
 */
export function migrateToLatest(
  db: Kysely<any>,
  options: MigrateOptions = {},
): Promise<MigrationResult[]> {
  return runMigrations(db, { kind: 'latest' }, migrationSettings(options))
}

/**
 * Applies the next pending migration, if there is one.
 *
 * @example
 * ```ts
 * const [applied] = await migrateUp(db) // undefined when nothing is pending
 * ```
 */
export function migrateUp(
  db: Kysely<any>,
  options: MigrateOptions = {},
): Promise<MigrationResult[]> {
  return runMigrations(db, { kind: 'up' }, migrationSettings(options))
}

/**
 * Reverts the most recently applied migration, if there is one. A `down` that would drop data
 * refuses unless `allowDataLoss` (or MIGRATION_ALLOW_DATA_LOSS=true) is given.
 *
 * @example
 * ```ts
 * const [reverted] = await migrateDown(db) // undefined when nothing is applied
 * ```
 */
export function migrateDown(
  db: Kysely<any>,
  options: MigrateOptions = {},
): Promise<MigrationResult[]> {
  return runMigrations(db, { kind: 'down' }, migrationSettings(options))
}

/**
 * Reverts the most recently applied migration and applies it again, in one run under the
 * migration lock (no other run comes in between): two transactions, the down's first. The down
 * goes through the same data-loss guard as {@link migrateDown}: it refuses, before anything
 * changes, where it would drop data, unless `allowDataLoss` (or MIGRATION_ALLOW_DATA_LOSS=true).
 * Returns the down's result and the up's; none when nothing is applied.
 *
 * @example
 * ```ts
 * const [reverted, applied] = await migrateRedo(db)
 * ```
 */
export function migrateRedo(
  db: Kysely<any>,
  options: MigrateOptions = {},
): Promise<MigrationResult[]> {
  return runMigrations(db, { kind: 'redo' }, migrationSettings(options))
}

/**
 * Migrates up or down until `name` is the last applied migration; `null` reverts them all.
 *
 * @example
 * ```ts
 * await migrateTo(db, '002_add_claude_integration') // the schema before 005
 * ```
 */
export function migrateTo(
  db: Kysely<any>,
  name: string | null,
  options: MigrateOptions = {},
): Promise<MigrationResult[]> {
  return runMigrations(db, { kind: 'to', name: name ?? NO_MIGRATIONS }, migrationSettings(options))
}

/**
 * Lists every migration the module knows, in order, with the time it was applied, and marks the
 * one whose rollback was interrupted (`reverting`, by the rule every reader follows:
 * rollbackMarks). With `env`, a server that cannot be reached is worded with the variable that
 * names the migrations' server there (see migrationDatabaseVariable); without it, with
 * DATABASE_URL. It reads in a transaction of its own whose lock_timeout is `lockTimeoutMs`
 * (MIGRATION_LOCK_TIMEOUT_MS): a lock that another session holds on the history ends it with a
 * {@link HistoryLockedError} that names that session (boundedHistoryRead), not after the
 * client's 5-minute bound.
 *
 * @example
 * ```ts
 * const pending = (await migrationStatus(db)).filter((m) => !m.appliedAt)
 * ```
 */
export async function migrationStatus(
  db: Kysely<any>,
  options: Pick<MigrateOptions, 'env' | 'lockTimeoutMs'> = {},
): Promise<MigrationStatus[]> {
  const lockTimeoutMs = lockTimeoutSetting(options)
  try {
    return await boundedHistoryRead(db, lockTimeoutMs, readStatus)
  } catch (error) {
    throw statusError(error, options)
  }
}

/** What {@link migrationStatus} reads, in its bounded transaction. */
async function readStatus(db: Kysely<any>): Promise<MigrationStatus[]> {
  const history = await readMigrationHistory(db)
  const applied = new Map(history.map((entry) => [entry.name, entry.appliedAt]))
  const { interrupted } = await rollbackMarks(db, history, registeredMigrations(history))
  // Where the mark was cleared by hand and the schema shows the rollback, no time is known.
  const since =
    interrupted !== undefined && history.find((entry) => entry.name === interrupted)?.reverting
      ? await revertingSince(db, interrupted)
      : undefined
  const rollback = (name: string) =>
    name === interrupted
      ? { reverting: true as const, ...(since && { revertingSince: since }) }
      : {}
  return [
    ...migrationNames.map((name) => ({ name, appliedAt: applied.get(name), ...rollback(name) })),
    ...history
      .filter((entry) => !migrationNames.includes(entry.name))
      .map((entry) => ({
        name: entry.name,
        appliedAt: entry.appliedAt,
        unknown: true as const,
        ...rollback(entry.name),
      })),
  ]
}

/**
 * The migration whose rollback began and did not finish (see interruptedRollback), as the
 * runner finds it before it refuses to apply anything on top of it; undefined where there is
 * none. For a dry run, which must say what the run would say. Bounded as
 * {@link migrationStatus} is.
 *
 * @example
 * ```ts
 * const interrupted = await unfinishedRollback(db)
 * if (interrupted) throw new InterruptedRollbackError(interrupted)
 * ```
 */
export async function unfinishedRollback(
  db: Kysely<any>,
  options: MigrateOptions = {},
): Promise<string | undefined> {
  const settings = migrationSettings(options)
  try {
    return await boundedHistoryRead(db, settings.lockTimeoutMs, async (trx) => {
      const history = await readMigrationHistory(trx, { times: false })
      const migrations = await kyselyMigrator(trx, settings).getMigrations()
      return await interruptedRollback(trx, history, migrations)
    })
  } catch (error) {
    throw statusError(error, options)
  }
}

/**
 * A failure to read the migration state, named with the variable that chose the database; a
 * lock that another session held on the history says so itself.
 */
function statusError(error: unknown, options: Pick<MigrateOptions, 'env'>): Error {
  if (error instanceof HistoryLockedError) return error
  const variable = options.env && migrationDatabaseVariable(options.env)
  return new MigrationError({ error }, { activity: 'status', variable })
}

/**
 * The names of the known migrations that the database has not applied, found with one query
 * (one round trip) on the history table; every name when there is no history yet. This is the
 * cheap question that start-up asks before it takes any lock. Throws
 * {@link InterruptedRollbackError} when the same query finds a rollback that began and did not
 * finish: nothing may be applied on top of it. A mark of the history is confirmed first, by a
 * second query (see rollbackMarks): a stale one is no rollback under way (the next run clears
 * it).
 *
 * @example
 * ```ts
 * if ((await pendingMigrationNames(db)).length > 0) await migrateToLatest(db)
 * ```
 */
export async function pendingMigrationNames(db: Kysely<any>): Promise<string[]> {
  let history
  try {
    history = await readMigrationHistory(db, { times: false })
  } catch (error) {
    throw new MigrationError({ error }, { activity: 'status' })
  }
  // A mark found is confirmed by the rule every reader follows: a stale one (an attempt stopped
  // before its first step committed) is no rollback under way, and the run clears it.
  if (history.some((entry) => entry.reverting)) {
    let interrupted
    try {
      ;({ interrupted } = await rollbackMarks(db, history, registeredMigrations(history)))
    } catch (error) {
      throw new MigrationError({ error }, { activity: 'status' })
    }
    if (interrupted) throw new InterruptedRollbackError(interrupted)
  }
  const applied = new Set(history.map((entry) => entry.name))
  return migrationNames.filter((name) => !applied.has(name))
}
