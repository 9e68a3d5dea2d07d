import { execFile } from 'node:child_process'
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { COMMANDS } from '../src/cli/command-list.js'
import { migrateTo } from '../src/tooling.js'
import { cli, type CliResult, cliEnv, lines } from './support/cli.js'
import { ALL_MIGRATIONS } from './support/migration-names.js'
import { createTestDatabase, type TestDatabase, testTargets } from './support/test-database.js'

// x402-db, the package's bin, run as a user runs it: a child process in the package root.

const root = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)
const NEWEST = ALL_MIGRATIONS.at(-1)!
const BEFORE_NEWEST = ALL_MIGRATIONS.at(-2)!

/**
 * Runs `x402-db args`; with `withoutKysely`, in a process where importing kysely or PGlite
 * fails (test/support/forbid-kysely.mjs): what answers there answered without them.
 */
async function x402db(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  withoutKysely = false,
): Promise<CliResult> {
  const { DATABASE_URL: _unused, ...inherited } = process.env
  const hook = withoutKysely ? ['--import', './test/support/forbid-kysely.mjs'] : []
  return settle(
    run(process.execPath, [...hook, '--liftoff-only', 'bin/x402-db.mjs', ...args], {
      cwd: root,
      env: { ...inherited, ...env },
      timeout: 60_000,
    }),
  )
}

