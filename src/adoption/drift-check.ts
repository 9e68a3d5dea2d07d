import { type Kysely, sql } from 'kysely'

import { shownOnTerminal } from '../connection/shown-argument.js'
import { migrationNames } from '../migrations/index.js'
import {
  type ChecksumVerdict,
  checksumVerdict,
  type MigrationSourceOptions,
  migrationSourcePath,
  earlierText,
  readMigrationChecksums,
  checksumTableExists,
  UNVERIFIED_CHECKSUMS,
} from '../migrator/checksums.js'

export type { ChecksumVerdict } from '../migrator/checksums.js'
import {
  hasMigrationHistory,
  historyDisagreements,
  inspectMigrationHistory,
} from '../migrator/history.js'
import { formatSchemaDiff, type SchemaDiff } from '../schema/diff.js'
import { buildSchemaReference, diffWithReference } from '../schema/reference.js'
import type { ProductionObjectRecord } from '../schema/rules.js'
import { APP_SCHEMAS_CONDITION, catalogRead } from '../schema/snapshot.js'
import { readAcceptedDifferences } from './accepted-differences.js'
import { type AdoptionDecision, readAdoptionDecisions } from './adoption-decisions.js'
import { interruptedRollback } from './interrupted-rollback.js'
import { productionObjectsRecorded, readProductionObjects } from './production-objects.js'

/** Options of {@link checkDrift}. */
export interface DriftCheckOptions extends MigrationSourceOptions {
  /** The exact comparison: every difference is drift, equivalent and accepted ones too. */
  strict?: boolean
  /**
   * The conflicts accepted by decision (by default those of the repository's
   * adoption-decisions.json): one that the file no longer declares is drift again.
   */
  decisions?: readonly AdoptionDecision[]
}

/** What {@link checkDrift} found. */
export interface DriftReport {
  /** The newest applied migration, which the live schema is compared with; undefined if none is. */
  migrationName: string | undefined
  /** The applied migrations, as recorded. */
  applied: string[]
  /** Migrations the module has that are not applied yet. */
  pending: string[]
  /** What is wrong with the recorded history itself. */
  history: string[]
  /** The comparison with the reference at `migrationName`. */
  schema: SchemaDiff | undefined
  /** One verdict per applied migration. */
  checksums: ChecksumVerdict[]
  /** How many objects adoption recorded as production's own (held to their record). */
  productionObjects: number
  /**
   * The app's schemas that no migration creates and that adoption did not record, on a database
   * adopted before schemas were recorded: their grants, comment and owner are not compared until
   * `migrate:baseline` records them. Empty otherwise.
   */
  unrecordedSchemas: string[]
  /** True when the schema and every checksum match, and the history is sound. */
  ok: boolean
}

/**
 * The check behind `migrate:check`, for CI and deploys to gate on: compares the live schema of
 * what the module owns with the schema its migrations produce up to the newest applied one
 * (built on a scratch database), holds every other object of the app's schemas to what adoption
 * recorded as production's own (on a database the module built, none is recorded: each such
 * object is drift), and verifies that each applied migration's source file still has the
 * checksum recorded when it was applied. Read-only: it changes nothing.
 *
 * @example
 * ```ts
 * const report = await checkDrift(db)
 * if (!report.ok) throw new Error(formatDriftReport(report))
 * ```
 */
