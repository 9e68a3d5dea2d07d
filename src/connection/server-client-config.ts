import pg from 'pg'

import { readConnectionString } from './connection-string.js'
import { serverAddress } from './database-target.js'
import { serverConnectionConfig } from './server-password.js'
import { CHECK_HOST_AND_PORT } from './unreachable.js'

/** How long connecting to a server may take, in ms, before the attempt fails. */
export const CONNECT_TIMEOUT_MS = 10_000

/**
 * How long a client waits for any one answer of the server, in ms, unless the URL's
 * `query_timeout` says otherwise. It bounds what no server setting can see: a proxy or network
 * path that stopped forwarding while the sockets stay open. It is above every statement that the
 * server bounds itself (MIGRATION_STATEMENT_TIMEOUT_MS), and leaves room for the statements
 * that lift statement_timeout on purpose, such as an index built concurrently on a large table.
 */
export const QUERY_TIMEOUT_MS = 300_000

/**
 * The node-postgres settings of every connection the module opens to a server: the URL's (its
 * own parameters win, `query_timeout` among them), the password looked up only when the server
 * asks for one (serverConnectionConfig), and a bound on every wait: connecting, each answer, and
 * TCP keepalive for a server that vanished. TCP keepalive cannot see a stopped client or a
 * stalled proxy; the server's timeouts and query_timeout do. A pool made with it drops a
 * connection whose answer did not come (see ServerClient).
 *
 * @example
 * ```ts
 * const pool = new pg.Pool(serverClientConfig('postgres://app:secret@db:5432/app'))
 * ```
 */
export function serverClientConfig(
  connectionString: string,
  env: NodeJS.ProcessEnv = process.env,
): pg.PoolConfig {
  return {
    application_name: 'x402-jobs-db',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    Client: ServerClient,
    ...serverConnectionConfig(connectionString, env),
  }
}

/**
 * A client of node-postgres for `config` ({@link serverClientConfig}, or a config made from it):
 * the one every connection of the module to a server is, a pool's included, so that each is
 * bounded alike (see ServerClient).
 *
 * @example
 * ```ts
 * const client = serverClient(serverClientConfig(url))
 * await client.connect()
 * ```
 */
export function serverClient(config: pg.ClientConfig): pg.Client {
  return new ServerClient(config)
}

/**
 * node-postgres's client, ended as soon as a query gets no answer within query_timeout.
 * node-postgres reports the timeout but leaves the connection waiting for that answer: every
 * later query on it would queue behind, each until its own timeout, and a pool would hand it out
 * again. Ended, the pool drops it, and every later query fails at once with the same error.
 */
class ServerClient extends pg.Client {
  /** The bound on a new connection's first answer (see connect). */
  readonly #firstAnswerMs: number

  constructor(config?: string | pg.ClientConfig) {
    super(config)
    const queryTimeout = typeof config === 'object' ? config.query_timeout : undefined
    this.#firstAnswerMs = Math.min(queryTimeout ?? QUERY_TIMEOUT_MS, CONNECT_TIMEOUT_MS)
    // A connection ended for want of an answer (below) emits 'error' as its socket closes, before
    // a pool has listened to it: the query in flight fails on its own.
    this.on('error', () => {})
    const query = this.query.bind(this) as (...args: unknown[]) => unknown
    let unanswered: Error | undefined
    this.query = ((...args: unknown[]) => {
      if (unanswered && typeof args.at(-1) !== 'function') return Promise.reject(unanswered)
      const sent = query(...args)
      if (sent instanceof Promise) {
        sent.catch((error: unknown) => {
          if (unanswered || !(error instanceof Error) || error.message !== 'Query read timeout')
            return
          unanswered = error
          void this.end()
        })
      }
      return sent
    }) as pg.Client['query']
  }

  /**
   * Connects, then asks the server one question, bounded as connecting is: a server or proxy that
   * lets a client in and then answers nothing is found at once, not at query_timeout, which is
   * long for the statements that rightly run long (review of f8f189d, F2). Said as a connection
   * that timed out, or, where the URL's query_timeout is the shorter, as that bound.
   */
  override connect(): Promise<pg.Client>
  override connect(callback: (error: Error | null, client?: pg.Client) => void): void
  override connect(
    callback?: (error: Error | null, client?: pg.Client) => void,
  ): Promise<pg.Client> | void {
    const ready = super.connect().then(async () => {
      try {
        // node-postgres reads query_timeout from a query's config too (not in its types).
        const hello = { text: 'SELECT 1', query_timeout: this.#firstAnswerMs } as pg.QueryConfig
        await this.query(hello)
        return this as pg.Client
      } catch (error) {
        throw this.#firstAnswerMs === CONNECT_TIMEOUT_MS &&
          error instanceof Error &&
          error.message === 'Query read timeout'
          ? new Error('timeout expired', { cause: error })
          : error
      }
    })
    if (!callback) return ready
    ready.then(
      (client) => callback(null, client),
      (error: Error) => callback(error),
    )
  }
}

/**
 * The error of a connection to `connectionString` that got no answer in time, said plainly with
 * the server and the bound (node-postgres says "timeout expired" or "Query read timeout"); any
 * other error as it is.
 *
 * @example
 * ```ts
 * await client.connect().catch((error) => { throw explainTimeout(error, url) })
 * ```
 */
export function explainTimeout(error: unknown, connectionString: string): unknown {
  const message = error instanceof Error ? error.message : ''
  const connecting = /^(timeout expired|Connection terminated due to connection timeout)$/.test(
    message,
  )
  if (!connecting && message !== 'Query read timeout') return error
  let server = 'the server'
  let queryTimeout: unknown
  try {
    const parsed = readConnectionString(connectionString)
    server = serverAddress(connectionString)
    queryTimeout = (parsed as { query_timeout?: unknown }).query_timeout
  } catch {
    // Left unnamed: a URL that cannot be parsed never connected.
  }
  const stopped =
    'a server that stopped responding, or a proxy or network path that stopped forwarding'
  return new Error(
    connecting
      ? `Could not connect to ${server}: it did not answer within ${CONNECT_TIMEOUT_MS} ms (${stopped}). ` +
          CHECK_HOST_AND_PORT
      : `The database at ${server} did not answer within ${Number(queryTimeout ?? QUERY_TIMEOUT_MS)} ms (query_timeout): ` +
          `${stopped}. The client gave up on that connection. Where a statement rightly runs longer, raise ` +
          'query_timeout in the URL (?query_timeout=<ms>).',
    { cause: error },
  )
}
