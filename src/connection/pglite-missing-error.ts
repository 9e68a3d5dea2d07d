import { readFileSync } from 'node:fs'

import { DatabaseNotOpenedError } from './database-not-opened-error.js'
import { errorCode } from './sql-state.js'

/**
 * PGlite (@electric-sql/pglite, an optional peer dependency) is not installed where the module
 * needs it: for the embedded database, and for the scratch databases of the commands that
 * build a schema from the migrations (migrate:check, migrate:sql, migrate:baseline, db:codegen,
 * lint:sql, lint:locks). An app on a PostgreSQL server needs none of it.
 *
 * @example
 * ```ts
 * import('@electric-sql/pglite').catch((error) => { throw PgliteMissingError.from(error) ?? error })
 * ```
 */
export class PgliteMissingError extends DatabaseNotOpenedError {
  constructor() {
    super(
      `PGlite (${PGLITE}) is not installed: the embedded database and the scratch databases of ` +
        `the schema commands need it. Run \`npm install ${PGLITE}@${pgliteRange()}\`, or, for the ` +
        "app's own database, set DATABASE_URL to a PostgreSQL server.",
    )
    this.name = 'PgliteMissingError'
  }

  /**
   * A PgliteMissingError where `error` is the failure to load or resolve PGlite's package, else
   * undefined (any other failure, which the caller rethrows as it is).
   */
  static from(error: unknown): PgliteMissingError | undefined {
    const code = errorCode(error)
    const missing =
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
      String((error as Error).message).includes(PGLITE)
    return missing ? new PgliteMissingError() : undefined
  }
}

const PGLITE = '@electric-sql/pglite'

/** The PGlite versions this module works with: its package.json's peer range. */
function pgliteRange(): string {
  try {
    // Two folders up from src/connection/ and from dist/connection/ alike.
    const manifest = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      peerDependencies?: Record<string, string>
    }
    return manifest.peerDependencies?.[PGLITE] ?? 'latest'
  } catch {
    return 'latest'
  }
}
