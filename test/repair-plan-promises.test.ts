import { type Kysely, sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import {
  BaselineRefusedError,
  baselineMigrations,
  checkDrift,
  planRepair,
  type RepairPlan,
} from '../src/tooling.js'
import { ACCESS_USERS } from '../src/access/access-users.js'
import { gainedAccess, MODULE_RELATIONS, whoMayDoWhat } from './support/access-gained.js'
import { attemptAs } from './support/attempt-as.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import {
  createProductionTodayDatabase,
  DIVERGENCES,
  PRODUCTION_TODAY_ADOPTION_POINT,
  resourceId,
  rowDigests,
} from './support/production-today.js'
import { testTargets } from './support/test-database.js'

// The repair plan (migrate:baseline -- <name> --plan) keeps its header's promise on production
// today, on every scenario of the production-today fixture: it never replaces a body production
// changed, never adds a policy more permissive than production's, never leaves a constraint that
// stored rows violate (it counts and names them), never proposes a step that cannot succeed, and
// converges: run once, then adopt, no further conflict. Who may do what (anon, users A and B as owner and as
// another user, service_role) is measured before and after each plan: nobody gains access.

const AT = PRODUCTION_TODAY_ADOPTION_POINT
/** What no statement of a plan does: drop, disable, take back, loosen or edit rows. */
const NEVER =
  /\b(DROP|DISABLE|REVOKE|TRUNCATE|DELETE|UPDATE|INSERT|ALTER POLICY|NO FORCE|SECURITY DEFINER)\b/

