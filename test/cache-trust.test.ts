import { execFileSync, spawnSync } from 'node:child_process'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'

import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  readCacheFile,
  readTemplate,
  templateCacheDir,
  writeCacheFile,
  writeTemplate,
} from '../src/connection/template-cache.js'
import { emptyClusterTemplate } from '../src/connection/open-pglite.js'
import { migrateToLatest } from '../src/tooling.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { ALL_MIGRATIONS } from './support/migration-names.js'
import { createTestDatabase, type TestDatabase, testTargets } from './support/test-database.js'

// What migrate:check and migrate:baseline compare with, and what every scratch and new embedded
// database starts from, comes from the cache folder only where this user wrote it: anyone who can
// write the folder (a shared X402_DB_CACHE_DIR, a CI cache restored from a fork) can give a file a
// valid checksum, but not this user's key. Any doubt means the entry is made again.

/** A cache file as anyone can make it: the checksum of its contents, then the contents. */
function plant(file: string, body: Buffer): void {
  writeFileSync(
    file,
    Buffer.concat([
      Buffer.from(`${createHash('sha256').update(body).digest('hex')}\n`, 'latin1'),
      body,
    ]),
  )
}

/** The body of a cache file, whatever its first line holds. */
function bodyOf(file: string): Buffer {
  const contents = readFileSync(file)
  return contents.subarray(contents.indexOf(0x0a) + 1)
}

/** A new cache folder holding this user's templates, as the usual cache has them. */
async function cacheWithTemplates(): Promise<string> {
  await emptyClusterTemplate()
  const folder = mkdtempSync(join(tmpdir(), 'x402-cache-trust-'))
  for (const file of readdirSync(templateCacheDir()).filter((name) => name.endsWith('.tgz'))) {
    copyFileSync(join(templateCacheDir(), file), join(folder, file))
  }
  return folder
}

describe.each(testTargets)(
  'migrate:check against a reference planted in the cache, on %s',
  (target) => {
    let cacheDir: string
    let database: TestDatabase
    let env: NodeJS.ProcessEnv

    beforeAll(async () => {
      cacheDir = await cacheWithTemplates()
      database = await createTestDatabase(target, {}, 'latest')
      await migrateToLatest(database.db)
      // The drift the forged reference would hide: the keys table open to every API role.
      await sql`ALTER TABLE x402_user_openrouter_integrations DISABLE ROW LEVEL SECURITY`.execute(
        database.db,
      )
      await database.db.destroy() // the command opens the database itself
      env = { ...cliEnv(database.location), X402_DB_CACHE_DIR: cacheDir }
    })
    afterAll(async () => {
      await database.destroy()
      rmSync(cacheDir, { recursive: true, force: true })
    })

    it('still reports row level security off on the keys table', async () => {
      const first = await cli(['check'], env)
      expect(first.code).not.toBe(0)
      expect(first.stdout).toMatch(/x402_user_openrouter_integrations.*row level security/)

      const references = readdirSync(cacheDir).filter((file) => file.startsWith('reference-'))
      expect(references.length).toBeGreaterThan(0)
      for (const file of references) {
        const reference = JSON.parse(bodyOf(join(cacheDir, file)).toString('utf8'))
        for (const snapshot of [reference.expected, reference.latest]) {
          snapshot.relations.x402_user_openrouter_integrations.definition['row level security'] =
            false
        }
        plant(join(cacheDir, file), Buffer.from(JSON.stringify(reference)))
      }

      const forged = await cli(['check'], env)
      expect(lines(forged.stdout).at(-1) ?? '').not.toMatch(/^OK/)
      expect(forged.stdout).toMatch(/x402_user_openrouter_integrations.*row level security/)
      expect(forged.code).not.toBe(0)
    })
  },
)

