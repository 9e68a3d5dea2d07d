/**
 * `x402-db <command> [arguments]`: finds the command in the one list (command-list.ts) and runs
 * its module, dist/cli/<module>.js, in this process. It answers by itself, without loading
 * kysely, pg or PGlite: the top-level help, an unknown command (exit 2, with a "did you mean"),
 * and a command that would write while npm_config_dry_run is set (exit 2). The no-op
 * `migrate latest` on a server is answered with one query (up-to-date-at-once.ts) before the
 * runner is loaded.
 */
import { fileURLToPath, pathToFileURL } from 'node:url'

import { closestName } from './closest-name.js'
import { COMMANDS, type CommandEntry, EXIT_CODES } from './command-list.js'
import { describeArgument } from './command-line.js'

const HELP_FLAGS = ['--help', '-h']

/**
 * Runs `x402-db` with `argv` (the words after `x402-db`). Returns the exit code where it answered
 * by itself; undefined once the command's module runs, which ends the process with its own code.
 *
 * @example
 * ```ts
 * const code = await dispatch(process.argv.slice(2))
 * if (code !== undefined) process.exitCode = code
 * ```
 */
export async function dispatch(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number | undefined> {
  const [first, ...rest] = argv
  if (first === undefined || first === 'help' || HELP_FLAGS.includes(first)) {
    // `x402-db help migrate latest` is the command's own --help.
    if (first === 'help' && rest.length > 0) return dispatch([...rest, '--help'], env)
    process.stdout.write(topLevelHelp())
    return 0
  }
  const entry = findCommand(argv)
  if (!entry) return refuseUnknown(argv)
  const args = argv.slice(entry.name.split(' ').length)
  const refusal = dryRunRefusal(entry, args, env)
  if (refusal) {
    console.error(refusal)
    return 2
  }
  if (entry.name === 'migrate latest' && args.length === 0) {
    const answered = await noOpAtOnce(env)
    if (answered !== undefined) return answered
  }
  const script = fileURLToPath(new URL(`./${entry.module}.js`, import.meta.url))
  // The module reads its arguments from process.argv, as when it is run directly.
  process.argv = [process.argv[0]!, script, ...argv.slice(1)]
  await import(pathToFileURL(script).href)
  return undefined
}

/**
 * The help of `x402-db`, `x402-db --help` and `x402-db help`: every command with one line, and
 * the exit codes.
 *
 * @example
 * ```ts
 * process.stdout.write(topLevelHelp())
 * ```
 */
export function topLevelHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length))
  return [
    'usage: x402-db <command> [arguments]',
    '       x402-db <command> --help   what a command takes; npm run <script> -- --help the same',
    '',
    'Commands (npm script in brackets):',
    ...COMMANDS.map(
      (command) => `  ${command.name.padEnd(width)}  ${command.summary} [${command.script}]`,
    ),
    '',
    'Database: MIGRATION_DATABASE_URL (migrate commands), else DATABASE_URL, else the embedded',
    'database in PGLITE_DATA_DIR (default .data/pglite).',
    '',
    'Exit codes:',
    ...EXIT_CODES.map(([code, meaning]) => `  ${code}  ${meaning}`),
    '',
  ].join('\n')
}

/** The command that `argv` names: the entry whose words it starts with, the longest first. */
function findCommand(argv: readonly string[]): CommandEntry | undefined {
  const byLength = [...COMMANDS].sort((a, b) => b.name.length - a.name.length)
  return byLength.find((command) =>
    command.name.split(' ').every((word, index) => argv[index] === word),
  )
}

/**
 * An unknown command: its module's own help where only flags follow a module name
 * (`x402-db migrate --help`), otherwise exit 2 with the closest command.
 */
