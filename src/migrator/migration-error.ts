import type { MigrationResult, MigrationResultSet } from 'kysely/migration'

import { DatabaseNotOpenedError } from '../connection/database-not-opened-error.js'
import { QueryError } from '../connection/query-error.js'
import { errorCode, isSqlState, SQLSTATE } from '../connection/sql-state.js'
import { cannotReachDatabase, isUnreachable } from '../connection/unreachable.js'
import type { ChecksumVerdict } from './checksums.js'

/** What failed: a run of migrations, or reading the history for `migrate:list`. */
export type MigrationActivity = 'run' | 'status'

/** What the runner knows about a failure beyond Kysely's result set. */
export interface MigrationFailureContext {
  activity: MigrationActivity
  /** Migrations that this run applied or reverted, and committed, before the failure. */
  appliedBefore?: string[]
  /** Whether the failed migration ran in a transaction (then none of its steps stayed). */
  transactional?: boolean
  /** Downs of the failed one's transaction that ran before it, and were rolled back with it. */
  rolledBackWith?: string[]
  /** How many times a migration that hit lock_timeout was tried. */
  attempts?: number
  /** The sessions seen blocking the migration, described. */
  blockers?: string
  /** Migrations of a transaction whose COMMIT failed or got no answer: the server decided. */
  uncommitted?: string[]
  /**
   * The backups that the failed down made: those of the downs among `uncommitted`, where their
   * data is if the COMMIT went through; or, for a down outside a transaction, those that its
   * rollback made so far, in this attempt or an earlier one (see rollback-backups.ts).
   */
  backups?: string[]
  /**
   * For a down outside a transaction: whether, after it failed, the history still marks its
   * rollback as under way, that is, a step of it committed (in this attempt or an earlier one).
   */
  rollbackBegun?: boolean
  /** The environment variable that named the server; DATABASE_URL by default. */
  variable?: string
}

/**
 * A migration run that failed. The message names the migration, PostgreSQL's message, SQLSTATE
 * and detail, and says what state the database is in: a failed transactional migration left
 * nothing of its transaction; one that runs outside a transaction kept the steps it completed, is not
 * recorded as applied, and completes when the migrations run again.
 *
 * @example
 * ```ts
 * try {
 *   await migrateToLatest(db)
 * } catch (error) {
 *   if (error instanceof MigrationError) console.error(error.migrationName, error.code)
 *   throw error
 * }
 * ```
 */
export class MigrationError extends Error {
  override readonly name = 'MigrationError'
  /** The migration that failed; undefined when the run failed before any migration ran. */
  readonly migrationName: string | undefined
  readonly direction: 'Up' | 'Down' | undefined
  /** PostgreSQL's SQLSTATE, or Node's error code for a connection failure. */
  readonly code: string | undefined
  readonly detail: string | undefined
  /** Kysely's result for every migration the run considered. */
  readonly results: readonly MigrationResult[]
  /** The backups in x402_backup that the message names, where the failed rollback put the data it would destroy. */
  readonly backups: readonly string[]

  constructor(
    resultSet: MigrationResultSet,
    context: MigrationFailureContext = { activity: 'run' },
  ) {
    const failed = resultSet.results?.find((result) => result.status === 'Error')
    const cause = resultSet.error
    const fields = errorFields(cause)
    super(describe(failed, fields, context), { cause })
    this.migrationName = failed?.migrationName
    this.direction = failed?.direction
    this.code = fields.code
    this.detail = fields.detail
    this.results = resultSet.results ?? []
    this.backups = context.backups ?? []
  }
}

/**
 * What the runner says of the backups that a rollback made, where the data it would destroy can be
 * restored from: the one wording of the line of a run that completed a rollback (runner.ts) and of
 * the message of one that failed ({@link MigrationError}).
 *
 * @example
 * ```ts
 * backupsMade(['x402_backup."005_user_openrouter_integrations_20260101T000000000"'])
 * ```
 */
