import { shownOnTerminal } from '../connection/shown-argument.js'
import { blocksReads, blocksWrites, strongestFirst } from './lock-modes.js'
import type { MeasuredStatement, MigrationRehearsal } from './measured-statement.js'
import { excerpt } from './lock-policy.js'
import type { Rehearsal } from './rehearse.js'

/**
 * A statement's measured lock profile in one line: locks on existing tables with how long they
 * were held, what it rewrote or scanned, where it ran and under which lock_timeout. Also the
 * comment `migrate:sql` writes above each statement.
 *
 * @example
 * ```ts
 * describeStatement(statement)
 * // 'in transaction 1, lock_timeout 2s: x402_resources ACCESS EXCLUSIVE (blocks reads and writes) held 3.9 ms; no rewrite, no scan'
 * ```
 */
export function describeStatement(statement: MeasuredStatement): string {
  const where =
    statement.transaction === null
      ? 'on its own (no transaction)'
      : `in transaction ${statement.transaction}`
  const timeout =
    statement.lockTimeout === '0' ? 'no lock_timeout' : `lock_timeout ${statement.lockTimeout}`
  // One line whatever a table's name holds: migrate:sql writes it as a "--" comment, which a
  // carriage return or line separator in a name would end, and what followed would run as SQL.
  return shownOnTerminal(
    `${where}, ${timeout}: ${describeLocks(statement)}; ${describeWork(statement)}`,
  )
}

/**
 * The locks of a statement on tables that existed before, strongest first, or why none are shown.
 *
 * @example
 * ```ts
 * describeLocks(statement) // 'x402_resources SHARE UPDATE EXCLUSIVE held 12 ms'
 * ```
 */
export function describeLocks(statement: MeasuredStatement): string {
  if (statement.lockEvidence === 'not-measurable') {
    return 'locks not measurable here (PGlite has one connection, and outside a transaction they are gone when it ends; rehearse on PostgreSQL to see them)'
  }
  const byTable = new Map<string, MeasuredStatement['locks']>()
  for (const lock of statement.locks)
    byTable.set(lock.table, [...(byTable.get(lock.table) ?? []), lock])
  if (byTable.size === 0) {
    return statement.lockEvidence === 'second-session'
      ? 'no lock on an existing table seen'
      : 'no new lock on an existing table'
  }
  // By table name: pg_locks lists them in no fixed order.
  return [...byTable]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([table, locks]) => {
      const mode = strongestFirst(locks.map((lock) => lock.mode))[0]!
      const held = locks.find((lock) => lock.mode === mode)!.heldMs
      const effect = blocksReads(mode)
        ? ' (blocks reads and writes)'
        : blocksWrites(mode)
          ? ' (blocks writes)'
          : ''
      return `${table} ${mode}${effect} held ${held === null ? '?' : `${held} ms`}`
    })
    .join(', ')
}

/**
 * What a statement did to the data of existing tables: rewrote, scanned, or neither.
 *
 * @example
 * ```ts
 * describeWork(statement) // 'scans x402_resources (20000 rows)'
 * ```
 */
export function describeWork(statement: MeasuredStatement): string {
  const work = [
    ...statement.rewrote.map((table) => `rewrites ${table}`),
    ...(statement.scanned ?? []).map(({ table, rowsRead }) => `scans ${table} (${rowsRead} rows)`),
  ]
  if (work.length > 0) return work.join(', ')
  if (statement.scanned === null)
    return statement.rewrote.length === 0 ? 'no rewrite; scans not measurable here' : ''
  return statement.error ? `failed: ${statement.error}` : 'no rewrite, no scan'
}

/**
 * The rehearsal as text: one block per migration, one line per statement.
 *
 * @example
 * ```ts
 * process.stdout.write(formatRehearsal(await rehearse(steps, options)))
 * ```
 */
export function formatRehearsal(rehearsal: Rehearsal): string {
  const lines = [
    `Rehearsed on a scratch ${rehearsal.scratch === 'postgres' ? 'PostgreSQL database' : 'in-memory PGlite'} at ` +
      `${rehearsal.startingPoint ?? 'no migration'} (schema ${rehearsal.schema}), with ${rehearsal.seeded.map(({ table, rows }) => `${rows} rows in ${table}`).join(', ') || 'no rows'}.`,
  ]
  if (rehearsal.migrations.length === 0) lines.push('No pending migration.')
  for (const migration of rehearsal.migrations) lines.push('', ...formatMigration(migration))
  return `${lines.join('\n')}\n`
}

function formatMigration(migration: MigrationRehearsal): string[] {
  const how = migration.runnerTransaction
    ? "inside the runner's transaction"
    : 'outside a transaction (its own steps commit)'
  const lines = [
    `${migration.name}: ${migration.statements.length} statements, ${how}, ${migration.durationMs} ms in all`,
  ]
  for (const statement of migration.statements) {
    lines.push(`  ${String(statement.index).padStart(3)}  ${excerpt(statement.sql, 70)}`)
    lines.push(`       ${describeStatement(statement)}  [${statement.durationMs} ms]`)
  }
  if (migration.error) lines.push(`  FAILED: ${migration.error}`)
  return lines
}
