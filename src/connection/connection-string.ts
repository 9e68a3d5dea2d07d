import { type Stats, statSync } from 'node:fs'

import { type ConnectionOptions, parse as parseConnectionString } from 'pg-connection-string'

import { describeArgument } from './shown-argument.js'

/**
 * A connection string that cannot be right, whatever the server: a usage error (the CLI exits
 * with 2), where a server that does not answer is a failure.
 */
export class ConnectionStringError extends Error {
  override readonly name = 'ConnectionStringError'
}

/** The query parameters whose files the driver reads while it parses the URL. */
const TLS_FILE_PARAMETERS = ['sslcert', 'sslkey', 'sslrootcert']

/**
 * The parameter and the system's reason (`ENOENT: no such file or directory`) where parsing
 * failed on a file that a TLS parameter names, which the driver reads while it parses.
 */
function unreadableFile(
  error: unknown,
  connectionString: string,
): { parameter: string; reason: string } | undefined {
  const { code, path, message } = (error ?? {}) as {
    code?: unknown
    path?: unknown
    message?: unknown
  }
  if (typeof code !== 'string' || typeof path !== 'string' || typeof message !== 'string')
    return undefined
  const files = tlsFiles(connectionString)
  const parameter = TLS_FILE_PARAMETERS.find((name) => files.get(name) === path)
  // The reason without the path: a path is shown by the parameter that holds it.
  return parameter ? { parameter, reason: message.split(', ')[0]! } : undefined
}

/**
 * The most bytes of a file that a TLS parameter may name: a certificate or a key is a few KB, a
 * bundle of every public root certificate some 200 KB.
 */
const TLS_FILE_BYTES = 1024 * 1024

/**
 * The files that the TLS parameters name, as the driver's parser (pg-connection-string) reads
 * them from the URL, which it then reads whole: it parses the URL with WHATWG URL (after
 * encoding a space or a stray "%", and with a stand-in host where the host is empty), takes the
 * last of a repeated parameter, and skips an empty one. Empty where the URL does not parse: the
 * driver then throws before it reads any file.
 */
function tlsFiles(connectionString: string): Map<string, string> {
  const files = new Map<string, string>()
  let query: URLSearchParams
  try {
    let url = connectionString
    if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url))
      url = encodeURI(url).replace(/%25(\d\d)/g, '%$1')
    try {
      query = new URL(url, 'postgres://base').searchParams
    } catch {
      query = new URL(url.replace('@/', '@___DUMMY___/'), 'postgres://base').searchParams
    }
  } catch {
    return files
  }
  for (const [name, value] of query) {
    if (TLS_FILE_PARAMETERS.includes(name)) files.set(name, value)
  }
  for (const [name, value] of files) if (!value) files.delete(name)
  return files
}

/** What a path that is not a regular file names, as a message says it. */
function fileKind(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO'
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device'
  if (stats.isSocket()) return 'a socket'
  if (stats.isDirectory()) return 'a folder'
  return 'a special file'
}

/**
 * Refuses a TLS parameter that names something the driver's blocking read would never finish
 * (a FIFO, a device such as /dev/zero), or a file far larger than a certificate, before the
 * driver reads it. It follows a symbolic link, as the driver's read does; a path that cannot be
 * looked at is left to the driver, whose error says why (`unreadableFile`). A folder is refused
 * here too: the driver's read fails at once on it, but with an error that names no path.
 */
function checkTlsFiles(connectionString: string, source: string): void {
  for (const [parameter, path] of tlsFiles(connectionString)) {
    let stats: Stats
    try {
      stats = statSync(path)
    } catch {
      continue
    }
    const point =
      `Point ${parameter} at the ${parameter === 'sslkey' ? 'key' : 'certificate'} file ` +
      `(a PEM file), or remove ${parameter} from the URL.`
    if (!stats.isFile()) {
      throw new ConnectionStringError(
        `${parameter} in ${source} names ${fileKind(stats)}, not a regular file: the driver reads the whole file while it parses the URL` +
          `${stats.isDirectory() ? '' : ', and a read of a FIFO or a device may never end'}. ${point}`,
      )
    }
    // /proc's files say they are empty, and some never end (/proc/self/pagemap; review revm M4):
    // no certificate or key is empty.
    if (stats.size === 0) {
      throw new ConnectionStringError(
        `${parameter} in ${source} names an empty file (or one of /proc or /sys, which say they are empty and may never end). ${point}`,
      )
    }
    if (stats.size > TLS_FILE_BYTES) {
      throw new ConnectionStringError(
        `${parameter} in ${source} names a file of ${stats.size} bytes, more than the ${TLS_FILE_BYTES} bytes (1 MiB) ` +
          `a certificate or a key could need. ${point}`,
      )
    }
  }
}

