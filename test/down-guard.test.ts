import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { guardDown } from '../src/migrator/down-guard.js'
import {
  DataLossRefusal,
  exportMigrationSql,
  MigrationError,
  migrateDown,
  migrateTo,
  migrationStatus,
} from '../src/tooling.js'
import { createInstantResource, createResource, createUser } from './support/fixtures.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { cli, cliEnv } from './support/cli.js'
import { testTargets, useTestDatabase, withTestDatabase } from './support/test-database.js'
import { MIGRATION_001, MIGRATION_002, MIGRATION_005 } from './support/migration-names.js'

// Every `down` that would destroy data refuses before it changes anything, naming each table or
// column with its count; with the opt-in it backs the data up first, restorably. The runner
// learns what a transactional down destroys by rehearsing it in a savepoint; for 005, which runs
// outside a transaction, it refuses while rows of other tables reference the rows 005 deletes.

async function backupTables(
  db: Parameters<typeof migrationStatus>[0],
  prefix: string,
): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = 'x402_backup' AND table_name LIKE ${`${prefix}%`}
    ORDER BY table_name
  `.execute(db)
  return rows.map((row) => row.table_name)
}

async function applied(db: Parameters<typeof migrationStatus>[0]): Promise<string[]> {
  return (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
}

describe.each(testTargets)('the down guard on %s', (target) => {
  const database = useTestDatabase(target, 'latest')

  it('refuses to revert 002 while Claude keys are stored, naming the table and its count', async () => {
    const { db } = database
    const userId = await createUser(db)
    await sql`INSERT INTO x402_user_claude_configs (user_id, api_key_encrypted) VALUES (${userId}, 'aa:bb')`.execute(
      db,
    )
    const error = await migrateTo(db, MIGRATION_001, { env: {} }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(MigrationError)
    expect(error).toMatchObject({ migrationName: MIGRATION_002, direction: 'Down' })
    expect((error as Error).message).toContain(
      'Rolling back 002_add_claude_integration would destroy data: table public.x402_user_claude_configs (dropped): 1 row(s)',
    )
    expect((error as Error).message).toContain('Nothing was changed')
    expect((error as Error).message).toContain('--allow-data-loss')
    expect(await applied(db)).toContain(MIGRATION_002)
    const { rows } = await sql`SELECT api_key_encrypted FROM x402_user_claude_configs`.execute(db)
    expect(rows).toEqual([{ api_key_encrypted: 'aa:bb' }])
  })

  it('with the opt-in, backs the table up whole and it restores exactly', async () => {
    const { db } = database
    const { rows: before } =
      await sql`SELECT * FROM x402_user_claude_configs ORDER BY user_id`.execute(db)
    await migrateTo(db, MIGRATION_001, { allowDataLoss: true, env: {} })
    expect(await applied(db)).not.toContain(MIGRATION_002)
    const [backup] = await backupTables(db, '002_x402_user_claude_configs_')
    expect(backup).toBeDefined()
    await migrateTo(db, MIGRATION_002)
    await sql`INSERT INTO x402_user_claude_configs SELECT * FROM ${sql.id('x402_backup', backup!)}`.execute(
      db,
    )
    const { rows: after } =
      await sql`SELECT * FROM x402_user_claude_configs ORDER BY user_id`.execute(db)
    expect(after).toEqual(before)
  })

  it('refuses to revert 001 while resources hold pt_* values, naming each column', async () => {
    const { db } = database
    await migrateTo(db, MIGRATION_001, { allowDataLoss: true, env: {} })
    await createResource(db, { pt_system_prompt: 'keep me' } as never)
    const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ migrationName: MIGRATION_001, direction: 'Down' })
    expect((error as Error).message).toContain(
      'column public.x402_resources.pt_system_prompt (dropped): 1 value(s)',
    )
    expect(await applied(db)).toContain(MIGRATION_001)
  })

  it('refuses to drop x402_resources while it has rows', async () => {
    const { db } = database
    await migrateTo(db, '000_baseline_x402_resources', { allowDataLoss: true, env: {} })
    const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ migrationName: '000_baseline_x402_resources', direction: 'Down' })
    expect((error as Error).message).toMatch(
      /table public\.x402_resources \(dropped\): \d+ row\(s\)/,
    )
    expect(await applied(db)).toContain('000_baseline_x402_resources')
  })

  it('counts the rows that foreign keys of other tables delete or null with the rows a down deletes', async () => {
    const { db } = database
    await sql`CREATE TABLE guard_parent (id int PRIMARY KEY)`.execute(db)
    await sql`CREATE TABLE guard_cascade (parent int REFERENCES guard_parent ON DELETE CASCADE)`.execute(
      db,
    )
    await sql`CREATE TABLE guard_set_null (parent int REFERENCES guard_parent ON DELETE SET NULL)`.execute(
      db,
    )
    await sql`INSERT INTO guard_parent VALUES (1), (2)`.execute(db)
    await sql`INSERT INTO guard_cascade VALUES (1), (1), (2)`.execute(db)
    await sql`INSERT INTO guard_set_null VALUES (1)`.execute(db)
    const deletesOne = {
      up: async () => {},
      down: async (trx: typeof db) =>
        void (await sql`DELETE FROM guard_parent WHERE id = 1`.execute(trx)),
    }
    const error = await db
      .transaction()
      .execute((trx) => guardDown(trx, '009_test', deletesOne, { allowDataLoss: false }))
      .catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(DataLossRefusal)
    const message = (error as Error).message
    expect(message).toContain('table public.guard_parent: 1 row(s) deleted')
    expect(message).toContain('table public.guard_cascade: 2 row(s) deleted')
    expect(message).toContain('table public.guard_set_null: 1 row(s) changed')
    const { rows } = await sql<{
      n: number
    }>`SELECT (SELECT count(*) FROM guard_cascade)::int AS n`.execute(db)
    expect(rows).toEqual([{ n: 3 }])
    await db.transaction().execute(async (trx) => {
      expect(await guardDown(trx, '009_test', deletesOne, { allowDataLoss: true })).toHaveLength(3)
    })
    await sql`DROP TABLE guard_cascade, guard_set_null, guard_parent`.execute(db)
  })
})

describe.each(testTargets)('the runner and migrate:sql --down on %s', (target) => {
  const sent: string[] = []
  const database = useTestDatabase(target, MIGRATION_002, {
    onStatement: (statement) => void sent.push(statement),
  })

  it('run one guard: the runner sends the exported block, which refuses in the same words', async () => {
    const { db } = database
    const userId = await createUser(db)
    await sql`INSERT INTO x402_user_claude_configs (user_id, api_key_encrypted) VALUES (${userId}, 'aa:bb')`.execute(
      db,
    )
    sent.length = 0
    const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
    const refusal = (error as Error).cause
    expect(refusal).toBeInstanceOf(DataLossRefusal)
    const block = sent.find((statement) => statement.includes('DO $guard$'))
    expect(block).toBeDefined()
    const script = await exportMigrationSql(MIGRATION_002, 'down')
    expect(script).toContain(`\n${block};\n`)

    // The script, statement by statement as a client sends it, on the same database.
    const scriptError = await db
      .connection()
      .execute(async (connection) => {
        try {
          for (const statement of script.split(/;\n\n/))
            await sql.raw(statement).execute(connection)
        } finally {
          await sql`ROLLBACK`.execute(connection).catch(() => {})
        }
      })
      .catch((caught: unknown) => caught)
    expect(scriptError).toMatchObject({ cause: { message: (refusal as Error).message } })
    expect((refusal as Error).message).toMatch(
      /^Rolling back 002_add_claude_integration would destroy data: table public\.x402_user_claude_configs \(dropped\): 1 row\(s\)\. Nothing was changed\./,
    )
    expect(await applied(db)).toContain(MIGRATION_002)
  })
})

describe.each(testTargets)(
  'rolling back 005 with rows of other tables referencing its rows on %s',
  (target) => {
    const database = useTestDatabase(target, '005_add_openrouter_integration')

    it('refuses, even with the opt-in, naming each referencing table, its action and count; nothing changes', async () => {
      const { db } = database
      const instant = await createInstantResource(db)
      await sql`CREATE TABLE executions (id serial PRIMARY KEY, resource_id uuid REFERENCES x402_resources (id) ON DELETE CASCADE)`.execute(
        db,
      )
      await sql`CREATE TABLE payments (id serial PRIMARY KEY, resource_id uuid REFERENCES x402_resources (id) ON DELETE SET NULL)`.execute(
        db,
      )
      await sql`INSERT INTO executions (resource_id) VALUES (${instant}), (${instant})`.execute(db)
      await sql`INSERT INTO payments (resource_id) VALUES (${instant})`.execute(db)

      const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (caught: unknown) => caught,
      )
      expect(error).toMatchObject({
        migrationName: '005_add_openrouter_integration',
        direction: 'Down',
      })
      const message = (error as Error).message
      expect(message).toContain(
        'executions (ON DELETE CASCADE: rows deleted): 2 row(s) referencing public.x402_resources',
      )
      expect(message).toContain(
        'payments (ON DELETE SET NULL: links set to null): 1 row(s) referencing public.x402_resources',
      )
      expect(message).toContain('Nothing was changed')
      expect(await applied(db)).toContain('005_add_openrouter_integration')
      const { rows } = await sql<{ e: number; p: number }>`
      SELECT (SELECT count(*) FROM executions)::int AS e, (SELECT count(resource_id) FROM payments)::int AS p
    `.execute(db)
      expect(rows).toEqual([{ e: 2, p: 1 }])
      expect(await backupTables(db, '005_')).toEqual([])
    })
  },
)

describe.each(testTargets)(
  "rolling back 005 where a lesser login's table references its rows through a cast of its own on %s",
  (target) => {
    const database = useTestDatabase(target, '005_add_openrouter_integration')

    // The count of referencing rows compares each key column with the referenced one: a column of
    // the login's own type, with an implicit cast of its own to uuid, made that comparison run its
    // cast function as whoever rolls back (review revf F1, its related cast).
    it('refuses before counting, and never runs the cast function; nothing changes', async () => {
      const { db } = database
      // One the down deletes: the count compares only the keys of those.
      const resource = await createInstantResource(db)
      await withLesserRole(
        db,
        'x402_test_refs',
        async (role) => {
          await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
          await sql.raw(`GRANT REFERENCES ON public.x402_resources TO ${role}`).execute(db)
          await db.transaction().execute(async (trx) => {
            await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
            await sql.raw(`CREATE TYPE ${role}.t AS (v uuid)`).execute(trx)
            await sql
              .raw(
                `CREATE FUNCTION ${role}.to_uuid(${role}.t) RETURNS uuid LANGUAGE sql IMMUTABLE AS 'SELECT $1.v'`,
              )
              .execute(trx)
            await sql
              .raw(
                `CREATE CAST (${role}.t AS uuid) WITH FUNCTION ${role}.to_uuid(${role}.t) AS IMPLICIT`,
              )
              .execute(trx)
            await sql
              .raw(
                `CREATE TABLE ${role}.refs (resource_id ${role}.t REFERENCES public.x402_resources (id))`,
              )
              .execute(trx)
            await sql.raw(`INSERT INTO ${role}.refs VALUES (ROW('${resource}'))`).execute(trx)
            // Armed once its row is in: the key's own check ran the cast as the table's owner.
            await sql
              .raw(
                `CREATE OR REPLACE FUNCTION ${role}.to_uuid(${role}.t) RETURNS uuid LANGUAGE plpgsql AS $f$ BEGIN ${escalate(role)} RETURN $1.v; END $f$`,
              )
              .execute(trx)
          })

          const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
            (caught: unknown) => caught,
          )
          expect(await isSuperuser(db, role)).toBe(false)
          expect(error).toMatchObject({ migrationName: MIGRATION_005, direction: 'Down' })
          expect((error as Error).message).toContain(
            `column resource_id of ${role}.refs is of type ${role}.t, not uuid as public.x402_resources.id`,
          )
          expect((error as Error).message).toContain('Nothing was changed')
          expect((error as Error).message).toContain('SQLSTATE 42501')
          expect(await applied(db)).toContain(MIGRATION_005)
        },
        { login: true },
      )
    })
  },
)

describe.each(testTargets)(
  'rolling back 005 where a trigger of another table deletes with its rows on %s',
  (target) => {
    const database = useTestDatabase(target, '005_add_openrouter_integration')

    it('rolls back, even with the opt-in, naming the table whose rows went unreported; nothing changes', async () => {
      const { db } = database
      const instant = await createInstantResource(db)
      // No foreign key: only the trigger links the two, which no catalog query of keys can see.
      await sql`CREATE TABLE resource_log (id serial PRIMARY KEY, resource_id uuid)`.execute(db)
      await sql`
      CREATE FUNCTION forget_resource_log() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN DELETE FROM resource_log WHERE resource_id = OLD.id; RETURN OLD; END $$
    `.execute(db)
      await sql`
      CREATE TRIGGER forget_resource_log AFTER DELETE ON x402_resources
      FOR EACH ROW EXECUTE FUNCTION forget_resource_log()
    `.execute(db)
      await sql`INSERT INTO resource_log (resource_id) SELECT ${instant}::uuid FROM generate_series(1, 5)`.execute(
        db,
      )

      const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(MigrationError)
      const message = (error as Error).message
      expect(message).toMatch(/public\.resource_log: 5 row\(s\) deleted/)
      expect(message).toContain('Nothing was changed')
      expect(await applied(db)).toContain('005_add_openrouter_integration')
      const { rows } = await sql<{ logs: number; instant: number }>`
      SELECT (SELECT count(*) FROM resource_log)::int AS logs,
             (SELECT count(*) FROM x402_resources WHERE resource_type = 'openrouter_instant')::int AS instant
    `.execute(db)
      expect(rows).toEqual([{ logs: 5, instant: 1 }])
      expect(await backupTables(db, '005_')).toEqual([])
      // The run kept no mark: nothing of 005 was undone, and it still migrates forward.
      expect((await migrateTo(db, '006_rename_to_production_names')).length).toBe(1)
    })
  },
)

// Review revo O2: the guard counts what a down deletes with the server's statistics counters,
// which count nothing where track_counts is off (postgresql.conf, a database or role default, the
// URL's options): an event trigger's DELETE went unreported. The guard refuses to count blind.
describe.skipIf(!process.env.TEST_DATABASE_URL)('a down with track_counts off', () => {
  it.each([MIGRATION_002, MIGRATION_005])(
    'of %s refuses before it changes anything, naming the setting',
    async (migration) => {
      await withTestDatabase('postgres', async ({ db, location }) => {
        await migrateTo(db, migration, { env: {} })
        await sql`CREATE TABLE resource_log (id serial PRIMARY KEY)`.execute(db)
        await sql`INSERT INTO resource_log SELECT FROM generate_series(1, 5)`.execute(db)
        await sql`
        CREATE FUNCTION forget_resource_log() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN DELETE FROM public.resource_log; END $$
      `.execute(db)
        await sql`CREATE EVENT TRIGGER forget_resource_log ON sql_drop EXECUTE FUNCTION forget_resource_log()`.execute(
          db,
        )
        const { rows: named } = await sql<{
          name: string
        }>`SELECT current_database() AS name`.execute(db)
        await sql`ALTER DATABASE ${sql.id(named[0]!.name)} SET track_counts = off`.execute(db)
        try {
          const result = await cli(['down'], cliEnv(location))
          expect(result.code, result.stderr).toBe(1)
          expect(result.stderr).toContain('track_counts is off')
          expect(await applied(db)).toContain(MIGRATION_002)
          const { rows } = await sql<{
            n: number
          }>`SELECT count(*)::int AS n FROM resource_log`.execute(db)
          expect(rows).toEqual([{ n: 5 }])
        } finally {
          await sql`DROP EVENT TRIGGER forget_resource_log`.execute(db)
          await sql`ALTER DATABASE ${sql.id(named[0]!.name)} RESET track_counts`.execute(db)
        }
      })
    },
  )
})
