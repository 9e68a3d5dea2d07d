/**
 * The bound on a read of the migration history that another session's lock holds up, and what
 * the read says when it runs out. Kept free of kysely: the no-op `migrate latest` of the command
 * line reads the history with pg alone, before kysely is loaded (up-to-date-at-once.ts), and
 * says it the same way as the commands that read it through kysely (boundedHistoryRead in
 * lock.ts).
 */
// Names another session chose (its application_name, a table's) are shown by the rule of a
// database's name: plain ones whole, none that looks like a key.
import { shownDatabaseName, shownShortOnTerminal } from '../connection/shown-argument.js'
import { SQLSTATE } from '../connection/sql-state.js'
import {
  BOOKKEEPING_TABLES,
  MIGRATION_CHECKSUM_TABLE,
  MIGRATION_HISTORY_TABLE,
  MIGRATION_TABLE_SCHEMA,
} from './history-tables.js'

/** lock_timeout of a statement that must not queue the app's queries behind it, in ms. */
export const DEFAULT_LOCK_TIMEOUT_MS = 2_000

/**
 * SQL: the session that keeps a read of the history waiting, for the message, asked once the
 * read gave up: a reader's share lock waits only for ACCESS EXCLUSIVE (LOCK TABLE, most ALTER
 * TABLEs), held or queued ahead of it, on a table of the history's schema that a read reads
 * (not the migration lock's table, which none does: review of F1, F1-3). The history's own
 * first, then the checksums', a holder before a session that waits in the queue. Catalog views only: it waits for no
 * lock itself. None where that session has let go since.
 */
export const HISTORY_LOCK_HOLDER_SQL = `
  SELECT l.pid, l.granted, l.relation::pg_catalog.regclass::pg_catalog.text AS relation,
         a.application_name, a.state,
         pg_catalog.date_trunc('second', pg_catalog.now() OPERATOR(pg_catalog.-)
           COALESCE(a.xact_start, a.backend_start))::pg_catalog.text AS running_for
  FROM pg_catalog.pg_locks l
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) l.relation
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid
  WHERE l.locktype OPERATOR(pg_catalog.=) 'relation'
    AND l.mode OPERATOR(pg_catalog.=) 'AccessExclusiveLock'
    AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
    AND l.database OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
                                           WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
    AND c.relnamespace OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_namespace
                                               WHERE nspname OPERATOR(pg_catalog.=) '${MIGRATION_TABLE_SCHEMA}')
    AND l.relation OPERATOR(pg_catalog.<>) pg_catalog.to_regclass('${BOOKKEEPING_TABLES.lock.table}')
  ORDER BY l.relation OPERATOR(pg_catalog.=) pg_catalog.to_regclass('${MIGRATION_HISTORY_TABLE}') DESC,
           l.relation OPERATOR(pg_catalog.=) pg_catalog.to_regclass('${MIGRATION_CHECKSUM_TABLE}') DESC,
           l.granted DESC, l.pid
  LIMIT 1
`

/** A row of {@link HISTORY_LOCK_HOLDER_SQL}. */
export interface HistoryLockHolder {
  pid: number
  /** False for a session queued for its lock ahead of the read. */
  granted: boolean
  relation: string
  /** Null where the session's user may not see another user's session. */
  application_name: string | null
  state: string | null
  running_for: string | null
}

/**
 * A read of the migration history (migrate:list, the no-op migrate:latest, a dry run, the
 * start of migrate:pull) that gave up after `lockTimeoutMs` (MIGRATION_LOCK_TIMEOUT_MS, the
 * server's lock_timeout) because another session holds a lock on the history: an
 * administrator's LOCK TABLE in a transaction left open, a stuck ALTER. It names that session
 * (`holder`, where it was found) and says what to do. Nothing was changed. `code` is
 * PostgreSQL's, lock_not_available.
 *
 * @example
 * ```ts
 * if (error instanceof HistoryLockedError) console.error(`wait for pid ${error.pid}`)
 * ```
 */
export class HistoryLockedError extends Error {
  override readonly name = 'HistoryLockedError'
  readonly code = SQLSTATE.lockNotAvailable
  /** The session that holds the lock, where it was found. */
  readonly pid: number | undefined

  constructor(cause: unknown, holder: HistoryLockHolder | undefined, lockTimeoutMs: number) {
    const happened = holder
      ? `The migration history is locked by another session: pid ${holder.pid} (` +
        `${holder.application_name ? `"${shownDatabaseName(holder.application_name)}"` : 'no application name'}, ` +
        `${holder.state ? shownShortOnTerminal(holder.state) : 'state not shown'}, ` +
        `${holder.running_for ? `for ${holder.running_for}` : 'for a time not shown to this user'}) ` +
        `${holder.granted ? 'holds' : 'is queued for'} an ACCESS EXCLUSIVE lock on ${shownDatabaseName(holder.relation)}`
      : 'The migration history was locked by another session, which had let go by the time this command looked for it'
    super(
      `${happened}. A read of the history waits at most for a migration ` +
        `run's writes, which take a moment; this one gave up after ${lockTimeoutMs} ms (MIGRATION_LOCK_TIMEOUT_MS) ` +
        'instead of waiting for that session without a bound. Nothing was changed. Let that session finish, or have it ' +
        'end its transaction (COMMIT or ROLLBACK), then run the command again (MIGRATION_LOCK_TIMEOUT_MS allows a longer wait).',
      { cause },
    )
    this.pid = holder?.pid
  }
}
