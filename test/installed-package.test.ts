import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { ACCESS_MATRIX_FILE } from '../src/types/command-defaults.js'
import { ADOPTION_DECISIONS_FILE } from '../src/adoption/adoption-decisions.js'

// The package as npm installs it holds only what package.json's `files` lists (docs/installing.md:
// "What must ship beside dist/"). bin/x402-db.mjs, which runs the commands, compares the sources
// with the stamp recorded when dist/ was built: everything that stamp reads must ship too, or the
// installed commands cannot start. An app runs the bin from its node_modules/.bin (npx x402-db).

const root = fileURLToPath(new URL('..', import.meta.url))

describe('the installed package', () => {
  let app: string
  let copy: string
  let shipped: string[]
  beforeAll(() => {
    // The files `npm pack` would put in the tarball, and nothing else. dist/ is current: the
    // tests' global setup built it.
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: root,
        encoding: 'utf8',
      }),
    ) as [{ files: { path: string }[] }]
    shipped = packed.files.map((file) => file.path)
    app = mkdtempSync(join(tmpdir(), 'x402-installed-'))
    copy = join(app, 'node_modules', '@x402-jobs', 'db')
    // npm writes every file of a tarball with the same time, not the one it had here.
    const packedTime = new Date('1985-10-26T08:15:00Z')
    for (const { path } of packed.files) {
      mkdirSync(dirname(join(copy, path)), { recursive: true })
      cpSync(join(root, path), join(copy, path))
      utimesSync(join(copy, path), packedTime, packedTime)
    }
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
    // What npm makes of package.json's "bin".
    mkdirSync(join(app, 'node_modules', '.bin'))
    symlinkSync('../@x402-jobs/db/bin/x402-db.mjs', join(app, 'node_modules', '.bin', 'x402-db'))
  })
  afterAll(() => rmSync(app, { recursive: true, force: true }))

  it('runs its commands with the dist/ it ships, without building it again', () => {
    const run = spawnSync(process.execPath, ['bin/x402-db.mjs', 'migrate', '--help'], {
      cwd: copy,
      encoding: 'utf8',
    })
    expect(run.stderr).not.toMatch(/build failed|Building dist|older than src/)
    expect(run.status).toBe(0)
    expect(run.stdout).toMatch(/^usage: npm run migrate:latest/m)
  })

  it("runs as x402-db from the app's node_modules/.bin, as npx runs it", () => {
    const run = spawnSync(join(app, 'node_modules', '.bin', 'x402-db'), ['--help'], {
      cwd: app,
      encoding: 'utf8',
    })
    expect(run.stderr).not.toMatch(/build failed|Building dist|older than src/)
    expect(run.status).toBe(0)
    expect(run.stdout).toMatch(/^ {2}migrate latest +applies every pending migration/m)
  })

  it('ships the repository files its commands read: db:access --check, lint:locks, lint:sql, the adoption', () => {
    expect(shipped).toEqual(
      expect.arrayContaining([
        ACCESS_MATRIX_FILE,
        'lock-policy.json',
        '.squawk.toml',
        ADOPTION_DECISIONS_FILE,
      ]),
    )
  })
})

// A new app installs the packed tarball with its peer dependencies, as from the npm registry, and
// uses it: the bin on a server and on the embedded database, start-up migration without PGlite,
// and its own type-check with skipLibCheck off. The peers are the versions the repository pins
// (its devDependencies), or with INSTALLED_PACKAGE_PEERS=lowest the lowest of each peer range:
// .ci/run runs this file both ways. Installs prefer npm's cache (--prefer-offline).

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  peerDependencies: Record<string, string>
  devDependencies: Record<string, string>
}
const PGLITE = '@electric-sql/pglite'
const peers = process.env.INSTALLED_PACKAGE_PEERS === 'lowest' ? 'lowest' : 'pinned'
/** The version of each peer (and of @types/node) that the app installs. */
const peerVersion = (name: string): string =>
  peers === 'lowest' && manifest.peerDependencies[name]
    ? manifest.peerDependencies[name].replace(/^[\^~]/, '')
    : manifest.devDependencies[name]!
const serverUrl = process.env.TEST_DATABASE_URL
// Installs, tsc and two PGlite migrations from nothing: minutes on a busy two-core machine.
const INSTALL_TIMEOUT = 600_000

