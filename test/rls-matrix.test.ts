import type { Kysely, Transaction } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'

import type { DB, Requester } from '../src/index.js'
import { createUser } from './support/fixtures.js'
import { attemptAs } from './support/attempt-as.js'
import { targetsAndNames } from './support/openrouter-names.js'
import { useTestDatabase } from './support/test-database.js'

// Plan truth 4: users can only access their own OpenRouter integration records; row level
// security, exercised the way PostgREST runs requests (SET LOCAL ROLE and request.jwt.claims). At
// 005 on the plan's user_openrouter_integrations (the plan's policy), and at the newest migration
// on production's x402_user_openrouter_integrations (007's policy, TO authenticated).

const USER = {
  A: 'aaaaaaaa-0000-4000-8000-000000000001',
  B: 'bbbbbbbb-0000-4000-8000-000000000002',
  C: 'cccccccc-0000-4000-8000-000000000003', // signed up, no key yet
  D: 'dddddddd-0000-4000-8000-000000000004', // signed up, no key yet
} as const
type UserName = keyof typeof USER
const nameOf = (id: string) => (Object.keys(USER) as UserName[]).find((name) => USER[name] === id)

const anon: Requester = { role: 'anon' }
const signedIn = (name: UserName): Requester => ({ role: 'authenticated', sub: USER[name] })
const service: Requester = { role: 'service_role' }

/** What one requester tries on the keys table named `table`. */
type Operation = (trx: Kysely<any>, table: string) => Promise<unknown>

/** The owners of the rows the requester can see. */
const selectOwners: Operation = async (trx, table) =>
  (await trx.selectFrom(table).select('user_id').orderBy('user_id').execute()).map((row) =>
    nameOf(row.user_id as string),
  )
const insertFor =
  (owner: UserName): Operation =>
  async (trx, table) =>
    (
      await trx
        .insertInto(table)
        .values({ user_id: USER[owner], encrypted_api_key: 'ab:cd' })
        .returning('user_id')
        .execute()
    ).length
const updateRowOf =
  (owner: UserName): Operation =>
  async (trx, table) =>
    Number(
      (
        await trx
          .updateTable(table)
          .set({ is_enabled: false })
          .where('user_id', '=', USER[owner])
          .executeTakeFirst()
      ).numUpdatedRows,
    )
const moveRow =
  (from: UserName, to: UserName): Operation =>
  async (trx, table) =>
    Number(
      (
        await trx
          .updateTable(table)
          .set({ user_id: USER[to] })
          .where('user_id', '=', USER[from])
          .executeTakeFirst()
      ).numUpdatedRows,
    )
const deleteRowOf =
  (owner: UserName): Operation =>
  async (trx, table) =>
    Number(
      (await trx.deleteFrom(table).where('user_id', '=', USER[owner]).executeTakeFirst())
        .numDeletedRows,
    )

// 42501 is also "permission denied": the message shows that row level security refused it.
const REFUSED = {
  ok: false,
  code: '42501',
  message: expect.stringMatching(/violates row-level security policy/),
}
const ok = (value: unknown) => ({ ok: true, value })

const matrix: Array<[string, Requester, Operation, unknown]> = [
  ['anon SELECT sees nothing', anon, selectOwners, ok([])],
  ['anon INSERT is refused', anon, insertFor('C'), REFUSED],
  ['anon UPDATE changes nothing', anon, updateRowOf('A'), ok(0)],
  ['anon DELETE removes nothing', anon, deleteRowOf('A'), ok(0)],

  ['user A SELECT sees only A', signedIn('A'), selectOwners, ok(['A'])],
  ['user A INSERT for another user is refused', signedIn('A'), insertFor('C'), REFUSED],
  ['user C INSERT of its own key succeeds', signedIn('C'), insertFor('C'), ok(1)],
  ['user A UPDATE of its own row succeeds', signedIn('A'), updateRowOf('A'), ok(1)],
  ['user A UPDATE of B’s row changes nothing', signedIn('A'), updateRowOf('B'), ok(0)],
  ['user A moving its row to user D is refused', signedIn('A'), moveRow('A', 'D'), REFUSED],
  ['user A DELETE of its own row succeeds', signedIn('A'), deleteRowOf('A'), ok(1)],
  ['user A DELETE of B’s row removes nothing', signedIn('A'), deleteRowOf('B'), ok(0)],

  ['user B SELECT sees only B', signedIn('B'), selectOwners, ok(['B'])],
  ['user B INSERT for user A is refused', signedIn('B'), insertFor('A'), REFUSED],
  ['user B UPDATE of its own row succeeds', signedIn('B'), updateRowOf('B'), ok(1)],
  ['user B UPDATE of A’s row changes nothing', signedIn('B'), updateRowOf('A'), ok(0)],
  ['user B moving its row to user D is refused', signedIn('B'), moveRow('B', 'D'), REFUSED],
  ['user B DELETE of its own row succeeds', signedIn('B'), deleteRowOf('B'), ok(1)],
  ['user B DELETE of A’s row removes nothing', signedIn('B'), deleteRowOf('A'), ok(0)],

  ['authenticated without a subject sees nothing', { role: 'authenticated' }, selectOwners, ok([])],

  ['service_role SELECT sees every row', service, selectOwners, ok(['A', 'B'])],
  ['service_role INSERT for any user succeeds', service, insertFor('C'), ok(1)],
  ['service_role UPDATE of any row succeeds', service, updateRowOf('B'), ok(1)],
  ['service_role moving a row to another user succeeds', service, moveRow('A', 'D'), ok(1)],
  ['service_role DELETE of any row succeeds', service, deleteRowOf('B'), ok(1)],
]

describe.each(targetsAndNames)(
  'row level security on the OpenRouter keys on %s, at %s',
  (target, _at, names) => {
    const database = useTestDatabase(target, names.at)
    const table = names.keys

    beforeAll(async () => {
      const db = database.db as Kysely<any>
      for (const id of Object.values(USER)) await createUser(db, id)
      await db
        .insertInto(table)
        .values([
          { user_id: USER.A, encrypted_api_key: 'a1:a2' },
          { user_id: USER.B, encrypted_api_key: 'b1:b2' },
        ])
        .execute()
    })

    it.each(matrix)('%s', async (_name, requester, operation, expected) => {
      expect(
        await attemptAs(database.db, requester, (trx: Transaction<DB>) =>
          operation(trx as Kysely<any>, table),
        ),
      ).toEqual(expected)
    })

    it('leaves both rows as they were after every attempt', async () => {
      const rows = await (database.db as Kysely<any>)
        .selectFrom(table)
        .select(['user_id', 'encrypted_api_key', 'is_enabled'])
        .orderBy('user_id')
        .execute()
      expect(rows).toEqual([
        { user_id: USER.A, encrypted_api_key: 'a1:a2', is_enabled: true },
        { user_id: USER.B, encrypted_api_key: 'b1:b2', is_enabled: true },
      ])
    })
  },
)
