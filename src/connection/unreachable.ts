/*
 * How every command words a database it cannot use at all, the one place of that sentence:
 * the migration runner's errors (migrator/migration-error.ts) and the command line's one exit
 * path (cli/run-command.ts) for every other command.
 */
import {
  describeArgument,
  mayShowArgument,
  shownDatabaseName,
  shownHost,
} from './shown-argument.js'
import { errorCode } from './sql-state.js'

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
])

/**
 * SQLSTATEs a server answers a connection with that say the database cannot be used now: no
 * such database, a server starting or stopping (cannot_connect_now), too many clients.
 */
const UNUSABLE = new Set(['3D000', '57P03', '53300'])

/** How the sentence of {@link cannotReachDatabase} starts. */
const CANNOT_REACH = 'Cannot reach the database: '

/**
 * Whether a failure with `code` and `message` means that the database named by the connection
 * string cannot be used at all: the network, SQLSTATE classes 08 (connection) and 28
 * (authorization), a missing database, a server starting up or with too many clients.
 *
 * @example
 * ```ts
 * isUnreachable('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1') // true
 * ```
 */
export function isUnreachable(code: string | undefined, message: string): boolean {
  if (code && (UNREACHABLE_CODES.has(code) || /^(08|28)/.test(code) || UNUSABLE.has(code)))
    return true
  return /Connection terminated|timeout expired|did not answer within/i.test(message)
}

/**
 * The one-line sentence for a database that cannot be reached: what happened (`reason`, which
 * names the host and port or the server's answer, never the password), and what to check: the
 * environment variable `variable` that named it.
 *
 * @example
 * ```ts
 * cannotReachDatabase('connect ECONNREFUSED 127.0.0.1:1', 'LINT_LOCKS_DATABASE_URL')
 * ```
 */
export function cannotReachDatabase(reason: string, variable = 'DATABASE_URL'): string {
  const check = /\. Check /.test(reason)
    ? ''
    : ` Check ${variable} (host, port, user, password, database name) and that the server is running.`
  return `${CANNOT_REACH}${withUserShown(reason).replace(/\.$/, '')}.${check}`
}

/**
 * The server's answer with the user it names (`role "…" does not exist`, `… for user "…"`) shown
 * as an argument is: the user part of a connection string may be a password where the user name
 * was forgotten (postgres://secret@host), and a server that asks for no password names it back.
 * The database it names (`database "…" does not exist`, pg_hba's refusal) and the host the
 * resolver could not find are shown as the Database: line shows them (review N10-1).
 */
function withUserShown(reason: string): string {
  return reason
    .replace(/\b(role|user) "((?:[^"]|"")*)"/g, (whole, kind: string, quoted: string) => {
      const user = quoted.replaceAll('""', '"')
      return mayShowArgument(user) ? whole : `${kind} ${describeArgument(user)}`
    })
    .replace(
      /\bdatabase "((?:[^"]|"")*)"/g,
      (_whole, quoted: string) => `database "${shownDatabaseName(quoted.replaceAll('""', '"'))}"`,
    )
    .replace(
      /\b(ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NODATA|EAI_NONAME) (\S+)/g,
      (_whole, code: string, host: string) => `${code} ${shownHost(host)}`,
    )
}

/**
 * `error`'s message, worded by {@link cannotReachDatabase} where it means that the database
 * cannot be reached and is not worded so already; undefined otherwise.
 *
 * @example
 * ```ts
 * console.error(unreachableMessage(error) ?? String(error))
 * ```
 */
export function unreachableMessage(error: unknown, variable = 'DATABASE_URL'): string | undefined {
  if (!(error instanceof Error) || error.message.startsWith(CANNOT_REACH)) return undefined
  const code = errorCode(error)
  return isUnreachable(typeof code === 'string' ? code : undefined, error.message)
    ? cannotReachDatabase(error.message, variable)
    : undefined
}

/**
 * Runs `work`, whose connections all go to the server named by the environment variable
 * `variable` (a server for rehearsals), so that a server it cannot reach is worded with that
 * variable rather than DATABASE_URL.
 *
 * @example
 * ```ts
 * await reachedThrough('LINT_LOCKS_DATABASE_URL', () => lintMigrationLocks(policy, { server }))
 * ```
 */
export async function reachedThrough<T>(variable: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    const message = unreachableMessage(error, variable)
    if (message === undefined) throw error
    throw new Error(message, { cause: error })
  }
}
