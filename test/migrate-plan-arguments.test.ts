import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { migrationNames } from '../src/migrations/index.js'
import { cli } from './support/cli.js'

const parent = mkdtempSync(join(tmpdir(), 'plan-args-'))
afterAll(() => rmSync(parent, { recursive: true, force: true }))

describe('migrate:plan arguments and the embedded target', () => {
  it.each(['--max-rows=', '--max-rows=0', '--max-rows=-5', '--max-rows=1e3', '--max-rows=10.5'])(
    'refuses %s before opening any database',
    async (argument) => {
      const dataDir = join(parent, `never-${argument.length}-${argument.replace(/\W/g, '')}`)
      const run = await cli([argument], { PGLITE_DATA_DIR: dataDir }, 'src/cli/migrate-plan.ts')
      // A usage error: 2.
      expect(run.code).toBe(2)
      expect(run.stderr).toMatch(/--max-rows must be a positive whole number/)
      expect(existsSync(dataDir)).toBe(false)
    },
  )

  // Review r3: the command line parser took the last of two values silently (the old parser
  // refused), and called a value-taking flag followed by another flag one that "takes no value".
  it.each([
    [['--max-rows=10', '--max-rows=100000'], /--max-rows is given 2 times: give it once/],
    [
      ['--max-rows', '10', '--max-rows', '20', '--json'],
      /--max-rows is given 2 times: give it once/,
    ],
    [['--max-rows', '--json'], /--max-rows needs a value/],
  ])('refuses %j before opening any database, saying what is wrong', async (args, message) => {
    const dataDir = join(parent, `never-repeated-${args.length}`)
    const run = await cli(args, { PGLITE_DATA_DIR: dataDir }, 'src/cli/migrate-plan.ts')
    expect({ code: run.code, stderr: run.stderr }).toEqual({
      code: 2,
      stderr: expect.stringMatching(message),
    })
    expect(existsSync(dataDir)).toBe(false)
  })

  it('refuses --copy-schema for a URL with sslpassword, before connecting, without showing it', async () => {
    const run = await cli(
      ['--copy-schema'],
      { MIGRATION_DATABASE_URL: 'postgres://app@127.0.0.1:1/app?sslpassword=Hunter2Key' },
      'src/cli/migrate-plan.ts',
    )
    expect(run.stderr).toMatch(/^migrate:plan failed: .*sslpassword.*no environment variable/m)
    expect(run.code).toBe(2)
    expect(run.stderr).not.toMatch(/Hunter2Key|^Database:/m)
  })

  it('refuses --copy-schema for a URL with PASSWORD=, with exit 2, without showing it', async () => {
    const run = await cli(
      ['--copy-schema'],
      { MIGRATION_DATABASE_URL: 'postgres://app@127.0.0.1:1/app?PASSWORD=Hunter2Key' },
      'src/cli/migrate-plan.ts',
    )
    expect(run.stderr).toMatch(/^migrate:plan failed: .*the parameter PASSWORD .*Nothing was run/m)
    expect(run.code).toBe(2)
    expect(run.stderr).not.toMatch(/Hunter2Key/)
  })

  it('plans every migration for an embedded target that does not exist, without creating it', async () => {
    const dataDir = join(parent, 'pglite')
    const run = await cli(
      ['--json', '--max-rows=10'],
      { PGLITE_DATA_DIR: dataDir },
      'src/cli/migrate-plan.ts',
    )
    expect(run.stderr).toMatch(/does not exist/)
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout).migrations[0].name).toBe(migrationNames[0])
    expect(existsSync(dataDir)).toBe(false)
  })
})
