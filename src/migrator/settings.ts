import {
  type MigrationDatabaseVariable,
  migrationDatabaseVariable,
} from '../connection/database-target.js'
import { SettingError } from '../connection/setting-error.js'
import { describeArgument } from '../connection/shown-argument.js'
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_LOCK_WAIT_MS,
  DEFAULT_TCP_USER_TIMEOUT_MS,
} from './lock.js'
import { DEFAULT_LOCK_TIMEOUT_MS } from './locked-history.js'

// Defined where the no-op `migrate latest` reads it before kysely is loaded.
export { DEFAULT_LOCK_TIMEOUT_MS }
/** How many times work that hit lock_timeout is tried in all. */
export const DEFAULT_LOCK_ATTEMPTS = 5
/** The wait before the first retry after a lock timeout, in ms; it doubles on each retry. */
export const DEFAULT_RETRY_DELAY_MS = 1_000

/**
 * How a migration run behaves. Each field can also come from the environment (in brackets);
 * an explicit option wins.
 */
export interface MigrateOptions {
  /** How long to wait for another instance's run, in ms. [MIGRATION_LOCK_WAIT_MS, 120000] */
  lockWaitMs?: number
  /**
   * lock_timeout of every migration statement, in ms: a statement that cannot get its table lock
   * in time gives up instead of queueing every query of the app behind it. [MIGRATION_LOCK_TIMEOUT_MS, 2000]
   */
  lockTimeoutMs?: number
  /** statement_timeout of migration statements, in ms; a migration may lift it for a step. [MIGRATION_STATEMENT_TIMEOUT_MS, 60000] */
  statementTimeoutMs?: number
  /**
   * idle_in_transaction_session_timeout of the migration sessions and the lock session, in ms: a
   * stalled client (a stopped process, a frozen VM) loses its transactions, and their locks, after
   * this long, so that writers wait about as long for a stopped run. The lock session sends a
   * heartbeat three times as often. [MIGRATION_IDLE_TIMEOUT_MS, 5000]
   */
  idleTimeoutMs?: number
  /**
   * tcp_user_timeout (PostgreSQL 12 and later) of the migration sessions, in ms: the server drops
   * a client that takes nothing of what it was sent for this long (a process stopped while it
   * reads a large result, which no idle, statement or transaction timeout ends), and its locks go
   * with it. [MIGRATION_TCP_USER_TIMEOUT_MS, 5000]
   */
  tcpUserTimeoutMs?: number
  /**
   * transaction_timeout (PostgreSQL 17 and later) of each transaction that the runner opens, in
   * ms. [MIGRATION_TRANSACTION_TIMEOUT_MS, 300000]
   */
  transactionTimeoutMs?: number
  /** How many times a migration that hit lock_timeout is tried in all. [MIGRATION_LOCK_ATTEMPTS, 5] */
  lockAttempts?: number
  /** The wait before the first retry, in ms; it doubles on each retry. [MIGRATION_RETRY_DELAY_MS, 1000] */
  retryDelayMs?: number
  /**
   * Lets a `down` go ahead where it would drop data, after it copied the data to schema
   * x402_backup. [MIGRATION_ALLOW_DATA_LOSS=true, false]
   */
  allowDataLoss?: boolean
  /** Receives a line when the run waits for another run's migration lock, and when a migration is retried after a lock timeout. */
  log?: (line: string) => void
  /**
   * Told when each migration's `up` or `down` starts and ends, for a progress display and the
   * time each took. A migration tried again after a lock timeout, and a `down` rehearsed by the
   * data-loss guard, start and end again: the last end is the one that counts.
   */
  onMigration?: (event: MigrationEvent) => void
  /** Where the variables above are read from; `process.env` by default. */
  env?: NodeJS.ProcessEnv
}

/**
 * A migration starting or ending, for {@link MigrateOptions.onMigration}. `backendPid` is the
 * server process that runs it (undefined on PGlite), for a watcher on another connection.
 */
export type MigrationEvent =
  | { phase: 'start'; name: string; direction: 'up' | 'down'; backendPid: number | undefined }
  | { phase: 'end'; name: string; direction: 'up' | 'down'; ms: number; failed: boolean }

/**
 * {@link MigrateOptions} with every default applied, and the environment variable that names the
 * server the migrations run on, for a message about a server that cannot be reached.
 */
