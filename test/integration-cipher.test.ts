import { createDecipheriv, createHash, hkdfSync, randomBytes, randomUUID } from 'node:crypto'
import { inspect } from 'node:util'

import { describe, expect, it } from 'vitest'

import { describeStoredKey, IntegrationCipher, KeyDecryptionError } from '../src/index.js'
import { encryptLegacy } from './support/legacy-cipher.js'

// The cipher of integration keys: the legacy format stays readable, new values are AES-256-GCM
// bound to their owner, and a changed or moved value is refused. Pure Node: no database.

const SECRET = 'current-secret-0123456789abcdef-0123456789'
const OLD_SECRET = 'the-secret-production-used-so-far'
const API_KEY = `sk-or-v1-${randomBytes(32).toString('hex')}`
const ALICE = randomUUID()
const BOB = randomUUID()

/** v2 as docs/integration-keys.md specifies it, decrypted independently of the module. */
function decryptV2AsDocumented(stored: string, secret: string, userId: string): string {
  const [version, keyId, nonce, ciphertext, tag] = stored.split(':') as [
    string,
    string,
    string,
    string,
    string,
  ]
  expect(version).toBe('v2')
  expect(keyId).toBe(
    Buffer.from(hkdfSync('sha256', secret, '', 'x402-jobs integration key v2 key id', 4)).toString(
      'hex',
    ),
  )
  const key = Buffer.from(
    hkdfSync('sha256', secret, '', 'x402-jobs integration key v2 aes-256-gcm', 32),
  )
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'hex'))
  decipher.setAAD(Buffer.from(userId, 'utf8'))
  decipher.setAuthTag(Buffer.from(tag, 'hex'))
  return Buffer.concat([
    decipher.update(Buffer.from(ciphertext, 'hex')),
    decipher.final(),
  ]).toString('utf8')
}

/** Flips one bit of the hex digit at `index` of `stored`. */
function flipAt(stored: string, index: number): string {
  const flipped = (Number.parseInt(stored[index]!, 16) ^ 1).toString(16)
  return stored.slice(0, index) + flipped + stored.slice(index + 1)
}

const cipher = new IntegrationCipher({ current: SECRET, previous: [] })

