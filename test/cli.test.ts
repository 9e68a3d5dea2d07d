import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { migrationNames } from '../src/migrations/index.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { createTestDatabase, type TestDatabase, testTargets } from './support/test-database.js'

// The command line behind the npm scripts, run as a user runs it: a child process, on the
// embedded database and on DATABASE_URL.

function serverDatabaseUrl(database: string): string {
  const url = new URL(process.env.TEST_DATABASE_URL!)
  url.pathname = `/${database}`
  return url.toString()
}

describe.each(testTargets)('the migrate command line on %s', (target) => {
  let database: TestDatabase
  let env: NodeJS.ProcessEnv

  beforeAll(async () => {
    database = await createTestDatabase(target)
    // The command opens the database itself: release this process's hold on it.
    await database.db.destroy()
    env = cliEnv(database.location)
  })
  afterAll(async () => {
    await database.destroy()
  })

  it('latest applies everything, list shows it, down reverts one, up applies one', async () => {
    const newest = migrationNames.at(-1)!
    const latest = await cli(['latest'], env)
    expect(latest.code).toBe(0)
    expect(lines(latest.stderr).slice(1)).toEqual(migrationNames.map((name) => `applied  ${name}`))
    expect(lines(latest.stderr)[0]).toMatch(target === 'pglite' ? /^Database: embedded PGlite at / : /^Database: PostgreSQL at 127\.0\.0\.1:5432\/x402_test_/)

    expect((await cli(['latest'], env)).stderr).toContain('Already up to date: no pending migration.')

    const down = await cli(['down'], env)
    expect(down.code).toBe(0)
    expect(down.stderr).toContain(`reverted ${newest}`)

    const list = await cli(['list'], env)
    expect(list.code).toBe(0)
    expect(lines(list.stdout).map((line) => line.split(/\s+/))).toEqual([
      ...migrationNames.slice(0, -1).map((name) => ['applied', expect.stringMatching(/^\d{4}-\d\d-\d\dT/), name]),
      ['pending', '-', newest],
    ])

    const up = await cli(['up'], env)
    expect(up.code).toBe(0)
    expect(up.stderr).toContain(`applied  ${newest}`)
  })

  it('prints a migration’s SQL on stdout, up and --down', async () => {
    const up = await cli(['sql', '005'], env)
    expect(up.code).toBe(0)
    expect(up.stdout).toMatch(/^-- Migration 005_add_openrouter_integration \(up\)/)
    expect(up.stdout).toMatch(/-- locks: .*x402_resources ACCESS EXCLUSIVE .*\nALTER TABLE x402_resources/)
    const down = await cli(['sql', '005_add_openrouter_integration', '--down'], env)
    expect(down.stdout).toMatch(/^-- Migration 005_add_openrouter_integration \(down\)/)

    // The export runs on a scratch database: the target keeps every migration applied.
    const list = await cli(['list'], env)
    expect(lines(list.stdout).every((line) => line.startsWith('applied'))).toBe(true)
  })
})

describe('the migrate command line on bad input', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'x402-cli-bad-'))
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it.each([
    [['frobnicate'], /^migrate frobnicate failed: unknown command "frobnicate"\. usage: migrate </, {}],
    [['sql'], /^migrate sql failed: migrate:sql takes one migration name/, {}],
    [['sql', '999'], /^migrate sql failed: No migration is named "999"\. Known migrations: /, {}],
    [['latest'], /^migrate latest failed: The connection string is not a PostgreSQL URL \(it starts with "mysql:"; the rest is not shown/, { DATABASE_URL: 'mysql://root:hunter2@db/app' }],
    [['latest'], /^migrate latest failed: The connection string has an "@" after the host part/, { DATABASE_URL: 'postgres://postgres:2024/Hunter2Secret@127.0.0.1:5432/db' }],
    [['latest'], /^migrate latest failed: Cannot reach the database: connect ECONNREFUSED 127\.0\.0\.1:1\. Check DATABASE_URL/, { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }],
    ...(process.env.TEST_DATABASE_URL
      ? [
          [
            ['list'],
            /^migrate list failed: Cannot reach the database: database "x402_no_such_db" does not exist \(SQLSTATE 3D000\)\. Check DATABASE_URL/,
            { DATABASE_URL: serverDatabaseUrl('x402_no_such_db') },
          ],
        ]
      : []),
  ] as Array<[string[], RegExp, NodeJS.ProcessEnv]>)('%j exits 1 with a one-line reason', async (args, reason, extraEnv) => {
    const result = await cli(args, { PGLITE_DATA_DIR: dataDir, ...extraEnv })
    expect(result.code).toBe(1)
    const reasonLines = lines(result.stderr).filter((line) => !line.startsWith('Database: '))
    expect(reasonLines).toHaveLength(1)
    expect(reasonLines[0]).toMatch(reason)
    expect(result.stderr).not.toMatch(/hunter2/i)
  })
})
