import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import pg from 'pg'
import { describe, expect, it } from 'vitest'

// Ctrl-C (SIGINT) or SIGTERM during migrate:plan must not leave its scratch database behind.
const server = process.env.TEST_DATABASE_URL
const postgres = server ? describe : describe.skip
const root = fileURLToPath(new URL('..', import.meta.url))

async function query<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: server })
  await client.connect()
  try {
    return (await client.query<T>(text)).rows
  } finally {
    await client.end()
  }
}

const scratchDatabases = async () =>
  new Set((await query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'x402\\_rehearsal\\_%'")).map((row) => row.datname))

postgres('migrate:plan interrupted', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('drops its scratch database on %s and exits with %i', async (signal, expectedCode) => {
    const before = await scratchDatabases()
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate-plan.ts'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: server },
      stdio: 'ignore',
    })
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    let mine: string | undefined
    // Polls until the scratch database appears (no timing is asserted).
    while (!mine && child.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 25))
      mine = [...(await scratchDatabases())].find((name) => !before.has(name))
    }
    expect(mine).toBeDefined()
    child.kill(signal)
    const code = await exited
    const left = (await scratchDatabases()).has(mine!)
    if (left) await query(`DROP DATABASE IF EXISTS ${mine} WITH (FORCE)`)
    expect(left).toBe(false)
    expect(code).toBe(expectedCode)
  })
})

postgres('a later rehearsal sweeps the leftovers of a killed one', () => {
  it('drops only old scratch databases that no session uses', async () => {
    const { sweepScratchDatabases } = await import('../src/rehearsal/scratch-database.js')
    const old = 'x402_rehearsal_1000000000_1_0000aaaa'
    const oldInUse = 'x402_rehearsal_1000000000_2_0000bbbb'
    const now = (await query<{ now: string }>('SELECT floor(extract(epoch FROM now()))::bigint AS now'))[0]!.now
    const recent = `x402_rehearsal_${now}_3_0000cccc`
    const unnamed = 'x402_rehearsal_notours'
    for (const name of [old, oldInUse, recent, unnamed]) await query(`CREATE DATABASE ${name}`)
    const user = new pg.Client({ connectionString: Object.assign(new URL(server!), { pathname: `/${oldInUse}` }).toString() })
    await user.connect()
    try {
      await sweepScratchDatabases(server!)
      const left = await scratchDatabases()
      expect([old, oldInUse, recent, unnamed].filter((name) => left.has(name))).toEqual([oldInUse, recent, unnamed])
    } finally {
      await user.end()
      for (const name of [old, oldInUse, recent, unnamed]) await query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    }
  })
})
