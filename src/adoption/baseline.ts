import type { Kysely } from 'kysely'
import { type Migration, Migrator } from 'kysely/migration'

import { migrationNames } from '../migrations/index.js'
import {
  ensureChecksumTable,
  insertChecksums,
  type MigrationSourceOptions,
  migrationChecksum,
  type NewChecksum,
  recordMissingChecksums,
} from '../migrator/checksums.js'
import {
  historyDisagreements,
  readMigrationHistory,
  recordedMigrationNames,
} from '../migrator/history.js'
import { clearStaleMarks } from '../migrator/resumable-down.js'
import { checkBookkeepingWrites } from '../migrator/write-checks.js'
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  inWriterTransaction,
  type MigrationSession,
  withMigrationLock,
} from '../migrator/lock.js'
import { MigrationLockLostError } from '../migrator/migration-error.js'
import { MIGRATION_TABLE_SCHEMA } from '../migrator/history.js'
import { migrationNamesUpTo } from '../migrator/migration-names.js'
import type { SchemaDiff } from '../schema/diff.js'
import { buildSchemaReference, diffWithReference } from '../schema/reference.js'
import { recordAcceptedDifferences } from './accepted-differences.js'
import { type AdoptionDecision, readAdoptionDecisions } from './adoption-decisions.js'
import { recordProductionObjects } from './production-objects.js'
import { interruptedRollback } from './interrupted-rollback.js'

/** Options of {@link baselineMigrations}. */
export interface BaselineOptions extends MigrationSourceOptions {
  /** The exact comparison: every difference refuses, equivalent and accepted ones too. */
  strict?: boolean
  /**
   * The conflicts accepted by decision (by default those of the repository's
   * adoption-decisions.json); they are recorded with their reason.
   */
  decisions?: readonly AdoptionDecision[]
  /** How long to wait for a migration run in progress, in ms (the migration lock). */
  lockWaitMs?: number
  /** Gets the line that says the baseline waits for another run's migration lock, and for whom. */
  log?: (line: string) => void
}

/** What {@link baselineMigrations} did. */
export interface BaselineResult {
  /** The migration the database was adopted at. */
  migrationName: string
  /** The migrations it recorded as applied, in order. */
  recorded: string[]
  /** The migrations up to `migrationName` that were recorded already. */
  alreadyRecorded: string[]
  /** The comparison that allowed it: no conflict; its accepted differences were recorded. */
  diff: SchemaDiff
}

/**
 * `migrate:baseline` refused, and recorded nothing: the live schema differs from the reference
 * (`diff` lists how), or the recorded history contradicts the adoption (`disagreements`).
 */
export class BaselineRefusedError extends Error {
  override readonly name = 'BaselineRefusedError'

  constructor(
    readonly migrationName: string,
    readonly disagreements: string[],
    readonly diff: SchemaDiff | undefined,
  ) {
    super(
      disagreements.length > 0
        ? `Cannot adopt the database at ${migrationName}: ${disagreements.join('; ')}. Nothing was recorded.`
        : `The live schema conflicts with what the migrations up to ${migrationName} produce, in ` +
            `${diff!.conflict.length} place(s) (listed in the diff); nothing was recorded. ` +
            `See what to change with npm run migrate:baseline -- ${migrationName} --plan, keep what production ` +
            'has by a decision in adoption-decisions.json (the entries are printed with the diff, where a decision may accept ' +
            'a conflict), or adopt the database at the migration whose schema it has.',
    )
  }
}

/**
 * Adopts a database whose schema was built by hand (the SQL Editor): records the migrations up
 * to `name` (a full name or a unique prefix) as applied, without running them, so that the
 * migrator then runs only what follows. Only after it found no conflict between the live schema
 * and the reference at `name` (built on a scratch database, never on `db`; see
 * buildSchemaReference and rules.ts for the classes); otherwise it throws
 * {@link BaselineRefusedError} with the diff. Equivalent differences are listed; accepted
 * ones (production has more or is stricter) are recorded, replacing any recorded before, and
 * `migrate:check` holds the database to them; so are production's own objects, every object of
 * the app's schemas that no migration creates (see productionObjectsQuery), with their snapshot. It refuses as well
 * when the history already records migrations that disagree (after `name`, unknown, or with a
 * gap). The rows are written by Kysely's own Migrator, exactly as a run writes them, with each
 * migration's checksum, in one transaction, under the migration lock. Migrations recorded
 * before, without a checksum, get one (`backfill`): adopting a database at its newest applied
 * migration records nothing else.
 *
 * @example
 * ```ts
 * const { recorded } = await baselineMigrations(db, '005')
 * await migrateToLatest(db) // runs only what follows 005
 * ```
 */
