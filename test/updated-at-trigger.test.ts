import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { createUser } from './support/fixtures.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Plan section 3: trigger openrouter_integration_updated_at keeps updated_at current.

describe.each(testTargets)('the updated_at trigger on %s', (target) => {
  const database = useTestDatabase(target)

  async function storeKey() {
    const { db } = database
    const userId = await createUser(db)
    const long_ago = new Date('2020-01-01T00:00:00Z')
    await db
      .insertInto('x402_user_openrouter_integrations')
      .values({
        user_id: userId,
        encrypted_api_key: 'ab:cd',
        created_at: long_ago,
        updated_at: long_ago,
      })
      .execute()
    return { userId, long_ago }
  }

  const readTimes = (userId: string) =>
    database.db
      .selectFrom('x402_user_openrouter_integrations')
      .select(['created_at', 'updated_at'])
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow()

  it('sets updated_at to the time of the update, and leaves created_at alone', async () => {
    const { userId, long_ago } = await storeKey()
    const before = new Date()

    await database.db
      .updateTable('x402_user_openrouter_integrations')
      .set({ is_enabled: false })
      .where('user_id', '=', userId)
      .execute()

    const times = await readTimes(userId)
    expect(times.created_at).toEqual(long_ago)
    expect(times.updated_at!.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1_000)
  })

  it('overrides an updated_at that the update itself tries to set', async () => {
    const { userId, long_ago } = await storeKey()

    await database.db
      .updateTable('x402_user_openrouter_integrations')
      .set({ is_valid: false, last_verified_at: new Date(), updated_at: long_ago })
      .where('user_id', '=', userId)
      .execute()

    expect((await readTimes(userId)).updated_at).not.toEqual(long_ago)
  })

  it('uses the real now() whatever the caller’s search_path (its function has a fixed, empty one)', async () => {
    const { userId } = await storeKey()
    const shadowed = new Date('2001-01-01T00:00:00Z')

    await database.db.transaction().execute(async (trx) => {
      await sql`CREATE SCHEMA shadow`.execute(trx)
      await sql`CREATE FUNCTION shadow.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT timestamptz '2001-01-01 00:00:00+00' $$`.execute(
        trx,
      )
      await sql`SET LOCAL search_path = shadow, pg_catalog, public`.execute(trx)
      // The shadow is real: an unqualified now() in this session resolves to it.
      const { rows } = await sql<{ now: Date }>`SELECT now() AS now`.execute(trx)
      expect(rows[0]!.now).toEqual(shadowed)
      await trx
        .updateTable('x402_user_openrouter_integrations')
        .set({ is_enabled: false })
        .where('user_id', '=', userId)
        .execute()
      await sql`DROP SCHEMA shadow CASCADE`.execute(trx)
    })

    expect((await readTimes(userId)).updated_at).not.toEqual(shadowed)
  })
})
