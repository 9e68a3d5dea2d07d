import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { migrationNames } from '../src/migrations/index.js'
import { EXIT_NOTE } from '../src/cli/run-command.js'
import { createDb, migrateToLatest } from '../src/tooling.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { ALL_MIGRATIONS } from './support/migration-names.js'
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
    // Each with the time its up took.
    expect(lines(latest.stderr).slice(1)).toEqual(
      migrationNames.map((name) =>
        expect.stringMatching(new RegExp(`^applied  ${name} in \\d+(\\.\\d)? m?s$`)),
      ),
    )
    // The server's host and port are TEST_DATABASE_URL's (CI also runs a PostgreSQL 17 on its own port).
    const server =
      'connectionString' in database.location
        ? new URL(database.location.connectionString)
        : undefined
    const start = `Database: ${server ? `PostgreSQL at ${server.hostname}:${server.port || 5432}/x402_test_` : 'embedded PGlite at '}`
    expect(lines(latest.stderr)[0]!.slice(0, start.length)).toBe(start)

    expect((await cli(['latest'], env)).stderr).toContain(
      'Already up to date: no pending migration.',
    )

    const down = await cli(['down'], env)
    expect(down.code).toBe(0)
    expect(down.stderr).toContain(`reverted ${newest}`)

    const list = await cli(['list'], env)
    expect(list.code).toBe(0)
    expect(lines(list.stdout).map((line) => line.split(/\s+/))).toEqual([
      ...migrationNames
        .slice(0, -1)
        .map((name) => ['applied', expect.stringMatching(/^\d{4}-\d\d-\d\dT/), name]),
      ['pending', '-', newest],
    ])

    const dryUp = await cli(['up', '--dry-run', '--sql'], env)
    expect(dryUp.code).toBe(0)
    expect(dryUp.stdout.startsWith(`would apply  ${newest}\n-- Migration ${newest} (up)`)).toBe(
      true,
    )
    const dryDown = await cli(['down', '--dry-run'], env)
    expect(dryDown.stdout).toBe(`would revert ${migrationNames.at(-2)}\n`)
    // Neither dry run changed anything: the newest is still the one pending.
    expect(
      lines((await cli(['list'], env)).stdout).filter((line) => line.startsWith('pending')),
    ).toHaveLength(1)

    const up = await cli(['up'], env)
    expect(up.code).toBe(0)
    expect(up.stderr).toContain(`applied  ${newest}`)
  })

  it('redo reverts the newest migration and applies it again; list --json is one JSON document', async () => {
    const newest = migrationNames.at(-1)!
    const redo = await cli(['redo'], env)
    expect(redo.code).toBe(0)
    expect(lines(redo.stderr).slice(1)).toEqual([
      expect.stringMatching(new RegExp(`^reverted ${newest} in \\d`)),
      expect.stringMatching(new RegExp(`^applied  ${newest} in \\d`)),
    ])
    expect(redo.stdout).toBe('')

    const list = await cli(['list', '--json'], env)
    expect(list.code).toBe(0)
    const parsed = JSON.parse(list.stdout) as {
      migrations: Array<{ name: string; status: string; appliedAt: string | null }>
    }
    expect(parsed.migrations.map(({ name, status }) => ({ name, status }))).toEqual(
      migrationNames.map((name) => ({ name, status: 'applied' })),
    )
    expect(parsed.migrations.every(({ appliedAt }) => !Number.isNaN(Date.parse(appliedAt!)))).toBe(
      true,
    )
    // The redo applied the newest again, after the others.
    expect(Date.parse(parsed.migrations.at(-1)!.appliedAt!)).toBeGreaterThan(
      Date.parse(parsed.migrations.at(-2)!.appliedAt!),
    )
  })

  it('prints a migration’s SQL on stdout, up and --down', async () => {
    const up = await cli(['sql', '005'], env)
    expect(up.code).toBe(0)
    expect(up.stdout).toMatch(/^-- Migration 005_add_openrouter_integration \(up\)/)
    expect(up.stdout).toMatch(
      /-- locks: .*x402_resources ACCESS EXCLUSIVE .*\nALTER TABLE x402_resources/,
    )
    // Only the header is checked here: the lock profile (a rehearsal of its own) is left out.
    const down = await cli(['sql', '005_add_openrouter_integration', '--down', '--no-locks'], env)
    expect(down.stdout).toMatch(/^-- Migration 005_add_openrouter_integration \(down\)/)

    // The export runs on a scratch database: the target keeps every migration applied.
    const list = await cli(['list'], env)
    expect(lines(list.stdout).every((line) => line.startsWith('applied'))).toBe(true)
  })
})

