import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'

import {
  type IntegrationSecrets,
  readIntegrationSecrets,
  validateIntegrationSecrets,
} from './integration-secrets.js'

/**
 * The formats a stored integration key can have:
 * - `legacy`: `<iv hex>:<ciphertext hex>`, AES-256-CBC with key SHA-256(secret), as every
 *   integration of x402-jobs wrote it so far. No authentication: a change is not detected.
 * - `v2`: `v2:<key id>:<nonce hex>:<ciphertext hex>:<tag hex>`, AES-256-GCM with a random 12-byte
 *   nonce, a 16-byte tag and the owner's user id as additional authenticated data.
 */
export type StoredKeyFormat = 'legacy' | 'v2' | 'unknown'

/** What can be said about a stored key without decrypting it; safe to log. */
export interface StoredKeyDescription {
  format: StoredKeyFormat
  /** For `v2`: the id of the secret it was encrypted with (see {@link IntegrationCipher.currentKeyId}). */
  keyId?: string
}

/**
 * A stored key that could not be decrypted, and why. Meant for logs: it never carries the stored
 * value or the plaintext. Callers facing users turn it into {@link ApiKeyConfigurationError}.
 */
export class KeyDecryptionError extends Error {
  override readonly name = 'KeyDecryptionError'

  constructor(
    readonly reason: string,
    readonly stored: StoredKeyDescription,
  ) {
    super(`Cannot decrypt the stored integration key (${describeFormat(stored)}): ${reason}`)
  }
}

const V2_PREFIX = 'v2'
const NONCE_BYTES = 12
const TAG_BYTES = 16
// HKDF "info" strings: the v2 key and its id are derived apart from the legacy SHA-256 key, so one
// secret never keys two algorithms, and the id reveals nothing about the key.
const V2_KEY_INFO = 'x402-jobs integration key v2 aes-256-gcm'
const V2_KEY_ID_INFO = 'x402-jobs integration key v2 key id'

/** A key id: 8 hexadecimal digits (see {@link IntegrationCipher.currentKeyId}). */
export const KEY_ID_PATTERN = /^[0-9a-f]{8}$/

const LEGACY_PATTERN = /^([0-9a-f]{32}):((?:[0-9a-f]{32})+)$/i
const V2_PATTERN = /^v2:([0-9a-f]{8}):([0-9a-f]{24}):((?:[0-9a-f]{2})*):([0-9a-f]{32})$/

interface DerivedKey {
  legacyKey: Buffer
  v2Key: Buffer
  keyId: string
}

/**
 * Encrypts integration API keys (OpenRouter's, and any other integration's) for storage, and
 * decrypts them. It writes `v2` (AES-256-GCM bound to the owner's user id) with the current secret,
 * and reads `v2` and `legacy` with the current secret and every previous one. The secrets and the
 * keys derived from them are private fields: logging the cipher shows none of them.
 *
 * @example
 * ```ts
 * const cipher = IntegrationCipher.fromEnv() // INTEGRATION_ENCRYPTION_SECRET[_PREVIOUS]
 * const stored = cipher.encrypt('sk-or-v1-…', userId) // 'v2:1a2b3c4d:…'
 * cipher.decrypt(stored, userId) // 'sk-or-v1-…'
 * ```
 */
export class IntegrationCipher {
  readonly #current: DerivedKey
  readonly #all: readonly DerivedKey[]

  constructor(secrets: IntegrationSecrets) {
    const valid = validateIntegrationSecrets(secrets)
    this.#current = deriveKey(valid.current)
    this.#all = [this.#current, ...valid.previous.map(deriveKey)]
  }

  /**
   * A cipher on INTEGRATION_ENCRYPTION_SECRET and INTEGRATION_ENCRYPTION_SECRET_PREVIOUS; throws a
   * message naming the variable when one is missing or unusable.
   *
   * @example
   * ```ts
   * const cipher = IntegrationCipher.fromEnv({ INTEGRATION_ENCRYPTION_SECRET: secret })
   * ```
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): IntegrationCipher {
    return new IntegrationCipher(readIntegrationSecrets(env))
  }

  /**
   * The id of the current secret, as it appears in `v2:<key id>:…`: 8 hex digits derived from the
   * secret with HKDF, which identify it without revealing it.
   *
   * @example
   * ```ts
   * cipher.currentKeyId // '1a2b3c4d'
   * ```
   */
  get currentKeyId(): string {
    return this.#current.keyId
  }

