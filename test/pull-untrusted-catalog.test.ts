import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

import { type Kysely, sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'

import { migrationNames } from '../src/migrations/index.js'
import { baselineMigrations, migrateToLatest, syncMigrationChecksums } from '../src/tooling.js'
import { cliEnv } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import { commandIn, copyOfTheRepository } from './support/repository-copy.js'
import { createTestDatabase, type TestDatabase } from './support/test-database.js'

// migrate:pull writes what the live catalog holds into TypeScript that every later command
// loads, and into SQL that the migrating role runs wherever the migrations build a database.
// Names, comments and definitions there are chosen by whoever may create objects: none of it may
// leave the comment or string it is written in (rev-a7 finding 1).

const LATEST = migrationNames.at(-1)!

/** A database at the latest migration with `script` run on it, adopted again as production's own. */
async function liveDatabase(script: string): Promise<ScriptableDatabase> {
  const database = await createScriptableDatabase('postgres', 'latest')
  const db = database.db as Kysely<any>
  await migrateToLatest(db)
  await syncMigrationChecksums(db)
  await database.runScript(script)
  await baselineMigrations(db, LATEST, { decisions: [] })
  return database
}

describe.skipIf(!process.env.TEST_DATABASE_URL)('migrate:pull of an untrusted catalog', () => {
  const cleanups: (() => Promise<void> | void)[] = []
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  })

  it('writes hostile names so that they stay names: loading the file runs none of them, and a fresh database gets them as they are', async () => {
    // 62 bytes: a schema name may hold 63.
    const marker = `/tmp/fp${randomBytes(4).toString('hex').slice(0, 1)}`
    rmSync(marker, { force: true })
    cleanups.push(() => rmSync(marker, { force: true }))
    const schema = `*/import('child_process').then(c=>c.execSync('id>${marker}'))/*`
    const table = `it's $pull$ t%s`
    const column = `c'$pull$%`
    const quotedSchema = `"${schema.replaceAll('"', '""')}"`
    const database = await liveDatabase(`
      CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;
      CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
      CREATE SCHEMA ${quotedSchema};
      GRANT USAGE ON SCHEMA ${quotedSchema} TO anon;
      CREATE FUNCTION ${quotedSchema}.hello() RETURNS int LANGUAGE sql AS 'SELECT 1';
      CREATE TABLE public."${table}" (id int PRIMARY KEY, "${column}" citext, note text);
      CREATE INDEX trgm_note ON public."${table}" USING gin (note gin_trgm_ops);
      ALTER TABLE public."${table}" ENABLE ROW LEVEL SECURITY;
    `)
    cleanups.push(() => database.destroy())
    const copy = copyOfTheRepository()
    cleanups.push(() => rmSync(copy, { recursive: true, force: true }))

    const pulled = await commandIn(copy, ['migrate', 'pull', 'hostile'], cliEnv(database.location))
    expect(pulled.stderr).toMatch(/recorded the database at \d{3}_pulled_hostile/)
    expect(pulled.code).toBe(0)

    // What the review ran: the next command that loads the migrations.
    const listed = await commandIn(copy, ['migrate', 'list'], cliEnv(database.location))
    expect(listed.code).toBe(0)
    expect(existsSync(marker)).toBe(false)

    const fresh: TestDatabase = await createTestDatabase('postgres')
    cleanups.push(() => fresh.destroy())
    const latest = await commandIn(copy, ['migrate', 'latest'], cliEnv(fresh.location))
    expect(latest.stderr).toMatch(/applied +\d{3}_pulled_hostile/)
    expect(latest.code).toBe(0)
    expect(existsSync(marker)).toBe(false)
    const { rows } = await sql<{ name: string }>`
      SELECT n.nspname::text || '|' || c.relname::text || '|' || a.attname::text AS name
      FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = ${column}
      WHERE n.nspname = ${schema} AND c.relname = ${table}
    `.execute(fresh.db as Kysely<any>)
    expect(rows.map((row) => row.name)).toEqual([`${schema}|${table}|${column}`])
  }, 600_000)

  // rev-d1 F1: a role named "public, …" was split into PUBLIC and another role, and the pulled
  // policy let every role read.
  it('keeps a policy for a role whose name holds a comma for that role alone', async () => {
    const role = `public, x402_test_${randomBytes(4).toString('hex')}`
    const quotedRole = `"${role}"`
    // Run last, once the databases where it holds a policy are gone.
    cleanups.push(async () => {
      const admin = await createTestDatabase('postgres')
      await sql.raw(`DROP ROLE IF EXISTS ${quotedRole}`).execute(admin.db as Kysely<any>)
      await admin.destroy()
    })
    const database = await liveDatabase(`
      CREATE ROLE ${quotedRole} NOLOGIN;
      CREATE TABLE public.auditor_notes (id int PRIMARY KEY);
      ALTER TABLE public.auditor_notes ENABLE ROW LEVEL SECURITY;
      CREATE POLICY only_auditor ON public.auditor_notes FOR SELECT TO ${quotedRole} USING (true);
    `)
    cleanups.push(() => database.destroy())
    const copy = copyOfTheRepository()
    cleanups.push(() => rmSync(copy, { recursive: true, force: true }))
    const pulled = await commandIn(copy, ['migrate', 'pull', 'auditor'], cliEnv(database.location))
    expect(pulled.code).toBe(0)
    const fresh: TestDatabase = await createTestDatabase('postgres')
    cleanups.push(() => fresh.destroy())
    const latest = await commandIn(copy, ['migrate', 'latest'], cliEnv(fresh.location))
    expect(latest.code).toBe(0)
    const { rows } = await sql<{ roles: string[] }>`
      SELECT roles::text[] AS roles FROM pg_catalog.pg_policies WHERE policyname = 'only_auditor'
    `.execute(fresh.db as Kysely<any>)
    expect(rows).toEqual([{ roles: [role] }])
  }, 600_000)
})

