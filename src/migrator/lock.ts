import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

import { type Kysely, PGliteAdapter, sql } from 'kysely'

import { canActAs } from '../connection/shadowed-catalog.js'
import { errorCode, SQLSTATE } from '../connection/sql-state.js'
import { hasKyselyMigrationLockDisabled } from '../connection/without-kysely-migration-lock.js'
import {
  HISTORY_LOCK_HOLDER_SQL,
  type HistoryLockHolder,
  HistoryLockedError,
} from './locked-history.js'
import { MigrationLockLostError } from './migration-error.js'

/**
 * The advisory lock key of this module's migrations, the same on every instance of the app.
 * (The Supabase stand-in uses 402005001.)
 */
export const MIGRATION_LOCK_KEY = 402_005_000

/**
 * The advisory key of a run's writers (see {@link holdWriterLock}), next to
 * {@link MIGRATION_LOCK_KEY} and the Supabase stand-in's 402005001. Writers take it shared only,
 * and no one ever takes it exclusively: writers never wait for each other.
 */
export const MIGRATION_WRITER_KEY = 402_005_002

/** How long a run waits for another instance's run to finish, unless told otherwise. */
export const DEFAULT_LOCK_WAIT_MS = 120_000

/**
 * How long a session of a run may sit idle in a transaction, unless told otherwise: how long
 * writers wait for the locks of a stopped run, and another run for its migration lock.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 5_000

/**
 * tcp_user_timeout (PostgreSQL 12 and later) of a run's sessions, unless told otherwise: how long
 * the server's kernel waits for a client to take what it was sent before it drops the connection,
 * and the server ends the backend and its locks. It bounds what the idle timeout cannot: a
 * client stopped while the server writes it a result larger than the sockets hold, whose backend
 * stays active in ClientWrite, where PostgreSQL handles no statement or transaction timeout
 * (review revg F6). Linux applies it to the probes of a zero receive window, which the kernel of
 * a stopped process keeps answering.
 */
export const DEFAULT_TCP_USER_TIMEOUT_MS = 5_000

/** What a run learns about its connection while it takes the lock, and how it keeps it. */
export interface MigrationSession {
  /**
   * True when two statements of one client session reached different server connections: a
   * transaction-mode pooler (PgBouncer, Supavisor on Supabase's port 6543) is in between, and
   * only work inside a transaction is safe.
   */
  transactionPooler: boolean
  /**
   * Confirms on the lock session that this run still holds the lock, and throws if it was lost
   * (a terminated session, a network cut): the run confirms before each step that writes, so
   * that it never writes beside the run that may hold the lock by now.
   */
  assertLockHeld(): Promise<void>
  /** The error once the lock was found lost, else undefined. */
  lockLost(): Error | undefined
}

/** Options of {@link withMigrationLock}. */
export interface MigrationLockOptions {
  /** How long to wait for another run's lock, in ms. */
  lockWaitMs?: number
  /** Receives one line, naming the holder, when another run holds the lock and this one starts to wait. */
  log?: (line: string) => void
  /**
   * idle_in_transaction_session_timeout of the lock session, in ms: a stalled process loses the
   * lock after this long. While the run goes on, a heartbeat keeps the session busy three times
   * as often.
   */
  idleTimeoutMs?: number
}

/** How often a run that waits for the lock asks for it again. */
const LOCK_POLL_MS = 100

/**
 * Thrown when another run held the migration lock for longer than the wait allowed.
 */
export class MigrationLockTimeoutError extends Error {
  override readonly name = 'MigrationLockTimeoutError'
  readonly code = 'MIGRATION_LOCK_TIMEOUT'
}

const pgliteQueues = new WeakMap<Kysely<any>, Promise<unknown>>()

/**
 * Throws unless `db` was made by createDb (its dialect wrapped by withoutKyselyMigrationLock),
 * which the runner needs.
 */
export function assertRunnerDialect(db: Kysely<any>): void {
  if (!hasKyselyMigrationLockDisabled(db)) {
    throw new Error(
      'The migrator was given a Kysely instance that createDb() did not make. Create the database with createDb() ' +
        '(or wrap your dialect with withoutKyselyMigrationLock()), so that the runner holds the only migration lock.',
    )
  }
}

