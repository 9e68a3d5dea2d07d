import { readFileSync } from 'node:fs'

import { blocksWrites, type LockMode, strongestFirst } from './lock-modes.js'
import type { MeasuredStatement, MigrationRehearsal } from './measured-statement.js'

/** The lock policy of the repository (lock-policy.json), checked by `npm run lint:locks`. */
export interface LockPolicy {
  /** Tables the app reads and writes all the time: a lock that blocks writes on them must be brief. */
  busyTables: string[]
  /** The first migration checked; earlier ones are frozen history that production applied long ago. */
  checkedFrom: string
  /** Rows the rehearsal puts in each table it knows how to fill. */
  rows: number
  /**
   * The longest a write-blocking lock on a busy table may be held, in ms, whatever the
   * statements do meanwhile (a catalog-only change takes milliseconds; a backfill of a new
   * table or a sleep in the same transaction does not). Unset: no limit by time.
   */
  maxHoldMs?: number
}

/** A statement that broke the policy, and why. */
export interface LockViolation {
  migration: string
  statement: number
  table: string
  message: string
}

/** A migration's own, reasoned exception to the policy for one table. */
export interface LockException {
  table: string
  reason: string
}

/**
 * Reads and checks the policy file.
 *
 * @example
 * ```ts
 * readLockPolicy('lock-policy.json').busyTables // ['x402_resources']
 * ```
 */
export function readLockPolicy(path: string): LockPolicy {
  let parsed: Partial<LockPolicy>
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockPolicy>
  } catch (error) {
    throw new Error(`The lock policy ${path} could not be read as JSON (${error instanceof Error ? error.message : String(error)}).`)
  }
  const { busyTables, checkedFrom, rows, maxHoldMs } = parsed
  if (!Array.isArray(busyTables) || !busyTables.every((table) => typeof table === 'string' && table.length > 0)) {
    throw new Error(`The lock policy ${path} needs "busyTables", a list of table names such as ["x402_resources"].`)
  }
  if (typeof checkedFrom !== 'string' || checkedFrom === '') {
    throw new Error(`The lock policy ${path} needs "checkedFrom", the name of the first migration to check.`)
  }
  if (typeof rows !== 'number' || !Number.isInteger(rows) || rows < 0) {
    throw new Error(`The lock policy ${path} needs "rows", a whole number of rows to rehearse with (for example 20000).`)
  }
  if (maxHoldMs !== undefined && (typeof maxHoldMs !== 'number' || !(maxHoldMs > 0))) {
    throw new Error(`The lock policy ${path} has "maxHoldMs" ${JSON.stringify(maxHoldMs)}: give a number of milliseconds above 0, or leave it out.`)
  }
  return { busyTables, checkedFrom, rows, ...(maxHoldMs === undefined ? {} : { maxHoldMs }) }
}

const EXCEPTION = /lint:locks allow\s+([\w.]+)\s*(?::\s*(.*))?$/

/**
 * The exceptions a migration's source declares, one comment per table, with its reason, as
 * squawk's ignore comments are written: `// lint:locks allow x402_resources: <why it is safe>`.
 * An exception without a reason is refused.
 *
 * @example
 * ```ts
 * readLockExceptions('// lint:locks allow x402_resources: the table is empty everywhere', '007_x')
 * // [{ table: 'x402_resources', reason: 'the table is empty everywhere' }]
 * ```
 */
export function readLockExceptions(source: string, migration: string): LockException[] {
  const exceptions: LockException[] = []
  for (const line of source.split('\n')) {
    const match = EXCEPTION.exec(line.trim())
    if (!match) continue
    const reason = (match[2] ?? '').replace(/\*\/\s*$/, '').trim()
    if (reason.length < 10) {
      throw new Error(
        `${migration}: the exception "lint:locks allow ${match[1]}" gives no reason. Write why the lock is acceptable after a colon: ` +
          `// lint:locks allow ${match[1]}: <reason>.`,
      )
    }
    exceptions.push({ table: match[1]!, reason })
  }
  return exceptions
}

