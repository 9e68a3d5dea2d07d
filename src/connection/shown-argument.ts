import { IN_MEMORY } from './in-memory.js'

/*
 * What a message may show of a value that a user passed (an argument, an environment
 * variable): every layer that words a message about one shows it through here, so that a
 * secret passed by mistake, or a huge value, appears only as its length.
 */

/**
 * Whether an argument may appear in a message as it was given: a flag (`--allow-data-loss`), a
 * migration's name with its number (`005_add_openrouter_integration`), a key id (`87541fac`), or a short plain word of at most 12
 * characters that does not look like a password (a run of 8 or more that mixes two of lower
 * case, upper case and digits) or a key's prefix. Anything else may be a secret passed by mistake
 * (a key, a password, a passphrase), or is too long to be useful, and is shown by its length.
 *
 * @example
 * ```ts
 * mayShowArgument('ten') // true
 * mayShowArgument('correct-horse-battery-staple') // false
 * ```
 */
export function mayShowArgument(value: string): boolean {
  // A key id (eight hex digits of a secret's digest, which keys:rotate asks to confirm) is no secret.
  // A migration's name is shown with its number (as migrate:list writes it), up to PostgreSQL's
  // 63 characters of a name: snake case alone is how a passphrase is written too (rev-a7 4).
  if (/^--[a-z][a-z-]{0,38}$|^\d{3}_[a-z][a-z0-9]*(_[a-z0-9]+){1,8}$|^[0-9a-f]{8}$/.test(value))
    return value.length <= 63
  return (
    value.length <= SHOWN_ARGUMENT_LENGTH &&
    /^[\w.,:=+/-]*$/.test(value) &&
    !/^-*(sk|pk|rk)[-_]/i.test(value) &&
    !(value.match(/[A-Za-z0-9]{8,}/g) ?? []).some(mixesCharacterClasses)
  )
}

/** The most characters of a plain argument that {@link mayShowArgument} shows. */
const SHOWN_ARGUMENT_LENGTH = 12

function mixesCharacterClasses(run: string): boolean {
  return [/[a-z]/, /[A-Z]/, /[0-9]/].filter((kind) => kind.test(run)).length >= 2
}

/**
 * An argument as a message shows it: quoted where {@link mayShowArgument} allows it, else only
 * its length.
 *
 * @example
 * ```ts
 * describeArgument('ten') // '"ten"'
 * describeArgument('a'.repeat(100_000)) // '(100000 characters, not shown)'
 * ```
 */
export function describeArgument(value: string): string {
  return mayShowArgument(value) ? `"${value}"` : `(${value.length} characters, not shown)`
}

/**
 * A name (of a table, a policy, a history row…) or a line that holds one, as a terminal or a CI
 * log shows it: every control character (an escape sequence's ESC, a line break, a carriage
 * return), and the characters that reorder or break text (bidi overrides, line and paragraph
 * separators), written as an escape (`\x1b`, `\n`, `\u202e`), so that a name made to rewrite the
 * screen or forge a line of a report shows as what it is. Anything else is kept exactly. JSON
 * output keeps names exact: JSON escapes them itself.
 *
 * @example
 * ```ts
 * shownOnTerminal('evil\x1b[2J') // 'evil\\x1b[2J'
 * ```
 */
export function shownOnTerminal(text: string): string {
  return text.replace(
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (char) => {
      const named = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }[char]
      if (named) return named
      const code = char.charCodeAt(0)
      return code <= 0xff
        ? `\\x${code.toString(16).padStart(2, '0')}`
        : `\\u${code.toString(16).padStart(4, '0')}`
    },
  )
}

/**
 * Another session's statement (pg_stat_activity's `query`: a session that blocks a migration) as
 * a message shows it: its first keyword (`SELECT`, `BEGIN`), which says what kind of statement
 * it is, where {@link mayShowArgument} would show that word, and never the rest. Its text is
 * the app's or another user's, not the operator's input: it may quote a key (`select
 * 'sk-or-v1-…'`) and hold terminal escape codes, which would reach the operator's terminal and
 * the CI log (review N10-2). The pid beside it finds the whole text in pg_stat_activity.
 *
 * @example
 * ```ts
 * shownStatement("select 'sk-or-v1-…' AS key") // 'SELECT … (the rest not shown)'
 * shownStatement('BEGIN') // 'BEGIN'
 * ```
 */
