import { describe, expect, it } from 'vitest'

import { cli } from './support/cli.js'

// Usage errors of the command line: each exits with 2 and says what was wrong, before any
// database is opened, and never shows a password it was given.

const rotateKeys = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  cli(args, { PGLITE_DATA_DIR: '/nonexistent/never-opened', ...env }, 'src/cli/rotate-keys.ts')

describe('usage errors of the command line', () => {
  it('names the flag that needs a value: keys:rotate --key-id with nothing after it', async () => {
    const run = await rotateKeys(['--key-id'])
    expect({ code: run.code, stderr: run.stderr }).toEqual({
      code: 2,
      stderr: expect.stringMatching(/^keys:rotate failed: --key-id needs a value\. usage:/m),
    })
  })

  it.each([['-1'], ['-0'], ['-10000']])(
    'calls --batch-size %s out of range, not a missing value',
    async (value) => {
      const run = await rotateKeys(['--batch-size', value, '--key-id', '0123abcd'])
      expect({ code: run.code, stderr: run.stderr }).toEqual({
        code: 2,
        stderr: expect.stringMatching(
          new RegExp(`--batch-size is "${value}", expected a whole number from 1 to 10000`),
        ),
      })
    },
  )

  it.each([
    ['postgres://app:Hunter2pw@[::1/app', /"\[" .*no closing "\]"/],
    ['not a url Hunter2pw', /not a PostgreSQL URL/],
    ['postgres://app:Hunter2pw@localhost:99999/app', /port .*1 to 65535/],
    // In the query string too: the driver would connect with a bad sslmode, and fail on a port.
    [
      'postgres://app:Hunter2pw@127.0.0.1:5432/app?sslmode=bogus',
      /sslmode in DATABASE_URL is "bogus", expected one of disable, /,
    ],
    [
      'postgres://app:Hunter2pw@/app?host=127.0.0.1&port=abc',
      /port in DATABASE_URL is "abc", expected a whole number from 1 to 65535/,
    ],
    [
      'postgres://app:Hunter2pw@/app?host=127.0.0.1&port=Hunter2pwHunter2pwHunter2pw',
      /port in DATABASE_URL is \(27 characters, not shown\)/,
    ],
  ])('refuses DATABASE_URL=%s as a usage error, without showing it', async (url, reason) => {
    const run = await cli(['list'], { DATABASE_URL: url })
    expect({ code: run.code, stderr: run.stderr }).toEqual({
      code: 2,
      stderr: expect.stringMatching(reason),
    })
    expect(run.stderr).not.toMatch(/Hunter2pw/)
  })

  // The message names the variable the command read, so that the user knows which one to fix.
  it.each([
    ['src/cli/migrate.ts', ['list']],
    ['src/cli/migrate-plan.ts', []],
    ['src/cli/advise.ts', []],
  ])('%s names MIGRATION_DATABASE_URL when it refuses it', async (script, args) => {
    const run = await cli(args, { MIGRATION_DATABASE_URL: 'not a url Hunter2pw' }, script)
    expect({ code: run.code, stderr: run.stderr }).toEqual({
      code: 2,
      stderr: expect.stringMatching(/not a PostgreSQL URL.* in MIGRATION_DATABASE_URL/),
    })
    expect(run.stderr).not.toMatch(/Hunter2pw|connection string given/)
  })

  // A bad setting is a bad value, as a bad flag is: nothing ran and no database was opened.
  it.each([
    [['list'], 'src/cli/migrate.ts', 'MIGRATION_LOCK_TIMEOUT_MS', 'soon'],
    [['latest'], 'src/cli/migrate.ts', 'MIGRATION_IDLE_TIMEOUT_MS', '0'],
    [['latest'], 'src/cli/migrate.ts', 'MIGRATION_LOCK_ATTEMPTS', '0'],
    [['down'], 'src/cli/migrate.ts', 'MIGRATION_ALLOW_DATA_LOSS', 'yes'],
    [[], 'src/cli/lint-locks.ts', 'MIGRATION_LOCK_TIMEOUT_MS', '-1'],
  ])('refuses %s (%s) with %s=%s as a usage error', async (args, script, name, value) => {
    const run = await cli(
      args,
      { PGLITE_DATA_DIR: '/nonexistent/never-opened', [name]: value },
      script,
    )
    expect({ code: run.code, stderr: run.stderr }).toEqual({
      code: 2,
      stderr: expect.stringContaining(`${name} is `),
    })
  })

  // squawk echoes a reporter it does not know whole: a key pasted there would land in a CI log.
  it.each([
    ['an unknown name', 'bogus', /--reporter is "bogus", expected one of tty, gcc, json, gitlab\./],
    [
      '100 KB',
      'x'.repeat(100_000),
      /--reporter is \(100000 characters, not shown\), expected one of /,
    ],
    [
      'a key',
      'sk-or-v1-0123456789abcdef0123456789abcdef',
      /--reporter is \(41 characters, not shown\)/,
    ],
  ])(
    'refuses lint:sql --reporter with %s before the export, showing it only where it may',
    async (_label, value, reason) => {
      const run = await cli([`--reporter=${value}`], {}, 'src/cli/lint-sql.ts')
      expect({ code: run.code, stderr: run.stderr }).toEqual({
        code: 2,
        stderr: expect.stringMatching(reason),
      })
      expect(run.stderr).not.toMatch(/squawk over/)
      if (value !== 'bogus') expect(run.stdout + run.stderr).not.toContain(value.slice(0, 20))
    },
  )

  // A migration name is checked before any database is opened, as migrate:sql checks it.
  it.each([[[]], [['--plan']]])(
    'refuses migrate:baseline with an unknown migration name %j before opening a database',
    async (flags) => {
      const dataDir = '/nonexistent/never-opened'
      const run = await cli(['baseline', '999_no_such', ...flags], { PGLITE_DATA_DIR: dataDir })
      expect({ code: run.code, stderr: run.stderr }).toEqual({
        code: 2,
        stderr: expect.stringMatching(
          /No migration is named "999_no_such"\..* usage: npm run migrate:baseline/,
        ),
      })
      expect(run.stderr).not.toMatch(/Database:/)
    },
  )
})
