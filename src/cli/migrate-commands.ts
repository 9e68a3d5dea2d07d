/**
 * What each migrate subcommand does (see migrate.ts for the command line, migrate-specs.ts for
 * what each accepts). Loaded only once the arguments are checked.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import type { Kysely } from 'kysely'
import type { MigrationResult } from 'kysely/migration'

import { BaselineRefusedError, baselineMigrations } from '../adoption/baseline.js'
import { exportBaselineSql } from '../adoption/baseline-sql.js'
import { formatDecisionEntries } from '../adoption/adoption-decisions.js'
import { checkDrift, driftSummary, formatDriftReport } from '../adoption/drift-check.js'
import { planRepair } from '../adoption/repair-plan.js'
import { resolveDatabaseTarget } from '../connection/create-db.js'
import { migrationDatabaseVariable } from '../connection/database-target.js'
import { shownOnTerminal } from '../connection/shown-argument.js'
import { isUnreachable, reachedThrough } from '../connection/unreachable.js'
import { errorCode, SQLSTATE } from '../connection/sql-state.js'
import { exportMigrationSql, type MigrationDirection } from '../export/migration-sql.js'
import { migrationNames } from '../migrations/index.js'
import { hasMigrationHistory } from '../migrator/history.js'
import { boundedHistoryRead } from '../migrator/lock.js'
import { HistoryLockedError } from '../migrator/locked-history.js'
import {
  InterruptedRollbackError,
  MigrationError,
  UnknownMigrationsError,
} from '../migrator/migration-error.js'
import {
  migrateDown,
  migrateRedo,
  migrateToLatest,
  migrateUp,
  type MigrationStatus,
  migrationStatus,
  pendingMigrationNames,
  unfinishedRollback,
} from '../migrator/migrator.js'
import { lockTimeoutSetting, type MigrateOptions, migrationSettings } from '../migrator/settings.js'
import { formatSchemaDiff } from '../schema/diff.js'
import { closestName } from './closest-name.js'
import type { CommandSpec } from './command-line.js'
import { type Command, connectionOptions, type Name, specs, type Values } from './migrate-specs.js'
import { writeNewMigration } from './new-migration.js'
import {
  CommandFailure,
  describeArgument,
  EXIT,
  serverFromEnv,
  UsageError,
  usageLine,
} from './run-command.js'
import { watchSlowSteps } from './slow-step.js'

export const commands: { [N in Name]: Command<N> } = {
  latest: async (db, { 'dry-run': dryRun, sql }) => {
    if (dryRun) return printDryRun(db, 'latest', sql)
    // A database that cannot be used is said with the variable that named it, as the run says it.
    const variable = migrationDatabaseVariable(process.env)
    if (await reachedThrough(variable, () => upToDate(db())))
      return void console.error('Already up to date: no pending migration.')
    // Where the question fails, it is taken as having one: migrateToLatest then says what is
    // wrong. A database that cannot be used is said at once (a second connection would wait
    // out the bound again: review N10-7's).
    const hadHistory = await reachedThrough(variable, () =>
      hasMigrationHistory(db()).catch(unlessUnreachable(true)),
    )
    try {
      await report(
        db,
        (options) => migrateToLatest(db(), options),
        'Already up to date: no pending migration.',
      )
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
  up: (db, { 'dry-run': dryRun, sql }) =>
    dryRun
      ? printDryRun(db, 'up', sql)
      : report(
          db,
          (options) => migrateUp(db(), options),
          'Nothing to apply: no pending migration.',
        ),
  down: (db, values) => {
    if (values['dry-run']) return printDryRun(db, 'down', values.sql)
    // Unset, the environment (MIGRATION_ALLOW_DATA_LOSS) decides.
    const allowDataLoss = values['allow-data-loss'] || undefined
    return report(
      db,
      (options) => migrateDown(db(), { ...options, allowDataLoss }),
      'Nothing to roll back: no migration is applied.',
    )
  },
  redo: (db, values) => {
    const allowDataLoss = values['allow-data-loss'] || undefined
    return report(
      db,
      (options) => migrateRedo(db(), { ...options, allowDataLoss }),
      'Nothing to redo: no migration is applied.',
    )
  },
  list: async (db, { json }) => {
    const status = await migrationStatus(db(), { env: process.env })
    const shownStatus = ({ appliedAt, unknown, reverting }: MigrationStatus) =>
      reverting ? 'reverting' : unknown ? 'unknown' : appliedAt ? 'applied' : 'pending'
    if (json) {
      const migrations = status.map((migration) => ({
        name: migration.name,
        status: shownStatus(migration),
        appliedAt: (migration.appliedAt && isoTime(migration.appliedAt)) ?? null,
        ...(migration.reverting && {
          revertingSince: (migration.revertingSince && isoTime(migration.revertingSince)) ?? null,
        }),
      }))
      process.stdout.write(`${JSON.stringify({ migrations }, null, 2)}\n`)
      return
    }
    for (const migration of status) {
      const { name, appliedAt, reverting, revertingSince } = migration
      const when = appliedAt ? (isoTime(appliedAt) ?? '(invalid time)') : '-'
      const rollback = reverting
        ? `  (interrupted rollback${revertingSince ? `, begun ${isoTime(revertingSince) ?? '(invalid time)'}` : ''})`
        : ''
      console.log(
        `${shownStatus(migration)}  ${when.padEnd(24)}  ${shownOnTerminal(name)}${rollback}`,
      )
    }
    const unknown = status.filter((entry) => entry.unknown).map((entry) => entry.name)
    if (unknown.length > 0)
      console.error(
        `unknown: ${unknown.map(shownOnTerminal).join(', ')}, recorded in the history, has no migration file in this module; ` +
          'restore the file, or check that you point at the right database.',
      )
    const interrupted = status.find((entry) => entry.reverting)
    if (interrupted) {
      const began = interrupted.revertingSince && isoTime(interrupted.revertingSince)
      console.error(
        `reverting: the rollback of ${shownOnTerminal(interrupted.name)} began${began ? ` at ${began}` : ''} and did not finish ` +
          '(the steps of its down that committed stay; it stays recorded as applied). Complete it with npm run migrate:down ' +
          '(add -- --allow-data-loss if the first attempt was run with it); until then migrate:latest, migrate:up and start-up refuse.',
      )
    }
  },
  new: async (_db, _values, [name = '']) => {
    const { file, registry } = writeNewMigration(name)
    console.error(`wrote ${file}`)
    console.error(`registered it in ${registry}`)
    console.error(
      'Next: write its up and down, then npm run lint:locks, npm run migrate:latest and npm run db:codegen (docs/adding-a-migration.md).',
    )
  },
  // Runs on scratch databases (in memory; for the lock comments, a new one on the server named
  // for rehearsals, dropped afterwards), never on the target or its server.
  sql: async (_db, values, [name = '']) => {
    if (values.baseline) {
      if (values.down)
        throw new UsageError(
          `migrate:sql takes --down or --baseline, not both. usage: ${usageLine(specs.sql)}`,
        )
      process.stdout.write(await exportBaselineSql(name, { strict: values.strict }))
      return
    }
    if (values.strict)
      throw new UsageError(
        `migrate:sql takes --strict only with --baseline. usage: ${usageLine(specs.sql)}`,
      )
    const server = serverFromEnv(['REHEARSAL_DATABASE_URL'])
    const direction = values.down ? 'down' : 'up'
    if (values['no-locks'] || server === undefined) {
      const lockProfile = values['no-locks'] ? undefined : { server }
      process.stdout.write(
        await exportMigrationSql(migrationNamed(name), direction, { lockProfile }),
      )
      return
    }
    const { refuseAppServer } = await import('../rehearsal/rehearsal-server.js')
    await refuseAppServer(server, 'REHEARSAL_DATABASE_URL', 'a scratch embedded database')
    // Every connection of the export goes to the server for rehearsals.
    const exported = await reachedThrough('REHEARSAL_DATABASE_URL', () =>
      exportMigrationSql(migrationNamed(name), direction, { lockProfile: { server } }),
    )
    process.stdout.write(exported)
  },
  baseline: async (db, values, [given = '']) => {
    // Checked before db() opens the database: a bad name is a usage error, as in migrate:sql.
    const name = migrationNamed(given, specs.baseline)
    if (values.plan) {
      if (values.strict)
        throw new UsageError(
          `migrate:baseline takes --strict or --plan, not both. usage: ${usageLine(specs.baseline)}`,
        )
      // Reads the database and prints SQL; runs none of it.
      const plan = await planRepair(db(), name)
      process.stdout.write(plan.script)
      console.error(
        `Repair plan for ${plan.migrationName}: ${plan.statements.length} statement(s) to review and run, ` +
          `${plan.unresolved.length} conflict(s) left to decide (listed at the end of the plan).`,
      )
      return
    }
    const { lockWaitMs, log } = migrationSettings()
    // log: the line that says the baseline waits for another run's migration lock, as a run's.
    const options = { strict: values.strict, lockWaitMs, log }
    try {
      const { migrationName, recorded, diff } = await baselineMigrations(db(), name, options)
      for (const migration of recorded) console.error(`recorded ${migration}`)
      if (recorded.length === 0)
        console.error(`Already adopted: every migration up to ${migrationName} is recorded.`)
      const listed = formatSchemaDiff(diff)
      if (listed) process.stdout.write(`${listed}\n`)
    } catch (error) {
      // The diff is the result the user needs: on stdout, in full, under its classes; the reason
      // follows on stderr.
      if (error instanceof BaselineRefusedError && error.diff)
        process.stdout.write(
          `${formatSchemaDiff(error.diff)}\n${formatDecisionEntries(error.diff)}`,
        )
      throw error
    }
  },
  check: async (db, values) => {
    const report = await checkDrift(db(), { strict: values.strict })
    process.stdout.write(
      values.json ? `${JSON.stringify(report, null, 2)}\n` : formatDriftReport(report),
    )
    const where = values.json ? 'the JSON on stdout' : 'the report above'
    if (!report.ok)
      throw new CommandFailure(
        `drift found: ${driftSummary(report)} (${where} says what and where).`,
        EXIT.found,
      )
  },
  pull: async (db, _values, [name = 'schema']) => {
    const { PULL_NAME, PullRefusedError, pullSchema } = await import('../pull/pull-schema.js')
    // A usage error, answered before the database is opened.
    if (!PULL_NAME.test(name)) {
      console.error(
        `migrate pull refused: the name after NNN_pulled_ is 1 to 40 lower-case letters, digits or _, starting with a letter. usage: ${usageLine(specs.pull)}`,
      )
      return 2
    }
    try {
      const { lockWaitMs, lockTimeoutMs, log } = migrationSettings()
      // log: the line that says the pull waits for another run's migration lock, as a run's.
      const result = await pullSchema(db(), {
        name,
        lockWaitMs,
        lockTimeoutMs,
        log,
        busyTables: busyTables(),
      })
      for (const line of result.notPulled) console.error(`not pulled: ${shownOnTerminal(line)}`)
      if (!result.migrationName)
        return void console.error(
          result.notPulled.length > 0
            ? `Nothing to pull: ${shownOnTerminal(result.schemas.join(', '))} match the migrations, but for what is listed above as not pulled.`
            : `Nothing to pull: ${shownOnTerminal(result.schemas.join(', '))} match the migrations.`,
        )
      console.error(
        `wrote ${result.path} (${result.statements} statements; ${result.created.length} new tables, views and sequences), ` +
          `registered it in src/migrations/index.ts, and recorded the database at ${result.migrationName}. ` +
          'Review it, run npm run db:codegen and npm run db:access, and commit them together.',
      )
    } catch (error) {
      if (!(error instanceof PullRefusedError)) throw error
      console.error(`migrate pull refused: ${shownOnTerminal(error.message)}`)
      return 2
    }
  },
}

/** A migration's name without its number: `add_openrouter_integration`. */
function unnumbered(name: string): string {
  return name.replace(/^\d{3}_/, '')
}

