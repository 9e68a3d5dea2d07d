import { describe, expect, it } from 'vitest'

import {
  DEFAULT_PGLITE_DATA_DIR,
  describeDatabaseTarget,
  resolveDatabaseTarget,
} from '../src/index.js'

// Which database createDb opens: the embedded default without a server, DATABASE_URL when set,
// and an explicit choice over both.

describe('choosing the database', () => {
  it('uses the embedded database under .data/ when nothing is set', () => {
    expect(resolveDatabaseTarget({ env: {} })).toEqual({
      kind: 'pglite',
      dataDir: DEFAULT_PGLITE_DATA_DIR,
    })
    expect(DEFAULT_PGLITE_DATA_DIR).toBe('.data/pglite')
  })

  it('moves the embedded database with PGLITE_DATA_DIR', () => {
    expect(resolveDatabaseTarget({ env: { PGLITE_DATA_DIR: '/tmp/x402' } })).toEqual({
      kind: 'pglite',
      dataDir: '/tmp/x402',
    })
  })

  it('uses PostgreSQL when DATABASE_URL is set', () => {
    expect(
      resolveDatabaseTarget({ env: { DATABASE_URL: 'postgresql://u:p@db:5432/app' } }),
    ).toEqual({
      kind: 'postgres',
      connectionString: 'postgresql://u:p@db:5432/app',
    })
  })

  it('keeps an explicit dataDir embedded even where DATABASE_URL is set', () => {
    expect(
      resolveDatabaseTarget({ dataDir: 'memory://', env: { DATABASE_URL: 'postgres://db/app' } }),
    ).toEqual({
      kind: 'pglite',
      dataDir: 'memory://',
    })
  })

  it('refuses a URL that is not PostgreSQL’s, without showing its password', () => {
    expect(() =>
      resolveDatabaseTarget({ env: { DATABASE_URL: 'mysql://root:hunter2@db/app' } }),
    ).toThrow(
      'The connection string is not a PostgreSQL URL (it starts with "mysql:"; the rest is not shown',
    )
  })

  it('refuses a password with an unencoded "/", which would make the rest of it the database name, without showing it', () => {
    const attempt = () =>
      resolveDatabaseTarget({
        env: { DATABASE_URL: 'postgres://postgres:2024/Hunter2Secret@127.0.0.1:5432/db' },
      })
    expect(attempt).toThrow('Percent-encode the password')
    expect(attempt).not.toThrow(/Hunter2|2024/)
  })

  it('refuses both a connection string and a data folder', () => {
    expect(() =>
      resolveDatabaseTarget({ connectionString: 'postgres://db/app', dataDir: 'memory://' }),
    ).toThrow('createDb takes a connectionString or a dataDir, not both')
  })

  it('describes a target for logs by host, port and database only', () => {
    expect(
      describeDatabaseTarget({
        kind: 'postgres',
        connectionString: 'postgres://app:s3cret@db:5432/x?sslmode=require&password=p2',
      }),
    ).toBe('PostgreSQL at db:5432/x')
  })
})
