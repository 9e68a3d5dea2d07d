import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll } from 'vitest'

import {
  createDb,
  type CreateDbOptions,
  type DB,
  migrateTo,
  migrateToLatest,
} from '../../src/tooling.js'
import { migratedTemplate, type TemplatePoint } from '../../src/migrated-dumps/migrated-template.js'

/**
 * Where the tests run: the embedded PGlite, and also the PostgreSQL server named by
 * TEST_DATABASE_URL (CI sets it to the local PostgreSQL 15). TEST_TARGETS=postgres runs the
 * tests that take a target on the server alone: CI's second server (PostgreSQL 17), whose PGlite
 * side the first run covered already.
 */
export type TestTarget = 'pglite' | 'postgres'

export const testTargets: TestTarget[] = process.env.TEST_DATABASE_URL
  ? process.env.TEST_TARGETS === 'postgres'
    ? ['postgres']
    : ['pglite', 'postgres']
  : ['pglite']

/** A database of its own for one test file, and how to reach it from outside Kysely. */
export interface TestDatabase {
  db: Kysely<DB>
  target: TestTarget
  /** The server database's URL (postgres), or the PGlite data folder (pglite). */
  location: TestLocation
  destroy(): Promise<void>
}

/** How a test database is reached from outside Kysely: the createDb options of its target. */
export type TestLocation = { connectionString: string } | { dataDir: string }

/**
 * The URL of a test database on the server, for a test that opens connections of its own;
 * throws on PGlite, where there is no server to connect to.
 *
 * @example
 * ```ts
 * const client = new pg.Client({ connectionString: serverUrl(database.location) })
 * ```
 */
export function serverUrl(location: TestLocation): string {
  if ('connectionString' in location) return location.connectionString
  throw new Error(
    'This test needs a PostgreSQL server, and its database is an embedded PGlite folder: ' +
      "run it on the 'postgres' target only (set TEST_DATABASE_URL).",
  )
}

/** What a test may add to the {@link createDb} options of its database: Kysely's query log. */
export type TestDbOptions = Pick<CreateDbOptions, 'log' | 'onStatement'>

/**
 * Dumps of databases that the tests build themselves (such as the production-shaped fixture),
 * by the name under which {@link registerTestTemplate} put them.
 */
const testTemplates = new Map<string, () => Promise<Blob>>()

/**
 * Names `make`, a maker of a PGlite data-directory dump, as a starting point for
 * {@link createTestDatabase}: on PGlite, a database created at `name` starts from it instead of
 * being built again, which costs a fraction of the time. On the server the name starts nothing:
 * the test builds that database itself. Returns `name`.
 *
 * @example
 * ```ts
 * const SHAPED = registerTestTemplate('test:shaped', () => shapedTemplate())
 * const database = await createTestDatabase('pglite', {}, SHAPED)
 * ```
 */
export function registerTestTemplate(name: string, make: () => Promise<Blob>): string {
  testTemplates.set(name, make)
  return name
}

/**
 * The maker of the PGlite dump a test database at `startAt` starts from: one that
 * {@link registerTestTemplate} named, else the cached template migrated that far.
 */
function testTemplate(startAt: TemplatePoint): () => Promise<Blob> {
  return testTemplates.get(startAt) ?? (() => migratedTemplate(startAt))
}

/**
 * A closed PGlite data folder loaded from `template`'s dump, made once per dump and process, for
 * test databases to be copied from. PGlite loads a dump through its JavaScript file system, file
 * by file (about 0.7 CPU-s into a folder); a native copy of the loaded folder takes 0.05 and
 * opening it 0.35. The folders live under the run's temporary folder, which
 * test/support/build-dist.ts removes after the run.
 */
function seedFolder(template: () => Promise<Blob>): Promise<string> {
  return template().then((dump) => {
    let folder = seedFolders.get(dump)
    if (!folder) {
      folder = loadIntoFolder(dump)
      seedFolders.set(dump, folder)
      folder.catch(() => seedFolders.delete(dump))
    }
    return folder
  })
}

