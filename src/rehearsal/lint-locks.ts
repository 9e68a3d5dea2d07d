import { existsSync, readFileSync } from 'node:fs'

import { migrationNames } from '../migrations/index.js'
import { migrationBefore } from '../migrator/migration-names.js'
import {
  checkBusyTablesExist,
  checkLockPolicy,
  excerpt,
  type LockPolicy,
  type LockViolation,
  readLockExceptions,
} from './lock-policy.js'
import { type Rehearsal, rehearse, type RehearsalStep } from './rehearse.js'

/** The result of {@link lintMigrationLocks}. */
export interface LockLint {
  rehearsal: Rehearsal
  violations: LockViolation[]
  /** Exceptions the migrations declared, that were applied. */
  excused: { migration: string; table: string; reason: string }[]
  /** Statements whose locks could not be seen (outside a transaction, on PGlite). */
  unmeasured: { migration: string; statement: number; sql: string }[]
}

/**
 * Rehearses `steps` (by default the module's migrations from `policy.checkedFrom` on) from the
 * migration before the first, with `policy.rows` rows, and checks every statement against the
 * policy. `sourceOf` gives a migration's source, where its exceptions are written.
 *
 * @example
 * ```ts
 * const { violations } = await lintMigrationLocks(readLockPolicy('lock-policy.json'), { server: process.env.DATABASE_URL })
 * ```
 */
export async function lintMigrationLocks(
  policy: LockPolicy,
  options: {
    server?: string
    steps?: RehearsalStep[]
    startingPoint?: string | null
    sourceOf?: (name: string) => string
  } = {},
): Promise<LockLint> {
  if (!options.steps && !migrationNames.includes(policy.checkedFrom)) {
    throw new Error(
      `The lock policy checks from "${policy.checkedFrom}", which is not a migration. Known migrations: ${migrationNames.join(', ')}.`,
    )
  }
  const steps =
    options.steps ??
    migrationNames.filter((name) => name >= policy.checkedFrom).map((migration) => ({ migration }))
  const startingPoint =
    options.startingPoint !== undefined
      ? options.startingPoint
      : migrationBefore(policy.checkedFrom)
  const catalog = Math.min(policy.rows, 1000)
  const rows = { x402_resources: policy.rows, ai_models: catalog, x402_openrouter_models: catalog }
  const rehearsal = await rehearse(steps, { server: options.server, startingPoint, rows })
  checkBusyTablesExist(policy, rehearsal.tables)
  const sourceOf = options.sourceOf ?? migrationSource
  const lint: LockLint = { rehearsal, violations: [], excused: [], unmeasured: [] }
  for (const migration of rehearsal.migrations) {
    if (migration.error) {
      throw new Error(
        `The rehearsal of ${migration.name} failed, so its locks could not be checked: ${migration.error}`,
      )
    }
    const exceptions = readLockExceptions(sourceOf(migration.name), migration.name)
    lint.violations.push(...checkLockPolicy(migration, policy, exceptions))
    const unexcused = checkLockPolicy(migration, policy)
    for (const exception of exceptions) {
      if (
        unexcused.some(
          (violation) =>
            violation.table === exception.table || violation.table === `public.${exception.table}`,
        )
      ) {
        lint.excused.push({ migration: migration.name, ...exception })
      }
    }
    for (const statement of migration.statements) {
      if (statement.lockEvidence === 'not-measurable')
        lint.unmeasured.push({
          migration: migration.name,
          statement: statement.index,
          sql: excerpt(statement.sql),
        })
    }
  }
  return lint
}

/** The source of a module migration: the TypeScript beside this module, or the compiled JavaScript. */
function migrationSource(name: string): string {
  for (const extension of ['ts', 'js']) {
    const file = new URL(`../migrations/${name}.${extension}`, import.meta.url)
    if (existsSync(file)) return readFileSync(file, 'utf8')
  }
  throw new Error(
    `The source of migration ${name} was not found beside the module: its exceptions cannot be read.`,
  )
}
