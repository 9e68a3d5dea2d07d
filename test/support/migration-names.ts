import { migrationNames } from '../../src/migrations/index.js'

/** Every migration's name, in the order Kysely applies them. */
export const ALL_MIGRATIONS = migrationNames

/**
 * The names of the migrations up to and including `last`, in order: what a database migrated to
 * `last` has recorded.
 *
 * @example
 * ```ts
 * migrationsThrough('002_add_claude_integration') // ['000_baseline_ai_models', …, '002_add_claude_integration']
 * ```
 */
export function migrationsThrough(last: string): string[] {
  return ALL_MIGRATIONS.filter((name) => name <= last)
}

/**
 * The names of the migrations after `last`, in order: what `migrate:latest` applies to a
 * database migrated to `last`.
 *
 * @example
 * ```ts
 * migrationsAfter('002_add_claude_integration') // ['005_add_openrouter_integration', '006_…', …]
 * ```
 */
export function migrationsAfter(last: string): string[] {
  return ALL_MIGRATIONS.filter((name) => name > last)
}
