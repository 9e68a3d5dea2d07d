import { randomBytes, randomUUID } from 'node:crypto'

import { sql } from 'kysely'
import pg from 'pg'
import { beforeAll, describe, expect, it } from 'vitest'

import { IntegrationCipher, type KeyRotationReport, rotateOpenRouterKeys } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { encryptLegacy } from './support/legacy-cipher.js'
import { serverUrl, testTargets, useTestDatabase } from './support/test-database.js'

// Rotation of every stored OpenRouter key to the current secret and format: 10,000 rows, in
// batches, stopped and resumed, with a batch that fails half-way, and rows it cannot read.

const OLD_SECRET = 'the-secret-production-used-so-far'
const NEW_SECRET = 'the-new-secret-0123456789abcdef-0123456789'
const ROWS = 10_000
const BATCH_SIZE = 1_000

const rotating = new IntegrationCipher({ current: NEW_SECRET, previous: [OLD_SECRET] })
const newSecretOnly = new IntegrationCipher({ current: NEW_SECRET, previous: [] })
const v2WithOldSecret = new IntegrationCipher({ current: OLD_SECRET.padEnd(32, '!'), previous: [] })
const rotatingBoth = new IntegrationCipher({
  current: NEW_SECRET,
  previous: [OLD_SECRET, OLD_SECRET.padEnd(32, '!')],
})

const rowsOf = (report: KeyRotationReport) =>
  report.rotated + report.alreadyCurrent + report.changedConcurrently + report.failed.length

