/**
 * The migration command line, behind the npm scripts:
 *
 *   migrate:latest | migrate:up [-- --dry-run [--sql]] | migrate:list [-- --json]
 *   migrate:down [-- --allow-data-loss] [--dry-run [--sql]] | migrate:redo [-- --allow-data-loss]
 *   migrate:new -- <name>
 *   migrate:sql -- <name> [--down] [--no-locks] | migrate:sql -- --baseline <name> [--strict]
 *   migrate:baseline -- <name> [--strict | --plan]
 *   migrate:check [-- --strict] [--json]
 *   migrate:pull [-- <name>]
 *
 * It works on MIGRATION_DATABASE_URL when set, else DATABASE_URL, otherwise on the embedded
 * database (PGLITE_DATA_DIR, default .data/pglite). Progress goes to stderr, results (the list,
 * the SQL, a diff, a drift report, what a dry run would do) to stdout. Each command takes --help,
 * and refuses an argument it does not know before it opens any database (exit code 2, with the
 * flag it most likely meant). On failure it prints one line saying why and exits with 1; drift
 * found by migrate:check exits with 3 (EXIT in run-command.ts).
 */
import {
  type Command,
  connectionOptions,
  type Name,
  specs,
  type Values,
  withoutDatabase,
} from './migrate-specs.js'
import {
  describeArgument,
  helpText,
  runCommand,
  UsageError,
  usageLine,
  withCommandDatabase,
  withHelp,
} from './run-command.js'

const USAGE = `usage: migrate <${Object.keys(specs).join(' | ')}> (npm run migrate:<command> -- --help says more)`

async function main(argv: string[]): Promise<number | void> {
  const [name, ...args] = argv
  if (name === '--help' || name === '-h') {
    process.stdout.write(Object.values(specs).map(helpText).join('\n'))
    return 0
  }
  const found = name !== undefined && Object.hasOwn(specs, name) ? (name as Name) : undefined
  if (!found) throw new UsageError(`unknown command ${describeArgument(name ?? '')}. ${USAGE}`)
  return withHelp(specs[found], args, async ({ values, positionals }) => {
    if ('sql' in values && values.sql && !values['dry-run'])
      throw new UsageError(
        `${specs[found].script}: --sql goes with --dry-run. usage: ${usageLine(specs[found])}`,
      )
    // What does the work is loaded only now (kysely, pg, the migrations: most of the start-up),
    // after the arguments were checked: --help and a refused argument do not wait for it.
    const [{ migrationSettings }, { commands }] = await Promise.all([
      import('../migrator/settings.js'),
      import('./migrate-commands.js'),
    ])
    const command = commands[found] as Command<Name>
    if (withoutDatabase.has(found)) {
      return command(
        () => {
          throw new Error(`${specs[found].script} opens no database.`)
        },
        values as Values<Name>,
        positionals,
      )
    }
    // A bad MIGRATION_* number fails here, before any connection is made.
    migrationSettings()
    return withCommandDatabase(connectionOptions(), (db) =>
      command(db, values as Values<Name>, positionals),
    )
  })
}

runCommand(`migrate ${process.argv[2] ?? ''}`, main)