describe('templates planted in the cache', () => {
  let cacheDir: string
  beforeAll(async () => {
    cacheDir = await cacheWithTemplates()
    // What a new embedded database and migrate:sql 005 start from, each a gzip of random bytes
    // with a valid checksum.
    const before005 = ALL_MIGRATIONS.filter((name) => name < '005').at(-1)!
    for (const file of readdirSync(cacheDir).filter(
      (name) => name.startsWith('empty-cluster-') || name.startsWith(`migrated-${before005}-`),
    )) {
      plant(join(cacheDir, file), gzipSync(randomBytes(64 * 1024)))
    }
  })
  afterAll(() => rmSync(cacheDir, { recursive: true, force: true }))

  // Making the empty cluster again is initdb in PGlite: several CPU-seconds on a loaded machine.
  it(
    'are made again: a new embedded database and migrate:sql work, and so do the commands after them',
    { timeout: 240_000 },
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'x402-cache-trust-db-'))
      try {
        for (let run = 0; run < 2; run++) {
          const list = await cli(['list'], {
            PGLITE_DATA_DIR: join(dataDir, `db-${run}`),
            X402_DB_CACHE_DIR: cacheDir,
          })
          expect(list.stderr).not.toMatch(/TypeError/)
          expect(list.code).toBe(0)
          const exported = await cli(['sql', '005', '--no-locks'], {
            PGLITE_DATA_DIR: '',
            X402_DB_CACHE_DIR: cacheDir,
          })
          expect(exported.stderr).not.toMatch(/TypeError/)
          expect(exported.code).toBe(0)
          expect(exported.stdout).toMatch(/CREATE POLICY/)
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true })
      }
    },
  )
})

