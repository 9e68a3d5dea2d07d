import type { Kysely } from 'kysely'

import { type AccessEntry, measureAccess } from '../../src/access/measure-access.js'

/**
 * Who may do what on `db`, measured as the access matrix measures it (anon, signed-in users A
 * and B as the owner and as another user, service_role; each attempt rolled back), on two rows
 * of each owner per table so that a database with production's data is measured in seconds;
 * on `relations` only (`schema.name`) where given, and on every function.
 *
 * @example
 * ```ts
 * const before = await whoMayDoWhat(db)
 * ```
 */
export function whoMayDoWhat(
  db: Kysely<any>,
  relations?: readonly string[],
): Promise<AccessEntry[]> {
  return measureAccess(db, { rowsPerOwner: 2, ...(relations && { relations }) })
}

/** The relations of the module's and the view over them: what a repair plan can touch. */
export const MODULE_RELATIONS = [
  'public.x402_resources',
  'public.x402_openrouter_models',
  'public.x402_user_claude_configs',
  'public.x402_user_openrouter_integrations',
  'public.public_x402_resources',
] as const

const ROLES = ['anon', 'authenticated', 'service_role'] as const

/**
 * Every way `after` lets a role do more than `before`, one line each: a cell that is not the
 * same or strictly less (none < own rows only < some rows < all rows), such as a function that
 * became callable, or an object that is new and that a role reaches at all. Empty when nobody
 * gained anything.
 *
 * @example
 * ```ts
 * expect(gainedAccess(before, await whoMayDoWhat(db))).toEqual([])
 * ```
 */
export function gainedAccess(
  before: readonly AccessEntry[],
  after: readonly AccessEntry[],
): string[] {
  const key = (entry: AccessEntry) =>
    `${entry.schema}.${entry.object.replace(/_\d{8}T\d{9}$/, '_<time>')} ${entry.operation}`
  const earlier = new Map(before.map((entry) => [key(entry), entry]))
  const gained: string[] = []
  for (const entry of after) {
    const was = earlier.get(key(entry))
    for (const role of ROLES) {
      const now = entry[role]
      const then = was?.[role] ?? 'none'
      // Anything but the same or strictly less counts, a partial cell changed included.
      if (now === then || rank(now) < rank(then) || now.startsWith('not seeded')) continue
      gained.push(`${key(entry)}: ${role} ${then} -> ${now}`)
    }
  }
  return gained
}

/** How far a cell reaches: none 0, own rows only 1, anything partial 2, all rows and allowed 3. */
function rank(cell: string): number {
  if (cell === 'none') return 0
  if (cell.startsWith('own rows only')) return 1
  if (cell === 'all rows' || cell === 'allowed') return 3
  return 2
}
