import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  createDb,
  IntegrationCipher,
  migrateToLatest,
  rotateOpenRouterKeys,
} from '../src/tooling.js'
import { encryptLegacy } from './support/legacy-cipher.js'
import {
  pollUntil,
  waitForLockWait,
  withApplicationName,
  withSessions,
} from './support/server-sessions.js'
import { stallingProxy } from './support/stalling-proxy.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// A key rotation whose client stops answering (a stopped process, a network path that stopped
// forwarding) between a batch's UPDATE and its COMMIT holds the row locks of that batch: the
// server ends its transaction after the idle timeout, so that the app's writes of those keys go
// on. A batch that meets a row held by an app transaction gives up its own row locks after
// lock_timeout, so that the app's writes of the batch's other keys go on too. PostgreSQL only: it
// needs a second session and a connection that stalls.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'
const OLD_SECRET = 'the-secret-production-used-so-far'
const ROTATION = 'x402-test-rotation'
const NEW_SECRET = 'the-new-secret-0123456789abcdef-0123456789'

describe.skipIf(skipReason)('a key rotation that stalls in a batch', () => {
  it('releases the row locks of its batch, so that the app can write the keys again', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateToLatest(db, { env: {} })
      const { rows: users } = await sql<{ id: string }>`
        INSERT INTO auth.users (id, aud, role, email)
        SELECT gen_random_uuid(), 'authenticated', 'authenticated', 'stall-' || n || '@example.test'
        FROM generate_series(1, 3) AS n
        RETURNING id
      `.execute(db)
      await db
        .insertInto('x402_user_openrouter_integrations')
        .values(
          users.map(({ id }) => ({
            user_id: id,
            encrypted_api_key: encryptLegacy(`sk-or-v1-${id}`, OLD_SECRET),
          })),
        )
        .execute()
      const cipher = new IntegrationCipher({ current: NEW_SECRET, previous: [OLD_SECRET] })
      // The UPDATE reaches the server; its answer, and the COMMIT, never pass.
      const proxy = await stallingProxy(
        new URL(connectionString),
        'UPDATE x402_user_openrouter_integrations',
        'connection',
      )
      const rotationDb = createDb({
        connectionString: withApplicationName(proxy.url(new URL(connectionString)), ROTATION),
      })
      try {
        const rotation = rotateOpenRouterKeys(rotationDb, {
          cipher,
          keyId: cipher.currentKeyId,
        }).catch((error: unknown) => error)
        await withSessions(connectionString, async (session) => {
          const observer = await session('x402-test-observer')
          const app = await session('x402-test-app')
          await pollUntil(observer, 'the rotation to stall after its UPDATE', async () => {
            const { rows } = await observer.query(
              `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1
                 AND state = 'idle in transaction' AND query LIKE '%UPDATE x402_user_openrouter_integrations%'`,
              [ROTATION],
            )
            return proxy.stalled() && rows.length > 0
          })
          // Waits for the stalled batch's row lock, until the server ends that transaction.
          const { rowCount } = await app.query(
            `UPDATE x402_user_openrouter_integrations SET encrypted_api_key = encrypted_api_key WHERE user_id = $1`,
            [users[0]!.id],
          )
          expect(rowCount).toBe(1)
        })
        void rotation
      } finally {
        await proxy.close()
        await rotationDb.destroy().catch(() => {})
      }
    })
  })

  it('gives up a batch that meets a row held by the app, so that the app writes its other rows; earlier batches stay rotated', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      const connectionString = serverUrl(location)
      await migrateToLatest(db, { env: {} })
      const { rows: created } = await sql<{ id: string }>`
        INSERT INTO auth.users (id, aud, role, email)
        SELECT gen_random_uuid(), 'authenticated', 'authenticated', 'held-' || n || '@example.test'
        FROM generate_series(1, 4) AS n
        RETURNING id
      `.execute(db)
      // Stored in user_id order, the order of the batches: the UPDATE of the second batch locks
      // its first row before it reaches the held one.
      const users = created.map(({ id }) => id).sort()
      for (const id of users) {
        await db
          .insertInto('x402_user_openrouter_integrations')
          .values({ user_id: id, encrypted_api_key: encryptLegacy(`sk-or-v1-${id}`, OLD_SECRET) })
          .execute()
      }
      const cipher = new IntegrationCipher({ current: NEW_SECRET, previous: [OLD_SECRET] })
      const newSecretOnly = new IntegrationCipher({ current: NEW_SECRET, previous: [] })
      const rotationDb = createDb({
        connectionString: withApplicationName(connectionString, ROTATION),
      })
      try {
        await withSessions(connectionString, async (session) => {
          const observer = await session('x402-test-observer')
          const holder = await session('x402-test-holder')
          const app = await session('x402-test-app')
          await holder.query('BEGIN')
          await holder.query(
            'UPDATE x402_user_openrouter_integrations SET is_valid = true WHERE user_id = $1',
            [users[3]],
          )
          const rotation = rotateOpenRouterKeys(rotationDb, {
            cipher,
            keyId: cipher.currentKeyId,
            batchSize: 2,
            lockTimeoutMs: 200,
            lockAttempts: 2,
            retryDelayMs: 10,
          }).catch((error: unknown) => error)
          await waitForLockWait(observer, ROTATION, 'UPDATE x402_user_openrouter_integrations')

          // Another key of the same batch, written while the holder still holds its row.
          const { rowCount } = await app.query(
            'UPDATE x402_user_openrouter_integrations SET is_enabled = false WHERE user_id = $1',
            [users[2]],
          )
          expect(rowCount).toBe(1)
          const failure = await rotation
          expect(failure).toBeInstanceOf(Error)
          const { message } = failure as Error
          expect(message).toContain('lock_timeout')
          expect(message).toContain('2 attempts')
          expect(message).toContain(`user ${users[3]}`)
          expect(message).not.toContain(`user ${users[2]}`)
          expect(message).toContain('Run keys:rotate again')
          await holder.query('COMMIT')
        })
        const stored = new Map(
          (
            await db
              .selectFrom('x402_user_openrouter_integrations')
              .select(['user_id', 'encrypted_api_key'])
              .execute()
          ).map((row) => [row.user_id, row.encrypted_api_key]),
        )
        // The first batch committed before the held row was met: rotated, and readable.
        for (const id of users.slice(0, 2)) {
          expect(newSecretOnly.decrypt(stored.get(id)!, id)).toBe(`sk-or-v1-${id}`)
        }
        // The given-up batch wrote nothing: still readable with the previous secret.
        for (const id of users.slice(2)) {
          expect(cipher.isCurrent(stored.get(id)!)).toBe(false)
          expect(cipher.decrypt(stored.get(id)!, id)).toBe(`sk-or-v1-${id}`)
        }
        const rerun = await rotateOpenRouterKeys(rotationDb, {
          cipher,
          keyId: cipher.currentKeyId,
          batchSize: 2,
        })
        expect(rerun).toMatchObject({ rotated: 2, alreadyCurrent: 2, complete: true })
      } finally {
        await rotationDb.destroy().catch(() => {})
      }
    })
  })
})