describe.skipIf(!process.env.TEST_DATABASE_URL)('migrate:pull of awkward names', () => {
  const cleanups: (() => Promise<void> | void)[] = []
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  })

  // rev-d1 F4: a keyword that quote_ident() quotes was written bare, and the pulled migration
  // failed with a syntax error wherever it was applied.
  it('quotes a policy named "join" and a schema named "left", so the pulled migration applies', async () => {
    const database = await liveDatabase(`
      CREATE TABLE public.keyword_notes (id int PRIMARY KEY);
      ALTER TABLE public.keyword_notes ENABLE ROW LEVEL SECURITY;
      CREATE POLICY "join" ON public.keyword_notes FOR SELECT TO authenticated USING (false);
      CREATE SCHEMA "left";
      GRANT USAGE ON SCHEMA "left" TO anon;
      CREATE TABLE "left".t (id int PRIMARY KEY);
    `)
    cleanups.push(() => database.destroy())
    const copy = copyOfTheRepository()
    cleanups.push(() => rmSync(copy, { recursive: true, force: true }))
    const pulled = await commandIn(copy, ['migrate', 'pull', 'keywords'], cliEnv(database.location))
    expect(pulled.stderr).toMatch(/recorded the database at \d{3}_pulled_keywords/)
    expect(pulled.code).toBe(0)

    const fresh: TestDatabase = await createTestDatabase('postgres')
    cleanups.push(() => fresh.destroy())
    const latest = await commandIn(copy, ['migrate', 'latest'], cliEnv(fresh.location))
    expect(latest.stderr).toMatch(/applied +\d{3}_pulled_keywords/)
    expect(latest.code).toBe(0)
    const { rows } = await sql<{ name: string }>`
      SELECT policyname::text AS name FROM pg_catalog.pg_policies WHERE tablename = 'keyword_notes'
      UNION ALL
      SELECT schemaname::text || '.' || tablename::text FROM pg_catalog.pg_tables WHERE schemaname = 'left'
    `.execute(fresh.db as Kysely<any>)
    expect(rows.map((row) => row.name).sort()).toEqual(['join', 'left.t'])
  }, 600_000)

  // rev-d1 F5: triggers were keyed `table.trigger` and split at the first dot: a table named
  // "x402_resources.z" made the pull lock x402_resources and its down drop trigger "z.t" there.
  it('keeps the trigger of a table whose name holds a dot on that table, up and down', async () => {
    const database = await liveDatabase(`
      CREATE TABLE public."x402_resources.z" (id int PRIMARY KEY);
      CREATE FUNCTION public.dotted_touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
      CREATE TRIGGER t BEFORE INSERT ON public."x402_resources.z" FOR EACH ROW EXECUTE FUNCTION public.dotted_touch();
    `)
    cleanups.push(() => database.destroy())
    const copy = copyOfTheRepository()
    cleanups.push(() => rmSync(copy, { recursive: true, force: true }))
    const pulled = await commandIn(copy, ['migrate', 'pull', 'dotted'], cliEnv(database.location))
    expect(pulled.code).toBe(0)
    const file = readdirSync(join(copy, 'src/migrations')).find((name) =>
      name.endsWith('_pulled_dotted.ts'),
    )!
    const source = readFileSync(join(copy, 'src/migrations', file), 'utf8')
    expect(source).not.toMatch(/LOCK TABLE x402_resources\b/)
    expect(source).not.toMatch(/lint:locks allow x402_resources:/)
    expect(source).not.toContain('"z.t"')

    const fresh: TestDatabase = await createTestDatabase('postgres')
    cleanups.push(() => fresh.destroy())
    const env = cliEnv(fresh.location)
    const latest = await commandIn(copy, ['migrate', 'latest'], env)
    expect(latest.code).toBe(0)
    const triggers = sql<{ name: string }>`
      SELECT c.relname::text || '|' || g.tgname::text AS name
      FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid
      WHERE NOT g.tgisinternal AND c.relname = 'x402_resources.z'
    `
    expect((await triggers.execute(fresh.db as Kysely<any>)).rows).toEqual([
      { name: 'x402_resources.z|t' },
    ])
    const down = await commandIn(copy, ['migrate', 'down'], env)
    expect(down.stderr).not.toMatch(/failed/)
    expect(down.code).toBe(0)
    const { rows } = await sql<{ table: string | null }>`
      SELECT pg_catalog.to_regclass('public."x402_resources.z"')::text AS table
    `.execute(fresh.db as Kysely<any>)
    expect(rows).toEqual([{ table: null }])
  }, 600_000)
})
