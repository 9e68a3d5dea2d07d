import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  readCacheFile,
  templateCacheDir,
  writeCacheFile,
} from '../src/connection/template-cache.js'
import { parseReference } from '../src/schema/reference.js'
import { migratedTemplate } from '../src/migrated-dumps/migrated-template.js'
import { migrationNames } from '../src/migrations/index.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { createTestDatabase, type TestDatabase } from './support/test-database.js'

// migrate:check and migrate:baseline compare the live schema with what the migrations produce,
// which takes a scratch database and a run of the later migrations (a second a check, and most
// of its memory). The reference is cached beside the templates, under a key of everything that
// shapes it; a damaged file is built again, never trusted.

const NEWEST = migrationNames.at(-1)!

describe('the cached schema reference', () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'x402-reference-cache-'))
  let database: TestDatabase
  let env: NodeJS.ProcessEnv
  const referenceFiles = () =>
    readdirSync(cacheDir).filter((file) => file.startsWith(`reference-${NEWEST}-`))

  beforeAll(async () => {
    // The templates come from the usual cache (made there first if need be): only the
    // reference is missing from this one.
    await migratedTemplate('latest')
    for (const file of readdirSync(templateCacheDir()).filter((name) => name.endsWith('.tgz'))) {
      copyFileSync(join(templateCacheDir(), file), join(cacheDir, file))
    }
    database = await createTestDatabase('pglite', {}, 'latest')
    await database.db.destroy() // the command opens the folder itself
    env = { ...cliEnv(database.location), X402_DB_CACHE_DIR: cacheDir }
  })
  afterAll(async () => {
    await database.destroy()
    rmSync(cacheDir, { recursive: true, force: true })
  })

  it('is stored by the first check, and read by the next one', async () => {
    const first = await cli(['check'], env)
    expect(first.code).toBe(0)
    expect(referenceFiles()).toHaveLength(1)

    // A reference that names a table no migration creates, stored whole (its digest matches):
    // the next check believes it, which shows that the check reads the cache.
    const name = referenceFiles()[0]!
    const reference = JSON.parse(
      readCacheFile(name, { X402_DB_CACHE_DIR: cacheDir })!.toString('utf8'),
    )
    reference.expected.relations.x402_ghost = {
      ...reference.expected.relations.x402_openrouter_models,
      name: 'x402_ghost',
      table: 'x402_ghost',
    }
    writeCacheFile(name, Buffer.from(JSON.stringify(reference)), { X402_DB_CACHE_DIR: cacheDir })
    const forged = await cli(['check'], env)
    // Drift: 3.
    expect(forged.code).toBe(3)
    expect(forged.stdout).toMatch(/x402_ghost: table: missing/)
  })

  it('is built again when its file was damaged', async () => {
    if (referenceFiles().length === 0) expect((await cli(['check'], env)).code).toBe(0)
    const [name] = referenceFiles()
    writeFileSync(join(cacheDir, name!), `${'0'.repeat(64)}\n{"expected":{}}`)
    const checked = await cli(['check'], env)
    expect(checked.code).toBe(0)
    expect(lines(checked.stdout).at(-1)).toMatch(/^OK: the schema matches /)
    const rebuilt = JSON.parse(
      readCacheFile(referenceFiles()[0]!, { X402_DB_CACHE_DIR: cacheDir })!.toString('utf8'),
    )
    expect(rebuilt.expected.relations.x402_ghost).toBeUndefined()
    expect(rebuilt.migrationName).toBe(NEWEST)
  })

  // Whole (its digest matches) but no reference of that migration, or one with an object or a
  // function's source of another shape: the check crashed on such a file (`Cannot read properties
  // of null`) or reported drift that was only the file's. Each shape is refused by parseReference;
  // two of them also go through the command, which builds the reference again.
  const forgeries: Array<[string, (reference: any) => unknown]> = [
    ['null', () => null],
    [
      'a reference of another migration',
      (reference) => ({ ...reference, migrationName: '005_add_openrouter_integration' }),
    ],
    ['no expected schema', (reference) => ({ ...reference, expected: null })],
    [
      'a relation that is null',
      (reference) => ((reference.expected.relations.x402_openrouter_models = null), reference),
    ],
    [
      'a relation of the newest migration that is null',
      (reference) => ((reference.latest.relations.x402_openrouter_models = null), reference),
    ],
    [
      'a column that is a string',
      (reference) => (
        (reference.expected.columns[Object.keys(reference.expected.columns)[0]!] =
          'x402_openrouter_models.id'),
        reference
      ),
    ],
    [
      'an object without its definition',
      (reference) => (
        delete reference.expected.relations.x402_openrouter_models.definition,
        reference
      ),
    ],
    [
      'a function source that is not text',
      (reference) => (
        (reference.functionSources[Object.keys(reference.functionSources)[0]!] = null),
        reference
      ),
    ],
  ]
  const pristine = async (): Promise<{ name: string; json: string }> => {
    if (referenceFiles().length === 0) expect((await cli(['check'], env)).code).toBe(0)
    const [name] = referenceFiles()
    return {
      name: name!,
      json: readCacheFile(name!, { X402_DB_CACHE_DIR: cacheDir })!.toString('utf8'),
    }
  }

  it('is refused by parseReference when whole but not a reference of its migration', async () => {
    const { json } = await pristine()
    expect(parseReference(json, NEWEST)).toEqual(JSON.parse(json))
    for (const [shape, forge] of forgeries)
      expect(parseReference(JSON.stringify(forge(JSON.parse(json))), NEWEST), shape).toBeUndefined()
  })

  it.each(forgeries.filter(([shape]) => ['null', 'a relation that is null'].includes(shape)))(
    'is built again by migrate:check when whole but not a reference: %s',
    async (_shape, forge) => {
      const { name, json } = await pristine()
      writeCacheFile(name, Buffer.from(JSON.stringify(forge(JSON.parse(json)))), {
        X402_DB_CACHE_DIR: cacheDir,
      })
      const checked = await cli(['check'], env)
      expect(checked.stderr).not.toMatch(/TypeError|Cannot read properties/)
      expect(checked.code).toBe(0)
      expect(lines(checked.stdout).at(-1)).toMatch(/^OK: the schema matches /)
      // The file replaced with the reference built again.
      expect(
        JSON.parse(readCacheFile(name, { X402_DB_CACHE_DIR: cacheDir })!.toString('utf8')),
      ).toEqual(JSON.parse(json))
    },
  )
})