/**
 * Checks a PostgreSQL connection string that a user gave (in `source`, such as DATABASE_URL)
 * before anything connects with it, and refuses it without showing it: one that is not
 * `postgres://` or `postgresql://`, and one whose password (or user) holds a "/", "?" or "#"
 * that ends the authority part of the URL early: `postgres://u:Sp3c!al@S3cr3t/x?y#z@host/db`
 * parses as host "S3cr3t", the driver would send part of the password to the DNS resolver, and
 * every message naming the host or the database would print it. Also refused, naming only the
 * parameter's value: a port (in the query string too) that is not 1 to 65535, an sslmode the
 * driver does not know, a bound of 0, and a TLS file (sslcert, sslkey, sslrootcert) that cannot
 * be read, that is not a regular file (a FIFO, a device), is empty or is over 1 MiB, by the parameter
 * that names it: the driver reads those files whole, with a blocking read, while it parses. Each
 * connection string the module reads from its user goes through here.
 *
 * @example
 * ```ts
 * checkConnectionString(process.env.DATABASE_URL!, 'DATABASE_URL')
 * ```
 */
export function checkConnectionString(connectionString: string, source: string): void {
  if (!/^postgres(ql)?:\/\//.test(connectionString)) {
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(connectionString)?.[0]
    const unset =
      source === 'DATABASE_URL' ? '; unset DATABASE_URL to use the embedded database' : ''
    throw new ConnectionStringError(
      `The connection string is not a PostgreSQL URL (${scheme ? `it starts with "${scheme}"` : 'it has no scheme'}; the rest is not shown, as it may hold a password). ` +
        `Expected postgres://user:password@host:5432/database in ${source}${unset}.`,
    )
  }
  checkTlsFiles(connectionString, source)
  let parameters: Record<string, unknown>
  try {
    // The driver's own parser: it reads the host, the password and the bounds from the query
    // string too (postgres:///db?host=…), and takes an empty host (postgresql://user@/db?host=/run).
    parameters = readConnectionString(connectionString) as Record<string, unknown>
  } catch (error) {
    const unreadable = unreadableFile(error, connectionString)
    if (unreadable) {
      throw new ConnectionStringError(
        `${unreadable.parameter} in ${source} names a file that cannot be read (${unreadable.reason}). ` +
          `Check the path, and that this user may read the file; or remove ${unreadable.parameter} from the URL.`,
      )
    }
    throw new ConnectionStringError(
      `The connection string in ${source} is not a valid URL${whyNotAUrl(connectionString)} (it is not shown, as it may hold a password). ` +
        'Expected postgres://user:password@host:5432/database, with special characters of the password percent-encoded.',
    )
  }
  // The host part ends at the first "/", "?" or "#" after "//": a "?" or "#" in the password
  // starts the query or the fragment, a "/" the path, and the rest of the password follows it.
  const rest = connectionString.replace(/^postgres(ql)?:\/\//, '')
  const afterHost = rest.slice(rest.search(/[/?#]|$/))
  if (afterHost.includes('@')) {
    throw new ConnectionStringError(
      `The connection string has an "@" after the host part (in ${source}), so its password (or user name) holds a "/", "?" or "#" that ` +
        'ends the host part early (the string is not shown, as it may hold a password). Percent-encode the password ' +
        '(encodeURIComponent: "/" is %2F, "?" is %3F, "#" is %23, "@" is %40).',
    )
  }
  // A query string's port is not checked by the URL parser, and the driver takes an sslmode it
  // does not know as "verify-full": both would fail only at the connection, as a failure (exit 1).
  const port = parameters.port
  if (
    typeof port === 'string' &&
    port !== '' &&
    !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)
  ) {
    throw new ConnectionStringError(
      `port in ${source} is ${describeArgument(port)}, expected a whole number from 1 to 65535. Give the server's port ` +
        '(5432 by default), or remove port from the URL for the default.',
    )
  }
  const sslmode = parameters.sslmode
  if (sslmode !== undefined && !SSL_MODES.includes(String(sslmode))) {
    throw new ConnectionStringError(
      `sslmode in ${source} is ${describeArgument(String(sslmode))}, expected one of ${SSL_MODES.join(', ')} ` +
        "(node-postgres's modes). Give one of them, or remove sslmode from the URL.",
    )
  }
  for (const name of BOUNDS) {
    const value = parameters[name]
    if (value !== undefined && (typeof value !== 'string' || !/^[1-9]\d{0,8}$/.test(value))) {
      throw new ConnectionStringError(
        `${name} in ${source} is ${describeArgument(String(value))}, expected a whole number from 1 to 999999999: ` +
          `every wait is bounded, and 0 would mean no bound at all. Remove ${name} from the URL for the module's default, or give ` +
          'a bound in that range.',
      )
    }
  }
}

/** What the option of createDb and resolveDatabaseTarget is called in a message. */
export const GIVEN_CONNECTION_STRING = 'the connection string given'

/**
 * A connection string a user gave in `source` (an environment variable such as DATABASE_URL, or
 * {@link GIVEN_CONNECTION_STRING}), trimmed and checked (see {@link checkConnectionString}), or
 * undefined where it is unset. One set but blank is refused, not taken as unset: a CI job whose
 * secret is missing gets `DATABASE_URL=`, and without it would migrate the embedded database (or
 * rehearse on another server) and pass (review N10-4).
 *
 * @example
 * ```ts
 * const server = givenConnectionString(process.env.REHEARSAL_DATABASE_URL, 'REHEARSAL_DATABASE_URL')
 * ```
 */
export function givenConnectionString(
  value: string | undefined,
  source: string,
): string | undefined {
  if (value === undefined) return undefined
  const connectionString = value.trim()
  if (!connectionString) {
    const unset =
      source === 'DATABASE_URL'
        ? 'unset DATABASE_URL to use the embedded database'
        : source === GIVEN_CONNECTION_STRING
          ? 'leave connectionString out to use DATABASE_URL, or the embedded database'
          : `unset ${source} to go without it (--help says what the command uses then)`
    throw new ConnectionStringError(
      `${source.charAt(0).toUpperCase()}${source.slice(1)} is set but blank: expected a PostgreSQL URL, ` +
        'postgres://user:password@host:5432/database. A blank value is not taken as unset, so that a missing ' +
        `secret does not switch the command to another database. Set it to the server's connection string, or ${unset}.`,
    )
  }
  const strict = strictSslMode(connectionString)
  checkConnectionString(strict, source)
  return strict
}

/** The sslmode values that node-postgres 8 reads as verify-full, and libpq as weaker modes. */
const VERIFY_FULL_ALIASES = ['prefer', 'require', 'verify-ca']

/**
 * `connectionString` with each sslmode of its query string that node-postgres 8 reads as
 * verify-full (prefer, require, verify-ca) written as verify-full, where uselibpqcompat does
 * not ask for libpq's meaning: what the module's connections did stays what they do, under a
 * later node-postgres and in pg_dump too (whose libpq would not check the server's certificate
 * for these), and node-postgres has no cause to print its warning, which advises
 * `uselibpqcompat=true&sslmode=require`, a mode that checks no certificate (review N10-5).
 *
 * @example
 * ```ts
 * strictSslMode('postgres://db/app?sslmode=require') // 'postgres://db/app?sslmode=verify-full'
 * ```
 */
export function strictSslMode(connectionString: string): string {
  // As the driver's WHATWG URL reads it: the fragment is no part of the query, the query's
  // parameters are split at "&" alone (a "?" in a value is the value's), and each name and
  // value is percent-decoded, "+" a space; the last of a repeated parameter counts.
  const hash = connectionString.indexOf('#')
  const body = hash < 0 ? connectionString : connectionString.slice(0, hash)
  const query = body.indexOf('?')
  if (query < 0) return connectionString
  const decoded = (text: string) => {
    try {
      return decodeURIComponent(text.replaceAll('+', ' '))
    } catch {
      return text
    }
  }
  const pairs = body
    .slice(query + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=')
      return equals < 0
        ? { pair, name: decoded(pair), value: '' }
        : { pair, name: decoded(pair.slice(0, equals)), value: decoded(pair.slice(equals + 1)) }
    })
  if (pairs.filter(({ name }) => name === 'uselibpqcompat').at(-1)?.value === 'true')
    return connectionString
  const rewritten = pairs.map(({ pair, name, value }) =>
    name === 'sslmode' && VERIFY_FULL_ALIASES.includes(value) ? 'sslmode=verify-full' : pair,
  )
  return body.slice(0, query + 1) + rewritten.join('&') + connectionString.slice(body.length)
}

/**
 * The parameters of a connection string as node-postgres's own parser (pg-connection-string)
 * reads them, after {@link strictSslMode}: every reading of a URL in the module goes through
 * here, so that none prints the driver's warning or reads an sslmode the connections do not use.
 *
 * @example
 * ```ts
 * readConnectionString('postgres://db:5432/app?sslmode=require').sslmode // 'verify-full'
 * ```
 */
export function readConnectionString(connectionString: string): ConnectionOptions {
  return parseConnectionString(strictSslMode(connectionString))
}

/** The sslmode values node-postgres knows; it would take any other as verify-full, unsaid. */
const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify']

/** The URL parameters that bound a wait of node-postgres (a 0 there means none). */
const BOUNDS = [
  'connect_timeout',
  'query_timeout',
  'statement_timeout',
  'idle_in_transaction_session_timeout',
] as const

/**
 * What makes `connectionString` an invalid URL, as far as it can be said without quoting it
 * (the port is not shown either: a mistyped URL may put part of the password there).
 */
function whyNotAUrl(connectionString: string): string {
  const rest = connectionString.replace(/^postgres(ql)?:\/\//, '')
  const authority = rest.slice(0, rest.search(/[/?#]|$/))
  const host = authority.slice(authority.lastIndexOf('@') + 1)
  if (/\s/.test(connectionString)) return ': it holds a space or another blank'
  if (host.startsWith('[') && !host.includes(']'))
    return ': the "[" of its IPv6 host has no closing "]"'
  const port = /(?:^|\]|^[^[]*):([^:\]]*)$/.exec(host)?.[1]
  if (port !== undefined && port !== '' && !(/^\d{1,5}$/.test(port) && Number(port) <= 65535))
    return ': its port is not a number from 1 to 65535'
  return ''
}
