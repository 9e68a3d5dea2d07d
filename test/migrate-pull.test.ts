import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createDb } from '../src/connection/create-db.js'
import { migrationNames } from '../src/migrations/index.js'
import { migrationChecksum, readMigrationChecksums } from '../src/migrator/checksums.js'
import {
  baselineMigrations,
  migrateToLatest,
  planRepair,
  recordedMigrationNames,
  syncMigrationChecksums,
} from '../src/tooling.js'
import { type CliResult, cliEnv, lines } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import {
  createProductionTodayDatabase,
  PRODUCTION_TODAY_ADOPTION_POINT,
  PRODUCTION_TODAY_TABLES,
} from './support/production-today.js'
import { commandIn, copyOfTheRepository } from './support/repository-copy.js'
import { createTestDatabase, type TestTarget, testTargets } from './support/test-database.js'

// migrate:pull on production today (test/support/production-today.ts), adopted as the
// take-over test adopts it. The pull runs in a temporary copy of the repository, never in this
// checkout's src/migrations: there it writes the next migration, and from that copy a fresh
// embedded database migrated to the latest has production's tables, migrate:check is clean on
// both, and the generated types and the access matrix cover every table.

const root = fileURLToPath(new URL('..', import.meta.url))
const PULLED = `${String(Number.parseInt(migrationNames.at(-1)!.slice(0, 3), 10) + 1).padStart(3, '0')}_pulled_production`

type Result = CliResult
const command = commandIn

