/** The message of {@link ApiKeyConfigurationError}, word for word as the app shows it. */
export const API_KEY_CONFIGURATION_ERROR_MESSAGE =
  'API key configuration error - contact resource owner'

/**
 * The one thing a caller (and through it the buyer of a resource) learns when a stored integration
 * key cannot be decrypted: the owner must fix their key. Why it failed goes to the log only, and the
 * error carries no cause, so that no detail of the key or of the secret travels with it.
 *
 * @example
 * ```ts
 * try {
 *   key = await asService(db, (trx) => readOpenRouterKeyForExecution(trx, { userId, cipher }))
 * } catch (error) {
 *   if (error instanceof ApiKeyConfigurationError) return res.status(502).json({ error: error.message })
 *   throw error
 * }
 * ```
 */
export class ApiKeyConfigurationError extends Error {
  override readonly name = 'ApiKeyConfigurationError'

  constructor() {
    super(API_KEY_CONFIGURATION_ERROR_MESSAGE)
  }
}