/**
 * Runs `work` while this process holds the module's migration lock, so that of many instances
 * starting at once only one migrates at a time and the others then find nothing to do.
 *
 * On PostgreSQL the lock is a transaction-scoped advisory lock, held by an open transaction on
 * a connection of its own. It cannot leak: the server drops it when that transaction ends or
 * its connection dies (a crashed process), and a transaction stays on one server connection
 * even through a transaction-mode pooler, where a session-level lock and its unlock can land on
 * different server connections. A run that finds the lock held logs one line and asks again
 * every 100 ms until `lockWaitMs` is over, then throws {@link MigrationLockTimeoutError}. PGlite
 * has one connection and its data folder is locked to one process, so there the lock only orders
 * the runs of this process.
 *
 * @example
 * ```ts
 * await withMigrationLock(db, async ({ transactionPooler }) => {
 *   // only one instance at a time gets here
 * })
 * ```
 */
export async function withMigrationLock<T>(
  db: Kysely<any>,
  work: (session: MigrationSession) => Promise<T>,
  options: MigrationLockOptions = {},
): Promise<T> {
  if (db.getExecutor().adapter instanceof PGliteAdapter) {
    return inProcessQueue(db, () =>
      work({ transactionPooler: false, assertLockHeld: async () => {}, lockLost: () => undefined }),
    )
  }

  const lockWaitMs = options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
  return db.connection().execute(async (lockConnection) => {
    let committed = false
    let heartbeat: NodeJS.Timeout | undefined
    let lost: Error | undefined
    let beating: Promise<void> = Promise.resolve()
    try {
      // Inside the try: if the probe fails after BEGIN, the ROLLBACK below still ends the
      // transaction before the connection goes back to the pool.
      const transactionPooler = await beginLockTransaction(db, lockConnection)
      await takeLock(db, lockConnection, lockWaitMs, idleTimeoutMs, options.log)
      const lose = (error: unknown) => {
        if (lost) return
        lost = new MigrationLockLostError(error)
        options.log?.(`[db] ${lost.message}`)
      }
      // Every operator, function and relation of the lock session's SQL is pg_catalog's, by name:
      // the run checked search_path once, before it waited for the lock, and a role that creates
      // `public.=(oid, integer)` (an exact match for `objid = <integer>`) meanwhile would have
      // the migrating role run its code (as in history-tables.ts).
      const stillHeld = async () => {
        const { rows } = await sql<{ held: boolean }>`
          SELECT EXISTS (SELECT FROM pg_catalog.pg_locks
                         WHERE pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
                           AND locktype OPERATOR(pg_catalog.=) 'advisory' AND granted
                           AND classid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                           AND objid OPERATOR(pg_catalog.=) ${sql.lit(MIGRATION_LOCK_KEY)}::pg_catalog.oid
                           AND objsubid OPERATOR(pg_catalog.=) 1::pg_catalog.int2) AS held
        `.execute(lockConnection)
        if (!rows[0]!.held) throw new Error('the lock session no longer holds it')
      }
      // Keeps the lock session from idling into its timeout while a statement of the run takes
      // long (an index build), and notices a lost lock in between.
      heartbeat = setInterval(
        () => {
          beating = beating.then(() => stillHeld().catch(lose))
        },
        Math.max(100, Math.floor(idleTimeoutMs / 3)),
      )
      heartbeat.unref()
      const assertLockHeld = async () => {
        await beating
        if (!lost) await stillHeld().catch(lose)
        if (lost) throw lost
      }
      const result = await work({ transactionPooler, assertLockHeld, lockLost: () => lost })
      clearInterval(heartbeat)
      await beating
      // Every write of the work was confirmed: a lock lost since then, or a COMMIT whose answer
      // never comes, changes nothing but the moment the server releases the lock (at the
      // latest, the idle timeout). The lock transaction itself writes nothing.
      committed = true
      await sql`COMMIT`.execute(lockConnection).catch((error: unknown) => {
        options.log?.(
          `[db] the migration lock session did not confirm its COMMIT (${error instanceof Error ? error.message : String(error)}); the server releases the lock as the session ends`,
        )
      })
      return result
    } finally {
      clearInterval(heartbeat)
      await beating
      // A failed ROLLBACK means the connection is gone, and the lock with it.
      if (!committed) await sql`ROLLBACK`.execute(lockConnection).catch(() => {})
    }
  })
}

