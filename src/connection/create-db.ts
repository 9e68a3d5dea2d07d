import { Kysely, type KyselyConfig, PGliteDialect, PostgresDialect } from 'kysely'
import pg from 'pg'
import { parse as parseConnectionString } from 'pg-connection-string'

import { checkConnectionString } from './connection-string.js'
import { registerEmbeddedDatabase } from './embedded-database.js'
import { openPglite } from './open-pglite.js'
import { explainTimeout, serverClientConfig } from './server-client-config.js'
import { withoutKyselyMigrationLock } from './without-kysely-migration-lock.js'
import { toQueryError } from './query-error.js'
import { type DialectHooks, withDialectHooks } from './dialect-hooks.js'
import type { DB } from '../types/database.js'

/** Where the embedded database lives when neither `dataDir` nor PGLITE_DATA_DIR says otherwise. */
export const DEFAULT_PGLITE_DATA_DIR = '.data/pglite'

export { IN_MEMORY } from './in-memory.js'

/**
 * Options of {@link createDb}. An explicit `connectionString` or `dataDir` wins; otherwise
 * DATABASE_URL, then PGLITE_DATA_DIR, then the embedded default decide.
 */
export interface CreateDbOptions {
  /** A PostgreSQL connection string. Defaults to DATABASE_URL. */
  connectionString?: string
  /**
   * Use the embedded database in this folder (`memory://` keeps it in memory), even where
   * DATABASE_URL is set. Without it and without a connection string: PGLITE_DATA_DIR, then
   * `.data/pglite` under the working directory.
   */
  dataDir?: string
  /** Kysely's query log. */
  log?: KyselyConfig['log']
  /**
   * Called with every statement sent, including BEGIN, COMMIT and ROLLBACK, which Kysely's log
   * leaves out; `migrate:sql` records migrations with it.
   */
  onStatement?: DialectHooks['onStatement']
  /**
   * A dump of a PGlite data directory (PGlite's `dumpDataDir`) that a new embedded database
   * starts from, read when the database is first opened; an existing database folder refuses
   * it. Without it, a new embedded database starts from a cached dump of an empty cluster.
   */
  template?: () => Promise<Blob>
  /** The environment to read DATABASE_URL and PGLITE_DATA_DIR from; `process.env` by default. */
  env?: NodeJS.ProcessEnv
}

/** The database a {@link createDb} call connects to. */
export type DatabaseTarget =
  | { kind: 'postgres'; connectionString: string }
  | { kind: 'pglite'; dataDir: string }

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
export function resolveDatabaseTarget(options: CreateDbOptions = {}): DatabaseTarget {
  if (options.connectionString !== undefined && options.dataDir !== undefined) {
    throw new Error('createDb takes a connectionString or a dataDir, not both: pick the database to use.')
  }
  // An explicit dataDir means the embedded database, whatever DATABASE_URL says: scratch
  // databases (codegen, SQL export) must never land on the configured server.
  if (options.dataDir !== undefined) return { kind: 'pglite', dataDir: options.dataDir }
  const env = options.env ?? process.env
  const connectionString = (options.connectionString ?? env.DATABASE_URL)?.trim()
  if (connectionString) {
    checkConnectionString(connectionString, options.connectionString === undefined ? 'DATABASE_URL' : 'the connection string given')
    return { kind: 'postgres', connectionString }
  }
  return { kind: 'pglite', dataDir: env.PGLITE_DATA_DIR || DEFAULT_PGLITE_DATA_DIR }
}

/**
 * Says which database a target is, for logs, without its password.
 *
 * @example
 * ```ts
 * describeDatabaseTarget({ kind: 'pglite', dataDir: '.data/pglite' })
 * // 'embedded PGlite at .data/pglite'
 * ```
 */
export function describeDatabaseTarget(target: DatabaseTarget): string {
  return target.kind === 'postgres' ? `PostgreSQL at ${serverOf(target.connectionString)}` : `embedded PGlite at ${target.dataDir}`
}

/**
 * Host, port and database of a connection string, as the driver's own parser reads it, and
 * nothing else: no user, no password, no parameters.
 */
function serverOf(connectionString: string): string {
  try {
    const { host, port, database } = parseConnectionString(connectionString)
    return `${host ?? 'localhost'}:${port ?? 5432}/${database ?? '(default database)'}`
  } catch {
    return '(a connection string that cannot be parsed)'
  }
}

/**
 * Creates the typed Kysely instance of the x402-jobs database: PostgreSQL through node-postgres
 * when a connection string is given or DATABASE_URL is set, otherwise the embedded PGlite
 * database. Nothing connects until the first query. Errors that PostgreSQL reports arrive as
 * {@link QueryError}. On PostgreSQL every wait is bounded (see serverClientConfig): connecting
 * (10 s), and each answer (query_timeout, 5 minutes unless the URL sets it). Call `db.destroy()`
 * when done.
 *
 * @example
 * ```ts
 * const db = createDb() // DATABASE_URL, or .data/pglite
 * const models = await db.selectFrom('x402_openrouter_models').selectAll().execute()
 * await db.destroy()
 * ```
 */
export function createDb(options: CreateDbOptions = {}): Kysely<DB> {
  const target = resolveDatabaseTarget(options)
  const pglite = target.kind === 'pglite' ? once(() => openPglite(target.dataDir, options.template)) : undefined
  const server = target.kind === 'postgres' ? target.connectionString : undefined
  const dialect = server ? new PostgresDialect({ pool: createPool(server, options.env ?? process.env) }) : new PGliteDialect({ pglite: pglite! })
  const hooked = withDialectHooks(withoutKyselyMigrationLock(dialect), {
    mapError: server ? (error) => toQueryError(explainTimeout(error, server)) : toQueryError,
    onStatement: options.onStatement,
  })
  const db = new Kysely<DB>({ dialect: hooked, log: options.log })
  if (pglite) registerEmbeddedDatabase(db, pglite)
  return db
}

function once<T>(open: () => Promise<T>): () => Promise<T> {
  let opened: Promise<T> | undefined
  return () => (opened ??= open())
}

function createPool(connectionString: string, env: NodeJS.ProcessEnv): pg.Pool {
  const pool = new pg.Pool(serverClientConfig(connectionString, env))
  // A connection that the server ended (a restart, pg_terminate_backend) emits 'error', which
  // without a listener crashes the process. The query in flight fails on its own (as a
  // QueryError), and the pool drops the connection: the next query gets a new one.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  return pool
}
