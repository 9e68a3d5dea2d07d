import { type TestTarget, testTargets } from './test-database.js'

/**
 * Where the plan's truths are proven, and the names the plan's objects have there: at 005 under
 * the plan's names, and at the newest migration under production's (006 renames them).
 */
export interface OpenRouterNames {
  /** The migration a test database is migrated to. */
  at: string
  /** The table of users' OpenRouter keys. */
  keys: string
  /** The model catalog. */
  models: string
}

export const PLAN_NAMES: OpenRouterNames = {
  at: '005_add_openrouter_integration',
  keys: 'user_openrouter_integrations',
  models: 'ai_models',
}

export const PRODUCTION_NAMES: OpenRouterNames = {
  at: 'latest',
  keys: 'x402_user_openrouter_integrations',
  models: 'x402_openrouter_models',
}

/**
 * Each test target with each set of names, for `describe.each`: `%s` gives the target, and the
 * names say where.
 *
 * @example
 * ```ts
 * describe.each(targetsAndNames)('on %s, at %s', (target, _at, names) => { … })
 * ```
 */
export const targetsAndNames: Array<[TestTarget, string, OpenRouterNames]> = testTargets.flatMap(
  (target) =>
    [PLAN_NAMES, PRODUCTION_NAMES].map((names): [TestTarget, string, OpenRouterNames] => [
      target,
      `${names.at} (${names.keys})`,
      names,
    ]),
)