describe('the integration cipher', () => {
  it('encrypts to v2 with a fresh nonce each time, and decrypts its own output', () => {
    const first = cipher.encrypt(API_KEY, ALICE)
    const second = cipher.encrypt(API_KEY, ALICE)

    expect(first).toMatch(/^v2:[0-9a-f]{8}:[0-9a-f]{24}:[0-9a-f]+:[0-9a-f]{32}$/)
    expect(first.startsWith(`v2:${cipher.currentKeyId}:`)).toBe(true)
    expect(second).not.toBe(first)
    expect(cipher.decrypt(first, ALICE)).toBe(API_KEY)
    expect(cipher.decrypt(second, ALICE)).toBe(API_KEY)
    expect(cipher.decrypt(cipher.encrypt('ключ 🔑', ALICE), ALICE)).toBe('ключ 🔑')
  })

  it('writes the format docs/integration-keys.md documents, which an independent implementation reads', () => {
    expect(decryptV2AsDocumented(cipher.encrypt(API_KEY, ALICE), SECRET, ALICE)).toBe(API_KEY)
  })

  it('reads the legacy format <iv hex>:<ciphertext hex> with the current and with a previous secret', () => {
    const rotating = new IntegrationCipher({ current: SECRET, previous: [OLD_SECRET] })

    expect(cipher.decrypt(encryptLegacy(API_KEY, SECRET), ALICE)).toBe(API_KEY)
    expect(rotating.decrypt(encryptLegacy(API_KEY, OLD_SECRET), ALICE)).toBe(API_KEY)
    expect(rotating.decrypt(encryptLegacy(API_KEY, SECRET).toUpperCase(), ALICE)).toBe(API_KEY)
    expect(() => cipher.decrypt(encryptLegacy(API_KEY, OLD_SECRET), ALICE)).toThrow(
      /INTEGRATION_ENCRYPTION_SECRET_PREVIOUS/,
    )
  })

  it('reads v2 written with a previous secret only while that secret is configured', () => {
    const before = new IntegrationCipher({ current: OLD_SECRET.padEnd(32, '!'), previous: [] })
    const stored = before.encrypt(API_KEY, ALICE)

    expect(
      new IntegrationCipher({ current: SECRET, previous: [OLD_SECRET.padEnd(32, '!')] }).decrypt(
        stored,
        ALICE,
      ),
    ).toBe(API_KEY)
    expect(() => cipher.decrypt(stored, ALICE)).toThrow(
      expect.objectContaining({
        name: 'KeyDecryptionError',
        reason: expect.stringMatching(/secret that is not configured/),
      }),
    )
  })

  it('detects a change anywhere in a v2 value: nonce, ciphertext, tag, key id or format', () => {
    const stored = cipher.encrypt(API_KEY, ALICE)
    const nonceAt = stored.indexOf(':', 3) + 1
    const ciphertextAt = nonceAt + 25
    const tagAt = stored.length - 1

    for (const changed of [
      flipAt(stored, nonceAt),
      flipAt(stored, ciphertextAt),
      flipAt(stored, tagAt),
      flipAt(stored, 3),
      stored.slice(0, -2),
      `${stored}00`,
      stored.replace(/^v2/, 'v3'),
    ]) {
      expect(() => cipher.decrypt(changed, ALICE)).toThrow(KeyDecryptionError)
    }
    expect(cipher.decrypt(stored, ALICE)).toBe(API_KEY)
  })

  it('refuses a v2 value copied into another user’s row', () => {
    const alicesKey = cipher.encrypt(API_KEY, ALICE)

    expect(() => cipher.decrypt(alicesKey, BOB)).toThrow(
      expect.objectContaining({ reason: expect.stringMatching(/copied from another user’s row/) }),
    )
    // The uuid column prints ids in lower case: an id written in upper case is the same owner.
    expect(cipher.decrypt(cipher.encrypt(API_KEY, ALICE.toUpperCase()), ALICE)).toBe(API_KEY)
  })

  it('refuses a value that is not encrypted at all, and describes formats without decrypting', () => {
    expect(() => cipher.decrypt(API_KEY, ALICE)).toThrow(
      expect.objectContaining({ stored: { format: 'unknown' } }),
    )
    expect(describeStoredKey(cipher.encrypt(API_KEY, ALICE))).toEqual({
      format: 'v2',
      keyId: cipher.currentKeyId,
    })
    expect(describeStoredKey(encryptLegacy(API_KEY, SECRET))).toEqual({ format: 'legacy' })
    expect(describeStoredKey(API_KEY)).toEqual({ format: 'unknown' })
  })

  it('tells current values from those a rotation must rewrite', () => {
    const rotating = new IntegrationCipher({ current: SECRET, previous: [OLD_SECRET] })
    const withOldSecret = new IntegrationCipher({
      current: OLD_SECRET.padEnd(32, '!'),
      previous: [],
    })

    expect(rotating.isCurrent(cipher.encrypt(API_KEY, ALICE))).toBe(true)
    expect(rotating.isCurrent(withOldSecret.encrypt(API_KEY, ALICE))).toBe(false)
    expect(rotating.isCurrent(encryptLegacy(API_KEY, SECRET))).toBe(false)
  })

  it('never shows the API key, the secrets or the derived keys in its errors or when logged', () => {
    const rotating = new IntegrationCipher({ current: SECRET, previous: [OLD_SECRET] })
    const secretKeyHex = createHash('sha256').update(SECRET).digest('hex')
    const shown = [
      inspect(rotating, { showHidden: true, depth: null }),
      JSON.stringify(rotating),
      caught(() => rotating.encrypt(ALICE, API_KEY)), // arguments swapped by mistake
      caught(() => rotating.decrypt(flipAt(rotating.encrypt(API_KEY, ALICE), 40), ALICE)),
      caught(() => rotating.decrypt(API_KEY, ALICE)),
      caught(() => rotating.decrypt(rotating.encrypt(API_KEY, ALICE), BOB)),
    ].join('\n')

    expect(shown).toMatch(/must be a UUID/)
    for (const secret of [API_KEY, SECRET, OLD_SECRET, secretKeyHex])
      expect(shown).not.toContain(secret)
  })
})

