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
    throw new Error(
      `The lock policy ${path} could not be read as JSON (${error instanceof Error ? error.message : String(error)}).`,
    )
  }
  const { busyTables, checkedFrom, rows, maxHoldMs } = parsed
  if (
    !Array.isArray(busyTables) ||
    !busyTables.every((table) => typeof table === 'string' && table.length > 0)
  ) {
    throw new Error(
      `The lock policy ${path} needs "busyTables", a list of table names such as ["x402_resources"].`,
    )
  }
  if (typeof checkedFrom !== 'string' || checkedFrom === '') {
    throw new Error(
      `The lock policy ${path} needs "checkedFrom", the name of the first migration to check.`,
    )
  }
  if (typeof rows !== 'number' || !Number.isInteger(rows) || rows < 0) {
    throw new Error(
      `The lock policy ${path} needs "rows", a whole number of rows to rehearse with (for example 20000).`,
    )
  }
  if (maxHoldMs !== undefined && (typeof maxHoldMs !== 'number' || !(maxHoldMs > 0))) {
    throw new Error(
      `The lock policy ${path} has "maxHoldMs" ${JSON.stringify(maxHoldMs)}: give a number of milliseconds above 0, or leave it out.`,
    )
  }
  return { busyTables, checkedFrom, rows, ...(maxHoldMs === undefined ? {} : { maxHoldMs }) }
}

/** An exception: a `//` comment line of its own that starts with the marker. */
const EXCEPTION = /^\s*\/\/\s*lint:locks allow\s+([\w.]+)\s*:(.*)$/
const MARKER = 'lint:locks allow'
/** A reason is written in words: this many, each with two letters at least. */
const REASON_WORDS = 3

/**
 * The exceptions a migration's source declares, one comment per table, with its reason, as
 * squawk's ignore comments are written: a `//` line of its own,
 * `// lint:locks allow x402_resources: <why it is safe>`. A `//` comment that only mentions the
 * marker further on (prose, such as "do not add …") is not one. The marker anywhere else (in
 * code, an SQL string, a block comment) is refused, since it cannot be told from code; so is a
 * reason of fewer than three words.
 *
 * @example
 * ```ts
 * readLockExceptions('// lint:locks allow x402_resources: the table is empty everywhere', '007_x')
 * // [{ table: 'x402_resources', reason: 'the table is empty everywhere' }]
 * ```
 */
export function readLockExceptions(source: string, migration: string): LockException[] {
  const exceptions: LockException[] = []
  source.split('\n').forEach((line, index) => {
    if (!line.includes(MARKER)) return
    const match = EXCEPTION.exec(line)
    if (!match) {
      // Prose in a comment may name the marker ("do not add …"); a comment that starts with it is an exception.
      if (/^\s*\/\//.test(line) && !/^\s*\/\/\s*lint:locks allow\b/.test(line)) return
      if (/^\s*\/\//.test(line)) {
        throw new Error(
          `${migration}: line ${index + 1}: the exception "${line.trim()}" gives no reason. Write why the lock is acceptable after a colon: ` +
            `// ${MARKER} <table>: <reason>.`,
        )
      }
      throw new Error(
        `${migration}: line ${index + 1}: "${MARKER}" is outside a comment line of its own, so it is not taken as an exception. ` +
          `Write an exception as a line of its own: // ${MARKER} <table>: <reason>.`,
      )
    }
    const reason = match[2]!.trim()
    const words = reason.split(/\s+/).filter((word) => /\p{L}.*\p{L}/u.test(word))
    if (
      words.length < REASON_WORDS ||
      new Set(words.map((word) => word.toLowerCase())).size < REASON_WORDS
    ) {
      throw new Error(
        `${migration}: line ${index + 1}: the exception "${MARKER} ${match[1]}" gives no reason in words. Write why the lock is acceptable ` +
          `after the colon, in a few words: // ${MARKER} ${match[1]}: <reason>.`,
      )
    }
    exceptions.push({ table: match[1]!, reason })
  })
  return exceptions
}

/**
 * Refuses a policy whose busy tables are not all among `tables` (the tables of the rehearsed
 * schema): a misspelt busy table would otherwise check nothing and pass.
 *
 * @example
 * ```ts
 * checkBusyTablesExist(policy, ['x402_resources', 'ai_models'])
 * ```
 */
export function checkBusyTablesExist(policy: LockPolicy, tables: readonly string[]): void {
  const missing = policy.busyTables.filter(
    (name) => !tables.some((table) => sameTable(table, name)),
  )
  if (missing.length > 0) {
    throw new Error(
      `The lock policy's busy table${missing.length === 1 ? '' : 's'} ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not in the rehearsed schema, ` +
        `so nothing would be checked. Correct "busyTables" in lock-policy.json; the tables are: ${tables.join(', ')}.`,
    )
  }
}

function sameTable(table: string, name: string): boolean {
  return name === table || `public.${table}` === name || table === `public.${name}`
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
export function checkLockPolicy(
  rehearsal: MigrationRehearsal,
  policy: LockPolicy,
  exceptions: readonly LockException[] = [],
): LockViolation[] {
  const violations: LockViolation[] = []
  const busy = (table: string) =>
    policy.busyTables.some((name) => sameTable(table, name)) &&
    !exceptions.some(
      (exception) => exception.table === table || exception.table === `public.${table}`,
    )
  for (const statement of rehearsal.statements) {
    // The strongest mode a statement took on a table speaks for it: one finding per table.
    const strongest = new Map<string, LockMode>()
    for (const mode of strongestFirst(statement.locks.map((lock) => lock.mode))) {
      for (const lock of statement.locks)
        if (lock.mode === mode && !strongest.has(lock.table)) strongest.set(lock.table, mode)
    }
    for (const [table, mode] of strongest) {
      const lock = statement.locks.find(
        (candidate) => candidate.table === table && candidate.mode === mode,
      )!
      if (!blocksWrites(lock.mode) || !busy(lock.table)) continue
      const found = violations.length
      for (const during of heldDuring(rehearsal.statements, statement)) {
        const work = [
          ...during.rewrote.map((table) => `rewrites ${table}`),
          ...(during.scanned ?? []).map(
            ({ table, rowsRead }) => `scans ${table} (${rowsRead} rows read)`,
          ),
        ]
        if (work.length === 0) continue
        const where =
          during === statement ? 'itself' : `statement ${during.index} (${excerpt(during.sql)})`
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
      if (
        violations.length === found &&
        policy.maxHoldMs !== undefined &&
        lock.heldMs !== null &&
        lock.heldMs > policy.maxHoldMs
      ) {
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
function heldDuring(
  statements: readonly MeasuredStatement[],
  statement: MeasuredStatement,
): MeasuredStatement[] {
  if (statement.transaction === null) return [statement]
  return statements.filter(
    (other) => other.transaction === statement.transaction && other.index >= statement.index,
  )
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
