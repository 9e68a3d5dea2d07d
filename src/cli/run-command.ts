/**
 * What every command line of the module shares: its one exit path. A command is an async
 * function that returns its exit code (or nothing, for 0) and throws to fail; the runner prints
 * a failure as one line, `<label> failed: <reason>`, and exits with 1. The same function opens
 * the database for the commands that need one, and closes it on every path.
 *
 * A new command declares what it accepts (a {@link CommandSpec}: its npm script, a summary, its
 * positional arguments and flags) and hands it to {@link runCommandLine}; it then gets `--help`,
 * strict parsing (an unknown flag or argument is refused) and whole-number checks, all before it
 * runs:
 *
 * ```ts
 * const spec = {
 *   script: 'db:access',
 *   summary: 'prints who may read and write each table.',
 *   positionals: [{ name: 'table', description: 'one table only', required: false }],
 *   options: { json: { type: 'boolean', description: 'prints JSON' } },
 * } as const satisfies CommandSpec
 * runCommandLine(spec, ({ values, positionals }) => withCommandDatabase({}, (db) => printAccess(db(), positionals[0], values.json)))
 * ```
 *
 * A migrate subcommand is an entry in `specs` of migrate-specs.ts (what it accepts) and in
 * `commands` of migrate-commands.ts (what it does).
 */
import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'

import type { Kysely } from 'kysely'

import { ConnectionStringError, givenConnectionString } from '../connection/connection-string.js'
import { SettingError } from '../connection/setting-error.js'
import type { CreateDbOptions } from '../connection/create-db.js'
import {
  isPlainFolder,
  shownFolder,
  shownOnTerminal,
  shownShortOnTerminal,
} from '../connection/shown-argument.js'
import { unreachableMessage } from '../connection/unreachable.js'
import { MigrationError } from '../migrator/migration-error.js'
import {
  type CommandSpec,
  helpText,
  mayShowArgument,
  type ParsedCommandLine,
  parseCommandLine,
  UsageError,
} from './command-line.js'

export {
  type CommandSpec,
  describeArgument,
  helpText,
  type OptionValues,
  parseCommandLine,
  UsageError,
  usageLine,
} from './command-line.js'

/**
 * The exit codes of the commands: 0 done, 1 failed (a connection that could not be made too),
 * 2 the command line was wrong (nothing ran), 3 the command ran and found what it checks for
 * (migrate:check: drift). A script can tell them apart without reading the output.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, found: 3 } as const

/** One of {@link EXIT}'s codes. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** The line of {@link EXIT} in each migrate command's `--help`. */
export const EXIT_NOTE =
  'Exit codes: 0 done; 1 failed (could not connect included); 2 usage error (nothing ran); 3 drift found (migrate:check).'

/**
 * A failure that ends the command with its own exit code rather than 1: drift found by
 * migrate:check exits 3. Its message is printed as any failure's, on one line.
 *
 * @example
 * ```ts
 * if (!report.ok) throw new CommandFailure('drift found: 2 objects differ', EXIT.found)
 * ```
 */
export class CommandFailure extends Error {
  override readonly name = 'CommandFailure'

  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message)
  }
}

/**
 * Runs `command` with the arguments after the script name and ends the process with its exit
 * code: the command's result, 0 when it returns nothing; when it throws, its message on one
 * line and {@link EXIT}'s code for it (see exitCodeOf).
 *
 * @example
 * ```ts
 * runCommand('keys:rotate', async (args) => (args.length > 0 ? 2 : 0))
 * ```
 */
export function runCommand(
  label: string,
  command: (args: string[]) => Promise<number | void>,
): void {
  const args = process.argv.slice(2)
  command(args).then(
    (code) => exit(code ?? 0),
    (error: unknown) => {
      // The runner's errors say themselves what reached the database and what stayed done.
      const unreachable = error instanceof MigrationError ? undefined : unreachableMessage(error)
      const message = withoutLongPaths(unreachable ?? messageOf(error), error)
      console.error(withoutArguments(`${label} failed: ${message}`, args))
      exit(exitCodeOf(error))
    },
  )
}

