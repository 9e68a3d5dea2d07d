import type { Migration } from 'kysely/migration'

import * as m000BaselineAiModels from './000_baseline_ai_models.js'
import * as m000BaselineX402Resources from './000_baseline_x402_resources.js'
import * as m001AddPromptTemplateFields from './001_add_prompt_template_fields.js'
import * as m002AddClaudeIntegration from './002_add_claude_integration.js'
import * as m005AddOpenrouterIntegration from './005_add_openrouter_integration.js'
import * as m006RenameToProductionNames from './006_rename_to_production_names.js'
import * as m007OpenrouterPoliciesPerSupabaseAdvice from './007_openrouter_policies_per_supabase_advice.js'
import * as m008CloseSupabaseAdvisorFindings from './008_close_supabase_advisor_findings.js'

/**
 * Every migration of the module, keyed by its file name without extension. Kysely applies them
 * in the order of their names. Static imports, not a folder scan, so that the same list works
 * from the TypeScript sources (tsx, vitest) and from compiled JavaScript; a test checks that
 * every file in this folder is listed here.
 */
export const migrations: Readonly<Record<string, Migration>> = {
  '000_baseline_ai_models': m000BaselineAiModels,
  '000_baseline_x402_resources': m000BaselineX402Resources,
  '001_add_prompt_template_fields': m001AddPromptTemplateFields,
  '002_add_claude_integration': m002AddClaudeIntegration,
  '005_add_openrouter_integration': m005AddOpenrouterIntegration,
  '006_rename_to_production_names': m006RenameToProductionNames,
  '007_openrouter_policies_per_supabase_advice': m007OpenrouterPoliciesPerSupabaseAdvice,
  '008_close_supabase_advisor_findings': m008CloseSupabaseAdvisorFindings,
}

/** Every migration's name, in the order Kysely applies them (by name). */
export const migrationNames: readonly string[] = Object.keys(migrations).sort()
