import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  baselineMigrations,
  checkDrift,
  formatDriftReport,
  migrateToLatest,
  planRepair,
  readProductionObjects,
} from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { checkAfter, conflicts } from './support/check-after.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import {
  createProductionTodayDatabase,
  PRODUCTION_TODAY_ADOPTION_POINT,
} from './support/production-today.js'
import { type TestTarget, testTargets } from './support/test-database.js'

// After adoption, migrate:check watches every object of the app's schemas, not only the module's:
// what production has beyond the migrations is recorded at adoption as production's own, and a
// hand change to any of it afterwards is drift, named.

const NEWEST = migrationNames.at(-1)!

/** Hand changes, each with the start of the one line the check reports it with. */
const CHANGES: Array<[string, string[], string]> = [
  [
    'a column added to a table the module does not create',
    ['ALTER TABLE x402_jobs ADD COLUMN note text'],
    'x402_jobs: column note: extra: text (not created by any migration',
  ],
  [
    'RLS switched off on a table the module does not create',
    ['ALTER TABLE x402_user_wallets DISABLE ROW LEVEL SECURITY'],
    "x402_user_wallets: table: row level security: live false / recorded true (production's own, changed since adoption recorded it",
  ],
  [
    'a view made to read with its owner’s rights',
    ['ALTER VIEW public_x402_resources SET (security_invoker = off)'],
    "public_x402_resources: view: extra (a view that reads x402_resources with its owner's rights",
  ],
  [
    'a view made a security barrier',
    ['ALTER VIEW public_x402_resources SET (security_barrier = on)'],
    'public_x402_resources: view: extra (a view over x402_resources that reads with the caller',
  ],
  [
    'a rule that drops every insert into a table the module does not create',
    ['CREATE RULE drop_inserts AS ON INSERT TO x402_announcements DO INSTEAD NOTHING'],
    'x402_announcements: table: rules: live {drop_inserts: CREATE RULE drop_inserts AS',
  ],
  [
    'a rule that drops every insert into x402_resources',
    ['CREATE RULE drop_inserts AS ON INSERT TO x402_resources DO INSTEAD NOTHING'],
    'x402_resources: table: rules: live {drop_inserts: CREATE RULE drop_inserts AS',
  ],
  [
    'a table made UNLOGGED (emptied by a crash)',
    ['ALTER TABLE x402_announcements SET UNLOGGED'],
    "x402_announcements: table: unlogged: live true / recorded none (production's own, changed since adoption recorded it",
  ],
  [
    'a grant to anon on a table the module does not create',
    ['GRANT SELECT ON x402_oauth_pending TO anon'],
    'x402_oauth_pending: table: grants: live {(owner): ALL, anon: SELECT, authenticated: ALL, service_role: ALL} / recorded {(owner): ALL, authenticated: ALL, service_role: ALL}',
  ],
  [
    'EXECUTE granted back to anon on a SECURITY DEFINER function',
    ['GRANT EXECUTE ON FUNCTION soft_delete_user_tx(uuid) TO anon'],
    'function soft_delete_user_tx(target_user uuid): grants: live {(owner): ALL, anon: ALL, service_role: ALL} / recorded {(owner): ALL, service_role: ALL}',
  ],
  [
    'a policy changed',
    ['ALTER POLICY "Users read own wallets" ON x402_user_wallets USING (true)'],
    'x402_user_wallets: policy "Users read own wallets": using: live true / recorded (auth.uid() = user_id)',
  ],
  [
    'a function body changed',
    [
      'CREATE OR REPLACE FUNCTION is_admin() RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT true $$',
    ],
    'function is_admin(): definition: live CREATE OR REPLACE FUNCTION public.is_admin()',
  ],
  [
    'an index dropped',
    ['DROP INDEX idx_x402_jobs_owner'],
    'x402_jobs: index idx_x402_jobs_owner: missing: CREATE INDEX idx_x402_jobs_owner',
  ],
  [
    'a table added',
    ['CREATE TABLE x402_scratch_notes (id int PRIMARY KEY)'],
    'x402_scratch_notes: table: extra (not created by any migration',
  ],
  [
    'a table dropped',
    ['DROP TABLE x402_wallet_export_audit'],
    "x402_wallet_export_audit: table: missing (recorded at adoption as production's own, and gone since",
  ],
]