export function backupsMade(backups: readonly string[]): string {
  return `the rollback copied the data it would destroy to ${backups.join(', ')} (docs/rollback.md says how to restore it)`
}

/** {@link backupsMade} as a sentence of a message, after another; empty where there are none. */
function backupsSentence(backups: readonly string[] | undefined, after = ''): string {
  if (!backups?.length) return ''
  const said = backupsMade(backups)
  return ` ${said[0]!.toUpperCase()}${said.slice(1)}${after}.`
}

/**
 * The migration lock was lost during a run: another run may hold it by now, and this one stopped
 * before its next write. `reason` says what happened without the next step, for a message that
 * words the next step itself (MigrationError), so that it is said once.
 */
export class MigrationLockLostError extends Error {
  override readonly name = 'MigrationLockLostError'
  readonly reason: string

  constructor(cause: unknown) {
    const reason =
      `The migration lock was lost (${cause instanceof Error ? cause.message : String(cause)}): another run may hold it ` +
      'by now, so this run stopped before its next write.'
    super(`${reason} Run the migrations again.`, { cause })
    this.reason = reason
  }
}

interface ErrorFields {
  message: string
  code: string | undefined
  detail: string | undefined
  table?: string
  lockLost?: boolean
  notOpened?: boolean
}

function errorFields(error: unknown): ErrorFields {
  if (error instanceof QueryError) {
    // PostgreSQL's own wording is what a reader searches for; QueryError's is in the cause.
    const original = error.cause instanceof Error ? error.cause.message : error.message
    return { message: original, code: error.code, detail: error.detail, table: error.table }
  }
  // The next step is this message's to word: the lost lock's reason without its own.
  if (error instanceof MigrationLockLostError)
    return { message: error.reason, code: undefined, detail: undefined, lockLost: true }
  if (error instanceof Error) {
    const notOpened = error instanceof DatabaseNotOpenedError
    return { message: error.message, code: errorCode(error), detail: undefined, notOpened }
  }
  return { message: String(error), code: undefined, detail: undefined }
}

