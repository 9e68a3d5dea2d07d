import { execFile } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { sql } from 'kysely'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'

import { pgbouncerSkipReason, startPgBouncer, usePgBouncer } from './support/pgbouncer.js'
import { serverUrl, useTestDatabase } from './support/test-database.js'

// The PgBouncer of test/support/pgbouncer.ts: it starts and stops cleanly, and it really pools
// in transaction mode, so that the tests of the migration lock face what Supabase's port 6543
// does: statements of one client land on different server connections, and a session-level
// advisory lock stays behind on a server connection that other clients get next.

const root = fileURLToPath(new URL('..', import.meta.url))
const skipReason = pgbouncerSkipReason()
const skipNote = skipReason ? ` (skipped: ${skipReason})` : ''

describe.skipIf(skipReason !== undefined)(`PgBouncer in transaction mode${skipNote}`, () => {
  const pooler = usePgBouncer()
  const database = useTestDatabase('postgres', 'none')
  const databaseName = () => new URL(serverUrl(database.location)).pathname.slice(1)

  const clients: pg.Client[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.end().catch(() => undefined)))
  })

  /** A client connection to the test database through the PgBouncer. */
  async function pooledClient(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: pooler().url(databaseName()) })
    clients.push(client)
    await client.connect()
    return client
  }

  async function backendPid(
    client: pg.Client,
    statement = 'SELECT pg_backend_pid() AS pid',
  ): Promise<number> {
    const { rows } = await client.query<{ pid: number }>(statement)
    return rows[0]!.pid
  }

  /** The backends holding advisory lock `key` in the test database, seen on a direct connection. */
  async function advisoryLockHolders(key: number): Promise<number[]> {
    const { rows } = await sql<{ pid: number }>`
      SELECT pid FROM pg_locks
      WHERE locktype = 'advisory' AND granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND classid = 0 AND objid = ${key} AND objsubid = 1`.execute(database.db)
    return rows.map((row) => row.pid)
  }

  async function pooledServerPids(): Promise<number[]> {
    const servers = await pooler().adminQuery('SHOW SERVERS')
    return servers
      .filter((server) => server.database === databaseName())
      .map((server) => Number(server.remote_pid))
  }

  it('serves a database created after it started, in transaction mode with LIFO reuse', async () => {
    const client = await pooledClient()
    expect((await client.query('SELECT current_database() AS name')).rows[0].name).toBe(
      databaseName(),
    )

    const pools = await pooler().adminQuery('SHOW POOLS')
    expect(pools.find((pool) => pool.database === databaseName())).toMatchObject({
      pool_mode: 'transaction',
    })
    const config = Object.fromEntries(
      (await pooler().adminQuery('SHOW CONFIG')).map((row) => [row.key, row.value]),
    )
    expect(Number(config.default_pool_size)).toBeGreaterThanOrEqual(4)
    expect(config.server_round_robin).toBe('0')
  })

  it('sends two statements of one client, outside a transaction, to different server backends', async () => {
    const first = await pooledClient()
    const other = await pooledClient()

    const firstBackend = await backendPid(first)
    // The server connection the first statement used is the idle one reused first, and the
    // other client's transaction now keeps it busy.
    await other.query('BEGIN')
    expect(await backendPid(other)).toBe(firstBackend)
    const secondBackend = await backendPid(first)
    await other.query('COMMIT')

    expect(secondBackend).not.toBe(firstBackend)
    const { rows } = await sql<{ pid: number }>`
      SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid IN (${firstBackend}, ${secondBackend})`.execute(
      database.db,
    )
    expect(rows.map((row) => row.pid).sort()).toEqual([firstBackend, secondBackend].sort())
  })

  it('leaves a session-level advisory lock behind on a server connection that another client gets', async () => {
    const key = randomInt(1, 2 ** 31)
    const locker = await pooledClient()
    const other = await pooledClient()

    const lockBackend = await backendPid(
      locker,
      `SELECT pg_backend_pid() AS pid, pg_advisory_lock(${key})`,
    )
    await other.query('BEGIN')
    expect(await backendPid(other)).toBe(lockBackend)
    // The unlock lands on another server connection, which holds nothing: it fails.
    const { rows } = await locker.query<{ pid: number; unlocked: boolean }>(
      `SELECT pg_backend_pid() AS pid, pg_advisory_unlock(${key}) AS unlocked`,
    )
    expect(rows[0]).toMatchObject({ unlocked: false })
    expect(rows[0]!.pid).not.toBe(lockBackend)

    await locker.end()
    expect(await advisoryLockHolders(key)).toEqual([lockBackend])
    expect(await pooledServerPids()).toContain(lockBackend)

    // Whoever gets that server connection owns the lock now.
    expect(
      (await other.query(`SELECT pg_advisory_unlock(${key}) AS unlocked`)).rows[0].unlocked,
    ).toBe(true)
    await other.query('COMMIT')
    expect(await advisoryLockHolders(key)).toEqual([])
  })

  it('releases a transaction-scoped advisory lock at commit, and when the client goes mid-transaction', async () => {
    const key = randomInt(1, 2 ** 31)
    const committing = await pooledClient()
    await committing.query('BEGIN')
    const holder = await backendPid(
      committing,
      `SELECT pg_backend_pid() AS pid, pg_advisory_xact_lock(${key})`,
    )
    expect(await advisoryLockHolders(key)).toEqual([holder])
    await committing.query('COMMIT')
    expect(await advisoryLockHolders(key)).toEqual([])

    const leaving = await pooledClient()
    await leaving.query('BEGIN')
    const leavingHolder = await backendPid(
      leaving,
      `SELECT pg_backend_pid() AS pid, pg_advisory_xact_lock(${key})`,
    )
    expect(await advisoryLockHolders(key)).toEqual([leavingHolder])
    await leaving.end()
    // PgBouncer closes a server connection its client left mid-transaction; the backend then
    // ends on its own time, so wait for it (bounded).
    await expect.poll(() => advisoryLockHolders(key), { timeout: 10_000, interval: 50 }).toEqual([])
  })
})

