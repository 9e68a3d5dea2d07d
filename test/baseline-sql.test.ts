import { readdirSync, readFileSync } from 'node:fs'

import { sql } from 'kysely'
import pg from 'pg'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'

import {
  baselineMigrations,
  checkDrift,
  exportBaselineSql,
  exportMigrationSql,
  migrateToLatest,
  migrationStatus,
  readAcceptedDifferences,
  readProductionObjects,
  readMigrationChecksums,
  recordedMigrationNames,
  snapshotSchema,
} from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { cli } from './support/cli.js'
import {
  createHandBuiltDatabase,
  createScriptableDatabase,
  PLAN_005_SQL,
  PRODUCTION_ONLY_SQL,
  type ScriptableDatabase,
} from './support/hand-built-database.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { serverUrl, testTargets, withTestDatabase } from './support/test-database.js'
import { BEFORE_005, MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'
import { runScriptInOneQuery } from './support/exported-script.js'

// `migrate:sql -- --baseline 005` is migrate:baseline for the Supabase SQL Editor: one script
// that verifies the live schema in the database itself, then records what the command records.

/** What follows 005: what migrate:latest applies on a database adopted at 005. */
const AFTER_005 = migrationNames.filter((name) => name > MIGRATION_005)

let script: string
beforeAll(async () => {
  script = await exportBaselineSql('005')
})

describe('the exported baseline script', () => {
  it('is what migrate:sql -- --baseline prints, one transaction that checks before it records', async () => {
    const printed = await cli(['sql', '--baseline', '005'], {})
    expect(printed.code).toBe(0)
    expect(printed.stdout).toBe(script)
    expect(script).toMatch(
      /^-- Adoption of a database built by hand: records 000_baseline_ai_models, .*, 005_add_openrouter_integration as applied/,
    )
    const statements = script
      .split('\n')
      .filter((line) =>
        /^(BEGIN ISOLATION LEVEL READ COMMITTED;|COMMIT;|DO |CREATE |INSERT |COMMENT )/.test(line),
      )
    expect(statements.map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual([
      'BEGIN ISOLATION',
      // The runner's checks, in its order: shadowed catalog, the migration lock, then the
      // trigger check migrate:baseline asks, fenced until COMMIT (lesser-triggers.ts).
      'DO $shadowed$',
      'DO $lesser$',
      'DO $x402_baseline$',
      'CREATE SCHEMA',
      'CREATE TABLE',
      'CREATE TABLE',
      'INSERT INTO',
      'CREATE TABLE',
      'COMMENT ON',
      'INSERT INTO',
      'INSERT INTO',
      'CREATE TABLE',
      'COMMENT ON',
      'INSERT INTO',
      'CREATE TABLE',
      'COMMENT ON',
      'INSERT INTO',
      'COMMIT;',
    ])
  })

  it('bounds its idle time and its waits as the migration scripts do, and takes the migration lock through pg_catalog, after the shadowed-catalog check', () => {
    const opening = script.slice(script.indexOf('BEGIN '), script.indexOf('DO $lesser$'))
    const statements = opening.split('\n').filter((line) => /^(BEGIN|SET|SELECT|DO) /.test(line))
    expect(statements).toEqual([
      'BEGIN ISOLATION LEVEL READ COMMITTED;',
      "SET LOCAL idle_in_transaction_session_timeout = '5000ms';",
      "SET LOCAL lock_timeout = '2000ms';",
      "SET LOCAL statement_timeout = '60000ms';",
      'DO $shadowed$',
      'SELECT pg_catalog.pg_advisory_xact_lock(402005000::pg_catalog.int8);',
    ])
  })

  it('in every exported script (the migrations of docs/migrations and this one), nothing but settings precedes the shadowed-catalog check', () => {
    const folder = new URL('../docs/migrations/', import.meta.url)
    const scripts = [
      ...readdirSync(folder)
        .filter((file) => file.endsWith('.sql'))
        .map((file) => [file, readFileSync(new URL(file, folder), 'utf8')] as const),
      ['baseline 005', script] as const,
    ]
    expect(scripts.length).toBeGreaterThan(10)
    for (const [file, text] of scripts) {
      const first = text.indexOf('DO $shadowed$')
      expect(first, file).toBeGreaterThan(0)
      // Each transaction at READ COMMITTED, whatever the defaults: the fenced check reads the
      // catalog after its lock, and refuses at any other level (review revo O5).
      expect(text, file).not.toMatch(
        /^(BEGIN|START TRANSACTION)(;| (?!ISOLATION LEVEL READ COMMITTED;$))/im,
      )
      // Comments, blank lines, BEGIN, psql's switch and SET statements: no function is called.
      const before = text
        .slice(0, first)
        .split('\n')
        .filter((line) => line.trim() !== '' && !line.startsWith('--'))
      for (const line of before)
        expect(line, file).toMatch(
          /^(BEGIN ISOLATION LEVEL READ COMMITTED;|\\set ON_ERROR_STOP on|SET (LOCAL )?[a-z0-9_.]+ = '[^'();]*';|SET (LOCAL )?[a-z0-9_.]+ = (on|off);)$/,
        )
    }
  })
})

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set, and a lesser role needs a server'

describe.skipIf(skipReason)('the exported baseline script on a server, run as postgres', () => {
  it('refuses (42501) where a lesser login shadows pg_advisory_xact_lock in public, before it calls anything', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await withLesserRole(
        db,
        'x402_test_lesser',
        async (role) => {
          await sql.raw(`GRANT CREATE ON SCHEMA public TO ${role}`).execute(db)
          await db.connection().execute(async (connection) => {
            await sql.raw(`SET ROLE ${role}`).execute(connection)
            try {
              // The literal 402005000 is an integer: (integer) matches better than pg_catalog's (bigint).
              await sql
                .raw(
                  `CREATE FUNCTION public.pg_advisory_xact_lock(k integer) RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} PERFORM pg_catalog.pg_advisory_xact_lock(k::bigint); END $f$`,
                )
                .execute(connection)
            } finally {
              await sql`RESET ROLE`.execute(connection)
            }
          })
          await sql.raw(`REVOKE CREATE ON SCHEMA public FROM ${role}`).execute(db)
          const code = await runScriptInOneQuery(serverUrl(location), script)
          expect({ code, superuser: await isSuperuser(db, role) }).toEqual({
            code: '42501',
            superuser: false,
          })
          await sql.raw(`DROP FUNCTION public.pg_advisory_xact_lock(integer)`).execute(db)
        },
        { login: true },
      )
    })
  })

  it('refuses (42501) where its session’s search_path does not name public and a lesser login may create there: its comparison reads with the path pinned to public', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await withLesserRole(
        db,
        'x402_test_lesser',
        async (role) => {
          // An extension's objects in public, as many databases have: the comparison reads
          // their dependencies with oid = regclass.
          await sql`CREATE EXTENSION citext SCHEMA public`.execute(db)
          await sql.raw(`GRANT CREATE ON SCHEMA public TO ${role}`).execute(db)
          await db.connection().execute(async (connection) => {
            await sql.raw(`SET ROLE ${role}`).execute(connection)
            try {
              // oid = regclass: pg_catalog has no exact operator, so public's exact one wins.
              await sql
                .raw(
                  `CREATE FUNCTION public.oideq(a oid, b regclass) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN a OPERATOR(pg_catalog.=) b::oid; END $f$`,
                )
                .execute(connection)
              await sql
                .raw(
                  'CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.oideq)',
                )
                .execute(connection)
            } finally {
              await sql`RESET ROLE`.execute(connection)
            }
          })
          const code = await runScriptInOneQuery(serverUrl(location), script, {
            options: '-c search_path=x402_migrations',
          })
          expect({ code, superuser: await isSuperuser(db, role) }).toEqual({
            code: '42501',
            superuser: false,
          })
        },
        { login: true },
      )
    })
  })

  it('gives up on the migration lock after its own lock_timeout (55P03) while a migration run holds it, instead of waiting', async () => {
    await withTestDatabase('postgres', async ({ location }) => {
      const url = serverUrl(location)
      const holder = new pg.Client({ connectionString: url })
      await holder.connect()
      try {
        await holder.query('BEGIN')
        await holder.query('SELECT pg_catalog.pg_advisory_xact_lock(402005000::pg_catalog.int8)')
        // A session bound far above the script's own lock_timeout: without one, the script
        // ends by this bound instead (57014), where it would otherwise wait for ever.
        expect(await runScriptInOneQuery(url, script, { statement_timeout: 30_000 })).toBe('55P03')
      } finally {
        await holder.end()
      }
    })
  }, 60_000)
})

