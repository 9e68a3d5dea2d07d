import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { migrationNames } from '../src/migrations/index.js'
import {
  createDb,
  DEFAULT_PGLITE_DATA_DIR,
  describeDatabaseTarget,
  IN_MEMORY,
  migrateOnStartup,
  resolveDatabaseTarget,
} from '../src/index.js'
import { pendingMigrationNames } from '../src/tooling.js'
import { cli } from './support/cli.js'

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

// Review N10-4: a variable set but blank (`DATABASE_URL=`, a CI secret that is missing) was read
// as unset: DATABASE_URL's meant the embedded database, and the job "migrated" a local folder and
// passed. Every *_DATABASE_URL the module reads is refused when blank, by one rule.
describe('a connection string set but blank', () => {
  it.each(['', ' ', '\t\n'])(
    'refuses DATABASE_URL=%j, which meant the embedded database',
    (value) => {
      expect(() => resolveDatabaseTarget({ env: { DATABASE_URL: value } })).toThrow(
        /^DATABASE_URL is set but blank.*expected a PostgreSQL URL, postgres:\/\/.*unset DATABASE_URL to use the embedded database/,
      )
    },
  )

  it('refuses a blank connection string given to createDb', () => {
    expect(() => resolveDatabaseTarget({ connectionString: ' ', env: {} })).toThrow(
      /^The connection string given is set but blank/,
    )
  })

  it.each([
    ['MIGRATION_DATABASE_URL', ['MIGRATION_DATABASE_URL']],
    ['REHEARSAL_DATABASE_URL', ['REHEARSAL_DATABASE_URL']],
    ['LINT_LOCKS_DATABASE_URL', ['LINT_LOCKS_DATABASE_URL', 'REHEARSAL_DATABASE_URL']],
  ])('refuses %s set but blank, rather than going on without it', async (name, names) => {
    const { serverFromEnv } = await import('../src/cli/run-command.js')
    // A later variable that is set does not stand in for the blank one.
    const env = { REHEARSAL_DATABASE_URL: 'postgres://db/rehearsal', [name]: ' ' }
    expect(() => serverFromEnv(names, env)).toThrow(new RegExp(`^${name} is set but blank`))
  })

  it('is refused by a command, which exits 2 and creates no embedded database', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'x402-blank-url-'))
    try {
      const dataDir = join(folder, 'pglite')
      const { code, stderr } = await cli(['list'], { DATABASE_URL: '', PGLITE_DATA_DIR: dataDir })
      expect(code).toBe(2)
      expect(stderr).toContain('DATABASE_URL is set but blank')
      expect(existsSync(dataDir)).toBe(false)
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  })

  it('is refused by migrate latest with a blank MIGRATION_DATABASE_URL, which meant DATABASE_URL', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'x402-blank-url-'))
    try {
      const { code, stderr } = await cli(['latest'], {
        MIGRATION_DATABASE_URL: '',
        PGLITE_DATA_DIR: join(folder, 'pglite'),
      })
      expect(code).toBe(2)
      expect(stderr).toContain('MIGRATION_DATABASE_URL is set but blank')
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  })

  it('is refused at start-up, before it migrates anything', async () => {
    const db = createDb({ dataDir: IN_MEMORY })
    try {
      await expect(
        migrateOnStartup(db, { env: { MIGRATION_DATABASE_URL: ' ' }, log: () => {} }),
      ).rejects.toThrow(/^MIGRATION_DATABASE_URL is set but blank/)
      expect(await pendingMigrationNames(db)).toEqual(migrationNames)
    } finally {
      await db.destroy()
    }
  })
})
