import { CompiledQuery, type DatabaseConnection, type QueryResult } from 'kysely'

import { type ExistingTable, oidArray } from './existing-tables.js'
import { lockModeName } from './lock-modes.js'
import type { LockSampler } from './lock-sampler.js'
import type { MeasuredStatement, TableLock } from './measured-statement.js'

/** Below this lock_timeout, the sampler does not make a statement queue behind it. */
const MIN_LOCK_TIMEOUT_TO_HOLD_MS = 200

/** Where the rehearsal runs: a second session can watch on PostgreSQL only. */
export type ScratchKind = 'postgres' | 'pglite'

interface Probe {
  lockTimeout: string
  lockTimeoutMs: number
  locks: Array<[number, string]>
  files: Array<[number, number]>
  scans: Array<[number, number, number]>
}

interface OpenLock {
  lock: TableLock
  /** Index, in the transaction's statements, of the statement that took it. */
  from: number
}

/**
 * Measures every statement sent while it records: it runs each statement, then, on the same
 * session, reads what the statement left behind (pg_locks, relfilenodes, the transaction's scan
 * counts, lock_timeout). Outside a transaction the locks are gone by then, so a second session
 * watches while the statement runs (PostgreSQL), or the report says they cannot be measured
 * (PGlite). The probing's own queries are not recorded, and their time is not counted.
 */
export class StatementRecorder {
  readonly #kind: ScratchKind
  readonly #sampler: LockSampler | undefined
  #tables: ExistingTable[] = []
  #filenodes = new Map<number, number>()
  #statements: MeasuredStatement[] = []
  #recording = false
  #transaction: number | null = null
  #transactions = 0
  #transactionStatements: MeasuredStatement[] = []
  #openLocks: OpenLock[] = []
  #seenInTransaction = new Set<string>()
  #scansInTransaction = new Map<number, [number, number]>()
  readonly #pids = new WeakMap<DatabaseConnection, number>()

  constructor(kind: ScratchKind, sampler?: LockSampler) {
    this.#kind = kind
    this.#sampler = sampler
  }

  /** Starts recording, with `tables` as the tables that existed before. */
  start(tables: readonly ExistingTable[]): void {
    this.#tables = [...tables]
    this.#filenodes = new Map(tables.map((table) => [table.oid, table.filenode]))
    this.#statements = []
    this.#transaction = null
    this.#transactions = 0
    this.#recording = true
  }

  /** Stops recording and returns what it measured. */
  stop(): MeasuredStatement[] {
    this.#recording = false
    return this.#statements
  }

  get recording(): boolean {
    return this.#recording
  }

