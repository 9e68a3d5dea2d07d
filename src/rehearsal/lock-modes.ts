/** A table lock mode as pg_locks names it (`AccessExclusiveLock`), written as SQL does. */
export type LockMode =
  | 'ACCESS SHARE'
  | 'ROW SHARE'
  | 'ROW EXCLUSIVE'
  | 'SHARE UPDATE EXCLUSIVE'
  | 'SHARE'
  | 'SHARE ROW EXCLUSIVE'
  | 'EXCLUSIVE'
  | 'ACCESS EXCLUSIVE'

const ORDER: readonly LockMode[] = [
  'ACCESS SHARE',
  'ROW SHARE',
  'ROW EXCLUSIVE',
  'SHARE UPDATE EXCLUSIVE',
  'SHARE',
  'SHARE ROW EXCLUSIVE',
  'EXCLUSIVE',
  'ACCESS EXCLUSIVE',
]

/**
 * The SQL name of a pg_locks mode.
 *
 * @example
 * ```ts
 * lockModeName('ShareUpdateExclusiveLock') // 'SHARE UPDATE EXCLUSIVE'
 * ```
 */
export function lockModeName(pgLocksMode: string): LockMode {
  const words = pgLocksMode
    .replace(/Lock$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase()
  if (!(ORDER as readonly string[]).includes(words))
    throw new Error(`pg_locks reported an unknown table lock mode "${pgLocksMode}".`)
  return words as LockMode
}

/**
 * Whether `mode` makes the app's INSERT, UPDATE and DELETE wait (they take ROW EXCLUSIVE): SHARE
 * and every mode stronger than it.
 *
 * @example
 * ```ts
 * blocksWrites('SHARE UPDATE EXCLUSIVE') // false
 * ```
 */
export function blocksWrites(mode: LockMode): boolean {
  return ORDER.indexOf(mode) >= ORDER.indexOf('SHARE')
}

/**
 * Whether `mode` makes the app's SELECTs wait too (only ACCESS EXCLUSIVE does).
 *
 * @example
 * ```ts
 * blocksReads('ACCESS EXCLUSIVE') // true
 * ```
 */
export function blocksReads(mode: LockMode): boolean {
  return mode === 'ACCESS EXCLUSIVE'
}

/**
 * Modes from the strongest down, for a report.
 *
 * @example
 * ```ts
 * strongestFirst(['SHARE', 'ACCESS EXCLUSIVE']) // ['ACCESS EXCLUSIVE', 'SHARE']
 * ```
 */
export function strongestFirst(modes: Iterable<LockMode>): LockMode[] {
  return [...new Set(modes)].sort((a, b) => ORDER.indexOf(b) - ORDER.indexOf(a))
}
