import { setTimeout as sleep } from 'node:timers/promises'

import { type Kysely, type KyselyPlugin, PGliteAdapter, sql } from 'kysely'
import {
  type Migration,
  type MigrationInfo,
  type MigrationProvider,
  type MigrationResult,
  type MigrationResultSet,
  Migrator,
  NO_MIGRATIONS,
  type NoMigrations,
} from 'kysely/migration'

import { errorCode, isSqlState, SQLSTATE } from '../connection/sql-state.js'
import {
  checksumTableExists,
  checksumVerdict,
  migrationChecksum,
  readMigrationChecksums,
  syncMigrationChecksums,
  UNVERIFIED_CHECKSUMS,
} from './checksums.js'
import { lesserTriggersSql } from '../connection/lesser-triggers.js'
import { SHADOWED_CATALOG_SQL } from '../connection/shadowed-catalog.js'
import { shownStatement } from '../connection/shown-argument.js'
import {
  clearRevertingMarks,
  hasMigrationHistory,
  MIGRATION_TABLE_SCHEMA,
  readMigrationHistory,
  recordedMigrationNames,
} from './history.js'
import { withFencedTransactions } from './fenced-transactions.js'
import { checkBookkeepingWrites } from './write-checks.js'
import {
  backupsMade,
  HistoryMovedError,
  InterruptedRollbackError,
  UnknownMigrationsError,
  MigrationError,
  TransactionPoolerError,
  UnverifiedDownError,
} from './migration-error.js'
import { rollbackBackups, rollbackMarked, rollbackStart } from './rollback-backups.js'
import { rollbackMarks, withResumableDowns } from './resumable-down.js'
import { readMigrationManifest } from './up-to-date-at-once.js'
import { checkDown, DOWN_WATCH_SQL, guardDown } from './down-guard.js'
import {
  assertRunnerDialect,
  DEFAULT_IDLE_TIMEOUT_MS,
  holdWriterLock,
  inWriterTransaction,
  type MigrationSession,
  releaseWriterLock,
  setSessionBounds,
  withMigrationLock,
} from './lock.js'
import { migrationProvider, runsInTransaction } from './provider.js'
import { retryDelayMs } from './retry-delay.js'
import type { MigrationSettings } from './settings.js'
import { API_ROLE_ADMINS_SQL } from '../supabase/api-role-admins.js'
import { ensureSupabaseStandIn } from '../supabase/stand-in.js'

/** Where a run goes: every pending migration, one step up or down, or to a named migration. */
export type MigrationTarget =
  | { kind: 'latest' }
  | { kind: 'up' }
  | { kind: 'down' }
  | { kind: 'redo' }
  | { kind: 'to'; name: string | NoMigrations }

interface Step {
  name: string
  direction: 'Up' | 'Down'
  transactional: boolean
}

/**
 * Runs the migrations that take the database to `target`. Under the migration lock, held for
 * the whole run, it reads the history, plans the steps, and runs each transactional `up` in a
 * transaction of its own (so that a lock it takes on a busy table is held for that migration
 * alone), each contiguous run of transactional downs in one transaction (a rollback that refuses
 * part-way leaves every migration applied), and each migration that opts out
 * (`config = { transaction: false }`) on a connection of its own, each through Kysely's Migrator.
 * A migration that hits lock_timeout, or that PostgreSQL cancels to break a deadlock, is tried
 * again, with a doubling wait, up to `settings.lockAttempts` times. Returns the results of the
 * migrations it ran; throws {@link MigrationError} when one fails, after those before it
 * committed.
 *
 * No write without the lock: the run confirms on the lock session that it still holds the lock
 * before each transaction and each retry, before each migration, after each statement that commits by itself (a
 * migration outside a transaction; so before the next), before a migration is written into the
 * history, and before each of its transactions commits. A run whose lock was lost stops there.
 *
 * @example
 * ```ts
 * const applied = await runMigrations(db, { kind: 'latest' }, migrationSettings())
 * ```
 */
