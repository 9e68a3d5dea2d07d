import type { Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'

import { migrations } from '../migrations/index.js'
import { type MigrationConfig, migrationProvider, runsInTransaction } from '../migrator/provider.js'
import {
  catalogLosses,
  COUNTABLE_SQL,
  downCheckSql,
  downGuardSql,
  DOWN_WATCH_SQL,
  type Loss,
  noteCatalog,
} from '../migrator/down-guard.js'
import { migrationSettings } from '../migrator/settings.js'
import { MIGRATION_HISTORY_TABLE } from '../migrator/history.js'
import { migrationBefore, resolveMigrationName } from '../migrator/migration-names.js'
import { migrateTo } from '../migrator/migrator.js'
import { privilegeChecks, SCRIPT_BEGIN, scriptIdleTimeout } from '../migrator/script-checks.js'
import { API_ROLE_ADMINS_SQL } from '../supabase/api-role-admins.js'
import { ensureSupabaseStandIn } from '../supabase/stand-in.js'
import { describeStatement } from '../rehearsal/format-rehearsal.js'
import type { MeasuredStatement } from '../rehearsal/measured-statement.js'
import { rehearse, type RehearsalStep } from '../rehearsal/rehearse.js'
import { scratchDatabase } from '../migrated-dumps/migrated-template.js'

/** Which half of a migration to export. */
export type MigrationDirection = 'up' | 'down'

/** Options of {@link exportMigrationSql}. */
export interface ExportOptions {
  /**
   * Rehearse the migration (up or down, as exported) and write each statement's measured lock profile as a
   * comment above it: on a scratch database created on this PostgreSQL server (the database in
   * the URL is left alone), or, without `server`, on an in-memory PGlite, which cannot see the
   * locks of statements run outside a transaction (the comment says so).
   */
  lockProfile?: { server?: string; rows?: number }
}

/**
 * The SQL that a migration runs, as a script for review or for the Supabase SQL Editor. It is
 * produced by running the migration's own TypeScript, with the runner's session settings, on a
 * scratch in-memory database that is first brought to the state the migration starts from, and
 * recording every statement, transaction boundaries included.
 *
 * @example
 * ```ts
 * process.stdout.write(await exportMigrationSql('005_add_openrouter_integration', 'down'))
 * ```
 */
export async function exportMigrationSql(
  name: string,
  direction: MigrationDirection = 'up',
  options: ExportOptions = {},
): Promise<string> {
  if (!migrations[name]) return exportMigrationSql(resolveMigrationName(name), direction, options)
  const startingPoint = direction === 'up' ? migrationBefore(name) : name
  // The defaults, not this machine's environment: the script must not depend on who exports it.
  const settings = migrationSettings({ env: {} })
  const migration = (await migrationProvider(settings).getMigrations())[name]!
  const run = direction === 'up' ? migration.up : migration.down
  if (!run)
    throw new Error(`Migration ${name} has no down function, so it cannot be exported as down.`)

  const { statements, guard } = await recordStatements(
    name,
    direction,
    startingPoint,
    migration,
    run,
  )
  // A down is rehearsed as the runner runs it: its function, in the migration's transaction mode.
  const step: RehearsalStep =
    direction === 'up'
      ? { migration: name }
      : {
          name: `${name} (down)`,
          candidate: { up: run, config: (migration as { config?: MigrationConfig }).config },
        }
  const profile = options.lockProfile
    ? await measureStatements(name, step, startingPoint, options.lockProfile, statements)
    : undefined
  const transactional = runsInTransaction(migration)
  // A transactional down is guarded as the runner guards it: its settings, the watch, then the
  // block (whose backups fire event triggers), before the down; the check before COMMIT.
  const guards: Guards = {
    settings: direction === 'down' ? downSettings(transactional) : [],
    // The watch refuses where track_counts is off; 005's script, whose own checks count with the
    // same counters in each of its transactions, refuses alike in each (reviews revp P1, revq Q4).
    each: direction === 'down' && !transactional ? [COUNTABLE_SQL] : [],
    before: [
      ...(direction === 'down' && transactional ? [DOWN_WATCH_SQL] : []),
      ...(guard ? [guard] : []),
    ],
    after: direction === 'down' && transactional ? [downCheckSql(name)] : [],
  }
  return renderScript(name, direction, transactional, statements, profile, guards)
}

/** The line of a down script that a reader edits, and only that one, to opt in to data loss. */
export const DATA_LOSS_LINE = 'x402.allow_data_loss = off'

/**
 * What a down script sets itself, ahead of its guard, as the runner does: a database or role
 * default must neither opt in to data loss, nor exempt a table from the check before COMMIT, nor
 * turn the guard's quoting of names (backslashes included) into something else.
 */
function downSettings(transactional: boolean): string[] {
  const set = transactional ? 'SET LOCAL' : 'SET'
  return [
    `${set} standard_conforming_strings = on`,
    ...(transactional ? [`${set} x402.down_covered = ''`, `${set} x402.backups = '[]'`] : []),
    [
      '-- To roll back although it destroys data, change off to on in the next line: each table concerned',
      '-- is then copied to schema x402_backup first. No database or role default opts in for this script.',
      `${set} ${DATA_LOSS_LINE}`,
    ].join('\n'),
  ]
}

/**
 * Runs the migration's `up` or `down` on a scratch database at `startingPoint` and records
 * every statement it sends, with the SQL guard a hand-run down needs. A function of its own so
 * that the scratch database is unreachable once it returns.
 */
async function recordStatements(
  name: string,
  direction: MigrationDirection,
  startingPoint: string | null,
  migration: Migration,
  run: (db: Kysely<any>) => Promise<void>,
): Promise<{ statements: Statement[]; guard: string | undefined }> {
  const statements: Statement[] = []
  let guard: string | undefined
  let recording = false
  const scratch = scratchDatabase(startingPoint ?? 'none', {
    onStatement: (sql, parameters) => {
      if (recording) statements.push({ sql, parameters })
    },
  })
  try {
    // A no-op on the template, which is at the starting point already.
    await migrateTo(scratch, startingPoint)
    await ensureSupabaseStandIn(scratch)
    // Noted on the scratch database's one connection, for the session: the down may commit.
    if (direction === 'down') await noteCatalog(scratch, 'session')
    recording = true
    if (runsInTransaction(migration)) await scratch.transaction().execute(run)
    else await scratch.connection().execute(run)
    recording = false
    // The runner guards a down with the same block; a script run by hand needs it in the script.
    // A down that guards itself in SQL (005) reads x402.allow_data_loss already.
    if (
      direction === 'down' &&
      !statements.some((statement) => statement.sql.includes('x402.allow_data_loss'))
    ) {
      guard = scriptGuard(name, migration, await catalogLosses(scratch))
    }
  } finally {
    await scratch.destroy()
  }
  return { statements, guard }
}

/**
 * The guard of a down script: what the down drops, counted on the database the script runs on.
 * What it deletes, changes, truncates or rewrites is checked before COMMIT ({@link downCheckSql}).
 */
function scriptGuard(
  name: string,
  migration: Migration,
  losses: readonly Loss[],
): string | undefined {
  // The scratch database's row counters say nothing about the rows of the script's database.
  const drops = losses.filter((loss) => loss.kind !== 'rows')
  return downGuardSql(name, drops, { transactional: runsInTransaction(migration) })
}

/**
 * The measured profile of each exported statement (undefined for BEGIN, COMMIT and ROLLBACK),
 * from a rehearsal of the migration with the same settings, which sends the same statements.
 */
async function measureStatements(
  name: string,
  step: RehearsalStep,
  startingPoint: string | null,
  { server, rows = 1000 }: NonNullable<ExportOptions['lockProfile']>,
  statements: Statement[],
): Promise<{ rows: number; measured: (MeasuredStatement | undefined)[] }> {
  const rehearsal = await rehearse([step], {
    server,
    startingPoint,
    rows: {
      x402_resources: rows,
      ai_models: Math.min(rows, 1000),
      x402_openrouter_models: Math.min(rows, 1000),
    },
    settings: { env: {} },
  })
  const rehearsed = [...rehearsal.migrations[0]!.statements]
  const measured = statements.map((statement) => {
    if (/^(BEGIN|COMMIT|ROLLBACK)$/.test(statement.sql)) return undefined
    const next = rehearsed.shift()
    if (next?.sql !== statement.sql.trim()) {
      throw new Error(
        `Migration ${name}'s rehearsal sent other statements than its export (at "${statement.sql.trim().slice(0, 80)}"): its lock profile cannot be shown.`,
      )
    }
    return next
  })
  return { rows, measured }
}

interface Statement {
  sql: string
  parameters: readonly unknown[]
}

function renderScript(
  name: string,
  direction: MigrationDirection,
  transactional: boolean,
  statements: Statement[],
  profile: { rows: number; measured: (MeasuredStatement | undefined)[] } | undefined,
  guards: Guards,
): string {
  const body = statements.map((statement, index): ScriptStatement => {
    if (statement.parameters.length > 0) {
      throw new Error(
        `Migration ${name} (${direction}) runs a statement with bound parameters, which a SQL script cannot carry: ` +
          `${statement.sql.trim().slice(0, 120)}. Write its values with sql.lit() in the migration.`,
      )
    }
    // Only the whitespace around a statement goes: inside it, function bodies are string literals.
    const text = `${statement.sql.trim().replace(/;$/, '')};`
    const measured = profile?.measured[index]
    return {
      kind: statementKind(statement.sql),
      text: measured ? `-- locks: ${describeStatement(measured)}\n${text}` : text,
    }
  })
  const profileNote = profile
    ? [
        `-- The "-- locks:" comments are measured: each statement was rehearsed on a scratch database with ${profile.rows} rows in`,
        '-- x402_resources, its locks on tables that existed before read from pg_locks (held until its transaction ends).',
      ]
    : []
  const howToRun = transactional
    ? ['-- Run it as one script (for example in the Supabase SQL Editor).']
    : [
        '-- It runs outside a transaction (CREATE INDEX CONCURRENTLY cannot run inside one): run it with',
        '-- psql -f, never wrapped in BEGIN/COMMIT. If it fails part-way, finish with',
        '-- npm run migrate:latest (or migrate:down), which completes the steps that are missing.',
      ]
  // psql goes on after an error by default, and no transaction is left to abort: the steps after
  // a refusal would run. Only psql can run such a script (a multi-statement query cannot hold
  // CONCURRENTLY), so the script sets psql's own switch; another client fails on this line first.
  const stopOnError = transactional
    ? []
    : [
        '-- Stops at the first error, a refusal included: the steps after it must not run.',
        '\\set ON_ERROR_STOP on',
        '',
      ]
  return [
    `-- Migration ${name} (${direction}), exported by \`npm run migrate:sql\` from src/migrations/${name}.ts.`,
    ...howToRun,
    `-- Run by hand, it is not recorded in ${MIGRATION_HISTORY_TABLE}.`,
    '-- Each of its transactions first runs the checks the runner runs (so does what it runs outside one): it',
    '-- refuses (SQLSTATE 42501) where roles that cannot act as you could have their code run with your power.',
    "-- Each transaction begins at READ COMMITTED, as the runner's do, whatever the database's default (the check",
    '-- of its tables reads the catalog after locking them, and refuses at any other level).',
    "-- Each transaction sets the runner's idle_in_transaction_session_timeout right after BEGIN: a client that",
    '-- stalls inside one loses it, and its locks (docs/sql-editor.md says what a script bounds).',
    ...profileNote,
    '',
    ...stopOnError,
    ...withChecks(body, guards, transactional).flatMap((statement) => [statement, '']),
  ].join('\n')
}

/** A down's guards, placed in its script as the runner runs them (see {@link withChecks}). */
interface Guards {
  /** Settings of the down, first. */
  settings: string[]
  /** Blocks after the privilege checks of each transaction, and of what runs outside one. */
  each: string[]
  /** Blocks that read or write, after the first privilege checks. */
  before: string[]
  /** Blocks before the last COMMIT of the script. */
  after: string[]
}

interface ScriptStatement {
  kind: 'begin' | 'end' | 'set' | 'other'
  text: string
}

function statementKind(sql: string): ScriptStatement['kind'] {
  const text = sql.trim()
  if (/^BEGIN;?$/i.test(text)) return 'begin'
  if (/^(COMMIT|ROLLBACK);?$/i.test(text)) return 'end'
  return /^SET\s/i.test(text) ? 'set' : 'other'
}

/**
 * The script's statements with its guards and the runner's privilege checks: in each
 * transaction, right after BEGIN the runner's idle bound ({@link scriptIdleTimeout}), after its
 * settings {@link privilegeChecks} first (a refusal then also
 * aborts the transaction, so that a client that goes on after an error changes nothing); outside
 * a transaction, the unlocked checks before the first statement after a COMMIT (or at the start)
 * that is not a setting. The down's settings come first in the script (after BEGIN where there
 * is one), its `each` blocks after every privilege check, its `before` blocks after the first,
 * and its check before the last COMMIT.
 */
function withChecks(body: ScriptStatement[], guards: Guards, transactional: boolean): string[] {
  const out: string[] = []
  const blocks = (list: string[]) => list.map((block) => `${block};`)
  const last = body.at(-1)?.kind === 'end' ? body.length - 1 : body.length
  let inTransaction = false
  let checked = false
  let settingsDone = false
  let beforeDone = false
  const check = () => {
    if (checked) return
    out.push(
      ...blocks(privilegeChecks(inTransaction, [API_ROLE_ADMINS_SQL])),
      ...blocks(guards.each),
    )
    checked = true
    if (!beforeDone) out.push(...blocks(guards.before))
    beforeDone = true
  }
  body.forEach((statement, index) => {
    if (!settingsDone && statement.kind !== 'begin') {
      out.push(...blocks(guards.settings))
      settingsDone = true
    }
    if (statement.kind === 'begin') {
      // The blocks of a script that runs outside a transaction run outside one, first.
      if (!transactional && !beforeDone && guards.before.length > 0) check()
      // At READ COMMITTED, as the runner's, whatever the defaults: the fenced check refuses at
      // any other level (review revo O5). Then the runner's idle bound: a client that stalls
      // inside loses the transaction.
      out.push(`${SCRIPT_BEGIN};`, `${scriptIdleTimeout()};`)
      inTransaction = true
      checked = false
      return
    }
    if (statement.kind === 'other' || (statement.kind === 'end' && inTransaction)) check()
    if (index === last) out.push(...blocks(guards.after))
    out.push(statement.text)
    if (statement.kind === 'end') {
      inTransaction = false
      checked = false
    }
  })
  if (!settingsDone) out.push(...blocks(guards.settings))
  if (!beforeDone && guards.before.length > 0) check()
  if (last === body.length) out.push(...blocks(guards.after))
  return out
}
