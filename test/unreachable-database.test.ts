import { describe, expect, it } from 'vitest'

import { cli, lines } from './support/cli.js'

// Every command that opens a server words an unreachable one as migrate:latest does: what
// happened (the host and port, the reason), what to check, on one line, exit 1, and never the
// password. No server is needed: port 1 refuses, and the .invalid domain never resolves.

const PASSWORD = 'Sp3cretPassw0rd'
const REFUSED = `postgres://postgres:${PASSWORD}@127.0.0.1:1/x`
const UNRESOLVED = `postgres://postgres:${PASSWORD}@no-such-host.invalid:5432/x`

describe.each([
  ['migrate:latest', ['latest'], 'src/cli/migrate.ts', 'migrate latest'],
  ['migrate:check', ['check'], 'src/cli/migrate.ts', 'migrate check'],
  ['migrate:pull', ['pull'], 'src/cli/migrate.ts', 'migrate pull'],
  ['db:advise', [], 'src/cli/advise.ts', 'db:advise'],
])('%s against a server it cannot reach', (_name, args, script, label) => {
  it.each([
    [REFUSED, 'connect ECONNREFUSED 127.0.0.1:1'],
    [UNRESOLVED, 'getaddrinfo ENOTFOUND no-such-host.invalid'],
  ])('%s', async (url, reason) => {
    const result = await cli(args, { DATABASE_URL: url }, script)
    expect(result.code).toBe(1)
    const failure = lines(result.stderr).at(-1)!
    expect(failure).toBe(
      `${label} failed: Cannot reach the database: ${reason}. ` +
        'Check DATABASE_URL (host, port, user, password, database name) and that the server is running.',
    )
    expect(result.stderr + result.stdout).not.toContain(PASSWORD)
  })
})

// Review N10-5: node-postgres 8 reads sslmode prefer, require and verify-ca as verify-full, and
// warns once that it will not later, advising uselibpqcompat=true&sslmode=require, which would
// stop checking the server's certificate. The module reads them as verify-full itself (pg_dump
// too, whose libpq would not check), so no such advice reaches its output.
describe('a URL with sslmode require', () => {
  it.each(['prefer', 'require', 'verify-ca'])(
    'sslmode=%s: migrate:latest prints no advice to weaken it',
    async (mode) => {
      const result = await cli(['latest'], { DATABASE_URL: `${REFUSED}?sslmode=${mode}` })
      expect(result.code).toBe(1)
      expect(result.stderr + result.stdout).not.toMatch(/uselibpqcompat|SECURITY WARNING/)
      expect(lines(result.stderr).at(-1)).toContain('Cannot reach the database')
    },
  )

  it('is read as verify-full by pg_dump too', async () => {
    const { pgDumpInvocation } = await import('../src/rehearsal/copy-schema.js')
    const { givenConnectionString } = await import('../src/connection/connection-string.js')
    const url = givenConnectionString(
      `${REFUSED}?application_name=a&sslmode=require`,
      'DATABASE_URL',
    )!
    expect(pgDumpInvocation(url).args.join(' ')).toContain("sslmode='verify-full'")
    expect(givenConnectionString(`${REFUSED}?sslmode=disable`, 'DATABASE_URL')).toBe(
      `${REFUSED}?sslmode=disable`,
    )
  })
})