/**
 * Opens the lock transaction and finds out, on the way, whether a transaction-mode pooler
 * separates the client sessions from the server's. Directly or through a session pooler, each
 * client session has a server backend of its own for as long as it is open: its backend never
 * changes, no other open session shares it, and no other client runs a query on it. A
 * transaction pooler hands a session a backend per transaction, and which one comes back depends
 * on the pool's order, its size and the app's traffic at that moment, so the probe gives the pool
 * a chance to show each of the three, and any one of them is proof:
 *
 * - the lock session asks for its backend first, in a transaction of its own, then the probe
 *   asks: a pool that reuses idle backends last in, first out hands the probe the lock session's;
 * - the probe asks again: a pool that reuses them first in, first out moves it to another one
 *   whenever it holds two or more idle;
 * - the lock session then begins and asks again: another client's transaction that ended in
 *   between hands it another backend (last in, first out), and so does a busy pool;
 * - it reads the last query of the probe's backend (pg_stat_activity): another client's, where an
 *   app request took that backend meanwhile;
 * - the probe asks a third time, now that the lock transaction keeps one backend busy.
 *
 * None of these can happen without a transaction pooler, so none can refuse a direct connection
 * or a session pooler. The backend's count of transactions is no proof: the server runs
 * transactions of its own on an idle backend (catching it up on other sessions' catalog changes).
 * A transaction pooler that, in that moment, hands each session the same backend every time,
 * used by no one else, goes unseen: with one pool and no traffic that cannot happen in either
 * order, whatever the pool holds; with several pools behind one address (PgBouncer as several
 * processes sharing a port, `so_reuseport`), the two sessions may each reach a pool of their own,
 * and it can (docs/connecting.md).
 */
async function beginLockTransaction(
  db: Kysely<any>,
  lockConnection: Kysely<any>,
): Promise<boolean> {
  return db.connection().execute(async (probe) => {
    // Marks the probe's own queries apart from any other client's, another run's probe among them.
    const mark = `x402 pooler probe ${randomBytes(8).toString('hex')}`
    const lockFirst = await probeBackend(lockConnection, mark)
    const first = await probeBackend(probe, mark)
    const second = await probeBackend(probe, mark)
    const sharedOrMoved = first === lockFirst || second !== first
    // READ COMMITTED whatever the database's default: at REPEATABLE READ the lock transaction
    // would hold one snapshot for the whole run, and 005's CREATE INDEX CONCURRENTLY waits for
    // every older snapshot: for this very transaction.
    await sql`BEGIN ISOLATION LEVEL READ COMMITTED`.execute(lockConnection)
    // Proven already: no more questions, which through a pool of one server connection would
    // wait behind the lock transaction until the pooler's own timeout.
    if (sharedOrMoved) return true
    const { rows } = await sql<{ pid: number; probe_query: string | null }>`
      SELECT pg_catalog.pg_backend_pid() AS pid,
             (SELECT query FROM pg_catalog.pg_stat_activity
              WHERE pid OPERATOR(pg_catalog.=) ${second}
                AND state OPERATOR(pg_catalog.<>) 'disabled') AS probe_query
    `.execute(lockConnection)
    const lockPid = rows[0]!.pid
    // Null where the server does not show that backend's query (track_activities off, or a role
    // that may not see it): no proof either way.
    const probeQuery = rows[0]!.probe_query
    if (lockPid !== lockFirst) return true
    if (probeQuery !== null && !probeQuery.includes(mark)) return true
    const third = await probeBackend(probe, mark)
    return third !== first || third === lockPid
  })
}

/** The probe's server backend; `mark`, first in the text that pg_stat_activity may cut short, names its query. */
async function probeBackend(probe: Kysely<any>, mark: string): Promise<number> {
  const { rows } = await sql<{ pid: number }>`
    /* ${sql.raw(mark)} */ SELECT pg_catalog.pg_backend_pid() AS pid
  `.execute(probe)
  return rows[0]!.pid
}

