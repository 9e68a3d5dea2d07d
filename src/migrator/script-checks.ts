/*
 * The statements an exported SQL script (migrate:sql's migration and baseline scripts) runs
 * first in each of its transactions, made from the runner's own SQL and settings, so that a
 * script pasted in the SQL Editor checks and bounds itself as a run does.
 */
import { lesserTriggersSql } from '../connection/lesser-triggers.js'
import { SHADOWED_CATALOG_SQL } from '../connection/shadowed-catalog.js'
import { MIGRATION_LOCK_KEY } from './lock.js'
import { timeoutStatements } from './provider.js'
import { migrationSettings } from './settings.js'

/**
 * What the runner runs before a migration reads or writes (runner.ts), from the same SQL: the
 * shadowed-catalog check, then the lesser-trigger check; in a transaction, that check also
 * takes ROW EXCLUSIVE on the tables it covers, so that no trigger can be attached before COMMIT.
 * `between` runs after the first check (so that no function of a lesser role can answer its
 * calls) and before the tables are locked, as the runner takes its migration lock before them:
 * the baseline script's migration lock ({@link migrationLockSql}).
 */
export function privilegeChecks(inTransaction: boolean, between: string[] = []): string[] {
  return [SHADOWED_CATALOG_SQL, ...between, lesserTriggersSql({ lock: inTransaction })]
}

/**
 * How each transaction of an exported script begins: at READ COMMITTED whatever the database's
 * or the role's default, as the runner's transactions run. The lesser-trigger check with its lock
 * refuses at any other level: at REPEATABLE READ it would read the catalog with a snapshot older
 * than its lock, and miss a trigger committed while the lock waited (review revo O5).
 */
export const SCRIPT_BEGIN = 'BEGIN ISOLATION LEVEL READ COMMITTED'

/**
 * The idle bound that each transaction of a script sets first, right after BEGIN: the runner's
 * idle_in_transaction_session_timeout (MIGRATION_IDLE_TIMEOUT_MS's default, as setSessionBounds
 * sets it on every session of a run), so that a client that stops sending in the middle of a
 * transaction (a psql stopped by Ctrl-Z, a frozen VM) loses it, and its locks, after as long as a
 * stopped run does. transaction_timeout, which a run also sets on PostgreSQL 17, is left out: a
 * SET of it fails on PostgreSQL 15.
 */
export function scriptIdleTimeout(): string {
  const { idleTimeoutMs } = migrationSettings({ env: {} })
  return `SET LOCAL idle_in_transaction_session_timeout = '${idleTimeoutMs}ms'`
}

/**
 * The idle bound ({@link scriptIdleTimeout}), lock_timeout and statement_timeout that a script's
 * transaction sets first, after BEGIN: the runner's defaults, not the exporting machine's
 * environment (the script must not depend on who exports it), in the statements the runner
 * sends (provider.ts).
 */
export function scriptTimeouts(): string[] {
  return [scriptIdleTimeout(), ...timeoutStatements(migrationSettings({ env: {} }), 'SET LOCAL')]
}

/**
 * The migration lock a script takes for its transaction, as a run holds it (MIGRATION_LOCK_KEY),
 * named with its schema and its bigint type: PostgreSQL's only one-argument form takes a bigint,
 * so a function of the same name taking an integer would otherwise match the literal better.
 */
export const migrationLockSql = `SELECT pg_catalog.pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}::pg_catalog.int8)`
