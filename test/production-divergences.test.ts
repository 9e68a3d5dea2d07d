import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { AccessEntry } from '../src/access/measure-access.js'
import {
  type AdoptionDecision,
  BaselineRefusedError,
  baselineMigrations,
  checkDrift,
  exportBaselineSql,
  migrateToLatest,
  planRepair,
  readAcceptedDifferences,
} from '../src/tooling.js'
import { gainedAccess, MODULE_RELATIONS, whoMayDoWhat } from './support/access-gained.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import {
  createProductionTodayDatabase,
  type Divergence,
  DIVERGENCES,
  PRODUCTION_TODAY_ADOPTION_POINT,
  rowDigests,
} from './support/production-today.js'
import { testTargets } from './support/test-database.js'

// Production's own additions stay. Each divergence of production-today.md's last list, on top of
// production today: the module never drops or rewrites it. What is stricter is accepted and
// recorded; what lets someone do more, or is looser, is a conflict until adoption-decisions.json
// accepts it by name, and is then recorded beside the accepted differences, held by
// migrate:check, and drift again once it changes or the file no longer declares it. No row is
// edited, and nobody gains access through adoption or the migrations that follow.

const AT = PRODUCTION_TODAY_ADOPTION_POINT

interface Case {
  /** The conflicts it is refused with until decided (none: it is stricter, and accepted). */
  conflicts: RegExp[]
  /** SQL that is true while production's own object is as production made it. */
  kept: string
  /** A later hand change to it, which migrate:check reports. */
  laterChange: string
}

const CASES: Record<Divergence, Case> = {
  'a public read policy on x402_resources': {
    conflicts: [
      /^x402_resources: policy "Marketplace reads listed resources": extra: FOR SELECT TO anon, authenticated USING .* \(a policy no migration creates\)$/,
    ],
    kept: `SELECT pg_get_expr(polqual, polrelid) LIKE '%is_public%' FROM pg_policy WHERE polname = 'Marketplace reads listed resources'`,
    laterChange: `ALTER POLICY "Marketplace reads listed resources" ON x402_resources USING (true)`,
  },
  'an audit trigger on the OpenRouter keys table': {
    conflicts: [
      /^x402_user_openrouter_integrations: trigger audit_openrouter_key_change: extra: .*\(no migration creates it, on a table the module creates whole\)$/,
    ],
    kept: `SELECT count(*) = 1 FROM pg_trigger WHERE tgname = 'audit_openrouter_key_change'`,
    laterChange: `DROP TRIGGER audit_openrouter_key_change ON x402_user_openrouter_integrations;
      CREATE TRIGGER audit_openrouter_key_change AFTER INSERT ON x402_user_openrouter_integrations
      FOR EACH ROW EXECUTE FUNCTION audit_openrouter_key_change()`,
  },
  'an extra network in the CHECK, used by rows': {
    conflicts: [
      /^x402_resources: constraint x402_resources_network_check: definition: live .*'avalanche'.* \/ expected /,
    ],
    kept: `SELECT pg_get_constraintdef(oid) LIKE '%avalanche%' AND (SELECT count(*) FROM x402_resources WHERE network = 'avalanche') = 3
           FROM pg_constraint WHERE conname = 'x402_resources_network_check'`,
    laterChange: `ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_network_check;
      ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_network_check CHECK (network IN ('solana', 'base', 'ethereum', 'polygon',
        'base-sepolia', 'ethereum-sepolia', 'solana-devnet', 'avalanche', 'arbitrum'))`,
  },
  'pt_max_tokens_range dropped, and rows beyond it': {
    conflicts: [/^x402_resources: constraint pt_max_tokens_range: missing: CHECK /],
    kept: `SELECT NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'pt_max_tokens_range') AND (SELECT count(*) FROM x402_resources WHERE pt_max_tokens = 16384) = 2`,
    laterChange: `ALTER TABLE x402_resources ADD CONSTRAINT pt_max_tokens_range CHECK (pt_max_tokens IS NULL OR pt_max_tokens BETWEEN 1 AND 32768)`,
  },
  'an updated_at function that does more': {
    conflicts: [
      /^function update_openrouter_integration_updated_at\(\): definition: live .*cannot change.* \/ expected /,
    ],
    kept: `SELECT prosrc LIKE '%cannot change%' FROM pg_proc WHERE proname = 'update_openrouter_integration_updated_at'`,
    // Back to the module's plain body: production's protection is gone, which is drift.
    laterChange: `CREATE OR REPLACE FUNCTION update_openrouter_integration_updated_at() RETURNS trigger LANGUAGE plpgsql SET search_path = ''
      AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END; $$`,
  },
  'the Claude policy hardened as 008 makes it': {
    conflicts: [],
    kept: `SELECT polroles = ARRAY['authenticated'::regrole]::oid[] FROM pg_policy WHERE polname = 'Users can manage their own Claude config'`,
    laterChange: `ALTER POLICY "Users can manage their own Claude config" ON x402_user_claude_configs TO authenticated, anon`,
  },
}

/** The decisions a reviewer writes for `conflicts`: each difference, its live value, and why. */
function decide(conflicts: BaselineRefusedError['diff']): AdoptionDecision[] {
  return conflicts!.conflict
    .filter((difference) => difference.decidable)
    .map(({ key, field, live }) => ({
      key,
      field,
      live,
      reason: 'Production relies on it; reviewed in the take-over test.',
    }))
}