export type MigrationSettings = Required<Omit<MigrateOptions, 'env'>> & {
  databaseVariable: MigrationDatabaseVariable
}

/**
 * Applies the environment and the defaults to `options`, and rejects a value that is not a
 * number or a boolean where one is expected.
 *
 * @example
 * ```ts
 * migrationSettings({ env: { MIGRATION_LOCK_TIMEOUT_MS: '500' } }).lockTimeoutMs // 500
 * ```
 */
export function migrationSettings(options: MigrateOptions = {}): MigrationSettings {
  const env = options.env ?? process.env
  const setting = (key: keyof typeof LIMITS, name: string, fallback: number) =>
    numberSetting(options, key, name, fallback)
  return {
    lockWaitMs: setting('lockWaitMs', 'MIGRATION_LOCK_WAIT_MS', DEFAULT_LOCK_WAIT_MS),
    lockTimeoutMs: lockTimeoutSetting(options),
    statementTimeoutMs: setting('statementTimeoutMs', 'MIGRATION_STATEMENT_TIMEOUT_MS', 60_000),
    idleTimeoutMs: setting('idleTimeoutMs', 'MIGRATION_IDLE_TIMEOUT_MS', DEFAULT_IDLE_TIMEOUT_MS),
    tcpUserTimeoutMs: setting(
      'tcpUserTimeoutMs',
      'MIGRATION_TCP_USER_TIMEOUT_MS',
      DEFAULT_TCP_USER_TIMEOUT_MS,
    ),
    transactionTimeoutMs: setting(
      'transactionTimeoutMs',
      'MIGRATION_TRANSACTION_TIMEOUT_MS',
      300_000,
    ),
    lockAttempts: setting('lockAttempts', 'MIGRATION_LOCK_ATTEMPTS', DEFAULT_LOCK_ATTEMPTS),
    retryDelayMs: setting('retryDelayMs', 'MIGRATION_RETRY_DELAY_MS', DEFAULT_RETRY_DELAY_MS),
    allowDataLoss: allowDataLoss(options.allowDataLoss, env),
    log: options.log ?? ((line) => console.warn(line)),
    onMigration: options.onMigration ?? (() => {}),
    databaseVariable: migrationDatabaseVariable(env),
  }
}

/**
 * {@link MigrateOptions.lockTimeoutMs} alone, from the environment where not given, checked as
 * {@link migrationSettings} checks it: for a read of the history (migrationStatus), which needs
 * no other setting and refuses none.
 *
 * @example
 * ```ts
 * lockTimeoutSetting({ env: { MIGRATION_LOCK_TIMEOUT_MS: '500' } }) // 500
 * ```
 */
export function lockTimeoutSetting(
  options: Pick<MigrateOptions, 'lockTimeoutMs' | 'env'> = {},
): number {
  return numberSetting(
    options,
    'lockTimeoutMs',
    'MIGRATION_LOCK_TIMEOUT_MS',
    DEFAULT_LOCK_TIMEOUT_MS,
  )
}

/**
 * The setting `key`: the option where the app's code passed one (named as the option in a
 * refusal, and shown as a variable's value is), else the variable `name`, else `fallback`.
 */
function numberSetting(
  options: Pick<MigrateOptions, keyof typeof LIMITS | 'env'>,
  key: keyof typeof LIMITS,
  name: string,
  fallback: number,
): number {
  const given: unknown = options[key]
  if (given === undefined) {
    const advice = `Fix it or unset it for the default, ${fallback}.`
    return bounded(name, count(options.env ?? process.env, name, fallback), LIMITS[key], advice)
  }
  const subject = `The option ${key}`
  const advice = `Pass one in that range, or leave the option out for ${name} or the default, ${fallback}.`
  if (typeof given !== 'number') {
    const { min, max } = LIMITS[key]
    const shown = typeof given === 'string' ? describeArgument(given) : typeWords(given)
    throw new SettingError(
      `${subject} is ${shown}, expected a whole number from ${min} to ${max}. ${advice}`,
    )
  }
  return bounded(subject, given, LIMITS[key], advice)
}