/**
 * The migration `name` names, in full or by a unique prefix, with or without its number; a name that names none, or several,
 * is a usage error that says which migration was most likely meant.
 */
function migrationNamed(name: string, spec: CommandSpec = specs.sql): string {
  // With its number or without it (`add_openrouter_integration`), in full or a prefix.
  const matches = migrationNames.filter(
    (known) => known.startsWith(name) || unnumbered(known).startsWith(name),
  )
  if (migrationNames.includes(name)) return name
  if (matches.length === 1) return matches[0]!
  const usage = `usage: ${usageLine(spec)}`
  if (matches.length > 1)
    throw new UsageError(
      `${describeArgument(name)} matches several migrations (${matches.join(', ')}); give more of the name. ${usage}`,
    )
  // A guess is only worth its cost for a name of a migration's length.
  const closestUnnumbered =
    name.length <= 100 ? closestName(name, migrationNames.map(unnumbered)) : undefined
  const closest =
    name.length <= 100
      ? (closestName(name, migrationNames) ??
        migrationNames.find((known) => unnumbered(known) === closestUnnumbered))
      : undefined
  throw new UsageError(
    `No migration is named ${describeArgument(name)}${closest ? `: did you mean ${closest}?` : '.'} ` +
      `Known migrations: ${migrationNames.join(', ')}. ${usage}`,
  )
}

