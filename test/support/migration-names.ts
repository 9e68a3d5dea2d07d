import { migrationNames } from '../../src/migrations/index.js'

/** Every migration's name, in the order Kysely applies them. */
export const ALL_MIGRATIONS = migrationNames

/**
 * The full name of the migration numbered `number`; throws when there is none, so that a
 * renamed or removed migration fails the tests that name it, at import.
 */
function migrationNumbered(number: string): string {
  const name = ALL_MIGRATIONS.find((candidate) => candidate.startsWith(`${number}_`))
  if (!name)
    throw new Error(
      `No migration is numbered ${number}: src/migrations/index.ts lists ${ALL_MIGRATIONS.join(', ')}.`,
    )
  return name
}

export const MIGRATION_001 = migrationNumbered('001')
export const MIGRATION_002 = migrationNumbered('002')
export const MIGRATION_005 = migrationNumbered('005')
export const MIGRATION_006 = migrationNumbered('006')
export const MIGRATION_007 = migrationNumbered('007')
export const MIGRATION_008 = migrationNumbered('008')

/** The newest migration before 005: a database as production had it before the OpenRouter keys. */
export const BEFORE_005 = MIGRATION_002

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
