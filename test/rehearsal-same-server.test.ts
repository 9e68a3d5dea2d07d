import { randomBytes } from 'node:crypto'

import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { withRehearsalServer } from '../src/rehearsal/rehearsal-server.js'
import { findPostgresBinaries, startScratchCluster } from '../src/rehearsal/scratch-cluster.js'
import { createDb } from '../src/tooling.js'
import { killRunningScripts, startScript } from './support/script-process.js'

// REHEARSAL_DATABASE_URL must never name the target's own server, by any address. A target's
// user may not read the server's system identifier (pg_control_system() revoked, as a hardened
// or hosted server may have it): the server is then told by what any user reads, never assumed
// another because its host is spelled otherwise.

const testServer = process.env.TEST_DATABASE_URL
const canStartClusters = findPostgresBinaries().length > 0

describe.skipIf(!testServer)(
  'a rehearsal server named by another address of the target’s server',
  () => {
    const name = `x402_same_server_${randomBytes(3).toString('hex')}`
    let target: string

    async function admin(text: string, database = 'postgres'): Promise<void> {
      const url = new URL(testServer!)
      url.pathname = `/${database}`
      const client = new pg.Client({ connectionString: url.toString() })
      await client.connect()
      try {
        await client.query(text)
      } finally {
        await client.end()
      }
    }

    beforeAll(async () => {
      await admin(`CREATE ROLE ${name} LOGIN PASSWORD 'not-secret'`)
      await admin(`CREATE DATABASE ${name} OWNER ${name}`)
      await admin('REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC', name)
      const url = new URL(testServer!)
      url.username = name
      url.password = 'not-secret'
      url.pathname = `/${name}`
      target = url.toString()
    })
    afterAll(async () => {
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin(`DROP ROLE IF EXISTS ${name}`)
    })

    it('is refused where the target cannot read the system identifier', async () => {
      const db = createDb({ connectionString: target })
      const other = new URL(testServer!)
      other.hostname = other.hostname === 'localhost' ? '127.0.0.1' : 'localhost'
      let worked = false
      try {
        const outcome = await withRehearsalServer(db, other.toString(), async () => {
          worked = true
        }).catch((error: unknown) => error)
        expect(outcome).toBeInstanceOf(Error)
        expect(String((outcome as Error).message)).toMatch(/names the target's own server/)
        expect(worked).toBe(false)
      } finally {
        await db.destroy()
      }
    })
  },
)

// The commands that rehearse with no target of their own (the lock comments of migrate:sql,
// lint:locks) still run where an app's database is named: the server for rehearsals must not be
// its server either, or the rehearsal's login role and database land on it.
describe.skipIf(!testServer)('a rehearsal server that is the app’s own server', () => {
  const name = `rva_app_${randomBytes(3).toString('hex')}`
  let app: string

  async function query<T>(text: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: testServer })
    await client.connect()
    try {
      return (await client.query(text)).rows as T[]
    } finally {
      await client.end()
    }
  }

  beforeAll(async () => {
    await query(`CREATE DATABASE ${name}`)
    const url = new URL(testServer!)
    url.pathname = `/${name}`
    app = url.toString()
  })
  afterEach(killRunningScripts)
  afterAll(async () => {
    await query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  })

  it.each([
    [
      'migrate:sql 005',
      'DATABASE_URL',
      'REHEARSAL_DATABASE_URL',
      'src/cli/migrate.ts',
      ['sql', '005'],
    ],
    [
      'migrate:sql 005',
      'MIGRATION_DATABASE_URL',
      'REHEARSAL_DATABASE_URL',
      'src/cli/migrate.ts',
      ['sql', '005'],
    ],
    ['lint:locks', 'DATABASE_URL', 'LINT_LOCKS_DATABASE_URL', 'src/cli/lint-locks.ts', []],
    ['lint:locks', 'DATABASE_URL', 'REHEARSAL_DATABASE_URL', 'src/cli/lint-locks.ts', []],
  ])(
    '%s refuses with %s and %s on one server, and creates no role there',
    async (_command, appVariable, rehearsalVariable, script, args) => {
      const run = startScript(script, args, {
        [appVariable]: app,
        [rehearsalVariable]: testServer,
      })
      const { code, stderr } = await run.exited
      expect({ code, stderr }).toEqual({
        code: 1,
        stderr: expect.stringMatching(
          new RegExp(`${rehearsalVariable} names ${appVariable}'s server, the app's`),
        ),
      })
      // The rehearsal's role and database carry the process id in their names.
      const created = await query<{ name: string }>(
        `SELECT rolname AS name FROM pg_roles WHERE rolname LIKE 'x402\\_rehearsal\\_%\\_${run.child.pid}\\_%'
       UNION ALL SELECT datname FROM pg_database WHERE datname LIKE 'x402\\_rehearsal\\_%\\_${run.child.pid}\\_%'`,
      )
      expect(created).toEqual([])
    },
  )

  // Review N10-6: migrate:plan compared the server for rehearsals only with its target's, and
  // created its login role and the Supabase roles on the app's server (DATABASE_URL's) where the
  // target is another (MIGRATION_DATABASE_URL's). The target here is a cluster of the test's own.
  it.skipIf(!canStartClusters)(
    'migrate:plan refuses with DATABASE_URL and REHEARSAL_DATABASE_URL on one server, its target on another, and creates no role there',
    async () => {
      const target = await startScratchCluster()
      try {
        const run = startScript('src/cli/migrate-plan.ts', ['--max-rows=50'], {
          MIGRATION_DATABASE_URL: target.connectionString,
          DATABASE_URL: app,
          REHEARSAL_DATABASE_URL: testServer,
        })
        const { code, stderr } = await run.exited
        expect({ code, stderr }).toEqual({
          code: 1,
          stderr: expect.stringMatching(
            /REHEARSAL_DATABASE_URL names DATABASE_URL's server, the app's/,
          ),
        })
        const created = await query<{ name: string }>(
          `SELECT rolname AS name FROM pg_roles WHERE rolname LIKE 'x402\\_rehearsal\\_%\\_${run.child.pid}\\_%'
       UNION ALL SELECT datname FROM pg_database WHERE datname LIKE 'x402\\_rehearsal\\_%\\_${run.child.pid}\\_%'`,
        )
        expect(created).toEqual([])
      } finally {
        await target.stop()
      }
    },
  )
})
