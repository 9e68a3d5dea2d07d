import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

import type { Kysely } from 'kysely'
import { describe, expect, it } from 'vitest'

import { createUser } from './support/fixtures.js'
import { attemptAs } from './support/attempt-as.js'
import { targetsAndNames } from './support/openrouter-names.js'
import { useTestDatabase } from './support/test-database.js'

// Plan truth 1: OpenRouter API keys can be stored encrypted per user; at 005 in the plan's
// user_openrouter_integrations, and at the newest migration in production's
// x402_user_openrouter_integrations.

const SECRET = 'test-integration-encryption-secret'

/** The format every integration shares: AES-256-CBC, key = SHA-256(secret), `<iv hex>:<ct hex>`. */
function encryptLegacy(plaintext: string): string {
  const iv = randomBytes(16)
  const cipher = createCipheriv('aes-256-cbc', createHash('sha256').update(SECRET).digest(), iv)
  return `${iv.toString('hex')}:${Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]).toString('hex')}`
}

function decryptLegacy(stored: string): string {
  const [iv, ciphertext] = stored.split(':') as [string, string]
  const decipher = createDecipheriv(
    'aes-256-cbc',
    createHash('sha256').update(SECRET).digest(),
    Buffer.from(iv, 'hex'),
  )
  return Buffer.concat([
    decipher.update(Buffer.from(ciphertext, 'hex')),
    decipher.final(),
  ]).toString('utf8')
}

describe.each(targetsAndNames)(
  'storing encrypted OpenRouter keys on %s, at %s',
  (target, _at, names) => {
    const database = useTestDatabase(target, names.at)

    it('stores one encrypted key per user, with the documented defaults, readable back', async () => {
      const db = database.db as Kysely<any>
      const userId = await createUser(db)
      const encrypted = encryptLegacy('sk-or-v1-0123456789abcdef')

      await db
        .insertInto(names.keys)
        .values({ user_id: userId, encrypted_api_key: encrypted })
        .execute()

      const row = await db
        .selectFrom(names.keys)
        .selectAll()
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow()
      expect(row.encrypted_api_key).toBe(encrypted)
      expect(decryptLegacy(row.encrypted_api_key)).toBe('sk-or-v1-0123456789abcdef')
      expect(row).toMatchObject({ is_valid: true, is_enabled: true, last_verified_at: null })
      expect(row.created_at).toBeInstanceOf(Date)
      expect(row.updated_at).toBeInstanceOf(Date)
    })

    it('stores the key as the backend does (service_role) and as the signed-in user does', async () => {
      const db = database.db as Kysely<any>
      const viaService = await createUser(db)
      const viaUser = await createUser(db)

      const asService = await attemptAs(db, { role: 'service_role' }, (trx) =>
        (trx as Kysely<any>)
          .insertInto(names.keys)
          .values({ user_id: viaService, encrypted_api_key: encryptLegacy('sk-or-service') })
          .returning('user_id')
          .execute(),
      )
      const asUser = await attemptAs(db, { role: 'authenticated', sub: viaUser }, (trx) =>
        (trx as Kysely<any>)
          .insertInto(names.keys)
          .values({ user_id: viaUser, encrypted_api_key: encryptLegacy('sk-or-user') })
          .returning('user_id')
          .execute(),
      )

      expect(asService).toEqual({ ok: true, value: [{ user_id: viaService }] })
      expect(asUser).toEqual({ ok: true, value: [{ user_id: viaUser }] })
    })

    it('keeps one row per user: a second key for the same user is a conflict, not a second row', async () => {
      const db = database.db as Kysely<any>
      const userId = await createUser(db)
      await db
        .insertInto(names.keys)
        .values({ user_id: userId, encrypted_api_key: encryptLegacy('first') })
        .execute()

      await expect(
        db
          .insertInto(names.keys)
          .values({ user_id: userId, encrypted_api_key: encryptLegacy('second') })
          .execute(),
      ).rejects.toMatchObject({ code: '23505' })

      const replacement = encryptLegacy('replacement')
      await db
        .insertInto(names.keys)
        .values({ user_id: userId, encrypted_api_key: replacement })
        .onConflict((oc) =>
          oc.column('user_id').doUpdateSet({ encrypted_api_key: replacement, is_valid: true }),
        )
        .execute()
      const rows = await db
        .selectFrom(names.keys)
        .select('encrypted_api_key')
        .where('user_id', '=', userId)
        .execute()
      expect(rows.map((row) => decryptLegacy(row.encrypted_api_key))).toEqual(['replacement'])
    })
  },
)