describe(
  `the packed tarball in a new app, with the ${peers} peers`,
  { timeout: INSTALL_TIMEOUT },
  () => {
    let work: string
    let app: string
    let packageDir: string
    const databases: string[] = []

    /** The app's environment: no database, cache or npm setting of the test run leaks into it. */
    const appEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
      const env = Object.fromEntries(
        Object.entries(process.env).filter(
          ([name]) =>
            !/^(npm_|DATABASE_URL$|MIGRATION_DATABASE_URL$|PGLITE_DATA_DIR$|X402_DB_CACHE_DIR$|XDG_CACHE_HOME$|XDG_CONFIG_HOME$)/.test(
              name,
            ),
        ),
      )
      return {
        ...env,
        XDG_CACHE_HOME: join(work, 'cache'),
        XDG_CONFIG_HOME: join(work, 'config'),
        ...extra,
      }
    }
    const inApp = (command: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
      spawnSync(command, args, {
        cwd: app,
        env: appEnv(env),
        encoding: 'utf8',
        timeout: INSTALL_TIMEOUT,
      })
    const npmInstall = (specs: string[]) => {
      const run = inApp('npm', [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...specs,
      ])
      if (run.status !== 0) throw new Error(`npm install ${specs.join(' ')} failed: ${run.stderr}`)
    }
    const x402db = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      inApp('npx', ['--no-install', 'x402-db', ...args], env)
    const newServerDatabase = async (): Promise<string> => {
      const name = `x402_app_${randomBytes(6).toString('hex')}`
      await withServer((client) => client.query(`CREATE DATABASE ${name}`))
      databases.push(name)
      const url = new URL(serverUrl!)
      url.pathname = `/${name}`
      return url.toString()
    }

    beforeAll(() => {
      work = mkdtempSync(join(tmpdir(), 'x402-app-'))
      const [packed] = JSON.parse(
        execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
          cwd: root,
          encoding: 'utf8',
        }),
      ) as [{ filename: string }]
      app = join(work, 'app')
      mkdirSync(app)
      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify({ name: 'app', private: true, type: 'module' }),
      )
      // Without PGlite: an app that only uses a server needs none of it.
      npmInstall([
        join(work, packed.filename),
        `kysely@${peerVersion('kysely')}`,
        `pg@${peerVersion('pg')}`,
        `@types/node@${peerVersion('@types/node')}`,
      ])
      packageDir = join(app, 'node_modules', '@x402-jobs', 'db')
    }, INSTALL_TIMEOUT)
    afterAll(async () => {
      if (serverUrl)
        for (const name of databases)
          await withServer((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
      rmSync(work, { recursive: true, force: true })
    })

    it('installs the peers it was given, once each, and no PGlite', () => {
      const installed = (name: string) =>
        (
          JSON.parse(readFileSync(join(app, 'node_modules', name, 'package.json'), 'utf8')) as {
            version: string
          }
        ).version
      expect([installed('kysely'), installed('pg')]).toEqual([
        peerVersion('kysely'),
        peerVersion('pg'),
      ])
      expect(existsSync(join(packageDir, 'node_modules', 'kysely'))).toBe(false)
      expect(existsSync(join(app, 'node_modules', PGLITE))).toBe(false)
    })

    it.skipIf(!serverUrl)(
      `migrates a server at start-up and with \`npx x402-db migrate latest\`, without PGlite${serverUrl ? '' : ' (skipped: TEST_DATABASE_URL is not set)'}`,
      async () => {
        writeFileSync(
          join(app, 'start.mjs'),
          [
            "import { createDb, migrateOnStartup } from '@x402-jobs/db'",
            'const db = createDb()',
            'const { applied } = await migrateOnStartup(db, { log: () => {} })',
            'console.log(JSON.stringify({ applied: applied.length }))',
            'await db.destroy()',
          ].join('\n'),
        )
        const startup = inApp(process.execPath, ['start.mjs'], {
          DATABASE_URL: await newServerDatabase(),
        })
        expect(startup.stderr).toBe('')
        expect(startup.status).toBe(0)
        expect(JSON.parse(startup.stdout)).toEqual({ applied: expect.any(Number) })
        expect((JSON.parse(startup.stdout) as { applied: number }).applied).toBeGreaterThan(0)

        const latest = x402db(['migrate', 'latest'], { DATABASE_URL: await newServerDatabase() })
        expect(latest.stderr).toMatch(/^Database: PostgreSQL at /)
        expect(latest.stderr).toMatch(/^applied {2}\d{3}_/m)
        expect(latest.status).toBe(0)
      },
    )

    it('says in one line what to install where the embedded database needs PGlite', () => {
      const latest = x402db(['migrate', 'latest'], { PGLITE_DATA_DIR: join(work, 'no-pglite') })
      expect(latest.status).toBe(1)
      const failure = latest.stderr.trim().split('\n').at(-1)!
      expect(failure).toMatch(
        /^migrate latest failed: .*PGlite \(@electric-sql\/pglite\) is not installed: the embedded database/,
      )
      expect(failure).toContain(`npm install ${PGLITE}@${manifest.peerDependencies[PGLITE]}`)
    })

    it("offers db:codegen and lint:sql only with the repository's tools, saying which to install", () => {
      for (const [command, label, tool] of [
        ['codegen', 'db:codegen', 'kysely-codegen'],
        ['lint-sql', 'lint:sql', 'squawk-cli'],
      ] as const) {
        const run = x402db([command])
        expect(run.status).toBe(1)
        expect(run.stderr.trim()).toBe(
          `${label} failed: ${label} needs ${tool}, a development tool of this module that is not installed here: ` +
            `run \`npm install --save-dev ${tool}@${manifest.devDependencies[tool]}\`, or run ${label} in the module's repository.`,
        )
      }
    })

    it('type-checks an app that passes createDb() to a function typed Kysely<DB>, with skipLibCheck off', () => {
      writeFileSync(
        join(app, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2023',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            skipLibCheck: false,
            noEmit: true,
            types: ['node'],
          },
          files: ['app.ts'],
        }),
      )
      writeFileSync(
        join(app, 'app.ts'),
        [
          "import type { Kysely } from 'kysely'",
          "import { createDb, type DB, migrateOnStartup } from '@x402-jobs/db'",
          'async function modelCount(db: Kysely<DB>): Promise<number> {',
          "  return (await db.selectFrom('x402_openrouter_models').select('id').execute()).length",
          '}',
          'const db = createDb()',
          'await migrateOnStartup(db)',
          'console.log(await modelCount(db))',
          'await db.destroy()',
        ].join('\n'),
      )
      const tsc = inApp(process.execPath, [
        join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        '.',
        '--listFiles',
      ])
      expect(tsc.stdout.split('\n').filter((line) => line.includes('error TS'))).toEqual([])
      expect(tsc.status).toBe(0)
      // The files it read: the module's declarations, and none of PGlite's (nor pg's).
      expect(tsc.stdout).toContain('/node_modules/@x402-jobs/db/dist/index.d.ts')
      expect(tsc.stdout).not.toContain(PGLITE)
      expect(tsc.stdout).not.toContain('/node_modules/pg/')
    })

    it("migrates the embedded database with `npx x402-db migrate latest` once PGlite is installed, caching only in the user's cache folder, and without a cache where it cannot write one", () => {
      npmInstall([`${PGLITE}@${peerVersion(PGLITE)}`])
      const before = filesUnder(packageDir)
      const latest = x402db(['migrate', 'latest'], { PGLITE_DATA_DIR: join(work, 'embedded') })
      expect(latest.stderr).toMatch(/^Database: embedded PGlite at /)
      expect(latest.stderr).toMatch(/^applied {2}\d{3}_/m)
      expect(latest.status).toBe(0)
      expect(
        readdirSync(join(work, 'cache', 'x402-jobs-db', 'templates')).some((file) =>
          file.startsWith('empty-cluster-pglite-'),
        ),
      ).toBe(true)
      expect(filesUnder(packageDir)).toEqual(before)

      // A cache and a config folder under a file cannot be made, whoever runs this (root too).
      writeFileSync(join(work, 'a-file'), '')
      const uncached = x402db(['migrate', 'latest'], {
        PGLITE_DATA_DIR: join(work, 'embedded-uncached'),
        XDG_CACHE_HOME: join(work, 'a-file', 'cache'),
        XDG_CONFIG_HOME: join(work, 'a-file', 'config'),
      })
      expect(uncached.stderr).toMatch(/^applied {2}\d{3}_/m)
      expect(uncached.status).toBe(0)
      expect(filesUnder(packageDir)).toEqual(before)
    })
  },
)

/** Every file under `folder`, with its size and modification time, for a before-and-after. */
function filesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const file = join(entry.parentPath, entry.name)
      const { size, mtimeMs } = statSync(file)
      return `${file.slice(folder.length)} ${size} ${mtimeMs}`
    })
    .sort()
}

async function withServer<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: process.env.TEST_DATABASE_URL,
    connectionTimeoutMillis: 10_000,
  })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}
