import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  exportMigrationSql,
  MigrationError,
  migrateDown,
  migrateTo,
  migrationStatus,
} from '../src/tooling.js'
import { testTargets, useTestDatabase } from './support/test-database.js'
import { MIGRATION_005, MIGRATION_007, MIGRATION_008 } from './support/migration-names.js'
import { runScriptByStatement } from './support/exported-script.js'

// A table or column that something drops while a down runs (an event trigger, DROP SCHEMA or
// DROP TYPE … CASCADE) takes its rows or values with it, though no row counter moves: the check
// before COMMIT refuses it like rows deleted, unless the down reported or backed it up.

async function applied(db: Kysely<any>): Promise<string[]> {
  return (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
}

async function victims(db: Kysely<any>): Promise<void> {
  await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
  await sql`DROP FUNCTION IF EXISTS hostile() CASCADE`.execute(db)
  await sql`DROP TABLE IF EXISTS victim, victim2`.execute(db)
  await sql`CREATE TABLE victim (x int)`.execute(db)
  await sql`INSERT INTO victim VALUES (1), (2), (3)`.execute(db)
  await sql`CREATE TABLE victim2 (id int, secret text, note text)`.execute(db)
  await sql`INSERT INTO victim2 VALUES (1, 's', 'n')`.execute(db)
}

const DROPS = `
  IF to_regclass('public.victim') IS NOT NULL THEN DROP TABLE public.victim; END IF;
  IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('public.victim2')
             AND attname = 'secret' AND NOT attisdropped) THEN
    ALTER TABLE public.victim2 DROP COLUMN secret;
  END IF;`

/** Runs `body` in an event trigger once the guard's watch is set: inert in the rehearsal. */
async function hostileDrops(db: Kysely<any>, when = '', body = DROPS): Promise<void> {
  await sql
    .raw(
      `CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      IF coalesce(current_setting('x402.down_watch', true), '') = '' THEN RETURN; END IF;
      ${body}
    END $fn$`,
    )
    .execute(db)
  await sql
    .raw(`CREATE EVENT TRIGGER hostile ON ddl_command_end ${when} EXECUTE FUNCTION hostile()`)
    .execute(db)
}

async function intact(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM victim`.execute(db)
  expect(Number(rows[0]!.n)).toBe(3)
  const { rows: secrets } = await sql<{ secret: string }>`SELECT secret FROM victim2`.execute(db)
  expect(secrets).toEqual([{ secret: 's' }])
}

describe.each(testTargets)('a table or column dropped during a down on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_008)

  it('rolls the down back, even with the opt-in, naming what was dropped', async () => {
    const { db } = database
    await victims(db)
    await hostileDrops(db)
    try {
      for (const allowDataLoss of [false, true]) {
        const error = await migrateDown(db, { allowDataLoss, env: {} }).catch(
          (caught: unknown) => caught,
        )
        expect(error).toBeInstanceOf(MigrationError)
        expect((error as Error).message).toContain('table public.victim: dropped')
        expect((error as Error).message).toContain('column public.victim2.secret: dropped')
        expect(await applied(db)).toContain(MIGRATION_008)
        await intact(db)
      }
    } finally {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
    }
  })
})

describe.each(testTargets)('a table dropped during an exported down script on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_007)

  it('rolls back before COMMIT, naming the table', async () => {
    const { db } = database
    await victims(db)
    await hostileDrops(db, "WHEN TAG IN ('CREATE POLICY')")
    const script = await exportMigrationSql(MIGRATION_007, 'down')
    try {
      const error = await runScriptByStatement(db, script)
      expect(String((error as Error | undefined)?.cause ?? error)).toContain(
        'table public.victim: dropped',
      )
      expect(await applied(db)).toContain(MIGRATION_007)
      await intact(db)
    } finally {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
    }
  })
})

describe.each(testTargets)('defaults and backups under an exported down script on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_007)

  it('ignores a default of x402.down_covered: the script sets its own', async () => {
    const { db } = database
    await victims(db)
    await hostileDrops(db, "WHEN TAG IN ('CREATE POLICY')", 'DELETE FROM public.victim;')
    const { rows } = await sql<{
      oid: string
    }>`SELECT 'public.victim'::regclass::oid::text AS oid`.execute(db)
    const script = await exportMigrationSql(MIGRATION_007, 'down')
    try {
      const error = await runScriptByStatement(
        db,
        script,
        `SET x402.down_covered = '["${rows[0]!.oid}"]'`,
      )
      expect(String((error as Error | undefined)?.cause ?? error)).toContain(
        'table public.victim: 3 row(s) deleted',
      )
      expect(await applied(db)).toContain(MIGRATION_007)
      await intact(db)
    } finally {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
    }
  })
})

describe.each(testTargets)('rows deleted from earlier backups during a down on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_008)

  it('rolls the down back, naming the backup', async () => {
    const { db } = database
    await victims(db)
    await sql`CREATE SCHEMA IF NOT EXISTS x402_backup`.execute(db)
    await sql`DROP TABLE IF EXISTS x402_backup.old_keys`.execute(db)
    await sql`CREATE TABLE x402_backup.old_keys AS SELECT x FROM victim`.execute(db)
    await hostileDrops(db, '', 'DELETE FROM x402_backup.old_keys;')
    try {
      const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(MigrationError)
      expect((error as Error).message).toContain('table x402_backup.old_keys: 3 row(s) deleted')
      expect(await applied(db)).toContain(MIGRATION_008)
      const { rows } = await sql<{
        n: string
      }>`SELECT count(*) AS n FROM x402_backup.old_keys`.execute(db)
      expect(Number(rows[0]!.n)).toBe(3)
    } finally {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
    }
  })
})

describe.each(testTargets)("the runner's first mark of a rollback in progress on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('is checked like a down: rows an event trigger deletes with it roll it back', async () => {
    const { db } = database
    await victims(db)
    await sql`
      CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF current_query() ILIKE '%reverting_since%' THEN DELETE FROM public.victim; END IF;
      END $fn$
    `.execute(db)
    await sql`CREATE EVENT TRIGGER hostile ON ddl_command_end WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION hostile()`.execute(
      db,
    )
    try {
      const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(Error)
      expect(String((error as Error).message)).toContain('table public.victim: 3 row(s) deleted')
      expect(await applied(db)).toContain(MIGRATION_005)
      await intact(db)
    } finally {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
    }
  })
})

describe.each(testTargets)("005's down steps after its check on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it.each([
    ['VALIDATE', "WHEN TAG IN ('ALTER TABLE')", '%VALIDATE CONSTRAINT%'],
    [
      'DROP INDEX',
      "WHEN TAG IN ('DROP INDEX')",
      '%DROP INDEX IF EXISTS idx_x402_resources_openrouter_model%',
    ],
  ])('%s: rows an event trigger deletes stop the rollback, named', async (_, when, query) => {
    const { db } = database
    await migrateTo(db, MIGRATION_005)
    await victims(db)
    await sql
      .raw(
        `CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          IF current_query() ILIKE '${query}' THEN DELETE FROM public.victim WHERE x > 1; END IF;
        END $fn$`,
      )
      .execute(db)
    await sql
      .raw(`CREATE EVENT TRIGGER hostile ON ddl_command_end ${when} EXECUTE FUNCTION hostile()`)
      .execute(db)
    try {
      const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(Error)
      expect(String((error as Error).message)).toContain('public.victim')
      expect(await applied(db)).toContain(MIGRATION_005)
    } finally {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
    }
  })
})

describe.each(testTargets)("a table dropped during 005's last step on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('rolls that step back, naming the table', async () => {
    const { db } = database
    await migrateTo(db, MIGRATION_005)
    await victims(db)
    await sql
      .raw(
        `CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          IF current_query() ILIKE '%DROP TABLE IF EXISTS user_openrouter_integrations%' THEN ${DROPS} END IF;
        END $fn$`,
      )
      .execute(db)
    await sql`CREATE EVENT TRIGGER hostile ON ddl_command_end WHEN TAG IN ('DROP TABLE') EXECUTE FUNCTION hostile()`.execute(
      db,
    )
    try {
      const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(Error)
      expect(String((error as Error).message)).toContain('public.victim: dropped')
      expect(String((error as Error).message)).toContain('public.victim2.secret: dropped')
      expect(await applied(db)).toContain(MIGRATION_005)
      await intact(db)
    } finally {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
    }
  })
})
