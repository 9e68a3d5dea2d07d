import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createDb } from '../src/connection/create-db.js'
import { migrationNames } from '../src/migrations/index.js'
import { baselineMigrations, migrateToLatest, syncMigrationChecksums } from '../src/tooling.js'
import { type CliResult, cliEnv, lines } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import { commandIn, copyOfTheRepository } from './support/repository-copy.js'
import { type TestTarget, testTargets } from './support/test-database.js'

// migrate:pull of a schema other than public that the API roles can use, and of names that need
// quotes: the pulled file grants what the live ACL grants, no more, and both the live database
// (recorded at the pulled migration) and a fresh one migrated to it check clean.

const LATEST = migrationNames.at(-1)!
const PULLED = `${String(Number.parseInt(LATEST.slice(0, 3), 10) + 1).padStart(3, '0')}_pulled_reports`

const PRODUCTION_EXTRAS = `
CREATE SCHEMA "Reports";
GRANT USAGE ON SCHEMA "Reports" TO anon;
CREATE TABLE "Reports"."Daily Totals" (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  "Day" date NOT NULL UNIQUE,
  total numeric NOT NULL DEFAULT 0
);
ALTER TABLE "Reports"."Daily Totals" ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Anyone reads totals" ON "Reports"."Daily Totals" FOR SELECT TO anon USING (true);
GRANT SELECT ON "Reports"."Daily Totals" TO anon;
CREATE FUNCTION "Reports"."Total On"(d date) RETURNS numeric LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT coalesce(sum(total), 0) FROM "Reports"."Daily Totals" WHERE "Day" = d $$;
CREATE VIEW "Reports"."Recent Totals" WITH (security_invoker = on) AS
  SELECT "Day", total FROM "Reports"."Daily Totals" WHERE total > 0;
GRANT SELECT ON "Reports"."Recent Totals" TO anon;
CREATE TABLE public."Audit Log" (id int PRIMARY KEY, "Note" text);
ALTER TABLE public."Audit Log" ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION public."Touch It"() RETURNS trigger LANGUAGE plpgsql SET search_path = ''
  AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER "Touch Audit" BEFORE UPDATE ON public."Audit Log" FOR EACH ROW EXECUTE FUNCTION public."Touch It"();
`

/** Who may use schema "Reports", by API role. */
async function schemaUsage(db: Kysely<any>): Promise<Record<string, boolean>> {
  const { rows } = await sql<{ role: string; usage: boolean }>`
    SELECT r.rolname::text AS role, pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE') AS usage
    FROM pg_catalog.pg_roles r CROSS JOIN pg_catalog.pg_namespace n
    WHERE r.rolname IN ('anon', 'authenticated', 'service_role') AND n.nspname = 'Reports'
    ORDER BY 1
  `.execute(db)
  return Object.fromEntries(rows.map(({ role, usage }) => [role, usage]))
}

