import { type Kysely, sql } from 'kysely'
import { describe, expect, it, type TestContext } from 'vitest'

import {
  exportMigrationSql,
  MigrationError,
  migrateDown,
  migrateTo,
  migrationStatus,
} from '../src/tooling.js'
import { createInstantResource, createUser } from './support/fixtures.js'
import { MIGRATION_002, MIGRATION_005 } from './support/migration-names.js'
import { testTargets, useTestDatabase } from './support/test-database.js'
import { runScriptByStatement } from './support/exported-script.js'

// A backup that the opt-in reports must hold what was copied or moved into it: an event trigger
// that empties a new table of x402_backup, or makes it swallow its inserts, would otherwise turn
// "backed up" into "deleted". Before COMMIT each backup is counted against what went into it,
// and the down rolls back, naming it; later statements of the down are watched for it too.

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

async function count(db: Kysely<any>, from: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM ${sql.raw(from)}`.execute(db)
  return Number(rows[0]!.n)
}

/**
 * An event trigger that runs `action` (a format() string, %s the table) on each table that a
 * statement tagged `tag` creates in x402_backup whose qualified name is LIKE `like`.
 */
async function onNewBackups(
  db: Kysely<any>,
  action: string | readonly string[],
  like = '%',
  tag = 'CREATE TABLE AS',
): Promise<void> {
  await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
  // Each action gets the table as its first argument, and a name of its own (sink_<md5>) as its second.
  const actions = (typeof action === 'string' ? [action] : action).map(
    (each) =>
      `EXECUTE format(${literal(each)}, r.object_identity, 'sink_' || md5(r.object_identity));`,
  )
  await sql
    .raw(
      `CREATE OR REPLACE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      DECLARE r record;
      BEGIN
        FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
                  WHERE schema_name = 'x402_backup' AND object_type = 'table' AND object_identity LIKE ${literal(like)} LOOP
          ${actions.join('\n          ')}
        END LOOP;
      END $fn$`,
    )
    .execute(db)
  await sql
    .raw(
      `CREATE EVENT TRIGGER hostile ON ddl_command_end WHEN TAG IN (${literal(tag)}) EXECUTE FUNCTION hostile()`,
    )
    .execute(db)
}

/**
 * An event trigger that runs `action` (a format() string, %s the table; by default, deletes every
 * row) on each table of x402_backup named LIKE `like` after each `tag` statement.
 */
async function emptyBackupsOn(
  db: Kysely<any>,
  tag: string,
  action = 'DELETE FROM %s',
  like = '%',
): Promise<void> {
  await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
  await sql
    .raw(
      `CREATE OR REPLACE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      DECLARE r record;
      BEGIN
        FOR r IN SELECT format('%I.%I', table_schema, table_name) AS name FROM information_schema.tables
                  WHERE table_schema = 'x402_backup' AND table_name LIKE ${literal(like)} LOOP
          EXECUTE format(${literal(action)}, r.name);
        END LOOP;
      END $fn$`,
    )
    .execute(db)
  await sql
    .raw(
      `CREATE EVENT TRIGGER hostile ON ddl_command_end WHEN TAG IN (${literal(tag)}) EXECUTE FUNCTION hostile()`,
    )
    .execute(db)
}

/**
 * Event triggers that change what a new backup is rather than what it holds, each with the
 * refusal that names it and the last server version (server_version_num) where it can: UNLOGGED,
 * which a crash or a failover to a standby empties; a view over a temp table of the runner's
 * session, gone when that session ends (PostgreSQL 15 and older still turn an empty table into a
 * view with a rule "_RETURN"; the rows the copy put there are moved to the temp table first).
 */
const UNMADE_BACKUPS: readonly (readonly [string, readonly string[], string, number])[] = [
  [
    'makes UNLOGGED',
    ['ALTER TABLE %1$s SET UNLOGGED'],
    'was made UNLOGGED \\(a crash would empty it\\)',
    Infinity,
  ],
  [
    "turns into a view over a temp table of the runner's session",
    [
      'CREATE TEMP TABLE %2$I AS TABLE %1$s',
      'DELETE FROM %1$s',
      'CREATE RULE "_RETURN" AS ON SELECT TO %1$s DO INSTEAD SELECT * FROM pg_temp.%2$I',
    ],
    'is no longer a table \\(a view\\)',
    159_999,
  ],
]

/** Skips the test where the server is past `last` (a server_version_num). */
async function skipPast(db: Kysely<any>, last: number, context: TestContext): Promise<void> {
  const { rows } = await sql<{
    version: number
  }>`SELECT current_setting('server_version_num')::int AS version`.execute(db)
  const version = rows[0]!.version
  if (version > last)
    context.skip(
      `PostgreSQL 16 and later no longer turn a table into a view with a rule; this server is ${version}`,
    )
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

function messageOf(error: unknown): string {
  expect(error).toBeInstanceOf(Error)
  return String((error as Error).message)
}

/** A down with the data-loss opt-in, by the runner; the error it ended with. */
async function downAllowingLoss(db: Kysely<any>): Promise<unknown> {
  return migrateDown(db, { allowDataLoss: true, env: {} }).catch((caught: unknown) => caught)
}

/** A migration's exported down script, switched to allow data loss as its comment says. */
async function downScriptAllowingLoss(name: string): Promise<string> {
  return (await exportMigrationSql(name, 'down')).replace(
    'x402.allow_data_loss = off',
    'x402.allow_data_loss = on',
  )
}

/** 002 still applied, its three keys in place, and no backup of it left behind. */
async function expectClaudeIntact(db: Kysely<any>): Promise<void> {
  expect(await applied(db)).toContain(MIGRATION_002)
  expect(await count(db, 'x402_user_claude_configs')).toBe(3)
  expect(await backupTables(db, '002_%')).toEqual([])
}

/** 002 applied, no hostile event trigger, and three Claude keys stored. */
async function seedClaude(db: Kysely<any>): Promise<void> {
  await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
  await migrateTo(db, MIGRATION_002)
  await sql`DELETE FROM x402_user_claude_configs`.execute(db)
  for (let i = 0; i < 3; i++) {
    const user = await createUser(db)
    await sql`INSERT INTO x402_user_claude_configs (user_id, api_key_encrypted) VALUES (${user}, 'aa:bb')`.execute(
      db,
    )
  }
}

describe.each(testTargets)(
  'a backup of the generic guard emptied as it is made on %s',
  (target) => {
    const database = useTestDatabase(target, MIGRATION_002)

    async function refusedAndIntact(db: Kysely<any>, error: unknown): Promise<void> {
      const message = messageOf(error)
      expect(message).toMatch(
        /x402_backup\."002_x402_user_claude_configs_\d{8}T\d{9}" holds 0 row\(s\), not the 3/,
      )
      expect(message).toContain('Nothing was changed')
      await expectClaudeIntact(db)
    }

    it('by the runner: rolls the down back, naming the backup', async () => {
      const { db } = database
      await seedClaude(db)
      await onNewBackups(db, 'DELETE FROM %s')
      try {
        const error = await downAllowingLoss(db)
        expect(error).toBeInstanceOf(MigrationError)
        await refusedAndIntact(db, error)
      } finally {
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      }
    })

    it('a backup whose rows are rewritten as it is made: rolls the down back, naming it', async () => {
      const { db } = database
      await seedClaude(db)
      await onNewBackups(db, "UPDATE %s SET api_key_encrypted = 'gone'")
      try {
        const error = await downAllowingLoss(db)
        expect(messageOf(error)).toMatch(
          /x402_backup\."002_x402_user_claude_configs_\d{8}T\d{9}" holds other rows than the 3 copied into it/,
        )
        expect(await applied(db)).toContain(MIGRATION_002)
        const { rows } = await sql<{
          key: string
        }>`SELECT DISTINCT api_key_encrypted AS key FROM x402_user_claude_configs`.execute(db)
        expect(rows).toEqual([{ key: 'aa:bb' }])
        expect(await backupTables(db, '002_%')).toEqual([])
      } finally {
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      }
    })

    it("by the down's own statements after the copy: rolls the down back, naming the backup", async () => {
      const { db } = database
      await seedClaude(db)
      await emptyBackupsOn(db, 'DROP TABLE')
      try {
        const error = await downAllowingLoss(db)
        // The watch is noted before the guard makes its backups: the last check counts them.
        expect(messageOf(error)).toMatch(
          /x402_backup\."002_x402_user_claude_configs_\d{8}T\d{9}" holds 0 row\(s\), not the 3 copied into it/,
        )
        expect(await applied(db)).toContain(MIGRATION_002)
        expect(await count(db, 'x402_user_claude_configs')).toBe(3)
      } finally {
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      }
    })

    it("emptied by TRUNCATE in the down's own statements after the copy: rolls the down back, naming the backup", async () => {
      const { db } = database
      await seedClaude(db)
      // TRUNCATE of a table made in the same transaction keeps its storage and counts no row.
      await emptyBackupsOn(db, 'DROP TABLE', 'TRUNCATE %s')
      try {
        const error = await downAllowingLoss(db)
        expect(messageOf(error)).toMatch(
          /x402_backup\."002_x402_user_claude_configs_\d{8}T\d{9}" holds 0 row\(s\), not the 3 copied into it/,
        )
        await expectClaudeIntact(db)
      } finally {
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      }
    })

    it.for(UNMADE_BACKUPS)(
      'a backup that an event trigger %s as it is made: rolls the down back, naming it; the rows stay',
      async ([, actions, refusal, last], context) => {
        const { db } = database
        await skipPast(db, last, context)
        await seedClaude(db)
        await onNewBackups(db, actions)
        try {
          const error = await downAllowingLoss(db)
          const message = messageOf(error)
          expect(message).toMatch(
            new RegExp(`x402_backup\\."002_x402_user_claude_configs_\\d{8}T\\d{9}" ${refusal}`),
          )
          expect(message).toContain('Nothing was changed')
          await expectClaudeIntact(db)
        } finally {
          await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
          await sql`DROP SCHEMA IF EXISTS x402_backup CASCADE`.execute(db)
        }
      },
    )

    // Last: a script that went through leaves the history as it was, with 002's table gone.
    it('by the exported script: rolls it back, naming the backup', async () => {
      const { db } = database
      await seedClaude(db)
      const script = await downScriptAllowingLoss(MIGRATION_002)
      await onNewBackups(db, 'DELETE FROM %s')
      try {
        const error = await runScriptByStatement(db, script)
        await refusedAndIntact(db, (error as Error | undefined)?.cause ?? error)
      } finally {
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      }
    })

    // The guard's own backups are DDL: an event trigger they fire is watched like the down's.
    it.each([['the runner'], ['the exported script']])(
      'an event trigger of the backups that deletes rows of another table, by %s: rolls the down back, naming it',
      async (by) => {
        const { db } = database
        await seedClaude(db)
        await sql`DROP TABLE IF EXISTS public.notes`.execute(db)
        await sql`CREATE TABLE public.notes (id int PRIMARY KEY)`.execute(db)
        await sql`INSERT INTO public.notes SELECT generate_series(1, 25)`.execute(db)
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
        await sql`CREATE OR REPLACE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
          BEGIN DELETE FROM public.notes; END $fn$`.execute(db)
        await sql`CREATE EVENT TRIGGER hostile ON ddl_command_end WHEN TAG IN ('CREATE SCHEMA', 'CREATE TABLE AS')
          EXECUTE FUNCTION hostile()`.execute(db)
        try {
          const error =
            by === 'the runner'
              ? await downAllowingLoss(db)
              : await runScriptByStatement(db, await downScriptAllowingLoss(MIGRATION_002))
          expect(messageOf(error)).toMatch(/table public\.notes: 25 row\(s\) deleted/)
          expect(await count(db, 'public.notes')).toBe(25)
          await expectClaudeIntact(db)
        } finally {
          await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
        }
      },
    )
  },
)

describe.each(testTargets)(
  "005's backups emptied as its down moves rows into them on %s",
  (target) => {
    const database = useTestDatabase(target, MIGRATION_005)

    /** 005 applied, no hostile event trigger, and a stored key and an openrouter_instant resource. */
    async function seed005(db: Kysely<any>): Promise<void> {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      await migrateTo(db, MIGRATION_005)
      const user = await createUser(db)
      await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${user}, 'v2:k:n:c:t')`.execute(
        db,
      )
      await createInstantResource(db)
    }

    const instant = "x402_resources WHERE resource_type = 'openrouter_instant'"

    /** Without the event trigger, ends what the test left (a rollback half done, or not begun) and its backups. */
    async function cleanUp(db: Kysely<any>): Promise<void> {
      await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      await migrateDown(db, { allowDataLoss: true, env: {} }).catch(() => {})
      await sql`DROP SCHEMA IF EXISTS x402_backup CASCADE`.execute(db)
    }

    const keys005 = ['the keys', '005_user_openrouter_integrations', 'encrypted_api_key'] as const
    const resources005 = ['the resources', '005_x402_resources', 'name'] as const

    // A BEFORE INSERT trigger on a new backup that keeps no row, or changes a column of each.
    it.each([
      ['swallows the inserts into', ...keys005, 'RETURN NULL', 'holds 0 row\\(s\\), not the \\d+'],
      [
        'swallows the inserts into',
        ...resources005,
        'RETURN NULL',
        'holds 0 row\\(s\\), not the \\d+',
      ],
      [
        'rewrites the rows moved into',
        ...keys005,
        "NEW.%s := 'gone'; RETURN NEW",
        'holds other rows than the \\d+ moved into it',
      ],
      [
        'rewrites the rows moved into',
        ...resources005,
        "NEW.%s := 'gone'; RETURN NEW",
        'holds other rows than the \\d+ moved into it',
      ],
    ])(
      'a trigger that %s %s: rolls the down back, naming the backup; nothing changes',
      async (_, __, backup, column, body, refusal) => {
        const { db } = database
        await seed005(db)
        const keys = await count(db, 'user_openrouter_integrations')
        const resources = await count(db, instant)
        await sql
          .raw(
            `CREATE OR REPLACE FUNCTION hostile_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN ${body.replace('%s', column)}; END $fn$`,
          )
          .execute(db)
        await onNewBackups(
          db,
          'CREATE TRIGGER hostile BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION hostile_insert()',
          `x402_backup."${backup}_%`,
        )
        try {
          const error = await downAllowingLoss(db)
          const message = messageOf(error)
          expect(message).toMatch(new RegExp(`x402_backup\\."${backup}_\\d{8}T\\d{9}" ${refusal}`))
          expect(message).toContain('Nothing was changed')
          expect(await applied(db)).toContain(MIGRATION_005)
          expect(await count(db, 'user_openrouter_integrations')).toBe(keys)
          expect(await count(db, instant)).toBe(resources)
          expect(
            await count(db, `user_openrouter_integrations WHERE encrypted_api_key = 'gone'`),
          ).toBe(0)
          expect(await backupTables(db, '005_%')).toEqual([])
        } finally {
          await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
        }
      },
    )

    // An event trigger of the first step's own ALTER TABLE, after the rows were moved: the check
    // that each backup holds them comes last in every transaction of the down.
    it.each([
      ['drops', 'DROP TABLE %s', 'was dropped'],
      ['truncates', 'TRUNCATE %s', 'holds 0 row\\(s\\), not the \\d+ moved into it'],
    ])(
      "an event trigger of the first step's ALTER TABLE that %s the keys' backup: rolls that step back, named",
      async (_, action, refusal) => {
        const { db } = database
        await seed005(db)
        const keys = await count(db, 'user_openrouter_integrations')
        await emptyBackupsOn(db, 'ALTER TABLE', action, '005_user_openrouter_integrations_%')
        try {
          const error = await downAllowingLoss(db)
          const message = messageOf(error)
          expect(message).toMatch(
            new RegExp(`x402_backup\\."005_user_openrouter_integrations_\\d{8}T\\d{9}" ${refusal}`),
          )
          expect(message).toContain('Nothing was changed')
          expect(await applied(db)).toContain(MIGRATION_005)
          expect(await count(db, 'user_openrouter_integrations')).toBe(keys)
          expect(await count(db, instant)).toBeGreaterThan(0)
          expect(await backupTables(db, '005_%')).toEqual([])
        } finally {
          await cleanUp(db)
        }
      },
    )

    // The last step's DROP TABLE, once the first step's backup committed: that backup is kept.
    it.each([
      ['drops', 'DROP TABLE %s'],
      ['truncates', 'TRUNCATE %s'],
    ])(
      "an event trigger of the last step's DROP TABLE that %s the first step's backup: rolls that step back, named",
      async (_, action) => {
        const { db } = database
        await seed005(db)
        const keys = await count(db, 'user_openrouter_integrations')
        await emptyBackupsOn(db, 'DROP TABLE', action, '005_user_openrouter_integrations_%')
        try {
          const error = await downAllowingLoss(db)
          expect(messageOf(error)).toMatch(
            /x402_backup\."005_user_openrouter_integrations_\d{8}T\d{9}"/,
          )
          expect(await applied(db)).toContain(MIGRATION_005)
          const [backup] = await backupTables(db, '005_user_openrouter_integrations_%')
          expect(backup).toBeDefined()
          expect(await count(db, `x402_backup."${backup}"`)).toBe(keys)
        } finally {
          await cleanUp(db)
        }
      },
    )

    it.for(UNMADE_BACKUPS)(
      'backups that an event trigger %s as they are made: roll the first step back, named; the keys stay',
      async ([, actions, refusal, last], context) => {
        const { db } = database
        await skipPast(db, last, context)
        await seed005(db)
        const keys = await count(db, 'user_openrouter_integrations')
        const resources = await count(db, instant)
        await onNewBackups(db, actions)
        try {
          const error = await downAllowingLoss(db)
          const message = messageOf(error)
          for (const backup of ['005_user_openrouter_integrations', '005_x402_resources'])
            expect(message).toMatch(
              new RegExp(`x402_backup\\."${backup}_\\d{8}T\\d{9}" ${refusal}`),
            )
          expect(message).toContain('Nothing was changed')
          expect(await applied(db)).toContain(MIGRATION_005)
          expect(await count(db, 'user_openrouter_integrations')).toBe(keys)
          expect(await count(db, instant)).toBe(resources)
          expect(await backupTables(db, '005_%')).toEqual([])
        } finally {
          await cleanUp(db)
        }
      },
    )

    it("rows deleted from its backups by the down's later statements roll that step back, named", async () => {
      const { db } = database
      await seed005(db)
      const keys = await count(db, 'user_openrouter_integrations')
      await emptyBackupsOn(db, 'ALTER TABLE')
      try {
        const error = await downAllowingLoss(db)
        expect(messageOf(error)).toMatch(
          /x402_backup\."005_user_openrouter_integrations_\d{8}T\d{9}": rows deleted/,
        )
        expect(await applied(db)).toContain(MIGRATION_005)
        expect(await count(db, 'user_openrouter_integrations')).toBe(keys)
      } finally {
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      }
    })
  },
)
