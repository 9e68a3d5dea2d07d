import { CompiledQuery, Kysely, type KyselyConfig, PGliteDialect, PostgresDialect } from 'kysely'
import pg from 'pg'

import { resolveDatabaseTarget } from './database-target.js'
import { registerEmbeddedDatabase } from './embedded-database.js'
import { IN_MEMORY } from './in-memory.js'
import { openPglite } from './open-pglite.js'
import { explainTimeout, serverClientConfig } from './server-client-config.js'
import { withoutKyselyMigrationLock } from './without-kysely-migration-lock.js'
import { toQueryError } from './query-error.js'
import { SHADOWED_CATALOG_SQL } from './shadowed-catalog.js'
import { type DialectHooks, withDialectHooks } from './dialect-hooks.js'
import type { DB } from '../types/database.js'

export { IN_MEMORY } from './in-memory.js'
export {
  DEFAULT_PGLITE_DATA_DIR,
  type DatabaseTarget,
  describeDatabaseTarget,
  resolveDatabaseTarget,
} from './database-target.js'

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
  /**
   * Before each connection's first query, refuse where a role that cannot act as the connected
   * one has put an operator or function named as PostgreSQL's own on the search_path (see
   * SHADOWED_CATALOG_SQL): the module's catalog reads would run its code. The command line sets
   * it; the migration runner checks once per run whatever it says.
   */
  refuseShadowedCatalog?: boolean
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
  const pglite =
    target.kind === 'pglite' ? once(() => openPglite(target.dataDir, options.template)) : undefined
  const server = target.kind === 'postgres' ? target.connectionString : undefined
  const dialect = server
    ? new PostgresDialect({ pool: createPool(server, options.env ?? process.env) })
    : new PGliteDialect({ pglite: pglite! })
  const hooked = withDialectHooks(withoutKyselyMigrationLock(dialect), {
    mapError: server ? (error) => toQueryError(explainTimeout(error, server)) : toQueryError,
    onStatement: options.onStatement,
    prepareConnection: options.refuseShadowedCatalog
      ? async (connection) => {
          await connection.executeQuery(CompiledQuery.raw(SHADOWED_CATALOG_SQL))
        }
      : undefined,
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
  // An idle connection that the server ended (a restart, pg_terminate_backend) emits 'error' on
  // the pool, which without a listener crashes the process; the pool drops it, and the next query
  // gets a new one. (Each ServerClient listens to its own.)
  pool.on('error', () => {})
  return pool
}