describe.each(testTargets)(`rotating ${ROWS} stored OpenRouter keys on %s`, (target) => {
  const database = useTestDatabase(target)
  /** user id → the plaintext key the row must still decrypt to. */
  const expected = new Map<string, string>()
  /** user id → the stored value of a row that cannot be decrypted, which must stay as it is. */
  const unreadable = new Map<string, string>()
  let currentBefore = 0

  const storedKeys = async () =>
    new Map(
      (
        await database.db
          .selectFrom('x402_user_openrouter_integrations')
          .select(['user_id', 'encrypted_api_key'])
          .execute()
      ).map((row) => [row.user_id, row.encrypted_api_key]),
    )

  beforeAll(async () => {
    const { db } = database
    const { rows: users } = await sql<{ id: string }>`
      INSERT INTO auth.users (id, aud, role, email)
      SELECT gen_random_uuid(), 'authenticated', 'authenticated', 'rotation-' || n || '@example.test'
      FROM generate_series(1, ${ROWS}) AS n
      RETURNING id
    `.execute(db)

    const values = users.map(({ id }, index) => {
      const apiKey = `sk-or-v1-${randomBytes(32).toString('hex')}`
      let stored: string
      if (index < 3) {
        stored = 'not an encrypted value'
      } else if (index < 6) {
        // Encrypted for another user and copied here: the tag refuses it.
        stored = rotatingBoth.encrypt(apiKey, randomUUID())
      } else if (index < 10) {
        stored = v2WithOldSecret.encrypt(apiKey, id)
      } else if (index < 13) {
        stored = rotating.encrypt(apiKey, id)
        currentBefore++
      } else {
        stored = encryptLegacy(apiKey, OLD_SECRET)
      }
      if (index < 6) unreadable.set(id, stored)
      else expected.set(id, apiKey)
      return { user_id: id, encrypted_api_key: stored }
    })
    for (let start = 0; start < values.length; start += 2_000) {
      await db
        .insertInto('x402_user_openrouter_integrations')
        .values(values.slice(start, start + 2_000))
        .execute()
    }
  })

  it("writes nothing when the key id confirmed is not the current secret's (a typo in the new secret)", async () => {
    const before = await storedKeys()
    const typo = new IntegrationCipher({ current: `${NEW_SECRET}x`, previous: [OLD_SECRET] })
    const refusal = rotateOpenRouterKeys(database.db, {
      cipher: typo,
      keyId: rotating.currentKeyId,
      batchSize: BATCH_SIZE,
    })
    await expect(refusal).rejects.toThrow(
      `INTEGRATION_ENCRYPTION_SECRET does not match the confirmed key id ${rotating.currentKeyId}`,
    )
    // The refused secret's own key id, confirmed next time, would pass the check.
    await expect(refusal).rejects.not.toThrow(typo.currentKeyId)
    expect(await storedKeys()).toEqual(before)
  })

  it('stops after the batch in progress when asked, with every committed batch rotated', async () => {
    const stop = new AbortController()
    const progress: number[] = []

    const report = await rotateOpenRouterKeys(database.db, {
      cipher: rotatingBoth,
      keyId: rotatingBoth.currentKeyId,
      batchSize: BATCH_SIZE,
      signal: stop.signal,
      onBatch: ({ scanned }) => {
        progress.push(scanned)
        if (scanned >= 3 * BATCH_SIZE) stop.abort()
      },
    })

    expect(progress).toEqual([1_000, 2_000, 3_000])
    expect(report).toMatchObject({ complete: false, scanned: 3_000, changedConcurrently: 0 })
    expect(rowsOf(report)).toBe(3_000)
    const stored = await storedKeys()
    const current = [...expected.keys()].filter((userId) =>
      rotating.isCurrent(stored.get(userId)!),
    ).length
    expect(current).toBe(report.rotated + currentBefore)
  })

  it('loses nothing when a batch fails half-way: the batch is rolled back as a whole', async () => {
    const { db } = database
    const before = await storedKeys()
    const pending = [...expected.keys()]
      .filter((userId) => !rotating.isCurrent(before.get(userId)!))
      .sort()
    // A real failure inside a batch: the database refuses the update of one row, past the first
    // pending rows, so that some rows of its batch would be rotated before it.
    const failingRow = pending[50]!
    await sql`
      CREATE FUNCTION pg_temp_refuse_rotation() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.user_id = ${sql.lit(failingRow)}::uuid THEN RAISE EXCEPTION 'disk full, say'; END IF;
        RETURN NEW;
      END $$
    `.execute(db)
    await sql`
      CREATE TRIGGER refuse_rotation BEFORE UPDATE ON x402_user_openrouter_integrations
      FOR EACH ROW EXECUTE FUNCTION pg_temp_refuse_rotation()
    `.execute(db)

    try {
      await expect(
        rotateOpenRouterKeys(db, {
          cipher: rotatingBoth,
          keyId: rotatingBoth.currentKeyId,
          batchSize: BATCH_SIZE,
        }),
      ).rejects.toThrow(/disk full, say/)
    } finally {
      await sql`DROP TRIGGER refuse_rotation ON x402_user_openrouter_integrations`.execute(db)
      await sql`DROP FUNCTION pg_temp_refuse_rotation()`.execute(db)
    }

    const after = await storedKeys()
    expect(after.size).toBe(ROWS)
    // Every row of the failed batch, the failing row's neighbours included, is as it was.
    for (const userId of pending.slice(0, 51)) expect(after.get(userId)).toBe(before.get(userId))
  })

  it('goes on where it stopped, and leaves every key readable with the new secret alone', async () => {
    const report = await rotateOpenRouterKeys(database.db, {
      cipher: rotatingBoth,
      keyId: rotatingBoth.currentKeyId,
      batchSize: BATCH_SIZE,
    })

    expect(report).toMatchObject({ complete: true, scanned: ROWS, changedConcurrently: 0 })
    expect(report.rotated).toBe(ROWS - unreadable.size - report.alreadyCurrent)
    expect(report.alreadyCurrent).toBeGreaterThanOrEqual(3_000 - unreadable.size)
    expect(report.failed.map((failure) => failure.userId).sort()).toEqual(
      [...unreadable.keys()].sort(),
    )
    expect(report.failed.map((failure) => failure.format).sort()).toEqual([
      'unknown',
      'unknown',
      'unknown',
      'v2',
      'v2',
      'v2',
    ])

    const stored = await storedKeys()
    expect(stored.size).toBe(ROWS)
    let readable = 0
    for (const [userId, apiKey] of expected) {
      const value = stored.get(userId)!
      expect(newSecretOnly.isCurrent(value)).toBe(true)
      if (newSecretOnly.decrypt(value, userId) === apiKey) readable++
    }
    expect(readable).toBe(ROWS - unreadable.size)
    for (const [userId, value] of unreadable) expect(stored.get(userId)).toBe(value)
  })

  it('finds nothing left to do on a further run', async () => {
    expect(
      await rotateOpenRouterKeys(database.db, {
        cipher: rotatingBoth,
        keyId: rotatingBoth.currentKeyId,
        batchSize: BATCH_SIZE,
      }),
    ).toMatchObject({
      complete: true,
      scanned: ROWS,
      rotated: 0,
      alreadyCurrent: ROWS - unreadable.size,
      changedConcurrently: 0,
    })
  })

  it('refuses a batch size it cannot run', async () => {
    for (const batchSize of [0, 1.5, 10_001]) {
      await expect(
        rotateOpenRouterKeys(database.db, {
          cipher: rotatingBoth,
          keyId: rotatingBoth.currentKeyId,
          batchSize,
        }),
      ).rejects.toThrow(/^The rotation batch size must be a whole number from 1 to 10000/)
    }
  })

  // Needs a second session writing while the rotation waits: PGlite has one connection.
  it.skipIf(target === 'pglite')(
    'does not overwrite a key stored while it was rotating that row',
    async () => {
      const { db } = database
      const userId = await createUser(db)
      await db
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: userId, encrypted_api_key: encryptLegacy('sk-or-old', OLD_SECRET) })
        .execute()
      const replacement = encryptLegacy('sk-or-stored-meanwhile', OLD_SECRET)
      const writer = new pg.Client({ connectionString: serverUrl(database.location) })
      await writer.connect()
      try {
        await writer.query('BEGIN')
        await writer.query(
          'UPDATE x402_user_openrouter_integrations SET encrypted_api_key = $1 WHERE user_id = $2',
          [replacement, userId],
        )
        // The rotation reads the old value, then waits on the writer's row lock to update it.
        const rotation = rotateOpenRouterKeys(db, {
          cipher: rotatingBoth,
          keyId: rotatingBoth.currentKeyId,
          batchSize: BATCH_SIZE,
        })
        await waitUntil(async () => {
          const { rows } = await writer.query(
            `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          )
          return rows[0].waiting === 1
        })
        await writer.query('COMMIT')

        expect(await rotation).toMatchObject({ complete: true, rotated: 0, changedConcurrently: 1 })
      } finally {
        await writer.end()
      }
      expect(
        (
          await db
            .selectFrom('x402_user_openrouter_integrations')
            .select('encrypted_api_key')
            .where('user_id', '=', userId)
            .executeTakeFirst()
        )?.encrypted_api_key,
      ).toBe(replacement)

      expect(
        await rotateOpenRouterKeys(db, {
          cipher: rotatingBoth,
          keyId: rotatingBoth.currentKeyId,
          batchSize: BATCH_SIZE,
        }),
      ).toMatchObject({ rotated: 1 })
      const rotated = await db
        .selectFrom('x402_user_openrouter_integrations')
        .select('encrypted_api_key')
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow()
      expect(newSecretOnly.decrypt(rotated.encrypted_api_key, userId)).toBe(
        'sk-or-stored-meanwhile',
      )
    },
  )
})

async function waitUntil(condition: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('waited 10 s for the rotation to block on the row lock')
}
