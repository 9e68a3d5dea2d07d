/**
 * What every command line of the module shares: its one exit path. A command is an async
 * function that returns its exit code (or nothing, for 0) and throws to fail; the runner prints
 * a failure as one line, `<label> failed: <reason>`, and exits with 1. The same function opens
 * the database for the commands that need one, and closes it on every path.
 */
import type { Kysely } from 'kysely'

import { createDb, type CreateDbOptions, describeDatabaseTarget, resolveDatabaseTarget } from '../connection/create-db.js'

/**
 * Runs `command` with the arguments after the script name and sets the process's exit code:
 * the command's result, 0 when it returns nothing, 1 when it throws (its message on one line).
 *
 * @example
 * ```ts
 * runCommand('keys:rotate', async (args) => (args.length > 0 ? 2 : 0))
 * ```
 */
export function runCommand(label: string, command: (args: string[]) => Promise<number | void>): void {
  command(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code ?? 0
    },
    (error: unknown) => {
      console.error(`${label} failed: ${oneLine(error)}`)
      process.exitCode = 1
    },
  )
}

/** An error's message on one line, for the one-line failure of a command. */
function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.replace(/\s*\n\s*/g, ' ')
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
  let db: Kysely<any> | undefined
  const open = () => {
    if (db) return db
    console.error(`Database: ${describeDatabaseTarget(resolveDatabaseTarget(options))}`)
    db = createDb(options)
    return db
  }
  try {
    return await work(open)
  } finally {
    await db?.destroy()
  }
}

/**
 * Splits `args` into positionals and `--flags`, and refuses a flag not in `allowedFlags` or a
 * number of positionals other than `positionals`, with `refusal()` as the message.
 *
 * @example
 * ```ts
 * const { names, flags } = splitArguments(['005', '--down'], ['--down'], 1, () => 'usage: …')
 * ```
 */
export function splitArguments(
  args: readonly string[],
  allowedFlags: readonly string[],
  positionals: number,
  refusal: () => string,
): { names: string[]; flags: Set<string> } {
  const names = args.filter((arg) => !arg.startsWith('--'))
  const flags = args.filter((arg) => arg.startsWith('--'))
  if (names.length !== positionals || flags.some((flag) => !allowedFlags.includes(flag))) throw new Error(refusal())
  return { names, flags: new Set(flags) }
}
