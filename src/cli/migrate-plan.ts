/**
 * `npm run migrate:plan [-- --json] [--copy-schema] [--max-rows <rows>]`: rehearses every
 * migration the target has not applied, statement by statement, on a scratch copy of its schema
 * with representative row counts, and prints what each statement locks on the tables that
 * already exist (and for how long), whether it rewrites or scans them, whether it runs in a
 * transaction and under which lock_timeout. The target (MIGRATION_DATABASE_URL, else
 * DATABASE_URL, else the embedded database) is only read, and nothing is created on its server:
 * a PostgreSQL target is rehearsed on REHEARSAL_DATABASE_URL's server (never the target's, nor
 * DATABASE_URL's, the app's), else on a scratch cluster started from this machine's PostgreSQL
 * binaries; an embedded one on an in-memory PGlite. Its schema is built by the module's
 * migrations up to the target's last recorded one, or, with --copy-schema, copied from the
 * target with pg_dump (which must be installed), and then owned and run by an unprivileged role.
 */
import { existsSync } from 'node:fs'

import {
  type CommandSpec,
  describeArgument,
  runCommandLine,
  serverFromEnv,
  UsageError,
  usageLine,
  withCommandDatabase,
} from './run-command.js'

const spec = {
  script: 'migrate:plan',
  summary:
    'rehearses every pending migration on a scratch copy of the target, and prints what each statement locks, rewrites and scans.',
  options: {
    json: { type: 'boolean', description: 'prints the same data as JSON, for scripts' },
    'copy-schema': {
      type: 'boolean',
      description:
        "copies the target's schema with pg_dump instead of building it with the migrations",
    },
    'max-rows': {
      type: 'string',
      valueName: '<rows>',
      description: 'the most rows a scratch table gets (a whole number above 0)',
    },
  },
  notes: [
    'Database (only read): MIGRATION_DATABASE_URL, else DATABASE_URL, else the embedded database in PGLITE_DATA_DIR (default .data/pglite).',
    "Rehearsed on REHEARSAL_DATABASE_URL's server (a superuser's; never the target's nor DATABASE_URL's), else on a scratch cluster started from this machine's",
    "PostgreSQL binaries (initdb, postgres), or for the embedded database on an in-memory PGlite. Nothing is created on the target's server.",
  ],
} as const satisfies CommandSpec

async function main(values: {
  json: boolean
  'copy-schema': boolean
  'max-rows'?: string
}): Promise<void> {
  // Checked before any database is opened.
  const maxRows =
    values['max-rows'] === undefined ? undefined : positiveInteger('--max-rows', values['max-rows'])
  // Loaded once the arguments are checked: --help and a refused argument do not wait for them.
  const [
    { describeDatabaseTarget, IN_MEMORY, resolveDatabaseTarget },
    { formatRehearsal },
    { planPendingMigrations },
  ] = await Promise.all([
    import('../connection/create-db.js'),
    import('../rehearsal/format-rehearsal.js'),
    import('../rehearsal/plan-pending.js'),
  ])
  // Checked under its own name: a refusal says which variable to fix.
  const options = { connectionString: serverFromEnv(['MIGRATION_DATABASE_URL']) }
  const target = resolveDatabaseTarget(options)
  if (values['copy-schema'] && target.kind === 'postgres') {
    const { pgDumpRefusal } = await import('../rehearsal/copy-schema.js')
    const refusal = pgDumpRefusal(target.connectionString)
    if (refusal) throw new UsageError(`${refusal} usage: ${usageLine(spec)}`)
  }
  const bounds = { maxRows, minRows: maxRows === undefined ? undefined : Math.min(1000, maxRows) }
  const copy = {
    copySchema: values['copy-schema'],
    rehearsalServer: serverFromEnv(['REHEARSAL_DATABASE_URL']),
  }
  let plan
  if (target.kind === 'pglite' && target.dataDir !== IN_MEMORY && !existsSync(target.dataDir)) {
    // Opening the embedded database would create its folder: the plan must not change the target.
    console.error(
      `Database: ${describeDatabaseTarget(target)}, which does not exist yet: every migration is pending (the folder is not created).`,
    )
    plan = await planPendingMigrations(null, target, bounds, copy)
  } else {
    plan = await withCommandDatabase(options, (db) =>
      planPendingMigrations(db(), target, bounds, copy),
    )
  }
  process.stdout.write(values.json ? `${JSON.stringify(plan, null, 2)}\n` : formatRehearsal(plan))
  const failed = plan.migrations.find((migration) => migration.error)
  if (failed) throw new Error(`${failed.name} failed in the rehearsal: ${failed.error}`)
}

/** `value` as a whole number above 0, or an error that names `option`. */
function positiveInteger(option: string, value: string): number {
  if (!/^[1-9]\d*$/.test(value)) {
    throw new UsageError(
      `${option} must be a positive whole number, such as ${option}=20000, not ${describeArgument(value)}. usage: ${usageLine(spec)}`,
    )
  }
  return Number(value)
}

runCommandLine(spec, ({ values }) => main(values))
