import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { readMigrationHistory } from '../src/migrator/history.js'
import { unfinishedRollback } from '../src/migrator/migrator.js'
import { migrateDown, migrateTo, recordedMigrationNames } from '../src/tooling.js'
import { createResource, createUser } from './support/fixtures.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, testTargets, withTestDatabase } from './support/test-database.js'

// rev-b7 F1 and F2: 005's down runs in steps outside a transaction. Its first step moves the
// stored keys and the openrouter_instant resources to x402_backup (with the data-loss opt-in) and
// puts the five-type CHECK back; its second validates that CHECK; its last drops the keys table,
// its trigger function and the two columns. Where rows of a resource type that the five-type
// CHECK rejects are there, or an object 005 did not make depends on what the last step drops (a
// view, a foreign key), a later step failed after the first had committed: the keys were out of
// their table and the rollback was wedged. Both are refused now before anything changes, the
// opt-in notwithstanding, naming what is in the way.

/** A database at 005 with one stored key and one openrouter_instant resource. */
async function at005WithData(db: Kysely<any>): Promise<void> {
  await migrateTo(db, MIGRATION_005, { env: {} })
  const userId = await createUser(db)
  await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'aa:bb')`.execute(
    db,
  )
  await createResource(db, { resource_type: 'openrouter_instant' } as any)
}

/** What a refused rollback must leave as it was. */
async function state(db: Kysely<any>) {
  const { rows } = await sql<{
    keys: string
    instant: string
    checks: string
    backups: string
  }>`
    SELECT (SELECT count(*) FROM user_openrouter_integrations) AS keys,
           (SELECT count(*) FROM x402_resources WHERE resource_type = 'openrouter_instant') AS instant,
           (SELECT string_agg(conname || '=' || pg_get_constraintdef(oid) || ':' || convalidated::text, ', ' ORDER BY conname)
              FROM pg_constraint WHERE conrelid = 'x402_resources'::regclass AND contype = 'c') AS checks,
           (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'x402_backup') AS backups
  `.execute(db)
  return rows[0]
}

async function refusedUnchanged(db: Kysely<any>): Promise<string> {
  const before = await state(db)
  const refused = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
    (error: unknown) => error,
  )
  expect(refused).toBeInstanceOf(Error)
  const message = String((refused as Error).message)
  expect(message).toContain('Nothing was changed')
  expect(message).toContain('even with --allow-data-loss')
  expect(message).not.toMatch(
    /interrupted|half removed|finished stay|rolling back again completes it/,
  )
  expect(message).toContain('stays applied, as it was: no step of its down ran')
  expect(await state(db)).toEqual(before)
  expect(await recordedMigrationNames(db)).toContain(MIGRATION_005)
  // No mark of a rollback under way: nothing refuses a run forward.
  expect((await readMigrationHistory(db, { times: false })).some((entry) => entry.reverting)).toBe(
    false,
  )
  expect(await unfinishedRollback(db, { env: {} })).toBeUndefined()
  return message
}

describe.each(testTargets)("005's down, before its first step, on %s", (target) => {
  it('refuses rows of a resource type that the five-type CHECK it puts back rejects, naming it', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await at005WithData(db)
      await sql`ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check,
                  ADD CONSTRAINT x402_resources_resource_type_check CHECK (resource_type IN
                  ('external', 'proxy', 'prompt', 'static', 'prompt_template', 'openrouter_instant', 'mcp'))`.execute(
        db,
      )
      await createResource(db, { resource_type: 'mcp' } as any)
      const message = await refusedUnchanged(db)
      expect(message).toContain("'mcp': 1")
    })
  })

  it('refuses a foreign key of another table to the keys table, though no row references a key', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await at005WithData(db)
      await sql`CREATE TABLE x402_key_checks (id bigserial PRIMARY KEY,
                  user_id uuid REFERENCES user_openrouter_integrations (user_id) ON DELETE CASCADE)`.execute(
        db,
      )
      const message = await refusedUnchanged(db)
      expect(message).toContain('x402_key_checks')
      expect(message).toContain('table user_openrouter_integrations')
    })
  })

  it('refuses a view that selects openrouter_model_id, and a trigger of another table using its function', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await at005WithData(db)
      await sql`CREATE VIEW listed_resources AS SELECT id, name, openrouter_model_id FROM x402_resources`.execute(
        db,
      )
      await sql`CREATE TABLE x402_notes (id int, updated_at timestamptz)`.execute(db)
      await sql`CREATE TRIGGER notes_updated_at BEFORE UPDATE ON x402_notes
                  FOR EACH ROW EXECUTE FUNCTION update_openrouter_integration_updated_at()`.execute(
        db,
      )
      const message = await refusedUnchanged(db)
      expect(message).toContain('view listed_resources')
      expect(message).toContain('column openrouter_model_id of table x402_resources')
      expect(message).toContain('notes_updated_at')
      // The way through the refusal names: the objects set aside, the rollback completes.
      await sql`DROP VIEW listed_resources`.execute(db)
      await sql`DROP TRIGGER notes_updated_at ON x402_notes`.execute(db)
      await migrateDown(db, { allowDataLoss: true, env: {} })
      expect(await recordedMigrationNames(db)).not.toContain(MIGRATION_005)
    })
  })
})

// rev-d2 F1, F3, F4 and the wording of F1: more that the pre-flight refuses before anything
// changes, and a refusal of a later step that no longer reads as one before the first.
describe.each(testTargets)("005's down, before its first step (rev-d2), on %s", (target) => {
  it('refuses columns of other tables that keep x402_resources rows (the type, its array, a domain over it), naming them', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await at005WithData(db)
      await sql`CREATE TABLE x402_resource_history (at timestamptz DEFAULT now(), r x402_resources)`.execute(
        db,
      )
      await sql`INSERT INTO x402_resource_history (r) SELECT x FROM x402_resources x`.execute(db)
      await sql`CREATE TABLE x402_resource_batches (rs x402_resources[])`.execute(db)
      await sql`CREATE DOMAIN x402_resource_row AS x402_resources`.execute(db)
      const message = await refusedUnchanged(db)
      expect(message).toContain('x402_resource_history')
      expect(message).toContain('x402_resource_batches')
      expect(message).toContain('x402_resource_row')
    })
  })

  it('refuses where what its last step drops belongs to an extension, naming it', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await at005WithData(db)
      await sql`ALTER EXTENSION plpgsql ADD FUNCTION update_openrouter_integration_updated_at()`.execute(
        db,
      )
      await sql`ALTER EXTENSION plpgsql ADD TABLE user_openrouter_integrations`.execute(db)
      const message = await refusedUnchanged(db)
      expect(message).toContain('extension plpgsql')
      expect(message).toContain('function update_openrouter_integration_updated_at()')
      expect(message).toContain('table user_openrouter_integrations')
    })
  })

  it('refuses a hand-made type CHECK that allows values beyond 005 (none in use), naming them', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await at005WithData(db)
      await sql`ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check,
                  ADD CONSTRAINT x402_resources_resource_type_check CHECK (resource_type IN
                  ('external', 'proxy', 'prompt', 'static', 'prompt_template', 'openrouter_instant', 'mcp', 'a2a'))`.execute(
        db,
      )
      const message = await refusedUnchanged(db)
      expect(message).toContain("'a2a', 'mcp'")
      expect(message).toContain('x402_resources_resource_type_check')
    })
  })

  it('a refusal of its last step on a first attempt does not say that no step ran', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateTo(db, MIGRATION_005, { env: {} })
      await sql`CREATE TABLE public.notes (id int PRIMARY KEY, body text NOT NULL)`.execute(db)
      await sql`INSERT INTO public.notes VALUES (1, 'kept')`.execute(db)
      await sql`
        CREATE FUNCTION public.hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
        BEGIN UPDATE public.notes SET body = 'overwritten'; END $fn$
      `.execute(db)
      await sql`CREATE EVENT TRIGGER hostile ON ddl_command_end WHEN TAG IN ('DROP INDEX') EXECUTE FUNCTION public.hostile()`.execute(
        db,
      )
      try {
        const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(Error)
        const message = (error as Error).message
        expect(message).toContain('public.notes')
        expect(message).not.toContain('no step of its down ran')
        expect(message).not.toContain('Nothing was changed')
        expect(message).toContain('This step was rolled back')
        expect(message).toContain('the steps of its down that finished stay')
      } finally {
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
      }
    })
  })
})

// rev-d2 F2: a row of a type outside the five, committed while step 1 waits for its lock on
// x402_resources, is counted again under that lock: step 1 rolls back instead of committing.
describe.each(testTargets.filter((target) => target === 'postgres'))(
  "005's down, a row of an extra type committed during its first step (rev-d2 F2), on %s",
  (target) => {
    it('rolls its first step back, naming the type', async () => {
      await withTestDatabase(target, async ({ db, location }) => {
        await at005WithData(db)
        // No type CHECK at all: nothing keeps an 'mcp' row out until the down puts one back.
        await sql`ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check`.execute(
          db,
        )
        const before = await state(db)
        const writer = new pg.Client({ connectionString: serverUrl(location) })
        const watcher = new pg.Client({ connectionString: serverUrl(location) })
        await writer.connect()
        await watcher.connect()
        try {
          await writer.query('BEGIN')
          await writer.query(
            `INSERT INTO x402_resources (name, resource_url, normalized_url, network, pay_to, resource_type)
             VALUES ('mcp', 'https://api.example.test/mcp', 'api.example.test/mcp', 'base',
                     '0x000000000000000000000000000000000000dEaD', 'mcp')`,
          )
          const run = migrateDown(db, {
            allowDataLoss: true,
            lockTimeoutMs: 30_000,
            env: {},
          }).catch((error: unknown) => error)
          // Commit once the down waits for its lock on x402_resources.
          for (let i = 0; ; i++) {
            const { rows } = await watcher.query(
              `SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = 'public.x402_resources'::regclass`,
            )
            if (rows[0].n > 0) break
            if (i > 1000) throw new Error('the down never waited for its lock on x402_resources')
            await new Promise((resolve) => setTimeout(resolve, 10))
          }
          await writer.query('COMMIT')
          const refused = await run
          expect(refused).toBeInstanceOf(Error)
          const message = String((refused as Error).message)
          expect(message).toContain("'mcp': 1")
          expect(message).toContain('Nothing was changed')
          expect(message).toContain('no step of its down ran')
          const after = await state(db)
          expect(after).toEqual(before)
          expect(await recordedMigrationNames(db)).toContain(MIGRATION_005)
          expect(await unfinishedRollback(db, { env: {} })).toBeUndefined()
        } finally {
          await writer.end().catch(() => undefined)
          await watcher.end().catch(() => undefined)
        }
      })
    })
  },
)

// rev-e2 F1: a trigger of x402_resources that puts a value back into the columns step 1 clears
// (production's "updated_at trigger that does more"): step 1 committed, step 2's VALIDATE failed
// on every retry, and every write of x402_resources failed the rollback CHECK.
describe.each(testTargets)("005's down where a trigger puts values back, on %s", (target) => {
  it('rolls its first step back, naming the trigger, and leaves everything as it was', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await at005WithData(db)
      await sql`UPDATE x402_resources SET openrouter_config = '{"a": 1}' WHERE resource_type <> 'openrouter_instant'`.execute(
        db,
      )
      await createResource(db, { resource_type: 'prompt', openrouter_config: { a: 1 } } as any)
      await sql`CREATE FUNCTION norm_cfg() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN NEW.openrouter_config := coalesce(NEW.openrouter_config, '{}'::jsonb); RETURN NEW; END $$`.execute(
        db,
      )
      await sql`CREATE TRIGGER norm_cfg BEFORE INSERT OR UPDATE ON x402_resources
                FOR EACH ROW EXECUTE FUNCTION norm_cfg()`.execute(db)
      const before = await state(db)
      const refused = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (error: unknown) => error,
      )
      const message = String((refused as Error).message)
      expect(message).toContain('norm_cfg')
      expect(message).toContain('Nothing was changed')
      expect(message).not.toMatch(/rolling back again completes it/)
      expect(await state(db)).toEqual(before)
      expect(await recordedMigrationNames(db)).toContain(MIGRATION_005)
      expect(await unfinishedRollback(db, { env: {} })).toBeUndefined()
      // Writes of x402_resources go on.
      await createResource(db, { resource_type: 'prompt' } as any)
    })
  })
})

// rev-f2 F1: x402_resources attached as a partition, or inheriting from a table with the two
// columns: step 3's DROP COLUMN fails (42P16 cannot drop inherited column) after steps 1 and 2.
describe.each(testTargets)("005's down where x402_resources has a parent, on %s", (target) => {
  it('refuses before its first step, naming the parent', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await at005WithData(db)
      await sql`CREATE TABLE resources_parent (LIKE x402_resources)`.execute(db)
      await sql`ALTER TABLE x402_resources INHERIT resources_parent`.execute(db)
      const message = await refusedUnchanged(db)
      expect(message).toContain('resources_parent')
    })
  })

  // rev-g F2: a child inherits the two columns; a view on the child's column failed step 3.
  it('refuses before its first step, naming a child table', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await at005WithData(db)
      await sql`CREATE TABLE resources_child () INHERITS (x402_resources)`.execute(db)
      await sql`CREATE VIEW child_models AS SELECT openrouter_model_id FROM resources_child`.execute(
        db,
      )
      const message = await refusedUnchanged(db)
      expect(message).toContain('resources_child')
    })
  })
})