describe('help and dry runs', () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'x402-cli-help-')), 'pglite')
  afterAll(() => rmSync(join(dataDir, '..'), { recursive: true, force: true }))

  it.each(['latest', 'up', 'down', 'redo', 'list', 'new', 'sql', 'baseline', 'check', 'pull'])(
    'migrate %s --help prints its usage and exits 0',
    async (command) => {
      const result = await cli([command, '--help'], { PGLITE_DATA_DIR: dataDir })
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(
        new RegExp(`^migrate:${command}: .+\n\nusage: npm run migrate:${command}`),
      )
      expect(result.stdout).toContain('--help')
      expect(result.stdout).toContain(EXIT_NOTE)
      expect(result.stderr).toBe('')
    },
  )

  it.each([
    ['src/cli/codegen.ts', 'db:codegen', '--check'],
    ['src/cli/lint-sql.ts', 'lint:sql', '--reporter <format>'],
    ['src/cli/rotate-keys.ts', 'keys:rotate', '--batch-size <n>'],
    ['src/cli/access.ts', 'db:access', '--check'],
    ['src/cli/migrate-plan.ts', 'migrate:plan', '--copy-schema'],
    ['src/cli/lint-locks.ts', 'lint:locks', '--report'],
  ])('%s --help prints its usage and exits 0', async (script, name, option) => {
    const result = await cli(['--help'], {}, script)
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`^${name}: `))
    expect(result.stdout).toContain(option)
  })

  it('--dry-run on a new embedded database lists every migration and creates nothing', async () => {
    const result = await cli(['latest', '--dry-run'], { PGLITE_DATA_DIR: dataDir })
    expect(result.code).toBe(0)
    expect(lines(result.stdout)).toEqual(ALL_MIGRATIONS.map((name) => `would apply  ${name}`))
    expect(existsSync(dataDir)).toBe(false)
  })
})

