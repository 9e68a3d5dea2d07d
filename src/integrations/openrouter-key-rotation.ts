import { setTimeout as sleep } from 'node:timers/promises'

import { type Kysely, sql } from 'kysely'

import { lesserTriggersSql } from '../connection/lesser-triggers.js'
import { errorCode, SQLSTATE } from '../connection/sql-state.js'
import { DEFAULT_IDLE_TIMEOUT_MS } from '../migrator/lock.js'
import { retryDelayMs } from '../migrator/retry-delay.js'
import {
  DEFAULT_LOCK_ATTEMPTS,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_RETRY_DELAY_MS,
} from '../migrator/settings.js'
import { asService, enterRequest } from '../supabase/request-context.js'
import type { DB } from '../types/database.js'
import {
  describeStoredKey,
  type IntegrationCipher,
  KeyDecryptionError,
} from '../secrets/integration-cipher.js'
import type { KeyFailureFields } from './openrouter-keys.js'
import { DEFAULT_ROTATION_BATCH_SIZE } from '../types/command-defaults.js'

export { DEFAULT_ROTATION_BATCH_SIZE } from '../types/command-defaults.js'

// Three parameters per row in the UPDATE, and PostgreSQL takes at most 65,535 per statement.
const MAX_ROTATION_BATCH_SIZE = 10_000

/** Options of {@link rotateOpenRouterKeys}. */
export interface KeyRotationOptions {
  /** Reads every configured secret, writes with the current one. */
  cipher: IntegrationCipher
  /**
   * The key id of the secret the app runs with, as the operator confirmed it (see
   * {@link IntegrationCipher.confirmCurrentKeyId}): nothing is read or written unless the
   * cipher's current secret has it.
   */
  keyId: string
  /** Rows read and re-encrypted per transaction, 1 to 10,000; 500 by default. */
  batchSize?: number
  /**
   * lock_timeout of each batch, in ms: a batch that meets a row held by another transaction gives
   * up its own row locks after this long, instead of holding them, and with them the app's writes
   * of those keys, until the holder ends. 2000 by default, as a migration's.
   */
  lockTimeoutMs?: number
  /** How many times a batch that hit lock_timeout is tried in all; 5 by default. */
  lockAttempts?: number
  /** The wait before a batch's first retry, in ms; it doubles on each retry. 1000 by default. */
  retryDelayMs?: number
  /** Stops the run after the batch in progress; the report then says `complete: false`. */
  signal?: AbortSignal
  /** Called after each committed batch with the totals so far. */
  onBatch?(progress: KeyRotationReport): void
}

/** What a rotation did, in rows. */
export interface KeyRotationReport {
  /** Rows read. */
  scanned: number
  /** Rows re-encrypted to the current secret and format. */
  rotated: number
  /** Rows that were current already (and decrypt), left alone. */
  alreadyCurrent: number
  /** Rows changed by someone else between the read and the update, left to their new value. */
  changedConcurrently: number
  /** Rows that no configured secret decrypts, left exactly as they were. */
  failed: KeyFailureFields[]
  /** False when the run was stopped before the last row. */
  complete: boolean
}

/**
 * Re-encrypts every stored OpenRouter key that is not yet in the current format with the current
 * secret, once that secret is proven to be the app's (`keyId`), as service_role, in batches of
 * `batchSize` rows taken in user_id order. Each batch is one transaction, and each row is updated only if it still holds the value that was read, so a
 * key stored meanwhile is never overwritten with an older one. A row that does not decrypt is
 * reported in `failed` and left untouched. Stopping at any point loses nothing: committed batches
 * stay rotated, and a new run skips them and goes on with the rest.
 *
 * Before changing INTEGRATION_ENCRYPTION_SECRET, keep the old value in
 * INTEGRATION_ENCRYPTION_SECRET_PREVIOUS until this has reported `failed: []`.
 *
 * @example
 * ```ts
 * const cipher = IntegrationCipher.fromEnv()
 * const report = await rotateOpenRouterKeys(db, { cipher, keyId: '1a2b3c4d' }) // the app's key id
 * // { scanned: 10000, rotated: 9998, alreadyCurrent: 2, changedConcurrently: 0, failed: [], complete: true }
 * ```
 */
