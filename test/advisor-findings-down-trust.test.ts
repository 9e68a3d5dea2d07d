import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { checkDrift, formatDriftReport, migrateDown, migrateTo, migrateUp } from '../src/tooling.js'
import { snapshotPublicSchema } from '../src/schema/snapshot.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// 008's down restores what it found from what the module knows: its record of that state is
// checked against what it may hold and never run as SQL. An edited record cannot switch RLS off
// anywhere, a policy narrowed after 008 is not widened back, a missing record says so, and a
// production whose Claude policy goes under another name keeps it.

const MIGRATION_007 = '007_openrouter_policies_per_supabase_advice'
const MIGRATION_008 = '008_close_supabase_advisor_findings'
const CLAUDE_POLICY = 'Users can manage their own Claude config'

// SQL that, pasted into any statement the down builds from the record, switches RLS off on the
// keys table and then comments out the rest of that statement.
const INJECTED = `public USING (true); ALTER TABLE public.x402_user_openrouter_integrations DISABLE ROW LEVEL SECURITY; --`

describe.each(testTargets)('008’s down on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_007)

  it('keeps a Claude policy that production put under another name, and adds no looser one', async () => {
    const { db } = database
    await sql`DROP POLICY ${sql.id(CLAUDE_POLICY)} ON x402_user_claude_configs`.execute(db)
    await sql`
      CREATE POLICY "Owners manage their Claude config" ON x402_user_claude_configs
      FOR ALL TO authenticated USING ((select auth.uid()) = user_id) WITH CHECK ((select auth.uid()) = user_id)
    `.execute(db)
    const before = await snapshotPublicSchema(db)

    expect((await migrateUp(db)).map((result) => result.migrationName)).toEqual([MIGRATION_008])
    const policies = await claudePolicies()
    expect(policies).toContain('Owners manage their Claude config')
    expect(policies).not.toContain(CLAUDE_POLICY)
    await migrateDown(db)
    expect(await snapshotPublicSchema(db)).toEqual(before)

    await sql`DROP POLICY "Owners manage their Claude config" ON x402_user_claude_configs`.execute(
      db,
    )
    await sql`
      CREATE POLICY ${sql.id(CLAUDE_POLICY)} ON x402_user_claude_configs
      USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id)
    `.execute(db)
  })

  it('never runs an edited record: RLS stays on, and no policy opens up', async () => {
    const { db } = database
    await migrateUp(db)
    // Whatever guards the table itself goes too: only the down's own checks stand.
    const { rows: checks } = await sql<{ name: string }>`
      SELECT conname AS name FROM pg_constraint
      WHERE conrelid = 'x402_migrations.prior_state_008'::regclass AND contype = 'c'
    `.execute(db)
    for (const { name } of checks) {
      await sql`ALTER TABLE x402_migrations.prior_state_008 DROP CONSTRAINT ${sql.id(name)}`.execute(
        db,
      )
    }
    const { rows: columns } = await sql<{ name: string }>`
      SELECT column_name AS name FROM information_schema.columns
      WHERE table_schema = 'x402_migrations' AND table_name = 'prior_state_008' AND data_type = 'text'
        AND column_name <> 'migration'
    `.execute(db)
    expect(columns.length).toBeGreaterThan(0)
    for (const { name } of columns) {
      await sql`UPDATE x402_migrations.prior_state_008 SET ${sql.id(name)} = ${INJECTED}`.execute(
        db,
      )
    }

    const refusal = await migrateDown(db).catch((error: unknown) => error)
    expect(refusal).toBeInstanceOf(Error)
    expect(String((refusal as Error).message)).toMatch(/prior_state_008/)
    expect(await rowSecurity('x402_user_openrouter_integrations')).toBe(true)
    expect(await rowSecurity('x402_resources')).toBe(true)
    expect(await claudePolicyShape()).toMatch(
      /^ALL TO authenticated USING \(\( SELECT auth\.uid\(\)/,
    )
    expect(await applied()).toContain(MIGRATION_008)
  })

  it('refuses to widen a Claude policy narrowed after 008, and says so', async () => {
    const { db } = database
    await migrateTo(db, MIGRATION_007).catch(() => {})
    await sql`DROP TABLE IF EXISTS x402_migrations.prior_state_008`.execute(db)
    await sql`DELETE FROM x402_migrations.kysely_migration WHERE name = ${MIGRATION_008}`.execute(
      db,
    )
    await restorePlanShapes()
    await migrateUp(db)
    await sql`DROP POLICY ${sql.id(CLAUDE_POLICY)} ON x402_user_claude_configs`.execute(db)
    await sql`
      CREATE POLICY ${sql.id(CLAUDE_POLICY)} ON x402_user_claude_configs
      FOR SELECT TO authenticated USING ((select auth.uid()) = user_id)
    `.execute(db)
    const narrowed = await claudePolicyShape()

    const refusal = (await migrateDown(db).catch((error: unknown) => error)) as Error
    expect(refusal).toBeInstanceOf(Error)
    expect(refusal.message).toMatch(new RegExp(`${CLAUDE_POLICY}.*changed since 008`))
    expect(refusal.message).not.toMatch(/SQLSTATE P0002|query returned no rows/)
    expect(await claudePolicyShape()).toBe(narrowed)
    expect(await applied()).toContain(MIGRATION_008)
  })

  it('refuses a record that is not one row under its primary key: a forged second row is never read', async () => {
    const { db } = database
    await migrateTo(db, MIGRATION_007).catch(() => {})
    await sql`DROP TABLE IF EXISTS x402_migrations.prior_state_008`.execute(db)
    await sql`DELETE FROM x402_migrations.kysely_migration WHERE name = ${MIGRATION_008}`.execute(
      db,
    )
    await restorePlanShapes()
    await migrateUp(db)
    // As production adopted: RLS on before 008, the Claude policy hardened by hand.
    await sql`
      UPDATE x402_migrations.prior_state_008
      SET resources_rls = true, models_rls = true, claude_policy = 'advised', claude_search_path_set = false
    `.execute(db)
    const policy = await claudePolicyShape()
    await sql`ALTER TABLE x402_migrations.prior_state_008 DROP CONSTRAINT prior_state_008_pkey`.execute(
      db,
    )

    // Without its primary key, even one row is refused: nothing keeps a second one out.
    const alone = (await migrateDown(db).catch((error: unknown) => error)) as Error
    expect(alone).toBeInstanceOf(Error)
    expect(alone.message).toMatch(/x402_migrations\.prior_state_008\b.*primary key/)

    await sql`
      INSERT INTO x402_migrations.prior_state_008 VALUES (${MIGRATION_008}, false, false, 'plan', true)
    `.execute(db)
    // The genuine row moves behind the forged one in the heap.
    await sql`UPDATE x402_migrations.prior_state_008 SET models_rls = models_rls WHERE claude_policy = 'advised'`.execute(
      db,
    )
    const twoRows = (await migrateDown(db).catch((error: unknown) => error)) as Error
    expect(twoRows).toBeInstanceOf(Error)
    expect(twoRows.message).toMatch(/x402_migrations\.prior_state_008\b/)
    expect(twoRows.message).toMatch(/2 rows|primary key/)
    expect(twoRows.message).not.toMatch(/query returned more than one row/)
    expect(await rowSecurity('x402_resources')).toBe(true)
    expect(await rowSecurity('x402_openrouter_models')).toBe(true)
    expect(await claudePolicyShape()).toBe(policy)
    expect(await applied()).toContain(MIGRATION_008)

    // The record as 008 wrote it, for the tests that follow.
    await sql`DELETE FROM x402_migrations.prior_state_008 WHERE claude_policy = 'plan'`.execute(db)
    await sql`ALTER TABLE x402_migrations.prior_state_008 ADD PRIMARY KEY (migration)`.execute(db)
  })

  it('says what is missing when its record was deleted', async () => {
    const { db } = database
    await sql`DELETE FROM x402_migrations.prior_state_008`.execute(db)
    const refusal = (await migrateDown(db).catch((error: unknown) => error)) as Error
    expect(refusal).toBeInstanceOf(Error)
    expect(refusal.message).toMatch(/x402_migrations\.prior_state_008\b.*(empty|no row)/)
    expect(refusal.message).not.toMatch(/query returned no rows/)
    expect(await rowSecurity('x402_resources')).toBe(true)
    expect(await applied()).toContain(MIGRATION_008)
  })

  it('names 008 as applied from an earlier text, corrected before release, not as edited by hand', async () => {
    const { db } = database
    const earlier = '04ffbc1594795986db63b42d82260eba5dc43936706ccaa929acb57b97e3715d'
    await sql`UPDATE x402_migrations.migration_checksum SET sha256 = ${earlier} WHERE name = ${MIGRATION_008}`.execute(
      db,
    )
    const report = await checkDrift(db)
    expect(report.checksums.find(({ name }) => name === MIGRATION_008)?.status).toBe('corrected')
    const text = formatDriftReport(report)
    expect(text).toMatch(new RegExp(`${MIGRATION_008}: this database applied an earlier text`))
    expect(text).not.toMatch(/changed after they were applied/)
  })

  async function claudePolicies(): Promise<string[]> {
    const { rows } = await sql<{ name: string }>`
      SELECT polname AS name FROM pg_policy WHERE polrelid = 'public.x402_user_claude_configs'::regclass ORDER BY 1
    `.execute(database.db)
    return rows.map(({ name }) => name)
  }

  async function claudePolicyShape(): Promise<string> {
    const { rows } = await sql<{ shape: string }>`
      SELECT p.cmd || ' TO ' || array_to_string(p.roles, ', ') || ' USING ' || coalesce(p.qual, '-') AS shape
      FROM pg_policies p WHERE p.tablename = 'x402_user_claude_configs' AND p.policyname = ${CLAUDE_POLICY}
    `.execute(database.db)
    return rows[0]?.shape ?? 'none'
  }

  async function rowSecurity(table: string): Promise<boolean> {
    const { rows } = await sql<{ on: boolean }>`
      SELECT relrowsecurity AS on FROM pg_class WHERE oid = to_regclass(${`public.${table}`})
    `.execute(database.db)
    return rows[0]!.on
  }

  async function applied(): Promise<string[]> {
    const { rows } = await sql<{
      name: string
    }>`SELECT name FROM x402_migrations.kysely_migration`.execute(database.db)
    return rows.map(({ name }) => name)
  }

  /** 007's state, by hand, after a down that an edited record stopped half way on the old text. */
  async function restorePlanShapes(): Promise<void> {
    const { db } = database
    for (const statement of [
      `DROP POLICY IF EXISTS "Users can manage their own Claude config" ON x402_user_claude_configs`,
      `CREATE POLICY "Users can manage their own Claude config" ON x402_user_claude_configs
         USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id)`,
      `ALTER FUNCTION update_claude_config_updated_at() RESET ALL`,
      `DROP POLICY IF EXISTS "Service role full access on models" ON x402_openrouter_models`,
      `DROP POLICY IF EXISTS "Anyone can read the model catalog" ON x402_openrouter_models`,
      `ALTER TABLE x402_openrouter_models DISABLE ROW LEVEL SECURITY`,
      `DROP POLICY IF EXISTS "Service role full access on resources" ON x402_resources`,
      `ALTER TABLE x402_resources DISABLE ROW LEVEL SECURITY`,
      `ALTER TABLE x402_user_openrouter_integrations ENABLE ROW LEVEL SECURITY`,
    ]) {
      await sql.raw(statement).execute(db)
    }
  }
})

// A catalog that had a policy of its own while RLS was off (the advisor's
// policy_exists_rls_disabled): 008 turns RLS on, and its down puts the table back as it was.
describe.each(testTargets)(
  '008’s down, on a catalog that had a policy with RLS off, on %s',
  (target) => {
    const database = useTestDatabase(target, MIGRATION_007)

    it('switches RLS off again and keeps that policy', async () => {
      const { db } = database
      await sql`CREATE POLICY "Production reads the catalog" ON x402_openrouter_models FOR SELECT TO authenticated USING (true)`.execute(
        db,
      )
      await migrateUp(db)
      await migrateDown(db)
      const { rows } = await sql<{ on: boolean; policies: string[] }>`
      SELECT c.relrowsecurity AS on,
             ARRAY(SELECT polname::text FROM pg_policy WHERE polrelid = c.oid ORDER BY 1) AS policies
      FROM pg_class c WHERE c.oid = 'public.x402_openrouter_models'::regclass
    `.execute(db)
      expect(rows[0]).toEqual({ on: false, policies: ['Production reads the catalog'] })
    })
  },
)
