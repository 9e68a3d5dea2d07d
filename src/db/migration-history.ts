import { type Kysely, sql } from 'kysely'

import { migrationNames } from '../migrations/index.js'
import { MIGRATION_TABLE_SCHEMA } from './migration-runner.js'

/**
 * The names in x402_migrations.kysely_migration, sorted; none where the table does not exist
 * (nothing was ever recorded).
 *
 * @example
 * ```ts
 * await recordedMigrationNames(db) // ['000_baseline_ai_models', …]
 * ```
 */
export async function recordedMigrationNames(db: Kysely<any>): Promise<string[]> {
  const table = `${MIGRATION_TABLE_SCHEMA}.kysely_migration`
  const { rows: found } = await sql<{ present: boolean }>`SELECT to_regclass(${table}) IS NOT NULL AS present`.execute(db)
  if (!found[0]!.present) return []
  const { rows } = await sql<{ name: string }>`SELECT name FROM ${sql.raw(table)} ORDER BY name`.execute(db)
  return rows.map((row) => row.name)
}

/**
 * What is wrong with a recorded history, one sentence each: names this module does not know,
 * and gaps (Kysely's Migrator requires the applied migrations to be the first ones). With
 * `upTo`, also names recorded after it, which adopting the database at `upTo` contradicts.
 *
 * @example
 * ```ts
 * historyDisagreements(['000_baseline_ai_models', '006_x'], '005_add_openrouter_integration')
 * ```
 */
export function historyDisagreements(recorded: readonly string[], upTo?: string): string[] {
  const known = migrationNames
  const problems: string[] = []
  const unknown = recorded.filter((name) => !known.includes(name))
  if (unknown.length > 0) {
    problems.push(`the history records ${unknown.join(', ')}, which this module does not have (is the module older than the database?)`)
  }
  if (upTo !== undefined) {
    const later = recorded.filter((name) => known.includes(name) && name > upTo)
    if (later.length > 0) {
      problems.push(`the history already records ${later.join(', ')}, which come after ${upTo}: adopt at the newest recorded migration or later`)
    }
  }
  const prefix = known.slice(0, recorded.length - unknown.length)
  const skipped = prefix.filter((name) => !recorded.includes(name))
  if (skipped.length > 0) {
    problems.push(`the history skips ${skipped.join(', ')} while recording later migrations, which Kysely's Migrator refuses`)
  }
  return problems
}
