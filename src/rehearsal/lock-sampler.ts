import { setTimeout as sleep } from 'node:timers/promises'

import pg from 'pg'

import { endClient } from '../connection/end-client.js'
import { serverClient, serverClientConfig } from '../connection/server-client-config.js'

import { type LockMode, lockModeName } from './lock-modes.js'
import type { ExistingTable } from './existing-tables.js'

/** What a second session saw of a statement while it ran. */
export interface SampledLocks {
  /** Modes seen per table oid, granted or requested. */
  modes: Map<number, Set<LockMode>>
  /**
   * When the sampler let go of its hold (performance.now()) because the statement queued behind
   * it: the statement's own work starts there. Undefined when it never queued.
   */
  releasedAt: number | undefined
}

/**
 * A second session that watches the locks of a statement run outside a transaction, where its
 * own session cannot look after it: they are gone once it ends.
 *
 * A fast statement can end between two looks, so before it starts the sampler takes SHARE
 * UPDATE EXCLUSIVE on every existing table (NOWAIT: it gives up on a table someone holds). Any
 * statement that needs that mode or a stronger one (every mode that blocks writes, VALIDATE,
 * CREATE INDEX CONCURRENTLY) then queues behind it, where pg_locks shows what it asked for; the
 * sampler lets go at once, long before any lock_timeout. The wait is left out of the statement's
 * time. Weaker modes (reads and writes of rows) are seen only when a look falls while they run.
 */
export class LockSampler {
  readonly #client: pg.Client
  #pid = 0

  private constructor(client: pg.Client) {
    this.#client = client
  }

  /**
   * Opens the second session on `connectionString`.
   *
   * @example
   * ```ts
   * const sampler = await LockSampler.open(scratchUrl)
   * ```
   */
  static async open(connectionString: string): Promise<LockSampler> {
    const client = serverClient({
      ...serverClientConfig(connectionString),
      application_name: 'x402-jobs-db rehearsal sampler',
    })
    await client.connect()
    const sampler = new LockSampler(client)
    sampler.#pid = Number(
      (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid,
    )
    return sampler
  }

  /**
   * Runs `statement` (on session `pid`) while watching its table locks on `tables`, holding
   * `held` (a subset, or none) until it queues.
   *
   * @example
   * ```ts
   * const { result, sampled } = await sampler.watch(pid, tables, tables, () => run())
   * ```
   */
  async watch<T>(
    pid: number,
    held: readonly ExistingTable[],
    tables: readonly ExistingTable[],
    statement: () => Promise<T>,
  ): Promise<{ result: T; sampled: SampledLocks }> {
    const modes = new Map<number, Set<LockMode>>()
    const holding = held.length > 0 && (await this.#hold(held))
    let released = !holding
    let releasedAt: number | undefined
    let finished = false
    const running = statement().finally(() => {
      finished = true
    })
    running.catch(() => {})
    const oids = `'{${tables.map((table) => table.oid).join(',')}}'::oid[]`
    while (!finished) {
      const { rows } = await this.#client.query<{
        relation: number
        mode: string
        granted: boolean
        blocked: boolean
      }>(
        `SELECT l.relation::int AS relation, l.mode, l.granted, ${this.#pid} = ANY (pg_blocking_pids(${Number(pid)})) AS blocked
         FROM pg_locks l WHERE l.pid = ${Number(pid)} AND l.locktype = 'relation' AND l.relation = ANY (${oids})`,
      )
      for (const row of rows) {
        const seen = modes.get(Number(row.relation)) ?? new Set<LockMode>()
        seen.add(lockModeName(row.mode))
        modes.set(Number(row.relation), seen)
      }
      if (!released && rows.some((row) => row.blocked)) {
        // Before the COMMIT is sent: the statement's answer, which the COMMIT sets free, may be
        // read before the COMMIT's own, and its time must never start after it ended.
        releasedAt = performance.now()
        released = true
        await this.#client.query('COMMIT')
      }
      if (rows.length === 0) await sleep(1)
    }
    if (!released) await this.#client.query('COMMIT')
    return { result: await running, sampled: { modes, releasedAt } }
  }

  // A few tries: autovacuum may hold one of the tables for a moment.
  async #hold(tables: readonly ExistingTable[]): Promise<boolean> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      await this.#client.query('BEGIN')
      try {
        await this.#client.query(
          `LOCK TABLE ${tables.map((table) => table.name).join(', ')} IN SHARE UPDATE EXCLUSIVE MODE NOWAIT`,
        )
        return true
      } catch {
        await this.#client.query('ROLLBACK')
        await sleep(10 * attempt)
      }
    }
    return false
  }

  /** Closes the second session. */
  async close(): Promise<void> {
    await endClient(this.#client)
  }
}
