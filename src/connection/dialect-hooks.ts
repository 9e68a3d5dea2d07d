import type {
  CompiledQuery,
  DatabaseConnection,
  Dialect,
  Driver,
  Kysely,
  QueryResult,
} from 'kysely'

/**
 * What a hooked dialect reports or changes: every statement a connection runs, the transaction
 * boundaries (which drivers such as PGlite's run without a statement), and errors.
 */
export interface DialectHooks {
  /**
   * Called with the SQL of every statement, and with BEGIN, COMMIT and ROLLBACK, and a number
   * that tells the connections of the pool apart.
   */
  onStatement?(sql: string, parameters: readonly unknown[], connection: number): void
  /** Turns an error of a query, a connection attempt or a BEGIN, COMMIT or ROLLBACK into the error the caller receives. */
  mapError?(error: unknown): unknown
  /**
   * Runs each query: `run` sends it on `connection` (the driver's own). For code that measures
   * around a statement, such as the lock rehearsal.
   */
  aroundQuery?<R>(
    connection: DatabaseConnection,
    query: CompiledQuery,
    run: () => Promise<QueryResult<R>>,
  ): Promise<QueryResult<R>>
  /**
   * Runs once on each new connection (the driver's own), before anything else is sent on it; a
   * failure gives the connection back and fails the query that asked for it.
   */
  prepareConnection?(connection: DatabaseConnection): Promise<void>
  /** Called once a transaction has begun on `connection` (the driver's own). */
  afterBegin?(connection: DatabaseConnection): Promise<void>
  /** Runs the end of a transaction (COMMIT or ROLLBACK): `end` sends it. */
  aroundEnd?(end: () => Promise<void>): Promise<void>
}

/**
 * Wraps a dialect with `hooks`; everything else is the original dialect's.
 *
 * @example
 * ```ts
 * const statements: string[] = []
 * new Kysely({ dialect: withDialectHooks(dialect, { onStatement: (sql) => statements.push(sql) }) })
 * ```
 */
export function withDialectHooks(dialect: Dialect, hooks: DialectHooks): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db: Kysely<any>) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver: () => new HookedDriver(dialect.createDriver(), hooks),
  }
}

type Tail<T extends unknown[]> = T extends [unknown, ...infer Rest] ? Rest : never

class HookedConnection implements DatabaseConnection {
  constructor(
    readonly inner: DatabaseConnection,
    readonly hooks: DialectHooks,
    readonly number: number,
  ) {}

  async executeQuery<R>(
    ...args: Parameters<DatabaseConnection['executeQuery']>
  ): Promise<QueryResult<R>> {
    this.hooks.onStatement?.(args[0].sql, args[0].parameters, this.number)
    const run = () => this.inner.executeQuery<R>(...args)
    try {
      return await (this.hooks.aroundQuery
        ? this.hooks.aroundQuery(this.inner, args[0], run)
        : run())
    } catch (error) {
      throw this.hooks.mapError ? this.hooks.mapError(error) : error
    }
  }

  async *streamQuery<R>(
    ...args: Parameters<DatabaseConnection['streamQuery']>
  ): AsyncIterableIterator<QueryResult<R>> {
    this.hooks.onStatement?.(args[0].sql, args[0].parameters, this.number)
    try {
      yield* this.inner.streamQuery<R>(...args)
    } catch (error) {
      throw this.hooks.mapError ? this.hooks.mapError(error) : error
    }
  }
}

/**
 * Hands out one wrapper per real connection, and gives the real connection back to the driver
 * wherever the driver takes one: drivers use their connections' private methods.
 */
class HookedDriver implements Driver {
  readonly #driver: Driver
  readonly #hooks: DialectHooks
  readonly #wrappers = new WeakMap<DatabaseConnection, HookedConnection>()
  #connections = 0

  constructor(driver: Driver, hooks: DialectHooks) {
    this.#driver = driver
    this.#hooks = hooks
    // Kysely looks for the savepoint methods to know whether the driver has them.
    if (!driver.savepoint) this.savepoint = undefined
    if (!driver.rollbackToSavepoint) this.rollbackToSavepoint = undefined
    if (!driver.releaseSavepoint) this.releaseSavepoint = undefined
  }

  init(...args: Parameters<Driver['init']>) {
    return this.#driver.init(...args)
  }

  async acquireConnection(...args: Parameters<Driver['acquireConnection']>) {
    const connection = await this.#mapped(this.#driver.acquireConnection(...args))
    let wrapper = this.#wrappers.get(connection)
    if (!wrapper) {
      if (this.#hooks.prepareConnection) {
        try {
          await this.#mapped(this.#hooks.prepareConnection(connection))
        } catch (error) {
          await this.#driver.releaseConnection(connection)
          throw error
        }
      }
      wrapper = new HookedConnection(connection, this.#hooks, this.#connections++)
      this.#wrappers.set(connection, wrapper)
    }
    return wrapper
  }

  async beginTransaction(
    connection: DatabaseConnection,
    ...rest: Tail<Parameters<Driver['beginTransaction']>>
  ) {
    this.#hooks.onStatement?.('BEGIN', [], numberOf(connection))
    await this.#mapped(this.#driver.beginTransaction(unwrap(connection), ...rest))
    await this.#hooks.afterBegin?.(unwrap(connection))
  }

  commitTransaction(
    connection: DatabaseConnection,
    ...rest: Tail<Parameters<Driver['commitTransaction']>>
  ) {
    this.#hooks.onStatement?.('COMMIT', [], numberOf(connection))
    return this.#end(() =>
      this.#mapped(this.#driver.commitTransaction(unwrap(connection), ...rest)),
    )
  }

  rollbackTransaction(
    connection: DatabaseConnection,
    ...rest: Tail<Parameters<Driver['rollbackTransaction']>>
  ) {
    this.#hooks.onStatement?.('ROLLBACK', [], numberOf(connection))
    return this.#end(() =>
      this.#mapped(this.#driver.rollbackTransaction(unwrap(connection), ...rest)),
    )
  }

  #end(end: () => Promise<void>): Promise<void> {
    return this.#hooks.aroundEnd ? this.#hooks.aroundEnd(end) : end()
  }

  /** `sent`, with its error mapped: connecting and the transaction boundaries fail like queries. */
  async #mapped<T>(sent: Promise<T>): Promise<T> {
    try {
      return await sent
    } catch (error) {
      throw this.#hooks.mapError ? this.#hooks.mapError(error) : error
    }
  }

  savepoint?: Driver['savepoint'] = (connection, ...rest) =>
    this.#driver.savepoint!(unwrap(connection), ...rest)

  rollbackToSavepoint?: Driver['rollbackToSavepoint'] = (connection, ...rest) =>
    this.#driver.rollbackToSavepoint!(unwrap(connection), ...rest)

  releaseSavepoint?: Driver['releaseSavepoint'] = (connection, ...rest) =>
    this.#driver.releaseSavepoint!(unwrap(connection), ...rest)

  releaseConnection(
    connection: DatabaseConnection,
    ...rest: Tail<Parameters<Driver['releaseConnection']>>
  ) {
    return this.#driver.releaseConnection(unwrap(connection), ...rest)
  }

  destroy() {
    return this.#driver.destroy()
  }
}

function numberOf(connection: DatabaseConnection): number {
  return connection instanceof HookedConnection ? connection.number : -1
}

function unwrap(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof HookedConnection ? connection.inner : connection
}