describe('the cache key', () => {
  const config = mkdtempSync(join(tmpdir(), 'x402-cache-key-'))
  const cacheDir = mkdtempSync(join(tmpdir(), 'x402-cache-entries-'))
  const env = { X402_DB_CACHE_DIR: cacheDir, XDG_CONFIG_HOME: config }
  afterAll(() => {
    rmSync(config, { recursive: true, force: true })
    rmSync(cacheDir, { recursive: true, force: true })
  })

  it('is made on first use, readable by this user only, and authenticates each entry under its own name', () => {
    writeCacheFile('entry-a.json', Buffer.from('{"a":1}'), env)
    const key = join(config, 'x402-jobs-db', 'cache.key')
    expect(statSync(key).mode & 0o777).toBe(0o600)
    expect(readCacheFile('entry-a.json', env)?.toString()).toBe('{"a":1}')
    // Renamed, an entry no longer matches: a reference of one migration is not another's.
    copyFileSync(join(cacheDir, 'entry-a.json'), join(cacheDir, 'entry-b.json'))
    expect(readCacheFile('entry-b.json', env)).toBeUndefined()
  })

  it('is not trusted, and the cache not used, where others may read or write it', () => {
    const shared = mkdtempSync(join(tmpdir(), 'x402-cache-key-shared-'))
    try {
      const sharedEnv = { X402_DB_CACHE_DIR: cacheDir, XDG_CONFIG_HOME: shared }
      mkdirSync(join(shared, 'x402-jobs-db'))
      const key = randomBytes(32)
      writeFileSync(join(shared, 'x402-jobs-db', 'cache.key'), key, { mode: 0o644 })
      // An entry that this key authenticates, as another user who can read the key could write it.
      const body = Buffer.from('{"c":1}')
      const hmac = createHmac('sha256', key)
        .update('entry-c.json')
        .update('\0')
        .update(body)
        .digest('hex')
      writeFileSync(join(cacheDir, 'entry-c.json'), Buffer.concat([Buffer.from(`${hmac}\n`), body]))
      expect(readCacheFile('entry-c.json', sharedEnv)).toBeUndefined()
      writeCacheFile('entry-d.json', Buffer.from('{"d":1}'), sharedEnv)
      expect(readdirSync(cacheDir)).not.toContain('entry-d.json')
    } finally {
      rmSync(shared, { recursive: true, force: true })
    }
  })

  it("makes a FIFO, a link to an endless device or an oversized file at an entry's name a miss, at once", () => {
    execFileSync('mkfifo', [join(cacheDir, 'entry-fifo.json')])
    symlinkSync('/dev/zero', join(cacheDir, 'entry-zero.json'))
    symlinkSync(join(cacheDir, 'entry-a.json'), join(cacheDir, 'entry-link.json'))
    // Read in a process of its own: a read that blocks on the FIFO would block this worker too.
    const reader = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { readCacheFile } from ${JSON.stringify(pathToFileURL(join(process.cwd(), 'dist/connection/template-cache.js')).href)}
        for (const name of ['entry-fifo.json', 'entry-zero.json', 'entry-link.json']) console.log(name, readCacheFile(name) === undefined)`,
      ],
      { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 },
    )
    expect(reader.signal).toBeNull()
    expect(reader.stdout.trim().split('\n')).toEqual([
      'entry-fifo.json true',
      'entry-zero.json true',
      'entry-link.json true',
    ])
  })

  it('is not used, and not replaced, where a FIFO stands at its name: the cache is a miss, at once', () => {
    const planted = mkdtempSync(join(tmpdir(), 'x402-cache-key-fifo-'))
    const entries = mkdtempSync(join(tmpdir(), 'x402-cache-entries-fifo-'))
    try {
      const key = join(planted, 'x402-jobs-db', 'cache.key')
      mkdirSync(dirname(key), { mode: 0o700 })
      execFileSync('mkfifo', ['-m', '600', key])
      const fifoEnv = { X402_DB_CACHE_DIR: entries, XDG_CONFIG_HOME: planted }
      // In a process of its own: opening a FIFO that no one writes to would block this worker.
      const reader = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { readCacheFile, writeCacheFile } from ${JSON.stringify(pathToFileURL(join(process.cwd(), 'dist/connection/template-cache.js')).href)}
          writeCacheFile('entry-e.json', Buffer.from('{"e":1}'))
          console.log(readCacheFile('entry-e.json') === undefined)`,
        ],
        { env: { ...process.env, ...fifoEnv }, encoding: 'utf8', timeout: 20_000 },
      )
      expect(reader.signal).toBeNull()
      expect(reader.stdout.trim()).toBe('true')
      expect(readdirSync(entries)).toEqual([])
      expect(lstatSync(key).isFIFO()).toBe(true)
    } finally {
      rmSync(planted, { recursive: true, force: true })
      rmSync(entries, { recursive: true, force: true })
    }
  })

  it('makes an entry that this user wrote but that holds no template a miss, not a crash', async () => {
    await writeTemplate('damaged-own-entry', new Blob([randomBytes(4096)]), env)
    expect(readdirSync(cacheDir)).toContain('damaged-own-entry.tgz')
    expect(readTemplate('damaged-own-entry', env)).toBeUndefined()
  })
})

describe('the cache folder', () => {
  it("is the user's cache folder, never the installed package", () => {
    expect(templateCacheDir({ XDG_CACHE_HOME: '/home/u/.xdg-cache', HOME: '/home/u' })).toBe(
      '/home/u/.xdg-cache/x402-jobs-db/templates',
    )
    expect(templateCacheDir({ HOME: '/home/u' })).toBe('/home/u/.cache/x402-jobs-db/templates')
    expect(templateCacheDir({ X402_DB_CACHE_DIR: '/srv/cache', HOME: '/home/u' })).toBe(
      '/srv/cache',
    )
  })

  it('is best-effort: where it cannot be written, the commands work without it', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'x402-cache-file-')), 'a-file')
    writeFileSync(file, '')
    const exported = await cli(['sql', '005', '--no-locks'], {
      PGLITE_DATA_DIR: '',
      X402_DB_CACHE_DIR: join(file, 'cache'),
    })
    expect(exported.code).toBe(0)
    expect(exported.stdout).toMatch(/CREATE POLICY/)
  })
})