function describe(
  failed: MigrationResult | undefined,
  fields: ErrorFields,
  context: MigrationFailureContext,
): string {
  // Node's codes (ECONNREFUSED, …) are in the message already; PostgreSQL's SQLSTATE is not.
  const state = [
    isSqlState(fields.code) && `SQLSTATE ${fields.code}`,
    fields.detail && `detail: ${fields.detail}`,
  ]
    .filter(Boolean)
    .join('; ')
  // Each use below ends the reason with a period of its own; the module's own errors have one.
  const message = fields.message.replace(/\.$/, '')
  const reason = state ? `${message} (${state})` : message
  if (context.uncommitted?.length) {
    const names = context.uncommitted.join(', ')
    return (
      `The COMMIT of the transaction of ${names} failed: ${reason}. The server may have committed it or rolled it ` +
      `back.${kept(context)}${
        // Outside a transaction the steps that made them committed each at once, whatever the
        // server did with the history's COMMIT.
        backupsSentence(
          context.backups,
          context.transactional === false
            ? ''
            : ': if the server committed it, that is where the data is',
        )
      }${
        failed?.direction === 'Down'
          ? ` Run npm run migrate:list to see what is recorded before anything else: where ${names} is no longer ` +
            'recorded, the rollback committed, and another migrate:down would revert the migration before it.'
          : ' Run npm run migrate:list to see what is recorded, then run the migrations again.'
      }`
    )
  }
  // Its own message says what happened and what to do, and that nothing was read or written,
  // whatever words it quotes (a file's name may read "timeout expired").
  if (fields.notOpened) return `${message}.`
  if (isUnreachable(fields.code, fields.message) && !failed && !context.appliedBefore?.length)
    return cannotReachDatabase(reason, context.variable)
  if (context.activity === 'status') return `Could not read the migration history: ${reason}.`
  if (!failed && context.appliedBefore?.length) {
    return `The migration run failed after ${context.appliedBefore.join(', ')} ran, which stay done: ${reason}. Run the migrations again.`
  }
  if (!failed)
    return `The migration run failed before any migration ran: ${reason}.${/Nothing was (read or )?changed/.test(reason) ? '' : ' Nothing was changed.'}`
  const lockWait =
    context.attempts === undefined
      ? ''
      : fields.code === SQLSTATE.deadlockDetected
        ? ` PostgreSQL cancelled it to break a deadlock with another session, in ${context.attempts} attempt(s)` +
          `${context.blockers ? `, blocked by ${context.blockers}` : ''}; run the migrations again once that session's work is done.`
        : ` It could not get its lock within lock_timeout in ${context.attempts} attempt(s)` +
          `${context.blockers ? `, blocked by ${context.blockers}` : ''}; end or wait for that session (or raise MIGRATION_LOCK_TIMEOUT_MS), then run the migrations again.`
  // The runner's refusal says what it found and that nothing changed; the rest would mislead.
  if (fields.code === 'DATA_LOSS_REFUSED') return `${message}.${kept(context)}`
  // The history's primary key refused this run's record: another run wrote it meanwhile.
  if (fields.code === '23505' && fields.table === 'kysely_migration' && failed.direction === 'Up') {
    return (
      `Migration ${failed.migrationName} failed (up): ${reason}. Another run recorded ${failed.migrationName} as applied ` +
      'while this run applied it: a run that went on without the migration lock (one that lost it, or one of a version ' +
      `of this module that does not confirm it). ${failed.migrationName} is recorded as done, and both runs applied its ` +
      `steps.${kept(context)} Check the schema with npm run migrate:check, then run the migrations again for those after it.`
    )
  }
  // What the migration creates is there already, made outside the module: a second run meets
  // the same object, at the same statement.
  const inTheWay = failed.direction === 'Up' && IN_THE_WAY.has(fields.code ?? '')
  const outcome =
    context.transactional === false && fields.lockLost
      ? // Another run may have taken the lock and changed the history since: only it can tell.
        `${failed.migrationName} runs outside a transaction: ${failed.direction === 'Down' ? 'the steps of its down that finished' : 'the steps it finished'} ` +
        'stay, and another run may have gone on since. Run npm run migrate:list to see what is recorded' +
        (failed.direction === 'Up'
          ? ', then run the migrations again.'
          : `; another run may have finished this rollback, or migrated forward since. Roll back again only where ${failed.migrationName} ` +
            'is still the newest migration recorded and you still want it reverted.')
      : context.transactional === false
        ? failed.direction === 'Up'
          ? `${failed.migrationName} runs outside a transaction: the steps it finished stay, it is not recorded as done, and ` +
            (inTheWay
              ? 'running the migrations again fails the same way.'
              : 'running the migrations again completes it.')
          : refusedFirst(reason) && !context.rollbackBegun
            ? // Its refusal came before its first step changed anything: nothing is half done.
              `${failed.migrationName} stays applied, as it was: no step of its down ran.`
            : `${failed.migrationName} runs outside a transaction: the steps of its down that finished stay, it stays recorded as applied, and rolling back again completes it.`
        : failed.direction === 'Down'
          ? `The transaction of its down was rolled back: ${failed.migrationName} stays applied, as it was` +
            (context.rolledBackWith?.length
              ? `, and so ${context.rolledBackWith.length === 1 ? 'does' : 'do'} ${context.rolledBackWith.join(', ')}, whose down ran in the same transaction.`
              : '.')
          : `${failed.migrationName} was rolled back.`
  const nextStep = isUnreachable(fields.code, fields.message)
    ? ' The connection to the database was lost: check that the server is up and reachable (DATABASE_URL), then run the migrations again.'
    : inTheWay
      ? ` The database has this object already, made outside the module (such as production's own SQL pasted into the SQL ` +
        `Editor), so no run of ${failed.migrationName} can succeed here. Adopt the database at the migration whose schema ` +
        'it has instead of migrating it: npm run migrate:baseline -- <name> --plan says what differs at a migration, and ' +
        'which later one gives a table the name the database has.'
      : fields.lockLost
        ? context.transactional === false
          ? ''
          : ' Run the migrations again.'
        : context.attempts === undefined
          ? failed.direction === 'Down'
            ? ' Fix the cause before rolling back again.'
            : ' Fix the cause and run the migrations again.'
          : ''
  // Where the data of a down outside a transaction is by now: its steps that committed stay.
  const backups =
    context.transactional === false && failed.direction === 'Down'
      ? backupsSentence(context.backups)
      : ''
  return `Migration ${failed.migrationName} failed (${failed.direction.toLowerCase()}): ${reason}.${lockWait} ${outcome}${backups}${kept(context)}${nextStep}`
}

