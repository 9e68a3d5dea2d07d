/**
 * What a command accepts, declared once: the declaration gives its `--help`, and its arguments
 * are parsed against it strictly (node:util parseArgs), so an unknown flag, a missing or extra
 * argument, or a number out of range is refused before the command does anything, in
 * particular before it connects to a database.
 */
import { parseArgs } from 'node:util'

import { describeArgument, mayShowArgument } from '../connection/shown-argument.js'

export { describeArgument, mayShowArgument }

/**
 * A command line that is wrong (an unknown command or flag, a missing or extra argument, a bad
 * value): the command exits with 2, the usage code, where a failure exits with 1.
 *
 * @example
 * ```ts
 * throw new UsageError(`migrate:sql takes --down or --baseline, not both. usage: ${usageLine(spec)}`)
 * ```
 */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** One `--flag` of a command. */
export interface OptionSpec {
  /** A switch (`--strict`), or a flag that takes a value (`--batch-size 500`). */
  type: 'boolean' | 'string'
  /** One line for `--help`. */
  description: string
  /** For a flag with a value: its name in `--help`, e.g. `<n>`. */
  valueName?: string
  /** For a flag with a value: a whole number within these bounds, checked before the command runs. */
  integer?: { min: number; max: number }
  /**
   * For a flag with a value: the only values it takes, checked before the command runs, in any
   * case (the value passed on is the one listed). A value handed to another tool is checked here,
   * as the tool would echo a wrong one whole.
   */
  choices?: readonly string[]
}

/** One positional argument of a command. */
export interface PositionalSpec {
  name: string
  description: string
  /** False for an argument that may be left out; true by default. */
  required?: boolean
}

/** A command line: its npm script, what it does, and what it accepts. */
export interface CommandSpec {
  /** The npm script, e.g. `migrate:latest`. */
  script: string
  /** One line: what the command does. */
  summary: string
  positionals?: readonly PositionalSpec[]
  options?: Readonly<Record<string, OptionSpec>>
  /** Further lines for `--help`: environment, exit codes. */
  notes?: readonly string[]
}

type OptionValue<O extends OptionSpec> = O['type'] extends 'boolean'
  ? boolean
  : O extends { integer: object }
    ? number
    : string

/** The parsed flags of a command: a switch is true or false, a number flag a number, any other a string. */
export type OptionValues<S extends CommandSpec> =
  S['options'] extends Readonly<Record<string, OptionSpec>>
    ? {
        [K in keyof S['options']]: S['options'][K]['type'] extends 'boolean'
          ? boolean
          : OptionValue<S['options'][K]> | undefined
      }
    : Record<string, never>

/** A command's arguments, parsed: `help` when `--help` was given (and nothing else was checked). */
export type ParsedCommandLine<S extends CommandSpec> =
  { help: true } | { help: false; positionals: string[]; values: OptionValues<S> }

/**
 * Parses `args` against `spec`: refuses an unknown flag, a missing value, a number out of
 * range, a value not among a flag's choices, and too few or too many positional arguments, each
 * with an error that says what was wrong and how to see the usage. `--help` wins over everything else.
 *
 * @example
 * ```ts
 * const parsed = parseCommandLine(spec, ['--batch-size', '500'])
 * if (!parsed.help) parsed.values['batch-size'] // 500
 * ```
 */
export function parseCommandLine<S extends CommandSpec>(
  spec: S,
  args: readonly string[],
): ParsedCommandLine<S> {
  if (args.includes('--help') || args.includes('-h')) return { help: true }
  const options = spec.options ?? {}
  const refuse = (reason: string) => new UsageError(`${reason}. ${usageHint(spec)}`)
  let parsed: ReturnType<
    typeof parseArgs<{
      options: Record<string, { type: 'string' | 'boolean' }>
      allowPositionals: true
      strict: true
      tokens: true
    }>
  >
  try {
    parsed = parseArgs({
      args: withNegativeNumbersJoined(args, options),
      options: Object.fromEntries(
        Object.entries(options).map(([name, option]) => [name, { type: option.type }]),
      ),
      allowPositionals: true,
      strict: true,
      tokens: true,
    })
  } catch (error) {
    throw refuse(describeParseError(error, spec))
  }
  // parseArgs keeps the last of two values: which one was meant is not for the parser to guess.
  for (const [name, option] of Object.entries(options)) {
    const given = parsed.tokens.filter(
      (token) => token.kind === 'option' && token.name === name,
    ).length
    if (option.type === 'string' && given > 1)
      throw refuse(`--${name} is given ${given} times: give it once`)
  }

  const positionals = spec.positionals ?? []
  const required = positionals.filter((positional) => positional.required !== false).length
  if (parsed.positionals.length < required) {
    throw refuse(
      `${spec.script} needs ${positionals
        .slice(parsed.positionals.length, required)
        .map((p) => `<${p.name}>`)
        .join(' ')}`,
    )
  }
  if (parsed.positionals.length > positionals.length) {
    const extra = parsed.positionals.slice(positionals.length).map(describeArgument).join(' ')
    throw refuse(
      `${spec.script} does not take the argument${parsed.positionals.length - positionals.length > 1 ? 's' : ''} ${extra}`,
    )
  }

  const values: Record<string, string | boolean | number | undefined> = {}
  for (const [name, option] of Object.entries(options)) {
    const value = parsed.values[name]
    if (option.type === 'boolean') values[name] = value === true
    else if (option.integer && typeof value === 'string')
      values[name] = wholeNumber(name, value, option.integer, refuse)
    else if (option.choices && typeof value === 'string')
      values[name] = oneOf(name, value, option.choices, refuse)
    else values[name] = value
  }
  return { help: false, positionals: parsed.positionals, values: values as OptionValues<S> }
}