  /**
   * Throws unless the current secret's key id is `keyId`: the proof, before anything is written
   * with the current secret, that it is the secret the app runs with and not a typo of it. The
   * key id comes from the app (its {@link currentKeyId}, or the `<key id>` of `v2:<key id>:…` in
   * a key it stored), never from the secret being checked.
   *
   * @example
   * ```ts
   * cipher.confirmCurrentKeyId('1a2b3c4d') // throws where the current secret's id is another
   * ```
   */
  confirmCurrentKeyId(keyId: string): void {
    if (keyId === this.#current.keyId) return
    // The refused secret's own key id is never shown: confirmed next time, it would pass this check
    // and let a secret the app does not have re-encrypt every key.
    throw new Error(
      `INTEGRATION_ENCRYPTION_SECRET does not match the confirmed key id ${KEY_ID_PATTERN.test(keyId) ? keyId : '(the value given)'}: ` +
        'it is not the secret the app runs with (a typo in it?). Nothing was written. ' +
        'Set INTEGRATION_ENCRYPTION_SECRET to the secret the app runs with and run again. The key id to confirm is the one ' +
        'the app reports for its secret: its IntegrationCipher.currentKeyId, or the <key id> of v2:<key id>:… in a key it ' +
        'stored with that secret (docs/integration-keys.md), never one derived from the secret given here.',
    )
  }

  /**
   * Encrypts `plaintext` for the row of `userId`, in the `v2` format with the current secret.
   * The result decrypts only with the same user id.
   *
   * @example
   * ```ts
   * await db.insertInto('x402_user_openrouter_integrations')
   *   .values({ user_id: userId, encrypted_api_key: cipher.encrypt(apiKey, userId) })
   *   .execute()
   * ```
   */
  encrypt(plaintext: string, userId: string): string {
    if (typeof plaintext !== 'string' || plaintext === '') {
      throw new TypeError('The API key to encrypt must be a non-empty string.')
    }
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#current.v2Key, nonce, {
      authTagLength: TAG_BYTES,
    })
    cipher.setAAD(ownerData(userId))
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    const tag = cipher.getAuthTag()
    return [
      V2_PREFIX,
      this.#current.keyId,
      nonce.toString('hex'),
      ciphertext.toString('hex'),
      tag.toString('hex'),
    ].join(':')
  }

  /**
   * Decrypts a stored key of the row of `userId`, in either format, with whichever configured
   * secret it was encrypted with. Throws {@link KeyDecryptionError} when the value was changed,
   * was encrypted for another user, or no configured secret opens it. A `legacy` value has no
   * owner binding and no tag: only a change that breaks its padding or its UTF-8 is detected.
   *
   * @example
   * ```ts
   * const apiKey = cipher.decrypt(row.encrypted_api_key, row.user_id)
   * ```
   */
  decrypt(stored: string, userId: string): string {
    const owner = ownerData(userId)
    const v2 = typeof stored === 'string' ? V2_PATTERN.exec(stored) : null
    if (v2) return this.#decryptV2(v2, owner)
    const legacy = typeof stored === 'string' ? LEGACY_PATTERN.exec(stored) : null
    if (legacy) return this.#decryptLegacy(legacy)
    throw new KeyDecryptionError(
      'the value is neither v2:<key id>:<nonce>:<ciphertext>:<tag> nor <iv hex>:<ciphertext hex>; it was changed or never encrypted',
      { format: 'unknown' },
    )
  }

  /**
   * Whether `stored` is already in the current format with the current secret, so that a rotation
   * can leave it alone. It looks at the prefix only; {@link decrypt} is what verifies a value.
   *
   * @example
   * ```ts
   * cipher.isCurrent(cipher.encrypt(apiKey, userId)) // true
   * ```
   */
  isCurrent(stored: string): boolean {
    return stored.startsWith(`${V2_PREFIX}:${this.#current.keyId}:`) && V2_PATTERN.test(stored)
  }

  #decryptV2([, keyId, nonce, ciphertext, tag]: RegExpExecArray, owner: Buffer): string {
    const stored: StoredKeyDescription = { format: 'v2', keyId: keyId! }
    const candidates = this.#all.filter((key) => key.keyId === keyId)
    if (candidates.length === 0) {
      throw new KeyDecryptionError(
        'it was encrypted with a secret that is not configured; set INTEGRATION_ENCRYPTION_SECRET_PREVIOUS to that secret',
        stored,
      )
    }
    for (const key of candidates) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.v2Key, Buffer.from(nonce!, 'hex'), {
          authTagLength: TAG_BYTES,
        })
        decipher.setAAD(owner)
        decipher.setAuthTag(Buffer.from(tag!, 'hex'))
        return utf8.decode(
          Buffer.concat([decipher.update(Buffer.from(ciphertext!, 'hex')), decipher.final()]),
        )
      } catch {
        // Wrong tag: another candidate (a key id shared by chance) may still open it.
      }
    }
    throw new KeyDecryptionError(
      'its authentication tag does not match: the value was changed, or it was copied from another user’s row',
      stored,
    )
  }

  #decryptLegacy([, iv, ciphertext]: RegExpExecArray): string {
    for (const key of this.#all) {
      try {
        const decipher = createDecipheriv('aes-256-cbc', key.legacyKey, Buffer.from(iv!, 'hex'))
        return utf8.decode(
          Buffer.concat([decipher.update(Buffer.from(ciphertext!, 'hex')), decipher.final()]),
        )
      } catch {
        // Bad padding or bytes that are not text: not this secret's.
      }
    }
    throw new KeyDecryptionError(
      'no configured secret decrypts it: it was encrypted with another INTEGRATION_ENCRYPTION_SECRET, or changed; ' +
        'set INTEGRATION_ENCRYPTION_SECRET_PREVIOUS to the secret it was written with',
      { format: 'legacy' },
    )
  }
}

