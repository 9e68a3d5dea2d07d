import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  findPostgresBinaries,
  type ScratchCluster,
  startScratchCluster,
} from '../src/rehearsal/scratch-cluster.js'

// Ctrl-C (SIGINT) or SIGTERM during migrate:plan must not leave its scratch database, its role
// or its scratch cluster behind.
const server = process.env.TEST_DATABASE_URL
const postgres = server && findPostgresBinaries().length > 0 ? describe : describe.skip
const root = fileURLToPath(new URL('..', import.meta.url))

/** A target on a server of the test's own: a rehearsal never runs on the target's server. */
let target: ScratchCluster | undefined
beforeAll(async () => {
  if (server && findPostgresBinaries().length > 0) target = await startScratchCluster()
})
afterAll(async () => {
  await target?.stop()
})

const scratchRoles = async () =>
  new Set(
    (
      await query<{ rolname: string }>(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'x402\\_rehearsal\\_%'",
      )
    ).map((row) => row.rolname),
  )

async function eventually(check: () => boolean): Promise<boolean> {
  for (let attempt = 0; attempt < 600 && !check(); attempt++)
    await new Promise((resolve) => setTimeout(resolve, 50))
  return check()
}

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
  new Set(
    (
      await query<{ datname: string }>(
        "SELECT datname FROM pg_database WHERE datname LIKE 'x402\\_rehearsal\\_%'",
      )
    ).map((row) => row.datname),
  )

postgres('migrate:plan interrupted', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    'drops its scratch database and its role on %s and exits with %i',
    async (signal, expectedCode) => {
      const before = await scratchDatabases()
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate-plan.ts'], {
        cwd: root,
        env: {
          ...process.env,
          DATABASE_URL: target!.connectionString,
          REHEARSAL_DATABASE_URL: server,
        },
        stdio: 'ignore',
      })
      const exited = new Promise<number | null>((resolve) =>
        child.on('exit', (code) => resolve(code)),
      )
      let mine: string | undefined
      // Polls until the scratch database appears (no timing is asserted).
      while (!mine && child.exitCode === null) {
        await new Promise((resolve) => setTimeout(resolve, 25))
        // Its name carries the pid of the process that made it: another test file's rehearsal on
        // the same server is never taken for it.
        mine = [...(await scratchDatabases())].find(
          (name) => !before.has(name) && name.split('_')[3] === String(child.pid),
        )
      }
      expect(mine).toBeDefined()
      child.kill(signal)
      const code = await exited
      const left = (await scratchDatabases()).has(mine!)
      const roleLeft = (await scratchRoles()).has(mine!)
      if (left) await query(`DROP DATABASE IF EXISTS ${mine} WITH (FORCE)`)
      if (roleLeft) await query(`DROP ROLE IF EXISTS ${mine}`)
      expect(left).toBe(false)
      expect(roleLeft).toBe(false)
      expect(code).toBe(expectedCode)
    },
  )

  it.each([
    ['SIGINT', 'while its server runs', 'data/postmaster.pid'],
    ['SIGKILL', 'while its server runs', 'data/postmaster.pid'],
    ['SIGKILL', 'during initdb', 'initdb.log'],
  ] as const)(
    'stops the scratch cluster it started and removes its folder on %s %s',
    async (signal, _when, sign) => {
      const folder = mkdtempSync(join(tmpdir(), 'x402-interrupted-'))
      // As /tmp is: a server started by root runs as another user, who must reach its folder here.
      chmodSync(folder, 0o1777)
      try {
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate-plan.ts'], {
          cwd: root,
          env: {
            ...process.env,
            DATABASE_URL: target!.connectionString,
            REHEARSAL_DATABASE_URL: undefined,
            TMPDIR: folder,
          },
          stdio: 'ignore',
        })
        const exited = new Promise((resolve) => child.on('exit', resolve))
        const clusters = () =>
          readdirSync(folder).filter((name) => name.startsWith('x402-rehearsal-'))
        // Polls until the cluster's folder shows the step (no timing is asserted).
        const reached = await eventually(
          () =>
            clusters().some((name) => existsSync(join(folder, name, sign))) ||
            child.exitCode !== null,
        )
        expect(reached && child.exitCode === null).toBe(true)
        child.kill(signal)
        await exited
        // Its server gone, the watchdog removes the folder.
        expect(await eventually(() => clusters().length === 0)).toBe(true)
      } finally {
        rmSync(folder, { recursive: true, force: true })
      }
    },
  )
})

postgres('a later rehearsal sweeps the leftovers of a killed one', () => {
  it('drops only old scratch databases that no session uses, and the roles of the dropped ones', async () => {
    const { sweepScratchDatabases } = await import('../src/rehearsal/scratch-database.js')
    const old = 'x402_rehearsal_1000000000_1_0000aaaa'
    const oldInUse = 'x402_rehearsal_1000000000_2_0000bbbb'
    const now = (
      await query<{ now: string }>('SELECT floor(extract(epoch FROM now()))::bigint AS now')
    )[0]!.now
    const recent = `x402_rehearsal_${now}_3_0000cccc`
    const unnamed = 'x402_rehearsal_notours'
    for (const name of [old, oldInUse, recent, unnamed]) await query(`CREATE DATABASE ${name}`)
    // The role of a database dropped by a rehearsal killed before it dropped the role.
    const orphan = 'x402_rehearsal_1000000000_4_0000dddd'
    for (const name of [old, oldInUse, orphan]) await query(`CREATE ROLE ${name}`)
    const user = new pg.Client({
      connectionString: Object.assign(new URL(server!), { pathname: `/${oldInUse}` }).toString(),
    })
    await user.connect()
    try {
      await sweepScratchDatabases(server!)
      const left = await scratchDatabases()
      expect([old, oldInUse, recent, unnamed].filter((name) => left.has(name))).toEqual([
        oldInUse,
        recent,
        unnamed,
      ])
      const roles = await scratchRoles()
      expect([old, oldInUse, orphan].filter((name) => roles.has(name))).toEqual([oldInUse])
    } finally {
      await user.end()
      for (const name of [old, oldInUse, recent, unnamed])
        await query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      for (const name of [old, oldInUse, orphan]) await query(`DROP ROLE IF EXISTS ${name}`)
    }
  })
})