export async function runMigrations(
  db: Kysely<any>,
  target: MigrationTarget,
  settings: MigrationSettings,
): Promise<MigrationResult[]> {
  assertRunnerDialect(db)
  const results: MigrationResult[] = []
  try {
    // Before anything else, the lock's own reads included: they, the migrations and the
    // bookkeeping name PostgreSQL's relations, operators and functions unqualified.
    await sql.raw(SHADOWED_CATALOG_SQL).execute(db)
    // Refused before the lock is awaited; each transaction that writes checks again, fenced.
    // With it, the whole check of the bookkeeping, which start-up's one statement keeps brief: a
    // run writes there, and finding out after a migration ran would leave it done and unrecorded.
    await checkBookkeepingWrites(db, { lock: false })
    // A command of one step moves from where the history stood when it was asked: one that waited
    // for another run's lock must not revert, or apply, the next migration too (review revg F5).
    // Bounded as the run's other reads are: a session holding the history must not hold it long.
    const asked = oneStep(target)
      ? await db.transaction().execute(async (trx) => {
          await setSessionBounds(
            trx,
            {
              idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
              lockTimeoutMs: settings.lockTimeoutMs,
              statementTimeoutMs: settings.statementTimeoutMs,
            },
            'transaction',
          )
          return (await recordedMigrationNames(trx)).at(-1)
        })
      : undefined
    return await withMigrationLock(
      db,
      async (session) => {
        const { migrations, history, interrupted, stale } = await bookkeeping(
          db,
          settings,
          session,
          async (trx) => {
            const migrations = await kyselyMigrator(trx, settings).getMigrations()
            // Asked first: a query of a missing table would abort the transaction.
            const history = (await hasMigrationHistory(trx))
              ? await readMigrationHistory(trx, { times: false })
              : []
            return { migrations, history, ...(await rollbackMarks(trx, history, migrations)) }
          },
        )
        const unknown = history.filter((entry) => !migrations.some((m) => m.name === entry.name))
        if (unknown.length > 0) throw new UnknownMigrationsError(unknown.map((entry) => entry.name))
        const newest = history.at(-1)?.name
        if (oneStep(target) && newest !== asked)
          throw new HistoryMovedError(target.kind, asked, newest)
        const steps = planSteps(migrations, target)
        // A rollback that began and did not finish: only the rollback itself may go on.
        if (
          interrupted &&
          (steps.some((step) => step.direction === 'Up') ||
            (steps.length > 0 && steps[0]!.name !== interrupted))
        ) {
          throw new InterruptedRollbackError(interrupted)
        }
        // A down runs its file as it is now: refused, before anything changes (the stale marks
        // below included), where that may not be the text that was applied (review revt F4).
        await refuseUnverifiedDowns(db, settings, session, steps, newest)
        // A mark left by an attempt stopped before its first step committed shows no rollback
        // under way: under the lock, it goes, and start-up's one statement answers at once again.
        if (stale.length > 0) {
          await bookkeeping(db, settings, session, async (trx) => {
            // It writes x402_migrations: checked and fenced as a migration's transaction is.
            await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
            await clearRevertingMarks(trx, stale)
          })
        }
        const outside = steps.filter((step) => !step.transactional).map((step) => step.name)
        if (session.transactionPooler && outside.length > 0)
          throw new TransactionPoolerError(outside)
        // The Supabase platform pieces the schema depends on; a no-op where they exist.
        if (steps.some((step) => step.direction === 'Up'))
          await bookkeeping(db, settings, session, ensureSupabaseStandIn)
        // The migrations grant to the API roles: refused where a lesser login may take them.
        // After the stand-in, so that the roles exist: one made before it, by someone else, is seen.
        if (steps.length > 0) await sql.raw(API_ROLE_ADMINS_SQL).execute(db)
        // Each migration's checksum commits with its history row (runBlock). Before the first:
        // where the history predates checksums, the table is made, and backfilled (checksums.ts).
        if (steps.length > 0) {
          await bookkeeping(db, settings, session, async (trx) => {
            // It writes x402_migrations: checked and fenced as a migration's transaction is.
            await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
            await syncMigrationChecksums(trx)
          })
        }
        for (const block of contiguousBlocks(steps)) {
          results.push(
            ...(await runBlockWithRetries(
              db,
              block,
              migrations,
              settings,
              results,
              session,
              interrupted,
            )),
          )
        }
        return results
      },
      settings,
    )
  } catch (error) {
    if (
      error instanceof MigrationError ||
      error instanceof TransactionPoolerError ||
      error instanceof InterruptedRollbackError ||
      error instanceof HistoryMovedError ||
      error instanceof UnknownMigrationsError ||
      error instanceof UnverifiedDownError
    )
      throw error
    // A failure outside any migration (the lock, the checksums, a commit): say what was done.
    throw new MigrationError(
      { error },
      {
        activity: 'run',
        appliedBefore: results.map((result) => result.migrationName),
        variable: settings.databaseVariable,
      },
    )
  }
}

