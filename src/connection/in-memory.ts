/**
 * PGlite's name for a database that lives only in memory, as `dataDir` of createDb. In a module
 * of its own so that the app's type declarations reach it without PGlite's.
 *
 * @example
 * ```ts
 * const scratch = createDb({ dataDir: IN_MEMORY })
 * ```
 */
export const IN_MEMORY = 'memory://'