export async function rotateOpenRouterKeys(
  db: Kysely<DB>,
  options: KeyRotationOptions,
): Promise<KeyRotationReport> {
  const { cipher, signal, onBatch } = options
  cipher.confirmCurrentKeyId(options.keyId)
  const batchSize = options.batchSize ?? DEFAULT_ROTATION_BATCH_SIZE
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_ROTATION_BATCH_SIZE) {
    throw new RangeError(
      `The rotation batch size must be a whole number from 1 to ${MAX_ROTATION_BATCH_SIZE}, not ${batchSize}.`,
    )
  }
  const report: KeyRotationReport = {
    scanned: 0,
    rotated: 0,
    alreadyCurrent: 0,
    changedConcurrently: 0,
    failed: [],
    complete: false,
  }
  for (const [name, value, min, max] of [
    ['lockTimeoutMs', options.lockTimeoutMs, 1, 2_147_483_647],
    ['lockAttempts', options.lockAttempts, 1, 100],
    ['retryDelayMs', options.retryDelayMs, 0, 600_000],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < min || value > max)) {
      throw new RangeError(
        `The rotation's ${name} must be a whole number from ${min} to ${max}, not ${value}.`,
      )
    }
  }
  const locking = {
    timeoutMs: options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
    attempts: options.lockAttempts ?? DEFAULT_LOCK_ATTEMPTS,
    retryDelayMs: options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
  }
  let after: string | undefined
  while (!signal?.aborted) {
    const batch = await rotateBatchWithRetries(db, cipher, after, batchSize, locking)
    report.scanned += batch.scanned
    report.rotated += batch.rotated
    report.alreadyCurrent += batch.alreadyCurrent
    report.changedConcurrently += batch.changedConcurrently
    report.failed.push(...batch.failed)
    if (batch.lastUserId === undefined) {
      report.complete = true
      break
    }
    after = batch.lastUserId
    onBatch?.({ ...report, failed: [...report.failed] })
    if (batch.scanned < batchSize) {
      report.complete = true
      break
    }
  }
  return report
}

interface BatchOutcome extends Omit<KeyRotationReport, 'complete'> {
  lastUserId: string | undefined
}

interface BatchLocking {
  timeoutMs: number
  attempts: number
  retryDelayMs: number
}

/**
 * One batch, tried again after a wait while it hits lock_timeout. A try that hit it was rolled
 * back as a whole, so a retry, or giving up, leaves every earlier batch rotated and this one as it
 * was.
 */
async function rotateBatchWithRetries(
  db: Kysely<DB>,
  cipher: IntegrationCipher,
  after: string | undefined,
  batchSize: number,
  locking: BatchLocking,
): Promise<BatchOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      // As asService, at READ COMMITTED whatever the database's default: the fenced check of
      // the batch's table refuses at any other level (review revo O5).
      return await db
        .transaction()
        .setIsolationLevel('read committed')
        .execute(async (trx) => {
          await enterRequest(trx, { role: 'service_role' })
          return rotateBatch(trx, cipher, after, batchSize, locking.timeoutMs)
        })
    } catch (error) {
      if (errorCode(error) !== SQLSTATE.lockNotAvailable) throw error
      if (attempt >= locking.attempts) {
        throw await batchLockError(db, after, batchSize, locking, error)
      }
      await sleep(retryDelayMs(locking.retryDelayMs, attempt))
    }
  }
}

