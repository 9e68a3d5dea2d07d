/** A UUID in its text form, as auth.users.id holds it (any version, either case). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Thrown, before any query, when a function that takes a user id gets something else. The
 * message never repeats the value: a secret passed in the wrong argument (an API key, a token)
 * must not reach a log through the error meant to catch it.
 */
export class InvalidUserIdError extends Error {
  override readonly name = 'InvalidUserIdError'
  readonly code = 'INVALID_USER_ID'
}

/**
 * Checks that `userId` is a UUID, as auth.users.id is, before it reaches a query (where
 * PostgreSQL's error would quote it back). Throws {@link InvalidUserIdError}, which says what was
 * expected and not what was given.
 *
 * @example
 * ```ts
 * assertUserId(req.user.id) // passes a UUID through; throws for 'sk-or-…'
 * ```
 */
export function assertUserId(userId: unknown): asserts userId is string {
  if (typeof userId === 'string' && UUID.test(userId)) return
  const shape =
    typeof userId === 'string'
      ? `a string of ${userId.length} character(s)`
      : `a value of type ${userId === null ? 'null' : typeof userId}`
  throw new InvalidUserIdError(
    `The user id is not a UUID (it is ${shape}; the value is not shown, in case it is a secret). ` +
      'Pass the id of the auth user (auth.users.id, the JWT subject), never a key or a token.',
  )
}
