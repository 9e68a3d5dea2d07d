import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  DataLossRefusal,
  exportMigrationSql,
  MigrationError,
  migrateDown,
  migrateTo,
  migrationStatus,
} from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import { testTargets, useTestDatabase } from './support/test-database.js'
import { MIGRATION_005, MIGRATION_006 } from './support/migration-names.js'
import { runScriptByStatement } from './support/exported-script.js'

// TRUNCATE and a table rewrite (ALTER COLUMN … TYPE … USING) replace a table's storage; the
// transaction's per-table counts of deleted rows never see them. A trigger that does either while
// a down runs must not destroy data unreported: the down refuses, or, with the opt-in, the table
// is reported and backed up whole first; what the rehearsal did not foresee rolls the down back.

async function victimRows(db: Kysely<any>): Promise<number[]> {
  const { rows } = await sql<{ x: number }>`SELECT x FROM victim ORDER BY x`.execute(db)
  return rows.map((row) => Number(row.x))
}

async function backupTables(db: Kysely<any>, like: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = 'x402_backup' AND table_name LIKE ${like} ORDER BY 1
  `.execute(db)
  return rows.map((row) => row.name)
}

async function applied(db: Kysely<any>): Promise<string[]> {
  return (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
}

/** A statement-level trigger on the table 006's down updates: it fires even where no row changes. */
async function onDownOf006(db: Kysely<any>, body: string): Promise<void> {
  await sql
    .raw(
      `CREATE OR REPLACE FUNCTION hostile() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN ${body}; RETURN NULL; END $fn$`,
    )
    .execute(db)
  await sql`CREATE TRIGGER hostile AFTER UPDATE ON x402_openrouter_models FOR EACH STATEMENT EXECUTE FUNCTION hostile()`.execute(
    db,
  )
}

/** 006 applied, no hostile trigger, and a victim table with three rows. */
async function freshVictim(db: Kysely<any>, at = MIGRATION_006): Promise<void> {
  await sql`DROP FUNCTION IF EXISTS hostile() CASCADE`.execute(db)
  await migrateTo(db, at)
  await sql`DROP TABLE IF EXISTS victim`.execute(db)
  await sql`CREATE TABLE victim (x int)`.execute(db)
  await sql`INSERT INTO victim VALUES (1), (2), (3)`.execute(db)
}

describe.each(testTargets)('a trigger that truncates or rewrites during a down on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_006)

  it.each([
    ['TRUNCATE', 'TRUNCATE victim'],
    ['a lossy rewrite', 'ALTER TABLE victim ALTER COLUMN x TYPE bigint USING 0'],
  ])('%s: refuses without the opt-in, naming the table; nothing changes', async (_, body) => {
    const { db } = database
    await freshVictim(db)
    await onDownOf006(db, body)
    const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(MigrationError)
    expect((error as Error).cause).toBeInstanceOf(DataLossRefusal)
    expect((error as Error).message).toContain(
      'table public.victim (truncated or rewritten): 3 row(s)',
    )
    expect(await applied(db)).toContain(MIGRATION_006)
    expect(await victimRows(db)).toEqual([1, 2, 3])
  })

  it('with the opt-in, backs the truncated table up whole first, and says so', async () => {
    const { db } = database
    await freshVictim(db)
    await onDownOf006(db, 'TRUNCATE victim')
    const lines: string[] = []
    await migrateDown(db, { allowDataLoss: true, env: {}, log: (line) => lines.push(line) })
    expect(await applied(db)).not.toContain(MIGRATION_006)
    const [backup] = await backupTables(db, '006_victim_%')
    expect(backup).toBeDefined()
    const { rows } = await sql<{
      x: number
    }>`SELECT x FROM ${sql.id('x402_backup', backup!)} ORDER BY x`.execute(db)
    expect(rows.map((row) => Number(row.x))).toEqual([1, 2, 3])
    expect(lines.join('\n')).toContain(`x402_backup."${backup}"`)
  })

  it('rolls the down back, even with the opt-in, where the down destroys what its rehearsal did not', async () => {
    const { db } = database
    await freshVictim(db)
    // A sequence is not rolled back with the rehearsal: the rehearsal sees an odd value and
    // leaves victim alone, the down itself an even one.
    await sql`DROP SEQUENCE IF EXISTS hostile_turn`.execute(db)
    await sql`CREATE SEQUENCE hostile_turn`.execute(db)
    await onDownOf006(db, "IF nextval('hostile_turn') % 2 = 0 THEN TRUNCATE victim; END IF")
    const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(MigrationError)
    expect((error as Error).message).toContain('public.victim')
    expect((error as Error).message).toContain('did not report or back up')
    expect(await applied(db)).toContain(MIGRATION_006)
    expect(await victimRows(db)).toEqual([1, 2, 3])
  })

  it.each([
    ['TRUNCATE', 'TRUNCATE victim'],
    ['DELETE', 'DELETE FROM victim WHERE x > 1'],
    ['a lossy rewrite', 'ALTER TABLE victim ALTER COLUMN x TYPE bigint USING 0'],
  ])(
    "%s: the exported script rolls back before COMMIT, even with the session's opt-in",
    async (_, body) => {
      const { db } = database
      await freshVictim(db)
      await onDownOf006(db, body)
      const script = await exportMigrationSql(MIGRATION_006, 'down')
      for (const prefix of ['', 'SET x402.allow_data_loss = on']) {
        const error = await runScriptByStatement(db, script, prefix)
        expect(error).toBeDefined()
        expect(String((error as Error).cause ?? error)).toContain('public.victim')
        expect(await applied(db)).toContain(MIGRATION_006)
        expect(await victimRows(db)).toEqual([1, 2, 3])
        const { rows } = await sql<{
          present: boolean
        }>`SELECT to_regclass('public.x402_openrouter_models') IS NOT NULL AS present`.execute(db)
        expect(rows).toEqual([{ present: true }])
      }
    },
  )
})

describe.each(testTargets)("a trigger that truncates during 005's down on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('rolls back, even with the opt-in, naming the table; nothing changes', async () => {
    const { db } = database
    await freshVictim(db, MIGRATION_005)
    await sql`
      CREATE FUNCTION hostile() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN TRUNCATE victim; RETURN NULL; END $fn$
    `.execute(db)
    await sql`CREATE TRIGGER hostile AFTER DELETE ON user_openrouter_integrations FOR EACH STATEMENT EXECUTE FUNCTION hostile()`.execute(
      db,
    )
    const userId = await createUser(db)
    await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
      db,
    )
    const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(MigrationError)
    expect((error as Error).message).toContain('public.victim')
    expect(await applied(db)).toContain(MIGRATION_005)
    expect(await victimRows(db)).toEqual([1, 2, 3])
    expect(await backupTables(db, '005_%')).toEqual([])
  })
})

describe.each(testTargets)("an event trigger that truncates in 005's last step on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('rolls that step back, naming the table; the rollback completes once it is gone', async () => {
    const { db } = database
    await freshVictim(db, MIGRATION_005)
    await sql`
      CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$ BEGIN TRUNCATE victim; END $fn$
    `.execute(db)
    await sql`CREATE EVENT TRIGGER hostile ON sql_drop WHEN TAG IN ('DROP TABLE') EXECUTE FUNCTION hostile()`.execute(
      db,
    )
    try {
      const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(MigrationError)
      expect((error as Error).message).toContain('public.victim: truncated or rewritten')
      expect(await victimRows(db)).toEqual([1, 2, 3])
    } finally {
      await sql`DROP EVENT TRIGGER hostile`.execute(db)
    }
    await migrateDown(db, { env: {} })
    expect(await applied(db)).not.toContain(MIGRATION_005)
    expect(await victimRows(db)).toEqual([1, 2, 3])
  })
})

describe.each(testTargets)(
  "an event trigger that drops a table in 005's last step on %s",
  (target) => {
    const database = useTestDatabase(target, MIGRATION_005)

    // Schemas whose names begin with "pg" but are not PostgreSQL's own (pgmq is Supabase Queues'):
    // only pg_catalog, pg_toast and other pg_ schemas are left unwatched.
    it.each(['queue', 'pgmq', 'pgx'])(
      'rolls that step back where the table is in schema %s, naming it',
      async (schema) => {
        const { db } = database
        await migrateTo(db, MIGRATION_005)
        await sql.raw(`CREATE SCHEMA ${schema}`).execute(db)
        await sql.raw(`CREATE TABLE ${schema}.jobs (x int)`).execute(db)
        await sql.raw(`INSERT INTO ${schema}.jobs VALUES (1), (2)`).execute(db)
        await sql
          .raw(
            `CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$ BEGIN DROP TABLE IF EXISTS ${schema}.jobs; END $fn$`,
          )
          .execute(db)
        await sql`CREATE EVENT TRIGGER hostile ON sql_drop WHEN TAG IN ('DROP TABLE') EXECUTE FUNCTION hostile()`.execute(
          db,
        )
        try {
          const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
          expect(error).toBeInstanceOf(MigrationError)
          expect((error as Error).message).toContain(`${schema}.jobs`)
          expect(await applied(db)).toContain(MIGRATION_005)
          const { rows } = await sql
            .raw<{ x: number }>(`SELECT x FROM ${schema}.jobs ORDER BY x`)
            .execute(db)
          expect(rows.map((row) => Number(row.x))).toEqual([1, 2])
        } finally {
          await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
          await sql`DROP FUNCTION IF EXISTS hostile()`.execute(db)
          await sql.raw(`DROP SCHEMA ${schema} CASCADE`).execute(db)
        }
      },
    )
  },
)