/**
 * A history row's time as ISO 8601, or undefined when its timestamp is not a time: whoever can
 * write the history table can write any text there.
 */
function isoTime(date: Date): string | undefined {
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString()
}

/** lock-policy.json's busy tables, whose locks lint:locks measures; none where it cannot be read. */
function busyTables(): string[] {
  try {
    const policy = JSON.parse(
      readFileSync(fileURLToPath(new URL('../../lock-policy.json', import.meta.url)), 'utf8'),
    ) as { busyTables?: unknown }
    return Array.isArray(policy.busyTables)
      ? policy.busyTables.filter((table): table is string => typeof table === 'string')
      : []
  } catch {
    return []
  }
}

/**
 * Whether nothing is pending, asked as start-up asks it (one query, which also refuses an
 * interrupted rollback), and the history records no migration this module lacks (which start-up
 * lets pass, for an older instance of a rolling deploy): then `latest` has nothing to do,
 * without a run's lock and table checks. Anything else (a pending migration, an interrupted
 * rollback, an unknown history row, an error, which the run then reports in full) goes to the run.
 */
async function upToDate(db: Kysely<any>): Promise<boolean> {
  try {
    // Bounded by MIGRATION_LOCK_TIMEOUT_MS, as the answer at once is (up-to-date-at-once.ts): a
    // lock on the history is said, not waited out (hostile review, F1).
    return await boundedHistoryRead(db, lockTimeoutSetting(), async (trx) => {
      if ((await pendingMigrationNames(trx)).length > 0) return false
      return !(await migrationStatus(trx)).some((migration) => migration.unknown)
    })
  } catch (error) {
    return unlessUnreachable(false)(error)
  }
}