/**
 * Kysely's Migrator over the module's migrations and history tables, prepared with `settings`.
 * The runner's lock replaces Kysely's own (see withoutKyselyMigrationLock); with `session`, each
 * migration confirms that lock as it runs (see confirmingLock).
 */
export function kyselyMigrator(
  db: Kysely<any>,
  settings: MigrationSettings,
  session?: MigrationSession,
  disableTransactions = false,
  backendPid?: number,
): Migrator {
  const prepared = migrationProvider(settings)
  // Outside a transaction a down can be interrupted between its steps: it must be resumable.
  const provider = disableTransactions ? withResumableDowns(prepared, settings) : prepared
  return new Migrator({
    db,
    provider: session
      ? confirmingLock(provider, session, settings, backendPid, disableTransactions)
      : provider,
    migrationTableSchema: MIGRATION_TABLE_SCHEMA,
    disableTransactions,
  })
}

/**
 * Runs `work`, the run's own reads and writes around the migrations (the history, the Supabase
 * stand-in, the checksums), in a transaction bounded as the migrations' are, which commits only
 * once the run has confirmed that it still holds the migration lock.
 */
function bookkeeping<T>(
  db: Kysely<any>,
  settings: MigrationSettings,
  session: MigrationSession,
  work: (trx: Kysely<any>) => Promise<T>,
): Promise<T> {
  return inWriterTransaction(db, settings, async (trx) => {
    const result = await work(trx)
    await session.assertLockHeld()
    return result
  })
}

/**
 * Each migration of `provider`, confirming the migration lock before it starts and once it is
 * done: before Kysely's Migrator writes it into the history. Outside a transaction
 * (`outsideTransaction`) each statement commits as it runs, so the lock is confirmed after each
 * one too, before the next can be sent; and the lock session may die between the last answer
 * and the history's write, so the write goes into a transaction that commits only once the lock
 * is confirmed again (runBlock). In a transaction nothing shows before COMMIT, which runBlock
 * confirms: a round trip per statement there would only hold the transaction's locks, on the
 * busiest table among them, for longer. Outside a transaction, each transaction the migration
 * opens itself (`db.transaction()`) runs the lesser-trigger check with its lock first, as the
 * runner's own do (see withFencedTransactions).
 * `settings.onMigration` hears it start (with the server process `backendPid` that runs it)
 * and end.
 */
function confirmingLock(
  provider: MigrationProvider,
  session: MigrationSession,
  settings: MigrationSettings,
  backendPid: number | undefined,
  outsideTransaction: boolean,
): MigrationProvider {
  const confirming = new LockConfirmation(session, outsideTransaction)
  const confirmed =
    (name: string, direction: 'up' | 'down', step: Migration['up']): Migration['up'] =>
    async (db) => {
      await session.assertLockHeld()
      settings.onMigration({ phase: 'start', name, direction, backendPid })
      const started = performance.now()
      let failed = true
      try {
        const confirmed = db.withPlugin(confirming)
        // Outside the runner's transaction, each transaction the migration opens is fenced as the
        // runner's are: the check with its lock first, then the migration's writes.
        await step(
          outsideTransaction ? withFencedTransactions(confirmed, lesserTriggersFence) : confirmed,
        )
        failed = false
      } finally {
        settings.onMigration({
          phase: 'end',
          name,
          direction,
          ms: performance.now() - started,
          failed,
        })
      }
      await session.assertLockHeld()
      if (outsideTransaction) {
        await sql`BEGIN ISOLATION LEVEL READ COMMITTED`.execute(db)
        // A down's record is deleted in this transaction: what a trigger on the history does
        // with it is checked before COMMIT (runBlock), as in a transactional down.
        if (direction === 'down') {
          await sql`SET LOCAL x402.down_covered = '[]'`.execute(db)
          await sql.raw(DOWN_WATCH_SQL).execute(db)
        }
      }
    }
  return {
    async getMigrations() {
      const migrations = await provider.getMigrations()
      return Object.fromEntries(
        Object.entries(migrations).map(([name, migration]) => [
          name,
          {
            ...migration,
            up: confirmed(name, 'up', migration.up),
            down: migration.down && confirmed(name, 'down', migration.down),
          },
        ]),
      )
    },
  }
}