/**
 * Takes the lock in the open transaction of `lockConnection`, asking again every LOCK_POLL_MS
 * until `lockWaitMs` is over, and ending the transaction between two attempts. It does not
 * queue in pg_advisory_xact_lock: a statement that waits holds a snapshot, and the holder's
 * CREATE INDEX CONCURRENTLY (005) waits until every older snapshot in the database is gone. The
 * holder would wait for its waiters while they wait for it, until their lock wait ran out.
 */
async function takeLock(
  db: Kysely<any>,
  lockConnection: Kysely<any>,
  lockWaitMs: number,
  idleTimeoutMs: number,
  log: ((line: string) => void) | undefined,
): Promise<void> {
  const startedAt = Date.now()
  for (let attempt = 1; ; attempt++) {
    // The lock transaction idles while the migrations run on other connections; the heartbeat
    // keeps it within idle_in_transaction_session_timeout, and a stalled process loses it.
    // Nor does a transaction_timeout the database or the role defaults to (PostgreSQL 17) end it:
    // the lock transaction lasts the run on purpose, and holds no lock on any table.
    const { rows } = await sql<{ locked: boolean }>`
      SELECT pg_catalog.pg_try_advisory_xact_lock(${sql.lit(MIGRATION_LOCK_KEY)}::pg_catalog.int8) AS locked,
             pg_catalog.set_config('idle_in_transaction_session_timeout', ${`${idleTimeoutMs}ms`}, true),
             CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 170000
                  THEN pg_catalog.set_config('transaction_timeout', '0', true) END
    `.execute(lockConnection)
    // Only once the lock is granted (a statement of its own, after the grant): a writer of an
    // earlier run that still lives keeps it from this run (holdWriterLock).
    if (rows[0]!.locked && !(await earlierWriterLives(lockConnection))) return
    await sql`ROLLBACK`.execute(lockConnection)
    const waitedMs = Date.now() - startedAt
    if (waitedMs >= lockWaitMs) {
      const { holder, advice } = await lockHolder(db)
      throw new MigrationLockTimeoutError(
        `Waited ${lockWaitMs} ms for the migration lock, but ${holder}. ${advice}`,
      )
    }
    if (attempt === 1) {
      log?.(
        `[db] waiting for the migration lock: ${(await lockHolder(db)).holder}; waiting up to ${lockWaitMs} ms (MIGRATION_LOCK_WAIT_MS)`,
      )
    }
    await sleep(Math.min(LOCK_POLL_MS, lockWaitMs - waitedMs))
    await sql`BEGIN ISOLATION LEVEL READ COMMITTED`.execute(lockConnection)
  }
}

/** Whether another session of this database holds {@link MIGRATION_WRITER_KEY}: a writer of an earlier run. */
async function earlierWriterLives(lockConnection: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ lives: boolean }>`
    SELECT EXISTS (SELECT FROM pg_catalog.pg_locks
                   WHERE locktype OPERATOR(pg_catalog.=) 'advisory' AND granted
                     AND classid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                     AND objid OPERATOR(pg_catalog.=) ${sql.lit(MIGRATION_WRITER_KEY)}::pg_catalog.oid
                     AND objsubid OPERATOR(pg_catalog.=) 1::pg_catalog.int2
                     AND database OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
                                                          WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                     AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()) AS lives
  `.execute(lockConnection)
  return rows[0]!.lives
}

/**
 * Holds {@link MIGRATION_WRITER_KEY}, shared, on `db`, the connection or transaction of a writer
 * of a run under {@link withMigrationLock}: a transaction of the run (`transaction`: until it
 * ends; safe through a transaction-mode pooler), or the connection of a migration that runs
 * outside one (`session`: until {@link releaseWriterLock}, or until the connection dies). A writer
 * takes it before its first write and before it first asks the lock session
 * (MigrationSession.assertLockHeld).
 *
 * The fence: no run takes the migration lock while a writer of an earlier run still lives.
 * takeLock, once granted the migration lock, looks for holders of this key and, while there is
 * one, lets the lock go and waits. A writer took this key before it asked; if the lock session
 * answered "held", any other run's grant came after that answer, so its look finds the writer
 * until the writer's transaction or connection ends. A late "held" (a network path that stalls
 * while the server ends the lock session: pg_terminate_backend, an idle or transaction timeout)
 * can then let the writer write only while no other run holds the lock, DDL included. A stalled
 * writer is bounded by its idle timeouts (setSessionBounds). No-op on PGlite: one connection.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await holdWriterLock(trx, 'transaction')
 *   // … writes, then session.assertLockHeld()
 * })
 * ```
 */