/**
 * The range of each setting. PostgreSQL's timeouts are whole milliseconds in a 32-bit integer
 * (2147483647, about 24.8 days), and it reads 0 as "no limit": every timeout and the lock wait
 * start at 1, because each of them bounds a wait (`zeroIsNoLimit`). The idle timeout has a floor
 * of one second, below which the lock session's heartbeat could not keep up; so has the TCP user
 * timeout, below which a few packets lost in a row would end a sound connection. A migration is tried
 * at least once, and the first retry may follow at once.
 */
const LIMITS = {
  lockWaitMs: { min: 1, max: 2_147_483_647, zeroIsNoLimit: true },
  lockTimeoutMs: { min: 1, max: 2_147_483_647, zeroIsNoLimit: true },
  statementTimeoutMs: { min: 1, max: 2_147_483_647, zeroIsNoLimit: true },
  idleTimeoutMs: { min: 1_000, max: 2_147_483_647, zeroIsNoLimit: true },
  tcpUserTimeoutMs: { min: 1_000, max: 2_147_483_647, zeroIsNoLimit: true },
  transactionTimeoutMs: { min: 1, max: 2_147_483_647, zeroIsNoLimit: true },
  lockAttempts: { min: 1, max: 100, zeroIsNoLimit: false },
  retryDelayMs: { min: 0, max: 600_000, zeroIsNoLimit: false },
} as const

/** `value` of `subject` (a variable, or an option) where it is in range; else its refusal, ending with `advice`. */
function bounded(
  subject: string,
  value: number,
  { min, max, zeroIsNoLimit }: { min: number; max: number; zeroIsNoLimit: boolean },
  advice: string,
): number {
  if (value === 0 && zeroIsNoLimit) {
    throw new SettingError(
      `${subject} is 0, which would mean no bound at all: every wait of a migration run is bounded. ` +
        `It accepts a whole number from ${min} to ${max}. ${advice}`,
    )
  }
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SettingError(
      `${subject} is ${value}, outside what it accepts: a whole number from ${min} to ${max}. ${advice}`,
    )
  }
  return value
}

/**
 * The allowDataLoss option where given (a boolean: the string 'false' from untyped code is
 * truthy, and must not let a down drop data), else MIGRATION_ALLOW_DATA_LOSS.
 */
function allowDataLoss(given: unknown, env: NodeJS.ProcessEnv): boolean {
  if (given === undefined) return booleanSetting(env, 'MIGRATION_ALLOW_DATA_LOSS', false)
  if (typeof given === 'boolean') return given
  const shown = typeof given === 'string' ? describeArgument(given) : typeWords(given)
  throw new SettingError(
    `The option allowDataLoss is ${shown}, expected true or false. Pass a boolean, or leave the ` +
      'option out for MIGRATION_ALLOW_DATA_LOSS or the default, false.',
  )
}

/**
 * The variable `name` of `env`, a string or undefined: an `env` that code built (options.env)
 * may hold anything, and is told so by the variable's name.
 */
function variable(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value: unknown = env[name]
  if (value === undefined || typeof value === 'string') return value
  throw new SettingError(
    `${name} in options.env is ${typeWords(value)}, expected a string, as the environment holds: ` +
      `pass it as a string (${name}: '…'), or the option of the same setting instead.`,
  )
}

/** What `value` is, in words ("a number", "an object", "null"), for a refusal that does not show it. */
function typeWords(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  const type = typeof value
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

function count(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = variable(env, name)?.trim()
  if (value === undefined || value === '') return fallback
  if (!/^\d+$/.test(value)) {
    throw new SettingError(
      `${name} is ${describeArgument(value)}, expected a whole number of milliseconds (or of attempts). Fix it or unset it for the default, ${fallback}.`,
    )
  }
  return Number(value)
}

/**
 * Reads a true/false variable: `whenUnset` when it is unset or empty, and an error, ending with
 * `hint`, for any other value.
 *
 * @example
 * ```ts
 * booleanSetting({ AUTO_MIGRATE: 'false' }, 'AUTO_MIGRATE', true) // false
 * ```
 */
export function booleanSetting(
  env: NodeJS.ProcessEnv,
  name: string,
  whenUnset: boolean,
  hint?: string,
): boolean {
  const value = variable(env, name)?.trim().toLowerCase()
  if (value === undefined || value === '') return whenUnset
  if (value === 'true') return true
  if (value === 'false') return false
  throw new SettingError(
    `${name} is ${describeArgument(env[name]!)}, expected "true" or "false".${hint ? ` ${hint}` : ''}`,
  )
}