/** The lesser-trigger check with its lock (see lesserTriggersSql), first in a transaction. */
async function lesserTriggersFence(trx: Kysely<any>): Promise<void> {
  await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
}

/**
 * Refuses a migration's statement once the migration lock is known lost and, where `eachStatement`
 * (statements that commit as they run), confirms the lock after every statement.
 */
class LockConfirmation implements KyselyPlugin {
  constructor(
    private readonly session: MigrationSession,
    private readonly eachStatement: boolean,
  ) {}

  transformQuery(
    args: Parameters<KyselyPlugin['transformQuery']>[0],
  ): ReturnType<KyselyPlugin['transformQuery']> {
    const lost = this.session.lockLost()
    if (lost) throw lost
    return args.node
  }

  async transformResult(
    args: Parameters<KyselyPlugin['transformResult']>[0],
  ): ReturnType<KyselyPlugin['transformResult']> {
    if (this.eachStatement) await this.session.assertLockHeld()
    return args.result
  }
}

/**
 * Refuses, with {@link UnverifiedDownError}, where a migration that `steps` revert is not verified
 * against the text that was applied: the one rule of `migrate:check` (checksums.ts,
 * `checksumVerdict`), whose `edited`, `missing` and `unreadable` leave it unverified. Its down,
 * from the file as it is now, may not undo what ran, and the down would delete the record of the
 * difference with its history row. An earlier text of a corrected migration (`corrected`) and a
 * database that predates checksums (`unrecorded`) go ahead.
 */
async function refuseUnverifiedDowns(
  db: Kysely<any>,
  settings: MigrationSettings,
  session: MigrationSession,
  steps: readonly Step[],
  newest: string | undefined,
): Promise<void> {
  const reverted = steps.filter((step) => step.direction === 'Down').map((step) => step.name)
  if (reverted.length === 0) return
  const { recorded, kept } = await bookkeeping(db, settings, session, async (trx) => ({
    recorded: await readMigrationChecksums(trx),
    kept: await checksumTableExists(trx),
  }))
  const verdicts = await Promise.all(
    reverted.map((name) => checksumVerdict(name, recorded.get(name), kept)),
  )
  const unverified = verdicts.filter(({ status }) => UNVERIFIED_CHECKSUMS.includes(status))
  if (unverified.length > 0) throw new UnverifiedDownError(unverified, newest!)
}

function oneStep(target: MigrationTarget): target is { kind: 'up' | 'down' | 'redo' } {
  return target.kind === 'up' || target.kind === 'down' || target.kind === 'redo'
}

function planSteps(migrations: readonly MigrationInfo[], target: MigrationTarget): Step[] {
  const applied = migrations.filter((m) => m.executedAt !== undefined)
  const pending = migrations.filter((m) => m.executedAt === undefined)
  const up = (list: readonly MigrationInfo[]) => list.map((m) => step(m, 'Up'))
  const down = (list: readonly MigrationInfo[]) => list.toReversed().map((m) => step(m, 'Down'))
  switch (target.kind) {
    case 'latest':
      return up(pending)
    case 'up':
      return up(pending.slice(0, 1))
    case 'down':
      return down(applied.slice(-1))
    // Two blocks (see contiguousBlocks), under the one lock: no other run comes in between.
    case 'redo':
      return [...down(applied.slice(-1)), ...up(applied.slice(-1))]
    case 'to': {
      if (target.name === NO_MIGRATIONS) return down(applied)
      const index = migrations.findIndex((m) => m.name === target.name)
      if (index === -1) throw new Error(`No migration is named "${target.name}".`)
      return migrations[index]!.executedAt === undefined
        ? up(pending.filter((m) => m.name <= migrations[index]!.name))
        : down(applied.filter((m) => m.name > migrations[index]!.name))
    }
  }
}

function step(migration: MigrationInfo, direction: Step['direction']): Step {
  return { name: migration.name, direction, transactional: runsInTransaction(migration.migration) }
}

function contiguousBlocks(steps: Step[]): Step[][] {
  const blocks: Step[][] = []
  for (const next of steps) {
    const block = blocks.at(-1)
    // Only downs share a transaction; the down of a redo commits before its up starts.
    if (
      block &&
      block[0]!.transactional &&
      next.transactional &&
      block[0]!.direction === 'Down' &&
      next.direction === 'Down'
    )
      block.push(next)
    else blocks.push([next])
  }
  return blocks
}

