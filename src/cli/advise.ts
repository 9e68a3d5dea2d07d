/**
 * `npm run db:advise`: runs Supabase's advisor lints (splinter's, re-implemented in
 * src/advisor/) on the database it is pointed at, read-only, and reports the findings by level.
 * Exit codes: 0 nothing fails, 3 a finding at or above --fail-on (ERROR by default) that
 * advisor-accepted.json does not accept, 1 a failure (a connection too), 2 a usage error (an
 * argument, or an accepted-findings file that is not usable).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'

import { shownFolder } from '../connection/shown-argument.js'
import { connectionOptions } from './migrate-specs.js'
import {
  type CommandSpec,
  describeArgument,
  helpText,
  parseCommandLine,
  runCommand,
  withCommandDatabase,
} from './run-command.js'

const spec = {
  script: 'db:advise',
  summary:
    "runs Supabase's advisor lints (security; with --performance, performance too) on the " +
    'database, read-only.',
  options: {
    json: { type: 'boolean', description: 'prints the report as JSON' },
    accepted: {
      type: 'string',
      valueName: '<file>',
      description: "the accepted findings (default: the repository's advisor-accepted.json)",
    },
    schemas: {
      type: 'string',
      valueName: '<a,b>',
      description:
        'the schemas PostgREST exposes (default: PGRST_DB_SCHEMAS, else public, graphql_public)',
    },
    'fail-on': {
      type: 'string',
      valueName: '<level>',
      description: 'the level that fails: error (default), warn or info',
    },
    performance: { type: 'boolean', description: "also runs the Performance advisor's lints" },
  },
  notes: [
    'Database: MIGRATION_DATABASE_URL, else DATABASE_URL, else the embedded database in ' +
      'PGLITE_DATA_DIR (default .data/pglite).',
    'It reads the catalog in one READ ONLY transaction and changes nothing. See docs/advisor.md.',
    'Exit codes: 0 nothing fails; 3 a finding at or above --fail-on that is not accepted; ' +
      '1 a failure; 2 a usage error.',
  ],
} as const satisfies CommandSpec

type Level = 'ERROR' | 'WARN' | 'INFO'

/** A usage error: the command exits 2 with it, having checked nothing. */
class UsageError extends Error {}

function failLevel(value: string | undefined): Level {
  if (value === undefined) return 'ERROR'
  const level = value.trim().toUpperCase()
  if (level === 'ERROR' || level === 'WARN' || level === 'INFO') return level
  throw new UsageError(`--fail-on is ${describeArgument(value)}, expected error, warn or info`)
}

function exposedSchemas(value: string | undefined): string[] | undefined {
  const given = value ?? (process.env.PGRST_DB_SCHEMAS?.trim() || undefined)
  if (given === undefined) return undefined
  const from = value === undefined ? 'PGRST_DB_SCHEMAS' : '--schemas'
  const names = given.split(',').map((name) => name.trim())
  const bad = names.find((name) => !/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(name))
  if (bad !== undefined) {
    throw new UsageError(
      `${from} lists ${bad === '' ? 'an empty name' : describeArgument(bad)}: ` +
        'give schema names separated by commas, such as public,api',
    )
  }
  return names
}

async function main(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine<typeof spec>>
  let failOn: Level
  let schemas: string[] | undefined
  try {
    parsed = parseCommandLine(spec, args)
    if (parsed.help) {
      process.stdout.write(helpText(spec))
      return 0
    }
    failOn = failLevel(parsed.values['fail-on'])
    schemas = exposedSchemas(parsed.values.schemas)
  } catch (error) {
    console.error(`db:advise: ${(error as Error).message}`)
    return 2
  }
  const { values } = parsed
  // Loaded once the arguments are checked: --help and a refused argument do not wait for them.
  const { AcceptedFindingsError, ADVISOR_ACCEPTED_FILE, readAcceptedFindings } =
    await import('../advisor/accepted-findings.js')
  const { failingFindings, formatAdvisorReport, runAdvisor } =
    await import('../advisor/run-advisor.js')
  const given = values.accepted
  let accepted
  try {
    accepted =
      given === undefined
        ? readAcceptedFindings()
        : readAcceptedFindings(given, `the file given to --accepted, ${describeArgument(given)}`)
  } catch (error) {
    if (!(error instanceof AcceptedFindingsError)) throw error
    console.error(`db:advise: ${error.message}`)
    return 2
  }

  const options = connectionOptions()
  const { resolveDatabaseTarget } = await import('../connection/create-db.js')
  const target = resolveDatabaseTarget(options)
  // A check creates nothing: an embedded database that does not exist is not made for it.
  if (target.kind === 'pglite' && !existsSync(join(target.dataDir, 'PG_VERSION'))) {
    throw new Error(
      `there is no embedded database at ${shownFolder(target.dataDir)}: nothing to check. Point DATABASE_URL ` +
        '(or MIGRATION_DATABASE_URL) at the database to check, or PGLITE_DATA_DIR at an existing ' +
        'embedded one.',
    )
  }
  const report = await withCommandDatabase(options, (db) =>
    runAdvisor(db(), {
      accepted,
      performance: values.performance,
      ...(schemas ? { schemas } : {}),
    }),
  )
  const failing = failingFindings(report, failOn)
  if (values.json) {
    const json = JSON.stringify({ ...report, failOn, failing: failing.length }, null, 2)
    process.stdout.write(`${json}\n`)
  } else {
    const file = given === undefined ? ADVISOR_ACCEPTED_FILE : 'the accepted file'
    process.stdout.write(formatAdvisorReport(report, file))
  }
  if (failing.length === 0) return 0
  console.error(
    `db:advise: ${failing.length} finding(s) at ${failOn}${failOn === 'ERROR' ? '' : ' or above'}` +
      ' not accepted (above). Close each with its remedy, or, where one is kept on purpose after ' +
      `review, add it to ${ADVISOR_ACCEPTED_FILE} with the reason.`,
  )
  return 3
}

runCommand('db:advise', main)
