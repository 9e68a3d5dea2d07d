import { execFileSync } from 'node:child_process'
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { emptyClusterTemplate } from '../src/connection/open-pglite.js'
import { readTemplate, templateCacheDir, writeTemplate } from '../src/connection/template-cache.js'
import {
  migratedTemplate,
  migratedTemplateKey,
  scratchDatabase,
} from '../src/migrated-dumps/migrated-template.js'
import {
  MIGRATION_TABLE_SCHEMA,
  migrationChecksum,
  readMigrationChecksums,
  recordedMigrationNames,
} from '../src/tooling.js'
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
    for (const file of readdirSync(usualCache).filter((name) =>
      name.startsWith('empty-cluster-'),
    )) {
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
      for (const name of migrationsThrough(point))
        expect(recorded.get(name)?.sha256).toBe(await migrationChecksum(name))
    } finally {
      await scratch.destroy()
    }
    // Cached under a key that names the point: the next scratch database loads it. Only that one:
    // a command on a new checkout makes the template it needs, not every one before it.
    expect(
      readdirSync(cacheDir).filter((file) => file.startsWith(`migrated-${point}-`)),
    ).toHaveLength(1)
    expect(readdirSync(cacheDir).filter((file) => file.startsWith('migrated-'))).toHaveLength(1)
  })

  it('start from the newest earlier template in the cache, instead of migrating an empty cluster', async () => {
    const earlier = '000_baseline_x402_resources'
    const point = '001_add_prompt_template_fields'
    await migratedTemplate(earlier)
    const appliedAt = async (at: string): Promise<unknown> => {
      const scratch = scratchDatabase(at)
      try {
        const { rows } = await sql<{
          timestamp: unknown
        }>`SELECT timestamp FROM ${sql.id(MIGRATION_TABLE_SCHEMA, 'kysely_migration')} WHERE name = ${earlier}`.execute(
          scratch,
        )
        return rows[0]?.timestamp
      } finally {
        await scratch.destroy()
      }
    }
    // The earlier migration was applied once, when its template was made: the later template
    // holds that same row.
    expect(await appliedAt(point)).toEqual(await appliedAt(earlier))
  })

  it('ignore a damaged cache file instead of loading it', async () => {
    // A tar header, as PGlite's dumps begin: "ustar" at byte 257.
    const tarball = Buffer.alloc(1024)
    tarball.write('ustar', 257, 'latin1')
    await writeTemplate('damaged-test', new Blob([tarball]), env)
    expect(Buffer.from(await readTemplate('damaged-test', env)!.arrayBuffer())).toEqual(tarball)

    const [file] = readdirSync(cacheDir).filter((name) => name.startsWith('damaged-test'))
    writeFileSync(
      join(cacheDir, file!),
      Buffer.concat([Buffer.from(`${'0'.repeat(64)}\n`), gzipSync('a tarball, altered')]),
    )
    expect(readTemplate('damaged-test', env)).toBeUndefined()
  })

  it('build a template again when its cache file was damaged', async () => {
    // The first test's template, read from the cache when that test ran: building another only
    // to damage it would cost a build more.
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
  const module =
    from === 'dist'
      ? './dist/migrated-dumps/migrated-template.js'
      : './src/migrated-dumps/migrated-template.ts'
  const loader = from === 'dist' ? [] : ['--import', 'tsx']
  return execFileSync(
    process.execPath,
    [
      ...loader,
      '--input-type=module',
      '-e',
      `console.log(await (await import('${module}')).migratedTemplateKey('latest'))`,
    ],
    { cwd: packageRoot, encoding: 'utf8' },
  ).trim()
}

describe('template keys', () => {
  it('hash the code that runs: the compiled commands key what they make by dist/, the sources by src/', () => {
    // A copy of the package, whose src/ is then edited as after a build: the compiled key stays
    // (the compiled code did not change), the sources' key moves. A template made by the compiled
    // engine is never cached under the key of other code.
    const copy = mkdtempSync(join(tmpdir(), 'x402-stale-dist-'))
    try {
      for (const entry of ['src', 'dist', 'package.json'])
        cpSync(join(root, entry), join(copy, entry), { recursive: true })
      symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
      const [dist, src] = [keyIn(copy, 'dist'), keyIn(copy, 'src')]
      expect(dist).not.toBe(src)

      appendFileSync(
        join(copy, 'src', 'supabase', 'stand-in.ts'),
        '\nexport const editedAfterTheBuild = true\n',
      )
      expect(keyIn(copy, 'dist')).toBe(dist)
      expect(keyIn(copy, 'src')).not.toBe(src)
      appendFileSync(
        join(copy, 'dist', 'supabase', 'stand-in.js'),
        '\nexport const editedAfterTheBuild = true\n',
      )
      expect(keyIn(copy, 'dist')).not.toBe(dist)
    } finally {
      rmSync(copy, { recursive: true, force: true })
    }
  })

  it.each(['migrator/runner.ts', 'supabase/stand-in.ts', 'connection/create-db.ts'])(
    'change with the engine code that migrates a template: %s',
    (file) => {
      // The runner migrates the template through the connection's code (createDb's session
      // settings, the dialect hooks): a change there may change the database it makes.
      const copy = mkdtempSync(join(tmpdir(), 'x402-edited-engine-'))
      try {
        for (const entry of ['src', 'package.json'])
          cpSync(join(root, entry), join(copy, entry), { recursive: true })
        symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
        const before = keyIn(copy, 'src')
        appendFileSync(join(copy, 'src', file), '\nexport const editedEngine = true\n')
        expect(keyIn(copy, 'src')).not.toBe(before)
      } finally {
        rmSync(copy, { recursive: true, force: true })
      }
    },
  )

  it('are made without anything from bin/: src/ imports nothing from it', () => {
    const sources = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter(
      (file) => file.endsWith('.ts'),
    )
    const reachingUp = sources.filter((file) =>
      /from '(\.\.\/)+bin\//.test(readFileSync(join(root, 'src', file), 'utf8')),
    )
    expect(reachingUp).toEqual([])
  })
})
