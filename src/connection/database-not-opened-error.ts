/**
 * The embedded database was not opened, for the reason the message gives in full (its folder
 * cannot be made or is not private, it holds other files, another process holds it, PGlite is
 * not installed): nothing was read or written. A command says it as it is, not as a failure to
 * read the history or to run a migration.
 *
 * @example
 * ```ts
 * throw new DatabaseNotOpenedError('The embedded database folder … is open in process 12.')
 * ```
 */
export class DatabaseNotOpenedError extends Error {
  override name = 'DatabaseNotOpenedError'

  /** `error` as a DatabaseNotOpenedError with the same message (itself where it is one). */
  static of(error: unknown): DatabaseNotOpenedError {
    if (error instanceof DatabaseNotOpenedError) return error
    return new DatabaseNotOpenedError(error instanceof Error ? error.message : String(error), {
      cause: error,
    })
  }
}