/** By dump: the template cache hands out the same Blob for the same file (see readTemplate). */
const seedFolders = new WeakMap<Blob, Promise<string>>()

async function loadIntoFolder(dump: Blob): Promise<string> {
  const folder = mkdtempSync(join(tmpdir(), 'x402-db-seed-'))
  const db = createDb({ dataDir: folder, template: () => Promise.resolve(dump) })
  try {
    await sql`SELECT 1`.execute(db)
  } finally {
    await db.destroy()
  }
  return folder
}

/**
 * Creates an empty database on `target`: a PGlite data folder in a temporary directory, or a
 * new database on the TEST_DATABASE_URL server. `destroy` removes it. On PGlite, `startAt`
 * starts the database from the cached template migrated that far (see migratedTemplate), so
 * that it needs no migration run of its own, or from a dump named by registerTestTemplate.
 */
export async function createTestDatabase(
  target: TestTarget,
  options: TestDbOptions = {},
  startAt: TemplatePoint = 'none',
): Promise<TestDatabase> {
  if (target === 'pglite') {
    const dataDir = mkdtempSync(join(tmpdir(), 'x402-db-test-'))
    cpSync(await seedFolder(testTemplate(startAt)), dataDir, { recursive: true })
    const db = createDb({ ...options, dataDir })
    return {
      db,
      target,
      location: { dataDir },
      async destroy() {
        await db.destroy()
        rmSync(dataDir, { recursive: true, force: true })
      },
    }
  }

  const serverUrl = new URL(process.env.TEST_DATABASE_URL!)
  // Letters only: a run that mixes letters and digits is how a password looks, and the
  // Database: line would not show the name (shownDatabaseName).
  const name = `x402_test_${[...randomBytes(12)].map((byte) => String.fromCharCode(97 + (byte % 26))).join('')}`
  await withAdminClient(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`))
  const databaseUrl = new URL(serverUrl)
  databaseUrl.pathname = `/${name}`
  const connectionString = databaseUrl.toString()
  const db = createDb({ ...options, connectionString })
  return {
    db,
    target,
    location: { connectionString },
    async destroy() {
      await db.destroy()
      await withAdminClient(serverUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
      )
    },
  }
}

/**
 * Runs `use` on a fresh, empty database on `target`, and drops the database afterwards, for
 * tests that need a database of their own.
 */
export async function withTestDatabase<T>(
  target: TestTarget,
  use: (database: TestDatabase) => Promise<T>,
  options: TestDbOptions = {},
): Promise<T> {
  const database = await createTestDatabase(target, options)
  try {
    return await use(database)
  } finally {
    await database.destroy()
  }
}

async function withAdminClient<T>(url: URL, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url.toString() })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

/** How far {@link useTestDatabase} migrates the new database before the tests run. */
export type MigrationPoint = 'none' | 'latest' | string

/**
 * Gives the enclosing `describe` a fresh database on `target`, migrated to `migrateTo`
 * ('latest' by default), created before its tests and dropped after them.
 *
 * @example
 * ```ts
 * describe.each(testTargets)('on %s', (target) => {
 *   const database = useTestDatabase(target)
 *   it('works', async () => { await database.db.selectFrom('x402_openrouter_models').selectAll().execute() })
 * })
 * ```
 */
export function useTestDatabase(
  target: TestTarget,
  migrateToPoint: MigrationPoint = 'latest',
  options: TestDbOptions = {},
): TestDatabase {
  let current: TestDatabase | undefined
  beforeAll(async () => {
    current = await createTestDatabase(target, options, migrateToPoint)
    // On PGlite, a no-op: the database starts from the template at that point.
    if (migrateToPoint === 'latest') await migrateToLatest(current.db)
    else if (migrateToPoint !== 'none') await migrateTo(current.db, migrateToPoint)
  })
  afterAll(async () => {
    await current?.destroy()
  })
  const opened = (): TestDatabase => {
    if (!current) throw new Error('The test database is used before beforeAll created it.')
    return current
  }
  return {
    get db() {
      return opened().db
    },
    get target() {
      return target
    },
    get location() {
      return opened().location
    },
    destroy: () => opened().destroy(),
  }
}
