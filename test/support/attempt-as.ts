import type { Kysely, Transaction } from 'kysely'

import { asRequester, type DB, type Requester } from '../../src/index.js'

/** What a query returned, or the SQLSTATE it failed with. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; code: string; message: string }

const ROLL_BACK = Symbol('roll back')

/**
 * Runs `query` as `requester` with the product's {@link asRequester} (PostgREST's role and
 * `request.jwt.claims`), records what it returned or the SQLSTATE it failed with, and always
 * rolls back, so that every attempt starts from the same data.
 *
 * @example
 * ```ts
 * expect(await attemptAs(db, { role: 'anon' }, (trx) => trx.selectFrom('x402_resources').selectAll().execute()))
 *   .toEqual({ ok: true, value: [] })
 * ```
 */
export async function attemptAs<T>(
  db: Kysely<DB>,
  requester: Requester,
  query: (trx: Transaction<DB>) => Promise<T>,
): Promise<Outcome<T>> {
  let outcome: Outcome<T> | undefined
  await asRequester(db, requester, async (trx) => {
    try {
      outcome = { ok: true, value: await query(trx) }
    } catch (error) {
      const code = (error as { code?: unknown }).code
      if (typeof code !== 'string') throw error
      outcome = { ok: false, code, message: (error as Error).message }
    }
    throw ROLL_BACK
  }).catch((error: unknown) => {
    if (error !== ROLL_BACK) throw error
  })
  return outcome!
}
