import type { Kysely } from 'kysely'

import { hasMigrationHistory, readMigrationHistory } from '../migrator/history.js'
import { registeredMigrations, rollbackMarks } from '../migrator/resumable-down.js'

/**
 * What a comparison says while a rollback is interrupted: the schema is half removed, so
 * classing it would call the module's own objects missing (and a repair plan would rebuild what
 * the rollback was taking away). Undefined when no rollback is under way, by the rule the runner
 * follows (rollbackMarks): a mark of the history that an attempt left before its first step
 * committed is none, and a rollback the schema shows without a mark is one. It writes nothing:
 * a stale mark is left for the next run, which clears it under the migration lock.
 *
 * @example
 * ```ts
 * const problem = await interruptedRollback(db)
 * if (problem) throw new Error(problem)
 * ```
 */
export async function interruptedRollback(db: Kysely<any>): Promise<string | undefined> {
  if (!(await hasMigrationHistory(db))) return undefined
  const history = await readMigrationHistory(db, { times: false })
  const { interrupted } = await rollbackMarks(db, history, registeredMigrations(history))
  if (interrupted === undefined) return undefined
  return (
    `the rollback of ${interrupted} was interrupted, so the schema may be half removed and is not compared: ` +
    'complete it first with `npm run migrate:down` (it resumes where it stopped), then run this again'
  )
}
