import { execFileSync } from 'node:child_process'
import { appendFileSync, copyFileSync, cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { emptyClusterTemplate } from '../src/connection/open-pglite.js'
import { readTemplate, templateCacheDir, writeTemplate } from '../src/connection/template-cache.js'
import { migratedTemplate, migratedTemplateKey, scratchDatabase } from '../src/templates/migrated-template.js'
import { MIGRATION_TABLE_SCHEMA, migrationChecksum, readMigrationChecksums, recordedMigrationNames } from '../src/tooling.js'
import { migrationsThrough } from './support/migration-names.js'

// Scratch and test databases start from cached dumps of migrated databases. A dump is used only
// when it is whole and was made from the migration files as they are now.

describe('migrated templates', () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'x402-template-cache-'))
  const env = { X402_DB_CACHE_DIR: cacheDir }
  let previous: string | undefined
  beforeAll(async () => {
    // The empty cluster the migrated dumps start from comes from the usual cache (made there
    // first if need be): making it again is initdb, 7 CPU-s, and the dumps under test are the
    // migrated ones.
    await emptyClusterTemplate()
    const usualCache = templateCacheDir()
    for (const file of readdirSync(usualCache).filter((name) => name.startsWith('empty-cluster-'))) {
      copyFileSync(join(usualCache, file), join(cacheDir, file))
    }
    previous = process.env.X402_DB_CACHE_DIR
    process.env.X402_DB_CACHE_DIR = cacheDir
  })
  afterAll(() => {
    if (previous === undefined) delete process.env.X402_DB_CACHE_DIR
    else process.env.X402_DB_CACHE_DIR = previous
    rmSync(cacheDir, { recursive: true, force: true })
  })

  it('start a scratch database at the migration asked for, recording each file’s current checksum', async () => {
    const point = '000_baseline_x402_resources'
    const scratch = scratchDatabase(point)
    try {
      expect(await recordedMigrationNames(scratch)).toEqual(migrationsThrough(point))
      const recorded = await readMigrationChecksums(scratch)
      for (const name of migrationsThrough(point)) expect(recorded.get(name)?.sha256).toBe(await migrationChecksum(name))
    } finally {
      await scratch.destroy()
    }
    // Cached under a key that names the point: the next scratch database loads it. Only that one:
    // a command on a new checkout makes the template it needs, not every one before it.
    expect(readdirSync(cacheDir).filter((file) => file.startsWith(`migrated-${point}-`))).toHaveLength(1)
    expect(readdirSync(cacheDir).filter((file) => file.startsWith('migrated-'))).toHaveLength(1)
  })

  it('start from the newest earlier template in the cache, instead of migrating an empty cluster', async () => {
    const earlier = '000_baseline_x402_resources'
    const point = '001_add_prompt_template_fields'
    await migratedTemplate(earlier)
    const appliedAt = async (at: string): Promise<unknown> => {
      const scratch = scratchDatabase(at)
      try {
        const { rows } = await sql<{ timestamp: unknown }>`SELECT timestamp FROM ${sql.id(MIGRATION_TABLE_SCHEMA, 'kysely_migration')} WHERE name = ${earlier}`.execute(scratch)
        return rows[0]?.timestamp
      } finally {
        await scratch.destroy()
      }
    }
    // The earlier migration was applied once, when its template was made: the later template
    // holds that same row.
    expect(await appliedAt(point)).toEqual(await appliedAt(earlier))
  })

  it('drop a damaged cache file instead of loading it', async () => {
    await writeTemplate('damaged-test', new Blob(['a tarball']), env)
    expect(await readTemplate('damaged-test', env)?.text()).toBe('a tarball')

    const [file] = readdirSync(cacheDir).filter((name) => name.startsWith('damaged-test'))
    writeFileSync(join(cacheDir, file!), Buffer.concat([Buffer.from(`${'0'.repeat(64)}\n`), gzipSync('a tarball, altered')]))
    expect(readTemplate('damaged-test', env)).toBeUndefined()
    expect(readdirSync(cacheDir).some((name) => name.startsWith('damaged-test'))).toBe(false)
  })

  it('build a template again when its cache file was damaged', async () => {
    // The first test's template, read from the cache when that test ran: building another only
    // to damage it cost a build more (issue 14).
    const point = '000_baseline_x402_resources'
    await migratedTemplate(point)
    const [file] = readdirSync(cacheDir).filter((name) => name.startsWith(`migrated-${point}-`))
    writeFileSync(join(cacheDir, file!), 'not a template')

    const scratch = scratchDatabase(point)
    try {
      expect(await recordedMigrationNames(scratch)).toEqual(migrationsThrough(point))
    } finally {
      await scratch.destroy()
    }
  })
})

const root = fileURLToPath(new URL('..', import.meta.url))

/** The template key of the latest migration in the package at `packageRoot`, from dist/ or from src/ (through tsx). */
function keyIn(packageRoot: string, from: 'dist' | 'src'): string {
  const module = from === 'dist' ? './dist/templates/migrated-template.js' : './src/templates/migrated-template.ts'
  const loader = from === 'dist' ? [] : ['--import', 'tsx']
  return execFileSync(
    process.execPath,
    [...loader, '--input-type=module', '-e', `console.log(await (await import('${module}')).migratedTemplateKey('latest'))`],
    { cwd: packageRoot, encoding: 'utf8' },
  ).trim()
}

describe('template keys', () => {
  it('are the same in the compiled commands as in the sources the tests run, so that both share the cache', async () => {
    // A compiled process, as the npm scripts run: test/support/build-dist.ts brought dist/ up to date.
    expect(keyIn(root, 'dist')).toBe(await migratedTemplateKey('latest'))
  })

  it('differ where dist/ was not built from the sources beside it, whose code would then be a key for other code', () => {
    // A copy of the package whose src/ was edited after dist/ was built (an app that imports dist/,
    // or bin/run.mjs without TypeScript to build again): a template made by the compiled engine
    // must not be cached under the key of the edited sources, where the tests would load it.
    const copy = mkdtempSync(join(tmpdir(), 'x402-stale-dist-'))
    try {
      for (const entry of ['src', 'dist', 'bin', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) {
        cpSync(join(root, entry), join(copy, entry), { recursive: true })
      }
      symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
      expect(keyIn(copy, 'dist')).toBe(keyIn(copy, 'src'))

      appendFileSync(join(copy, 'src', 'supabase', 'stand-in.ts'), '\nexport const editedAfterTheBuild = true\n')
      expect(keyIn(copy, 'dist')).not.toBe(keyIn(copy, 'src'))
    } finally {
      rmSync(copy, { recursive: true, force: true })
    }
  })

  it.each(['migrator/runner.ts', 'supabase/stand-in.ts', 'connection/create-db.ts'])('change with the engine code that migrates a template: %s', (file) => {
    // The runner migrates the template through the connection's code (createDb's session
    // settings, the dialect hooks): a change there may change the database it makes.
    const copy = mkdtempSync(join(tmpdir(), 'x402-edited-engine-'))
    try {
      for (const entry of ['src', 'bin', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) cpSync(join(root, entry), join(copy, entry), { recursive: true })
      symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
      const before = keyIn(copy, 'src')
      appendFileSync(join(copy, 'src', file), '\nexport const editedEngine = true\n')
      expect(keyIn(copy, 'src')).not.toBe(before)
    } finally {
      rmSync(copy, { recursive: true, force: true })
    }
  })
})