describe.each(testTargets)(
  'migrate:check watches every object of production today on %s',
  (target: TestTarget) => {
    let database: ScriptableDatabase
    beforeAll(async () => {
      database = await createProductionTodayDatabase(target, createScriptableDatabase)
      const db = database.db as Kysely<any>
      // Production revoked the API roles' privileges on the OAuth state (its RLS stays off).
      await sql`REVOKE ALL ON x402_oauth_pending FROM anon`.execute(db)
      const plan = await planRepair(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      for (const statement of plan.statements) await sql.raw(statement).execute(db)
      await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      await migrateToLatest(db)
    }, 600_000)
    afterAll(async () => {
      await database?.destroy()
    })

    it('records at adoption what production has beyond the migrations, and the check is clean', async () => {
      const db = database.db as Kysely<any>
      const recorded = (await readProductionObjects(db)).map(({ key }) => key)
      expect(recorded).toEqual(
        expect.arrayContaining([
          'relations x402_oauth_pending',
          'columns x402_oauth_pending.code_verifier',
          'relations x402_user_wallets',
          'policies x402_user_wallets.Users read own wallets',
          'functions soft_delete_user_tx(target_user uuid)',
          'triggers x402_resource_reviews.resource_review_stats',
        ]),
      )
      // What the module's own rules watch is not recorded twice: its tables, what is on them, and
      // the view over x402_resources (an accepted difference).
      expect(
        recorded.filter((key) =>
          /x402_resources\b|x402_openrouter_models|x402_user_openrouter|public_x402_resources/.test(
            key,
          ),
        ),
      ).toEqual([])
      const report = await checkDrift(db, { decisions: [] })
      expect(conflicts(report)).toEqual([])
      expect(report.ok).toBe(true)
      expect(formatDriftReport(report)).toContain(
        `; ${recorded.length} object(s) of production's own match their record.`,
      )
    })

    it.each(CHANGES)('reports %s as drift, naming the object', async (_what, change, line) => {
      const report = await checkAfter(database.db as Kysely<any>, change)
      expect(report.ok).toBe(false)
      expect(conflicts(report)).toEqual([expect.stringContaining(line)])
    })

    it('holds a stricter change to the record too, until it is recorded again', async () => {
      const db = database.db as Kysely<any>
      await sql`ALTER TABLE x402_oauth_pending ENABLE ROW LEVEL SECURITY`.execute(db)
      expect(conflicts(await checkDrift(db, { decisions: [] }))).toEqual([
        expect.stringContaining(
          'x402_oauth_pending: table: row level security: live true / recorded false',
        ),
      ])
      // Reviewed: adopting again at the newest migration records the database as it is.
      await baselineMigrations(db, NEWEST, { decisions: [] })
      expect((await checkDrift(db, { decisions: [] })).ok).toBe(true)
      await sql`ALTER TABLE x402_oauth_pending DISABLE ROW LEVEL SECURITY`.execute(db)
    })

    it('exits 3 on drift, naming the object', async () => {
      // RLS of the OAuth state was recorded on by the test before.
      if (target === 'pglite') await database.db.destroy()
      const checked = await cli(['check'], cliEnv(database.location))
      if (target === 'pglite') await database.runScript('SELECT 1')
      expect(checked.code).toBe(3)
      expect(checked.stdout).toContain(
        '    x402_oauth_pending: table: row level security: live false / recorded true',
      )
      expect(lines(checked.stderr).at(-1)).toMatch(
        /^migrate check failed: drift found: 1 schema difference\(s\) from /,
      )
    })
  },
)

describe.each(testTargets)(
  'migrate:check on a database the module built, on %s',
  (target: TestTarget) => {
    let database: ScriptableDatabase
    beforeAll(async () => {
      database = await createScriptableDatabase(target, 'latest')
      await migrateToLatest(database.db)
    })
    afterAll(async () => {
      await database?.destroy()
    })

    it('reports every object beyond the migrations in the app’s schemas, and none in a schema the API cannot use', async () => {
      const db = database.db as Kysely<any>
      expect((await checkDrift(db)).ok).toBe(true)
      const report = await checkAfter(db, [
        'CREATE TABLE notes (id int PRIMARY KEY)',
        'CREATE FUNCTION note_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM notes $$',
        'CREATE SCHEMA api',
        'GRANT USAGE ON SCHEMA api TO anon',
        'CREATE VIEW api.notes AS SELECT id FROM public.notes',
        'CREATE SCHEMA internal',
        'CREATE TABLE internal.jobs (id int)',
      ])
      expect(conflicts(report)).toEqual([
        expect.stringMatching(
          /^api\.notes: view: extra \(not created by any migration, nor recorded at adoption as production's own: pull it/,
        ),
        expect.stringMatching(/^notes: table: extra \(not created by any migration/),
        expect.stringMatching(/^schema api: extra \(not created by any migration/),
        expect.stringMatching(/^function note_count\(\): extra \(not created by any migration/),
      ])
    })
  },
)
