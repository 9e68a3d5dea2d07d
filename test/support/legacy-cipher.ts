import { createCipheriv, createHash, randomBytes } from 'node:crypto'

/**
 * Encrypts `plaintext` in the format every x402-jobs integration has written so far, independently
 * of the module: AES-256-CBC with a random 16-byte IV, key = SHA-256(`secret`), stored as
 * `<iv hex>:<ciphertext hex>`. Tests use it to produce the rows production already holds.
 *
 * @example
 * ```ts
 * await db.insertInto('x402_user_openrouter_integrations')
 *   .values({ user_id: userId, encrypted_api_key: encryptLegacy('sk-or-v1-…', secret) })
 *   .execute()
 * ```
 */
export function encryptLegacy(plaintext: string, secret: string): string {
  const iv = randomBytes(16)
  const cipher = createCipheriv('aes-256-cbc', createHash('sha256').update(secret).digest(), iv)
  return `${iv.toString('hex')}:${Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]).toString('hex')}`
}