async function settle(running: Promise<{ stdout: string; stderr: string }>): Promise<CliResult> {
  try {
    return { code: 0, ...(await running) }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

describe('x402-db', () => {
  it.each([[[]], [['--help']], [['help']], [['-h']]])(
    '%j lists every command and the exit codes, without loading kysely',
    async (args) => {
      const help = await x402db(args, {}, true)
      expect(help.code).toBe(0)
      expect(help.stderr).toBe('')
      for (const command of COMMANDS)
        expect(help.stdout).toMatch(
          new RegExp(
            `^ {2}${command.name} +${command.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
            'm',
          ),
        )
      expect(help.stdout).toMatch(
        /^Exit codes:\n {2}0 .+\n {2}1 .*connection.*\n {2}2 .*usage.*\n {2}3 .*drift.*$/m,
      )
    },
  )

  it('runs a command’s own help: x402-db help migrate latest, x402-db migrate --help', async () => {
    const latest = await x402db(['help', 'migrate', 'latest'])
    expect(latest.code).toBe(0)
    expect(latest.stdout).toMatch(/^migrate:latest: /)
    const migrate = await x402db(['migrate', '--help'])
    expect(migrate.code).toBe(0)
    expect(migrate.stdout).toMatch(/^migrate:check: /m)
  })

  it.each([
    [['migrat', 'latest'], 'Did you mean x402-db migrate?'],
    [['migrate', 'lates'], 'Did you mean x402-db migrate latest?'],
    [['migrate:up'], 'Did you mean x402-db migrate up?'],
    [['latest'], 'Did you mean x402-db migrate latest?'],
    [['rotate-key'], 'Did you mean x402-db rotate-keys?'],
    [['codgen', '--check'], 'Did you mean x402-db codegen?'],
  ])('refuses the unknown command %j with exit 2 and a guess', async (args, guess) => {
    const refused = await x402db(args, {}, true)
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain(guess)
    expect(refused.stderr).toContain('x402-db --help lists every command.')
    expect(refused.stdout).toBe('')
  })

  it('keeps no compiled code in the user’s cache folder, whose files it does not trust', async () => {
    // Node.js checks a compile-cache entry by unkeyed CRCs and the source's length alone: one
    // planted there ran in every command (review reva F2). The folder holds untrusted templates.
    const cache = mkdtempSync(join(tmpdir(), 'x402-cli-cache-'))
    try {
      const { NODE_COMPILE_CACHE: _unset, ...inherited } = process.env
      const listed = await x402db(['migrate', 'list'], {
        ...inherited,
        XDG_CACHE_HOME: cache,
        DATABASE_URL: undefined,
        PGLITE_DATA_DIR: 'memory://',
      })
      expect(listed.stderr).not.toMatch(/compile/i)
      expect(existsSync(join(cache, 'x402-jobs-db', 'compile-cache'))).toBe(false)
    } finally {
      rmSync(cache, { recursive: true, force: true })
    }
  })

  it('guesses nothing for a command far from every one, and shows no secret it was given', async () => {
    const far = await x402db(['frobnicate'], {}, true)
    expect(far.code).toBe(2)
    expect(far.stderr).not.toContain('Did you mean')
    const secret = 'sk-or-v1-0123456789abcdef0123456789abcdef'
    const hidden = await x402db([secret], {}, true)
    expect(hidden.code).toBe(2)
    expect(hidden.stderr).not.toContain(secret)
    const unknown = await x402db(['migrate', 'frobnicate'], {}, true)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe(
      'unknown command: x402-db migrate "frobnicate". x402-db --help lists every command.\n',
    )
    const bare = await x402db(['migrate'], {}, true)
    expect(bare.code).toBe(2)
    expect(bare.stderr).toMatch(/needs a command: latest, up, down/)
  })
})

describe.each(testTargets)('npm_config_dry_run on %s', (target) => {
  let database: TestDatabase
  let env: NodeJS.ProcessEnv
  let before: string

  beforeAll(async () => {
    // One migration pending and the others applied: up, latest and down would each change it.
    database = await createTestDatabase(target, {}, BEFORE_NEWEST)
    if (target === 'postgres') await migrateTo(database.db, BEFORE_NEWEST)
    await database.db.destroy()
    env = cliEnv(database.location)
    before = (await cli(['list'], env)).stdout
    expect(lines(before).filter((line) => line.startsWith('pending'))).toEqual([
      expect.stringMatching(new RegExp(`${NEWEST}$`)),
    ])
  })
  afterAll(async () => {
    await database.destroy()
  })

  it('npm run migrate:up --dry-run refuses with exit 2, says what to type, and changes nothing', async () => {
    const { DATABASE_URL: _unused, ...inherited } = process.env
    const viaNpm = await settle(
      run('npm', ['run', '--silent', 'migrate:up', '--dry-run'], {
        cwd: root,
        env: { ...inherited, ...env },
        timeout: 60_000,
      }),
    )
    expect(viaNpm.code).toBe(2)
    expect(viaNpm.stderr).toContain('npm_config_dry_run is set')
    expect(viaNpm.stderr).toContain(
      'Nothing was done. For its dry run, type: npm run migrate:up -- --dry-run',
    )
    expect((await cli(['list'], env)).stdout).toBe(before)
  })

  it.each([
    [['migrate', 'latest'], 'For its dry run, type: x402-db migrate latest --dry-run'],
    [['migrate', 'down'], 'For its dry run, type: x402-db migrate down --dry-run'],
    [['migrate', 'baseline', BEFORE_NEWEST], 'It has no dry run'],
    [['rotate-keys'], 'It has no dry run'],
  ])('x402-db %j refuses with exit 2 and changes nothing', async (args, instead) => {
    const refused = await x402db(args, { ...env, npm_config_dry_run: 'true' })
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain(instead)
    expect((await cli(['list'], env)).stdout).toBe(before)
  })

  it('runs a dry run that was asked for, and a command that only reads', async () => {
    const dryRun = await x402db(['migrate', 'up', '--dry-run'], {
      ...env,
      npm_config_dry_run: 'true',
    })
    expect(dryRun.code).toBe(0)
    expect(dryRun.stdout).toBe(`would apply  ${NEWEST}\n`)
    const list = await x402db(['migrate', 'list'], { ...env, npm_config_dry_run: 'true' })
    expect(list.code).toBe(0)
    expect(list.stdout).toBe(before)
  })
})

describe.skipIf(!process.env.TEST_DATABASE_URL)(
  'the no-op x402-db migrate latest on PostgreSQL',
  () => {
    let database: TestDatabase
    let env: NodeJS.ProcessEnv
    const withHistory = async (work: (client: pg.Client) => Promise<unknown>) => {
      const client = new pg.Client({ connectionString: env.DATABASE_URL })
      await client.connect()
      try {
        await work(client)
      } finally {
        await client.end()
      }
    }

    beforeAll(async () => {
      database = await createTestDatabase('postgres')
      await database.db.destroy()
      env = cliEnv(database.location)
      expect((await x402db(['migrate', 'latest'], env)).code).toBe(0)
    })
    afterAll(async () => {
      await database.destroy()
    })

    /** What x402-db migrate latest says without kysely; a fall through to the full run fails there. */
    const withoutKysely = () => x402db(['migrate', 'latest'], env, true)
    const fellThrough = (result: CliResult) =>
      result.code !== 0 && result.stderr.includes('forbidden-module: kysely')

    it('answers up to date without loading kysely', async () => {
      const answer = await withoutKysely()
      expect(answer.code).toBe(0)
      expect(lines(answer.stderr)).toEqual([
        expect.stringMatching(/^Database: PostgreSQL at 127\.0\.0\.1:\d+\/x402_test_/),
        'Already up to date: no pending migration.',
      ])
    })

    it('leaves a pending migration to the runner, which applies it', async () => {
      expect((await x402db(['migrate', 'down'], env)).code).toBe(0)
      expect(fellThrough(await withoutKysely())).toBe(true)
      const applied = await x402db(['migrate', 'latest'], env)
      expect(applied.code).toBe(0)
      expect(applied.stderr).toContain(`applied  ${NEWEST}`)
      expect((await withoutKysely()).code).toBe(0)
    })

    it('leaves a migration whose recorded checksum differs, or is missing, to the runner', async () => {
      const recorded = await readChecksum()
      await withHistory((client) =>
        client.query(
          "UPDATE x402_migrations.migration_checksum SET sha256 = repeat('0', 64) WHERE name = $1",
          [NEWEST],
        ),
      )
      expect(fellThrough(await withoutKysely())).toBe(true)
      const full = await x402db(['migrate', 'latest'], env)
      expect(full.code).toBe(0)
      expect(full.stderr).toContain('Already up to date')
      await withHistory((client) =>
        client.query('DELETE FROM x402_migrations.migration_checksum WHERE name = $1', [NEWEST]),
      )
      expect(fellThrough(await withoutKysely())).toBe(true)
      await withHistory((client) =>
        client.query(
          "INSERT INTO x402_migrations.migration_checksum (name, sha256, origin) VALUES ($1, $2, 'applied')",
          [NEWEST, recorded],
        ),
      )
      expect((await withoutKysely()).code).toBe(0)
    })

    it('leaves a recorded migration that this module does not have to the runner, which refuses it', async () => {
      await withHistory((client) =>
        client.query(
          "INSERT INTO x402_migrations.kysely_migration (name, timestamp) VALUES ('999_from_a_newer_release', now()::text)",
        ),
      )
      expect(fellThrough(await withoutKysely())).toBe(true)
      // The runner refuses a history it cannot account for, as Kysely's Migrator does.
      const full = await x402db(['migrate', 'latest'], env)
      expect(full.code).toBe(1)
      expect(full.stderr).toContain(
        'The history records 999_from_a_newer_release, which no migration file of this module has.',
      )
      await withHistory((client) =>
        client.query(
          "DELETE FROM x402_migrations.kysely_migration WHERE name = '999_from_a_newer_release'",
        ),
      )
      expect((await withoutKysely()).code).toBe(0)
    })

    it('leaves a bad MIGRATION_* setting to the runner, which refuses it', async () => {
      const refused = await x402db(['migrate', 'latest'], {
        ...env,
        MIGRATION_LOCK_TIMEOUT_MS: 'soon',
      })
      expect(refused.code).not.toBe(0)
      expect(refused.stderr).toContain('MIGRATION_LOCK_TIMEOUT_MS')
    })

    // Review N10-4: a blank MIGRATION_DATABASE_URL was read as unset, and the no-op answered
    // for DATABASE_URL's database.
    it('leaves a blank MIGRATION_DATABASE_URL to the runner, which refuses it', async () => {
      const refused = await x402db(['migrate', 'latest'], { ...env, MIGRATION_DATABASE_URL: ' ' })
      expect(refused.code).toBe(2)
      expect(refused.stderr).toContain('MIGRATION_DATABASE_URL is set but blank')
      expect(refused.stderr).not.toContain('Already up to date')
    })

    async function readChecksum(): Promise<string> {
      let sha256 = ''
      await withHistory(async (client) => {
        sha256 = (
          await client.query(
            'SELECT sha256 FROM x402_migrations.migration_checksum WHERE name = $1',
            [NEWEST],
          )
        ).rows[0].sha256
      })
      return sha256
    }
  },
)

// npm's --dry-run reaches the bin only as npm_config_dry_run: a command refused under it must be
// refused before the bin builds dist/ (a write), also where dist/ is older than src/.
describe('npm_config_dry_run before the build', () => {
  let copy: string
  beforeAll(() => {
    copy = mkdtempSync(join(tmpdir(), 'x402-bin-dry-'))
    for (const entry of [
      'bin',
      'src',
      'dist',
      'package.json',
      'tsconfig.json',
      'tsconfig.build.json',
    ])
      cpSync(join(root, entry), join(copy, entry), { recursive: true })
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
    // A source changed since the build: dist/ is out of date.
    appendFileSync(join(copy, 'src', 'index.ts'), '\n')
  })
  afterAll(() => rmSync(copy, { recursive: true, force: true }))

  it('refuses with exit 2 and builds nothing', async () => {
    const stamp = readFileSync(join(copy, 'dist', '.build-stamp'), 'utf8')
    const { DATABASE_URL: _unused, ...inherited } = process.env
    const refused = await settle(
      run(process.execPath, ['--liftoff-only', 'bin/x402-db.mjs', 'migrate', 'up'], {
        cwd: copy,
        env: { ...inherited, npm_config_dry_run: 'true', PGLITE_DATA_DIR: join(copy, 'data') },
        timeout: 60_000,
      }),
    )
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain('npm_config_dry_run is set')
    expect(refused.stderr).not.toContain('Building dist/')
    expect(readFileSync(join(copy, 'dist', '.build-stamp'), 'utf8')).toBe(stamp)
    expect(existsSync(join(copy, 'data'))).toBe(false)
  })
})