/**
 * The statements of `rehearsal` that hold a lock blocking writes (SHARE or stronger) on a busy
 * table for longer than a catalog-only change: while any statement in the time it is held (to
 * the end of its transaction, or the statement alone outside one) rewrites or scans a table, or
 * for longer than `policy.maxHoldMs`. Tables with an exception in `exceptions` are skipped.
 *
 * @example
 * ```ts
 * const violations = checkLockPolicy(rehearsal, policy, readLockExceptions(source, rehearsal.name))
 * ```
 */
export function checkLockPolicy(rehearsal: MigrationRehearsal, policy: LockPolicy, exceptions: readonly LockException[] = []): LockViolation[] {
  const violations: LockViolation[] = []
  const busy = (table: string) =>
    policy.busyTables.some((name) => name === table || `public.${table}` === name || table === `public.${name}`) &&
    !exceptions.some((exception) => exception.table === table || exception.table === `public.${table}`)
  for (const statement of rehearsal.statements) {
    // The strongest mode a statement took on a table speaks for it: one finding per table.
    const strongest = new Map<string, LockMode>()
    for (const mode of strongestFirst(statement.locks.map((lock) => lock.mode))) {
      for (const lock of statement.locks) if (lock.mode === mode && !strongest.has(lock.table)) strongest.set(lock.table, mode)
    }
    for (const [table, mode] of strongest) {
      const lock = statement.locks.find((candidate) => candidate.table === table && candidate.mode === mode)!
      if (!blocksWrites(lock.mode) || !busy(lock.table)) continue
      const found = violations.length
      for (const during of heldDuring(rehearsal.statements, statement)) {
        const work = [
          ...during.rewrote.map((table) => `rewrites ${table}`),
          ...(during.scanned ?? []).map(({ table, rowsRead }) => `scans ${table} (${rowsRead} rows read)`),
        ]
        if (work.length === 0) continue
        const where = during === statement ? 'itself' : `statement ${during.index} (${excerpt(during.sql)})`
        violations.push({
          migration: rehearsal.name,
          statement: statement.index,
          table: lock.table,
          message:
            `statement ${statement.index} (${excerpt(statement.sql)}) takes ${lock.mode} on ${lock.table}, held while ${where} ${work.join(' and ')}; ` +
            'the app cannot write to it meanwhile. Use NOT VALID then VALIDATE, CREATE INDEX CONCURRENTLY, or a default that is not volatile, ' +
            `or write "// lint:locks allow ${lock.table}: <reason>" in the migration if it is acceptable.`,
        })
        break
      }
      if (violations.length === found && policy.maxHoldMs !== undefined && lock.heldMs !== null && lock.heldMs > policy.maxHoldMs) {
        violations.push({
          migration: rehearsal.name,
          statement: statement.index,
          table: lock.table,
          message:
            `statement ${statement.index} (${excerpt(statement.sql)}) takes ${lock.mode} on ${lock.table} and holds it ${lock.heldMs} ms, ` +
            `longer than the policy's ${policy.maxHoldMs} ms for a catalog-only change; the app cannot write to it meanwhile. ` +
            `Move the slow work out of that transaction, or write "// lint:locks allow ${lock.table}: <reason>" in the migration if it is acceptable.`,
        })
      }
    }
  }
  return violations
}

/** The statements during which a lock taken by `statement` is held. */
function heldDuring(statements: readonly MeasuredStatement[], statement: MeasuredStatement): MeasuredStatement[] {
  if (statement.transaction === null) return [statement]
  return statements.filter((other) => other.transaction === statement.transaction && other.index >= statement.index)
}

/**
 * The start of a statement, on one line, for a report.
 *
 * @example
 * ```ts
 * excerpt('CREATE INDEX\n  idx ON t (a)') // 'CREATE INDEX idx ON t (a)'
 * ```
 */
export function excerpt(sql: string, length = 60): string {
  const line = sql.replace(/\s+/g, ' ').trim()
  return line.length > length ? `${line.slice(0, length - 1)}…` : line
}
