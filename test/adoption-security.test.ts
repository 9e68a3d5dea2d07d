import { type Kysely, sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { markReverting } from '../src/migrator/history.js'
import {
  BaselineRefusedError,
  baselineMigrations,
  checkDrift,
  exportBaselineSql,
  formatDriftReport,
  migrateToLatest,
  planRepair,
} from '../src/tooling.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import {
  createProductionShapedDatabase,
  PRODUCTION_ADOPTION_POINT,
} from './support/production-fixture.js'
import { testTargets } from './support/test-database.js'

// Adoption never classes as accepted or equivalent what is weaker than the module: each case is a
// small variation of the production-shaped fixture that a hostile review found slipping through.

async function conflictsAtAdoption(db: Kysely<any>): Promise<string[]> {
  try {
    await baselineMigrations(db, PRODUCTION_ADOPTION_POINT)
    return []
  } catch (error) {
    if (error instanceof BaselineRefusedError)
      return error.diff?.conflict.map(({ line }) => line) ?? [error.message]
    throw error
  }
}

describe.each(testTargets)('adoption security on %s', (target) => {
  let database: ScriptableDatabase
  let db: Kysely<any>
  beforeEach(async () => {
    database = await createProductionShapedDatabase(target, createScriptableDatabase)
    db = database.db
  })
  afterEach(async () => {
    await database.destroy().catch(() => {})
  })

  it('refuses a table owned by an API role at adoption, and reports it at the newest migration (the owner bypasses RLS)', async () => {
    await sql`ALTER TABLE x402_resources OWNER TO authenticated`.execute(db)
    const conflicts = await conflictsAtAdoption(db)
    expect(conflicts.join('\n')).toMatch(/x402_resources: table: owner: live authenticated/)

    await sql`ALTER TABLE x402_resources OWNER TO CURRENT_USER`.execute(db)
    await baselineMigrations(db, PRODUCTION_ADOPTION_POINT)
    await migrateToLatest(db)
    expect((await checkDrift(db)).ok).toBe(true)
    await sql`ALTER TABLE x402_resources OWNER TO authenticated`.execute(db)
    expect((await checkDrift(db)).ok).toBe(false)
  })

  it('reports as drift an accepted difference removed after adoption: RLS off, a restrictive policy, a CHECK', async () => {
    await sql`CREATE POLICY "only live rows" ON x402_resources AS RESTRICTIVE FOR SELECT TO anon USING (deleted_at IS NULL)`.execute(
      db,
    )
    await sql`ALTER TABLE x402_resources ADD CONSTRAINT by_hand_name_length CHECK (length(name) < 500)`.execute(
      db,
    )
    await sql`REVOKE INSERT ON x402_resources FROM anon`.execute(db)
    await baselineMigrations(db, PRODUCTION_ADOPTION_POINT)
    expect((await checkDrift(db)).ok).toBe(true)

    await sql`ALTER TABLE x402_resources DISABLE ROW LEVEL SECURITY`.execute(db)
    await sql`ALTER TABLE ai_models DISABLE ROW LEVEL SECURITY`.execute(db)
    await sql`DROP POLICY "only live rows" ON x402_resources`.execute(db)
    await sql`ALTER TABLE x402_resources DROP CONSTRAINT by_hand_name_length`.execute(db)
    await sql`GRANT INSERT ON x402_resources TO anon`.execute(db)
    const report = await checkDrift(db)
    expect(report.ok).toBe(false)
    const lines = report.schema!.conflict.map(({ line }) => line)
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^ai_models: table: row level security: live false \/ expected true \(accepted at adoption, now removed or weakened/,
        ),
        expect.stringMatching(
          /^x402_resources: table: row level security: live false \/ expected true \(accepted at adoption/,
        ),
        expect.stringMatching(
          /^x402_resources: policy "only live rows": missing: AS RESTRICTIVE .*\(accepted at adoption/,
        ),
        expect.stringMatching(
          /^x402_resources: constraint by_hand_name_length: missing: CHECK .*\(accepted at adoption/,
        ),
        expect.stringMatching(/^x402_resources: table: grants: live \{.*\(accepted at adoption/),
      ]),
    )
    expect(formatDriftReport(report)).toMatch(/DRIFT/)

    // The repair plan puts back what was accepted.
    const plan = await planRepair(db, PRODUCTION_ADOPTION_POINT)
    expect(plan.statements.join('\n')).toMatch(
      /ALTER TABLE public\.x402_resources ENABLE ROW LEVEL SECURITY/,
    )
  })

  it('does not report as removed what the module itself now has (RLS on at 008)', async () => {
    await baselineMigrations(db, PRODUCTION_ADOPTION_POINT)
    await migrateToLatest(db)
    expect((await checkDrift(db)).ok).toBe(true)
  })

  it('refuses an extra permissive policy for anon on a table where the module leaves RLS off', async () => {
    await sql`CREATE POLICY "anon all" ON x402_resources FOR ALL TO anon USING (true) WITH CHECK (true)`.execute(
      db,
    )
    const conflicts = await conflictsAtAdoption(db)
    expect(conflicts.join('\n')).toMatch(/anon all/)
  })

  it('treats a CHECK spelled as an OR chain and DEFAULT CURRENT_TIMESTAMP as equivalent', async () => {
    await sql`ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check`.execute(
      db,
    )
    await sql`ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check CHECK (resource_type = 'external' OR resource_type = 'proxy' OR resource_type = 'prompt' OR resource_type = 'static' OR resource_type = 'prompt_template')`.execute(
      db,
    )
    await sql`ALTER TABLE x402_user_claude_configs ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP`.execute(
      db,
    )
    expect(await conflictsAtAdoption(db)).toEqual([])
  })

  it('refuses a CHECK that allows one value more, and a default that is not the same time', async () => {
    await sql`ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check`.execute(
      db,
    )
    await sql`ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check CHECK (resource_type = 'external' OR resource_type = 'proxy' OR resource_type = 'prompt' OR resource_type = 'static' OR resource_type = 'prompt_template' OR resource_type = 'other')`.execute(
      db,
    )
    await sql`ALTER TABLE x402_user_claude_configs ALTER COLUMN created_at SET DEFAULT clock_timestamp()`.execute(
      db,
    )
    const conflicts = (await conflictsAtAdoption(db)).join('\n')
    expect(conflicts).toMatch(/x402_resources_resource_type_check: definition/)
    expect(conflicts).toMatch(/column created_at: default: live clock_timestamp\(\)/)
  })

  it('accepts a function hardened with a fixed search_path; the repair plan replaces only a header, keeping the setting, never a body', async () => {
    await sql
      .raw(`ALTER FUNCTION update_claude_config_updated_at() SET search_path = ''`)
      .execute(db)
    const result = await baselineMigrations(db, PRODUCTION_ADOPTION_POINT)
    expect(result.diff.accepted.map(({ line }) => line)).toContainEqual(
      expect.stringMatching(
        /^function update_claude_config_updated_at\(\): definition: .*fixed search_path/,
      ),
    )
    // A body that differs as well is a conflict, and production's: the plan leaves it to decide.
    await sql
      .raw(
        `CREATE OR REPLACE FUNCTION update_claude_config_updated_at() RETURNS trigger LANGUAGE plpgsql SET search_path = '' AS $$
      BEGIN NEW.updated_at = clock_timestamp(); RETURN NEW; END $$`,
      )
      .execute(db)
    const changed = await planRepair(db, PRODUCTION_ADOPTION_POINT)
    expect(
      changed.statements.filter((statement) =>
        statement.includes('update_claude_config_updated_at'),
      ),
    ).toEqual([])
    expect(changed.unresolved.map(({ decide }) => decide)).toContainEqual(
      expect.stringMatching(/^production changed its body/),
    )

    // The module's body under another header (SECURITY DEFINER): the plan puts the module's back, with the setting.
    await sql
      .raw(
        `CREATE OR REPLACE FUNCTION update_claude_config_updated_at() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
    BEGIN
      NEW.updated_at = now();
      RETURN NEW;
    END;
    $$`,
      )
      .execute(db)
    const plan = await planRepair(db, PRODUCTION_ADOPTION_POINT)
    const replaces = plan.statements.filter((statement) =>
      statement.includes('update_claude_config_updated_at'),
    )
    expect(replaces.length).toBeGreaterThan(0)
    for (const statement of replaces) expect(statement).toMatch(/SET search_path/i)
    for (const statement of plan.statements) await sql.raw(statement).execute(db)
    const { rows } = await sql<{ proconfig: string[]; prosecdef: boolean }>`
      SELECT proconfig, prosecdef FROM pg_proc WHERE oid = 'update_claude_config_updated_at()'::regprocedure
    `.execute(db)
    expect(rows[0]).toEqual({ proconfig: ['search_path=""'], prosecdef: false })
    // 008 sets the same search_path: then the module has what was accepted, and nothing was removed.
    await migrateToLatest(db)
    expect(formatDriftReport(await checkDrift(db))).toMatch(/^OK/m)
  })

  it('refuses an extra trigger on the table that holds Claude keys', async () => {
    await sql
      .raw(
        `CREATE FUNCTION copy_key() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN RETURN NEW; END $$`,
      )
      .execute(db)
    await sql`CREATE TRIGGER copy_key AFTER INSERT ON x402_user_claude_configs FOR EACH ROW EXECUTE FUNCTION copy_key()`.execute(
      db,
    )
    expect((await conflictsAtAdoption(db)).join('\n')).toMatch(
      /x402_user_claude_configs: trigger copy_key: extra.*holds keys/,
    )
  })

  it('refuses to compare while a rollback is interrupted, and says how to finish it', async () => {
    await baselineMigrations(db, PRODUCTION_ADOPTION_POINT)
    await migrateToLatest(db)
    const { rows } = await sql<{
      name: string
    }>`SELECT max(name) AS name FROM x402_migrations.kysely_migration`.execute(db)
    await markReverting(db, rows[0]!.name)
    const check = await checkDrift(db)
    expect(check.ok).toBe(false)
    expect(check.schema).toBeUndefined()
    expect(formatDriftReport(check)).toContain(`ollback of ${rows[0]!.name} was interrupted`)
    expect(formatDriftReport(check)).toContain('npm run migrate:down')
    await expect(baselineMigrations(db, PRODUCTION_ADOPTION_POINT)).rejects.toThrow(
      /rollback of .* was interrupted.*npm run migrate:down/,
    )
    await expect(planRepair(db, PRODUCTION_ADOPTION_POINT)).rejects.toThrow(
      /rollback of .* was interrupted.*npm run migrate:down/,
    )
    // The SQL Editor script refuses alike.
    await expect(
      database.runScript(await exportBaselineSql(PRODUCTION_ADOPTION_POINT)),
    ).rejects.toThrow(/rollback of .* was interrupted.*npm run migrate:down/)
  })

  it('has a repair plan that a second run leaves as it is', async () => {
    await sql`DROP TRIGGER claude_config_updated_at ON x402_user_claude_configs`.execute(db)
    await sql`ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check`.execute(
      db,
    )
    await sql`DROP POLICY "Service role full access" ON x402_user_claude_configs`.execute(db)
    const plan = await planRepair(db, PRODUCTION_ADOPTION_POINT)
    const text = plan.statements.join('\n')
    expect(text).toMatch(/CREATE TRIGGER claude_config_updated_at/)
    expect(text).toMatch(/ADD CONSTRAINT x402_resources_resource_type_check/)
    expect(text).toMatch(/CREATE POLICY "Service role full access"/)
    for (let run = 0; run < 2; run++)
      for (const statement of plan.statements) await sql.raw(statement).execute(db)
    const after = await planRepair(db, PRODUCTION_ADOPTION_POINT)
    expect(after.statements.filter((statement) => !statement.startsWith('COMMENT ON'))).toEqual([])
  })
})
