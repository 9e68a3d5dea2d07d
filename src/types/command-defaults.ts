/**
 * The values that a command's `--help` shows and the library uses too, kept in a module that
 * imports nothing: the help is printed before Kysely, pg or the migrations are loaded.
 *
 * @example
 * ```ts
 * `rows per transaction (default ${DEFAULT_ROTATION_BATCH_SIZE})`
 * ```
 */

/** Where the committed access matrix lives, relative to the package root (`db:access`). */
export const ACCESS_MATRIX_FILE = 'docs/access-matrix.md'

/** Rows per batch of a key rotation when none is given (`keys:rotate`): one short transaction each. */
export const DEFAULT_ROTATION_BATCH_SIZE = 500