async function runBlockWithRetries(
  db: Kysely<any>,
  block: Step[],
  migrations: readonly MigrationInfo[],
  settings: MigrationSettings,
  earlier: MigrationResult[],
  session: MigrationSession,
  interrupted: string | undefined,
): Promise<MigrationResult[]> {
  // Kysely's result for every migration the run considered: those committed before too.
  const blockFailure = (
    {
      resultSet,
      blockers,
      uncommitted,
      backups,
      rollbackBegun,
    }: Awaited<ReturnType<typeof runBlock>>,
    attempt: number,
    lockTimedOut: boolean,
  ) =>
    new MigrationError(
      { ...resultSet, results: [...earlier, ...(resultSet.results ?? [])] },
      {
        activity: 'run',
        appliedBefore: earlier.map((result) => result.migrationName),
        transactional: block[0]!.transactional,
        // Kysely reports them as done, but their transaction was rolled back with the failure.
        rolledBackWith: block[0]!.transactional
          ? successes(resultSet).map((result) => result.migrationName)
          : [],
        attempts: lockTimedOut ? attempt : undefined,
        blockers,
        uncommitted,
        backups,
        rollbackBegun,
        variable: settings.databaseVariable,
      },
    )
  let previous: Awaited<ReturnType<typeof runBlock>> | undefined
  for (let attempt = 1; ; attempt++) {
    // A run that lost the lock must not go on: another run may hold it by now. Lost between two
    // tries, it is the failure of the block that was tried: what its steps did stays said.
    if (previous) {
      const lost = await session.assertLockHeld().then(
        () => undefined,
        (error: unknown) => session.lockLost() ?? error,
      )
      if (lost) {
        throw blockFailure(
          { ...previous, resultSet: { ...previous.resultSet, error: lost } },
          attempt - 1,
          false,
        )
      }
    } else await session.assertLockHeld()
    const ran = await runBlock(db, block, migrations, settings, session, interrupted)
    const { blockers, uncommitted, backups } = ran
    // A block that failed because the lock was lost says so, whatever its statement saw.
    let lost = ran.resultSet.error !== undefined ? session.lockLost() : undefined
    if (
      ran.resultSet.error !== undefined &&
      !lost &&
      !uncommitted?.length &&
      !isSqlState(errorCode(ran.resultSet.error))
    ) {
      // A connection the server ended may be the migration connection that idled as long as the
      // lock session did (setSessionBounds): the lock session tells whether the lock is gone.
      await session.assertLockHeld().catch(() => {})
      lost = session.lockLost()
    }
    const resultSet = lost ? { ...ran.resultSet, error: lost } : ran.resultSet
    if (resultSet.error === undefined) return successes(resultSet)
    // Either way its transaction was rolled back, and the session in its way may finish soon.
    const code = errorCode(resultSet.error)
    const deadlock = code === SQLSTATE.deadlockDetected
    const lockTimedOut = code === SQLSTATE.lockNotAvailable || deadlock
    if (!lockTimedOut || attempt >= settings.lockAttempts) {
      throw blockFailure({ ...ran, resultSet }, attempt, lockTimedOut)
    }
    previous = { ...ran, resultSet }
    const delayMs = retryDelayMs(settings.retryDelayMs, attempt)
    const failed = resultSet.results?.find((result) => result.status === 'Error')?.migrationName
    settings.log(
      `[db] ${failed ?? 'a migration'} hit ${deadlock ? 'a deadlock with another session' : 'lock_timeout'} (attempt ${attempt} of ${settings.lockAttempts}` +
        `${blockers ? `; blocked by ${blockers}` : ''}); trying again in ${delayMs} ms`,
    )
    await sleep(delayMs)
  }
}