export async function holdWriterLock(
  db: Kysely<any>,
  scope: 'transaction' | 'session',
): Promise<void> {
  if (db.getExecutor().adapter instanceof PGliteAdapter) return
  const key = sql.lit(MIGRATION_WRITER_KEY)
  await (
    scope === 'transaction'
      ? sql`SELECT pg_catalog.pg_advisory_xact_lock_shared(${key}::pg_catalog.int8)`
      : sql`SELECT pg_catalog.pg_advisory_lock_shared(${key}::pg_catalog.int8)`
  ).execute(db)
}

/**
 * Lets go of the session-level hold of {@link holdWriterLock} on `db`, once the writer's last
 * write has ended (committed or rolled back).
 */
export async function releaseWriterLock(db: Kysely<any>): Promise<void> {
  if (db.getExecutor().adapter instanceof PGliteAdapter) return
  await sql`SELECT pg_catalog.pg_advisory_unlock_shared(${sql.lit(MIGRATION_WRITER_KEY)}::pg_catalog.int8)`.execute(
    db,
  )
}

/**
 * The idle and statement bounds of {@link setSessionBounds}; those left out are not set, but for
 * tcp_user_timeout, which is {@link DEFAULT_TCP_USER_TIMEOUT_MS} where left out.
 */
export interface SessionBounds {
  idleTimeoutMs: number
  tcpUserTimeoutMs?: number
  lockTimeoutMs?: number
  statementTimeoutMs?: number
  transactionTimeoutMs?: number
}

/**
 * The server's own bounds on what a session of a run may hold, so that a stalled client (a
 * stopped process, a frozen VM; TCP keepalive sees neither) cannot block writers, or the next
 * run's fence (holdWriterLock), for long: idle_in_transaction_session_timeout ends a transaction
 * whose client stopped sending, and with it its locks, and tcp_user_timeout (PostgreSQL 12 and
 * later) drops a client that stopped taking what the server sends it; in a transaction (`transaction`),
 * lock_timeout and statement_timeout bound each statement, and transaction_timeout (PostgreSQL 17
 * and later) the transaction as a whole, where given. On a migration's own connection (`session`)
 * the migration opens its transactions itself, some of them long on purpose (VALIDATE, CREATE
 * INDEX CONCURRENTLY): there only the idle bounds apply (the provider sets the statement bounds of
 * each migration), idle_session_timeout too (PostgreSQL 14 and later: a stalled client between
 * two statements), and READ COMMITTED becomes the default of its transactions. RESET ALL ends
 * them. Not on PGlite: one process holds the only connection, and no one else waits.
 */