describe('the secrets of the cipher', () => {
  const fromEnv = (env: NodeJS.ProcessEnv) => () => IntegrationCipher.fromEnv(env)

  it('are read from INTEGRATION_ENCRYPTION_SECRET and INTEGRATION_ENCRYPTION_SECRET_PREVIOUS', () => {
    const stored = new IntegrationCipher({
      current: OLD_SECRET.padEnd(32, '!'),
      previous: [],
    }).encrypt(API_KEY, ALICE)
    const fromBoth = IntegrationCipher.fromEnv({
      INTEGRATION_ENCRYPTION_SECRET: SECRET,
      INTEGRATION_ENCRYPTION_SECRET_PREVIOUS: OLD_SECRET.padEnd(32, '!'),
    })

    expect(fromBoth.currentKeyId).toBe(cipher.currentKeyId)
    expect(fromBoth.decrypt(stored, ALICE)).toBe(API_KEY)
  })

  it('refuses a missing, blank or short current secret, naming the variable and the fix', () => {
    expect(fromEnv({})).toThrow(
      /^INTEGRATION_ENCRYPTION_SECRET is not set: .*openssl rand -base64 32/,
    )
    expect(fromEnv({ INTEGRATION_ENCRYPTION_SECRET: '' })).toThrow(
      /^INTEGRATION_ENCRYPTION_SECRET is not set/,
    )
    expect(fromEnv({ INTEGRATION_ENCRYPTION_SECRET: '   ' })).toThrow(
      /^INTEGRATION_ENCRYPTION_SECRET is not set/,
    )
    expect(fromEnv({ INTEGRATION_ENCRYPTION_SECRET: 'too-short-secret' })).toThrow(
      /^INTEGRATION_ENCRYPTION_SECRET is 16 characters long; at least 32 are required\. .*INTEGRATION_ENCRYPTION_SECRET_PREVIOUS .*keys:rotate/,
    )
    expect(() => new IntegrationCipher({ current: 'too-short-secret', previous: [] })).toThrow(
      /at least 32/,
    )
  })

  it('refuses a blank previous secret, and accepts a short one so that it can be rotated away from', () => {
    expect(
      fromEnv({
        INTEGRATION_ENCRYPTION_SECRET: SECRET,
        INTEGRATION_ENCRYPTION_SECRET_PREVIOUS: ' ',
      }),
    ).toThrow(/^INTEGRATION_ENCRYPTION_SECRET_PREVIOUS is set but blank/)
    const rotating = IntegrationCipher.fromEnv({
      INTEGRATION_ENCRYPTION_SECRET: SECRET,
      INTEGRATION_ENCRYPTION_SECRET_PREVIOUS: 'short',
    })
    expect(rotating.decrypt(encryptLegacy(API_KEY, 'short'), ALICE)).toBe(API_KEY)
  })

  it('never puts a secret’s value in its error', () => {
    const short = 'short-but-secret-value'
    expect(caught(fromEnv({ INTEGRATION_ENCRYPTION_SECRET: short }))).not.toContain(short)
  })
})

function caught(run: () => unknown): string {
  try {
    run()
  } catch (error) {
    return inspect(error, { showHidden: true, depth: null })
  }
  throw new Error('expected the call to throw')
}