describe('the migrate command line on bad input', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'x402-cli-bad-'))
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it.each([
    // An unknown subcommand is refused by the bin itself (test/cli-bin.test.ts).
    [
      ['sql'],
      /^migrate sql failed: migrate:sql needs <name>\. usage: npm run migrate:sql -- <name> \[--down\] \[--baseline\]/,
      {},
      2,
    ],
    // Once, this applied every migration: an unknown flag is refused before anything runs.
    [
      ['latest', '--dryrun'],
      /^migrate latest failed: migrate:latest does not know the flag --dryrun: did you mean --dry-run\? It takes --dry-run, --sql\. /,
      {},
      2,
    ],
    [
      ['check', '--jsn'],
      /^migrate check failed: migrate:check does not know the flag --jsn: did you mean --json\? /,
      {},
      2,
    ],
    [
      ['down', '--allow-dataloss'],
      /^migrate down failed: migrate:down does not know the flag --allow-dataloss: did you mean --allow-data-loss\? /,
      {},
      2,
    ],
    // Nothing near enough: no guess, the list.
    [
      ['list', '--frobnicate'],
      /^migrate list failed: migrate:list does not know the flag --frobnicate; it takes --json\. /,
      {},
      2,
    ],
    [
      ['new', 'Add-Widget'],
      /^migrate new failed: migrate:new needs a name of lowercase words joined by underscores, .*; got "Add-Widget"\. /,
      {},
      2,
    ],
    [
      ['list', 'everything'],
      /^migrate list failed: migrate:list does not take the argument "everything"\. /,
      {},
      2,
    ],
    [['check', '--strict=yes'], /^migrate check failed: --strict takes no value\. /, {}, 2],
    [
      ['latest', '--sql'],
      /^migrate latest failed: migrate:latest: --sql goes with --dry-run\. /,
      {},
      2,
    ],
    // Checked before the (unreachable) server is tried.
    [
      ['latest'],
      /^migrate latest failed: MIGRATION_LOCK_WAIT_MS is "soon", expected a whole number/,
      { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', MIGRATION_LOCK_WAIT_MS: 'soon' },
      2,
    ],
    [
      ['sql', '999'],
      /^migrate sql failed: No migration is named "999"\. Known migrations: .* usage: npm run migrate:sql /,
      {},
      2,
    ],
    [
      ['sql', '005_add_openrouter_integraton'],
      /^migrate sql failed: No migration is named "005_add_openrouter_integraton": did you mean 005_add_openrouter_integration\? /,
      {},
      2,
    ],
    // rev-c7 F6: the argument is hidden, the module's own names in the message are not.
    [
      ['sql', 'add_openrouter_integraton'],
      /^migrate sql failed: No migration is named \(25 characters, not shown\): did you mean 005_add_openrouter_integration\? Known migrations: .*, 005_add_openrouter_integration, /,
      {},
      2,
    ],
    [
      ['sql', 'openrouter_integration'],
      /^migrate sql failed: No migration is named \(22 characters, not shown\)\. Known migrations: .*, 005_add_openrouter_integration, /,
      {},
      2,
    ],
    [['sql', '00'], /^migrate sql failed: "00" matches several migrations \(000_/, {}, 2],
    [
      ['latest'],
      /^migrate latest failed: The connection string is not a PostgreSQL URL \(it starts with "mysql:"; the rest is not shown/,
      { DATABASE_URL: 'mysql://root:hunter2@db/app' },
      2,
    ],
    [
      ['latest'],
      /^migrate latest failed: The connection string has an "@" after the host part/,
      { DATABASE_URL: 'postgres://postgres:2024/Hunter2Secret@127.0.0.1:5432/db' },
      2,
    ],
    [
      ['latest'],
      /^migrate latest failed: Cannot reach the database: connect ECONNREFUSED 127\.0\.0\.1:1\. Check DATABASE_URL/,
      { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' },
    ],
    ...(process.env.TEST_DATABASE_URL
      ? [
          [
            ['list'],
            /^migrate list failed: Cannot reach the database: database "x402_no_such_db" does not exist \(SQLSTATE 3D000\)\. Check DATABASE_URL/,
            { DATABASE_URL: serverDatabaseUrl('x402_no_such_db') },
          ],
        ]
      : []),
  ] as Array<[string[], RegExp, NodeJS.ProcessEnv, number?]>)(
    '%j exits 1, or 2 for a usage error, with a one-line reason',
    async (args, reason, extraEnv, code = 1) => {
      const result = await cli(args, { PGLITE_DATA_DIR: dataDir, ...extraEnv })
      expect(result.code).toBe(code)
      const reasonLines = lines(result.stderr).filter((line) => !line.startsWith('Database: '))
      expect(reasonLines).toHaveLength(1)
      if (!extraEnv.DATABASE_URL || extraEnv.MIGRATION_LOCK_WAIT_MS)
        expect(result.stderr).not.toContain('Database: ')
      expect(reasonLines[0]).toMatch(reason)
      expect(result.stderr).not.toMatch(/hunter2/i)
    },
  )
})

// Kysely's Migrator refuses a history row that no migration file knows only when something is
// pending; with nothing pending, such a row (a deleted file, another app's database) must not
// pass for up to date.
describe.each(testTargets)('a history row that no migration knows, on %s', (target) => {
  let database: TestDatabase
  let env: NodeJS.ProcessEnv

  beforeAll(async () => {
    database = await createTestDatabase(target, {}, 'latest')
    await migrateToLatest(database.db)
    await sql`INSERT INTO x402_migrations.kysely_migration (name, timestamp) VALUES ('999_unknown', ${new Date().toISOString()})`.execute(
      database.db,
    )
    await database.db.destroy()
    env = cliEnv(database.location)
  })
  afterAll(async () => {
    await database.destroy()
  })

  it('migrate:latest refuses, naming the row and what to do', async () => {
    const latest = await cli(['latest'], env)
    expect(latest.code).toBe(1)
    expect(latest.stderr).toMatch(
      /^migrate latest failed: The history records 999_unknown, which no migration file of this module has.*Nothing was changed\. .*restore the migration file.*right database/m,
    )
  })

  it('migrate:list shows it as unknown', async () => {
    const list = await cli(['list'], env)
    expect(list.code).toBe(0)
    expect(lines(list.stdout).at(-1)).toMatch(/^unknown  \d{4}-\d\d-\d\dT\S+  999_unknown$/)
    const json = JSON.parse((await cli(['list', '--json'], env)).stdout) as {
      migrations: Array<{ name: string; status: string }>
    }
    expect(json.migrations.at(-1)).toMatchObject({ name: '999_unknown', status: 'unknown' })
  })
})

// A history row is written by whoever can write the table: its name and its timestamp are data,
// not the module's.
describe.each(testTargets)(
  'a history row with a hostile name and a garbage timestamp, on %s',
  (target) => {
    let database: TestDatabase
    let env: NodeJS.ProcessEnv

    beforeAll(async () => {
      database = await createTestDatabase(target, {}, 'latest')
      await migrateToLatest(database.db)
      await sql`INSERT INTO x402_migrations.kysely_migration (name, timestamp) VALUES (${'999_evil\x1b[2J\u202e'}, 'not a time')`.execute(
        database.db,
      )
      await sql`UPDATE x402_migrations.kysely_migration SET timestamp = 'yesterday-ish' WHERE name = ${migrationNames[0]!}`.execute(
        database.db,
      )
      await database.db.destroy()
      env = cliEnv(database.location)
    })
    afterAll(async () => {
      await database.destroy()
    })

    it('migrate:list escapes the name and shows the timestamp as invalid', async () => {
      const list = await cli(['list'], env)
      expect(list.stderr).not.toMatch(/Invalid time value/)
      expect(list.code).toBe(0)
      expect(list.stdout + list.stderr).not.toMatch(/[\x1b\u202e]/)
      expect(lines(list.stdout)[0]).toBe(`applied  (invalid time)            ${migrationNames[0]}`)
      expect(lines(list.stdout).at(-1)).toBe(
        'unknown  (invalid time)            999_evil\\x1b[2J\\u202e',
      )
      expect(list.stderr).toContain('unknown: 999_evil\\x1b[2J\\u202e, recorded in the history')
      // JSON keeps the name exact (JSON escapes it) and has no time for the garbage one.
      const json = JSON.parse((await cli(['list', '--json'], env)).stdout) as {
        migrations: Array<{ name: string; status: string; appliedAt: string | null }>
      }
      expect(json.migrations.at(-1)).toEqual({
        name: '999_evil\x1b[2J\u202e',
        status: 'unknown',
        appliedAt: null,
      })
      expect(json.migrations[0]).toEqual({
        name: migrationNames[0],
        status: 'applied',
        appliedAt: null,
      })
    })

    // Hostile review (of f8f189d, F4): the dry run printed the row's name raw, and said it would
    // revert a migration that the run itself refuses.
    it('migrate down --dry-run refuses the row as the run does, and escapes its name', async () => {
      const dryRun = await cli(['down', '--dry-run'], env)
      expect(dryRun.stdout + dryRun.stderr).not.toMatch(/[\x1b\u202e]/)
      expect(dryRun.stdout).not.toMatch(/would revert/)
      expect(dryRun.code).toBe(1)
      expect(dryRun.stderr).toContain(
        'The history records 999_evil\\x1b[2J\\u202e, which no migration file of this module has',
      )
    })
  },
)

// The history's primary key is what keeps each migration recorded once: without it, a second
// row of a name would be read as whichever comes first, by Kysely's Migrator as by the module.
describe.each(testTargets)('a history without its primary key, on %s', (target) => {
  let database: TestDatabase
  let env: NodeJS.ProcessEnv
  const newest = migrationNames.at(-1)!

  const historyRows = async () => {
    const db = createDb(database.location)
    try {
      const { rows } = await sql<{
        name: string
      }>`SELECT name FROM x402_migrations.kysely_migration ORDER BY name`.execute(db)
      return rows.map(({ name }) => name)
    } finally {
      await db.destroy()
    }
  }

  beforeAll(async () => {
    database = await createTestDatabase(target, {}, 'latest')
    await migrateToLatest(database.db)
    await sql`ALTER TABLE x402_migrations.kysely_migration DROP CONSTRAINT kysely_migration_pkey`.execute(
      database.db,
    )
    await database.db.destroy()
    env = cliEnv(database.location)
  })
  afterAll(async () => {
    await database.destroy()
  })

  it('migrate:down refuses, naming the missing primary key and how to restore it', async () => {
    const down = await cli(['down'], env)
    expect(down.code).toBe(1)
    expect(down.stderr).toMatch(
      /x402_migrations\.kysely_migration has no primary key on name.*ADD PRIMARY KEY \(name\)/,
    )
    expect(await historyRows()).toEqual(migrationNames)
  })

  it('migrate:down refuses a name recorded twice, and migrate:check reports it as drift', async () => {
    const db = createDb(database.location)
    try {
      await sql`INSERT INTO x402_migrations.kysely_migration SELECT * FROM x402_migrations.kysely_migration WHERE name = ${newest}`.execute(
        db,
      )
    } finally {
      await db.destroy()
    }
    const before = await historyRows()

    const down = await cli(['down'], env)
    expect(down.code).toBe(1)
    expect(down.stderr).not.toMatch(/TypeError|Cannot read properties/)
    expect(down.stderr).toMatch(
      new RegExp(`x402_migrations\\.kysely_migration records ${newest} twice`),
    )
    expect(down.stderr).not.toMatch(/\b(DELETE|DROP|TRUNCATE)\b/)
    expect(await historyRows()).toEqual(before)

    const check = await cli(['check'], env)
    expect(check.code).toBe(3)
    expect(check.stdout + check.stderr).toMatch(
      new RegExp(`x402_migrations\\.kysely_migration records ${newest} twice`),
    )
  })
})

describe('the "Database:" line', () => {
  it.each([
    [
      'an escape sequence',
      `%1b[2J%1b]0;owned%07evil`,
      /^Database: PostgreSQL at \\x1b\[2J\\x1b\]0;owned\\x07evil:1\/db$/,
    ],
    [
      'a 100 KB host',
      'h'.repeat(100_000),
      /^Database: PostgreSQL at h{80}… \(100000 characters\):1\/db$/,
    ],
  ])('shows a host with %s escaped and short', async (_what, host, banner) => {
    const result = await cli(['list'], {
      DATABASE_URL: `postgres://postgres@/db?host=${host}&port=1`,
    })
    expect(result.code).toBe(1)
    const first = lines(result.stderr)[0]!
    expect(first).toMatch(banner)
    expect(result.stderr).not.toMatch(/[\x1b\x07]/)
    expect(result.stderr.length).toBeLessThan(5000)
  })
})
