/**
 * Which database a command or createDb uses, decided from the options and the environment, and
 * said without its password. Apart from create-db.ts so that a command line can name its target
 * without loading kysely.
 */

import {
  ConnectionStringError,
  GIVEN_CONNECTION_STRING,
  givenConnectionString,
  readConnectionString,
} from './connection-string.js'
import {
  shownDatabaseName,
  shownFolder,
  shownHost,
  shownShortOnTerminal,
} from './shown-argument.js'

/** The options that decide the target: those of createDb's options that name a database. */
export interface TargetOptions {
  /** A PostgreSQL connection string. Defaults to DATABASE_URL. */
  connectionString?: string
  /** The embedded database in this folder, even where DATABASE_URL is set. */
  dataDir?: string
  /** The environment to read DATABASE_URL and PGLITE_DATA_DIR from; `process.env` by default. */
  env?: NodeJS.ProcessEnv
}

/** Where the embedded database lives when neither `dataDir` nor PGLITE_DATA_DIR says otherwise. */
export const DEFAULT_PGLITE_DATA_DIR = '.data/pglite'

/** The database a {@link createDb} call connects to. */
export type DatabaseTarget =
  { kind: 'postgres'; connectionString: string } | { kind: 'pglite'; dataDir: string }

/**
 * Decides which database {@link createDb} uses, and rejects a connection string that is not
 * PostgreSQL's.
 *
 * @example
 * ```ts
 * resolveDatabaseTarget({ env: { DATABASE_URL: 'postgres://localhost/app' } })
 * // { kind: 'postgres', connectionString: 'postgres://localhost/app' }
 * ```
 */
export function resolveDatabaseTarget(options: TargetOptions = {}): DatabaseTarget {
  if (options.connectionString !== undefined && options.dataDir !== undefined) {
    throw new Error(
      'createDb takes a connectionString or a dataDir, not both: pick the database to use.',
    )
  }
  // An explicit dataDir means the embedded database, whatever DATABASE_URL says: scratch
  // databases (codegen, SQL export) must never land on the configured server.
  if (options.dataDir !== undefined) return { kind: 'pglite', dataDir: options.dataDir }
  const env = options.env ?? process.env
  const connectionString =
    options.connectionString === undefined
      ? givenConnectionString(env.DATABASE_URL, 'DATABASE_URL')
      : givenConnectionString(options.connectionString, GIVEN_CONNECTION_STRING)
  if (connectionString !== undefined) return { kind: 'postgres', connectionString }
  const dataDir = env.PGLITE_DATA_DIR || DEFAULT_PGLITE_DATA_DIR
  checkDataDirName(dataDir)
  return { kind: 'pglite', dataDir }
}

/**
 * Refuses, without showing it, a PGLITE_DATA_DIR that holds a URL (a connection string put in the
 * wrong variable; PGlite's own `memory://` aside) or a key: it would be printed on the Database:
 * line and become the name of a folder in the project (review revo O3).
 */
function checkDataDirName(dataDir: string): void {
  const scheme = /^\s*([a-z][a-z0-9+.-]*):\/\//i.exec(dataDir)?.[1]
  const holds =
    scheme !== undefined && scheme.toLowerCase() !== 'memory'
      ? `a URL (it starts with "${shownShortOnTerminal(scheme.slice(0, 12))}://")`
      : // user:password@host, libpq's key=value form, a key, a JWT (review revp P4).
        /^[^/@\s]+:[^/@\s]*@|\bpassword\s*=/i.test(dataDir)
        ? 'what looks like a connection string'
        : /(^|\/)-*(sk|pk|rk)[-_][\w-]{16,}|(^|\/)eyJ[\w-]+\.[\w-]+\./.test(dataDir)
          ? 'what looks like a key'
          : undefined
  if (holds === undefined) return
  throw new ConnectionStringError(
    `PGLITE_DATA_DIR holds ${holds}, not a folder; the rest is not shown, as it may hold a password or a key. ` +
      "Put a server's connection string in DATABASE_URL, and in PGLITE_DATA_DIR the folder of the embedded " +
      'database (or leave it unset for .data/pglite).',
  )
}

/**
 * Says which database a target is, for logs, without its password, and the embedded database's
 * folder only where it plainly looks like a path (see shownFolder).
 *
 * @example
 * ```ts
 * describeDatabaseTarget({ kind: 'pglite', dataDir: '.data/pglite' })
 * // 'embedded PGlite at .data/pglite'
 * ```
 */
export function describeDatabaseTarget(target: DatabaseTarget): string {
  return target.kind === 'postgres'
    ? `PostgreSQL at ${serverOf(target.connectionString)}`
    : `embedded PGlite at ${shownFolder(target.dataDir)}`
}

/**
 * Host, port and database of a connection string, as the driver's own parser reads it, and
 * nothing else: no user, no password, no parameters.
 */
function serverOf(connectionString: string): string {
  try {
    const { database } = readConnectionString(connectionString)
    return `${serverAddress(connectionString)}/${database ? shownDatabaseName(database) : '(default database)'}`
  } catch {
    return '(a connection string that cannot be parsed)'
  }
}

/**
 * The host (or socket folder) and port of a connection string, as the driver reads them (from
 * the query string too), as a message shows them (see shownHost); never a user or a
 * password. Throws where the driver cannot parse it.
 *
 * @example
 * ```ts
 * serverAddress('postgres:///db?host=db.internal') // 'db.internal:5432'
 * ```
 */
export function serverAddress(connectionString: string): string {
  const { host, port } = readConnectionString(connectionString)
  // Whoever wrote the URL chose them: shown as any name a message shows.
  return `${shownHost(host || 'localhost')}:${shownShortOnTerminal(String(port || 5432))}`
}

/** The variable that names the server of a migration run. */
export type MigrationDatabaseVariable = 'MIGRATION_DATABASE_URL' | 'DATABASE_URL'

/**
 * The variable that names the server the migrations run on: MIGRATION_DATABASE_URL where it is
 * set, as start-up and the command line read it, else DATABASE_URL.
 *
 * @example
 * ```ts
 * migrationDatabaseVariable({ MIGRATION_DATABASE_URL: 'postgres://db:5432/app' }) // 'MIGRATION_DATABASE_URL'
 * ```
 */
export function migrationDatabaseVariable(env: NodeJS.ProcessEnv): MigrationDatabaseVariable {
  return env.MIGRATION_DATABASE_URL?.trim() ? 'MIGRATION_DATABASE_URL' : 'DATABASE_URL'
}