export async function setSessionBounds(
  db: Kysely<any>,
  bounds: SessionBounds,
  scope: 'transaction' | 'session',
): Promise<void> {
  if (db.getExecutor().adapter instanceof PGliteAdapter) return
  const local = scope === 'transaction'
  const set = (name: string, ms: number | undefined) =>
    ms === undefined
      ? undefined
      : sql`SELECT pg_catalog.set_config(${name}, ${`${ms}ms`}, ${local})`.execute(db)
  const { rows } = await sql<{
    version: number
  }>`SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS version`.execute(
    db,
  )
  const version = rows[0]!.version
  await set('idle_in_transaction_session_timeout', bounds.idleTimeoutMs)
  // A client that stops taking what the server writes it (stopped while it reads a large result)
  // is dropped by the server's kernel: the backend, active in ClientWrite, is out of reach of the
  // idle, statement and transaction timeouts. Ignored on a Unix socket.
  if (version >= 120_000) {
    await set('tcp_user_timeout', bounds.tcpUserTimeoutMs ?? DEFAULT_TCP_USER_TIMEOUT_MS)
  }
  if (local) {
    await set('lock_timeout', bounds.lockTimeoutMs)
    await set('statement_timeout', bounds.statementTimeoutMs)
    // PostgreSQL arms the transaction's timer at BEGIN, from the database's or the role's default,
    // and a SET LOCAL after it only disarms (0) or arms a disarmed timer: 0 first, so that the
    // run's bound replaces a shorter default instead of being capped by it.
    if (version >= 170_000 && bounds.transactionTimeoutMs !== undefined) {
      await set('transaction_timeout', 0)
      await set('transaction_timeout', bounds.transactionTimeoutMs)
    }
  } else {
    await sql`SELECT pg_catalog.set_config('default_transaction_isolation', 'read committed', false)`.execute(
      db,
    )
    if (version >= 140_000) await set('idle_session_timeout', bounds.idleTimeoutMs)
    // The migration's own transactions and statements (an index built CONCURRENTLY, a VALIDATE)
    // are long on purpose: bounded by the provider's statement bounds and the idle bounds above,
    // not by a transaction_timeout the database defaults to.
    if (version >= 170_000) await set('transaction_timeout', 0)
  }
}

/**
 * Runs `work` in a transaction of its own bounded by the server ({@link setSessionBounds}): a lock
 * that another session holds on what it reads ends the statement with lock_timeout (55P03), and
 * a stopped client loses the transaction and its locks. Set with set_config(…, true), so that
 * nothing outlives the transaction on a connection that a transaction-mode pooler hands to
 * others. In `db`'s transaction it runs there, with the bounds its caller set.
 *
 * @example
 * ```ts
 * const rows = await inBoundedTransaction(db, { idleTimeoutMs: 5_000, lockTimeoutMs: 2_000 }, read)
 * ```
 */
export function inBoundedTransaction<T>(
  db: Kysely<any>,
  bounds: SessionBounds,
  work: (trx: Kysely<any>) => Promise<T>,
): Promise<T> {
  if (db.isTransaction) return work(db)
  return db.transaction().execute(async (trx) => {
    await setSessionBounds(trx, bounds, 'transaction')
    return work(trx)
  })
}

/**
 * Runs `read`, which reads the migration history (and what goes with it: the rollback's marks,
 * the checksums), in a transaction bounded as {@link inBoundedTransaction} bounds it, with
 * lock_timeout `lockTimeoutMs` (MIGRATION_LOCK_TIMEOUT_MS): another session's lock on the
 * history (an administrator's LOCK TABLE left open, a stuck ALTER) ends it with a
 * {@link HistoryLockedError} that names that session, instead of holding a command that only
 * reads for the client's 5-minute bound on an answer, with nothing printed (hostile review, F1).
 * In `db`'s transaction it runs there, bounded by its caller, and the caller words a failure:
 * that transaction can ask nothing more. Start-up's one statement (pendingMigrationNames) does
 * not come here: a bound would cost it statements.
 *
 * @example
 * ```ts
 * const history = await boundedHistoryRead(db, 2_000, (trx) => readMigrationHistory(trx))
 * ```
 */
export async function boundedHistoryRead<T>(
  db: Kysely<any>,
  lockTimeoutMs: number,
  read: (trx: Kysely<any>) => Promise<T>,
): Promise<T> {
  try {
    return await inBoundedTransaction(
      db,
      { idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS, lockTimeoutMs },
      read,
    )
  } catch (error) {
    if (db.isTransaction || errorCode(error) !== SQLSTATE.lockNotAvailable) throw error
    // Asked once the read gave up, on a connection of the pool: the holder's pid, for the message.
    const { rows } = await sql
      .raw<HistoryLockHolder>(HISTORY_LOCK_HOLDER_SQL)
      .execute(db)
      .catch(() => ({ rows: [] as HistoryLockHolder[] }))
    throw new HistoryLockedError(error, rows[0], lockTimeoutMs)
  }
}

