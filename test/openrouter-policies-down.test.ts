import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateTo } from '../src/tooling.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// 007's down puts back the plan's policy, which every role passes (FOR ALL TO public). It does so
// only where the policy is still as 007 made it: one narrowed by hand since is never widened back.

const MIGRATION_006 = '006_rename_to_production_names'
const MIGRATION_007 = '007_openrouter_policies_per_supabase_advice'
const POLICY = 'Users can manage their own OpenRouter config'

describe.each(testTargets)('007’s down on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_007)

  async function policyShape(): Promise<string | undefined> {
    const { rows } = await sql<{ shape: string }>`
      SELECT p.polcmd::text || ' ' || array_to_string(p.polroles::regrole[], ',') || ' ' ||
             coalesce(pg_get_expr(p.polqual, p.polrelid), '') AS shape
      FROM pg_policy p
      WHERE p.polrelid = 'public.x402_user_openrouter_integrations'::regclass AND p.polname = ${POLICY}
    `.execute(database.db)
    return rows[0]?.shape
  }

  it('refuses to widen a policy narrowed since 007, and changes nothing', async () => {
    const { db } = database
    await sql`
      ALTER POLICY ${sql.id(POLICY)} ON x402_user_openrouter_integrations
      USING ((select auth.uid()) = user_id AND false)
    `.execute(db)
    const narrowed = await policyShape()

    const refusal = await migrateTo(db, MIGRATION_006).catch((error: unknown) => error)
    expect(refusal).toBeInstanceOf(Error)
    expect(String((refusal as Error).message)).toMatch(/changed or dropped since 007/)
    expect(String((refusal as Error).message)).toMatch(/stays applied/)
    expect(await policyShape()).toBe(narrowed)
  })
  it('keeps a search_path set since 007, and rolls back where the policy is as 007 made it', async () => {
    const { db } = database
    await sql`
      ALTER POLICY ${sql.id(POLICY)} ON x402_user_openrouter_integrations
      USING ((select auth.uid()) = user_id)
    `.execute(db)
    await sql`ALTER FUNCTION update_openrouter_integration_updated_at() SET search_path = pg_catalog`.execute(
      db,
    )

    await migrateTo(db, MIGRATION_006)
    expect(await policyShape()).toBe('* - (auth.uid() = user_id)')
    const { rows } = await sql<{ config: string[] | null }>`
      SELECT proconfig AS config FROM pg_proc
      WHERE oid = 'public.update_openrouter_integration_updated_at()'::regprocedure
    `.execute(db)
    expect(rows[0]?.config).toEqual(['search_path=pg_catalog'])
  })
})
