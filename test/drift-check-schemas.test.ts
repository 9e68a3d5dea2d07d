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
import { cli, cliEnv } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import {
  createProductionTodayDatabase,
  PRODUCTION_TODAY_ADOPTION_POINT,
} from './support/production-today.js'
import { type TestTarget, testTargets } from './support/test-database.js'

// migrate:check compares the app's schemas themselves (their grants, comment and owner), not only
// what is in them: a grant widened on `public` is drift, on a database the module built (compared
// with what the migrations leave) and on an adopted one (compared with what adoption recorded).

const NEWEST = migrationNames.at(-1)!

/** A role of this test run, so that parallel runs on one server do not meet. */
const ROLE = `x402_schema_${Math.random().toString(36).slice(2, 10)}`

describe.each(testTargets)(
  'migrate:check compares the schemas themselves, on a database the module built, on %s',
  (target: TestTarget) => {
    let database: ScriptableDatabase
    beforeAll(async () => {
      database = await createScriptableDatabase(target, 'latest')
      await migrateToLatest(database.db)
      await sql.raw(`CREATE ROLE ${ROLE}`).execute(database.db)
    }, 300_000)
    afterAll(async () => {
      await sql
        .raw(`DROP ROLE IF EXISTS ${ROLE}`)
        .execute(database.db)
        .catch(() => {})
      await database?.destroy()
    })

    it('is clean as the migrations leave it', async () => {
      const report = await checkDrift(database.db, { decisions: [] })
      expect(conflicts(report)).toEqual([])
      expect(report.ok).toBe(true)
    })

    it('reports CREATE granted on public to anon as drift', async () => {
      const report = await checkAfter(database.db, ['GRANT CREATE ON SCHEMA public TO anon'])
      expect(report.ok).toBe(false)
      expect(conflicts(report)).toEqual([
        expect.stringMatching(
          /^schema public: grants: live \{.*anon: ALL,.*\} \/ expected \{.*anon: USAGE,.*\}/,
        ),
      ])
    })

    it('reports USAGE on public granted to a new role as drift', async () => {
      const report = await checkAfter(database.db, [`GRANT USAGE ON SCHEMA public TO ${ROLE}`])
      expect(conflicts(report)).toEqual([
        expect.stringMatching(new RegExp(`^schema public: grants: live \\{.*${ROLE}: USAGE`)),
      ])
    })

    it('reports a schema that the API may use and no migration creates', async () => {
      const report = await checkAfter(database.db, [
        'CREATE SCHEMA "Side Door"',
        'GRANT USAGE ON SCHEMA "Side Door" TO anon',
      ])
      expect(conflicts(report)).toEqual([
        expect.stringMatching(/^schema "Side Door": extra \(not created by any migration/),
      ])
    })
  },
)

describe.each(testTargets)(
  'migrate:check compares the schemas themselves on production today, adopted, on %s',
  (target: TestTarget) => {
    let database: ScriptableDatabase
    let db: Kysely<any>
    beforeAll(async () => {
      database = await createProductionTodayDatabase(target, createScriptableDatabase)
      db = database.db
      await sql`REVOKE ALL ON x402_oauth_pending FROM anon`.execute(db)
      const plan = await planRepair(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      for (const statement of plan.statements) await sql.raw(statement).execute(db)
      await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      await migrateToLatest(db)
      await sql.raw(`CREATE ROLE ${ROLE}`).execute(db)
    }, 600_000)
    afterAll(async () => {
      await sql
        .raw(`DROP ROLE IF EXISTS ${ROLE}`)
        .execute(db)
        .catch(() => {})
      await database?.destroy()
    })

    it("records public at adoption as production's own, and the check is clean", async () => {
      const recorded = await readProductionObjects(db)
      const publicSchema = recorded.find(({ key }) => key === 'schemas public')
      expect(publicSchema?.definition).toMatchObject({
        grants: expect.objectContaining({ anon: 'USAGE', authenticated: 'USAGE' }),
      })
      const report = await checkDrift(db, { decisions: [] })
      expect(conflicts(report)).toEqual([])
      expect(report.ok).toBe(true)
    })

    it.each([
      ['CREATE granted on public to anon', ['GRANT CREATE ON SCHEMA public TO anon'], 'anon: ALL'],
      [
        'USAGE on public granted to a new role',
        [`GRANT USAGE ON SCHEMA public TO ${ROLE}`],
        `${ROLE}: USAGE`,
      ],
    ])('reports %s as drift against the record', async (_what, change, granted) => {
      const report = await checkAfter(db, change)
      expect(report.ok).toBe(false)
      expect(conflicts(report)).toEqual([
        expect.stringMatching(
          new RegExp(
            `^schema public: grants: live \\{.*${granted}.*\\} / recorded \\{.*\\} \\(production's own, changed since adoption recorded it`,
          ),
        ),
      ])
    })

    it('reports a new owner of public as drift, and a new comment as equivalent; refuses to read where a lesser role owns public', async () => {
      // A role that can act as the checking user: none of its code gains power in the reads.
      const { rows } = await sql<{ user: string }>`SELECT current_user AS user`.execute(db)
      const owner = await checkAfter(db, ['ALTER SCHEMA public OWNER TO CURRENT_USER'])
      expect(conflicts(owner)).toEqual([
        expect.stringMatching(
          new RegExp(`^schema public: owner: live ${rows[0]!.user} / recorded `),
        ),
      ])
      // A lesser role: the reads, with the search_path at public, could run its code.
      await expect(checkAfter(db, [`ALTER SCHEMA public OWNER TO ${ROLE}`])).rejects.toThrow(
        `schema public is owned by ${ROLE}`,
      )
      const comment = await checkAfter(db, [`COMMENT ON SCHEMA public IS 'the app''s tables'`])
      expect(comment.ok).toBe(true)
      const schemaLines = comment.schema?.equivalent
        .map(({ line }) => line)
        .filter((line) => line.startsWith('schema '))
      expect(schemaLines).toEqual([
        expect.stringMatching(/^schema public: comment: live the app's tables \/ recorded /),
      ])
    })

    it('tells a database adopted before schemas were recorded to adopt again, and passes no drift it cannot see', async () => {
      await sql`DELETE FROM x402_migrations.production_schema_object WHERE category = 'schemas'`.execute(
        db,
      )
      try {
        const report = await checkDrift(db, { decisions: [] })
        expect(conflicts(report)).toEqual([])
        expect(report.unrecordedSchemas).toEqual(['public'])
        const text = formatDriftReport(report)
        expect(text).toContain(
          'Schemas not recorded at adoption (this database was adopted before migrate:check compared schemas, so their ' +
            `grants, comment and owner are not checked): record them with npm run migrate:baseline -- ${NEWEST}\n  public\n`,
        )
        expect(text).toMatch(
          /^OK: .*; 1 schema\(s\) not recorded at adoption and not checked: re-run migrate:baseline\.$/m,
        )

        if (target === 'pglite') await db.destroy()
        const checked = await cli(['check'], cliEnv(database.location))
        if (target === 'pglite') await database.runScript('SELECT 1')
        expect(checked.stdout).toContain(`npm run migrate:baseline -- ${NEWEST}`)
        expect(checked.code).toBe(0)
      } finally {
        await baselineMigrations(database.db, NEWEST, { decisions: [] })
      }
      db = database.db
      const again = await checkDrift(db, { decisions: [] })
      expect(again.unrecordedSchemas).toEqual([])
      expect(conflicts(await checkAfter(db, ['GRANT CREATE ON SCHEMA public TO anon']))).toEqual([
        expect.stringMatching(/^schema public: grants: /),
      ])
    })
  },
)