/** The batch that could not lock its rows, with the rows held by others, and what to do. */
async function batchLockError(
  db: Kysely<DB>,
  after: string | undefined,
  batchSize: number,
  locking: BatchLocking,
  cause: unknown,
): Promise<Error> {
  let held = 'one of its rows'
  try {
    // The rows another transaction holds are the ones SKIP LOCKED leaves out; the rows it takes
    // are released at once, when this transaction ends.
    const { rows } = await asService(db, async (trx) => {
      await sql`SELECT set_config('lock_timeout', ${String(locking.timeoutMs)}, true)`.execute(trx)
      return sql<{ user_id: string }>`
        WITH batch AS (
          SELECT user_id FROM x402_user_openrouter_integrations
          WHERE ${after === undefined ? sql`true` : sql`user_id > ${after}::uuid`}
          ORDER BY user_id LIMIT ${batchSize}
        ), free AS (
          SELECT user_id FROM x402_user_openrouter_integrations
          WHERE user_id IN (SELECT user_id FROM batch)
          FOR NO KEY UPDATE SKIP LOCKED
        )
        SELECT user_id FROM batch WHERE user_id NOT IN (SELECT user_id FROM free) ORDER BY user_id
      `.execute(trx)
    })
    if (rows.length > 0)
      held = `the key row of ${rows.map((row) => `user ${row.user_id}`).join(', ')}`
  } catch {
    // The error below still says which batch stopped, and what to do.
  }
  return new Error(
    `The key rotation stopped: the batch of up to ${batchSize} keys ${after === undefined ? 'from the first user' : `after user ${after}`} ` +
      `could not lock its rows within lock_timeout (${locking.timeoutMs} ms), in ${locking.attempts} attempts: ` +
      `another transaction holds ${held} (an app request, or a session left open in a transaction; ` +
      'pg_stat_activity shows it, state "idle in transaction" or a long-running query). ' +
      'Every batch before it is rotated and readable; this batch wrote nothing. ' +
      'Run keys:rotate again once that transaction has ended: it goes on with the keys not yet rotated.',
    { cause },
  )
}

async function rotateBatch(
  trx: Kysely<DB>,
  cipher: IntegrationCipher,
  after: string | undefined,
  batchSize: number,
  lockTimeoutMs: number,
): Promise<BatchOutcome> {
  // A client that stops between the UPDATE and the COMMIT (a stopped process, a stalled network
  // path) would hold the batch's row locks for as long as its connection lives: the server ends
  // such a transaction, and the app's writes of those keys go on. A row held by another
  // transaction would make the UPDATE wait holding the rows it locked already, and the app's
  // writes of those keys with it: the batch gives up after lock_timeout instead.
  await sql`SELECT set_config('idle_in_transaction_session_timeout', ${String(DEFAULT_IDLE_TIMEOUT_MS)}, true),
    set_config('lock_timeout', ${String(lockTimeoutMs)}, true)`.execute(trx)
  // The UPDATE below runs the triggers of the table: none may be a lesser role's code.
  await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
  const rows = await trx
    .selectFrom('x402_user_openrouter_integrations')
    .select(['user_id', 'encrypted_api_key'])
    .$if(after !== undefined, (query) => query.where('user_id', '>', after!))
    .orderBy('user_id')
    .limit(batchSize)
    .execute()

  const outcome: BatchOutcome = {
    scanned: rows.length,
    rotated: 0,
    alreadyCurrent: 0,
    changedConcurrently: 0,
    failed: [],
    lastUserId: rows.at(-1)?.user_id,
  }
  const replacements: Array<{ userId: string; stored: string; encrypted: string }> = []
  for (const { user_id: userId, encrypted_api_key: stored } of rows) {
    try {
      // A current value is decrypted too, so that the report accounts for every unreadable key.
      const plaintext = cipher.decrypt(stored, userId)
      if (cipher.isCurrent(stored)) outcome.alreadyCurrent++
      else replacements.push({ userId, stored, encrypted: cipher.encrypt(plaintext, userId) })
    } catch (error) {
      if (!(error instanceof KeyDecryptionError)) throw error
      outcome.failed.push({ userId, ...describeStoredKey(stored), reason: error.reason })
    }
  }
  if (replacements.length > 0) {
    const values = replacements.map(
      ({ userId, stored, encrypted }) => sql`(${userId}::uuid, ${stored}, ${encrypted})`,
    )
    // Guarded by the value read: a row stored or rotated meanwhile keeps its newer value.
    const { rows: changed } = await sql<{ user_id: string }>`
      UPDATE x402_user_openrouter_integrations AS stored_key
      SET encrypted_api_key = replacement.encrypted
      FROM (VALUES ${sql.join(values)}) AS replacement (user_id, previous, encrypted)
      WHERE stored_key.user_id = replacement.user_id AND stored_key.encrypted_api_key = replacement.previous
      RETURNING stored_key.user_id
    `.execute(trx)
    outcome.rotated = changed.length
    outcome.changedConcurrently = replacements.length - changed.length
  }
  return outcome
}