/**
 * For a `.catch` of a question asked before the run: `answer` where it failed, unless the
 * database cannot be used at all (isUnreachable) or another session locks the history
 * (HistoryLockedError), which is thrown as it is, for the command's one exit path to say.
 */
function unlessUnreachable<T>(answer: T): (error: unknown) => T {
  return (error) => {
    // Another session's lock on the history: the run would wait for it again.
    if (error instanceof HistoryLockedError) throw error
    if (!isUnreachable(errorCode(error), String(error))) return answer
    // The driver's own error: the caller words it with the variable that named the database.
    throw error instanceof MigrationError && error.cause !== undefined ? error.cause : error
  }
}

/**
 * Runs `run` and prints each migration it applied or reverted with the time it took (its `up`
 * or `down`, without the run's bookkeeping), or `nothingDone`. On a terminal, a step that takes
 * long is shown as it runs (see watchSlowSteps).
 */
async function report(
  db: () => Kysely<any>,
  run: (options: Pick<MigrateOptions, 'onMigration'>) => Promise<MigrationResult[]>,
  nothingDone: string,
): Promise<void> {
  const took = new Map<string, number>()
  const watch = watchSlowSteps(db())
  let results: MigrationResult[]
  try {
    results = await run({
      onMigration: (event) => {
        watch.onMigration(event)
        if (event.phase === 'end') took.set(`${event.direction} ${event.name}`, event.ms)
      },
    })
  } finally {
    await watch.stop()
  }
  for (const { migrationName, direction } of results) {
    const ms = took.get(`${direction === 'Up' ? 'up' : 'down'} ${migrationName}`)
    console.error(
      `${direction === 'Up' ? 'applied ' : 'reverted'} ${migrationName}${ms === undefined ? '' : ` in ${formatDuration(ms)}`}`,
    )
  }
  if (results.length === 0) console.error(nothingDone)
}