describe.skipIf(skipReason !== undefined)(`stopping PgBouncer${skipNote}`, () => {
  it('stop() ends the process, frees the port and removes the directory, and can be called twice', async () => {
    const pooler = await startPgBouncer()
    const { pid, directory } = pooler
    expect(isAlive(pid)).toBe(true)
    expect(existsSync(directory)).toBe(true)

    await pooler.stop()
    await pooler.stop()

    expect(isAlive(pid)).toBe(false)
    expect(existsSync(directory)).toBe(false)
    expect(await refusesConnections(pooler.url('postgres'))).toBe(true)
  })

  it.each<[string, string, { code: number } | { signal: string } | undefined]>([
    ['crashes', "throw new Error('the test process crashes')", { code: 1 }],
    ['ends without calling stop()', '', undefined],
    // The interval keeps it busy, as a running test would be, until the signal arrives.
    [
      'is stopped with SIGTERM',
      "setInterval(() => {}, 1_000); process.kill(process.pid, 'SIGTERM')",
      { signal: 'SIGTERM' },
    ],
  ])(
    'leaves no PgBouncer behind when the test process %s',
    async (_ending, lastStatement, failure) => {
      const script = `
      import { startPgBouncer } from './test/support/pgbouncer.ts'
      const pooler = await startPgBouncer()
      console.log(JSON.stringify({ pid: pooler.pid, directory: pooler.directory, url: pooler.url('postgres') }))
      ${lastStatement}`
      // A PgBouncer that kept the process alive would run into this timeout.
      const outcome = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        {
          cwd: root,
          timeout: 30_000,
        },
      ).then(
        ({ stdout }) => ({ stdout, failure: undefined }),
        (error: { stdout: string; code: number | null; signal: string | null }) => ({
          stdout: error.stdout,
          failure: error.signal ? { signal: error.signal } : { code: error.code },
        }),
      )
      expect(outcome.failure).toEqual(failure)

      const { pid, directory, url } = JSON.parse(outcome.stdout) as {
        pid: number
        directory: string
        url: string
      }
      expect(isAlive(pid)).toBe(false)
      expect(existsSync(directory)).toBe(false)
      // Its port is freed with it (a dead pid holds no socket), and another file's PgBouncer (the
      // files run in parallel) may take it at once: asked of the port, it accepted there once
      // (CI, 2026-12-06). Whether the port is free is asked of stop() above.
      expect(url).toMatch(/^postgres(ql)?:\/\//)
    },
  )
})

/**
 * Whether process `pid` still runs. A killed process whose parent died stays a zombie until
 * PID 1 reaps it, and some container inits never do: a zombie counts as gone.
 */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

async function refusesConnections(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url })
  return client.connect().then(
    () => client.end().then(() => false),
    (error: { code?: string }) => error.code === 'ECONNREFUSED',
  )
}