async function kept(db: Kysely<any>, query: string): Promise<boolean> {
  const { rows } = await sql.raw<Record<string, boolean>>(query).execute(db)
  return Object.values(rows[0]!)[0] === true
}

describe.each(testTargets)('production’s own additions, on %s', (target) => {
  describe.each(Object.keys(DIVERGENCES) as Divergence[])('%s', (divergence) => {
    const { conflicts, kept: keptQuery, laterChange } = CASES[divergence]
    let database: ScriptableDatabase
    let db: Kysely<any>
    let rows: Record<string, string>
    let access: AccessEntry[]
    let decisions: AdoptionDecision[] = []
    beforeAll(async () => {
      database = await createProductionTodayDatabase(target, createScriptableDatabase)
      db = database.db
      await database.runScript(DIVERGENCES[divergence].join(';\n'))
      rows = await rowDigests(db)
      access = await whoMayDoWhat(db, MODULE_RELATIONS)
    })
    afterAll(async () => {
      await database.destroy()
    })

    it('is kept by adoption: accepted where stricter, otherwise refused until a decision names it', async () => {
      // The repair plan leaves it alone, and says what to decide.
      const plan = await planRepair(db, AT, { decisions: [] })
      expect(plan.unresolved.map(({ line }) => line)).toEqual(
        conflicts.map((pattern) => expect.stringMatching(pattern)),
      )
      for (const { decide } of plan.unresolved)
        expect(decide).toMatch(/Or keep it as it is by a decision in adoption-decisions\.json/)
      for (const statement of plan.statements) expect(statement).toMatch(/^COMMENT ON /)
      for (const statement of plan.statements) await sql.raw(statement).execute(db)

      const refusal = await baselineMigrations(db, AT, { decisions: [] }).catch(
        (error: unknown) => error,
      )
      if (conflicts.length === 0) {
        expect(refusal).not.toBeInstanceOf(Error)
        const accepted = (await readAcceptedDifferences(db)).map(({ key }) => key)
        expect(accepted).toContain(
          'policies x402_user_claude_configs.Users can manage their own Claude config',
        )
      } else {
        expect(refusal).toBeInstanceOf(BaselineRefusedError)
        const { diff } = refusal as BaselineRefusedError
        expect(diff!.conflict.map(({ line }) => line)).toEqual(
          conflicts.map((pattern) => expect.stringMatching(pattern)),
        )
        decisions = decide(diff)
        expect(decisions).toHaveLength(conflicts.length)
        const adopted = await baselineMigrations(db, AT, { decisions })
        expect(adopted.diff.conflict).toEqual([])
        const recorded = adopted.diff.accepted.filter(({ decision }) => decision !== null)
        expect(recorded.map(({ key }) => key)).toEqual(decisions.map(({ key }) => key))
        for (const { line } of recorded)
          expect(line).toMatch(/decided in adoption-decisions\.json\)$/)
        const lines = recorded.map(({ line }) =>
          line
            .replace(/; decided in adoption-decisions\.json\)$/, ')')
            .replace(/ \(decided in adoption-decisions\.json\)$/, ''),
        )
        expect(lines).toEqual(conflicts.map((pattern) => expect.stringMatching(pattern)))
      }
      expect(await kept(db, keptQuery)).toBe(true)
      expect(await rowDigests(db)).toEqual(rows)
    })

    it('stays through migrate:latest, is what migrate:check expects, and nobody gained access', async () => {
      await migrateToLatest(db)
      expect(await kept(db, keptQuery)).toBe(true)
      expect(await rowDigests(db)).toEqual(rows)
      const report = await checkDrift(db, { decisions })
      expect(report.schema?.conflict.map(({ line }) => line)).toEqual([])
      expect(report.ok).toBe(true)
      expect(gainedAccess(access, await whoMayDoWhat(db, MODULE_RELATIONS))).toEqual([])
      // Without its decision in the file, a decided difference is drift again.
      if (decisions.length > 0) expect((await checkDrift(db, { decisions: [] })).ok).toBe(false)
    })

    it('is drift once changed by hand after adoption', async () => {
      await database.runScript(laterChange)
      const report = await checkDrift(db, { decisions })
      expect(report.ok).toBe(false)
    })
  })

  it('the SQL Editor script accepts the same decisions, and records them', async () => {
    const database = await createProductionTodayDatabase(target, createScriptableDatabase)
    try {
      await database.runScript(DIVERGENCES['a public read policy on x402_resources'].join(';\n'))
      const refusal = (await baselineMigrations(database.db, AT, { decisions: [] }).catch(
        (error: unknown) => error,
      )) as BaselineRefusedError
      const decisions = decide(refusal.diff)
      await expect(
        database.runScript(await exportBaselineSql(AT, { decisions: [] })),
      ).rejects.toThrow(/Marketplace reads listed resources/)
      await database.runScript(await exportBaselineSql(AT, { decisions }))
      const { rows } = await sql<{ decision: string }>`
        SELECT decision FROM x402_migrations.accepted_schema_difference WHERE decision IS NOT NULL
      `.execute(database.db)
      expect(rows).toEqual([
        { decision: 'Production relies on it; reviewed in the take-over test.' },
      ])
      expect((await checkDrift(database.db, { decisions })).ok).toBe(true)
    } finally {
      await database.destroy()
    }
  })
})
