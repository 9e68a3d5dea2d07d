import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  baselineMigrations,
  checkDrift,
  migrateDown,
  migrateTo,
  migrateToLatest,
  planRepair,
  readAcceptedDifferences,
  recordedMigrationNames,
} from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { unfinishedRollback } from '../src/migrator/migrator.js'
import {
  createProductionTodayTestDatabase,
  PRODUCTION_TODAY_ADOPTION_POINT,
} from './support/production-today.js'
import { testTargets, withTestDatabase } from './support/test-database.js'
import { backupStampsOf005, restore005AsDocumented } from './support/documented-restore.js'

// Production today, adopted at 006 (where the module's history reaches production's names), can
// be rolled back to the plan's names and migrated forward again, once no function body names the
// tables by production's names (a rename does not follow into a body). 006's down gives the records of
// the accepted differences the plan's names back. Before, it rewrote every record whose definition
// named a table of public, changed or not, and the check of what a down changed refused its own
// writes as data it did not report: no rollback of 006 could succeed on adopted production.

const UP_TO_005 = migrationNames.filter((name) => name < PRODUCTION_TODAY_ADOPTION_POINT)

describe.each(testTargets)('rolling back adopted production today on %s', (target) => {
  it('rolls back 008, 007 and 006 (with the data-loss opt-in), the records following the names, and migrates forward again', async () => {
    const database = await createProductionTodayTestDatabase(target)
    const db = database.db as Kysely<any>
    try {
      const plan = await planRepair(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      for (const statement of plan.statements) await sql.raw(statement).execute(db)
      // Production's own index on a table 006 renames: an accepted difference whose key and
      // definition name that table.
      await sql`CREATE INDEX production_models_by_name ON x402_openrouter_models (display_name)`.execute(
        db,
      )
      await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      await migrateToLatest(db)
      const adopted = await readAcceptedDifferences(db)
      expect(adopted.map(({ key }) => key)).toContain(
        'indexes x402_openrouter_models.production_models_by_name',
      )

      // 006's down puts NOT NULL back: the catalog's rows get their values first, as it asks.
      await sql`UPDATE x402_openrouter_models SET is_active = coalesce(is_active, false),
                  created_at = coalesce(created_at, now()), updated_at = coalesce(updated_at, now())`.execute(
        db,
      )
      for (let step = 0; step < 2; step++) await migrateDown(db, { allowDataLoss: true, env: {} })
      // Production's own soft_delete_user_tx names x402_user_openrouter_integrations in its body,
      // which a rename does not follow: 006's down refuses, naming it, rather than break it.
      const refused = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (error: unknown) => error,
      )
      expect(String((refused as Error).message)).toContain(
        'public.soft_delete_user_tx(uuid) (names x402_user_openrouter_integrations)',
      )
      expect(String((refused as Error).message)).toContain('Nothing was changed')
      expect(await recordedMigrationNames(db)).toContain(PRODUCTION_TODAY_ADOPTION_POINT)
      // The operator's way through: the function set aside for the rollback, and put back after.
      const { rows } = await sql<{
        definition: string
      }>`SELECT pg_get_functiondef('public.soft_delete_user_tx(uuid)'::regprocedure) AS definition`.execute(
        db,
      )
      await sql`CREATE OR REPLACE FUNCTION public.soft_delete_user_tx(target_user uuid) RETURNS void
                  LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'set aside during a rollback'; END $$`.execute(
        db,
      )
      await migrateDown(db, { allowDataLoss: true, env: {} })
      expect(await recordedMigrationNames(db)).toEqual(UP_TO_005)

      const reverted = await readAcceptedDifferences(db)
      const index = reverted.find(
        ({ key }) => key === 'indexes ai_models.production_models_by_name',
      )
      expect(JSON.stringify(index?.live)).toContain(' ON public.ai_models ')
      // The records of the tables 006 does not rename are as they were.
      const untouched = (records: typeof adopted) =>
        records.filter(({ key }) => key.includes(' x402_resources'))
      expect(untouched(reverted)).toEqual(untouched(adopted))

      await migrateToLatest(db)
      await sql.raw(rows[0]!.definition).execute(db)
      expect(await readAcceptedDifferences(db)).toEqual(adopted)
      const report = await checkDrift(db, { decisions: [] })
      expect(report.schema?.conflict).toEqual([])
      expect(report.ok).toBe(true)
    } finally {
      await database.destroy()
    }
  })

  // rev-b7 F2: production's view public_x402_resources selects openrouter_model_id, which the
  // last step of 005's down drops. Its first step moved every key and instant resource before the
  // drop failed, and the rollback was wedged: now it refuses before anything, naming the view.
  it("refuses 005's down before its first step where production's view selects a column it drops", async () => {
    const database = await createProductionTodayTestDatabase(target)
    const db = database.db as Kysely<any>
    try {
      const plan = await planRepair(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      for (const statement of plan.statements) await sql.raw(statement).execute(db)
      await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      await migrateToLatest(db)
      await sql`UPDATE x402_openrouter_models SET is_active = coalesce(is_active, false),
                  created_at = coalesce(created_at, now()), updated_at = coalesce(updated_at, now())`.execute(
        db,
      )
      for (let step = 0; step < 2; step++) await migrateDown(db, { allowDataLoss: true, env: {} })
      await sql`CREATE OR REPLACE FUNCTION public.soft_delete_user_tx(target_user uuid) RETURNS void
                  LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'set aside during a rollback'; END $$`.execute(
        db,
      )
      await migrateDown(db, { allowDataLoss: true, env: {} })
      expect(await recordedMigrationNames(db)).toEqual(UP_TO_005)
      // A production where no row of another table references an openrouter_instant resource
      // (the runner refuses those first): the references removed from this copy.
      await sql`
        DO $$ DECLARE f record; BEGIN
          FOR f IN SELECT c.conrelid::regclass AS t, a.attname FROM pg_constraint c
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                    WHERE c.contype = 'f' AND c.confrelid = 'x402_resources'::regclass LOOP
            EXECUTE format('DELETE FROM %s WHERE %I IN (SELECT id FROM x402_resources WHERE resource_type = ''openrouter_instant'')', f.t, f.attname);
          END LOOP;
        END $$`.execute(db)
      const counts = sql<{ keys: string; instant: string }>`
        SELECT (SELECT count(*) FROM user_openrouter_integrations) AS keys,
               (SELECT count(*) FROM x402_resources WHERE resource_type = 'openrouter_instant') AS instant`
      const before = (await counts.execute(db)).rows[0]!
      expect(Number(before.keys)).toBeGreaterThan(0)
      const refused = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (error: unknown) => error,
      )
      const message = String((refused as Error).message)
      expect(message).toContain('view public_x402_resources')
      expect(message).toContain('Nothing was changed')
      expect((await counts.execute(db)).rows[0]).toEqual(before)
      expect(await recordedMigrationNames(db)).toEqual(UP_TO_005)
      expect(await unfinishedRollback(db, { env: {} })).toBeUndefined()
    } finally {
      await database.destroy()
    }
  })

  // review revb F2: production's x402_resources has a generated search_vector, and its columns in
  // another order than 005's up gives them back. docs/rollback.md's restore of 005's backups, run
  // as written once the migrations are applied again (006 renames the keys table to production's
  // name), puts every key and resource back.
  it("restores 005's backups as docs/rollback.md says, at production's names again", async () => {
    const database = await createProductionTodayTestDatabase(target)
    const db = database.db as Kysely<any>
    try {
      const plan = await planRepair(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      for (const statement of plan.statements) await sql.raw(statement).execute(db)
      await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      await migrateToLatest(db)
      await sql`UPDATE x402_openrouter_models SET is_active = coalesce(is_active, false),
                  created_at = coalesce(created_at, now()), updated_at = coalesce(updated_at, now())`.execute(
        db,
      )
      for (let step = 0; step < 2; step++) await migrateDown(db, { allowDataLoss: true, env: {} })
      // Set aside for the rollback, as docs/rollback.md says: the function that names the keys
      // table by production's name, and the view that selects a column 005's down drops.
      await sql`CREATE OR REPLACE FUNCTION public.soft_delete_user_tx(target_user uuid) RETURNS void
                  LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'set aside during a rollback'; END $$`.execute(
        db,
      )
      await migrateDown(db, { allowDataLoss: true, env: {} })
      await sql`DROP VIEW public_x402_resources`.execute(db)
      // No row of another table references an openrouter_instant resource (the runner refuses those).
      await sql`
        DO $$ DECLARE f record; BEGIN
          FOR f IN SELECT c.conrelid::regclass AS t, a.attname FROM pg_constraint c
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                    WHERE c.contype = 'f' AND c.confrelid = 'x402_resources'::regclass LOOP
            EXECUTE format('DELETE FROM %s WHERE %I IN (SELECT id FROM x402_resources WHERE resource_type = ''openrouter_instant'')', f.t, f.attname);
          END LOOP;
        END $$`.execute(db)
      const everyRow = async (keysTable: string) => ({
        keys: (
          await sql<{
            row: Record<string, unknown>
          }>`SELECT to_jsonb(k) AS row FROM ${sql.table(keysTable)} k ORDER BY user_id`.execute(db)
        ).rows,
        resources: (
          await sql<{
            row: Record<string, unknown>
          }>`SELECT to_jsonb(r) - 'updated_at' AS row FROM x402_resources r ORDER BY id`.execute(db)
        ).rows,
      })
      const before = await everyRow('user_openrouter_integrations')
      expect(before.keys.length).toBeGreaterThan(0)
      expect(before.resources[0]!.row).toHaveProperty('search_vector')

      await migrateDown(db, { allowDataLoss: true, env: {} }) // 005
      await migrateToLatest(db)
      const stamps = await backupStampsOf005(db)
      expect(stamps).toHaveLength(1)
      await restore005AsDocumented(db, stamps[0]!)

      // updated_at aside: production's trigger stamps the resources the restore's UPDATE fills again.
      expect(await everyRow('x402_user_openrouter_integrations')).toEqual(before)
    } finally {
      await database.destroy()
    }
  })

  it('still refuses where a trigger changes other records of the accepted differences while 006 renames its own', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateTo(db, '005_add_openrouter_integration', { env: {} })
      await sql`CREATE INDEX production_models_by_name ON ai_models (display_name)`.execute(db)
      await sql`CREATE INDEX production_resources_by_name ON x402_resources (name)`.execute(db)
      await baselineMigrations(db, '005', { decisions: [] })
      await migrateToLatest(db, { env: {} })
      await sql
        .raw(
          `
        CREATE FUNCTION public.touch_other_records() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
          IF pg_trigger_depth() = 1 THEN
            UPDATE x402_migrations.accepted_schema_difference SET field = field WHERE key LIKE '% x402_resources%';
          END IF;
          RETURN NULL;
        END $f$
      `,
        )
        .execute(db)
      await sql
        .raw(
          `
        CREATE TRIGGER touch_other_records AFTER UPDATE ON x402_migrations.accepted_schema_difference
          FOR EACH STATEMENT EXECUTE FUNCTION public.touch_other_records();
      `,
        )
        .execute(db)
      await migrateDown(db, { env: {} })
      await migrateDown(db, { env: {} })
      const refused = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (e: unknown) => e,
      )
      expect(String((refused as Error).message)).toMatch(
        /^Rolling back 006_rename_to_production_names deleted, changed or dropped data it did not report or back up, .*table x402_migrations\.accepted_schema_difference: \d+ row\(s\) changed/,
      )
      expect(await recordedMigrationNames(db)).toContain(PRODUCTION_TODAY_ADOPTION_POINT)
    })
  })

  // A body names a table as text: one of the tables 006 renames, unqualified, in public, or
  // quoted, is refused, naming the function; a table of that name in another schema is not one.
  it("006's up refuses a function whose body names ai_models, and not one that reads another schema's ai_models", async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateTo(db, '005_add_openrouter_integration', { env: {} })
      await sql`CREATE SCHEMA reporting`.execute(db)
      await sql`CREATE TABLE reporting.ai_models (id integer)`.execute(db)
      await sql`CREATE FUNCTION reporting.models_seen() RETURNS bigint LANGUAGE plpgsql
                  AS $$ BEGIN RETURN (SELECT count(*) FROM reporting.ai_models); END $$`.execute(db)
      await sql`CREATE FUNCTION public.models_listed() RETURNS bigint LANGUAGE plpgsql
                  AS $$ BEGIN RETURN (SELECT count(*) FROM public."ai_models"); END $$`.execute(db)
      const refused = await migrateToLatest(db, { env: {} }).catch((error: unknown) => error)
      const message = String((refused as Error).message)
      expect(message).toContain('public.models_listed() (names ai_models)')
      expect(message).not.toContain('models_seen')
      await sql`DROP FUNCTION public.models_listed()`.execute(db)
      await migrateToLatest(db, { env: {} })
      expect(await recordedMigrationNames(db)).toEqual(migrationNames)
    })
  })

  // rev-6 R4: a schema whose name ends in "public", and a quoted name of other letters, are other
  // tables; a space before the dot, or the name in capitals unquoted, is the same table.
  it("006's up tells public's ai_models from app_public's and from \"AI_MODELS\", whatever the spacing and case", async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateTo(db, '005_add_openrouter_integration', { env: {} })
      await sql`CREATE SCHEMA app_public`.execute(db)
      await sql`CREATE TABLE app_public.ai_models (id integer)`.execute(db)
      await sql`CREATE TABLE public."AI_MODELS" (id integer)`.execute(db)
      await sql`CREATE FUNCTION app_public.models_seen() RETURNS bigint LANGUAGE plpgsql
                  AS $$ BEGIN RETURN (SELECT count(*) FROM app_public.ai_models); END $$`.execute(
        db,
      )
      await sql`CREATE FUNCTION public.shouted_models() RETURNS bigint LANGUAGE plpgsql
                  AS $$ BEGIN RETURN (SELECT count(*) FROM "AI_MODELS"); END $$`.execute(db)
      await sql`CREATE FUNCTION public.spaced_models() RETURNS bigint LANGUAGE plpgsql
                  AS $$ BEGIN RETURN (SELECT count(*) FROM public . ai_models); END $$`.execute(db)
      await sql`CREATE FUNCTION public.capital_models() RETURNS bigint LANGUAGE plpgsql
                  AS $$ BEGIN RETURN (SELECT count(*) FROM PUBLIC.AI_MODELS); END $$`.execute(db)
      // rev-c7 F5: a name against a dollar quote of dynamic SQL.
      await sql`CREATE FUNCTION public.dynamic_models() RETURNS void LANGUAGE plpgsql
                  AS $$ BEGIN EXECUTE $q$DELETE FROM ai_models$q$; END $$`.execute(db)
      const refused = await migrateToLatest(db, { env: {} }).catch((error: unknown) => error)
      const message = String((refused as Error).message)
      expect(message).toContain('public.spaced_models() (names ai_models)')
      expect(message).toContain('public.capital_models() (names ai_models)')
      expect(message).toContain('public.dynamic_models() (names ai_models)')
      expect(message).not.toContain('models_seen')
      expect(message).not.toContain('shouted_models')
      await sql`DROP FUNCTION public.spaced_models()`.execute(db)
      await sql`DROP FUNCTION public.capital_models()`.execute(db)
      await sql`DROP FUNCTION public.dynamic_models()`.execute(db)
      await migrateToLatest(db, { env: {} })
      expect(await recordedMigrationNames(db)).toEqual(migrationNames)
    })
  })
})
