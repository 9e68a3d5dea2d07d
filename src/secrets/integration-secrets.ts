/** The environment variable that holds the secret new integration keys are encrypted with. */
export const INTEGRATION_ENCRYPTION_SECRET = 'INTEGRATION_ENCRYPTION_SECRET'

/**
 * The environment variable that holds the secret used before the current one, during a rotation:
 * keys encrypted with it stay readable until `npm run keys:rotate` has re-encrypted them.
 */
export const INTEGRATION_ENCRYPTION_SECRET_PREVIOUS = 'INTEGRATION_ENCRYPTION_SECRET_PREVIOUS'

/**
 * The shortest current secret accepted. 32 characters of `openssl rand -base64 32` carry about
 * 190 bits; a previous secret is exempt, so that a short legacy secret can be rotated away from.
 */
export const MIN_SECRET_LENGTH = 32

/** The secrets an {@link IntegrationCipher} works with: one to encrypt, any number to read. */
export interface IntegrationSecrets {
  /** Encrypts every new key; also tried first when reading. */
  current: string
  /** Older secrets, accepted for reading only. */
  previous: readonly string[]
}

/**
 * Reads and validates INTEGRATION_ENCRYPTION_SECRET and INTEGRATION_ENCRYPTION_SECRET_PREVIOUS.
 * A missing, blank or short current secret, or a blank previous one, is refused with an error
 * that names the variable and says what to do. The values never appear in an error.
 *
 * @example
 * ```ts
 * const secrets = readIntegrationSecrets(process.env)
 * // { current: '…', previous: [] }
 * ```
 */
export function readIntegrationSecrets(env: NodeJS.ProcessEnv = process.env): IntegrationSecrets {
  const current = env[INTEGRATION_ENCRYPTION_SECRET]
  const previous = env[INTEGRATION_ENCRYPTION_SECRET_PREVIOUS]
  return validateIntegrationSecrets({
    current: current ?? '',
    previous: previous === undefined ? [] : [previous],
  })
}

/**
 * Checks secrets given in code the way {@link readIntegrationSecrets} checks the environment, and
 * drops previous secrets equal to the current one.
 *
 * @example
 * ```ts
 * validateIntegrationSecrets({ current: 'short', previous: [] }) // throws: at least 32 characters
 * ```
 */
export function validateIntegrationSecrets(secrets: IntegrationSecrets): IntegrationSecrets {
  const { current } = secrets
  if (typeof current !== 'string' || current.trim() === '') {
    throw new Error(
      `${INTEGRATION_ENCRYPTION_SECRET} is not set: integration API keys cannot be encrypted or read without it. ` +
        `Set it to the secret the stored keys were encrypted with, or for a new deployment to a random value ` +
        `(openssl rand -base64 32).`,
    )
  }
  if (current.length < MIN_SECRET_LENGTH) {
    throw new Error(
      `${INTEGRATION_ENCRYPTION_SECRET} is ${current.length} characters long; at least ${MIN_SECRET_LENGTH} are required. ` +
        `Generate a new one (openssl rand -base64 32), move the current value to ${INTEGRATION_ENCRYPTION_SECRET_PREVIOUS} ` +
        `so that stored keys stay readable, and run npm run keys:rotate.`,
    )
  }
  secrets.previous.forEach((secret) => {
    if (typeof secret !== 'string' || secret.trim() === '') {
      throw new Error(
        `${INTEGRATION_ENCRYPTION_SECRET_PREVIOUS} is set but blank. ` +
          'Set it to the secret used before the current one, or unset it once npm run keys:rotate has finished.',
      )
    }
  })
  return {
    current,
    previous: [...new Set(secrets.previous)].filter((secret) => secret !== current),
  }
}
