import { setTimeout as sleep } from 'node:timers/promises'

import { type Kysely, type KyselyPlugin, PGliteAdapter, sql } from 'kysely'
import {
  type MigrationInfo,
  type MigrationResult,
  type MigrationResultSet,
  Migrator,
  NO_MIGRATIONS,
  type NoMigrations,
} from 'kysely/migration'

import { awaitsAnswer } from '../connection/dialect-hooks.js'
import { severConnections } from '../connection/sever-connections.js'
import { errorCode, SQLSTATE } from '../connection/sql-state.js'
import { syncMigrationChecksums } from './checksums.js'
import { MIGRATION_TABLE_SCHEMA, readMigrationHistory } from './history.js'
import { InterruptedRollbackError, MigrationError, TransactionPoolerError } from './migration-error.js'
import { withResumableDowns } from './resumable-down.js'
import { guardDown } from './down-guard.js'
import { assertRunnerDialect, type MigrationSession, withMigrationLock } from './lock.js'
import { migrationProvider, runsInTransaction } from './provider.js'
import { retryDelayMs } from './retry-delay.js'
import type { MigrationSettings } from './settings.js'
import { ensureSupabaseStandIn } from '../supabase/stand-in.js'

/** Where a run goes: every pending migration, one step up or down, or to a named migration. */
export type MigrationTarget =
  | { kind: 'latest' }
  | { kind: 'up' }
  | { kind: 'down' }
  | { kind: 'to'; name: string | NoMigrations }

interface Step {
  name: string
  direction: 'Up' | 'Down'
  transactional: boolean
}

/**
 * Runs the migrations that take the database to `target`. Under the migration lock, held for
 * the whole run, it reads the history, plans the steps, and runs each contiguous block of
 * transactional migrations in one transaction and each migration that opts out
 * (`config = { transaction: false }`) on a connection of its own, every block through Kysely's
 * Migrator. A migration that hits lock_timeout is tried again, with a doubling wait, up to
 * `settings.lockAttempts` times. Returns the results of the migrations it ran; throws
 * {@link MigrationError} when one fails, after the blocks before it committed.
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
    return await withMigrationLock(
      db,
      async (session) => {
        const migrations = await session.bounded('the reading of the migration history', () => kyselyMigrator(db, settings).getMigrations())
        const steps = planSteps(migrations, target)
        // A rollback that began and did not finish: only the rollback itself may go on.
        const history = await session.bounded('the reading of the migration history', () => readMigrationHistory(db, { times: false }))
        const interrupted = history.find((entry) => entry.reverting)
        if (interrupted && (steps.some((step) => step.direction === 'Up') || (steps.length > 0 && steps[0]!.name !== interrupted.name))) {
          throw new InterruptedRollbackError(interrupted.name)
        }
        const outside = steps.filter((step) => !step.transactional).map((step) => step.name)
        if (session.transactionPooler && outside.length > 0) throw new TransactionPoolerError(outside)
        // The Supabase platform pieces the schema depends on; a no-op where they exist.
        if (steps.some((step) => step.direction === 'Up')) await session.bounded('the Supabase stand-in check', () => ensureSupabaseStandIn(db))
        for (const block of contiguousBlocks(steps)) {
          results.push(...(await runBlockWithRetries(db, block, migrations, settings, results, session)))
        }
        // A run that failed part-way records the checksums of what it applied on the next run.
        if (steps.length > 0) {
          const appliedNow = results.filter((result) => result.direction === 'Up').map((result) => result.migrationName)
          await session.bounded('the recording of the migrations\' checksums', () => syncMigrationChecksums(db, { appliedNow }))
        }
        return results
      },
      settings,
    )
  } catch (error) {
    if (error instanceof MigrationError || error instanceof TransactionPoolerError || error instanceof InterruptedRollbackError) throw error
    // A failure outside any migration (the lock, the checksums, a commit): say what was done.
    throw new MigrationError({ error }, { activity: 'run', appliedBefore: results.map((result) => result.migrationName) })
  }
}

/**
 * Kysely's Migrator over the module's migrations and history tables, prepared with `settings`.
 * The runner's lock replaces Kysely's own (see withoutKyselyMigrationLock).
 */
