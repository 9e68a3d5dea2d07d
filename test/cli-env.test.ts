import { describe, expect, it } from 'vitest'

import { IN_MEMORY } from '../src/connection/create-db.js'
import { cliEnv } from './support/cli.js'

// A test database in memory (createDb({ dataDir: IN_MEMORY }) in a test) lives in the
// test's process only: handed to the command line as PGLITE_DATA_DIR=memory://, the command
// would run on a new, empty database of its own, and a test of a refusal could pass on it.

describe('cliEnv', () => {
  it('refuses a test database that lives in memory, instead of pointing the command at an empty one', () => {
    expect(() => cliEnv({ dataDir: IN_MEMORY })).toThrow(/in memory.*in a data folder/)
  })

  it('points the command at a data folder or a server database', () => {
    expect(cliEnv({ dataDir: '/tmp/x402-db-test-a' })).toEqual({
      PGLITE_DATA_DIR: '/tmp/x402-db-test-a',
    })
    expect(cliEnv({ connectionString: 'postgres://postgres@127.0.0.1:5432/a' })).toEqual({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/a',
    })
  })
})
