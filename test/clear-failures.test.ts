import { createServer, type Socket } from 'node:net'

import { type Kysely, sql } from 'kysely'
import type pg from 'pg'
import { describe, expect, it } from 'vitest'

import {
  createDb,
  type DB,
  ensureSupabaseStandIn,
  MIGRATION_LOCK_KEY,
  MigrationError,
  MigrationLockTimeoutError,
  migrateOnStartup,
  migrateTo,
  migrateToLatest,
} from '../src/tooling.js'
import { ALL_MIGRATIONS, migrationsAfter, migrationsThrough } from './support/migration-names.js'
import { withLesserRole } from './support/lesser-role.js'
import {
  backendPid,
  openSession,
  recordedMigrations,
  waitForLockWait,
  withSessions,
} from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// What a run reports when the database cannot be used, or will not let it through: an
// unreachable server, a connection lost mid-migration, a migration lock that does not come, a
// table lock that does not come. Each gives a MigrationError that says what happened and what
// to do, and none hangs: each wait has a bound. The tests assert the messages, never the time.
//
// PGlite has none of these: it is in the process, with one connection and no lock to wait for
// but its data folder's, whose refusal embedded-database.test.ts covers.

const THROUGH_002 = migrationsThrough('002_add_claude_integration')

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and these failures need a server'

/** A loopback port that nothing listens on: a server that is down. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve, reject) =>
    server.close((error) => (error ? reject(error) : resolve())),
  )
  return port
}

/** A server database of the test's own, and sessions on it that end before it is dropped. */
function withServerDatabase(
  use: (database: {
    db: Kysely<DB>
    session: (applicationName: string) => Promise<pg.Client>
  }) => Promise<void>,
): Promise<void> {
  return withTestDatabase('postgres', ({ db, location }) =>
    withSessions(serverUrl(location), (session) => use({ db, session })),
  )
}

describe('a server that cannot be reached', () => {
  it('fails start-up and migrate:latest with "Cannot reach the database"', async () => {
    const db = createDb({
      connectionString: `postgres://postgres@127.0.0.1:${await closedPort()}/x402`,
    })
    try {
      const expected =
        /^Cannot reach the database: connect ECONNREFUSED 127\.0\.0\.1:\d+\. Check DATABASE_URL \(host, port, user, password, database name\) and that the server is running\.$/
      for (const run of [
        () => migrateOnStartup(db, { env: {}, log: () => {} }),
        () => migrateToLatest(db, { env: {} }),
      ]) {
        const error = await run().catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(MigrationError)
        expect((error as MigrationError).message).toMatch(expected)
      }
    } finally {
      await db.destroy()
    }
  })

  it('fails start-up naming MIGRATION_DATABASE_URL where that is the server it cannot reach', async () => {
    await withTestDatabase('pglite', async ({ db }) => {
      const env = {
        MIGRATION_DATABASE_URL: `postgres://postgres@127.0.0.1:${await closedPort()}/x402`,
      }
      const error = await migrateOnStartup(db, { env, log: () => {} }).catch(
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(MigrationError)
      expect((error as MigrationError).message).toMatch(
        /^Cannot reach the database: connect ECONNREFUSED 127\.0\.0\.1:\d+\. Check MIGRATION_DATABASE_URL \(host, port/,
      )
    })
  })
})

/**
 * A server that asks every client for a SCRAM password (AuthenticationSASL) and then says
 * nothing more, as a PostgreSQL server with scram-sha-256 in pg_hba.conf does while it waits.
 */
async function passwordAskingServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.once('data', () => {
      const mechanisms = Buffer.from('SCRAM-SHA-256\0\0')
      const message = Buffer.alloc(9 + mechanisms.length)
      message.write('R', 0)
      message.writeInt32BE(8 + mechanisms.length, 1)
      message.writeInt32BE(10, 5)
      mechanisms.copy(message, 9)
      socket.write(message)
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
      }),
  }
}