async function runBlock(
  db: Kysely<any>,
  block: Step[],
  migrations: readonly MigrationInfo[],
  settings: MigrationSettings,
  session: MigrationSession,
  interrupted: string | undefined,
): Promise<{
  resultSet: MigrationResultSet
  blockers: string | undefined
  /** Migrations whose COMMIT got no answer: the server decided. */
  uncommitted?: string[]
  /**
   * The backups that the downs of such a COMMIT made; for a down outside a transaction that
   * failed, those its rollback made so far (see rollback-backups.ts).
   */
  backups?: string[]
  /** For a down outside a transaction that failed: whether the history still marks it begun. */
  rollbackBegun?: boolean
}> {
  const blockTarget = targetOf(block, migrations)
  // The checksum of the text of each up that runs, read before it runs: written with its history row.
  const checksums = await builtChecksums(block)
  const watch = watchBlockers(db)
  if (block[0]!.transactional) {
    let resultSet: MigrationResultSet = {}
    const done: MigrationResult[] = []
    let committing = false
    const backups: string[] = []
    try {
      await inWriterTransaction(db, settings, async (trx) => {
        await setDataLossOptIn(trx, settings, 'transaction')
        await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
        const pid = await watch.follow(trx)
        if (block[0]!.direction === 'Up') {
          resultSet = await kyselyMigrator(trx, settings, session, false, pid).migrateTo(
            blockTarget,
          )
        } else {
          // One down at a time, each rehearsed first: it refuses (or backs up) before it changes anything.
          const prepared = await kyselyMigrator(trx, settings, session, false, pid).getMigrations()
          for (const step of block) {
            const migration = prepared.find((m) => m.name === step.name)!.migration
            const failed = (error: unknown) => {
              resultSet = {
                error,
                results: [
                  ...done,
                  { migrationName: step.name, direction: 'Down', status: 'Error' },
                ],
              }
              return error
            }
            try {
              backups.push(
                ...(await guardDown(trx, step.name, migration, {
                  allowDataLoss: settings.allowDataLoss,
                })),
              )
            } catch (error) {
              throw failed(error)
            }
            resultSet = await kyselyMigrator(trx, settings, session, false, pid).migrateTo(
              targetOf([step], migrations),
            )
            if (resultSet.error !== undefined) {
              resultSet = { ...resultSet, results: [...done, ...(resultSet.results ?? [])] }
              break
            }
            // What the rehearsal did not foresee rolls the whole transaction back.
            await checkDown(trx, step.name).catch((error: unknown) => {
              throw failed(error)
            })
            done.push(...successes(resultSet))
          }
          if (resultSet.error === undefined) resultSet = { results: done }
        }
        // Kysely's Migrator returns its error instead of throwing: throw it to roll back.
        if (resultSet.error !== undefined) throw resultSet.error
        // Each migration's checksum, written or deleted with its history row.
        await syncMigrationChecksums(trx, { changes: successes(resultSet), checksums })
        // The block's last write is its history: it commits only while the run holds the lock.
        await session.assertLockHeld()
        committing = true
      })
      if (backups.length > 0) reportBackups(settings, backups)
    } catch (error) {
      // A COMMIT whose answer did not come: only the server knows whether it committed. (One
      // that PostgreSQL refused, with a SQLSTATE, was rolled back.)
      if (committing && !isSqlState(errorCode(error))) {
        return {
          resultSet: { error },
          blockers: await watch.stop(),
          uncommitted: successes(resultSet).map((r) => r.migrationName),
          backups,
        }
      }
      if (resultSet.error === undefined) resultSet = { error }
    }
    return { resultSet, blockers: await watch.stop() }
  }
  const name = block[0]!.name
  const down = block[0]!.direction === 'Down'
  // Where this rollback starts, for its backups (rollback-backups.ts): read before it runs.
  let since: string | undefined
  let traces: RollbackTraces | undefined
  const ran = await db.connection().execute(async (connection) => {
    let resultSet: MigrationResultSet = {}
    let blockers: string | undefined
    let uncommitted: string[] | undefined
    let backups: string[] | undefined
    let committed = false
    try {
      await setSessionBounds(connection, settings, 'session')
      // Until the finally below, after the last write's COMMIT or ROLLBACK.
      await holdWriterLock(connection, 'session')
      await setDataLossOptIn(connection, settings, 'session')
      // Outside a transaction nothing holds a fence: checked again as late as the runner can.
      await sql.raw(lesserTriggersSql({ lock: false })).execute(connection)
      const pid = await watch.follow(connection)
      if (down) since = await rollbackStart(connection, name, interrupted === name)
      resultSet = await kyselyMigrator(connection, settings, session, true, pid).migrateTo(
        blockTarget,
      )
      // From here on the migration ran: a failure is its own (its steps stay done), never one
      // before any ran (review of f8f189d, F1: a lost connection said "Nothing was changed").
      const failAll = (error: unknown) => {
        resultSet = {
          error,
          results: (resultSet.results ?? []).map((result) => ({ ...result, status: 'Error' })),
        }
      }
      // Such a down makes its backups in its own steps, each committed at once: those of this
      // rollback, an earlier attempt's included, are named by the one rule of rollback-backups.ts.
      const made =
        down && resultSet.error === undefined
          ? await rollbackBackups(connection, name, since!).catch((error: unknown) => {
              failAll(error)
              return []
            })
          : []
      if (resultSet.error === undefined && down) {
        const undone =
          `The deletion of its record in the history was rolled back: ${name} stays recorded as applied, with the steps ` +
          'of its down done.'
        await checkDown(
          connection,
          name,
          `${undone} Roll back again once nothing deletes, truncates or rewrites those tables with that record.`,
          { undone },
        ).catch(failAll)
      }
      // The migration's checksum, written or deleted in the transaction of its history row, which
      // the migration's end opened (confirmingLock), fenced as the runner's transactions are.
      if (resultSet.error === undefined) {
        try {
          await sql.raw(lesserTriggersSql({ lock: true })).execute(connection)
          await syncMigrationChecksums(connection, { changes: successes(resultSet), checksums })
        } catch (error) {
          failAll(error)
        }
      }
      // The history's write, in the transaction the migration's end opened (confirmingLock):
      // confirmed last, right before its COMMIT.
      if (resultSet.error === undefined) {
        await session.assertLockHeld().catch(failAll)
      }
      if (resultSet.error === undefined) {
        try {
          await sql`COMMIT`.execute(connection)
          committed = true
        } catch (error) {
          // As in a transaction (above): a COMMIT whose answer did not come may have committed,
          // and the backups the down made are then where the data is. One that PostgreSQL
          // refused, with a SQLSTATE, was rolled back: the history is as before the migration.
          const ran = successes(resultSet)
          failAll(error)
          if (!isSqlState(errorCode(error))) {
            uncommitted = ran.map((result) => result.migrationName)
            backups = made
          }
        }
        if (committed && made.length > 0) reportBackups(settings, made)
      }
    } finally {
      // A history write that did not commit is rolled back (a no-op where none began).
      if (!committed) await sql`ROLLBACK`.execute(connection).catch(() => {})
      // A down that failed may have committed steps: what they left, for its message. On a
      // connection that died, read once it is released (below).
      if (down && !committed && !backups && since !== undefined)
        traces = await rollbackTraces(connection, name, since).catch(() => undefined)
      // Every write has ended: the next run may take the lock (a dead connection let go already).
      await releaseWriterLock(connection).catch(() => {})
      blockers = await watch.stop()
      // The migration SET its timeouts for the session; the pool must not hand them on.
      await sql`RESET ALL`.execute(connection).catch(() => {})
    }
    return { resultSet, blockers, uncommitted, backups }
  })
  if (!down || ran.resultSet.error === undefined || ran.backups || since === undefined) return ran
  traces ??= await rollbackTraces(db, name, since).catch(() => undefined)
  return { ...ran, ...traces }
}