/** 2 for a {@link UsageError}, a bad connection string or setting; a {@link CommandFailure}'s own code; else 1. */
export function exitCodeOf(error: unknown): ExitCode {
  if (
    error instanceof UsageError ||
    error instanceof ConnectionStringError ||
    error instanceof SettingError
  )
    return EXIT.usage
  if (error instanceof CommandFailure) return error.exitCode
  return EXIT.failure
}

/**
 * `message` with the PGLITE_DATA_DIR folder shown as the "Database:" line shows it (shownFolder:
 * not at all where it may hold a key), and each long path it quotes of the file system error
 * `error` (its `path` and `dest`, and its causes') shown cut (shownShortOnTerminal): Node's errors
 * quote a path whole, and a folder's name may be thousands of characters.
 */
function withoutLongPaths(message: string, error: unknown): string {
  const paths = new Set<string>()
  let shown = message
  const dataDir = process.env.PGLITE_DATA_DIR
  if (dataDir) {
    const named = [dataDir, resolve(dataDir)]
    try {
      named.push(realpathSync(dataDir))
    } catch {
      // Not made yet: named as given.
    }
    // A folder not shown is replaced first, wherever it appears (inside a longer path too), so
    // that no path cut below keeps a part of it.
    for (const path of named.sort((a, b) => b.length - a.length)) {
      if (isPlainFolder(path)) paths.add(path)
      else shown = shown.split(path).join(shownFolder(path))
    }
  }
  for (let cause = error, depth = 0; cause instanceof Error && depth < 10; depth++) {
    for (const key of ['path', 'dest'] as const) {
      const value = (cause as Error & Partial<Record<typeof key, unknown>>)[key]
      if (typeof value === 'string') paths.add(value)
    }
    cause = cause.cause
  }
  // Longest first: a folder's path is the start of its files'.
  for (const path of [...paths].sort((a, b) => b.length - a.length)) {
    const short = shownShortOnTerminal(path)
    if (short !== shownOnTerminal(path)) shown = shown.split(path).join(short)
  }
  return shown
}

/** The longest failure line printed: a longer one is cut, whatever it quotes. */
const MAX_FAILURE_LENGTH = 2000

/**
 * `line` with every argument (or the name or value of a `--flag=value`) that may not be shown
 * (see mayShowArgument) replaced by its length, wherever a message quoted it, and cut to
 * {@link MAX_FAILURE_LENGTH}: nothing a user passes is echoed whole, whichever code wrote the message.
 */
function withoutArguments(message: string, args: readonly string[]): string {
  let shown = message
  for (const part of args.flatMap((arg) => [arg, ...arg.split('=')])) {
    if (part.length < 4 || mayShowArgument(part)) continue
    // A snake-case word that the message also holds inside a longer name (a migration's,
    // 005_add_openrouter_integration, or the file migrate:new made of it) is that name: shown.
    if (/^[a-z0-9_]+$/.test(part) && withinName(shown, part)) continue
    const hidden = `(${part.length} characters, not shown)`
    // Replaced as the message may hold it: as passed, and with its line breaks made spaces.
    for (const variant of new Set([part, oneLine(part)])) {
      shown = shown.split(variant).join(hidden)
    }
  }
  // Its line breaks made spaces, and what else a name in it may hold escaped.
  shown = shownOnTerminal(oneLine(shown))
  return shown.length > MAX_FAILURE_LENGTH ? `${shown.slice(0, MAX_FAILURE_LENGTH)}… (cut)` : shown
}

/** Whether `text` holds `word` with a letter, digit or _ touching it. */
function withinName(text: string, word: string): boolean {
  for (let at = text.indexOf(word); at >= 0; at = text.indexOf(word, at + 1)) {
    if (/\w/.test(text[at - 1] ?? '') || /\w/.test(text[at + word.length] ?? '')) return true
  }
  return false
}

