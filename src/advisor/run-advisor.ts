import { type Kysely, sql } from 'kysely'

import { shownOnTerminal } from '../connection/shown-argument.js'
import type { AcceptedFinding } from './accepted-findings.js'
import {
  ADVISOR_LINTS,
  type AdvisorCategory,
  type AdvisorLevel,
  type AdvisorLint,
  type LintRequirement,
} from './advisor-lints.js'

/** The schemas PostgREST exposes on Supabase unless the project changed them. */
export const DEFAULT_EXPOSED_SCHEMAS: readonly string[] = ['public', 'graphql_public']

/** How long one lint's query may run before the server stops it. */
export const ADVISOR_STATEMENT_TIMEOUT_MS = 60_000

/** How long a lint waits for a lock (catalog reads rarely wait at all). */
const LOCK_TIMEOUT_MS = 10_000

/** Options of {@link runAdvisor}. */
export interface AdvisorOptions {
  /**
   * The schemas PostgREST exposes (`pgrst.db_schemas`); {@link DEFAULT_EXPOSED_SCHEMAS} by
   * default.
   */
  schemas?: readonly string[]
  /** Also the Performance advisor's lints; the Security advisor's alone by default. */
  performance?: boolean
  /** The findings a team keeps on purpose (see readAcceptedFindings); none by default. */
  accepted?: readonly AcceptedFinding[]
  /** The bound of each lint's query, in milliseconds. */
  statementTimeoutMs?: number
}

/** One finding: which lint, on what, how serious, how to close it, and whether it is accepted. */
export interface AdvisorFinding {
  lint: string
  level: AdvisorLevel
  category: AdvisorCategory
  /** `schema.name`, as an accepted finding names it. */
  object: string
  /**
   * What in the object: a policy, columns, a function's signature; null where the object says
   * it all.
   */
  detail: string | null
  /** How to close it, for this object. */
  remedy: string
  /** The reason of the accepted finding that keeps it, if one does. */
  acceptedBecause?: string
}

/** A lint that did not run, and why. */
export interface SkippedLint {
  lint: string
  reason: string
}

/** What {@link runAdvisor} found. */
export interface AdvisorReport {
  schemas: readonly string[]
  /** ERROR first, then WARN, then INFO; within a level by lint and object. */
  findings: AdvisorFinding[]
  skipped: SkippedLint[]
  /** Accepted findings whose lint ran and found nothing they name: stale, to be removed. */
  unmatched: AcceptedFinding[]
}

const LEVEL_ORDER: readonly AdvisorLevel[] = ['ERROR', 'WARN', 'INFO']

const MISSING: Record<LintRequirement, string> = {
  'api roles':
    "the database has no anon and authenticated roles (Supabase's API roles), whose access it " +
    'measures',
  'auth.users': "the database has no auth.users (Supabase Auth's table)",
}

/**
 * Runs Supabase's advisor lints (see ADVISOR_LINTS) on `db` the way the dashboard's Advisors
 * do: in one READ ONLY transaction, with `pgrst.db_schemas` set to the exposed schemas, each
 * query bounded by a statement_timeout. It writes nothing and creates nothing; a lint whose
 * prerequisites (the API roles, auth.users) the database lacks is skipped, with the reason.
 *
 * @example
 * ```ts
 * const report = await runAdvisor(db, { accepted: readAcceptedFindings() })
 * const failing = failingFindings(report, 'ERROR')
 * ```
 */