/** A duration as a person reads it: 85 ms, 2.4 s, 3 min 5 s. */
function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const seconds = Math.round(ms / 1000)
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`
}

/**
 * Prints what `latest`, `up` or `down` would run, and with `withSql` the SQL of each, as
 * migrate:sql exports it. It only reads the history; an embedded database that does not exist
 * yet is not created: everything is pending there.
 */
async function printDryRun(
  db: () => Kysely<any>,
  kind: 'latest' | 'up' | 'down',
  withSql: boolean,
): Promise<void> {
  const exists = await embeddedDatabaseExists()
  const status = exists
    ? await migrationStatus(db(), { env: process.env })
    : await unappliedStatus()
  const pending = status
    .filter((migration) => !migration.appliedAt)
    .map((migration) => migration.name)
  const applied = status
    .filter((migration) => migration.appliedAt)
    .map((migration) => migration.name)
  // As the run refuses a history row that no migration file has, before anything (review of
  // f8f189d, F4: the dry run said it would revert one).
  const unknown = status.filter((migration) => migration.unknown).map(({ name }) => name)
  if (unknown.length > 0) throw new UnknownMigrationsError(unknown)
  const direction: MigrationDirection = kind === 'down' ? 'down' : 'up'
  const chosen =
    kind === 'latest' ? pending : kind === 'up' ? pending.slice(0, 1) : applied.slice(-1)
  if (chosen.length === 0) {
    console.error(`Dry run: nothing to ${kind === 'down' ? 'roll back' : 'apply'}.`)
    return
  }
  // As the run would refuse: nothing is applied on top of a rollback that did not finish.
  if (direction === 'up' && exists) {
    const interrupted = await unfinishedRollback(db(), { env: process.env })
    if (interrupted) throw new InterruptedRollbackError(interrupted)
  }
  for (const name of chosen) {
    console.log(`would ${direction === 'up' ? 'apply ' : 'revert'} ${shownOnTerminal(name)}`)
    if (withSql) process.stdout.write(`${await exportMigrationSql(name, direction)}\n`)
  }
  console.error(
    `Dry run: nothing was changed. Run it without --dry-run to ${direction === 'up' ? 'apply' : 'revert'} ${chosen.length === 1 ? 'it' : 'them'}.`,
  )
}

async function embeddedDatabaseExists(): Promise<boolean> {
  const target = resolveDatabaseTarget(connectionOptions())
  return target.kind !== 'pglite' || existsSync(join(target.dataDir, 'PG_VERSION'))
}

async function unappliedStatus(): Promise<MigrationStatus[]> {
  return migrationNames.map((name) => ({ name, appliedAt: undefined }))
}