/**
 * The connection string in the first of the environment variables `names` that is set, checked
 * (see givenConnectionString: one set but blank is refused) before anything connects with it, or
 * undefined when none is set.
 *
 * @example
 * ```ts
 * const server = serverFromEnv(['LINT_LOCKS_DATABASE_URL'])
 * ```
 */
export function serverFromEnv(
  names: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  for (const name of names) {
    const value = givenConnectionString(env[name], name)
    if (value !== undefined) return value
  }
  return undefined
}

/**
 * Ends the process once what it wrote has been flushed. The command is over: a socket that a
 * driver left open must not keep the process alive (node-postgres keeps a connection whose
 * password lookup failed until the server's authentication_timeout, 60 s).
 */
function exit(code: number): void {
  process.exitCode = code
  process.stdout.write('', () => process.stderr.write('', () => process.exit()))
}

/**
 * Runs a command declared by `spec` (see {@link CommandSpec}): its arguments are parsed
 * strictly first, so that an unknown flag, a missing argument or a bad number fails before
 * anything else happens; `--help` prints the help and exits 0 without running it. Failures
 * are labelled with the npm script's name.
 *
 * @example
 * ```ts
 * const spec = { script: 'keys:rotate', summary: 'rotates', options: { 'batch-size': { type: 'string', description: 'rows', integer: { min: 1, max: 10_000 } } } } as const
 * runCommandLine(spec, async ({ values }) => rotate(values['batch-size'] ?? 500))
 * ```
 */
export function runCommandLine<S extends CommandSpec>(
  spec: S,
  command: (parsed: Extract<ParsedCommandLine<S>, { help: false }>) => Promise<number | void>,
): void {
  runCommand(spec.script, (args) => withHelp(spec, args, command))
}

/**
 * Parses `args` against `spec` and runs `command`, or prints the help when `--help` is among
 * them; for a command line that dispatches to several commands (migrate.ts).
 *
 * @example
 * ```ts
 * runCommand('migrate latest', (args) => withHelp(latestSpec, args, async () => migrate()))
 * ```
 */
export async function withHelp<S extends CommandSpec>(
  spec: S,
  args: readonly string[],
  command: (parsed: Extract<ParsedCommandLine<S>, { help: false }>) => Promise<number | void>,
): Promise<number | void> {
  const parsed = parseCommandLine(spec, args)
  if (parsed.help) {
    process.stdout.write(helpText(spec))
    return 0
  }
  return command(parsed as Extract<ParsedCommandLine<S>, { help: false }>)
}

/** An error's message on one line, for the one-line failure of a command. */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** `text` on one line: its line breaks, with the blanks around them, made one space. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]\s*/g, ' ')
}

/**
 * Opens the command's database on first use, after printing which one it is ("Database: …",
 * without the password), and closes it when `work` is done or has failed.
 *
 * @example
 * ```ts
 * await withCommandDatabase({}, async (db) => migrateToLatest(db()))
 * ```
 */
export async function withCommandDatabase<T>(
  options: Pick<CreateDbOptions, 'connectionString'>,
  work: (db: () => Kysely<any>) => Promise<T>,
): Promise<T> {
  // Loaded here, not up front: kysely and pg are most of a command's start-up (0.3 s), which
  // --help and a refused argument never need.
  const { createDb, describeDatabaseTarget, resolveDatabaseTarget } =
    await import('../connection/create-db.js')
  let db: Kysely<any> | undefined
  const open = () => {
    if (db) return db
    console.error(`Database: ${describeDatabaseTarget(resolveDatabaseTarget(options))}`)
    db = createDb({ ...options, refuseShadowedCatalog: true })
    return db
  }
  try {
    return await work(open)
  } finally {
    await db?.destroy()
  }
}
