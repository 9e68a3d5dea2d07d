import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  BaselineRefusedError,
  baselineMigrations,
  exportBaselineSql,
  formatSchemaDiff,
  planRepair,
} from '../src/tooling.js'
import { createHandBuiltDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import { testTargets } from './support/test-database.js'
import { MIGRATION_005 } from './support/migration-names.js'

// The comparison rules exist once (src/schema/rules.ts, one SQL query). This runs every rule
// through both paths that use them, migrate:baseline (TypeScript, through Kysely) and the SQL
// Editor script of migrate:sql -- --baseline, and requires the same classes in the same words.

/** One change per rule, on a database hand-built to 005. */
const CHANGES = `
  COMMENT ON TABLE x402_resources IS 'Worded by hand';
  CREATE OR REPLACE FUNCTION update_claude_config_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
      NEW.updated_at=NOW();
    RETURN NEW;
  END;
  $$;
  CREATE OR REPLACE FUNCTION update_openrouter_integration_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN NEW.updated_at = clock_timestamp(); RETURN NEW; END;
  $$;
  ALTER TABLE x402_resources ENABLE ROW LEVEL SECURITY;
  ALTER TABLE x402_resources FORCE ROW LEVEL SECURITY;
  ALTER TABLE user_openrouter_integrations DISABLE ROW LEVEL SECURITY;
  REVOKE INSERT ON x402_resources FROM anon;
  GRANT SELECT (name) ON x402_resources TO anon;
  ALTER TABLE x402_resources ADD COLUMN by_hand text;
  ALTER TABLE x402_resources ADD CONSTRAINT by_hand_name_length CHECK (length(name) < 500);
  CREATE INDEX by_hand_on_name ON x402_resources (name);
  CREATE TRIGGER by_hand_trigger BEFORE UPDATE ON x402_resources FOR EACH ROW EXECUTE FUNCTION update_claude_config_updated_at();
  CREATE POLICY "Anon reads, RLS off in the module" ON x402_resources FOR SELECT TO anon USING (true);
  CREATE POLICY "Service role, bypasses RLS anyway" ON x402_user_claude_configs FOR ALL TO service_role USING (true);
  CREATE POLICY "Restrictive" ON x402_user_claude_configs AS RESTRICTIVE FOR DELETE TO authenticated USING (false);
  CREATE POLICY "Anon reads keys" ON x402_user_claude_configs FOR SELECT TO anon USING (true);
  CREATE INDEX by_hand_on_keys ON user_openrouter_integrations (user_id);
  ALTER TABLE x402_resources ALTER COLUMN resource_type SET DEFAULT 'proxy';
  ALTER TABLE x402_resources ALTER COLUMN slug SET NOT NULL;
  ALTER TABLE x402_resources DROP CONSTRAINT pt_max_tokens_range;
  ALTER TABLE x402_resources ADD CONSTRAINT pt_max_tokens_range CHECK (pt_max_tokens IS NULL OR pt_max_tokens BETWEEN 1 AND 8192) NOT VALID;
  ALTER TABLE x402_user_claude_configs DISABLE TRIGGER claude_config_updated_at;
  DROP INDEX idx_claude_configs_user_enabled;
  ALTER TABLE ai_models RENAME TO renamed_models;
  DROP POLICY "Service role full access on OpenRouter" ON user_openrouter_integrations;
  COMMENT ON TABLE user_openrouter_integrations IS NULL;
`

/** The line each rule gives, under its class. */
const EXPECTED = {
  conflict: [
    'ai_models: table: missing (probably renamed: renamed_models has its columns and keys.',
    'user_openrouter_integrations: table: row level security: live false / expected true (off where the module has it on)',
    'user_openrouter_integrations: index by_hand_on_keys: extra: CREATE INDEX by_hand_on_keys ON public.user_openrouter_integrations USING btree (user_id) (no migration creates it, on a table the module creates whole)',
    "x402_resources: column resource_type: default: live 'proxy'::text / expected 'external'::text",
    'x402_resources: column slug: not null: live true / expected false',
    'x402_resources: column name: grants: live {anon: SELECT} / expected none',
    'x402_resources: constraint pt_max_tokens_range: validated: live false / expected true',
    'x402_resources: constraint x402_resources_openrouter_model_id_fkey: definition: live FOREIGN KEY (openrouter_model_id) REFERENCES renamed_models(id) ON DELETE SET NULL / expected FOREIGN KEY (openrouter_model_id) REFERENCES ai_models(id) ON DELETE SET NULL',
    'user_openrouter_integrations: policy "Service role full access on OpenRouter": missing: FOR ALL TO service_role USING true',
    'x402_user_claude_configs: index idx_claude_configs_user_enabled: missing: CREATE INDEX',
    'x402_user_claude_configs: trigger claude_config_updated_at: enabled: live D / expected O',
    'x402_resources: policy "Anon reads, RLS off in the module": extra: FOR SELECT TO anon USING true (a policy no migration creates)',
    'x402_user_claude_configs: policy "Anon reads keys": extra: FOR SELECT TO anon USING true (a policy no migration creates)',
    'function update_openrouter_integration_updated_at(): definition: live CREATE OR REPLACE FUNCTION',
  ],
  accepted: [
    'x402_resources: table: row level security: live true / expected false (on where the module leaves it off)',
    'x402_resources: table: forced row level security: live true / expected false (on where the module leaves it off)',
    'x402_resources: table: grants: live {',
    'x402_resources: column by_hand: extra: text (no migration creates it)',
    'x402_resources: constraint by_hand_name_length: extra: CHECK ((length(name) < 500)) (no migration creates it)',
    'x402_resources: index by_hand_on_name: extra: CREATE INDEX by_hand_on_name ON public.x402_resources USING btree (name) (no migration creates it)',
    'x402_resources: trigger by_hand_trigger: extra: CREATE TRIGGER by_hand_trigger',
    'x402_user_claude_configs: policy "Service role, bypasses RLS anyway": extra: FOR ALL TO service_role USING true (a policy no migration creates)',
    'x402_user_claude_configs: policy "Restrictive": extra: AS RESTRICTIVE FOR DELETE TO authenticated USING false (a policy no migration creates)',
  ],
  equivalent: [
    'user_openrouter_integrations: table: comment: live none / expected ',
    'x402_resources: table: comment: live Worded by hand / expected none',
    'function update_claude_config_updated_at(): definition (the same but for whitespace and letter case)',
  ],
}

describe.each(testTargets)('the comparison rules on %s', (target) => {
  let database: ScriptableDatabase
  beforeAll(async () => {
    database = await createHandBuiltDatabase(target, MIGRATION_005, [CHANGES])
  })
  afterAll(async () => {
    await database.destroy()
  })

  /** What migrate:baseline refused with, and what the SQL script stopped with. */
  async function bothPaths(
    name: string,
    strict = false,
  ): Promise<{ command: string; script: string }> {
    const refusal = await baselineMigrations(database.db, name, { strict }).catch(
      (error: unknown) => error,
    )
    expect(refusal).toBeInstanceOf(BaselineRefusedError)
    const command = formatSchemaDiff((refusal as BaselineRefusedError).diff!)
    const stopped = await database
      .runScript(await exportBaselineSql(name, { strict }))
      .catch((error: unknown) => error)
    expect(stopped).toBeInstanceOf(Error)
    return { command, script: (stopped as Error).message }
  }

  const prefix = (name: string) =>
    `The live schema conflicts with what the migrations up to ${name} produce; nothing was recorded.\n`

  it('classes every rule alike in migrate:baseline and the SQL Editor script', async () => {
    const { command, script } = await bothPaths(MIGRATION_005)
    expect(script).toBe(prefix(MIGRATION_005) + command)
    const sections = command.split(/\n(?=\S)/)
    expect(sections.map((section) => section.split('\n')[0])).toEqual([
      'Conflicts (adoption refuses; see the repair plan: npm run migrate:baseline -- <name> --plan):',
      'Production has more or is stricter (accepted, and recorded at adoption):',
      'Equivalent (the same schema, spelled differently; never blocks):',
    ])
    const [conflicts, accepted, equivalent] = sections.map((section) =>
      section
        .split('\n')
        .slice(1)
        .map((line) => line.slice(2)),
    )
    for (const [found, expected] of [
      [conflicts, EXPECTED.conflict],
      [accepted, EXPECTED.accepted],
      [equivalent, EXPECTED.equivalent],
    ] as const) {
      for (const line of expected)
        expect(
          found!.some((one) => one.startsWith(line)),
          `"${line}" in ${found!.join('\n')}`,
        ).toBe(true)
      expect(found, found!.join('\n')).toHaveLength(expected.length)
    }
  })

  it('classes what a later migration creates alike, and --strict makes every difference a conflict in both', async () => {
    const earlier = await bothPaths('002')
    expect(earlier.script).toBe(prefix('002_add_claude_integration') + earlier.command)
    expect(earlier.command).toContain(
      '  user_openrouter_integrations: table: extra (a later migration, 005_add_openrouter_integration, creates it: adopt at that migration)',
    )

    const strict = await bothPaths(MIGRATION_005, true)
    expect(strict.script).toBe(prefix(MIGRATION_005) + strict.command)
    expect(strict.command.split('\n')[0]).toMatch(/^Conflicts/)
    expect(strict.command).not.toMatch(/^(Production has more|Equivalent)/m)
    const all = EXPECTED.conflict.length + EXPECTED.accepted.length + EXPECTED.equivalent.length
    expect(strict.command.split('\n')).toHaveLength(1 + all)
  })

  it('classes owners, triggers on the keys table, fixed search_paths and equivalent spellings alike in both', async () => {
    const { rows } = await sql<{ definition: string }>`
      SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conname = 'x402_resources_resource_type_check'
    `.execute(database.db)
    const values = [...rows[0]!.definition.matchAll(/'([^']*)'::text/g)].map((match) => match[1]!)
    const orChain = values.map((value) => `resource_type = '${value}'`).join(' OR ')
    const changes = [
      `ALTER FUNCTION update_claude_config_updated_at() SET search_path = ''`,
      'ALTER FUNCTION update_openrouter_integration_updated_at() OWNER TO authenticated',
      'CREATE TRIGGER by_hand_on_keys BEFORE UPDATE ON x402_user_claude_configs FOR EACH ROW EXECUTE FUNCTION update_claude_config_updated_at()',
      'ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check',
      `ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check CHECK (${orChain})`,
      'ALTER TABLE x402_user_claude_configs ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP',
    ]
    for (const statement of changes) await sql.raw(statement).execute(database.db)
    try {
      const { command, script } = await bothPaths(MIGRATION_005)
      expect(script).toBe(prefix(MIGRATION_005) + command)
      const lines = command.split('\n')
      const under = (heading: RegExp, line: RegExp) => {
        const start = lines.findIndex((one) => heading.test(one))
        const end = lines.findIndex((one, index) => index > start && /^\S/.test(one))
        expect(
          lines.slice(start + 1, end < 0 ? undefined : end).some((one) => line.test(one)),
          `${line} under ${heading}\n${command}`,
        ).toBe(true)
      }
      under(
        /^Conflicts/,
        /^ {2}function update_openrouter_integration_updated_at\(\): owner: live authenticated \/ expected a role no API role can act as \(an API role owns it/,
      )
      under(
        /^Conflicts/,
        /^ {2}x402_user_claude_configs: trigger by_hand_on_keys: extra: .*\(a trigger no migration creates, on a table that holds keys/,
      )
      under(
        /^Production has more/,
        /^ {2}function update_claude_config_updated_at\(\): definition: .*\(a fixed search_path the module lacks\)$/,
      )
      under(
        /^Equivalent/,
        /^ {2}x402_resources: constraint x402_resources_resource_type_check: definition: .*\(the same allowed values\)$/,
      )
      under(
        /^Equivalent/,
        /^ {2}x402_user_claude_configs: column created_at: default: live CURRENT_TIMESTAMP \/ expected now\(\) \(the same time\)$/,
      )
    } finally {
      for (const statement of [
        'ALTER FUNCTION update_claude_config_updated_at() RESET search_path',
        'ALTER FUNCTION update_openrouter_integration_updated_at() OWNER TO CURRENT_USER',
        'DROP TRIGGER by_hand_on_keys ON x402_user_claude_configs',
        'ALTER TABLE x402_resources DROP CONSTRAINT x402_resources_resource_type_check',
        `ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check CHECK (resource_type IN (${values.map((value) => `'${value}'`).join(', ')}))`,
        'ALTER TABLE x402_user_claude_configs ALTER COLUMN created_at SET DEFAULT now()',
      ]) {
        await sql.raw(statement).execute(database.db)
      }
    }
  })

  it('has a repair plan that fixes what it safely can, under lock discipline, and leaves the rest to decide', async () => {
    const plan = await planRepair(database.db, MIGRATION_005)
    expect(plan.script).toMatch(/\nSET lock_timeout = '\d+ms';\n/)
    // The changed body of update_openrouter_integration_updated_at() is production's, and stays.
    expect(plan.statements).toEqual([
      'ALTER TABLE public.user_openrouter_integrations ENABLE ROW LEVEL SECURITY',
      expect.stringContaining(
        `EXECUTE 'CREATE POLICY "Service role full access on OpenRouter" ON public.user_openrouter_integrations AS PERMISSIVE FOR ALL TO service_role USING (true)'`,
      ),
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_claude_configs_user_enabled ON public.x402_user_claude_configs USING btree (user_id, is_enabled)',
      'ALTER TABLE public.x402_user_claude_configs ENABLE TRIGGER claude_config_updated_at',
      expect.stringMatching(/^COMMENT ON TABLE public\.user_openrouter_integrations IS '/),
      'ALTER TABLE public.x402_resources VALIDATE CONSTRAINT pt_max_tokens_range',
    ])
    expect(plan.unresolved.map(({ line }) => line.split(':').slice(0, 2).join(':'))).toEqual([
      'ai_models: table',
      'user_openrouter_integrations: index by_hand_on_keys',
      'x402_resources: column name',
      'x402_resources: column resource_type',
      'x402_resources: column slug',
      'x402_resources: constraint x402_resources_openrouter_model_id_fkey',
      'x402_resources: policy "Anon reads, RLS off in the module"',
      'x402_user_claude_configs: policy "Anon reads keys"',
      'function update_openrouter_integration_updated_at(): definition',
    ])
    expect(plan.script).not.toMatch(/^[^-\n]*\b(DROP|DISABLE|TRUNCATE|DELETE|REVOKE)\b/m)

    for (const statement of plan.statements) await sql.raw(statement).execute(database.db)
    const after = await planRepair(database.db, MIGRATION_005)
    expect(after.statements).toEqual([])
    expect(after.unresolved).toEqual(plan.unresolved)
  })

  it('says plainly "missing" of a table that nothing resembles, alike in both', async () => {
    await sql`ALTER TABLE user_openrouter_integrations RENAME TO unlike_keys`.execute(database.db)
    await sql`ALTER TABLE unlike_keys DROP COLUMN is_valid`.execute(database.db)
    const { command, script } = await bothPaths(MIGRATION_005)
    expect(script).toBe(prefix(MIGRATION_005) + command)
    expect(command).toContain('\n  user_openrouter_integrations: table: missing\n')
  })
})
