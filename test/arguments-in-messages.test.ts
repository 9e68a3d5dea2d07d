import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { cli } from './support/cli.js'

// Nothing a user passes is echoed whole: an argument that may be a secret (an API key given by
// mistake where a number or a name was expected) or that is very long appears in a message only
// as its length.

const KEY = `sk-or-v1-${'0123456789abcdef'.repeat(4)}`
const HUGE = 'a'.repeat(100_000)
const SECRET = {
  INTEGRATION_ENCRYPTION_SECRET: 'the-new-secret-0123456789abcdef-0123456789',
  PGLITE_DATA_DIR: '',
}

describe('a message about an argument', () => {
  it.each([
    ['keys:rotate given a key as an argument', [KEY], 'src/cli/rotate-keys.ts'],
    ['keys:rotate given a key as --batch-size', ['--batch-size', KEY], 'src/cli/rotate-keys.ts'],
    ['keys:rotate given a key as --batch-size=', [`--batch-size=${KEY}`], 'src/cli/rotate-keys.ts'],
    ['keys:rotate given a key as a flag', [`--${KEY}`], 'src/cli/rotate-keys.ts'],
    ['keys:rotate given a key as --key-id', ['--key-id', KEY], 'src/cli/rotate-keys.ts'],
    ['migrate:sql given a key as the migration', ['sql', KEY], 'src/cli/migrate.ts'],
    ['migrate given a key as the command', [KEY], 'src/cli/migrate.ts'],
    ['migrate:plan given a key as --max-rows', [`--max-rows=${KEY}`], 'src/cli/migrate-plan.ts'],
  ])('%s does not show it', async (_case, args, script) => {
    const { code, stdout, stderr } = await cli(args, SECRET, script)
    expect(code).not.toBe(0)
    expect(`${stdout}\n${stderr}`).not.toContain('0123456789abcdef')
    expect(stderr).toMatch(/\(\d+ characters, not shown\)/)
  })

  it('does not show a key split over lines by a newline or a control character', async () => {
    for (const arg of [
      `${KEY.slice(0, 20)}\n${KEY.slice(20)}`,
      `${KEY.slice(0, 20)}\t${KEY.slice(20)}`,
    ]) {
      const { code, stdout, stderr } = await cli(['sql', arg], SECRET)
      expect(code).not.toBe(0)
      expect(`${stdout}\n${stderr}`).not.toMatch(/0123456789abcdef|0123456789ab/)
    }
  })

  it.each([
    'MIGRATION_LOCK_TIMEOUT_MS',
    'MIGRATION_STATEMENT_TIMEOUT_MS',
    'MIGRATION_ALLOW_DATA_LOSS',
  ])('does not show a key given as %s', async (name) => {
    const { code, stdout, stderr } = await cli(['latest'], { ...SECRET, [name]: KEY })
    expect(code).not.toBe(0)
    expect(stderr).toContain(name)
    expect(`${stdout}\n${stderr}`).not.toContain('0123456789abcdef')
  })

  it('does not echo an argument of 100 KB', async () => {
    const { code, stdout, stderr } = await cli(['latest', HUGE], SECRET)
    expect(code).not.toBe(0)
    expect(stdout.length + stderr.length).toBeLessThan(1000)
    expect(stderr.trim()).toMatch(
      /^migrate latest failed: migrate:latest does not take the argument \(100000 characters, not shown\)/,
    )
  })

  // A password generator's default (16 characters, letters of both cases and digits), whole or
  // in dash-separated groups: shorter than a key's run, still a secret.
  // Passphrases, and random passwords of one kind of character, shorter than a key's run.
  it.each([
    'Qx7Vz9Kp2Lm4Nw8R',
    'hunter2-Qx7Vz9Kp-Lm4Nw8Rj',
    'correct-horse-battery-staple',
    'correct.horse.battery.staple',
    // rev-a7 4: snake case, as a migration's name is written, but no migration's number.
    'correct_horse_battery_staple',
    `correct_horse_battery_staple_${'x'.repeat(300)}`,
    'zqxkwvbpmtrlhgfd',
    'ZQXKWVBPMTRLHGFD',
    '4829105736482910',
  ])('does not show the password-like argument %s', async (arg) => {
    const { code, stdout, stderr } = await cli(['down', arg], SECRET)
    expect(code).not.toBe(0)
    expect(`${stdout}\n${stderr}`).not.toContain(arg.slice(0, 10))
    expect(stderr).toMatch(/\(\d+ characters, not shown\)/)
  })

  it('still shows a short plain argument, which is what the user needs to see', async () => {
    const { stderr } = await cli(['--batch-size', 'ten'], SECRET, 'src/cli/rotate-keys.ts')
    expect(stderr).toMatch(/--batch-size is "ten", expected a whole number from 1 to 10000/)
    const sql = await cli(['sql', '099'], SECRET)
    expect(sql.stderr).toMatch(/No migration is named "099"/)
    const name = await cli(['sql', '009_add_openrouter_integration'], SECRET)
    expect(name.stderr).toMatch(/No migration is named "009_add_openrouter_integration"/)
  })

  // PGLITE_DATA_DIR is shown cut, as a name is (shownShortOnTerminal), in the "Database:" line
  // and in a file system error that quotes it; one with a run of letters as long as a key's is
  // not shown at all (shownFolder, review revq Q3).
  describe('a PGLITE_DATA_DIR of 4000 characters', () => {
    const base = mkdtempSync(join(tmpdir(), 'x402-long-dir-'))
    afterAll(() => rmSync(base, { recursive: true, force: true }))
    const plain = join(base, 'Long-'.repeat(800))
    const keyLike = join(base, 'L'.repeat(4000))

    it.each([
      ['migrate:plan', [], 'src/cli/migrate-plan.ts'],
      ['migrate:list', ['list'], 'src/cli/migrate.ts'],
      ['migrate:check', ['check'], 'src/cli/migrate.ts'],
    ])('%s shows it cut, or not at all', async (_command, args, script) => {
      const { stderr } = await cli(args, { PGLITE_DATA_DIR: plain }, script)
      expect(stderr).toMatch(/[Long-]… \(\d{4} characters\)/)
      expect(stderr).not.toMatch(/(Long-){40}/)
      const hidden = await cli(args, { PGLITE_DATA_DIR: keyLike }, script)
      expect(hidden.stderr).toMatch(/embedded PGlite at \(not shown/)
      expect(hidden.stderr).not.toMatch(/L{20}/)
    })
  })
})

// Review N10-2: another session's statement, which a lock wait names, is shown by its first
// keyword alone (see test/lock-profile.test.ts and test/slow-step.test.ts for the messages).
describe("another session's statement", () => {
  it.each([
    [`select '${KEY}' as key`, 'SELECT … (the rest not shown)'],
    ['BEGIN;', 'BEGIN'],
    [
      '  /* app: sk-or-v1-x */ -- why\n (update x402_resources set name = 1)',
      'UPDATE … (the rest not shown)',
    ],
    [`${KEY}`, '(a statement, not shown)'],
    ['\x1b[2J select 1', '(a statement, not shown)'],
    ['', '(a statement, not shown)'],
  ])('%j is shown as %s', async (query, shown) => {
    const { shownStatement } = await import('../src/connection/shown-argument.js')
    expect(shownStatement(query)).toBe(shown)
  })
})