export async function checkDrift(
  db: Kysely<any>,
  options: DriftCheckOptions = {},
): Promise<DriftReport> {
  // The module's own tables, read in one transaction bounded by the server as the catalog's
  // reads are: a stalled client's lock on the history ends the check with 55P03, not after the
  // client's 5-minute bound. The reference is built outside it (it may take seconds).
  const read = await catalogRead(db, async (trx) => {
    const { entries, problems } = (await hasMigrationHistory(trx))
      ? await inspectMigrationHistory(trx, { times: false })
      : { entries: [], problems: [] }
    // Read through the history, which refuses one it cannot trust: that is reported already.
    const rollback = problems.length > 0 ? undefined : await interruptedRollback(trx)
    return {
      entries,
      problems,
      rollback,
      productionObjects: await readProductionObjects(trx),
      adopted: await productionObjectsRecorded(trx),
      acceptedBefore: await readAcceptedDifferences(trx),
      recorded: await readMigrationChecksums(trx),
      checksumsKept: await checksumTableExists(trx),
      appSchemas: await appSchemaNames(trx),
    }
  })
  const { entries, problems, rollback, productionObjects, adopted } = read
  const applied = entries.map((entry) => entry.name)
  const known = migrationNames
  const history = [...problems, ...historyDisagreements(applied)]
  const migrationName = known.filter((name) => applied.includes(name)).at(-1)
  if (migrationName === undefined) {
    history.push(
      'no migration is recorded as applied: run `npm run migrate:latest`, or adopt a hand-built database with `npm run migrate:baseline -- <name>`',
    )
  }
  if (rollback !== undefined)
    history.unshift(`${rollback.charAt(0).toUpperCase()}${rollback.slice(1)}.`)
  const reference =
    migrationName && rollback === undefined ? await buildSchemaReference(migrationName) : undefined
  const unrecordedSchemas =
    reference && adopted && !schemasRecorded(productionObjects)
      ? read.appSchemas.filter((name) => !(`schemas ${name}` in reference.createdBy))
      : []
  const schema = reference
    ? await diffWithReference(db, reference, {
        strict: options.strict,
        acceptedBefore: read.acceptedBefore,
        decisions: options.decisions ?? readAdoptionDecisions(),
        productionObjects,
        ...(!adopted
          ? { unrecordedSchemas: 'reference' as const }
          : unrecordedSchemas.length > 0
            ? { unrecordedSchemas: 'skip' as const }
            : {}),
      })
    : undefined
  // Those a migration of the module has made its own since (migrate:pull) are the module's rules' business.
  const stillOwn = productionObjects.filter(
    ({ key, table_name }) =>
      !reference ||
      (!(key in reference.createdBy) && !(`relations ${table_name}` in reference.createdBy)),
  )
  const checksums = await Promise.all(
    applied
      .filter((name) => known.includes(name))
      .map((name) => checksumVerdict(name, read.recorded.get(name), read.checksumsKept, options)),
  )
  const ok =
    history.length === 0 &&
    schema?.conflict.length === 0 &&
    checksums.every(({ status }) => !UNVERIFIED_CHECKSUMS.includes(status))
  const pending = known.filter((name) => !applied.includes(name))
  return {
    migrationName,
    applied,
    pending,
    history,
    schema,
    checksums,
    productionObjects: stillOwn.length,
    unrecordedSchemas,
    ok,
  }
}

/** Whether adoption recorded the schemas among production's own (it records public at least). */
function schemasRecorded(records: readonly ProductionObjectRecord[]): boolean {
  return records.some(({ category }) => category === 'schemas')
}

