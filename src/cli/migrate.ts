/**
 * The migration command line, behind the npm scripts:
 *
 *   migrate:latest | migrate:up | migrate:list
 *   migrate:down [-- --allow-data-loss]
 *   migrate:sql -- <name> [--down] [--no-locks] | migrate:sql -- --baseline <name> [--strict]
 *   migrate:baseline -- <name> [--strict | --plan]
 *   migrate:check [-- --strict]
 *
 * It works on MIGRATION_DATABASE_URL when set, else DATABASE_URL, otherwise on the embedded
 * database (PGLITE_DATA_DIR, default .data/pglite). Progress goes to stderr, results (the list,
 * the SQL, a diff, a drift report) to stdout. On failure it prints one line saying why and exits
 * with 1.
 */
import type { Kysely } from 'kysely'
import type { MigrationResult } from 'kysely/migration'

import { BaselineRefusedError, baselineMigrations } from '../adoption/baseline.js'
import { exportBaselineSql } from '../adoption/baseline-sql.js'
import { checkDrift, driftSummary, formatDriftReport } from '../adoption/drift-check.js'
import { planRepair } from '../adoption/repair-plan.js'
import { errorCode, SQLSTATE } from '../connection/sql-state.js'
import { exportMigrationSql } from '../export/migration-sql.js'
import { hasMigrationHistory } from '../migrator/history.js'
import { resolveMigrationName } from '../migrator/migration-names.js'
import { migrateDown, migrateToLatest, migrateUp, migrationStatus } from '../migrator/migrator.js'
import { migrationSettings } from '../migrator/settings.js'
import { formatSchemaDiff } from '../schema/diff.js'
import { runCommand, splitArguments, withCommandDatabase } from './run-command.js'

const USAGE =
  'usage: migrate <latest | up | down [--allow-data-loss] | list | sql <name> [--down] [--no-locks] | sql --baseline <name> [--strict] | ' +
  'baseline <name> [--strict | --plan] | check [--strict]>'

type Command = (db: () => Kysely<any>, args: string[]) => Promise<void>

