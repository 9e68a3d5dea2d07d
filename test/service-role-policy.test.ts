import { randomBytes } from 'node:crypto'

import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createUser } from './support/fixtures.js'
import { attemptAs } from './support/attempt-as.js'
import { targetsAndNames } from './support/openrouter-names.js'
import { useTestDatabase } from './support/test-database.js'

// Plan truth 5: the backend's service_role can access every integration. service_role has
// BYPASSRLS, which would grant that on its own; a member of service_role without BYPASSRLS
// shows that the policy "Service role full access on OpenRouter" grants it by itself. At 005
// under the plan's names, and at the newest migration under production's.

describe.each(targetsAndNames)('the service_role policy on %s, at %s', (target, _at, names) => {
  const database = useTestDatabase(target, names.at)
  const keys = sql.table(names.keys)
  // Roles are cluster-wide on a server: a name of its own per run.
  const backendRole = `x402_test_backend_${randomBytes(4).toString('hex')}`
  const owners: string[] = []

  beforeAll(async () => {
    const { db } = database
    await sql`CREATE ROLE ${sql.id(backendRole)} NOLOGIN INHERIT NOBYPASSRLS IN ROLE service_role`.execute(
      db,
    )
    for (let i = 0; i < 3; i++) {
      const userId = await createUser(db)
      owners.push(userId)
      await (db as Kysely<any>)
        .insertInto(names.keys)
        .values({ user_id: userId, encrypted_api_key: `${i}:${i}` })
        .execute()
    }
  })

  afterAll(async () => {
    await sql`DROP ROLE IF EXISTS ${sql.id(backendRole)}`.execute(database.db)
  })

  const readAll = () =>
    attemptAs(database.db, { role: backendRole }, async (trx) =>
      (await (trx as Kysely<any>).selectFrom(names.keys).select('user_id').execute())
        .map((row) => row.user_id as string)
        .sort(),
    )

  it('is a member of service_role without BYPASSRLS', async () => {
    const { rows } = await sql<{ bypass: boolean; member: boolean }>`
      SELECT rolbypassrls AS bypass, pg_has_role(${backendRole}, 'service_role', 'MEMBER') AS member
      FROM pg_roles WHERE rolname = ${backendRole}
    `.execute(database.db)
    expect(rows).toEqual([{ bypass: false, member: true }])
  })

  it('reads every user’s row through the policy', async () => {
    expect(await readAll()).toEqual({ ok: true, value: [...owners].sort() })
  })

  it('writes any user’s row through the policy', async () => {
    const updated = await attemptAs(database.db, { role: backendRole }, async (trx) =>
      Number(
        (
          await (trx as Kysely<any>)
            .updateTable(names.keys)
            .set({ is_valid: false })
            .executeTakeFirst()
        ).numUpdatedRows,
      ),
    )
    expect(updated).toEqual({ ok: true, value: owners.length })
  })

  it('reads nothing once that policy is gone, so the policy is what grants the access', async () => {
    const rollBack = Symbol('roll back')
    let rowsWithoutPolicy: unknown
    await database.db
      .transaction()
      .execute(async (trx) => {
        await sql`DROP POLICY "Service role full access on OpenRouter" ON ${keys}`.execute(trx)
        await sql`SET LOCAL ROLE ${sql.id(backendRole)}`.execute(trx)
        rowsWithoutPolicy = await (trx as Kysely<any>)
          .selectFrom(names.keys)
          .select('user_id')
          .execute()
        throw rollBack
      })
      .catch((error: unknown) => {
        if (error !== rollBack) throw error
      })

    expect(rowsWithoutPolicy).toEqual([])
    expect(await readAll()).toEqual({ ok: true, value: [...owners].sort() })
  })
})
