import { execFile } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { inspect, promisify } from 'node:util'

import { type LogEvent, sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'

import {
  asService,
  asUser,
  IntegrationCipher,
  type KeyFailureFields,
  markOpenRouterKeyInvalid,
  markOpenRouterKeyVerified,
  readOpenRouterKeyForExecution,
  rotateOpenRouterKeys,
  setOpenRouterKeyEnabled,
  storeOpenRouterKey,
} from '../src/tooling.js'
import { createResource, createUser } from './support/fixtures.js'
import { encryptLegacy } from './support/legacy-cipher.js'
import { pgDumpSkipReason } from './support/pg-dump.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// No plaintext key anywhere: not in the database (every row of every table, and on PostgreSQL
// pg_dump's whole output; on PGlite every byte of its data folder), not in Kysely's query log
// with its parameters, not in the failure log, not in an error. Each scan first finds a canary
// planted on purpose, so that a scan that sees nothing cannot pass.

const SECRET = 'secrecy-test-secret-0123456789abcdef'
const PREVIOUS_SECRET = 'the-secret-production-used-so-far'
const cipher = new IntegrationCipher({ current: SECRET, previous: [PREVIOUS_SECRET] })
const run = promisify(execFile)

describe.each(testTargets)('secrecy of OpenRouter keys on %s', (target) => {
  const queryLog: LogEvent[] = []
  const database = useTestDatabase(target, 'latest', {
    log: (event) => {
      queryLog.push(event)
    },
  })
  const failureLog: Array<[string, KeyFailureFields]> = []
  const log = (message: string, fields: KeyFailureFields) => failureLog.push([message, fields])
  const canary = `canary-${randomBytes(16).toString('hex')}`
  /** Every plaintext key this file has handled. */
  const plaintexts: string[] = []
  const errors: unknown[] = []
  const newApiKey = () => {
    const apiKey = `sk-or-v1-${randomBytes(32).toString('hex')}`
    plaintexts.push(apiKey)
    return apiKey
  }

  beforeAll(async () => {
    const { db } = database
    // The canary: in a jsonb column and in a text column, where the scans must find it.
    await createResource(db, {
      description: canary,
      openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: canary, params: {} },
    })

    const [alice, bob, thief, legacyOwner] = [
      await createUser(db),
      await createUser(db),
      await createUser(db),
      await createUser(db),
    ]
    await asService(db, async (trx) => {
      await storeOpenRouterKey(trx, { userId: alice, apiKey: newApiKey(), cipher })
      await storeOpenRouterKey(trx, { userId: alice, apiKey: newApiKey(), cipher })
      await storeOpenRouterKey(trx, { userId: bob, apiKey: newApiKey(), cipher })
      await readOpenRouterKeyForExecution(trx, { userId: alice, cipher, log })
      await setOpenRouterKeyEnabled(trx, bob, false)
      await markOpenRouterKeyInvalid(trx, alice)
      await markOpenRouterKeyVerified(trx, alice)
    })
    await asUser(db, bob, (trx) =>
      storeOpenRouterKey(trx, { userId: bob, apiKey: newApiKey(), cipher }),
    )
    await db
      .insertInto('x402_user_openrouter_integrations')
      .values({
        user_id: legacyOwner,
        encrypted_api_key: encryptLegacy(newApiKey(), PREVIOUS_SECRET),
      })
      .execute()
    await rotateOpenRouterKeys(db, { cipher, keyId: cipher.currentKeyId })

    // Failures on the way, whose errors must not carry a key either.
    const failures = [
      // No such user: the database refuses the row (23503).
      () =>
        asService(db, (trx) =>
          storeOpenRouterKey(trx, { userId: randomUUID(), apiKey: newApiKey(), cipher }),
        ),
      // Another user's row: row level security refuses it (42501).
      () =>
        asUser(db, alice, (trx) =>
          storeOpenRouterKey(trx, { userId: bob, apiKey: newApiKey(), cipher }),
        ),
      // The key and the user id swapped by mistake.
      () =>
        asService(db, (trx) =>
          storeOpenRouterKey(trx, { userId: newApiKey(), apiKey: alice, cipher }),
        ),
      // A ciphertext copied into another user's row: the configuration error.
      async () => {
        const { encrypted_api_key: copied } = await db
          .selectFrom('x402_user_openrouter_integrations')
          .select('encrypted_api_key')
          .where('user_id', '=', alice)
          .executeTakeFirstOrThrow()
        await db
          .insertInto('x402_user_openrouter_integrations')
          .values({ user_id: thief, encrypted_api_key: copied })
          .execute()
        await asService(db, (trx) =>
          readOpenRouterKeyForExecution(trx, { userId: thief, cipher, log }),
        )
      },
    ]
    for (const failure of failures)
      errors.push(
        await failure().then(
          () => new Error('expected a failure'),
          (error: unknown) => error,
        ),
      )
  })

  const expectNoPlaintextIn = (text: string) => {
    expect(plaintexts).toHaveLength(8)
    for (const apiKey of plaintexts) expect(text).not.toContain(apiKey)
  }

  it('every failure failed for its own reason', () => {
    expect(errors).toMatchObject([
      { name: 'QueryError', code: '23503' },
      { name: 'QueryError', code: '42501' },
      { name: 'InvalidUserIdError', message: expect.stringMatching(/not a UUID/) },
      {
        name: 'ApiKeyConfigurationError',
        message: 'API key configuration error - contact resource owner',
      },
    ])
  })

  it('no error carries a key, in its message, its fields or its causes', () => {
    expectNoPlaintextIn(
      errors.map((error) => inspect(error, { showHidden: true, depth: null })).join('\n'),
    )
  })

  it('Kysely’s query log, parameters included, holds ciphertexts only', () => {
    const logged = queryLog
      .map((event) => inspect(event, { showHidden: true, depth: null }))
      .join('\n')
    expect(logged).toContain(canary)
    expect(logged).toMatch(/v2:[0-9a-f]{8}:/)
    expectNoPlaintextIn(logged)
  })

  it('the failure log says why, and holds neither the key nor its stored value', async () => {
    const logged = inspect(failureLog, { depth: null })
    expect(failureLog).toEqual([
      ['OpenRouter key cannot be decrypted', expect.objectContaining({ format: 'v2' })],
    ])
    expectNoPlaintextIn(logged)
    const stored = await database.db
      .selectFrom('x402_user_openrouter_integrations')
      .select('encrypted_api_key')
      .execute()
    for (const { encrypted_api_key } of stored) expect(logged).not.toContain(encrypted_api_key)
  })

  it('no row of any table holds a key', async () => {
    const { db } = database
    const { rows: tables } = await sql<{ schema: string; name: string }>`
      SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
    `.execute(db)
    const holding = async (needle: string) => {
      const found: string[] = []
      for (const { schema, name } of tables) {
        const { rows } = await sql<{ hits: number }>`
          SELECT count(*)::int AS hits FROM ${sql.table(`${schema}.${name}`)} AS row_value WHERE strpos(row_value::text, ${needle}) > 0
        `.execute(db)
        if (rows[0]!.hits > 0) found.push(`${schema}.${name}`)
      }
      return found
    }

    expect(tables.length).toBeGreaterThanOrEqual(6)
    expect(await holding(canary)).toEqual(['public.x402_resources'])
    for (const apiKey of plaintexts) expect(await holding(apiKey)).toEqual([])
  })

  it('no byte of the stored database holds a key', async (context) => {
    let stored: string
    if ('connectionString' in database.location) {
      const dumpSkip = await pgDumpSkipReason(database.location.connectionString)
      if (dumpSkip) context.skip(dumpSkip)
      stored = (
        await run('pg_dump', ['--no-owner', database.location.connectionString], {
          maxBuffer: 256 * 1024 * 1024,
        })
      ).stdout
    } else {
      await sql`CHECKPOINT`.execute(database.db)
      stored = filesUnder(database.location.dataDir)
        .map((file) => readFileSync(file).toString('latin1'))
        .join('\n')
    }
    expect(stored).toContain(canary)
    expectNoPlaintextIn(stored)
  })
})

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
}
