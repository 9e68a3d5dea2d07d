import type { DatabaseConnection, Dialect, Driver, Kysely, QueryResult } from 'kysely'

import { toQueryError } from './query-error.js'

/**
 * Wraps a dialect so that every error PostgreSQL reports for a query reaches the caller as a
 * {@link QueryError}, whichever driver (node-postgres or PGlite) ran it. Everything else is the
 * original dialect's.
 *
 * @example
 * ```ts
 * new Kysely<DB>({ dialect: withQueryErrors(new PostgresDialect({ pool })) })
 * ```
 */
export function withQueryErrors(dialect: Dialect): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db: Kysely<any>) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver: () => new QueryErrorDriver(dialect.createDriver()),
  }
}

type Tail<T extends unknown[]> = T extends [unknown, ...infer Rest] ? Rest : never

class QueryErrorConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}

  async executeQuery<R>(
    ...args: Parameters<DatabaseConnection['executeQuery']>
  ): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(...args)
    } catch (error) {
      throw toQueryError(error)
    }
  }

  async *streamQuery<R>(
    ...args: Parameters<DatabaseConnection['streamQuery']>
  ): AsyncIterableIterator<QueryResult<R>> {
    try {
      yield* this.inner.streamQuery<R>(...args)
    } catch (error) {
      throw toQueryError(error)
    }
  }
}

/**
 * Hands out one wrapper per real connection, and gives the real connection back to the driver
 * wherever the driver takes one: drivers use their connections' private methods.
 */
class QueryErrorDriver implements Driver {
  readonly #driver: Driver
  readonly #wrappers = new WeakMap<DatabaseConnection, QueryErrorConnection>()

  constructor(driver: Driver) {
    this.#driver = driver
    // Kysely looks for the savepoint methods to know whether the driver has them.
    if (!driver.savepoint) this.savepoint = undefined
    if (!driver.rollbackToSavepoint) this.rollbackToSavepoint = undefined
    if (!driver.releaseSavepoint) this.releaseSavepoint = undefined
  }

  init(...args: Parameters<Driver['init']>) {
    return this.#driver.init(...args)
  }

  async acquireConnection(...args: Parameters<Driver['acquireConnection']>) {
    const connection = await this.#driver.acquireConnection(...args)
    let wrapper = this.#wrappers.get(connection)
    if (!wrapper) {
      wrapper = new QueryErrorConnection(connection)
      this.#wrappers.set(connection, wrapper)
    }
    return wrapper
  }

  beginTransaction(connection: DatabaseConnection, ...rest: Tail<Parameters<Driver['beginTransaction']>>) {
    return this.#driver.beginTransaction(unwrap(connection), ...rest)
  }

  commitTransaction(connection: DatabaseConnection, ...rest: Tail<Parameters<Driver['commitTransaction']>>) {
    return this.#driver.commitTransaction(unwrap(connection), ...rest)
  }

  rollbackTransaction(connection: DatabaseConnection, ...rest: Tail<Parameters<Driver['rollbackTransaction']>>) {
    return this.#driver.rollbackTransaction(unwrap(connection), ...rest)
  }

  savepoint?: Driver['savepoint'] = (connection, ...rest) =>
    this.#driver.savepoint!(unwrap(connection), ...rest)

  rollbackToSavepoint?: Driver['rollbackToSavepoint'] = (connection, ...rest) =>
    this.#driver.rollbackToSavepoint!(unwrap(connection), ...rest)

  releaseSavepoint?: Driver['releaseSavepoint'] = (connection, ...rest) =>
    this.#driver.releaseSavepoint!(unwrap(connection), ...rest)

  releaseConnection(connection: DatabaseConnection, ...rest: Tail<Parameters<Driver['releaseConnection']>>) {
    return this.#driver.releaseConnection(unwrap(connection), ...rest)
  }

  destroy() {
    return this.#driver.destroy()
  }
}

function unwrap(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof QueryErrorConnection ? connection.inner : connection
}