/**
 * Runs `work` in a transaction as the module's writes run: at READ COMMITTED whatever the
 * database's default (the fenced lesser-code check refuses at any other level, where its snapshot
 * could be older than its lock: review revo O5; each migration was written for it), bounded
 * ({@link setSessionBounds}) and fenced ({@link holdWriterLock}).
 *
 * @example
 * ```ts
 * await inWriterTransaction(db, { idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS }, async (trx) => {
 *   await checkBookkeepingWrites(trx, { lock: true })
 *   // … writes, then session.assertLockHeld()
 * })
 * ```
 */
export function inWriterTransaction<T>(
  db: Kysely<any>,
  bounds: SessionBounds,
  work: (trx: Kysely<any>) => Promise<T>,
): Promise<T> {
  return db
    .transaction()
    .setIsolationLevel('read committed')
    .execute(async (trx) => {
      await setSessionBounds(trx, bounds, 'transaction')
      await holdWriterLock(trx, 'transaction')
      return work(trx)
    })
}

/** What a run keeps being told while another session holds the lock's key. */
const WAIT_FOR_THE_RUN =
  'Another instance or a deploy step is migrating this database: let it finish and start again, ' +
  'or allow a longer wait with MIGRATION_LOCK_WAIT_MS.'

/**
 * Who holds the migration lock in this database, or a writer of an earlier run
 * ({@link holdWriterLock}) that keeps it from this run, for a message, and what to do about it.
 * Any login that may connect can take an advisory lock of any key: a holder that cannot act as
 * the session user (the rule of LESSER_LOGIN_ROLES_SQL) is no run of this module, and is named
 * as the login it is (review revi R4).
 */
async function lockHolder(db: Kysely<any>): Promise<{ holder: string; advice: string }> {
  const { rows } = await sql<{
    pid: number
    application_name: string
    running_for: string | null
    state: string | null
    writer: boolean
    login: string | null
    run_user: string
    lesser: boolean
  }>`
    SELECT a.pid, a.application_name, a.state, a.usename AS login,
           session_user AS run_user, NOT ${sql.raw(canActAs('a.usesysid', 'session_user'))} AS lesser,
           l.objid OPERATOR(pg_catalog.=) ${sql.lit(MIGRATION_WRITER_KEY)}::pg_catalog.oid AS writer,
           pg_catalog.date_trunc('second', pg_catalog.now() OPERATOR(pg_catalog.-)
             COALESCE(a.xact_start, a.backend_start))::pg_catalog.text AS running_for
    FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid
    WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted
      AND l.classid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
      AND l.objid OPERATOR(pg_catalog.=) ANY (ARRAY[${sql.lit(MIGRATION_LOCK_KEY)}, ${sql.lit(MIGRATION_WRITER_KEY)}]::pg_catalog.oid[])
      AND l.objsubid OPERATOR(pg_catalog.=) 1::pg_catalog.int2
      AND l.database OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
                                             WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
    ORDER BY writer, a.pid
  `
    .execute(db)
    .catch(() => ({ rows: [] }))
  const holder = rows[0]
  if (!holder) return { holder: 'another run held it', advice: WAIT_FOR_THE_RUN }
  // Its state tells a run at work ("active") from a client that stopped sending ("idle …").
  const who = `pid ${holder.pid}, ${holder.application_name || 'no application name'}, for ${holder.running_for ?? 'a moment'}, ${holder.state ?? 'state unknown'}`
  if (holder.lesser) {
    return {
      holder: `login ${holder.login}, which cannot act as ${holder.run_user}, holds it (${who})`,
      advice:
        'No run of this module holds it as such a login: that session took the lock key by hand. ' +
        `Ask the database's administrator to end it (SELECT pg_terminate_backend(${holder.pid})) and to find out why that login holds it, then start again.`,
    }
  }
  return holder.writer
    ? {
        holder: `a writer of an earlier run is still open (${who}): no run takes it until that one ends`,
        advice: WAIT_FOR_THE_RUN,
      }
    : { holder: `another run holds it (${who})`, advice: WAIT_FOR_THE_RUN }
}

function inProcessQueue<T>(db: Kysely<any>, work: () => Promise<T>): Promise<T> {
  const previous = pgliteQueues.get(db) ?? Promise.resolve()
  const run = previous.then(work, work)
  pgliteQueues.set(
    db,
    run.catch(() => {}),
  )
  return run
}
