import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { describe, expect, it } from 'vitest'

import { cli, lines } from './support/cli.js'

// Every command that opens a server words an unreachable one as migrate:latest does: what
// happened (the host and port, the reason), what to check, on one line, exit 1, and never the
// password. No server is needed: port 1 refuses, and the .invalid domain never resolves.

const execFileAsync = promisify(execFile)

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

  // The hostile review of that fix: the rewrite took a "?" inside a value for the query's
  // start, missed a percent-encoded name, a repeated uselibpqcompat and a fragment; pg_dump
  // inherited PGSSLMODE=require, and took libpq's default for ?ssl=true.
  it.each([
    [`${REFUSED}?password=ab?sslmode=require`, `${REFUSED}?password=ab?sslmode=require`],
    [
      `${REFUSED}?application_name=x?sslmode=prefer`,
      `${REFUSED}?application_name=x?sslmode=prefer`,
    ],
    [`${REFUSED}?ssl%6Dode=require`, `${REFUSED}?sslmode=verify-full`],
    [
      `${REFUSED}?uselibpqcompat=true&uselibpqcompat=false&sslmode=require`,
      `${REFUSED}?uselibpqcompat=true&uselibpqcompat=false&sslmode=verify-full`,
    ],
    [
      `${REFUSED}?sslmode=require#&uselibpqcompat=true`,
      `${REFUSED}?sslmode=verify-full#&uselibpqcompat=true`,
    ],
    [
      `${REFUSED}?sslmode=require&uselibpqcompat=tru%65`,
      `${REFUSED}?sslmode=require&uselibpqcompat=tru%65`,
    ],
  ])('reads sslmode as the driver does: %s', async (url, strict) => {
    const { strictSslMode } = await import('../src/connection/connection-string.js')
    expect(strictSslMode(url)).toBe(strict)
  })

  it.each([
    [`${REFUSED}`, { PGSSLMODE: 'require' }],
    [`${REFUSED}?ssl=true`, {}],
    [`${REFUSED}?ssl=1`, { PGSSLMODE: 'disable' }],
  ])(
    'gives pg_dump verify-full where node-postgres checks the certificate: %s %o',
    async (url, env) => {
      const { pgDumpInvocation } = await import('../src/rehearsal/copy-schema.js')
      const saved = process.env.PGSSLMODE
      Object.assign(process.env, env)
      try {
        expect(pgDumpInvocation(url).args.join(' ')).toContain("sslmode='verify-full'")
      } finally {
        if (saved === undefined) delete process.env.PGSSLMODE
        else process.env.PGSSLMODE = saved
      }
    },
  )

  // The second hostile review: under uselibpqcompat=true node-postgres checks no certificate
  // for require, and pg_dump was told verify-full; and libpq's verify-full trusts only
  // ~/.postgresql/root.crt where no sslrootcert is named, where node-postgres trusts Node's roots.
  it('gives pg_dump the mode as given under uselibpqcompat=true', async () => {
    const { pgDumpInvocation } = await import('../src/rehearsal/copy-schema.js')
    const args = pgDumpInvocation(`${REFUSED}?uselibpqcompat=true&sslmode=require`).args.join(' ')
    expect(args).toContain("sslmode='require'")
    expect(args).not.toContain('sslrootcert')
  })

  it("gives pg_dump Node's roots where it checks a certificate and the URL names none", async () => {
    const { pgDumpInvocation } = await import('../src/rehearsal/copy-schema.js')
    const roots = '/tmp/x402-roots.pem'
    expect(pgDumpInvocation(`${REFUSED}?sslmode=require`, roots).args.join(' ')).toContain(
      `sslrootcert='${roots}'`,
    )
    // The driver reads the file while it parses the URL.
    const folder = mkdtempSync(join(tmpdir(), 'x402-ca-'))
    const ca = join(folder, 'ca.crt')
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n')
    const own = pgDumpInvocation(`${REFUSED}?sslmode=verify-full&sslrootcert=${ca}`, roots)
    rmSync(folder, { recursive: true })
    expect(own.args.join(' ')).toContain(`sslrootcert='${ca}'`)
    expect(own.args.join(' ')).not.toContain(roots)
    expect(pgDumpInvocation(`${REFUSED}?sslmode=disable`, roots).args.join(' ')).not.toContain(
      'sslrootcert',
    )
  })

  it('prints no warning where the module says which database a URL names', async () => {
    const script =
      "import { describeDatabaseTarget } from './src/connection/database-target.ts'; " +
      `console.log(describeDatabaseTarget({ kind: 'postgres', connectionString: '${REFUSED}?sslmode=require' }))`
    const { stdout, stderr } = await execFileAsync('npx', ['tsx', '-e', script])
    expect(stdout).toContain('PostgreSQL at 127.0.0.1:1/x')
    expect(stderr).not.toMatch(/uselibpqcompat|SECURITY WARNING/)
  })

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

// The second hostile review: a socket folder with no server in it is a database that cannot be
// reached, said as the others are.
describe('a URL whose socket folder has no server', () => {
  it('is said to be unreachable, without the folder where it looks like a key', async () => {
    const { unreachableMessage } = await import('../src/connection/unreachable.js')
    const key = `sk-or-v1-${'0f'.repeat(32)}`
    const error = Object.assign(new Error(`connect ENOENT /tmp/s/${key}/.s.PGSQL.5432`), {
      code: 'ENOENT',
    })
    const message = unreachableMessage(error)
    expect(message).toMatch(/^Cannot reach the database: connect ENOENT /)
    expect(message).not.toContain(key)
  })
})

// The second hostile review: sslmode=require on a server whose certificate Node cannot verify
// failed with no word of why, once node-postgres's warning was no longer printed.
describe('a server whose certificate cannot be verified', () => {
  it.each(['self-signed certificate', 'unable to verify the first certificate'])(
    '%s: says to name its authority, never a weaker mode',
    async (reason) => {
      const { cannotReachDatabase } = await import('../src/connection/unreachable.js')
      const message = cannotReachDatabase(reason)
      expect(message).toContain('sslrootcert=')
      expect(message).not.toMatch(/uselibpqcompat|no-verify|sslmode=(require|prefer|disable)/)
    },
  )
})
