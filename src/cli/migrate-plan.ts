/**
 * `npm run migrate:plan [-- --json] [--copy-schema] [--max-rows=N]`: rehearses every migration the target has
 * not applied, statement by statement, on a scratch copy of its schema with representative row
 * counts, and prints what each statement locks on the tables that already exist (and for how
 * long), whether it rewrites or scans them, whether it runs in a transaction and under which
 * lock_timeout. The target (MIGRATION_DATABASE_URL, else DATABASE_URL, else the embedded
 * database) is only read: the scratch database is a new one on the same PostgreSQL server
 * (creating it needs the CREATEDB privilege), or an in-memory PGlite, and is dropped afterwards.
 * Its schema is built by the module's migrations up to the target's last recorded one, or, with
 * --copy-schema, copied from the target with pg_dump (which must be installed).
 */
import { resolveDatabaseTarget } from '../connection/create-db.js'
import { formatRehearsal } from '../rehearsal/format-rehearsal.js'
import { planPendingMigrations } from '../rehearsal/plan-pending.js'
import { runCommand, splitArguments, withCommandDatabase } from './run-command.js'

const USAGE = 'usage: migrate:plan [-- --json] [--copy-schema] [--max-rows=<rows>]'

async function main(args: string[]): Promise<void> {
  const maxRowsArgument = args.find((arg) => arg.startsWith('--max-rows='))
  const { flags } = splitArguments(
    args.filter((arg) => arg !== maxRowsArgument),
    ['--json', '--copy-schema'],
    0,
    () => `migrate:plan takes only --json, --copy-schema and --max-rows=<rows>. ${USAGE}`,
  )
  const maxRows = maxRowsArgument === undefined ? undefined : Number(maxRowsArgument.slice('--max-rows='.length))
  if (maxRows !== undefined && (!Number.isInteger(maxRows) || maxRows < 0)) {
    throw new Error(`--max-rows must be a whole number of rows, not "${maxRowsArgument}". ${USAGE}`)
  }
  const options = { connectionString: process.env.MIGRATION_DATABASE_URL?.trim() || undefined }
  const plan = await withCommandDatabase(options, (db) =>
    planPendingMigrations(
      db(),
      resolveDatabaseTarget(options),
      { maxRows, minRows: maxRows === undefined ? undefined : Math.min(1000, maxRows) },
      { copySchema: flags.has('--copy-schema') },
    ),
  )
  process.stdout.write(flags.has('--json') ? `${JSON.stringify(plan, null, 2)}\n` : formatRehearsal(plan))
  const failed = plan.migrations.find((migration) => migration.error)
  if (failed) throw new Error(`${failed.name} failed in the rehearsal: ${failed.error}`)
}

runCommand('migrate:plan', main)