describe.each(testTargets)('the repair plan on production today, on %s', (target) => {
  let database: ScriptableDatabase
  let db: Kysely<any>
  beforeEach(async () => {
    database = await createProductionTodayDatabase(target, createScriptableDatabase)
    db = database.db
  })
  afterEach(async () => {
    await database.destroy()
  })

  /** Makes the plan, checks what it never does, runs it (twice: it must be re-runnable), and measures access around it. */
  async function runPlan(): Promise<RepairPlan> {
    const rows = await rowDigests(db)
    const before = await whoMayDoWhat(db, MODULE_RELATIONS)
    const plan = await planRepair(db, AT, { decisions: [] })
    expect(plan.script).toContain(
      '-- It only adds what the module has and the database lacks: nothing here drops, disables or replaces what',
    )
    for (const statement of plan.statements)
      expect(statement.replace(/'(?:[^']|'')*'/g, "''")).not.toMatch(NEVER)
    for (let run = 0; run < 2; run++)
      for (const statement of plan.statements) await sql.raw(statement).execute(db)
    expect(gainedAccess(before, await whoMayDoWhat(db, MODULE_RELATIONS))).toEqual([])
    expect(await rowDigests(db)).toEqual(rows)
    return plan
  }

  it('converges: what it fixes is fixed, and adoption then finds no conflict', async () => {
    await database.runScript(`
      DROP INDEX idx_claude_configs_user_enabled;
      ALTER TABLE x402_user_openrouter_integrations DISABLE ROW LEVEL SECURITY;
      DROP TRIGGER claude_config_updated_at ON x402_user_claude_configs;
      DROP POLICY "Service role full access on OpenRouter" ON x402_user_openrouter_integrations;
      ALTER FUNCTION update_claude_config_updated_at() SECURITY DEFINER;
      ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_openrouter_model_id_fkey;
    `)
    const plan = await runPlan()
    expect(plan.unresolved).toEqual([])
    expect(plan.statements.join('\n')).toMatch(
      /CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_claude_configs_user_enabled/,
    )
    expect(plan.statements.join('\n')).toMatch(
      /ALTER TABLE public\.x402_user_openrouter_integrations ENABLE ROW LEVEL SECURITY/,
    )
    expect(plan.statements.join('\n')).toMatch(
      /CREATE OR REPLACE FUNCTION public\.update_claude_config_updated_at\(\)/,
    )
    // The body is the module's own: only the header production changed goes back.
    const { rows } = await sql<{
      definer: boolean
    }>`SELECT prosecdef AS definer FROM pg_proc WHERE proname = 'update_claude_config_updated_at'`.execute(
      db,
    )
    expect(rows).toEqual([{ definer: false }])
    const adopted = await baselineMigrations(db, AT, { decisions: [] })
    expect(adopted.diff.conflict).toEqual([])
    expect((await planRepair(db, AT, { decisions: [] })).statements).toEqual([])
  })

  it('never replaces a function body production changed, so owners still cannot store a plaintext key', async () => {
    await database.runScript(DIVERGENCES['an updated_at function that does more'].join(';\n'))
    const plan = await runPlan()
    expect(
      plan.statements.filter((statement) =>
        statement.includes('update_openrouter_integration_updated_at'),
      ),
    ).toEqual([])
    expect(plan.unresolved.map(({ decide }) => decide)).toEqual([
      expect.stringMatching(
        /^production changed its body: the plan never replaces a function body production changed/,
      ),
    ])
    const owner = { role: 'authenticated', sub: ACCESS_USERS.A } as const
    const plaintext = await attemptAs(db, owner, (trx) =>
      (trx as Kysely<any>)
        .updateTable('x402_user_openrouter_integrations')
        .set({ encrypted_api_key: 'sk-or-v1-plaintext' })
        .where('user_id', '=', ACCESS_USERS.A)
        .execute(),
    )
    expect(plaintext).toMatchObject({
      ok: false,
      code: 'P0001',
      message: expect.stringMatching(/stored encrypted/),
    })
  })

  it('never adds a policy more permissive than production’s narrower one', async () => {
    await database.runScript(`
      DROP POLICY "Users can manage their own Claude config" ON x402_user_claude_configs;
      CREATE POLICY "Users read their own Claude config" ON x402_user_claude_configs FOR SELECT TO authenticated USING ((SELECT auth.uid()) = user_id);
    `)
    const plan = await runPlan()
    expect(plan.statements.filter((statement) => statement.includes('CREATE POLICY'))).toEqual([])
    // Both are left to a person: the module's policy that production replaced, and production's own.
    expect(plan.unresolved).toEqual([
      {
        line: expect.stringMatching(
          /^x402_user_claude_configs: policy "Users can manage their own Claude config": missing: FOR ALL TO public/,
        ),
        decide: expect.stringMatching(
          /^adding it would give public ALL access beyond what production's own policies on x402_user_claude_configs allow \(.*"Users read their own Claude config" FOR SELECT TO authenticated.*\); the plan never adds a policy more permissive/,
        ),
      },
      {
        line: expect.stringMatching(
          /^x402_user_claude_configs: policy "Users read their own Claude config": extra: FOR SELECT TO authenticated /,
        ),
        decide: expect.stringMatching(/The plan never drops or changes what production added\./),
      },
    ])
    // A signed-in user still only reads their own key, and writes none.
    const user = { role: 'authenticated', sub: ACCESS_USERS.A } as const
    const written = await attemptAs(db, user, (trx) =>
      (trx as Kysely<any>)
        .insertInto('x402_user_claude_configs')
        .values({ user_id: ACCESS_USERS.A, api_key_encrypted: 'aa:bb' })
        .onConflict((oc) => oc.doNothing())
        .execute(),
    )
    expect(written).toMatchObject({ ok: false, code: '42501' })
  })

  it('never leaves a constraint that stored rows violate: it counts and names them, and adds nothing', async () => {
    await database.runScript(
      DIVERGENCES['pt_max_tokens_range dropped, and rows beyond it'].join(';\n'),
    )
    await database.runScript(`
      ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_openrouter_model_id_fkey;
      UPDATE x402_resources SET openrouter_model_id = '00000000-0000-4000-8000-00000000dead' WHERE id = '${resourceId(5)}';
      ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check;
      INSERT INTO x402_resources (name, resource_url, normalized_url, network, pay_to, resource_type)
        VALUES ('Legacy', 'https://legacy.example.test', 'legacy.example.test', 'base', '0x0', 'legacy');
      ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check
        CHECK (resource_type IN ('external', 'proxy', 'prompt', 'static', 'prompt_template', 'openrouter_instant')) NOT VALID;
    `)
    const plan = await runPlan()
    expect(plan.statements.filter((statement) => /CONSTRAINT|VALIDATE/.test(statement))).toEqual([])
    const decisions = plan.unresolved.map(({ decide }) => decide)
    expect(decisions).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(
            `^2 stored row\\(s\\) of x402_resources violate it: id=(${resourceId(61)}|${resourceId(62)}); id=(${resourceId(61)}|${resourceId(62)}); the plan adds no constraint that stored rows violate`,
          ),
        ),
        expect.stringMatching(
          new RegExp(
            `^1 stored row\\(s\\) of x402_resources point at no row: id=${resourceId(5)}; the plan adds no constraint`,
          ),
        ),
        expect.stringMatching(
          /^1 stored row\(s\) of x402_resources violate it: id=[0-9a-f-]{36}; VALIDATE would fail on them/,
        ),
      ]),
    )
    // Nothing of the plan can fail: a second run of it above found nothing to do either.
    await expect(baselineMigrations(db, AT, { decisions: [] })).rejects.toBeInstanceOf(
      BaselineRefusedError,
    )
  })

  it('compares views: one that lets anon read keys past the policies is a conflict at adoption and for migrate:check', async () => {
    await database.runScript(
      `CREATE VIEW x402_openrouter_keys AS SELECT user_id, encrypted_api_key FROM x402_user_openrouter_integrations`,
    )
    const plan = await runPlan()
    expect(plan.unresolved.map(({ line }) => line)).toEqual([
      expect.stringMatching(
        /^x402_openrouter_keys: view: extra \(a view that reads x402_user_openrouter_integrations with its owner's rights, past row level security: anon and authenticated can read rows through it/,
      ),
    ])
    const refusal = await baselineMigrations(db, AT, { decisions: [] }).catch(
      (error: unknown) => error,
    )
    expect((refusal as BaselineRefusedError).diff!.conflict.map(({ key }) => key)).toEqual([
      'relations x402_openrouter_keys',
    ])

    // Adopted without it, the same view made afterwards is drift; so is the marketplace view made to read as its owner.
    await database.runScript('DROP VIEW x402_openrouter_keys')
    await baselineMigrations(db, AT, { decisions: [] })
    expect((await checkDrift(db, { decisions: [] })).ok).toBe(true)
    await database.runScript(`
      CREATE VIEW x402_openrouter_keys AS SELECT user_id, encrypted_api_key FROM x402_user_openrouter_integrations;
      ALTER VIEW public_x402_resources SET (security_invoker = off);
    `)
    const drift = await checkDrift(db, { decisions: [] })
    expect(drift.ok).toBe(false)
    expect(drift.schema!.conflict.map(({ line }) => line)).toEqual([
      expect.stringMatching(
        /^public_x402_resources: view: extra \(a view that reads x402_resources with its owner's rights, past row level security: anon and authenticated can read rows/,
      ),
      expect.stringMatching(
        /^x402_openrouter_keys: view: extra \(a view that reads x402_user_openrouter_integrations with its owner's rights/,
      ),
    ])
  })
})
