import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { ADVISOR_LINT_NAMES } from './advisor-lints.js'

/** The repository's reviewed file of findings kept on purpose, at its root. */
export const ADVISOR_ACCEPTED_FILE = 'advisor-accepted.json'

/** Where the command reads it by default: the module's own root, beside package.json. */
export const DEFAULT_ADVISOR_ACCEPTED_PATH = fileURLToPath(
  new URL(`../../${ADVISOR_ACCEPTED_FILE}`, import.meta.url),
)

/**
 * A finding that a team keeps on purpose: the lint, the object (`schema.name`, exactly as the
 * report prints it), the detail where the finding has one (its columns, policies or signature,
 * exactly as printed), and why.
 */
export interface AcceptedFinding {
  lint: string
  object: string
  detail?: string
  reason: string
}

/**
 * The accepted-findings file is unusable: missing where it was named, not JSON, or not of its
 * shape. The command exits 2 on it (a usage error): nothing was checked.
 */
export class AcceptedFindingsError extends Error {
  override name = 'AcceptedFindingsError'
}

const PLACEHOLDER = 'TODO'
const ENTRY_KEYS = ['lint', 'object', 'detail', 'reason']

/**
 * The accepted findings of `path` (the repository's advisor-accepted.json by default). A missing
 * default file accepts nothing; a missing file that was named, or a file not of the shape, is
 * refused with an {@link AcceptedFindingsError} that says what is wrong, never half read.
 * `shownAs` names the file in messages (a path given on the command line is not echoed whole).
 *
 * @example
 * ```ts
 * const accepted = readAcceptedFindings()
 * const report = await runAdvisor(db, { accepted })
 * ```
 */
export function readAcceptedFindings(
  path: string = DEFAULT_ADVISOR_ACCEPTED_PATH,
  shownAs: string = path === DEFAULT_ADVISOR_ACCEPTED_PATH ? ADVISOR_ACCEPTED_FILE : path,
): AcceptedFinding[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && path === DEFAULT_ADVISOR_ACCEPTED_PATH) return []
    throw new AcceptedFindingsError(
      `Cannot read the accepted findings in ${shownAs} (${code ?? 'unreadable'}): give the path ` +
        `of a readable file of the shape of ${ADVISOR_ACCEPTED_FILE} (see docs/advisor.md); ` +
        'nothing was checked.',
    )
  }
  return parseAcceptedFindings(text, shownAs)
}

/**
 * The accepted findings in `text` (the contents of advisor-accepted.json), checked: an object with
 * an `about` string and an `accepted` array, each entry with a known `lint`, an `object` written
 * `schema.name`, a `detail` (text) where given, and a `reason` of at least three words that is not the placeholder; nothing
 * else in an entry, and no finding accepted twice. Throws an {@link AcceptedFindingsError}
 * naming the file, the entry and what to fix.
 *
 * @example
 * ```ts
 * parseAcceptedFindings('{"about": "reviewed", "accepted": []}', 'advisor-accepted.json') // []
 * ```
 */
export function parseAcceptedFindings(text: string, shownAs: string): AcceptedFinding[] {
  const refuse = (what: string): never => {
    throw new AcceptedFindingsError(
      `The accepted findings in ${shownAs} are not usable: ${what}. ` +
        'Fix the file (see docs/advisor.md); nothing was checked.',
    )
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return refuse(`it is not JSON (${(error as Error).message})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return refuse('it must be an object with "about" (a string) and "accepted" (an array)')
  }
  const { about, accepted } = value as Record<string, unknown>
  if (typeof about !== 'string') {
    return refuse('it has no "about": a string that says what the file is')
  }
  if (!Array.isArray(accepted)) return refuse('it has no "accepted" array')
  const seen = new Set<string>()
  return accepted.map((entry: unknown, index) => {
    const at = `entry ${index + 1} of "accepted"`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      return refuse(`${at} is not an object`)
    }
    const unknownKeys = Object.keys(entry).filter((key) => !ENTRY_KEYS.includes(key))
    if (unknownKeys.length > 0) {
      const named = unknownKeys.map((key) => JSON.stringify(key.slice(0, 40))).join(', ')
      return refuse(`${at} has ${named}: an entry takes only lint, object, detail, reason`)
    }
    const { lint, object, detail, reason } = entry as Record<string, unknown>
    if (typeof lint !== 'string' || !ADVISOR_LINT_NAMES.includes(lint)) {
      const given = typeof lint === 'string' ? ` (${JSON.stringify(lint.slice(0, 60))})` : ''
      return refuse(
        `${at} has no known "lint"${given}: one of the lint names in docs/advisor.md, ` +
          'such as rls_disabled_in_public',
      )
    }
    // Compared exactly with what the report prints: a name may hold any character, spaces too.
    if (typeof object !== 'string' || !/^.+\..+$/s.test(object)) {
      return refuse(
        `${at} (${lint}) has no "object" written schema.name, such as public.x402_oauth_pending`,
      )
    }
    if (detail !== undefined && (typeof detail !== 'string' || detail.trim() === '')) {
      return refuse(
        `${at} (${lint} ${object}) has a "detail" that is not text: give it as the report prints ` +
          'it, such as "columns: oauth_token", or leave it out where the finding has none',
      )
    }
    const words = typeof reason === 'string' ? distinctWords(reason) : 0
    if (typeof reason !== 'string' || reason.trim().startsWith(PLACEHOLDER) || words < 3) {
      return refuse(
        `${at} (${lint} ${object}) gives no reason: say why the finding is kept, ` +
          'who decided it and when',
      )
    }
    const id = JSON.stringify([lint, object, detail ?? null])
    if (seen.has(id)) return refuse(`${at} accepts ${lint} on ${object} a second time`)
    seen.add(id)
    return { lint, object, ...(detail === undefined ? {} : { detail }), reason: reason.trim() }
  })
}

function distinctWords(text: string): number {
  return new Set(text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []).size
}
