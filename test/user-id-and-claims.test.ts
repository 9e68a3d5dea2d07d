import { randomUUID } from 'node:crypto'

import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  asService,
  asUser,
  deleteOpenRouterKey,
  InvalidUserIdError,
  readOpenRouterKeyForExecution,
  setOpenRouterKeyEnabled,
} from '../src/index.js'
import { createUser } from './support/fixtures.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// A secret passed where a user id belongs never comes back in an error, and a legacy claim left
// on a pooled connection never decides whose rows a request reads.

const SECRET = 'sk-or-v1-0123456789abcdef0123456789abcdef'

describe.each(testTargets)('user ids and claims on %s', (target) => {
  const database = useTestDatabase(target)

  it.each([
    [
      'readOpenRouterKeyForExecution',
      (db: any) =>
        asService(db, (trx) =>
          readOpenRouterKeyForExecution(trx, { userId: SECRET, cipher: undefined as never }),
        ),
    ],
    [
      'setOpenRouterKeyEnabled',
      (db: any) => asService(db, (trx) => setOpenRouterKeyEnabled(trx, SECRET, false)),
    ],
    ['deleteOpenRouterKey', (db: any) => asService(db, (trx) => deleteOpenRouterKey(trx, SECRET))],
    ['asUser', (db: any) => asUser(db, SECRET, async () => 'ran')],
  ])(
    '%s refuses a value that is not a UUID before any query, without echoing it',
    async (_name, attempt) => {
      const error = await attempt(database.db).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(InvalidUserIdError)
      expect((error as Error).message).toContain('not a UUID')
      expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain('sk-or')
    },
  )

  it('asUser answers for its own user even where a session-level legacy claim names another', async () => {
    const { db } = database
    const [a, b] = [await createUser(db), await createUser(db)]
    await db.connection().execute(async (connection) => {
      await sql`SELECT set_config('request.jwt.claim.sub', ${b}, false), set_config('request.jwt.claim', ${JSON.stringify({ sub: b })}, false)`.execute(
        connection,
      )
      try {
        const { rows } = await asUser(connection, a, (trx) =>
          sql<{
            uid: string
          }>`SELECT auth.uid()::text AS uid, auth.jwt() ->> 'sub' AS jwt_sub`.execute(trx),
        )
        expect(rows).toEqual([{ uid: a, jwt_sub: a }])
        // The session's own values are back after the transaction, as they were.
        const { rows: after } =
          await sql`SELECT current_setting('request.jwt.claim.sub') AS sub`.execute(connection)
        expect(after).toEqual([{ sub: b }])
      } finally {
        await sql`RESET ALL`.execute(connection)
      }
    })
  })

  it('still runs for a real user id', async () => {
    expect(await asUser(database.db, randomUUID(), async () => 'ran')).toBe('ran')
  })
})
