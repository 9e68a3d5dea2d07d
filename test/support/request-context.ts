import { type Kysely, sql, type Transaction } from 'kysely'

import type { DB } from '../../src/index.js'

/** Who a request comes from: PostgREST's role for it, and the JWT's subject when signed in. */
export type Requester =
  | { role: 'anon' }
  | { role: 'authenticated'; sub: string }
  | { role: 'service_role' }
  | { role: string; sub?: string }

/** What a query returned, or the SQLSTATE it failed with. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; code: string; message: string }

const ROLL_BACK = Symbol('roll back')

/**
 * Runs `query` the way PostgREST runs a request: in a transaction, with `request.jwt.claims`
 * set and `SET LOCAL ROLE` to the requester's role. The transaction is always rolled back, so
 * every call starts from the same data.
 */
export async function asRequester<T>(
  db: Kysely<DB>,
  requester: Requester,
  query: (trx: Transaction<DB>) => Promise<T>,
): Promise<Outcome<T>> {
  let outcome: Outcome<T> | undefined
  await db
    .transaction()
    .execute(async (trx) => {
      const claims = JSON.stringify({ ...requester, aud: requester.role })
      await sql`SELECT set_config('request.jwt.claims', ${claims}, true)`.execute(trx)
      await sql`SET LOCAL ROLE ${sql.id(requester.role)}`.execute(trx)
      try {
        outcome = { ok: true, value: await query(trx) }
      } catch (error) {
        const code = (error as { code?: unknown }).code
        if (typeof code !== 'string') throw error
        outcome = { ok: false, code, message: (error as Error).message }
      }
      throw ROLL_BACK
    })
    .catch((error: unknown) => {
      if (error !== ROLL_BACK) throw error
    })
  return outcome!
}
