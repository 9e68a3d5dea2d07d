import type { DatabaseConnection, Dialect, Driver, Kysely, QueryResult } from 'kysely'

import type { StatementRecorder } from './statement-recorder.js'

type Tail<T extends unknown[]> = T extends [unknown, ...infer Rest] ? Rest : never

/**
 * Wraps `dialect` so that every statement, and every transaction the driver begins and ends,
 * goes through `recorder`, which measures them while it records.
 *
 * @example
 * ```ts
 * const db = new Kysely({ dialect: withStatementProbes(new PostgresDialect({ pool }), recorder) })
 * ```
 */
export function withStatementProbes(dialect: Dialect, recorder: StatementRecorder): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db: Kysely<any>) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver: () => new ProbingDriver(dialect.createDriver(), recorder),
  }
}

class ProbingConnection implements DatabaseConnection {
  constructor(
    readonly inner: DatabaseConnection,
    readonly recorder: StatementRecorder,
  ) {}

  executeQuery<R>(...args: Parameters<DatabaseConnection['executeQuery']>): Promise<QueryResult<R>> {
    return this.recorder.execute(this.inner, args[0], () => this.inner.executeQuery<R>(...args))
  }

  streamQuery<R>(...args: Parameters<DatabaseConnection['streamQuery']>): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(...args)
  }
}

class ProbingDriver implements Driver {
  readonly #driver: Driver
  readonly #recorder: StatementRecorder
  readonly #wrappers = new WeakMap<DatabaseConnection, ProbingConnection>()

  constructor(driver: Driver, recorder: StatementRecorder) {
    this.#driver = driver
    this.#recorder = recorder
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
      wrapper = new ProbingConnection(connection, this.#recorder)
      this.#wrappers.set(connection, wrapper)
    }
    return wrapper
  }

  async beginTransaction(connection: DatabaseConnection, ...rest: Tail<Parameters<Driver['beginTransaction']>>) {
    await this.#driver.beginTransaction(unwrap(connection), ...rest)
    await this.#recorder.begin(unwrap(connection))
  }

  commitTransaction(connection: DatabaseConnection, ...rest: Tail<Parameters<Driver['commitTransaction']>>) {
    return this.#recorder.end(() => this.#driver.commitTransaction(unwrap(connection), ...rest))
  }

  rollbackTransaction(connection: DatabaseConnection, ...rest: Tail<Parameters<Driver['rollbackTransaction']>>) {
    return this.#recorder.end(() => this.#driver.rollbackTransaction(unwrap(connection), ...rest))
  }

  savepoint?: Driver['savepoint'] = (connection, ...rest) => this.#driver.savepoint!(unwrap(connection), ...rest)

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
  return connection instanceof ProbingConnection ? connection.inner : connection
}