export function shownStatement(query: string): string {
  // Leading blanks, comments and parentheses are skipped, as the server's parser skips them; a
  // word is a keyword only where a blank, a ";", a "(" or a comment ends it (`sk-or-v1-…` is none).
  const found = /^(?:\s|\(|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*([A-Za-z]+)(?=$|[\s;(]|--|\/\*)/.exec(
    query,
  )
  const keyword = found?.[1]
  if (keyword === undefined || !mayShowArgument(keyword)) return '(a statement, not shown)'
  const rest = query.slice(found![0].length).replace(/^[\s;]*/, '')
  return rest ? `${keyword.toUpperCase()} … (the rest not shown)` : keyword.toUpperCase()
}

/** The most characters of a name that {@link shownShortOnTerminal} keeps. */
const SHOWN_NAME_LENGTH = 80

/**
 * A name a message shows but that a user or a database chose (a host, a folder, a history
 * row's name): as {@link shownOnTerminal} shows it, cut to its first 80 characters with its
 * length after them, so that a huge value cannot flood a terminal or a log.
 *
 * @example
 * ```ts
 * shownShortOnTerminal('h'.repeat(100_000)) // 'hhh…h… (100000 characters)', 80 h's
 * ```
 */
export function shownShortOnTerminal(text: string): string {
  return text.length <= SHOWN_NAME_LENGTH
    ? shownOnTerminal(text)
    : `${shownOnTerminal(text.slice(0, SHOWN_NAME_LENGTH))}… (${text.length} characters)`
}

/**
 * A key's shape wherever it stands in a name: a key's prefix (`sk-`, `pk_`, `rk-`) with 16 or
 * more characters after it, or a JWT's first two parts.
 */
const KEY_SHAPE = /(^|[^\p{L}\p{N}])(sk|pk|rk)[-_][\w-]{16,}|(^|[^\p{L}\p{N}])eyJ[\w-]+\.[\w-]+/iu

/**
 * A server's host (or socket folder), as a URL gave it, as every message shows it: as {@link
 * shownShortOnTerminal} shows it, or {@link HIDDEN_NAME} where it is shaped like a key (a key's
 * prefix, a JWT, a run of 32 or more letters and digits that mixes two of lower case, upper
 * case and digits), so that a key put in the host's place is not printed (review N10-1). Looser
 * than {@link shownDatabaseName}: clouds make hosts of random ids (Supabase's 20 letters,
 * Render's and Crunchy Bridge's letters and digits), which say where a run goes.
 *
 * @example
 * ```ts
 * shownHost('db.abcdefghijklmnopqrst.supabase.co') // shown
 * shownHost('sk-or-v1-0f0f…') // HIDDEN_NAME
 * ```
 */
export function shownHost(host: string): string {
  const runs = host.match(/[\p{L}\p{M}\p{N}]+/gu) ?? []
  const keyShaped =
    KEY_SHAPE.test(host) || runs.some((run) => run.length >= 32 && mixesCharacterClasses(run))
  return keyShaped ? HIDDEN_NAME : shownShortOnTerminal(host)
}

/**
 * A database's name, as a URL or a server's answer gave it, as every message shows it: as {@link
 * shownShortOnTerminal} shows it where it plainly is a name, by the rule of a folder's name
 * ({@link isPlainFolder}: no run of 7 or more that mixes letters and digits, as `hunter2`, a
 * UUID's or a hex secret's; none of 20) and with no key's shape, else {@link HIDDEN_NAME}: a
 * password or a key put in the database's place is not printed (review N10-1). Production's
 * `x402_jobs_production` is shown.
 *
 * @example
 * ```ts
 * shownDatabaseName('x402_jobs_production') // 'x402_jobs_production'
 * shownDatabaseName('Summer2024') // HIDDEN_NAME
 * ```
 */
export function shownDatabaseName(name: string): string {
  return isPlainFolder(name) && !name.includes('/') && !KEY_SHAPE.test(name)
    ? shownShortOnTerminal(name)
    : HIDDEN_NAME
}

/** What a message says in place of a name that {@link shownHost} or {@link shownDatabaseName} does not show. */
export const HIDDEN_NAME = '(not shown: it looks like it may hold a key or a password)'

/**
 * The embedded database's folder as every message shows it (the Database: line, the refusals
 * of the folder and of its lock, a file system error that quotes it): as {@link
 * shownShortOnTerminal} shows it where it plainly looks like a path, else {@link HIDDEN_FOLDER}.
 * Plainly a path: every '/'-separated part made only of letters, digits, space and `._~+-`, with
 * no run of 20 or more letters and digits (a key, a hash, a JWT), none of 12 digits, and none of
 * 7 or more that mixes letters and digits (a key's random part between `_` or `-`, a UUID's, a
 * password such as `hunter2`: reviews revt F7, revu R5; a plain word such as `Documents` passes,
 * `postgres15` does not, mkdtemp's 6 characters do). An allowlist: a
 * denylist of secret shapes kept missing some (review revq Q3), and PGLITE_DATA_DIR is where a key
 * or a connection string put in the wrong variable lands.
 *
 * @example
 * ```ts
 * shownFolder('.data/pglite') // '.data/pglite'
 * shownFolder('PGPASSWORD=hunter2') // HIDDEN_FOLDER
 * ```
 */
export function shownFolder(path: string): string {
  return isPlainFolder(path) ? shownShortOnTerminal(path) : HIDDEN_FOLDER
}

/** Whether {@link shownFolder} shows `path`. */
export function isPlainFolder(path: string): boolean {
  if (path === IN_MEMORY) return true
  return path
    .split('/')
    .every(
      (part) =>
        /^[\p{L}\p{M}\p{N} ._~+-]*$/u.test(part) &&
        !/[\p{L}\p{M}\p{N}]{20}/u.test(part) &&
        !/\p{N}{12}/u.test(part) &&
        !(part.match(/[\p{L}\p{M}\p{N}]{7,}/gu) ?? []).some(
          (run) => /\p{L}/u.test(run) && /\p{N}/u.test(run),
        ),
    )
}

/** What a message says in place of a folder that {@link shownFolder} does not show. */
export const HIDDEN_FOLDER =
  "(not shown: the folder's name, from PGLITE_DATA_DIR or dataDir, looks like it may hold a key or a password)"

/**
 * The name of an entry in a folder, or its path inside it (a file of the embedded database's
 * folder, as a refusal lists it): as {@link shownShortOnTerminal} shows it where it is plain by the rule of a folder's name
 * ({@link isPlainFolder}), else said to be hidden. Whoever could write the folder chose it.
 *
 * @example
 * ```ts
 * shownEntry('notes.txt') // 'notes.txt'
 * shownEntry('sk-or-v1-0f0f…') // '(a name not shown: it looks like it may hold a key)'
 * ```
 */
export function shownEntry(name: string): string {
  return isPlainFolder(name) ? shownShortOnTerminal(name) : HIDDEN_ENTRY
}

/** What a message says in place of an entry that {@link shownEntry} does not show. */
const HIDDEN_ENTRY = '(a name not shown: it looks like it may hold a key)'
