import type { MigrationResult, MigrationResultSet } from 'kysely/migration'

import { isSqlState, QueryError } from './query-error.js'

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET'])

/**
 * Failures that mean the database named by the connection string cannot be used at all: the
 * network, SQLSTATE classes 08 (connection) and 28 (authorization), or a missing database.
 */
function isUnreachable({ code, message }: ErrorFields): boolean {
  if (code && (UNREACHABLE_CODES.has(code) || /^(08|28)/.test(code) || code === '3D000')) return true
  return /Connection terminated|timeout expired/i.test(message)
}

/** What failed: a run of migrations, or reading the history for `migrate:list`. */
export type MigrationActivity = 'run' | 'status'

/**
 * A migration run that failed. The message names the migration, PostgreSQL's message, SQLSTATE
 * and detail, and says what state the database is in. Kysely runs every migration of a run in
 * one transaction, so a failed run leaves the database as it was before the run.
 *
 * @example
 * ```ts
 * try {
 *   await migrateToLatest(db)
 * } catch (error) {
 *   if (error instanceof MigrationError) console.error(error.migrationName, error.code)
 *   throw error
 * }
 * ```
 */
export class MigrationError extends Error {
  override readonly name = 'MigrationError'
  /** The migration that failed; undefined when the run failed before any migration ran. */
  readonly migrationName: string | undefined
  readonly direction: 'Up' | 'Down' | undefined
  /** PostgreSQL's SQLSTATE, or Node's error code for a connection failure. */
  readonly code: string | undefined
  readonly detail: string | undefined
  /** Kysely's result for every migration the run considered. */
  readonly results: readonly MigrationResult[]

  constructor(resultSet: MigrationResultSet, activity: MigrationActivity = 'run') {
    const failed = resultSet.results?.find((result) => result.status === 'Error')
    const cause = resultSet.error
    const fields = errorFields(cause)
    super(describe(failed, fields, activity), { cause })
    this.migrationName = failed?.migrationName
    this.direction = failed?.direction
    this.code = fields.code
    this.detail = fields.detail
    this.results = resultSet.results ?? []
  }
}

interface ErrorFields {
  message: string
  code: string | undefined
  detail: string | undefined
}

function errorFields(error: unknown): ErrorFields {
  if (error instanceof QueryError) {
    // PostgreSQL's own wording is what a reader searches for; QueryError's is in the cause.
    const original = error.cause instanceof Error ? error.cause.message : error.message
    return { message: original, code: error.code, detail: error.detail }
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return { message: error.message, code: typeof code === 'string' ? code : undefined, detail: undefined }
  }
  return { message: String(error), code: undefined, detail: undefined }
}

function describe(failed: MigrationResult | undefined, fields: ErrorFields, activity: MigrationActivity): string {
  // Node's codes (ECONNREFUSED, …) are in the message already; PostgreSQL's SQLSTATE is not.
  const state = [isSqlState(fields.code) && `SQLSTATE ${fields.code}`, fields.detail && `detail: ${fields.detail}`]
    .filter(Boolean)
    .join('; ')
  const reason = state ? `${fields.message} (${state})` : fields.message
  if (isUnreachable(fields)) {
    return `Cannot reach the database: ${reason}. Check DATABASE_URL (host, port, user, password, database name) and that the server is running.`
  }
  if (activity === 'status') return `Could not read the migration history: ${reason}.`
  if (!failed) return `The migration run failed before any migration ran: ${reason}. Nothing was changed.`
  return (
    `Migration ${failed.migrationName} failed (${failed.direction.toLowerCase()}): ${reason}. ` +
    'The run was rolled back, so the database is as it was before it; fix the cause and run the migrations again.'
  )
}
