import { describe, expect, it } from 'vitest'

import { QueryError, type ResourceType } from '../src/index.js'
import { createResource, createUser } from './support/fixtures.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Bad input is rejected by the database with its SQLSTATE, and reaches the caller of the
// module's Kysely instance as a QueryError that says what was wrong and what to do.

const UNKNOWN_ID = '00000000-0000-4000-8000-00000000dead'

async function rejection(attempt: Promise<unknown>): Promise<QueryError> {
  const error = await attempt.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(QueryError)
  return error as QueryError
}

describe.each(testTargets)('bad input on %s', (target) => {
  const database = useTestDatabase(target)

  it('a missing key: 23502, naming the column', async () => {
    const { db } = database
    const userId = await createUser(db)
    const error = await rejection(
      db
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: userId, encrypted_api_key: null as unknown as string })
        .execute(),
    )
    expect(error).toMatchObject({
      code: '23502',
      column: 'encrypted_api_key',
      table: 'x402_user_openrouter_integrations',
    })
    expect(error.message).toBe(
      'Missing value: column "encrypted_api_key" on table "x402_user_openrouter_integrations" must not be null (SQLSTATE 23502). ' +
        'Provide a value for "encrypted_api_key".',
    )
  })

  it('a key for a user that does not exist: 23503, naming the constraint', async () => {
    const error = await rejection(
      database.db
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: UNKNOWN_ID, encrypted_api_key: 'ab:cd' })
        .execute(),
    )
    expect(error).toMatchObject({
      code: '23503',
      constraint: 'x402_user_openrouter_integrations_user_id_fkey',
    })
    expect(error.message).toMatch(
      /^Unknown reference: Key \(user_id\)=\(00000000-0000-4000-8000-00000000dead\) is not present in table "users"\./,
    )
    expect(error.message).toMatch(/Use the id of a row that exists, or create that row first\.$/)
  })

  it('a resource for a model that does not exist: 23503, naming the constraint', async () => {
    const error = await rejection(
      createResource(database.db, {
        resource_type: 'openrouter_instant',
        openrouter_model_id: UNKNOWN_ID,
      }),
    )
    expect(error).toMatchObject({
      code: '23503',
      constraint: 'x402_resources_openrouter_model_id_fkey',
    })
    expect(error.message).toContain('is not present in table "x402_openrouter_models"')
  })

  it('an unknown resource_type: 23514, naming the constraint, without echoing the row', async () => {
    // The generated type refuses it; a caller without the types reaches the database.
    const error = await rejection(
      createResource(database.db, {
        resource_type: 'openrouter_turbo' as ResourceType,
        description: 'secret-ish',
      }),
    )
    expect(error).toMatchObject({
      code: '23514',
      constraint: 'x402_resources_resource_type_check',
      table: 'x402_resources',
    })
    expect(error.message).toBe(
      'Value not allowed: "resource_type" on table "x402_resources" must be one of ' +
        "'external', 'proxy', 'prompt', 'static', 'prompt_template', 'openrouter_instant' " +
        '(check constraint "x402_resources_resource_type_check", SQLSTATE 23514).',
    )
    expect(error.message).not.toContain('secret-ish')
    expect(error.cause).toMatchObject({ code: '23514' })
  })

  it('loses nothing: a rejected statement leaves the rows that were there', async () => {
    const { db } = database
    const userId = await createUser(db)
    await db
      .insertInto('x402_user_openrouter_integrations')
      .values({ user_id: userId, encrypted_api_key: 'kept:value' })
      .execute()

    await rejection(
      db
        .updateTable('x402_user_openrouter_integrations')
        .set({ encrypted_api_key: null as unknown as string })
        .where('user_id', '=', userId)
        .execute(),
    )

    const row = await db
      .selectFrom('x402_user_openrouter_integrations')
      .select('encrypted_api_key')
      .where('user_id', '=', userId)
      .executeTakeFirst()
    expect(row).toEqual({ encrypted_api_key: 'kept:value' })
  })
})
