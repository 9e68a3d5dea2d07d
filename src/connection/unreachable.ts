/*
 * How every command words a database it cannot use at all, the one place of that sentence:
 * the migration runner's errors (migrator/migration-error.ts) and the command line's one exit
 * path (cli/run-command.ts) for every other command.
 */
import { DatabaseNotOpenedError } from './database-not-opened-error.js'
import {
  describeArgument,
  HIDDEN_NAME,
  mayShowArgument,
  shownDatabaseName,
  shownHost,
} from './shown-argument.js'
import { errorCode } from './sql-state.js'

/** Node's codes of a server certificate it could not verify. */
const TLS_CERTIFICATE_CODES = [
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  // The server's certificate, where the URL asks for TLS: not what the URL names.
  ...TLS_CERTIFICATE_CODES,
])

/**
 * SQLSTATEs a server answers a connection with that say the database cannot be used now: no
 * such database, a server starting or stopping (cannot_connect_now), too many clients.
 */
const UNUSABLE = new Set(['3D000', '57P03', '53300'])

/**
 * What to check where a server did not answer the connection, as an error of the connection
 * layer says it; {@link cannotReachDatabase} names the variable that gave the URL instead.
 */
export const CHECK_HOST_AND_PORT = 'Check the host and port of the URL, and that the server is up.'

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
  // A socket folder with no server in it; a server that has no TLS where the URL asks for it.
  if (code === 'ENOENT' && /\bconnect ENOENT\b/.test(message)) return true
  return /Connection terminated|timeout expired|did not answer within|does not support SSL connections/i.test(
    message,
  )
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
    : STATEMENT_POOLING.test(reason)
      ? ` ${variable} reaches the server through a pooler in statement mode, which allows no transaction, and every ` +
        `command of the module reads and writes in transactions: point ${variable} at a session or transaction pooler ` +
        "(Supabase's port 5432 or 6543) or at the server itself."
      : CERTIFICATE_FAILURE.test(reason)
        ? ` The server's certificate was checked, as sslmode prefer, require and verify-ca are read as verify-full: ` +
          `name the certificate authority that signed it in ${variable} (?sslrootcert=/path/to/ca.crt; Supabase's is on the ` +
          "dashboard's database settings page)."
        : ` Check ${variable} (host, port, user, password, database name) and that the server is running.`
  const answer = shownAnswer(reason)
    .replace(
      CHECK_HOST_AND_PORT,
      `Check the host and port in ${variable}, and that the server is up.`,
    )
    .replace(/\.$/, '')
  return `${CANNOT_REACH}${answer}.${check}`
}

/** PgBouncer's answer to a transaction in `pool_mode = statement`. */
const STATEMENT_POOLING = /transaction blocks not allowed in statement pooling mode/

/** Node's messages of a server certificate it could not verify. */
const CERTIFICATE_FAILURE =
  /self[- ]signed certificate|unable to verify the first certificate|unable to get local issuer certificate|certificate has expired|does not match certificate's altnames/i

/** The end of an answer as the module words it: a SQLSTATE it added, a full stop. */
const TAIL = String.raw`(?<tail>(?: \(SQLSTATE [0-9A-Z]{5}\))?\.?)$`

/** A user's name as a message shows it (the user part of a URL may hold a password). */
const shownUser = (user: string) => (mayShowArgument(user) ? `"${user}"` : describeArgument(user))

/**
 * The server's and the resolver's answers that name what the URL gave, each read whole, from the
 * text before the first quote to the end: PostgreSQL does not double a quote inside a name, so
 * a name is all between the answer's fixed words, however many quotes it holds.
 */
const NAMED_ANSWERS: ReadonlyArray<[RegExp, (g: Record<string, string>) => string]> = [
  [
    new RegExp(
      String.raw`^(?<pre>[^"]*\bdatabase )"(?<name>.*)"(?<post> does not exist| is not currently accepting connections)${TAIL}`,
      's',
    ),
    (g) => `${g.pre}"${shownDatabaseName(g.name!)}"${g.post}${g.tail}`,
  ],
  [
    new RegExp(
      String.raw`^(?<pre>[^"]*\b(?:role|for user|for role) )"(?<name>.*)"(?<post> does not exist| is not permitted to log in|)${TAIL}`,
      's',
    ),
    (g) => `${g.pre}${shownUser(g.name!)}${g.post}${g.tail}`,
  ],
  [
    new RegExp(String.raw`^(?<pre>[^"]*\bfor database )"(?<name>.*)"${TAIL}`, 's'),
    (g) => `${g.pre}"${shownDatabaseName(g.name!)}"${g.tail}`,
  ],
  [
    new RegExp(
      String.raw`^(?<pre>[^"]* for host )"(?<host>[^"]*)", user "(?<user>.*)", database "(?<name>.*)", (?<post>[^"]*)${TAIL}`,
      's',
    ),
    (g) =>
      `${g.pre}"${shownHost(g.host!)}", user ${shownUser(g.user!)}, database "${shownDatabaseName(g.name!)}", ${g.post}${g.tail}`,
  ],
  [
    /^(?<pre>(?:getaddrinfo|connect) [A-Z_]+ )(?<host>.*)$/s,
    (g) => `${g.pre}${shownHost(g.host!)}`,
  ],
]

/**
 * The server's or the resolver's answer as a message shows it: the user it names (`role "…" does
 * not exist`, `… for user "…"`) as an argument is shown (the user part of a URL may be a password
 * where the user name was forgotten: postgres://secret@host), the database as the Database: line
 * shows it, the host the resolver could not find or the socket folder with no server as a host
 * is (review N10-1, and its hostile reviews: a quote or a space inside the name). An answer none
 * of those reads, that still quotes something shaped like a key, is not shown at all.
 */
function shownAnswer(reason: string): string {
  for (const [pattern, shown] of NAMED_ANSWERS) {
    const found = pattern.exec(reason)
    if (found?.groups) return shown(found.groups)
  }
  return shownHost(reason) === HIDDEN_NAME
    ? "(the server's answer is not shown: it may quote a key or a password)"
    : reason
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
  // The embedded database's refusals are not the server's, whatever words they quote.
  if (error instanceof DatabaseNotOpenedError) return undefined
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
