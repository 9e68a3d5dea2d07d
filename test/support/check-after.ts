import { type Kysely, sql } from 'kysely'

import { checkDrift, type DriftReport } from '../../src/tooling.js'

class RolledBack extends Error {}

/**
 * Runs `change` and migrate:check in one transaction, rolled back: each case starts from the same
 * database.
 *
 * @example
 * ```ts
 * const report = await checkAfter(db, ['ALTER TABLE x402_resources DISABLE ROW LEVEL SECURITY'])
 * ```
 */
export async function checkAfter(db: Kysely<any>, change: string[]): Promise<DriftReport> {
  let report: DriftReport | undefined
  await db
    .transaction()
    .execute(async (trx) => {
      for (const statement of change) await sql.raw(statement).execute(trx)
      report = await checkDrift(trx, { decisions: [] })
      throw new RolledBack()
    })
    .catch((error: unknown) => {
      if (!(error instanceof RolledBack)) throw error
    })
  return report!
}

/** The conflict lines of a report. */
export const conflicts = (report: DriftReport) =>
  report.schema?.conflict.map(({ line }) => line) ?? []