async function tableCount(db: Kysely<any>): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
  `.execute(db)
  return rows[0]!.n
}

describe.each(testTargets)('migrate:pull on production today, on %s', (target: TestTarget) => {
  let database: ScriptableDatabase
  let copy: string
  let tables: number
  // The command line opens the database itself: PGlite's folder takes one process at a time.
  const inCopy = async (
    args: string[],
    env: NodeJS.ProcessEnv = cliEnv(database.location),
  ): Promise<Result> => {
    if (target === 'pglite') await database.db.destroy()
    try {
      return await command(copy, args, env)
    } finally {
      if (target === 'pglite') await database.runScript('SELECT 1')
    }
  }

  beforeAll(async () => {
    database = await createProductionTodayDatabase(target, createScriptableDatabase)
    const db = database.db as Kysely<any>
    const plan = await planRepair(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
    for (const statement of plan.statements) await sql.raw(statement).execute(db)
    await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
    tables = await tableCount(db)
    copy = copyOfTheRepository()
  }, 300_000)
  afterAll(async () => {
    await database?.destroy()
    if (copy) rmSync(copy, { recursive: true, force: true })
  })

  it('refuses with exit code 2, writing nothing, until the database is at the latest migration', async () => {
    const badName = await command(copy, ['migrate', 'pull', 'Not-A-Name'], {
      PGLITE_DATA_DIR: join(copy, 'unused'),
    })
    expect(badName.code).toBe(2)
    expect(badName.stderr).toContain('migrate pull refused: the name after NNN_pulled_')
    expect(badName.stderr).not.toContain('Database:')
    const refused = await inCopy(['migrate', 'pull', 'production'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/not at the latest migration.*npm run migrate:latest first/)
    expect(existsSync(join(copy, 'src/migrations', `${PULLED}.ts`))).toBe(false)
    expect(await recordedMigrationNames(database.db as Kysely<any>)).toEqual(
      migrationNames.filter((name) => name <= PRODUCTION_TODAY_ADOPTION_POINT),
    )
  }, 300_000)

  it('refuses, writing and recording nothing, where src/migrations/index.ts is not laid out as it expects', async () => {
    await migrateToLatest(database.db as Kysely<any>)
    const index = join(copy, 'src/migrations/index.ts')
    const laidOut = readFileSync(index, 'utf8')
    // Still valid TypeScript, but not the one import a line that pull adds to.
    writeFileSync(index, laidOut.replaceAll('import * as m', 'import *  as m'))
    try {
      const refused = await inCopy(['migrate', 'pull', 'production'])
      expect(refused.code).not.toBe(0)
      expect(refused.stderr).toContain('Nothing was written or recorded')
      expect(existsSync(join(copy, 'src/migrations', `${PULLED}.ts`))).toBe(false)
      expect(await recordedMigrationNames(database.db as Kysely<any>)).toEqual(migrationNames)
    } finally {
      writeFileSync(index, laidOut)
    }
  }, 300_000)

  it('writes the next migration, registers it and records the database at it; migrate:check is clean there', async () => {
    const pulled = await inCopy(['migrate', 'pull', 'production'])
    expect(pulled.stderr).toContain(`recorded the database at ${PULLED}`)
    expect(pulled.code).toBe(0)

    const source = readFileSync(join(copy, 'src/migrations', `${PULLED}.ts`), 'utf8')
    // A migration like the others: kysely only, one statement per call, a heading per table.
    expect(source.match(/^import .*$/gm)).toEqual(["import { type Kysely, sql } from 'kysely'"])
    expect(source).toContain('// table x402_oauth_pending')
    expect(source).toMatch(/CREATE TABLE x402_oauth_pending \(/)
    expect(source).toContain('CREATE VIEW public_x402_resources WITH (security_invoker=on) AS')
    expect(source).toMatch(
      /REVOKE ALL ON FUNCTION soft_delete_user_tx\(uuid\) FROM PUBLIC, anon, authenticated, service_role/,
    )
    expect(source).toMatch(/LOCK TABLE x402_resources, .* IN ACCESS EXCLUSIVE MODE/)
    expect(source).toContain('// lint:locks allow x402_resources:')
    // The foreign keys come after every table, the view after the columns it reads.
    expect(source.indexOf('ADD CONSTRAINT x402_job_run_events_resource_id_fkey')).toBeGreaterThan(
      source.lastIndexOf('CREATE TABLE'),
    )
    expect(source.indexOf('CREATE VIEW public_x402_resources')).toBeGreaterThan(
      source.indexOf('ADD COLUMN deleted_at'),
    )
    expect(readFileSync(join(copy, 'src/migrations/index.ts'), 'utf8')).toContain(
      `'${PULLED}': m${PULLED.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())},`,
    )
    // This checkout's migrations are untouched.
    expect(existsSync(join(root, 'src/migrations', `${PULLED}.ts`))).toBe(false)

    const db = database.db as Kysely<any>
    expect(await recordedMigrationNames(db)).toEqual([...migrationNames, PULLED])
    const recorded = (await readMigrationChecksums(db)).get(PULLED)
    expect(recorded?.sha256).toBe(
      await migrationChecksum(PULLED, { sourceDir: join(copy, 'src/migrations') }),
    )

    const checked = await inCopy(['migrate', 'check'])
    expect(checked.stdout).toMatch(new RegExp(`OK: the schema matches ${PULLED}`))
    expect(checked.code).toBe(0)

    const again = await inCopy(['migrate', 'pull', 'again'])
    expect(again.stderr).toContain('Nothing to pull')
    expect(again.code).toBe(0)
  }, 600_000)

  it("then a fresh embedded database migrated to the latest has production's tables, and migrate:check is clean on it", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'x402-pull-fresh-'))
    try {
      const latest = await command(copy, ['migrate', 'latest'], { PGLITE_DATA_DIR: dataDir })
      expect(latest.stderr).toMatch(new RegExp(`applied +${PULLED}`))
      expect(latest.code).toBe(0)
      const checked = await command(copy, ['migrate', 'check'], { PGLITE_DATA_DIR: dataDir })
      expect(lines(checked.stdout).at(-1)).toMatch(new RegExp(`^OK: the schema matches ${PULLED}`))
      expect(checked.code).toBe(0)
      const fresh = createDb({ dataDir })
      try {
        expect(await tableCount(fresh)).toBe(tables)
        expect(tables).toBe(PRODUCTION_TODAY_TABLES.length)
      } finally {
        await fresh.destroy()
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  }, 600_000)

  it('and the generated types and the access matrix cover every table and the view', async () => {
    const codegen = await command(copy, ['codegen'], {})
    expect(codegen.code).toBe(0)
    const types = readFileSync(join(copy, 'src/types/database.ts'), 'utf8')
    for (const table of [...PRODUCTION_TODAY_TABLES, 'public_x402_resources'])
      expect(types).toMatch(new RegExp(`^  ${table}: `, 'm'))

    const access = await command(copy, ['access'], {})
    expect({ code: access.code, stderr: access.stderr }).toEqual({
      code: 0,
      stderr: expect.any(String),
    })
    const matrix = readFileSync(join(copy, 'docs/access-matrix.md'), 'utf8')
    for (const table of [...PRODUCTION_TODAY_TABLES, 'public_x402_resources'])
      expect(matrix).toContain(`| public.${table} |`)
    // Every pulled table gets rows (its foreign keys take rows of the tables they point at), so
    // that its access is measured.
    expect(
      matrix.split('\n').filter((line) => line.startsWith('| ') && line.includes('not seeded')),
    ).toEqual([])
  }, 900_000)
})

// Production loosened the module's own keys table and function: the pull must not write that
// into the history, where every new database would get it.
describe.skipIf(!process.env.TEST_DATABASE_URL)('migrate:pull of a loosened module table', () => {
  it('pulls no policy or function change of the tables the migrations create, and lists each', async () => {
    const database = await createTestDatabase('postgres', {}, 'latest')
    const copy = copyOfTheRepository()
    try {
      await migrateToLatest(database.db)
      await syncMigrationChecksums(database.db)
      await sql`
        ALTER POLICY "Users can manage their own OpenRouter config"
          ON public.x402_user_openrouter_integrations TO authenticated, anon USING (true) WITH CHECK (true)
      `.execute(database.db)
      await sql`
        CREATE POLICY "anon all" ON public.x402_user_claude_configs FOR ALL TO anon USING (true) WITH CHECK (true)
      `.execute(database.db)
      await sql`ALTER FUNCTION public.update_claude_config_updated_at() SECURITY DEFINER`.execute(
        database.db,
      )
      const pulled = await command(copy, ['migrate', 'pull', 'launder'], cliEnv(database.location))
      expect(pulled.code).toBe(0)
      expect(
        readdirSync(join(copy, 'src', 'migrations')).filter((name) => name.includes('_pulled_')),
      ).toEqual([])
      expect(pulled.stderr).toMatch(/not pulled: policy x402_user_openrouter_integrations\./)
      expect(pulled.stderr).toMatch(/not pulled: policy x402_user_claude_configs\.anon all/)
      expect(pulled.stderr).toMatch(/not pulled: function update_claude_config_updated_at/)
      const check = await command(copy, ['migrate', 'check'], cliEnv(database.location))
      expect(check.code).toBe(3)
    } finally {
      await database.destroy()
      rmSync(copy, { recursive: true, force: true })
    }
  })
})