export async function runAdvisor(
  db: Kysely<any>,
  options: AdvisorOptions = {},
): Promise<AdvisorReport> {
  const schemas = options.schemas ?? DEFAULT_EXPOSED_SCHEMAS
  const timeout = options.statementTimeoutMs ?? ADVISOR_STATEMENT_TIMEOUT_MS
  const lints = ADVISOR_LINTS.filter((lint) => lint.category === 'security' || options.performance)
  const { found, skipped } = await db
    .transaction()
    .setAccessMode('read only')
    .execute(async (trx) => {
      // Said again in SQL: Kysely's PGlite driver begins every transaction read-write, whatever
      // the access mode asked for.
      await sql`set transaction read only`.execute(trx)
      // search_path empty, as splinter runs: policies and signatures are deparsed schema-qualified.
      const lockTimeout = Math.min(timeout, LOCK_TIMEOUT_MS)
      await sql`
        select set_config('statement_timeout', ${`${timeout}ms`}, true),
               set_config('lock_timeout', ${`${lockTimeout}ms`}, true),
               set_config('idle_in_transaction_session_timeout', ${`${timeout}ms`}, true),
               set_config('search_path', '', true),
               set_config('pgrst.db_schemas', ${schemas.join(', ')}, true)
      `.execute(trx)
      const { rows } = await sql<{ api_roles: boolean; auth_users: boolean }>`
        select (select count(*) = 2 from pg_catalog.pg_roles
                where rolname in ('anon', 'authenticated')) as api_roles,
               -- From the catalog, not to_regclass: that needs USAGE on auth, which a role
               -- that may only read the catalog lacks.
               exists (select from pg_catalog.pg_class c
                       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                       where n.nspname = 'auth' and c.relname = 'users'
                         and c.relkind in ('r', 'p')) as auth_users
      `.execute(trx)
      const present: Record<LintRequirement, boolean> = {
        'api roles': rows[0]!.api_roles,
        'auth.users': rows[0]!.auth_users,
      }
      const found: Array<{ lint: AdvisorLint; row: FindingRow }> = []
      const skipped: SkippedLint[] = []
      for (const lint of lints) {
        const missing = lint.needs.find((need) => !present[need])
        if (missing) {
          skipped.push({ lint: lint.name, reason: MISSING[missing] })
          continue
        }
        const result = await sql
          .raw<FindingRow>(lint.query)
          .execute(trx)
          .catch((error: unknown) => {
            throw new Error(`The lint ${lint.name} failed: ${(error as Error).message}`)
          })
        for (const row of result.rows) found.push({ lint, row })
      }
      return { found, skipped }
    })

  const accepted = options.accepted ?? []
  const findings = found.map(({ lint, row }): AdvisorFinding => {
    const object = `${row.schema_name}.${row.object_name}`
    // The detail too: an entry keeps the finding it was reviewed for, not a column added or an
    // overload created since under the same name.
    const keeper = accepted.find(
      (entry) =>
        entry.lint === lint.name &&
        entry.object === object &&
        (entry.detail ?? null) === row.detail,
    )
    return {
      lint: lint.name,
      level: lint.level,
      category: lint.category,
      object,
      detail: row.detail,
      remedy: lint.remedy.replaceAll('…', () => row.target),
      ...(keeper ? { acceptedBecause: keeper.reason } : {}),
    }
  })
  findings.sort(
    (a, b) =>
      LEVEL_ORDER.indexOf(a.level) - LEVEL_ORDER.indexOf(b.level) ||
      a.lint.localeCompare(b.lint) ||
      a.object.localeCompare(b.object) ||
      (a.detail ?? '').localeCompare(b.detail ?? ''),
  )
  const skippedNames = new Set(skipped.map((skip) => skip.lint))
  const ran = new Set(lints.map((lint) => lint.name).filter((name) => !skippedNames.has(name)))
  const matches = (entry: AcceptedFinding) =>
    findings.some(
      (finding) =>
        finding.lint === entry.lint &&
        finding.object === entry.object &&
        finding.detail === (entry.detail ?? null),
    )
  const unmatched = accepted.filter((entry) => ran.has(entry.lint) && !matches(entry))
  return { schemas, findings, skipped, unmatched }
}

interface FindingRow {
  schema_name: string
  object_name: string
  detail: string | null
  target: string
}

/**
 * The findings of `report` that fail a check at `threshold`: those at that level or more
 * serious that no accepted finding keeps.
 *
 * @example
 * ```ts
 * const exitCode = failingFindings(report, 'ERROR').length > 0 ? 3 : 0
 * ```
 */
export function failingFindings(report: AdvisorReport, threshold: AdvisorLevel): AdvisorFinding[] {
  const worst = LEVEL_ORDER.indexOf(threshold)
  return report.findings.filter(
    (finding) => !finding.acceptedBecause && LEVEL_ORDER.indexOf(finding.level) <= worst,
  )
}

/**
 * The report as text: the findings by level, each with its lint, object, detail and remedy;
 * then the accepted ones, the skipped lints and the stale acceptances.
 *
 * @example
 * ```ts
 * process.stdout.write(formatAdvisorReport(report))
 * ```
 */
export function formatAdvisorReport(
  report: AdvisorReport,
  acceptedFile = 'advisor-accepted.json',
): string {
  const lines: string[] = [`Exposed schemas: ${report.schemas.join(', ')}`]
  const open = report.findings.filter((finding) => !finding.acceptedBecause)
  const kept = report.findings.filter((finding) => finding.acceptedBecause)
  for (const level of LEVEL_ORDER) {
    const atLevel = open.filter((finding) => finding.level === level)
    if (atLevel.length === 0) continue
    lines.push('', `${level} (${atLevel.length})`)
    for (const finding of atLevel) {
      const detail = finding.detail ? `  (${shownOnTerminal(finding.detail)})` : ''
      lines.push(
        `  ${finding.lint}  ${shownOnTerminal(finding.object)}${detail}`,
        `      remedy: ${shownOnTerminal(finding.remedy)}`,
      )
    }
  }
  if (kept.length > 0) {
    lines.push('', `Accepted in ${acceptedFile} (${kept.length})`)
    for (const finding of kept) {
      const { level, lint, object, acceptedBecause } = finding
      lines.push(
        `  ${level} ${lint}  ${shownOnTerminal(object)}: ${shownOnTerminal(acceptedBecause!)}`,
      )
    }
  }
  if (report.skipped.length > 0) {
    lines.push('', `Skipped (${report.skipped.length})`)
    for (const skip of report.skipped) lines.push(`  ${skip.lint}: ${skip.reason}`)
  }
  if (report.unmatched.length > 0) {
    const stale = report.unmatched.length
    lines.push('', `Accepted in ${acceptedFile} but found no more: remove these entries (${stale})`)
    for (const entry of report.unmatched) {
      const detail = entry.detail === undefined ? '' : `  (${shownOnTerminal(entry.detail)})`
      lines.push(`  ${shownOnTerminal(entry.lint)}  ${shownOnTerminal(entry.object)}${detail}`)
    }
  }
  const counts = LEVEL_ORDER.map(
    (level) => `${open.filter((finding) => finding.level === level).length} ${level}`,
  )
  lines.push('', `${counts.join(', ')}; ${kept.length} accepted.`)
  return `${lines.join('\n')}\n`
}
