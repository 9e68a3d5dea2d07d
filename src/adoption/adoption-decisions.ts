import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import type { SchemaDiff, SchemaDifference } from '../schema/diff.js'
import type { AdoptionDecision } from '../schema/rules.js'
import { SCHEMA_OBJECT_CATEGORIES } from '../schema/snapshot.js'

export type { AdoptionDecision } from '../schema/rules.js'

/** The repository's reviewed file of decisions, at its root. */
export const ADOPTION_DECISIONS_FILE = 'adoption-decisions.json'

/** Where the commands read it: the module's own root, beside package.json. */
export const DEFAULT_ADOPTION_DECISIONS_PATH = fileURLToPath(
  new URL(`../../${ADOPTION_DECISIONS_FILE}`, import.meta.url),
)

/** What a decision's reason must not be: the placeholder of the entries the refusal prints. */
const PLACEHOLDER = 'TODO'

/**
 * The decisions of `path` (the repository's adoption-decisions.json by default): the conflicts
 * that an engineer accepted after review, each naming the difference (its key and field, as
 * the comparison prints them), the live value reviewed, and the reason. A missing file has
 * none. A file that is not that shape is refused with what is wrong in it, never half read.
 *
 * @example
 * ```ts
 * const decisions = readAdoptionDecisions()
 * await baselineMigrations(db, '006', { decisions })
 * ```
 */
export function readAdoptionDecisions(
  path: string = DEFAULT_ADOPTION_DECISIONS_PATH,
): AdoptionDecision[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new Error(`Cannot read the adoption decisions in ${path}: ${(error as Error).message}.`)
  }
  return parseAdoptionDecisions(text, path)
}

/**
 * The decisions in `text` (the contents of adoption-decisions.json), checked: an object with a
 * `decisions` array, each entry with a `key` (`<category> <table>.<name>`, or `<category> <name>`
 * for a table or function), a `field` ('' for a whole object), the reviewed `live` value (null
 * for a missing object) and a `reason` of at least three words that is not the placeholder; no
 * difference decided twice. Throws naming the file, the entry and what to fix.
 *
 * @example
 * ```ts
 * parseAdoptionDecisions('{"decisions": []}', 'adoption-decisions.json') // []
 * ```
 */
export function parseAdoptionDecisions(text: string, path: string): AdoptionDecision[] {
  const refuse = (what: string): never => {
    throw new Error(
      `The adoption decisions in ${path} are not usable: ${what}. Fix the file (see docs/taking-over-production.md); ` +
        'nothing was compared.',
    )
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return refuse(`it is not JSON (${(error as Error).message})`)
  }
  if (
    typeof value !== 'object' ||
    value === null ||
    !Array.isArray((value as { decisions?: unknown }).decisions)
  ) {
    return refuse('it must be an object with a "decisions" array')
  }
  const categories = SCHEMA_OBJECT_CATEGORIES.join('|')
  const seen = new Set<string>()
  return (value as { decisions: unknown[] }).decisions.map((entry, index) => {
    const at = `decision ${index + 1}`
    if (typeof entry !== 'object' || entry === null) return refuse(`${at} is not an object`)
    const { key, field, live, reason } = entry as Record<string, unknown>
    if (typeof key !== 'string' || !new RegExp(`^(${categories}) \\S`).test(key)) {
      return refuse(
        `${at} has no "key" such as "policies x402_resources.<policy name>" (as a conflict's entry has it)`,
      )
    }
    if (typeof field !== 'string')
      return refuse(`${at} (${key}) has no "field" ('' for a whole object)`)
    if (!('live' in (entry as object))) {
      return refuse(
        `${at} (${key}) has no "live": the value that was reviewed (null for a missing object)`,
      )
    }
    const words =
      typeof reason === 'string'
        ? new Set(reason.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []).size
        : 0
    if (typeof reason !== 'string' || reason.trim().startsWith(PLACEHOLDER) || words < 3) {
      return refuse(
        `${at} (${key}) gives no reason: say why the difference is right, who decided it and when`,
      )
    }
    const id = JSON.stringify([key, field])
    if (seen.has(id))
      return refuse(`${at} decides ${key}${field ? ` (${field})` : ''} a second time`)
    seen.add(id)
    return { key, field, live: live ?? null, reason: reason.trim() }
  })
}

/**
 * The entries to add to adoption-decisions.json for the conflicts of `diff` that a decision may
 * accept, one JSON object a line, with the placeholder reason that the file refuses until it is
 * replaced: a refusal prints them, so that accepting a conflict means copying a reviewed value and
 * writing why. Empty when there are none.
 *
 * @example
 * ```ts
 * process.stdout.write(formatDecisionEntries(refusal.diff))
 * ```
 */
export function formatDecisionEntries(diff: SchemaDiff): string {
  const entries = diff.conflict.filter((difference) => difference.decidable).map(decisionEntry)
  if (entries.length === 0) return ''
  return [
    `To accept a conflict above by an explicit decision, after review, add its entry to ${ADOPTION_DECISIONS_FILE} with the reason`,
    '(why it is right, who decided, when) in place of the TODO, and commit it for review. Each one lets the database keep',
    'something the module would not allow; nothing else is accepted.',
    ...entries.map((entry) => `  ${entry}`),
    '',
  ].join('\n')
}

function decisionEntry({ key, field, live }: SchemaDifference): string {
  return JSON.stringify({
    key,
    field,
    live: live ?? null,
    reason: `${PLACEHOLDER}: why this is right, who decided it, when`,
  })
}