  /** Runs `query` on `connection`, measured when recording. */
  async execute<R>(
    connection: DatabaseConnection,
    query: CompiledQuery,
    run: () => Promise<QueryResult<R>>,
  ): Promise<QueryResult<R>> {
    if (!this.#recording) return run()
    const control = transactionControl(query.sql)
    if (control === 'begin') {
      const result = await run()
      await this.begin(connection)
      return result
    }
    if (control === 'end') return this.end(run)
    if (this.#transaction !== null) return this.#inTransaction(connection, query, run)
    return this.#onItsOwn(connection, query, run)
  }

  /**
   * A transaction began on `connection` (BEGIN sent by the driver or by a script). Its scan
   * counts start from what the session has not flushed yet (PGlite never goes idle to flush).
   */
  async begin(connection: DatabaseConnection): Promise<void> {
    if (!this.#recording) return
    this.#transaction = ++this.#transactions
    this.#transactionStatements = []
    this.#openLocks = []
    this.#seenInTransaction = new Set()
    const probe = await this.#probe(connection, 'pg_stat_xact_user_tables')
    this.#scansInTransaction = new Map(
      probe.scans.map(([oid, scans, rows]) => [oid, [scans, rows]]),
    )
  }

  /** The transaction ends with `run` (COMMIT or ROLLBACK): every lock it took is released. */
  async end<T>(run: () => Promise<T>): Promise<T> {
    if (!this.#recording || this.#transaction === null) return run()
    const started = performance.now()
    try {
      return await run()
    } finally {
      const endMs = performance.now() - started
      for (const { lock, from } of this.#openLocks) {
        lock.heldMs = round(
          this.#transactionStatements
            .slice(from)
            .reduce((sum, statement) => sum + statement.durationMs, endMs),
        )
      }
      this.#transaction = null
    }
  }

  async #inTransaction<R>(
    connection: DatabaseConnection,
    query: CompiledQuery,
    run: () => Promise<QueryResult<R>>,
  ): Promise<QueryResult<R>> {
    const statement = this.#newStatement(query.sql, 'same-session')
    const started = performance.now()
    try {
      return await run()
    } catch (error) {
      statement.error = error instanceof Error ? error.message : String(error)
      throw error
    } finally {
      statement.durationMs = round(performance.now() - started)
      this.#transactionStatements.push(statement)
      // After an error the transaction is aborted: nothing more can be read until it ends.
      if (statement.error === undefined) {
        const probe = await this.#probe(connection, 'pg_stat_xact_user_tables')
        statement.lockTimeout = probe.lockTimeout
        for (const [oid, mode] of probe.locks) {
          const key = `${oid}:${mode}`
          if (this.#seenInTransaction.has(key)) continue
          this.#seenInTransaction.add(key)
          const lock: TableLock = {
            table: this.#nameOf(oid),
            mode: lockModeName(mode),
            heldMs: null,
          }
          statement.locks.push(lock)
          this.#openLocks.push({ lock, from: this.#transactionStatements.length - 1 })
        }
        statement.rewrote = this.#rewritten(probe)
        statement.scanned = this.#scanDeltas(probe, this.#scansInTransaction)
      }
    }
  }

  async #onItsOwn<R>(
    connection: DatabaseConnection,
    query: CompiledQuery,
    run: () => Promise<QueryResult<R>>,
  ): Promise<QueryResult<R>> {
    const sampler = this.#kind === 'postgres' ? this.#sampler : undefined
    const statement = this.#newStatement(query.sql, sampler ? 'second-session' : 'not-measurable')
    const committed = sampler ? await this.#probe(connection, 'pg_stat_user_tables') : undefined
    const before =
      committed &&
      new Map(
        committed.scans.map(([oid, scans, rows]): [number, [number, number]] => [
          oid,
          [scans, rows],
        ]),
      )
    // The sampler's hold must not make a statement with a very short lock_timeout give up.
    const hold =
      committed !== undefined &&
      (committed.lockTimeoutMs === 0 || committed.lockTimeoutMs >= MIN_LOCK_TIMEOUT_TO_HOLD_MS)
    const pid = sampler ? await this.#pidOf(connection) : 0
    const started = performance.now()
    let ended = started
    let releasedAt: number | undefined
    try {
      if (!sampler) return await run()
      const { result, sampled } = await sampler.watch(
        pid,
        hold ? this.#tables : [],
        this.#tables,
        async () => {
          try {
            return await run()
          } finally {
            ended = performance.now()
          }
        },
      )
      releasedAt = sampled.releasedAt
      for (const [oid, modes] of sampled.modes) {
        for (const mode of modes)
          statement.locks.push({ table: this.#nameOf(oid), mode, heldMs: null })
      }
      return result
    } catch (error) {
      statement.error = error instanceof Error ? error.message : String(error)
      throw error
    } finally {
      if (!sampler) ended = performance.now()
      statement.durationMs = round(ended - Math.max(started, releasedAt ?? started))
      // Outside a transaction a lock lasts as long as its statement.
      for (const lock of statement.locks) lock.heldMs = statement.durationMs
      const probe = await this.#probe(connection, sampler ? 'pg_stat_user_tables' : undefined)
      statement.lockTimeout = probe.lockTimeout
      statement.rewrote = this.#rewritten(probe)
      statement.scanned = before ? this.#scanDeltas(probe, before) : null
    }
  }

  #newStatement(sql: string, lockEvidence: MeasuredStatement['lockEvidence']): MeasuredStatement {
    const statement: MeasuredStatement = {
      index: this.#statements.length + 1,
      sql: sql.trim(),
      transaction: this.#transaction,
      lockTimeout: '',
      durationMs: 0,
      lockEvidence,
      locks: [],
      rewrote: [],
      scanned: [],
    }
    this.#statements.push(statement)
    return statement
  }

  async #pidOf(connection: DatabaseConnection): Promise<number> {
    let pid = this.#pids.get(connection)
    if (pid === undefined) {
      const { rows } = await connection.executeQuery<{ pid: number }>(
        CompiledQuery.raw('SELECT pg_backend_pid() AS pid'),
      )
      pid = Number(rows[0]!.pid)
      this.#pids.set(connection, pid)
    }
    return pid
  }

  /**
   * Reads what `connection`'s session holds and sees. A scan is a sequential or an index scan:
   * a FOREIGN KEY's validation reads every row through an index as surely as a CHECK reads them
   * in order, while a catalog-only change reads none. With pg_stat_user_tables, the scan counts
   * that committed work left, after asking the session to flush its pending statistics
   * (PostgreSQL 15's pg_stat_force_next_flush: it flushes before it answers).
   */
  async #probe(
    connection: DatabaseConnection,
    statsView: 'pg_stat_xact_user_tables' | 'pg_stat_user_tables' | undefined,
  ): Promise<Probe> {
    const oids = oidArray(this.#tables)
    if (statsView === 'pg_stat_user_tables')
      await connection.executeQuery(CompiledQuery.raw('SELECT pg_stat_force_next_flush()'))
    const scans = statsView
      ? `(SELECT json_agg(json_build_array(s.relid::int, s.seq_scan + coalesce(s.idx_scan, 0), s.seq_tup_read + coalesce(s.idx_tup_fetch, 0))) FROM ${statsView} s WHERE s.relid = ANY (${oids}))`
      : 'NULL'
    const { rows } = await connection.executeQuery<Record<keyof Probe, unknown>>(
      CompiledQuery.raw(`
        SELECT current_setting('lock_timeout') AS "lockTimeout",
          (SELECT setting::int FROM pg_settings WHERE name = 'lock_timeout') AS "lockTimeoutMs",
          (SELECT json_agg(json_build_array(l.relation::int, l.mode)) FROM pg_locks l
            WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted AND l.relation = ANY (${oids})) AS locks,
          (SELECT json_agg(json_build_array(c.oid::int, pg_relation_filenode(c.oid))) FROM pg_class c WHERE c.oid = ANY (${oids})) AS files,
          ${scans} AS scans`),
    )
    const row = rows[0]!
    return {
      lockTimeout: String(row.lockTimeout),
      lockTimeoutMs: Number(row.lockTimeoutMs),
      locks: parsed(row.locks),
      files: parsed(row.files),
      scans: parsed<[number, number, number]>(row.scans).map(([oid, scans, rowsRead]) => [
        Number(oid),
        Number(scans),
        Number(rowsRead),
      ]),
    }
  }

  #rewritten(probe: Probe): string[] {
    const rewrote: string[] = []
    for (const [oid, filenode] of probe.files) {
      const before = this.#filenodes.get(oid)
      if (before !== undefined && filenode !== null && Number(filenode) !== before)
        rewrote.push(this.#nameOf(oid))
      if (filenode !== null) this.#filenodes.set(oid, Number(filenode))
    }
    return rewrote
  }

  /** The scans (sequential or by index) since `before`, which it then moves on to now. */
  #scanDeltas(
    probe: Probe,
    before: Map<number, [number, number]>,
  ): { table: string; rowsRead: number }[] {
    const scanned: { table: string; rowsRead: number }[] = []
    for (const [oid, scans, rowsRead] of probe.scans) {
      const [scansBefore, rowsBefore] = before.get(oid) ?? [0, 0]
      if (scans > scansBefore)
        scanned.push({ table: this.#nameOf(oid), rowsRead: rowsRead - rowsBefore })
      before.set(oid, [scans, rowsRead])
    }
    return scanned
  }

  #nameOf(oid: number): string {
    return this.#tables.find((table) => table.oid === Number(oid))?.name ?? `table ${oid}`
  }
}

function parsed<T = never>(value: unknown): T[] {
  if (value === null || value === undefined) return []
  return (typeof value === 'string' ? JSON.parse(value) : value) as T[]
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100
}

/**
 * Whether `sql` begins or ends a transaction, as a script's own BEGIN and COMMIT do.
 *
 * @example
 * ```ts
 * transactionControl('COMMIT;') // 'end'
 * ```
 */
export function transactionControl(sql: string): 'begin' | 'end' | undefined {
  const text = sql.trim().replace(/;$/, '').toLowerCase()
  if (/^(begin|start transaction)\b/.test(text)) return 'begin'
  if (/^(commit|end|rollback|abort)(\s+(work|transaction))?$/.test(text)) return 'end'
  return undefined
}