/**
 * Says which format a stored key has, and for `v2` which secret, without decrypting it: what a
 * log may say about a key.
 *
 * @example
 * ```ts
 * describeStoredKey('v2:1a2b3c4d:…') // { format: 'v2', keyId: '1a2b3c4d' }
 * ```
 */
export function describeStoredKey(stored: string): StoredKeyDescription {
  const v2 = V2_PATTERN.exec(stored)
  if (v2) return { format: 'v2', keyId: v2[1]! }
  return { format: LEGACY_PATTERN.test(stored) ? 'legacy' : 'unknown' }
}

function deriveKey(secret: string): DerivedKey {
  return {
    legacyKey: createHash('sha256').update(secret, 'utf8').digest(),
    v2Key: Buffer.from(hkdfSync('sha256', secret, '', V2_KEY_INFO, 32)),
    keyId: Buffer.from(hkdfSync('sha256', secret, '', V2_KEY_ID_INFO, 4)).toString('hex'),
  }
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

// The owner is bound as PostgreSQL prints a uuid, in lower case: an id given in upper case must
// still match the row it comes back from.
function ownerData(userId: string): Buffer {
  if (typeof userId !== 'string' || !UUID_PATTERN.test(userId)) {
    // The value is not echoed: swapped arguments would put the API key in the message.
    throw new TypeError(
      'The user id an integration key belongs to must be a UUID (auth.users.id) such as ' +
        '00000000-0000-4000-8000-000000000000. Check the order of the arguments: the key first, the user id second.',
    )
  }
  return Buffer.from(userId.toLowerCase(), 'utf8')
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function describeFormat(stored: StoredKeyDescription): string {
  return stored.keyId
    ? `format ${stored.format}, key id ${stored.keyId}`
    : `format ${stored.format}`
}
