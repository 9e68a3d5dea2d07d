import type { Kysely } from 'kysely'

import { hasMigrationHistory, readMigrationHistory } from '../migrator/history.js'

/**
 * What a comparison says while a rollback is interrupted: the schema is half removed, so
 * classing it would call the module's own objects missing (and a repair plan would rebuild what
 * the rollback was taking away). Undefined when no rollback is under way.
 *
 * @example
 * ```ts
 * const problem = await interruptedRollback(db)
 * if (problem) throw new Error(problem)
 * ```
 */
export async function interruptedRollback(db: Kysely<any>): Promise<string | undefined> {
  if (!(await hasMigrationHistory(db))) return undefined
  const reverting = (await readMigrationHistory(db, { times: false }))
    .filter((entry) => entry.reverting)
    .map((entry) => entry.name)
  if (reverting.length === 0) return undefined
  return (
    `the rollback of ${reverting.join(', ')} was interrupted, so the schema may be half removed and is not compared: ` +
    'complete it first with `npm run migrate:down` (it resumes where it stopped), then run this again'
  )
}
