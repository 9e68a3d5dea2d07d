import { describe, expect, it } from 'vitest'

import { migrationSettings } from '../src/migrator/settings.js'
import { IN_MEMORY } from '../src/connection/in-memory.js'
import { createDb, migrateOnStartup, migrateToLatest } from '../src/tooling.js'

// Settings outside what PostgreSQL accepts are refused when they are read, before any
// connection, with the range that would be accepted.

describe('migration settings', () => {
  it.each([
    ['MIGRATION_LOCK_TIMEOUT_MS', '3000000000'],
    ['MIGRATION_STATEMENT_TIMEOUT_MS', '2147483648'],
    ['MIGRATION_LOCK_WAIT_MS', '99999999999999999999'],
    ['MIGRATION_IDLE_TIMEOUT_MS', '10'],
    ['MIGRATION_TCP_USER_TIMEOUT_MS', '10'],
    ['MIGRATION_TRANSACTION_TIMEOUT_MS', '2147483648'],
    ['MIGRATION_LOCK_ATTEMPTS', '1000'],
  ])('refuses %s=%s with the accepted range', (name, value) => {
    expect(() => migrationSettings({ env: { [name]: value } })).toThrow(
      new RegExp(
        `^${name} is \\d+(\\.\\d+)?(e\\+\\d+)?, outside what it accepts: a whole number from \\d+ to \\d+`,
      ),
    )
  })

  // 0 is PostgreSQL's "no limit" for lock_timeout, statement_timeout and transaction_timeout,
  // and would read as "wait for ever" for the lock wait: every one of them bounds a wait.
  it.each([
    'MIGRATION_LOCK_TIMEOUT_MS',
    'MIGRATION_STATEMENT_TIMEOUT_MS',
    'MIGRATION_LOCK_WAIT_MS',
    'MIGRATION_TRANSACTION_TIMEOUT_MS',
  ])('refuses %s=0, which would mean no bound at all', (name) => {
    expect(() => migrationSettings({ env: { [name]: '0' } })).toThrow(
      new RegExp(
        `^${name} is 0, which would mean no bound at all: .* a whole number from 1 to 2147483647`,
      ),
    )
  })

  // 0 tries would run nothing, so it cannot be what was meant.
  it('refuses MIGRATION_LOCK_ATTEMPTS=0, and the option 0, with the accepted range', () => {
    const range = 'outside what it accepts: a whole number from 1 to 100'
    expect(() => migrationSettings({ env: { MIGRATION_LOCK_ATTEMPTS: '0' } })).toThrow(
      `MIGRATION_LOCK_ATTEMPTS is 0, ${range}`,
    )
    expect(() => migrationSettings({ lockAttempts: 0 })).toThrow(
      `The option lockAttempts is 0, ${range}`,
    )
    expect(() => migrationSettings({ lockAttempts: -1 })).toThrow(
      `The option lockAttempts is -1, ${range}`,
    )
  })

  // tcp_user_timeout drops a client that stopped taking a result at the idle timeout's 5 s.
  it('reads MIGRATION_TCP_USER_TIMEOUT_MS, 5000 by default', () => {
    expect(migrationSettings({ env: {} }).tcpUserTimeoutMs).toBe(5000)
    expect(
      migrationSettings({ env: { MIGRATION_TCP_USER_TIMEOUT_MS: '8000' } }).tcpUserTimeoutMs,
    ).toBe(8000)
    expect(() => migrationSettings({ env: { MIGRATION_TCP_USER_TIMEOUT_MS: '0' } })).toThrow(
      'MIGRATION_TCP_USER_TIMEOUT_MS is 0, which would mean no bound at all',
    )
  })

  // A first retry delay of 0 means what it says: the retries follow at once.
  it('accepts MIGRATION_RETRY_DELAY_MS=0', () => {
    expect(migrationSettings({ env: { MIGRATION_RETRY_DELAY_MS: '0' } }).retryDelayMs).toBe(0)
  })

  it('refuses an explicit 0 option too', () => {
    expect(() => migrationSettings({ lockTimeoutMs: 0 })).toThrow(
      'The option lockTimeoutMs is 0, which would mean no bound at all',
    )
  })

  it('refuses an explicit option out of range too', () => {
    expect(() => migrationSettings({ lockTimeoutMs: 3_000_000_000 })).toThrow(
      'The option lockTimeoutMs is 3000000000, outside what it accepts',
    )
  })

  // An option comes from the app's code, not from the environment: the refusal names the option,
  // and shows no more of its value than of a variable's (review F8: a key passed by mistake was
  // echoed whole, under the variable's name).
  it('names an option by its own name, and shows a string value only as a variable is shown', () => {
    const key = 'sk-or-v1-0123456789abcdef0123456789abcdef'
    expect(() => migrationSettings({ lockTimeoutMs: key as never })).toThrow(
      /^The option lockTimeoutMs is \(\d+ characters, not shown\), expected a whole number from 1 to 2147483647/,
    )
    try {
      migrationSettings({ lockTimeoutMs: key as never })
    } catch (error) {
      expect((error as Error).message).not.toContain('sk-or-v1')
      expect((error as Error).message).not.toContain('MIGRATION_LOCK_TIMEOUT_MS is')
    }
    expect(() => migrationSettings({ lockTimeoutMs: '500' as never })).toThrow(
      'The option lockTimeoutMs is "500", expected a whole number from 1 to 2147483647',
    )
  })

  // allowDataLoss: 'false' from untyped code is a truthy string: it must not allow data loss.
  it('refuses an allowDataLoss option that is not a boolean', () => {
    expect(() => migrationSettings({ allowDataLoss: 'false' as never })).toThrow(
      'The option allowDataLoss is "false", expected true or false',
    )
    expect(migrationSettings({ allowDataLoss: false }).allowDataLoss).toBe(false)
  })

  // Review F1-1: with nothing pending, start-up returned before it read its options, so a wrong
  // one passed every start until the deploy that shipped the next migration.
  it('refuses a wrong option at start-up also when nothing is pending', async () => {
    const db = createDb({ dataDir: IN_MEMORY })
    try {
      await migrateOnStartup(db, { log: () => {} })
      await expect(
        migrateOnStartup(db, { log: () => {}, lockTimeoutMs: '2000' as never }),
      ).rejects.toThrow('The option lockTimeoutMs is "2000"')
      await expect(
        migrateOnStartup(db, { log: () => {}, allowDataLoss: 'false' as never }),
      ).rejects.toThrow('The option allowDataLoss is "false"')
    } finally {
      await db.destroy()
    }
  }, 60_000)

  // Review F1-7, F1-8: a variable of options.env that is not a string, and the words for a value's type.
  it('refuses a variable of options.env that is not a string, naming it', () => {
    expect(() => migrationSettings({ env: { MIGRATION_LOCK_TIMEOUT_MS: 2000 as never } })).toThrow(
      'MIGRATION_LOCK_TIMEOUT_MS in options.env is a number, expected a string',
    )
    expect(() => migrationSettings({ env: { MIGRATION_ALLOW_DATA_LOSS: true as never } })).toThrow(
      'MIGRATION_ALLOW_DATA_LOSS in options.env is a boolean, expected a string',
    )
    expect(() => migrationSettings({ lockTimeoutMs: null as never })).toThrow(
      'The option lockTimeoutMs is null,',
    )
    expect(() => migrationSettings({ lockTimeoutMs: {} as never })).toThrow(
      'The option lockTimeoutMs is an object,',
    )
  })

  it('accepts the largest value PostgreSQL takes', () => {
    expect(
      migrationSettings({ env: { MIGRATION_LOCK_TIMEOUT_MS: '2147483647' } }).lockTimeoutMs,
    ).toBe(2_147_483_647)
  })

  it('refuses before connecting: a run against an unreachable server fails on the setting', async () => {
    const db = createDb({ connectionString: 'postgres://postgres@127.0.0.1:1/none' })
    try {
      await expect(
        Promise.resolve().then(() =>
          migrateToLatest(db, { env: { MIGRATION_LOCK_TIMEOUT_MS: '3000000000' } }),
        ),
      ).rejects.toThrow('MIGRATION_LOCK_TIMEOUT_MS is 3000000000')
    } finally {
      await db.destroy()
    }
  })
})
