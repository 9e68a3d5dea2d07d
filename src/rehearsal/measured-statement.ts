import type { LockMode } from './lock-modes.js'

/** A lock a statement took on a table that existed before the migration. */
export interface TableLock {
  table: string
  mode: LockMode
  /**
   * How long it was held, in ms: from the start of the statement that took it until its
   * transaction ended (the statement alone outside a transaction). The rehearsal's own probing
   * between statements is not counted. Null when the run stopped before the lock was released.
   */
  heldMs: number | null
}

/** How the locks of a statement were seen. */
export type LockEvidence =
  /** pg_locks read on the statement's own session after it ran, inside its transaction. */
  | 'same-session'
  /** pg_locks read from a second session while it ran (outside a transaction, PostgreSQL). */
  | 'second-session'
  /** Nothing could see them: outside a transaction on PGlite, which has one connection. */
  | 'not-measurable'

/** One statement of a rehearsed migration, as measured. */
export interface MeasuredStatement {
  /** 1-based, in the order the migration sent them. */
  index: number
  sql: string
  /** The migration's transaction it ran in (1-based), or null when it ran on its own. */
  transaction: number | null
  /** lock_timeout in force after it ran (`SHOW lock_timeout`: '0' is none). */
  lockTimeout: string
  durationMs: number
  lockEvidence: LockEvidence
  /** Locks it took on tables that existed before the migration. */
  locks: TableLock[]
  /** Tables whose relfilenode it changed: it wrote them anew. */
  rewrote: string[]
  /** Tables it read through in full (sequential scans) and the rows read; null when unknown. */
  scanned: { table: string; rowsRead: number }[] | null
  /** The error it failed with, if it did. */
  error?: string
}

/** The rehearsal of one migration. */
export interface MigrationRehearsal {
  name: string
  /** Whether the runner wraps it in its transaction (false: `config = { transaction: false }`). */
  runnerTransaction: boolean
  statements: MeasuredStatement[]
  durationMs: number
  error?: string
}