async function refuseUnknown(argv: readonly string[]): Promise<number | undefined> {
  const [first = '', second] = argv
  const under = COMMANDS.filter((command) => command.name.startsWith(`${first} `))
  if (under.length > 0 && second !== undefined && HELP_FLAGS.includes(second)) {
    const script = fileURLToPath(new URL(`./${under[0]!.module}.js`, import.meta.url))
    process.argv = [process.argv[0]!, script, ...argv.slice(1)]
    await import(pathToFileURL(script).href)
    return undefined
  }
  const listed = 'x402-db --help lists every command.'
  if (under.length > 0) {
    const words = under.map((command) => command.name.slice(first.length + 1))
    if (second === undefined) {
      console.error(`x402-db ${first} needs a command: ${words.join(', ')}. ${listed}`)
      return 2
    }
    const guess = closestName(second, words)
    const hint = guess ? ` Did you mean x402-db ${first} ${guess}?` : ''
    console.error(`unknown command: x402-db ${first} ${describeArgument(second)}.${hint} ${listed}`)
    return 2
  }
  const guess =
    // The npm script's name, or the second word alone: `x402-db migrate:up`, `x402-db latest`.
    COMMANDS.find((command) => command.script === first || command.name.endsWith(` ${first}`))
      ?.name ??
    closestName(first, [...new Set(COMMANDS.map((command) => command.name.split(' ')[0]!))])
  const hint = guess ? ` Did you mean x402-db ${guess}?` : ''
  console.error(`unknown command ${describeArgument(first)}.${hint} ${listed}`)
  return 2
}

/**
 * Why `entry` may not run with `args` while npm_config_dry_run is set, and what to type
 * instead; undefined where it may. npm takes `--dry-run` after a script's name without `--` for
 * itself (`npm run migrate:up --dry-run`) and tells the script only through that variable: a
 * command that writes refuses rather than write what its user meant to preview.
 */
function dryRunRefusal(
  entry: CommandEntry,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): string | undefined {
  const value = env.npm_config_dry_run?.trim().toLowerCase()
  if (!value || value === 'false' || entry.writes === 'nothing') return undefined
  if (
    args.some((arg) => HELP_FLAGS.includes(arg)) ||
    (entry.dryRunFlag && args.includes(entry.dryRunFlag))
  )
    return undefined
  const viaNpm = env.npm_lifecycle_event === entry.script
  const typed = (flag: string) =>
    viaNpm ? `npm run ${entry.script} -- ${flag}` : `x402-db ${entry.name} ${flag}`
  const changes = entry.writes === 'database' ? 'the database' : 'files'
  const why =
    `${entry.name} refused: npm_config_dry_run is set (npm keeps a --dry-run typed without \`--\` ` +
    `for itself, as in \`npm run ${entry.script} --dry-run\`), and ${entry.name} changes ${changes}. Nothing was done.`
  if (entry.dryRunFlag) return `${why} For its dry run, type: ${typed(entry.dryRunFlag)}`
  return `${why} It has no dry run (${typed('--help')} says what it does); to run it, type it without --dry-run.`
}

/**
 * The no-op `migrate latest` on a server in one query: 0 when it is up to date, 1 when the
 * server did not answer in time or another session's lock on the history outlasted the lock
 * timeout (HistoryLockedError says whose), undefined when the full run must decide (the embedded
 * database, a MIGRATION_* setting that the run checks first, anything pending or in doubt).
 */
async function noOpAtOnce(env: NodeJS.ProcessEnv): Promise<number | undefined> {
  const settings = Object.keys(env).filter(
    (name) => name.startsWith('MIGRATION_') && name !== 'MIGRATION_DATABASE_URL',
  )
  if (settings.some((name) => env[name]?.trim())) return undefined
  const { describeDatabaseTarget, migrationDatabaseVariable, resolveDatabaseTarget } =
    await import('../connection/database-target.js')
  let target
  try {
    target = resolveDatabaseTarget({
      // Blank, it is refused (by the full run, with its reason): not taken as unset.
      connectionString: env.MIGRATION_DATABASE_URL,
      env,
    })
  } catch {
    // The full run refuses the connection string, with its reason.
    return undefined
  }
  if (target.kind !== 'postgres') return undefined
  const [{ upToDateAtOnce }, { unreachableMessage }] = await Promise.all([
    import('../migrator/up-to-date-at-once.js'),
    import('../connection/unreachable.js'),
  ])
  let upToDate
  try {
    upToDate = await upToDateAtOnce(target.connectionString)
  } catch (error) {
    // Said as the full run says it: which database, and the variable that named it.
    const variable = migrationDatabaseVariable(env)
    console.error(`Database: ${describeDatabaseTarget(target)}`)
    console.error(
      `migrate latest failed: ${unreachableMessage(error, variable) ?? (error as Error).message}`,
    )
    return 1
  }
  if (!upToDate) return undefined
  console.error(`Database: ${describeDatabaseTarget(target)}`)
  console.error('Already up to date: no pending migration.')
  return 0
}