/**
 * The `--help` text of a command: what it does, its usage line, its arguments and flags, and
 * its notes.
 *
 * @example
 * ```ts
 * process.stdout.write(helpText(spec))
 * ```
 */
export function helpText(spec: CommandSpec): string {
  const rows: Array<[string, string]> = [
    ...(spec.positionals ?? []).map((p): [string, string] => [
      `<${p.name}>`,
      p.description + (p.required === false ? ' (optional)' : ''),
    ]),
    ...Object.entries(spec.options ?? {}).map(([name, option]): [string, string] => [
      `--${name}${option.valueName ? ` ${option.valueName}` : ''}`,
      option.description,
    ]),
    ['--help', 'prints this help and exits'],
  ]
  const width = Math.max(...rows.map(([left]) => left.length))
  return [
    `${spec.script}: ${spec.summary}`,
    '',
    `usage: ${usageLine(spec)}`,
    '',
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`),
    ...(spec.notes && spec.notes.length > 0 ? ['', ...spec.notes] : []),
    '',
  ].join('\n')
}

/**
 * The usage line of a command, as typed through npm.
 *
 * @example
 * ```ts
 * usageLine(spec) // 'npm run keys:rotate [-- [--batch-size <n>]]'
 * ```
 */
export function usageLine(spec: CommandSpec): string {
  const parts = [
    ...(spec.positionals ?? []).map((p) =>
      p.required === false ? `[<${p.name}>]` : `<${p.name}>`,
    ),
    ...Object.entries(spec.options ?? {}).map(
      ([name, option]) => `[--${name}${option.valueName ? ` ${option.valueName}` : ''}]`,
    ),
  ]
  return `npm run ${spec.script}${parts.length > 0 ? ` -- ${parts.join(' ')}` : ''}`
}

function usageHint(spec: CommandSpec): string {
  return `usage: ${usageLine(spec)} (npm run ${spec.script} -- --help says more)`
}

function describeParseError(error: unknown, spec: CommandSpec): string {
  const code = (error as { code?: string }).code
  const message = error instanceof Error ? error.message : String(error)
  // parseArgs quotes the flag with its value's placeholder ('--key-id <value>'): the name is what counts.
  const found = /'(-[^' ]*)/.exec(message)?.[1]
  const flag = found === undefined || mayShowArgument(found) ? found : describeArgument(found)
  const known = Object.keys(spec.options ?? {}).map((name) => `--${name}`)
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const meant = found === undefined ? undefined : closestFlag(found, known)
      const takes = known.length > 0 ? `; it takes ${known.join(', ')}` : '; it takes no flags'
      return `${spec.script} does not know the flag ${flag ?? 'given'}${meant ? `: did you mean ${meant}? It takes ${known.join(', ')}` : takes}`
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      // "argument missing", or "ambiguous": the next word is a flag, taken for a missing value.
      return `${flag ? flag.split(' ')[0] : 'a flag'} ${/argument missing|ambiguous/.test(message) ? 'needs a value' : 'takes no value'}`
    default:
      return `${spec.script}: ${message}`
  }
}

/**
 * `args` with `--flag -5` given as `--flag=-5` for a flag that takes a whole number: parseArgs
 * takes `-5` for a flag and calls the value missing, where the value is there and out of range.
 */
function withNegativeNumbersJoined(
  args: readonly string[],
  options: Readonly<Record<string, OptionSpec>>,
): string[] {
  const joined: string[] = []
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!.startsWith('--') ? args[i]!.slice(2) : undefined
    const next = args[i + 1]
    if (name && options[name]?.integer && next !== undefined && /^-\d/.test(next)) {
      joined.push(`--${name}=${next}`)
      i++
    } else joined.push(args[i]!)
  }
  return joined
}

/**
 * The known flag that `given` most likely misspells: the nearest by edit distance, with
 * hyphens and case ignored (`--dryrun`, `--DRY_RUN` for `--dry-run`), within two edits; else
 * undefined.
 */
function closestFlag(given: string, known: readonly string[]): string | undefined {
  const plain = (flag: string) => flag.replace(/^-+/, '').replace(/[-_]/g, '').toLowerCase()
  const name = plain(given.split('=')[0]!)
  let best: { flag: string; distance: number } | undefined
  for (const flag of known) {
    const distance = editDistance(name, plain(flag))
    if (
      distance <= Math.min(2, Math.floor(plain(flag).length / 3)) &&
      (!best || distance < best.distance)
    )
      best = { flag, distance }
  }
  return best?.flag
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions from `a` to `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      )
    }
    previous = current
  }
  return previous[b.length]!
}

function oneOf(
  name: string,
  value: string,
  choices: readonly string[],
  refuse: (reason: string) => Error,
): string {
  const chosen = choices.find((choice) => choice.toLowerCase() === value.toLowerCase())
  if (chosen === undefined)
    throw refuse(`--${name} is ${describeArgument(value)}, expected one of ${choices.join(', ')}`)
  return chosen
}

function wholeNumber(
  name: string,
  value: string,
  bounds: { min: number; max: number },
  refuse: (reason: string) => Error,
): number {
  const number = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(number) || number < bounds.min || number > bounds.max) {
    throw refuse(
      `--${name} is ${describeArgument(value)}, expected a whole number from ${bounds.min} to ${bounds.max}`,
    )
  }
  return number
}
