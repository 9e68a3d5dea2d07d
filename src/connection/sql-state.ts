/** SQLSTATEs the module reacts to, by PostgreSQL's condition name. */
export const SQLSTATE = {
  undefinedTable: '42P01',
  undefinedColumn: '42703',
  lockNotAvailable: '55P03',
  deadlockDetected: '40P01',
  insufficientPrivilege: '42501',
  invalidParameterValue: '22023',
  undefinedObject: '42704',
  checkViolation: '23514',
  duplicateTable: '42P07',
  duplicateObject: '42710',
  duplicateColumn: '42701',
  raiseException: 'P0001',
} as const

/**
 * The `code` an error carries, whoever threw it: PostgreSQL's SQLSTATE from node-postgres or
 * PGlite, Node's errno code (`EEXIST`), or the module's own (`MIGRATION_LOCK_TIMEOUT`);
 * undefined where there is none.
 *
 * @example
 * ```ts
 * if (errorCode(caught) === SQLSTATE.undefinedTable) return []
 * ```
 */
export function errorCode(error: unknown): string | undefined {
  const code =
    typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined
  return typeof code === 'string' ? code : undefined
}

/**
 * Whether `code` is a PostgreSQL SQLSTATE (`23503`, `42P07`, `P0001`) rather than one of Node's
 * error codes (`ECONNREFUSED`, `EPERM`).
 *
 * @example
 * ```ts
 * isSqlState('23503') // true
 * isSqlState('EPERM') // false
 * ```
 */
export function isSqlState(code: unknown): code is string {
  return typeof code === 'string' && /^([0-9][0-9A-Z]|F0|HV|P0|XX)[0-9A-Z]{3}$/.test(code)
}

/**
 * For a `.catch` that passes over what the server refused (a statement answered with a SQLSTATE,
 * such as a missing privilege) and nothing else: a connection lost or left unanswered rethrows,
 * so that the work ends at the first bound it hits instead of waiting for the next one.
 *
 * @example
 * ```ts
 * await client.query('DROP ROLE x').catch(unlessRefused)
 * ```
 */
export function unlessRefused(error: unknown): undefined {
  if (isSqlState(errorCode(error))) return undefined
  throw error
}
