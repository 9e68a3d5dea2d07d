import { randomBytes } from 'node:crypto'

import { beforeAll, describe, expect, it } from 'vitest'

import {
  asService,
  asUser,
  deleteOpenRouterKey,
  IntegrationCipher,
  type KeyFailureFields,
  markOpenRouterKeyInvalid,
  markOpenRouterKeyVerified,
  readOpenRouterKeyForExecution,
  setOpenRouterKeyEnabled,
  storeOpenRouterKey,
} from '../src/index.js'
import { createUser } from './support/fixtures.js'
import { encryptLegacy } from './support/legacy-cipher.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Typed access to OpenRouter keys, run as the backend (service_role) and as signed-in users, with
// row level security applying for real.

const SECRET = 'access-test-secret-0123456789abcdef'
const cipher = new IntegrationCipher({ current: SECRET, previous: [] })
const newApiKey = () => `sk-or-v1-${randomBytes(32).toString('hex')}`

describe.each(testTargets)('OpenRouter keys through the access helpers on %s', (target) => {
  const database = useTestDatabase(target)
  const logged: Array<[string, KeyFailureFields]> = []
  const log = (message: string, fields: KeyFailureFields) => logged.push([message, fields])

  const readForExecution = (userId: string) =>
    asService(database.db, (trx) => readOpenRouterKeyForExecution(trx, { userId, cipher, log }))
  const storedRow = (userId: string) =>
    database.db
      .selectFrom('x402_user_openrouter_integrations')
      .selectAll()
      .where('user_id', '=', userId)
      .executeTakeFirst()

  it('stores a verified key encrypted, as valid and verified now, and reads it back for execution', async () => {
    const userId = await createUser(database.db)
    const apiKey = newApiKey()

    await asService(database.db, (trx) => storeOpenRouterKey(trx, { userId, apiKey, cipher }))

    const row = await storedRow(userId)
    expect(row?.encrypted_api_key).toMatch(new RegExp(`^v2:${cipher.currentKeyId}:`))
    expect(row).toMatchObject({ is_valid: true, is_enabled: true })
    expect(Date.now() - row!.last_verified_at!.getTime()).toBeLessThan(60_000)
    expect(await readForExecution(userId)).toEqual({ status: 'ready', apiKey })
  })

  it('replaces a key, keeping whether the integration is enabled, and making it valid again', async () => {
    const userId = await createUser(database.db)
    await asService(database.db, (trx) =>
      storeOpenRouterKey(trx, { userId, apiKey: newApiKey(), cipher }),
    )
    await asService(database.db, async (trx) => {
      await setOpenRouterKeyEnabled(trx, userId, false)
      await markOpenRouterKeyInvalid(trx, userId)
    })
    const replacement = newApiKey()

    await asService(database.db, (trx) =>
      storeOpenRouterKey(trx, { userId, apiKey: replacement, cipher }),
    )

    expect(await storedRow(userId)).toMatchObject({ is_enabled: false, is_valid: true })
    await asService(database.db, (trx) => setOpenRouterKeyEnabled(trx, userId, true))
    expect(await readForExecution(userId)).toEqual({ status: 'ready', apiKey: replacement })
  })

  it('reads a key stored in the legacy format before this module existed', async () => {
    const userId = await createUser(database.db)
    const apiKey = newApiKey()
    await database.db
      .insertInto('x402_user_openrouter_integrations')
      .values({ user_id: userId, encrypted_api_key: encryptLegacy(apiKey, SECRET) })
      .execute()

    expect(await readForExecution(userId)).toEqual({ status: 'ready', apiKey })
  })

  it('answers missing, disabled and invalid without decrypting, and ready again once verified', async () => {
    const userId = await createUser(database.db)
    expect(await readForExecution(userId)).toEqual({ status: 'missing' })

    await asService(database.db, (trx) =>
      storeOpenRouterKey(trx, { userId, apiKey: newApiKey(), cipher }),
    )
    expect(await asService(database.db, (trx) => setOpenRouterKeyEnabled(trx, userId, false))).toBe(
      true,
    )
    expect(await readForExecution(userId)).toEqual({ status: 'disabled' })

    await asService(database.db, (trx) => setOpenRouterKeyEnabled(trx, userId, true))
    const before = (await storedRow(userId))!.last_verified_at!
    expect(await asService(database.db, (trx) => markOpenRouterKeyInvalid(trx, userId))).toBe(true)
    const invalid = await storedRow(userId)
    expect(invalid?.is_valid).toBe(false)
    expect(invalid!.last_verified_at!.getTime()).toBeGreaterThan(before.getTime())
    expect(await readForExecution(userId)).toEqual({ status: 'invalid' })

    expect(await asService(database.db, (trx) => markOpenRouterKeyVerified(trx, userId))).toBe(true)
    expect((await readForExecution(userId)).status).toBe('ready')
  })

  it('deletes a key, and says whether there was one', async () => {
    const userId = await createUser(database.db)
    await asService(database.db, (trx) =>
      storeOpenRouterKey(trx, { userId, apiKey: newApiKey(), cipher }),
    )

    expect(await asService(database.db, (trx) => deleteOpenRouterKey(trx, userId))).toBe(true)
    expect(await asService(database.db, (trx) => deleteOpenRouterKey(trx, userId))).toBe(false)
    expect(await storedRow(userId)).toBeUndefined()
  })

  describe('as signed-in users', () => {
    let alice: string
    let bob: string
    let bobsKey: string

    beforeAll(async () => {
      alice = await createUser(database.db)
      bob = await createUser(database.db)
      bobsKey = newApiKey()
      await asService(database.db, async (trx) => {
        await storeOpenRouterKey(trx, { userId: alice, apiKey: newApiKey(), cipher })
        await storeOpenRouterKey(trx, { userId: bob, apiKey: bobsKey, cipher })
      })
    })

    it('a user manages their own key', async () => {
      const replacement = newApiKey()
      await asUser(database.db, alice, async (trx) => {
        expect(await setOpenRouterKeyEnabled(trx, alice, false)).toBe(true)
        expect(await setOpenRouterKeyEnabled(trx, alice, true)).toBe(true)
        await storeOpenRouterKey(trx, { userId: alice, apiKey: replacement, cipher })
      })
      expect(
        await asUser(database.db, alice, (trx) =>
          readOpenRouterKeyForExecution(trx, { userId: alice, cipher, log }),
        ),
      ).toEqual({
        status: 'ready',
        apiKey: replacement,
      })
    })

    it('a user cannot read, change or delete another user’s key', async () => {
      const bobsRow = await storedRow(bob)

      const asAlice = await asUser(database.db, alice, async (trx) => ({
        read: await readOpenRouterKeyForExecution(trx, { userId: bob, cipher, log }),
        disabled: await setOpenRouterKeyEnabled(trx, bob, false),
        invalidated: await markOpenRouterKeyInvalid(trx, bob),
        verified: await markOpenRouterKeyVerified(trx, bob),
        deleted: await deleteOpenRouterKey(trx, bob),
      }))
      const overwrite = asUser(database.db, alice, (trx) =>
        storeOpenRouterKey(trx, { userId: bob, apiKey: newApiKey(), cipher }),
      )

      expect(asAlice).toEqual({
        read: { status: 'missing' },
        disabled: false,
        invalidated: false,
        verified: false,
        deleted: false,
      })
      await expect(overwrite).rejects.toMatchObject({ name: 'QueryError', code: '42501' })
      expect(await storedRow(bob)).toEqual(bobsRow)
      expect(await readForExecution(bob)).toEqual({ status: 'ready', apiKey: bobsKey })
    })
  })

  describe('a key that cannot be decrypted', () => {
    it('reaches the caller as the configuration error only, with the reason in the log', async () => {
      const owner = await createUser(database.db)
      const thief = await createUser(database.db)
      await asService(database.db, (trx) =>
        storeOpenRouterKey(trx, { userId: owner, apiKey: newApiKey(), cipher }),
      )
      // Someone with write access copies the owner's ciphertext into their own row.
      const { encrypted_api_key: copied } = (await storedRow(owner))!
      await database.db
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: thief, encrypted_api_key: copied })
        .execute()
      logged.length = 0

      const attempt = readForExecution(thief).catch((error: unknown) => error)

      const error = (await attempt) as Error
      expect(error).toMatchObject({
        name: 'ApiKeyConfigurationError',
        message: 'API key configuration error - contact resource owner',
      })
      expect(error.cause).toBeUndefined()
      expect(logged).toEqual([
        [
          'OpenRouter key cannot be decrypted',
          {
            userId: thief,
            format: 'v2',
            keyId: cipher.currentKeyId,
            reason: expect.stringMatching(/copied from another user’s row/),
          },
        ],
      ])
    })

    it('is refused when its stored value was changed, and when its secret is not configured', async () => {
      const tampered = await createUser(database.db)
      const otherSecret = await createUser(database.db)
      await asService(database.db, (trx) =>
        storeOpenRouterKey(trx, { userId: tampered, apiKey: newApiKey(), cipher }),
      )
      const stored = (await storedRow(tampered))!.encrypted_api_key
      const lastDigit = stored.at(-1) === '0' ? '1' : '0'
      await database.db
        .updateTable('x402_user_openrouter_integrations')
        .set({ encrypted_api_key: stored.slice(0, -1) + lastDigit })
        .where('user_id', '=', tampered)
        .execute()
      const elsewhere = new IntegrationCipher({
        current: 'a-secret-this-deployment-does-not-have',
        previous: [],
      })
      await asService(database.db, (trx) =>
        storeOpenRouterKey(trx, { userId: otherSecret, apiKey: newApiKey(), cipher: elsewhere }),
      )
      logged.length = 0

      await expect(readForExecution(tampered)).rejects.toThrow(
        /^API key configuration error - contact resource owner$/,
      )
      await expect(readForExecution(otherSecret)).rejects.toThrow(
        /^API key configuration error - contact resource owner$/,
      )
      expect(logged.map(([, fields]) => fields.reason)).toEqual([
        expect.stringMatching(/authentication tag does not match/),
        expect.stringMatching(/secret that is not configured/),
      ])
    })
  })
})