/**
 * The checksum of the text of each up of `block` that runs, recorded with its history row.
 * Where the code runs from dist/, that is the checksum the build took of each file (dist/'s
 * manifest), and a step whose file differs from it now (edited after the build, while the run
 * waited for its lock: review revt F1) stops the block before it starts: what would run is not
 * the file. From src/ (tsx, the tests), the file's. A file that cannot be read (a deployment of
 * dist/ alone) is taken as built.
 */
async function builtChecksums(block: readonly Step[]): Promise<Map<string, string>> {
  const built = new Map(
    readMigrationManifest()?.migrations.map(({ name, sha256 }) => [name, sha256]),
  )
  const files = await Promise.all(
    block.map(
      async ({ name }) => [name, await migrationChecksum(name).catch(() => undefined)] as const,
    ),
  )
  const changed = files.filter(
    ([name, sha256]) => sha256 !== undefined && built.has(name) && built.get(name) !== sha256,
  )
  if (changed.length > 0) {
    const named = changed.map(([name]) => `src/migrations/${name}.ts`).join(', ')
    throw new Error(
      `${named} changed since dist/ was built, when this process started: what would run is the text that was built, ` +
        'not the file, and its checksum would be recorded for a text that never ran. Nothing of it was run. ' +
        'Run the command again: it builds dist/ from the file as it is now.',
    )
  }
  // files follows block, step for step.
  return new Map(
    files.flatMap(([name, sha256], index) => {
      const recorded = built.get(name) ?? sha256
      return block[index]!.direction === 'Up' && recorded !== undefined ? [[name, recorded]] : []
    }),
  )
}