describe.each(testTargets)('the exported baseline script on %s', (target) => {
  const databases: ScriptableDatabase[] = []
  const handBuilt = async (scripts: string[]) => {
    const database = await createHandBuiltDatabase(target, BEFORE_005, scripts)
    databases.push(database)
    return database
  }
  afterEach(async () => {
    for (const database of databases.splice(0)) await database.destroy()
  })

  it("adopts the plan's database exactly as migrate:baseline does, production's extra column and all; migrate:latest then applies only what follows 005", async () => {
    const bySql = await handBuilt([PLAN_005_SQL, PRODUCTION_ONLY_SQL, script])
    const byCommand = await handBuilt([PLAN_005_SQL, PRODUCTION_ONLY_SQL])
    await baselineMigrations(byCommand.db, '005')

    expect(await snapshotSchema(bySql.db, 'x402_migrations')).toEqual(
      await snapshotSchema(byCommand.db, 'x402_migrations'),
    )
    expect(await recordedMigrationNames(bySql.db)).toEqual(
      await recordedMigrationNames(byCommand.db),
    )
    const checksums = (checksumsOf: Map<string, { sha256: string; origin: string }>) =>
      [...checksumsOf.values()].map(({ sha256, origin }) => [sha256, origin])
    expect(checksums(await readMigrationChecksums(bySql.db))).toEqual(
      checksums(await readMigrationChecksums(byCommand.db)),
    )
    // The same differences accepted: production's extra column and index.
    expect(await readAcceptedDifferences(bySql.db)).toEqual(
      await readAcceptedDifferences(byCommand.db),
    )
    // The same objects recorded as production's own.
    expect(await readProductionObjects(bySql.db)).toEqual(await readProductionObjects(byCommand.db))
    expect((await readAcceptedDifferences(bySql.db)).map(({ key }) => key)).toEqual([
      'columns x402_resources.search_vector',
      'indexes x402_resources.idx_x402_resources_search',
    ])

    const status = await migrationStatus(bySql.db)
    expect(status.map(({ name, appliedAt }) => [name, appliedAt instanceof Date])).toEqual([
      ...status.slice(0, -AFTER_005.length).map(({ name }) => [name, true]),
      ...AFTER_005.map((name) => [name, false]),
    ])
    expect((await migrateToLatest(bySql.db)).map((result) => result.migrationName)).toEqual(
      AFTER_005,
    )
  })

  it('takes a database through up and down by the SQL Editor path: scripts, then the baseline or a DELETE', async () => {
    const database = await handBuilt([PLAN_005_SQL, script])
    await database.runScript(await exportMigrationSql(MIGRATION_006))
    await database.runScript(await exportBaselineSql(MIGRATION_006))
    expect((await recordedMigrationNames(database.db)).at(-1)).toBe(MIGRATION_006)
    expect(await checkDrift(database.db)).toMatchObject({ ok: true, migrationName: MIGRATION_006 })

    await database.runScript(await exportMigrationSql(MIGRATION_006, 'down'))
    await database.runScript(`
      DELETE FROM x402_migrations.kysely_migration WHERE name = '${MIGRATION_006}';
      DELETE FROM x402_migrations.migration_checksum WHERE name = '${MIGRATION_006}';
    `)
    expect(await checkDrift(database.db)).toMatchObject({ ok: true, migrationName: MIGRATION_005 })
  })

  it('stops with the differences, recording nothing, on a database that differs', async () => {
    const database = await handBuilt([
      PLAN_005_SQL,
      'DROP INDEX idx_x402_resources_openrouter_model',
      "ALTER TABLE x402_resources ALTER COLUMN resource_type SET DEFAULT 'proxy'",
    ])
    await expect(database.runScript(script)).rejects.toThrow(
      'The live schema conflicts with what the migrations up to 005_add_openrouter_integration produce; nothing was recorded.\n' +
        'Conflicts (adoption refuses; see the repair plan: npm run migrate:baseline -- <name> --plan):\n' +
        "  x402_resources: column resource_type: default: live 'proxy'::text / expected 'external'::text\n" +
        '  x402_resources: index idx_x402_resources_openrouter_model: missing: ' +
        'CREATE INDEX idx_x402_resources_openrouter_model ON public.x402_resources USING btree (openrouter_model_id) WHERE (openrouter_model_id IS NOT NULL)',
    )
    const { rows } = await sql<{
      schema: string | null
    }>`SELECT to_regnamespace('x402_migrations')::text AS schema`.execute(database.db)
    expect(rows[0]!.schema).toBeNull()
  })

  it('stops where the history already records a later migration', async () => {
    const database = await createScriptableDatabase(target, 'latest')
    databases.push(database)
    await migrateToLatest(database.db)
    await expect(database.runScript(script)).rejects.toThrow(
      `Cannot adopt the database at ${MIGRATION_005}: the history already records ${AFTER_005.join(', ')}, which are not among the migrations up to it.`,
    )
  })
})