describe.each(testTargets)(
  'migrate:pull of a schema beyond public, on %s',
  (target: TestTarget) => {
    let database: ScriptableDatabase
    let copy: string
    const inCopy = async (args: string[]): Promise<CliResult> => {
      if (target === 'pglite') await database.db.destroy()
      try {
        return await commandIn(copy, args, cliEnv(database.location))
      } finally {
        if (target === 'pglite') await database.runScript('SELECT 1')
      }
    }

    beforeAll(async () => {
      database = await createScriptableDatabase(target, 'latest')
      const db = database.db as Kysely<any>
      await migrateToLatest(db)
      await syncMigrationChecksums(db)
      await database.runScript(PRODUCTION_EXTRAS)
      // Adopted again at the latest: the extras are recorded as production's own.
      await baselineMigrations(db, LATEST, { decisions: [] })
      copy = copyOfTheRepository()
    }, 300_000)
    afterAll(async () => {
      await database?.destroy()
      if (copy) rmSync(copy, { recursive: true, force: true })
    })

    it("reports a changed owner of production's own table as drift, naming both owners", async () => {
      const db = database.db as Kysely<any>
      const role = `x402_owner_${Math.random().toString(36).slice(2, 10)}`
      const { rows } = await sql<{ me: string }>`SELECT current_user::text AS me`.execute(db)
      await database.runScript(
        `CREATE ROLE ${role}; ALTER TABLE public."Audit Log" OWNER TO ${role}`,
      )
      try {
        const checked = await inCopy(['migrate', 'check'])
        expect(checked.stdout).toContain(
          `Audit Log: table: owner: live ${role} / recorded ${rows[0]!.me} (`,
        )
        expect(checked.code).toBe(3)
      } finally {
        await database.runScript(
          `ALTER TABLE public."Audit Log" OWNER TO ${rows[0]!.me}; DROP ROLE ${role}`,
        )
      }
      const back = await inCopy(['migrate', 'check'])
      expect(back.code).toBe(0)
    }, 300_000)

    it('pulls the schema with the grants the live ACL has, and the live database then checks clean', async () => {
      const pulled = await inCopy(['migrate', 'pull', 'reports'])
      expect(pulled.stderr).toContain(`recorded the database at ${PULLED}`)
      expect(pulled.code).toBe(0)
      const source = readFileSync(join(copy, 'src/migrations', `${PULLED}.ts`), 'utf8')
      expect(source).toContain('CREATE SCHEMA IF NOT EXISTS "Reports"')
      expect(source).toMatch(/GRANT USAGE ON SCHEMA "Reports" TO anon\b/)
      expect(source).not.toMatch(/ON SCHEMA "Reports" TO [^`\n]*authenticated/)
      expect(source).toContain('CREATE TABLE "Reports"."Daily Totals" (')
      expect(source).toContain('CREATE TABLE "Audit Log" (')

      const checked = await inCopy(['migrate', 'check'])
      expect(checked.stdout).toMatch(new RegExp(`OK: the schema matches ${PULLED}`))
      expect(checked.code).toBe(0)

      // The same view deparses alike on every server; a real change of it is still drift.
      await database.runScript(`CREATE OR REPLACE VIEW "Reports"."Recent Totals" WITH (security_invoker = on) AS
      SELECT "Day", total FROM "Reports"."Daily Totals" WHERE total > 1`)
      const changed = await inCopy(['migrate', 'check'])
      expect(changed.stdout).toMatch(/"Reports"\.Recent Totals: view: view definition: live /)
      expect(changed.code).toBe(3)
      await database.runScript(`CREATE OR REPLACE VIEW "Reports"."Recent Totals" WITH (security_invoker = on) AS
      SELECT "Day", total FROM "Reports"."Daily Totals" WHERE total > 0`)

      // The pulled schema is the module's now: a grant widened on it is drift.
      await database.runScript('GRANT USAGE ON SCHEMA "Reports" TO authenticated')
      const widened = await inCopy(['migrate', 'check'])
      expect(widened.stdout).toMatch(
        /schema "Reports": grants: live \{.*authenticated: USAGE.*\} \/ expected \{(?!.*authenticated)/,
      )
      expect(widened.code).toBe(3)
      await database.runScript('REVOKE USAGE ON SCHEMA "Reports" FROM authenticated')

      const again = await inCopy(['migrate', 'pull', 'again'])
      expect(again.stderr).toContain('Nothing to pull')
      expect(again.code).toBe(0)
    }, 600_000)

    it('and a fresh embedded database migrated to the latest has the same schema ACL and checks clean', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'x402-pull-reports-'))
      try {
        const latest = await commandIn(copy, ['migrate', 'latest'], { PGLITE_DATA_DIR: dataDir })
        expect(latest.stderr).toMatch(new RegExp(`applied +${PULLED}`))
        expect(latest.code).toBe(0)
        const checked = await commandIn(copy, ['migrate', 'check'], { PGLITE_DATA_DIR: dataDir })
        expect(checked.stdout).toMatch(new RegExp(`^OK: the schema matches ${PULLED}`, 'm'))
        expect(checked.code).toBe(0)
        const fresh = createDb({ dataDir })
        try {
          expect(await schemaUsage(fresh)).toEqual({
            anon: true,
            authenticated: false,
            service_role: false,
          })
        } finally {
          await fresh.destroy()
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true })
      }
    }, 600_000)
  },
)