describe('a connection string without the password that the server asks for', () => {
  it('fails at once, saying that the password is missing', async () => {
    const server = await passwordAskingServer()
    const db = createDb({
      connectionString: `postgres://app@127.0.0.1:${server.port}/x402`,
      env: {},
    })
    try {
      // Without a password, the client would send its SCRAM start and wait out the connection timeout.
      const error = await migrateToLatest(db, { env: {} }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(MigrationError)
      expect((error as Error).message).toContain(
        `The password is missing: the server asks user "app" at 127.0.0.1:${server.port} for a password, and the connection string has none`,
      )
      expect((error as Error).message).not.toMatch(/timeout|SASL/)
    } finally {
      await db.destroy()
      await server.close()
    }
  })
})

describe('a connection string whose user part holds a password (the user forgotten)', () => {
  it('does not show it', async () => {
    const server = await passwordAskingServer()
    const db = createDb({
      connectionString: `postgres://Qx7Vz9Kp2Lm4Nw8R@127.0.0.1:${server.port}/x402`,
      env: {},
    })
    try {
      const error = await migrateToLatest(db, { env: {} }).catch((caught: unknown) => caught)
      expect((error as Error).message).toContain(
        'The password is missing: the server asks user (16 characters, not shown)',
      )
      expect((error as Error).message).not.toContain('Qx7Vz9Kp')
    } finally {
      await db.destroy()
      await server.close()
    }
  })
})

describe.skipIf(skipReason !== undefined)(
  `failures on postgres${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it('a connection lost mid-migration names the migration, rolls it back, and the next run completes', async () => {
      await withServerDatabase(async ({ db, session }) => {
        const holder = await session('x402-test-holder')
        const observer = await session('x402-test-observer')
        await ensureSupabaseStandIn(db)
        // 002 references auth.users: a sign-up in progress holds its CREATE TABLE.
        await holder.query('BEGIN; LOCK TABLE auth.users IN ROW EXCLUSIVE MODE')

        const run = migrateToLatest(db, { env: {}, lockTimeoutMs: 60_000 }).catch(
          (caught: unknown) => caught,
        )
        const migrating = await waitForLockWait(
          observer,
          'x402-jobs-db',
          'create table "x402_user_claude_configs"',
        )
        await observer.query('SELECT pg_terminate_backend($1)', [migrating])
        const error = await run

        expect(error).toBeInstanceOf(MigrationError)
        expect(error).toMatchObject({ migrationName: '002_add_claude_integration', code: '57P01' })
        expect((error as Error).message).toBe(
          'Migration 002_add_claude_integration failed (up): terminating connection due to administrator command (SQLSTATE 57P01). ' +
            '002_add_claude_integration was rolled back. 000_baseline_ai_models, 000_baseline_x402_resources, ' +
            '001_add_prompt_template_fields ran earlier in this run and stay done. Fix the cause and run the migrations again.',
        )
        expect(await recordedMigrations(observer)).toEqual(ALL_MIGRATIONS.slice(0, 3))

        await holder.query('COMMIT')
        const applied = await migrateToLatest(db, { env: {} })
        expect(applied.map((result) => result.migrationName)).toEqual(
          migrationsAfter('001_add_prompt_template_fields'),
        )
      })
    })

    // Any login with CONNECT may take an advisory lock of any key: a run cannot stop it, but it
    // must not send the operator waiting for "another run" that does not exist (review revi R4).
    it("a migration lock held by a login that cannot act as the run's user is named as that login, not as a run", async () => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await withLesserRole(
          db,
          'x402_test_lock_squatter',
          async (login) => {
            const url = new URL(serverUrl(location))
            await sql`GRANT CONNECT ON DATABASE ${sql.id(url.pathname.slice(1))} TO ${sql.id(login)}`.execute(
              db,
            )
            url.username = login
            const squatter = await openSession(url.toString(), 'x402-squatter')
            try {
              const squatterPid = await backendPid(squatter)
              await squatter.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
              const error = await migrateToLatest(db, {
                env: {},
                lockWaitMs: 200,
                log: () => {},
              }).catch((caught: unknown) => caught)
              expect((error as Error).cause).toBeInstanceOf(MigrationLockTimeoutError)
              expect((error as Error).message).toContain(
                `Waited 200 ms for the migration lock, but login ${login}, which cannot act as postgres, holds it (pid ${squatterPid}, x402-squatter, `,
              )
              expect((error as Error).message).not.toMatch(/another run|Another instance/)
              expect(await recordedMigrations(squatter)).toEqual([])
            } finally {
              await squatter.end()
            }
          },
          { login: true },
        )
      })
    })

    it('a migration lock that does not come within lockWaitMs names its holder, and nothing changes', async () => {
      await withServerDatabase(async ({ db, session }) => {
        const holder = await session('x402-deploy-step')
        const holderPid = await backendPid(holder)
        await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`)

        const error = await migrateToLatest(db, { env: {}, lockWaitMs: 200, log: () => {} }).catch(
          (caught: unknown) => caught,
        )

        expect(error).toBeInstanceOf(MigrationError)
        expect((error as Error).cause).toBeInstanceOf(MigrationLockTimeoutError)
        expect((error as Error).message).toMatch(
          new RegExp(
            '^The migration run failed before any migration ran: ' +
              `Waited 200 ms for the migration lock, but another run holds it \\(pid ${holderPid}, x402-deploy-step, for [\\d:]+, idle in transaction\\)\\. ` +
              'Another instance or a deploy step is migrating this database: let it finish and start again, ' +
              'or allow a longer wait with MIGRATION_LOCK_WAIT_MS\\. Nothing was changed\\.$',
          ),
        )
        expect(await recordedMigrations(holder)).toEqual([])

        await holder.query('COMMIT')
        expect(
          (await migrateToLatest(db, { env: {} })).map((result) => result.migrationName),
        ).toEqual(ALL_MIGRATIONS)
      })
    })

    it('a table lock that does not come within lock_timeout, in every attempt, names the blocker and records nothing of 005', async () => {
      await withServerDatabase(async ({ db, session }) => {
        await migrateTo(db, '002_add_claude_integration', { env: {} })
        const holder = await session('x402-test-holder')
        const holderPid = await backendPid(holder)
        await holder.query('BEGIN; LOCK TABLE x402_resources IN ACCESS SHARE MODE')

        const retries: string[] = []
        const error = await migrateToLatest(db, {
          env: {},
          lockTimeoutMs: 200,
          lockAttempts: 2,
          retryDelayMs: 50,
          log: (line) => retries.push(line),
        }).catch((caught: unknown) => caught)

        expect(error).toBeInstanceOf(MigrationError)
        expect(error).toMatchObject({
          migrationName: '005_add_openrouter_integration',
          code: '55P03',
        })
        expect((error as Error).message).toMatch(
          new RegExp(
            '^Migration 005_add_openrouter_integration failed \\(up\\): canceling statement due to lock timeout \\(SQLSTATE 55P03\\)\\. ' +
              `It could not get its lock within lock_timeout in 2 attempt\\(s\\), blocked by pid ${holderPid} ` +
              '\\(idle in transaction, transaction open for [\\d:]+: BEGIN … \\(the rest not shown\\)\\); ' +
              'end or wait for that session \\(or raise MIGRATION_LOCK_TIMEOUT_MS\\), then run the migrations again\\. ' +
              '005_add_openrouter_integration runs outside a transaction: ',
          ),
        )
        expect(retries).toEqual([
          expect.stringMatching(
            /^\[db\] 005_add_openrouter_integration hit lock_timeout \(attempt 1 of 2; /,
          ),
        ])
        // Step 1 is one transaction, rolled back at each timeout: nothing of 005 is there.
        expect(await recordedMigrations(holder)).toEqual(THROUGH_002)
        const { rows } = await holder.query(
          `SELECT to_regclass('public.user_openrouter_integrations') AS found`,
        )
        expect(rows).toEqual([{ found: null }])

        await holder.query('COMMIT')
        const applied = await migrateToLatest(db, { env: {} })
        expect(applied.map((result) => result.migrationName)).toEqual(
          migrationsAfter('002_add_claude_integration'),
        )
      })
    })
  },
)