const commands: Record<string, Command> = {
  latest: async (db) => {
    // Unreachable, it is taken as having one: migrateToLatest then says what is wrong.
    const hadHistory = await hasMigrationHistory(db()).catch(() => true)
    try {
      await report(migrateToLatest(db()), 'Already up to date: no pending migration.')
    } catch (error) {
      // The tables are there but no history: a database built by hand (the SQL Editor), which
      // is adopted, not migrated from scratch.
      if (!hadHistory && errorCode(error) === SQLSTATE.duplicateTable) {
        throw new Error(
          `${(error as Error).message.split('\n')[0]} The database has tables but no migration history: it was built by hand. ` +
            'Adopt it first at the migration whose schema it has: npm run migrate:baseline -- <name> (with --plan to see what ' +
            'differs), then run migrate:latest again. Nothing was changed.',
          { cause: error },
        )
      }
      throw error
    }
  },
  up: (db) => report(migrateUp(db()), 'Nothing to apply: no pending migration.'),
  down: (db, args) => {
    const unknownFlags = args.filter((arg) => arg !== '--allow-data-loss')
    if (unknownFlags.length > 0) throw new Error(`migrate:down takes only --allow-data-loss, not ${unknownFlags.join(' ')}. ${USAGE}`)
    // Unset, the environment (MIGRATION_ALLOW_DATA_LOSS) decides.
    const allowDataLoss = args.includes('--allow-data-loss') || undefined
    return report(migrateDown(db(), { allowDataLoss }), 'Nothing to roll back: no migration is applied.')
  },
  list: async (db) => {
    for (const { name, appliedAt } of await migrationStatus(db())) {
      console.log(`${appliedAt ? 'applied' : 'pending'}  ${appliedAt?.toISOString() ?? '-'.padEnd(24)}  ${name}`)
    }
  },
  // Runs on scratch databases (in memory; for the lock comments, a new one beside the configured
  // server, dropped afterwards), never on the target.
  sql: async (_db, args) => {
    const { name, flags } = parseArguments('migrate:sql', args, ['--down', '--baseline', '--strict', '--no-locks'])
    if (flags.has('--baseline')) {
      if (flags.has('--down')) throw new Error(`migrate:sql takes --down or --baseline, not both. ${USAGE}`)
      process.stdout.write(await exportBaselineSql(name, { strict: flags.has('--strict') }))
      return
    }
    if (flags.has('--strict')) throw new Error(`migrate:sql takes --strict only with --baseline. ${USAGE}`)
    // The lock comments are measured on a scratch database beside the configured server, if any.
    const server = process.env.MIGRATION_DATABASE_URL?.trim() || process.env.DATABASE_URL?.trim() || undefined
    const lockProfile = flags.has('--no-locks') ? undefined : { server }
    process.stdout.write(await exportMigrationSql(resolveMigrationName(name), flags.has('--down') ? 'down' : 'up', { lockProfile }))
  },
  baseline: async (db, args) => {
    const { name, flags } = parseArguments('migrate:baseline', args, ['--strict', '--plan'])
    if (flags.has('--plan')) {
      if (flags.has('--strict')) throw new Error(`migrate:baseline takes --strict or --plan, not both. ${USAGE}`)
      // Reads the database and prints SQL; runs none of it.
      const plan = await planRepair(db(), name)
      process.stdout.write(plan.script)
      console.error(
        `Repair plan for ${plan.migrationName}: ${plan.statements.length} statement(s) to review and run, ` +
          `${plan.unresolved.length} conflict(s) left to decide (listed at the end of the plan).`,
      )
      return
    }
    const options = { strict: flags.has('--strict'), lockWaitMs: migrationSettings().lockWaitMs }
    try {
      const { migrationName, recorded, diff } = await baselineMigrations(db(), name, options)
      for (const migration of recorded) console.error(`recorded ${migration}`)
      if (recorded.length === 0) console.error(`Already adopted: every migration up to ${migrationName} is recorded.`)
      const listed = formatSchemaDiff(diff)
      if (listed) process.stdout.write(`${listed}\n`)
    } catch (error) {
      // The diff is the result the user needs: on stdout, in full, under its classes; the reason
      // follows on stderr.
      if (error instanceof BaselineRefusedError && error.diff) process.stdout.write(`${formatSchemaDiff(error.diff)}\n`)
      throw error
    }
  },
  check: async (db, args) => {
    const { flags } = parseArguments('migrate:check', args, ['--strict'], false)
    const report = await checkDrift(db(), { strict: flags.has('--strict') })
    process.stdout.write(formatDriftReport(report))
    if (!report.ok) throw new Error(`drift found: ${driftSummary(report)} (the report above says what and where).`)
  },
}

/** Splits `args` into the one migration name (when `takesName`) and the allowed flags. */
function parseArguments(
  command: string,
  args: string[],
  allowedFlags: string[],
  takesName = true,
): { name: string; flags: Set<string> } {
  const { names, flags } = splitArguments(args, allowedFlags, takesName ? 1 : 0, () => {
    const takes = [takesName && 'one migration name', allowedFlags.length > 0 && `optionally ${allowedFlags.join(' or ')}`]
    return `${command} takes ${takes.filter(Boolean).join(' and ')}. ${USAGE}`
  })
  return { name: names[0] ?? '', flags }
}

async function report(run: Promise<MigrationResult[]>, nothingDone: string): Promise<void> {
  const results = await run
  for (const { migrationName, direction } of results) {
    console.error(`${direction === 'Up' ? 'applied ' : 'reverted'} ${migrationName}`)
  }
  if (results.length === 0) console.error(nothingDone)
}

async function main(argv: string[]): Promise<void> {
  const [name, ...args] = argv
  const command = name === undefined ? undefined : commands[name]
  if (!command) throw new Error(`unknown command "${name ?? ''}". ${USAGE}`)

  // Migrations may need a direct connection where the app goes through a transaction pooler.
  const options = { connectionString: process.env.MIGRATION_DATABASE_URL?.trim() || undefined }
  await withCommandDatabase(options, (db) => command(db, args))
}

runCommand(`migrate ${process.argv[2] ?? ''}`, main)
