import { mkdirSync } from 'node:fs'

import { PGlite } from '@electric-sql/pglite'
import { Kysely, type KyselyConfig, PGliteDialect, PostgresDialect } from 'kysely'
import pg from 'pg'

import { lockDataDir } from './data-dir-lock.js'
import { serverConnectionConfig } from './server-password.js'
import { withoutKyselyMigrationLock } from './without-kysely-migration-lock.js'
import { toQueryError } from './query-error.js'
import { type DialectHooks, withDialectHooks } from './dialect-hooks.js'
import type { DB } from '../types/database.js'

/** Where the embedded database lives when neither `dataDir` nor PGLITE_DATA_DIR says otherwise. */
export const DEFAULT_PGLITE_DATA_DIR = '.data/pglite'

/** PGlite's name for a database that lives only in memory. */
export const IN_MEMORY = 'memory://'

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
    if (!/^postgres(ql)?:\/\//.test(connectionString)) {
      throw new Error(
        `The connection string "${redactPassword(connectionString)}" is not a PostgreSQL URL. ` +
          'Expected postgres://user:password@host:5432/database; unset DATABASE_URL to use the embedded database.',
      )
    }
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
  return target.kind === 'postgres'
    ? `PostgreSQL at ${redactPassword(target.connectionString)}`
    : `embedded PGlite at ${target.dataDir}`
}

/**
 * Creates the typed Kysely instance of the x402-jobs database: PostgreSQL through node-postgres
 * when a connection string is given or DATABASE_URL is set, otherwise the embedded PGlite
 * database. Nothing connects until the first query. Errors that PostgreSQL reports arrive as
 * {@link QueryError}. Call `db.destroy()` when done.
 *
 * @example
 * ```ts
 * const db = createDb() // DATABASE_URL, or .data/pglite
 * const models = await db.selectFrom('ai_models').selectAll().execute()
 * await db.destroy()
 * ```
 */
export function createDb(options: CreateDbOptions = {}): Kysely<DB> {
  const target = resolveDatabaseTarget(options)
  const dialect =
    target.kind === 'postgres'
      ? new PostgresDialect({ pool: createPool(target.connectionString, options.env ?? process.env) })
      : new PGliteDialect({ pglite: () => openPglite(target.dataDir) })
  const hooked = withDialectHooks(withoutKyselyMigrationLock(dialect), {
    mapError: toQueryError,
    onStatement: options.onStatement,
  })
  return new Kysely<DB>({ dialect: hooked, log: options.log })
}

function createPool(connectionString: string, env: NodeJS.ProcessEnv): pg.Pool {
  const pool = new pg.Pool({
    ...serverConnectionConfig(connectionString, env),
    application_name: 'x402-jobs-db',
    // An unreachable server fails the first query instead of hanging it, and a server that
    // vanished without closing the connection is noticed by TCP keepalive.
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  })
  // A connection that the server ended (a restart, pg_terminate_backend) emits 'error', which
  // without a listener crashes the process. The query in flight fails on its own (as a
  // QueryError), and the pool drops the connection: the next query gets a new one.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  return pool
}

function openPglite(dataDir: string): PGlite {
  if (dataDir === IN_MEMORY) return new PGlite()
  mkdirSync(dataDir, { recursive: true })
  const release = lockDataDir(dataDir)
  const pglite = new PGlite(dataDir)
  // Kysely's destroy() closes the instance: that is when the folder is free again.
  const close = pglite.close.bind(pglite)
  pglite.close = () => close().finally(release)
  return pglite
}

function redactPassword(connectionString: string): string {
  try {
    const url = new URL(connectionString)
    if (url.password) url.password = '***'
    if (url.searchParams.has('password')) url.searchParams.set('password', '***')
    return url.toString()
  } catch {
    return '(a connection string that is not a valid URL)'
  }
}