/**
 * Whether `reason`, the error of a non-transactional down, is a refusal before its first step:
 * it says that nothing was changed, and not that an earlier attempt left the rollback half done
 * (resumable-down.ts adds that to the refusal of a resumed rollback), nor that only a later step
 * was rolled back. Each refusal of a later step of a down says its own step's text, never
 * "Nothing was changed".
 */
function refusedFirst(reason: string): boolean {
  return (
    /Nothing was changed/.test(reason) &&
    !/began earlier and is not complete/.test(reason) &&
    // What a refusal of a later step says (005's LATER_STEP_UNDONE): an earlier step committed.
    !/This step was rolled back/.test(reason)
  )
}

/** The migrations that ran earlier in the run and stay done, as a sentence; empty when none did. */
function kept(context: MigrationFailureContext): string {
  const before = context.appliedBefore ?? []
  return before.length > 0
    ? ` ${before.join(', ')} ran earlier in this run and stay${before.length === 1 ? 's' : ''} done.`
    : ''
}

/** The SQLSTATEs of an object that exists already: a table or index, another object, a column. */
const IN_THE_WAY = new Set<string>([
  SQLSTATE.duplicateTable,
  SQLSTATE.duplicateObject,
  SQLSTATE.duplicateColumn,
])

/**
 * Thrown, before anything changes, when migrations that must run outside a transaction are
 * pending but the connection goes through a transaction-mode pooler, which hands a session a
 * server connection per transaction, not one of its own.
 */
export class TransactionPoolerError extends Error {
  override readonly name = 'TransactionPoolerError'
  readonly code = 'TRANSACTION_POOLER'

  constructor(readonly migrationNames: string[]) {
    super(
      `The database connection goes through a transaction-mode pooler (PgBouncer or Supavisor in transaction mode, ` +
        `Supabase's port 6543): the runner's sessions did not keep a server connection each (one moved between server ` +
        'connections, or shared one with another session). ' +
        `${migrationNames.join(', ')} must run outside a transaction (CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT), ` +
        'which such a pooler cannot carry. Nothing was changed. Set MIGRATION_DATABASE_URL to a direct connection ' +
        '(Supabase: db.<project>.supabase.co:5432) or a session-mode pooler (port 5432) and run the migrations again.',
    )
  }
}

/**
 * Thrown, before anything changes, when the history records a rollback that began and did not
 * finish (a crash or a lost connection in the middle of a non-transactional `down`): the schema
 * is half way between two versions, and migrating forward from there would build on a state
 * that no migration expects. Running the rollback again completes it.
 */
export class InterruptedRollbackError extends Error {
  override readonly name = 'InterruptedRollbackError'
  readonly code = 'INTERRUPTED_ROLLBACK'

  constructor(readonly migrationName: string) {
    super(
      `The rollback of ${migrationName} began and did not finish (the run that reverted it was interrupted), so its ` +
        'schema may be half removed (some of its steps may have committed). Nothing was changed. Complete the rollback with `npm run migrate:down` ' +
        '(add `-- --allow-data-loss` if the first attempt was run with it), then migrate again. Where a run is ' +
        'completing it now (`migrate:list` then shows it done once that run ends), wait for that run instead.',
    )
  }
}

