import { migrationNames } from '../migrations/index.js'

/**
 * The full name of a migration given its full name or a unique prefix. Throws, listing the known
 * migrations, when none or several match.
 *
 * @example
 * ```ts
 * resolveMigrationName('005') // '005_add_openrouter_integration'
 * ```
 */
export function resolveMigrationName(query: string): string {
  const names = migrationNames
  if (names.includes(query)) return query
  const matches = names.filter((name) => name.startsWith(query))
  if (matches.length === 1) return matches[0]!
  const known = `Known migrations: ${names.join(', ')}.`
  throw new Error(
    matches.length === 0
      ? `No migration is named "${query}". ${known}`
      : `"${query}" matches several migrations (${matches.join(', ')}); give more of the name.`,
  )
}

/**
 * The module's migrations up to and including `name`, in the order they apply.
 *
 * @example
 * ```ts
 * migrationNamesUpTo('001_add_prompt_template_fields') // ['000_baseline_ai_models', '000_baseline_x402_resources', '001_…']
 * ```
 */
export function migrationNamesUpTo(name: string): string[] {
  return migrationNames.filter((known) => known <= name)
}

/**
 * The migration that comes before `name`, or null for the first.
 *
 * @example
 * ```ts
 * migrationBefore('005_add_openrouter_integration') // '002_add_claude_integration'
 * ```
 */
export function migrationBefore(name: string): string | null {
  return migrationNames[migrationNames.indexOf(name) - 1] ?? null
}
