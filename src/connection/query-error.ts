import { CHECKED_VALUES } from '../types/allowed-values.js'
import { errorCode, isSqlState } from './sql-state.js'

/**
 * The fields that both node-postgres and PGlite put on an error PostgreSQL reported.
 */
interface PostgresErrorFields {
  code: string
  message: string
  detail?: string
  hint?: string
  schema?: string
  table?: string
  column?: string
  constraint?: string
}

/**
 * An error PostgreSQL reported for a query, with a message that says what was wrong and what to
 * do. `code` is PostgreSQL's SQLSTATE (for example `23503`); `detail`, `table`, `column` and
 * `constraint` are PostgreSQL's own fields, and `cause` is the driver's original error.
 *
 * @example
 * ```ts
 * try {
 *   await db.insertInto('x402_resources').values(resource).execute()
 * } catch (error) {
 *   if (error instanceof QueryError && error.code === '23514') return badRequest(error.message)
 *   throw error
 * }
 * ```
 */
export class QueryError extends Error {
  override readonly name = 'QueryError'
  readonly code: string
  readonly detail: string | undefined
  readonly table: string | undefined
  readonly column: string | undefined
  readonly constraint: string | undefined

  constructor(fields: PostgresErrorFields, cause: unknown) {
    super(describe(fields), { cause })
    this.code = fields.code
    this.detail = fields.detail
    this.table = fields.table
    this.column = fields.column
    this.constraint = fields.constraint
  }
}

/**
 * Returns a {@link QueryError} for an error that carries a PostgreSQL SQLSTATE, and the error
 * itself otherwise (a lost connection, a bug). Applying it twice changes nothing.
 *
 * @example
 * ```ts
 * const error = toQueryError(caught) // QueryError when PostgreSQL reported it
 * ```
 */
export function toQueryError(error: unknown): unknown {
  if (error instanceof QueryError || !isPostgresError(error)) return error
  return new QueryError(error, error)
}

function isPostgresError(error: unknown): error is PostgresErrorFields {
  return error instanceof Error && isSqlState(errorCode(error))
}

function describe(error: PostgresErrorFields): string {
  const where = error.table ? ` on table "${error.table}"` : ''
  const state = `SQLSTATE ${error.code}`
  switch (error.code) {
    case '23502':
      return (
        `Missing value: column "${error.column ?? '?'}"${where} must not be null (${state}). ` +
        `Provide a value for "${error.column ?? '?'}".`
      )
    case '23503':
      return /still referenced/.test(error.detail ?? '')
        ? `Row still in use: ${error.detail} (constraint "${error.constraint}", ${state}). ` +
            'Delete or re-point the rows that reference it first.'
        : `Unknown reference: ${error.detail ?? error.message} (constraint "${error.constraint}"${where}, ${state}). ` +
            'Use the id of a row that exists, or create that row first.'
    case '23505':
      return `Duplicate: ${error.detail ?? error.message} (constraint "${error.constraint}"${where}, ${state}). Update the existing row instead.`
    case '23514': {
      // PostgreSQL's detail repeats the whole row, which may hold secrets: it stays in `detail`.
      const allowed = error.constraint ? CHECKED_VALUES[error.constraint] : undefined
      if (allowed) {
        return (
          `Value not allowed: "${allowed.column}"${where} must be one of ${allowed.values.map((value) => `'${value}'`).join(', ')} ` +
          `(check constraint "${error.constraint}", ${state}).`
        )
      }
      return (
        `Value not allowed: the row breaks check constraint "${error.constraint}"${where} (${state}). ` +
        'Change the value to one the constraint accepts.'
      )
    }
    case '55P03':
      return (
        `Waited too long for a lock: ${error.message} (${state}). Another session holds a lock ` +
        'that this needs (a migration, a long ALTER, a transaction left open); try again once it ends.'
      )
    case '42501':
      // The module's own refusals (shadowed-catalog.ts, lesser-triggers.ts) say what to do.
      return /Nothing was (read or )?changed/.test(error.message)
        ? `Not allowed: ${error.message} (${state})`
        : `Not allowed: ${error.message} (${state}). Run the query as a role whose grants or row level security policies allow it.`
    default:
      return `${error.message} (${state})${error.detail ? `: ${error.detail}` : ''}`
  }
}