/** The app's schemas on `db`, as the snapshot names them (see APP_SCHEMAS_CONDITION). */
async function appSchemaNames(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT n.oid::regnamespace::text AS name FROM pg_catalog.pg_namespace n
    WHERE ${sql.raw(APP_SCHEMAS_CONDITION('n'))} ORDER BY n.oid::regnamespace::text COLLATE "C"
  `.execute(db)
  return rows.map(({ name }) => name)
}

/**
 * A report of a drift check, one finding a line, for a terminal or a CI log: the history, the
 * schema differences (see formatSchemaDiff), each checksum that is not plainly `ok`, and a
 * last line with the verdict.
 *
 * @example
 * ```ts
 * process.stdout.write(formatDriftReport(await checkDrift(db)))
 * ```
 */
export function formatDriftReport(
  report: DriftReport,
  options: MigrationSourceOptions = {},
): string {
  const lines: string[] = []
  const section = (title: string, body: string[]) => {
    if (body.length > 0) lines.push(title, ...body.map((line) => `  ${shownOnTerminal(line)}`), '')
  }
  section('Migration history:', report.history)
  if (report.schema) {
    const diff = formatSchemaDiff(report.schema)
    section(
      `Schema, compared with what the migrations up to ${report.migrationName} produce:`,
      diff ? diff.split('\n') : [],
    )
  }
  section(
    'Migration files changed after they were applied:',
    report.checksums
      .filter(({ status }) => status === 'edited')
      .map(
        ({ name, recorded, current }) =>
          `${name}: ${migrationSourcePath(name, options)} has sha256 ${current}, but ${recorded!.sha256} was recorded ` +
          `(${recorded!.origin}, ${recorded!.recordedAt.toISOString()}). A released migration must not change: restore it ` +
          `(git log -p -- src/migrations/${name}.ts) and make the change in a new migration.`,
      ),
  )
  section(
    'Migrations this database applied from an earlier text, corrected before release:',
    report.checksums
      .filter(({ status }) => status === 'corrected')
      .map(
        ({ name, recorded }) =>
          `${name}: this database applied an earlier text of it (sha256 ${recorded!.sha256}): ` +
          `${earlierText(name, recorded!.sha256)}. Roll it back with the module version that ` +
          'applied it, then apply it again with this one (see docs/rollback.md).',
      ),
  )
  section(
    'Applied migrations whose checksum was never recorded (the text that ran is unknown; compare the schema and ' +
      `record them with npm run migrate:baseline -- ${report.migrationName}):`,
    report.checksums.filter(({ status }) => status === 'missing').map(({ name }) => name),
  )
  section(
    'Migration files that cannot be verified:',
    report.checksums.filter(({ status }) => status === 'unreadable').map(({ problem }) => problem!),
  )
  section(
    'Checksums recorded after the fact (applied before checksums existed; edits before that date cannot be seen):',
    report.checksums
      .filter(({ status }) => status === 'backfilled')
      .map(({ name, recorded }) => `${name}: recorded ${recorded!.recordedAt.toISOString()}`),
  )
  section(
    'Schemas not recorded at adoption (this database was adopted before migrate:check compared schemas, so their ' +
      `grants, comment and owner are not checked): record them with npm run migrate:baseline -- ${report.migrationName}`,
    report.unrecordedSchemas,
  )
  section(
    `No checksum recorded yet (the next run that applies or reverts a migration records it, or now: npm run migrate:baseline -- ${report.migrationName}):`,
    report.checksums.filter(({ status }) => status === 'unrecorded').map(({ name }) => name),
  )
  const verified = report.checksums.filter(
    ({ status }) => status === 'ok' || status === 'backfilled',
  ).length
  lines.push(
    report.ok
      ? `OK: the schema matches ${report.migrationName}, and ${verified} of ${report.applied.length} applied migrations match their checksums` +
          `${report.pending.length > 0 ? `; ${report.pending.length} pending (${report.pending.join(', ')})` : ''}` +
          `${report.productionObjects > 0 ? `; ${report.productionObjects} object(s) of production's own match their record` : ''}` +
          `${report.unrecordedSchemas.length > 0 ? `; ${report.unrecordedSchemas.length} schema(s) not recorded at adoption and not checked: re-run migrate:baseline` : ''}.`
      : `DRIFT: ${driftSummary(report)}.`,
  )
  return `${lines.join('\n')}\n`
}

/**
 * The findings that make a report fail, counted, in one line; empty for a report that passes.
 *
 * @example
 * ```ts
 * driftSummary(report) // '1 schema difference(s) from 006_…, 1 migration file(s) edited after they were applied'
 * ```
 */
export function driftSummary(report: DriftReport): string {
  const count = (n: number, what: string) => (n > 0 ? [`${n} ${what}`] : [])
  return [
    ...count(report.history.length, 'history problem(s)'),
    ...count(
      report.schema?.conflict.length ?? 0,
      `schema difference(s) from ${report.migrationName}`,
    ),
    ...count(
      report.checksums.filter(({ status }) => status === 'edited').length,
      'migration file(s) edited after they were applied',
    ),
    ...count(
      report.checksums.filter(({ status }) => status === 'missing').length,
      'applied migration(s) without a checksum',
    ),
    ...count(
      report.checksums.filter(({ status }) => status === 'unreadable').length,
      'migration file(s) that cannot be read',
    ),
  ].join(', ')
}
