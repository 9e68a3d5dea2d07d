import type { Kysely } from 'kysely'
import type pg from 'pg'

const pools = new WeakMap<object, pg.Pool>()

/**
 * Remembers the pool behind a {@link createDb} instance, keyed by its adapter, which every
 * instance derived from it (withPlugin, transactions) shares.
 *
 * @example
 * ```ts
 * registerPool(db, pool)
 * ```
 */
export function registerPool(db: Kysely<any>, pool: pg.Pool): void {
  pools.set(db.getExecutor().adapter, pool)
}

/**
 * Cuts every connection of the pool behind `db` at once, without a word to the server: each
 * query in flight fails at once ("Connection terminated unexpectedly") instead of waiting for a
 * peer that stopped answering, and the server, when it hears of it, rolls back what was open.
 * A no-op on PGlite or a Kysely instance that createDb did not make. Returns how many were cut.
 *
 * @example
 * ```ts
 * severConnections(db) // after the migration lock was found lost
 * ```
 */
export function severConnections(db: Kysely<any>): number {
  const pool = pools.get(db.getExecutor().adapter)
  if (!pool) return 0
  // node-postgres keeps its clients in a field it does not type; destroying the socket is what
  // a network cut does, and the pool drops each client when it ends.
  const clients = (pool as unknown as { _clients: pg.Client[] })._clients ?? []
  for (const client of clients) {
    ;(client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy()
  }
  return clients.length
}