export function kyselyMigrator(db: Kysely<any>, settings: MigrationSettings, disableTransactions = false): Migrator {
  const provider = migrationProvider(settings)
  return new Migrator({
    db,
    // Outside a transaction a down can be interrupted between its steps: it must be resumable.
    provider: disableTransactions ? withResumableDowns(provider) : provider,
    migrationTableSchema: MIGRATION_TABLE_SCHEMA,
    disableTransactions,
  })
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
    if (block && block[0]!.transactional && next.transactional) block.push(next)
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
): Promise<MigrationResult[]> {
  for (let attempt = 1; ; attempt++) {
    // A run that lost the lock must not go on: another run may hold it by now.
    await session.assertLockHeld()
    const ran = await runBlock(db, block, migrations, settings, session)
    const { blockers } = ran
    // A lost lock, or lost answers, cut the connections (see withMigrationLock): say so, not
    // "connection terminated".
    const lost = ran.resultSet.error !== undefined ? session.lockLost() : undefined
    const resultSet = lost ? { ...ran.resultSet, error: lost } : ran.resultSet
    if (resultSet.error === undefined) return successes(resultSet)
    const lockTimedOut = errorCode(resultSet.error) === SQLSTATE.lockNotAvailable
    if (!lockTimedOut || attempt >= settings.lockAttempts) {
      throw new MigrationError(resultSet, {
        activity: 'run',
        appliedBefore: earlier.map((result) => result.migrationName),
        transactional: block[0]!.transactional,
        // Kysely reports them as done, but their transaction was rolled back with the failure.
        rolledBackWith: block[0]!.transactional ? successes(resultSet).map((result) => result.migrationName) : [],
        attempts: lockTimedOut ? attempt : undefined,
        blockers,
      })
    }
    const delayMs = retryDelayMs(settings.retryDelayMs, attempt)
    const failed = resultSet.results?.find((result) => result.status === 'Error')?.migrationName
    settings.log(
      `[db] ${failed ?? 'a migration'} hit lock_timeout (attempt ${attempt} of ${settings.lockAttempts}` +
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
): Promise<{ resultSet: MigrationResultSet; blockers: string | undefined }> {
  const blockTarget = targetOf(block, migrations)
  const guard = new MigrationConnectionGuard(session.lockLost)
  if (block[0]!.transactional) {
    let resultSet: MigrationResultSet = {}
    const done: MigrationResult[] = []
    const watch = await watchBlockers(db, settings)
    let unwatch = () => {}
    try {
      // READ COMMITTED whatever the database's default (each migration was written for it).
      await db.transaction().setIsolationLevel('read committed').execute(async (unguarded) => {
        const trx = unguarded.withPlugin(guard)
        await setSessionBounds(trx, settings, 'transaction')
        unwatch = await watchConnection(trx, session, watch)
        if (block[0]!.direction === 'Up') {
          resultSet = await kyselyMigrator(trx, settings).migrateTo(blockTarget)
        } else {
          // One down at a time, each rehearsed first: it refuses (or backs up) before it changes anything.
          const prepared = await kyselyMigrator(trx, settings).getMigrations()
          for (const step of block) {
            const migration = prepared.find((m) => m.name === step.name)!.migration
            try {
              await guardDown(trx, step.name, migration, { allowDataLoss: settings.allowDataLoss })
            } catch (error) {
              resultSet = { error, results: [...done, { migrationName: step.name, direction: 'Down', status: 'Error' }] }
              throw error
            }
            resultSet = await kyselyMigrator(trx, settings).migrateTo(targetOf([step], migrations))
            if (resultSet.error !== undefined) resultSet = { ...resultSet, results: [...done, ...(resultSet.results ?? [])] }
            else done.push(...successes(resultSet))
            if (resultSet.error !== undefined) break
          }
          if (resultSet.error === undefined) resultSet = { results: done }
        }
        // Kysely's Migrator returns its error instead of throwing: throw it to roll back.
        if (resultSet.error !== undefined) throw resultSet.error
      })
    } catch (error) {
      if (resultSet.error === undefined) resultSet = { error }
    } finally {
      unwatch()
    }
    return { resultSet, blockers: await watch.stop() }
  }
  return db.connection().execute(async (unguarded) => {
    const connection = unguarded.withPlugin(guard)
    const watch = await watchBlockers(db, settings)
    let resultSet: MigrationResultSet
    let blockers: string | undefined
    let unwatch = () => {}
    try {
      await setSessionBounds(connection, settings, 'session')
      unwatch = await watchConnection(connection, session, watch)
      resultSet = await kyselyMigrator(connection, settings, true).migrateTo(blockTarget)
    } finally {
      blockers = await watch.stop()
      // The migration SET its timeouts for the session; the pool must not hand them on.
      await sql`RESET ALL`.execute(unguarded).catch(() => {})
      // After RESET ALL, which a stall can catch too.
      unwatch()
    }
    return { resultSet, blockers }
  })
}

/**
 * Bounds what a stalled client can hold: idle_in_transaction_session_timeout ends a transaction
 * whose client stopped sending (a stopped process, a frozen VM), and with it its locks, and
 * transaction_timeout (PostgreSQL 17 and later) bounds a transaction of the runner as a whole.
 * On a migration's own connection (`session`) the migration opens its transactions itself, some
 * of them long on purpose (VALIDATE, CREATE INDEX CONCURRENTLY): there only the idle bound
 * applies, and READ COMMITTED becomes the default of its transactions. RESET ALL ends them.
 * Not on PGlite: one process holds the only connection, and no one else waits.
 */
async function setSessionBounds(db: Kysely<any>, settings: MigrationSettings, scope: 'transaction' | 'session'): Promise<void> {
  if (db.getExecutor().adapter instanceof PGliteAdapter) return
  const local = scope === 'transaction'
  const set = (name: string, value: string) => sql`SELECT set_config(${name}, ${value}, ${local})`.execute(db)
  await set('idle_in_transaction_session_timeout', `${settings.idleTimeoutMs}ms`)
  if (local) {
    const { rows } = await sql<{ version: number }>`SELECT current_setting('server_version_num')::int AS version`.execute(db)
    if (rows[0]!.version >= 170_000) await set('transaction_timeout', `${settings.transactionTimeoutMs}ms`)
  } else {
    await set('default_transaction_isolation', 'read committed')
  }
}

/**
 * On a migration's connection: refuses every statement once the run must stop (the lock lost),
 * so that a migration of several steps (005) stops at its next statement instead of going on
 * beside another run.
 */
class MigrationConnectionGuard implements KyselyPlugin {
  constructor(private readonly lockLost: () => Error | undefined) {}

  transformQuery(args: Parameters<KyselyPlugin['transformQuery']>[0]): ReturnType<KyselyPlugin['transformQuery']> {
    const lost = this.lockLost()
    if (lost) throw lost
    return args.node
  }

  async transformResult(args: Parameters<KyselyPlugin['transformResult']>[0]): ReturnType<KyselyPlugin['transformResult']> {
    return args.result
  }
}

/**
 * Starts watching the migration connection `migrationDb`: `watch` samples what blocks it, and
 * the lock session's heartbeat whether the answers of what it sends still arrive: its
 * statements, and the BEGIN, COMMIT and ROLLBACK that Kysely's driver sends for the
 * transactions the runner and the migrations open (awaitsAnswer). Returns the function that
 * ends the second; `watch.stop()` ends the first. Not on PGlite, where the client is the server.
 */
async function watchConnection(migrationDb: Kysely<any>, session: MigrationSession, watch: BlockerWatch): Promise<() => void> {
  if (migrationDb.getExecutor().adapter instanceof PGliteAdapter) return () => {}
  const query = sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.compile(migrationDb)
  const { rows } = await migrationDb.executeQuery(query)
  const pid = rows[0]!.pid
  watch.follow(pid)
  return session.watchConnection(pid, awaitsAnswer(query))
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
  /** Starts sampling what blocks server backend `pid`, the migration connection's. */
  follow(pid: number): void
  /** Stops sampling; returns the last blockers seen, described, if any. */
  stop(): Promise<string | undefined>
}

/**
 * Watches, from another connection, which sessions block the migration's backend, so that a
 * lock timeout can name the pid and the query in the way. After the timeout the wait is over
 * and pg_blocking_pids() no longer tells. Not on PGlite, which has one connection only.
 */
/**
 * Samples on a connection of the pool behind `db`. A sample that gets no answer within
 * `settings.idleTimeoutMs` means a connection whose answers stopped (a stalled proxy or network
 * path): the connections are cut, as the lock session does for its own, so that neither the
 * sample nor stop() waits for ever, and the run stops.
 */
async function watchBlockers(db: Kysely<any>, settings: MigrationSettings): Promise<BlockerWatch> {
  let seen: string | undefined
  let timer: NodeJS.Timeout | undefined
  let sampling: Promise<void> = Promise.resolve()
  if (db.getExecutor().adapter instanceof PGliteAdapter) {
    return { follow: () => {}, stop: async () => seen }
  }
  return {
    follow(pid) {
      const sample = async () => {
        const unanswered = setTimeout(() => {
          settings.log(
            `[db] the server did not answer the query that samples what blocks the migration within ${settings.idleTimeoutMs} ms ` +
              '(a connection whose answers stopped): this run cut its connections and stops. Run the migrations again.',
          )
          severConnections(db)
        }, settings.idleTimeoutMs)
        const found = await sql<{ pid: number; state: string; xact_age: string; query: string }>`
          SELECT a.pid, a.state, date_trunc('second', now() - a.xact_start)::text AS xact_age,
                 left(regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 200) AS query
          FROM unnest(pg_blocking_pids(${pid})) AS b(pid) JOIN pg_stat_activity a ON a.pid = b.pid
        `
          .execute(db)
          .catch(() => ({ rows: [] }))
          .finally(() => clearTimeout(unanswered))
        if (found.rows.length > 0) {
          seen = found.rows
            .map((row) => `pid ${row.pid} (${row.state}, transaction open for ${row.xact_age}: ${row.query})`)
            .join(', ')
        }
      }
      // One sample at a time: a server that stopped answering would otherwise queue one every
      // 100 ms behind the stalled one, and stop() would wait for them all.
      let busy = false
      timer = setInterval(() => {
        if (busy) return
        busy = true
        sampling = sample().finally(() => {
          busy = false
        })
      }, 100)
    },
    async stop() {
      clearInterval(timer)
      await sampling
      return seen
    },
  }
}
