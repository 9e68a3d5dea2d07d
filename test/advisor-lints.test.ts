import { describe, expect, it } from 'vitest'

import { migrateToLatest, runAdvisor } from '../src/tooling.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Supabase's advisor on the module's objects, run as the dashboard runs it: the lints of
// src/advisor/advisor-lints.ts (after supabase/splinter's criteria), Security and Performance, in
// one transaction, with PostgREST's exposed schemas set. Before 008 they find what the advisor
// reports on production; after it, nothing but unused_index, which every index of a fresh database raises.

const MODULE_SCHEMAS = ['public', 'x402_migrations', 'x402_backup']

interface Finding {
  lint: string
  level: string
  schema_name: string
  object_name: string
}

describe.each(testTargets)('the advisor on %s', (target) => {
  const database = useTestDatabase(target, '007_openrouter_policies_per_supabase_advice')

  async function findings(): Promise<Finding[]> {
    const report = await runAdvisor(database.db, { performance: true })
    expect(report.skipped).toEqual([])
    return report.findings
      .map(({ lint, level, object, detail }) => {
        const [schema_name, name] = [
          object.slice(0, object.indexOf('.')),
          object.slice(object.indexOf('.') + 1),
        ]
        // A policy's finding names its table, and the policy in its detail.
        const object_name = detail?.startsWith('policy ')
          ? `${name}: ${detail.slice('policy '.length)}`
          : name
        return {
          lint,
          level,
          schema_name,
          object_name: lint === 'unused_index' ? detail!.slice('index '.length) : object_name,
        }
      })
      .filter((row) => MODULE_SCHEMAS.includes(row.schema_name))
      .sort((a, b) => `${a.lint} ${a.object_name}`.localeCompare(`${b.lint} ${b.object_name}`))
  }

  it('finds, before 008, what the issue reported on the module’s objects', async () => {
    const found = (await findings()).filter((finding) => finding.lint !== 'unused_index')
    // No multiple_permissive_policies: 002's user policy is for everyone, service_role included,
    // beside service_role's own, but a role with BYPASSRLS does not count.
    expect(found).toEqual([
      {
        lint: 'auth_rls_initplan',
        level: 'WARN',
        schema_name: 'public',
        object_name: 'x402_user_claude_configs: Users can manage their own Claude config',
      },
      {
        lint: 'function_search_path_mutable',
        level: 'WARN',
        schema_name: 'public',
        object_name: 'update_claude_config_updated_at',
      },
      {
        lint: 'rls_disabled_in_public',
        level: 'ERROR',
        schema_name: 'public',
        object_name: 'x402_openrouter_models',
      },
      {
        lint: 'rls_disabled_in_public',
        level: 'ERROR',
        schema_name: 'public',
        object_name: 'x402_resources',
      },
    ])
  })

  it('finds nothing on the module’s objects after 008 but unused_index', async () => {
    await migrateToLatest(database.db)
    const found = await findings()
    expect(found.filter((finding) => finding.lint !== 'unused_index')).toEqual([])
    expect(found.map((finding) => finding.object_name)).toContain('idx_claude_configs_user_enabled')
  })
})