export async function baselineMigrations(
  db: Kysely<any>,
  name: string,
  options: BaselineOptions = {},
): Promise<BaselineResult> {
  const reference = await buildSchemaReference(name)
  const { migrationName } = reference
  const upTo = migrationNamesUpTo(migrationName)
  const checksums = await Promise.all(
    upTo.map(async (known): Promise<NewChecksum> => ({
      name: known,
      sha256: await migrationChecksum(known, options),
      origin: 'baseline',
    })),
  )
  const decisions = options.decisions ?? readAdoptionDecisions()

  const adopt = async (session: MigrationSession): Promise<BaselineResult> => {
    const alreadyRecorded = await recordedMigrationNames(db)
    const rollback = await interruptedRollback(db)
    const disagreements = rollback
      ? [rollback]
      : historyDisagreements(alreadyRecorded, migrationName)
    if (disagreements.length > 0)
      throw new BaselineRefusedError(migrationName, disagreements, undefined)
    const diff = await diffWithReference(db, reference, { strict: options.strict, decisions })
    if (diff.conflict.length > 0) throw new BaselineRefusedError(migrationName, [], diff)

    const recorded = upTo.filter((known) => !alreadyRecorded.includes(known))
    await inWriterTransaction(db, { idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS }, async (trx) => {
      // What a run asks before it writes, fenced as in its transactions: this one writes the
      // history and the rest of the bookkeeping in x402_migrations, also where all is recorded.
      await checkBookkeepingWrites(trx, { lock: true })
      // A mark left by a rollback stopped before its first step committed (no rollback under
      // way, see interruptedRollback) goes before anything is recorded on top of it.
      if (alreadyRecorded.length > 0)
        await clearStaleMarks(trx, await readMigrationHistory(trx, { times: false }))
      if (recorded.length > 0) {
        const { error } = await recordingMigrator(trx).migrateTo(migrationName)
        if (error !== undefined) throw error
      }
      await ensureChecksumTable(trx, { sourceDir: options.sourceDir, recordedNow: recorded })
      await insertChecksums(
        trx,
        checksums.filter((entry) => recorded.includes(entry.name)),
      )
      // Those recorded before (by a module without checksums) get theirs now.
      await recordMissingChecksums(trx, () => 'backfill', options)
      await recordAcceptedDifferences(trx, diff.accepted, migrationName)
      // Last: it pins the search_path for its snapshot.
      await recordProductionObjects(trx, reference.createdBy, migrationName)
      // The history commits only while this run holds the migration lock.
      await session.assertLockHeld().catch((error: unknown) => {
        throw error instanceof MigrationLockLostError
          ? new Error(
              `${error.reason} Nothing was recorded. Run migrate:baseline -- ${migrationName} again.`,
              { cause: error },
            )
          : error
      })
    })
    return { migrationName, recorded, alreadyRecorded, diff }
  }
  return withMigrationLock(db, adopt, {
    lockWaitMs: options.lockWaitMs,
    log: options.log,
    idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  })
}

/**
 * Kysely's Migrator over the module's migrations with every `up` a no-op: it creates the
 * history tables and writes the rows exactly as a real run does, and runs nothing.
 */
function recordingMigrator(db: Kysely<any>): Migrator {
  const recordOnly: Migration = { up: async () => {} }
  return new Migrator({
    db,
    provider: {
      getMigrations: async () =>
        Object.fromEntries(migrationNames.map((name) => [name, recordOnly])),
    },
    migrationTableSchema: MIGRATION_TABLE_SCHEMA,
  })
}
