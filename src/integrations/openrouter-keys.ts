import { type Kysely, sql } from 'kysely'

import type { DB } from '../types/database.js'
import {
  describeStoredKey,
  type IntegrationCipher,
  KeyDecryptionError,
  type StoredKeyFormat,
} from '../secrets/integration-cipher.js'
import { ApiKeyConfigurationError } from './api-key-configuration-error.js'
import { assertUserId } from '../supabase/user-id.js'

// Every function here is a plain query on the `db` it is given, so that the caller chooses who runs
// it: asService(db, …) for the backend, asUser(db, userId, …) for a signed-in user, where row level
// security hides every other user's row. The plaintext key exists in Node only: it is encrypted
// before any query is built, so it never reaches the database, Kysely's log or a query error.

const TABLE = 'x402_user_openrouter_integrations'

/** What is logged about a stored key that cannot be decrypted. Never the key, never the stored value. */
export interface KeyFailureFields {
  userId: string
  format: StoredKeyFormat
  keyId?: string
  reason: string
}

/** Receives the detail of a decryption failure, which the caller only sees as {@link ApiKeyConfigurationError}. */
export type KeyFailureLog = (message: string, fields: KeyFailureFields) => void

/** The default {@link KeyFailureLog}: a key that no longer decrypts needs an operator, so it is not silent. */
export const logKeyFailureToConsole: KeyFailureLog = (message, fields) =>
  console.error(message, fields)

/**
 * Encrypts `apiKey` for `userId` and stores it, replacing the user's previous key. Call it once
 * OpenRouter has accepted the key (invalid keys are not stored): it records the key as valid and
 * verified now. Whether the integration is enabled is left as it was (enabled for a new row).
 *
 * @example
 * ```ts
 * await asService(db, (trx) => storeOpenRouterKey(trx, { userId, apiKey: verifiedKey, cipher }))
 * ```
 */
export async function storeOpenRouterKey(
  db: Kysely<DB>,
  { userId, apiKey, cipher }: { userId: string; apiKey: string; cipher: IntegrationCipher },
): Promise<void> {
  assertUserId(userId)
  const encrypted = cipher.encrypt(apiKey, userId)
  await db
    .insertInto(TABLE)
    .values({
      user_id: userId,
      encrypted_api_key: encrypted,
      is_valid: true,
      last_verified_at: sql`now()`,
    })
    .onConflict((conflict) =>
      conflict.column('user_id').doUpdateSet({
        encrypted_api_key: encrypted,
        is_valid: true,
        last_verified_at: sql`now()`,
      }),
    )
    .execute()
}

/** Why a user's OpenRouter key cannot be used for a call, or the key itself. */
export type OpenRouterKeyForExecution =
  | { status: 'ready'; apiKey: string }
  /** No row, or none that the requester may see. */
  | { status: 'missing' }
  /** The user switched the integration off (`is_enabled` false). */
  | { status: 'disabled' }
  /** OpenRouter rejected the key at its last check (`is_valid` false). */
  | { status: 'invalid' }

/**
 * Reads and decrypts `userId`'s key to call OpenRouter with, when the integration is enabled and
 * the key valid (a NULL in either column counts as true, their default). A key that cannot be
 * decrypted throws {@link ApiKeyConfigurationError}; its reason goes to `log` (console.error by
 * default) with the user id and the key's format, never with the key or the stored value.
 *
 * @example
 * ```ts
 * const key = await asService(db, (trx) => readOpenRouterKeyForExecution(trx, { userId: ownerId, cipher }))
 * if (key.status !== 'ready') return res.status(409).json({ error: `OpenRouter key ${key.status}` })
 * await callOpenRouter(key.apiKey, request)
 * ```
 */
export async function readOpenRouterKeyForExecution(
  db: Kysely<DB>,
  {
    userId,
    cipher,
    log = logKeyFailureToConsole,
  }: { userId: string; cipher: IntegrationCipher; log?: KeyFailureLog },
): Promise<OpenRouterKeyForExecution> {
  assertUserId(userId)
  const row = await db
    .selectFrom(TABLE)
    .select(['encrypted_api_key', 'is_enabled', 'is_valid'])
    .where('user_id', '=', userId)
    .executeTakeFirst()
  if (!row) return { status: 'missing' }
  if (row.is_enabled === false) return { status: 'disabled' }
  if (row.is_valid === false) return { status: 'invalid' }
  try {
    return { status: 'ready', apiKey: cipher.decrypt(row.encrypted_api_key, userId) }
  } catch (error) {
    if (!(error instanceof KeyDecryptionError)) throw error
    log('OpenRouter key cannot be decrypted', {
      userId,
      ...describeStoredKey(row.encrypted_api_key),
      reason: error.reason,
    })
    throw new ApiKeyConfigurationError()
  }
}

/**
 * Switches `userId`'s integration on or off. Returns whether a row (visible to the requester) was
 * changed.
 *
 * @example
 * ```ts
 * await asUser(db, userId, (trx) => setOpenRouterKeyEnabled(trx, userId, false)) // true
 * ```
 */
export async function setOpenRouterKeyEnabled(
  db: Kysely<DB>,
  userId: string,
  enabled: boolean,
): Promise<boolean> {
  assertUserId(userId)
  return updated(
    db
      .updateTable(TABLE)
      .set({ is_enabled: enabled })
      .where('user_id', '=', userId)
      .executeTakeFirst(),
  )
}

/**
 * Records that OpenRouter accepted `userId`'s key just now (`is_valid` true, `last_verified_at`
 * now). Returns whether a row was changed.
 *
 * @example
 * ```ts
 * if (await openRouterAccepts(apiKey)) await asService(db, (trx) => markOpenRouterKeyVerified(trx, userId))
 * ```
 */
export async function markOpenRouterKeyVerified(db: Kysely<DB>, userId: string): Promise<boolean> {
  return markChecked(db, userId, true)
}

/**
 * Records that OpenRouter rejected `userId`'s key just now (`is_valid` false, `last_verified_at`
 * now): {@link readOpenRouterKeyForExecution} answers `invalid` until a new key is stored or the
 * key is verified again. Returns whether a row was changed.
 *
 * @example
 * ```ts
 * if (response.status === 401) await asService(db, (trx) => markOpenRouterKeyInvalid(trx, userId))
 * ```
 */
export async function markOpenRouterKeyInvalid(db: Kysely<DB>, userId: string): Promise<boolean> {
  return markChecked(db, userId, false)
}

/**
 * Deletes `userId`'s key. Returns whether a row was deleted.
 *
 * @example
 * ```ts
 * await asUser(db, userId, (trx) => deleteOpenRouterKey(trx, userId))
 * ```
 */
export async function deleteOpenRouterKey(db: Kysely<DB>, userId: string): Promise<boolean> {
  assertUserId(userId)
  const result = await db.deleteFrom(TABLE).where('user_id', '=', userId).executeTakeFirst()
  return result.numDeletedRows > 0n
}

function markChecked(db: Kysely<DB>, userId: string, valid: boolean): Promise<boolean> {
  assertUserId(userId)
  return updated(
    db
      .updateTable(TABLE)
      .set({ is_valid: valid, last_verified_at: sql`now()` })
      .where('user_id', '=', userId)
      .executeTakeFirst(),
  )
}

async function updated(result: Promise<{ numUpdatedRows: bigint }>): Promise<boolean> {
  return (await result).numUpdatedRows > 0n
}