/**
 * Thrown, before any change, by a command of one step (`migrate:down`, `migrate:up`,
 * `migrate:redo`) that found the history moved while it waited for the migration lock: another
 * run reverted or applied a migration in between, and the step it would take now is not the one
 * that was asked for.
 */
export class HistoryMovedError extends Error {
  override readonly name = 'HistoryMovedError'
  readonly code = 'HISTORY_MOVED'

  constructor(
    readonly command: 'up' | 'down' | 'redo',
    readonly askedAt: string | undefined,
    readonly foundAt: string | undefined,
  ) {
    super(
      `migrate:${command} was asked when the newest applied migration was ${askedAt ?? 'none'}; while it waited ` +
        `for the migration lock another run changed the history (the newest is now ${foundAt ?? 'none'}). Nothing was ` +
        'changed. Check what it did with `npm run migrate:list`, then run the command again if its step is still wanted.',
    )
  }
}

/**
 * Thrown when the history records migrations that no migration file of this module has (a
 * deleted file, a database that a newer version migrated, or the wrong database): Kysely's
 * Migrator refuses such a history too, and the run refuses it before it changes anything.
 */
export class UnknownMigrationsError extends Error {
  override readonly name = 'UnknownMigrationsError'
  readonly code = 'UNKNOWN_MIGRATIONS'

  constructor(readonly migrationNames: string[]) {
    super(
      `The history records ${migrationNames.join(', ')}, which no migration file of this module has. ` +
        'Nothing was changed. If the file was deleted or this module is older than the database, restore the ' +
        'migration file (or update the module); otherwise check that DATABASE_URL (or MIGRATION_DATABASE_URL) ' +
        'points at the right database.',
    )
  }
}

/**
 * Thrown, before anything changes, when a migration that the run would revert is not verified
 * against the text that was applied: its verdict (checksums.ts, `checksumVerdict`) is one of
 * UNVERIFIED_CHECKSUMS. Its down, from the file as it is now, may not undo what ran, and would
 * delete the record of the difference with its history row (review revt F4). An earlier text of
 * a corrected migration (`corrected`) is not refused.
 */
export class UnverifiedDownError extends Error {
  override readonly name = 'UnverifiedDownError'
  readonly code = 'UNVERIFIED_DOWN'
  /** The migrations refused, newest first, as the run would have reverted them. */
  readonly migrationNames: string[]

  constructor(
    readonly verdicts: readonly ChecksumVerdict[],
    newestApplied: string,
  ) {
    const names = verdicts.map(({ name }) => name)
    super(
      `Refused to revert ${names.join(', ')}: ${names.length === 1 ? 'its down' : 'their downs'} may not undo ` +
        `what was applied. Nothing was changed. ${verdicts.map((verdict) => unverifiedDown(verdict, newestApplied)).join(' ')}`,
    )
    this.migrationNames = names
  }
}

function unverifiedDown(verdict: ChecksumVerdict, newestApplied: string): string {
  const { name, status, recorded, current, problem } = verdict
  const file = `src/migrations/${name}.ts`
  if (status === 'edited')
    return (
      `${name}: the file ${file} (sha256 ${current}) differs from the text that was applied (sha256 ${recorded!.sha256}, ` +
      `recorded as ${recorded!.origin} at ${recorded!.recordedAt.toISOString()}). Restore the file as it was when applied, from ` +
      `version control (git log -p -- ${file}), and run again; a change to an applied migration goes into a new migration.`
    )
  if (status === 'missing')
    return (
      `${name}: no checksum was recorded when it was applied, so the text that ran is unknown. Run ` +
      '`npm run migrate:check`, and once the schema matches, record the checksum with ' +
      `\`npm run migrate:baseline -- ${newestApplied}\`; then run again.`
    )
  return `${name}: its down cannot be checked against the text that was applied: ${problem}`
}