/** What a failed down outside a transaction left: see rollbackBackups and rollbackMarked. */
interface RollbackTraces {
  backups: string[]
  rollbackBegun: boolean
}

async function rollbackTraces(
  db: Kysely<any>,
  name: string,
  since: string,
): Promise<RollbackTraces> {
  return {
    backups: await rollbackBackups(db, name, since),
    rollbackBegun: await rollbackMarked(db, name),
  }
}

/**
 * `x402.allow_data_loss`, which every down's guard reads, from the run's own opt-in alone: for the
 * run's transaction (`transaction`), or for the session of a migration that runs outside one
 * (`session`; RESET ALL ends it). A default of the database or of the role never opts in.
 */
async function setDataLossOptIn(
  db: Kysely<any>,
  settings: MigrationSettings,
  scope: 'transaction' | 'session',
): Promise<void> {
  await sql`SELECT set_config('x402.allow_data_loss', ${settings.allowDataLoss ? 'on' : 'off'}, ${scope === 'transaction'})`.execute(
    db,
  )
}

/** Names the backups that the downs of a committed block made, where the data can be restored from. */
function reportBackups(settings: MigrationSettings, backups: readonly string[]): void {
  settings.log(`[db] ${backupsMade(backups)}`)
}

function targetOf(block: Step[], migrations: readonly MigrationInfo[]): string | NoMigrations {
  const last = block.at(-1)!
  if (last.direction === 'Up') return last.name
  const index = migrations.findIndex((m) => m.name === last.name)
  return index > 0 ? migrations[index - 1]!.name : NO_MIGRATIONS
}

function successes(resultSet: MigrationResultSet): MigrationResult[] {
  return (resultSet.results ?? []).filter((result) => result.status === 'Success')
}

interface BlockerWatch {
  /**
   * Starts sampling what blocks the server backend of `migrationDb`, the migration connection;
   * returns that backend's pid (undefined on PGlite).
   */
  follow(migrationDb: Kysely<any>): Promise<number | undefined>
  /** Stops sampling; returns the last blockers seen, described, if any. */
  stop(): Promise<string | undefined>
}

/**
 * Watches, from another connection of the pool behind `db`, which sessions block the migration's
 * backend, so that a lock timeout can name the pid in the way and its statement's keyword (see
 * shownStatement: its text is another session's, never shown). After the timeout
 * the wait is over and pg_blocking_pids() no longer tells. A sample that fails is skipped. Not
 * on PGlite, which has one connection only.
 */
function watchBlockers(db: Kysely<any>): BlockerWatch {
  let seen: string | undefined
  let timer: NodeJS.Timeout | undefined
  let sampling: Promise<void> = Promise.resolve()
  if (db.getExecutor().adapter instanceof PGliteAdapter) {
    return { follow: async () => undefined, stop: async () => seen }
  }
  return {
    async follow(migrationDb) {
      const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(
        migrationDb,
      )
      const pid = rows[0]!.pid
      const sample = async () => {
        const found = await sql<{ pid: number; state: string; xact_age: string; query: string }>`
          SELECT a.pid, a.state, date_trunc('second', now() - a.xact_start)::text AS xact_age,
                 left(a.query, 1000) AS query
          FROM unnest(pg_blocking_pids(${pid})) AS b(pid) JOIN pg_stat_activity a ON a.pid = b.pid
        `
          .execute(db)
          .catch(() => ({ rows: [] }))
        if (found.rows.length > 0) {
          seen = found.rows
            .map(
              (row) =>
                `pid ${row.pid} (${row.state}, transaction open for ${row.xact_age}: ${shownStatement(row.query)})`,
            )
            .join(', ')
        }
      }
      // One sample at a time: a connection that stopped answering would otherwise queue one
      // every 100 ms behind the stalled one, and stop() would wait for them all.
      let busy = false
      timer = setInterval(() => {
        if (busy) return
        busy = true
        sampling = sample().finally(() => {
          busy = false
        })
      }, 100)
      return pid
    },
    async stop() {
      clearInterval(timer)
      await sampling
      return seen
    },
  }
}
