import { type Kysely, sql } from 'kysely'

import { shownOnTerminal } from '../connection/shown-argument.js'
import {
  CLASS_HEADINGS,
  type ComparisonInputs,
  type ComparisonRow,
  comparisonQuery,
  DIFFERENCE_CLASSES,
  type DifferenceClass,
} from './rules.js'
import { catalogRead, pinCatalogReads } from './snapshot.js'

/** One difference between the live schema and the module's, classed (see rules.ts). */
export type SchemaDifference = ComparisonRow

/** What {@link compareSchemas} found, by class, each in print order. */
export type SchemaDiff = Record<DifferenceClass, SchemaDifference[]>

/**
 * Compares the live schema `public` of `db` with the module's (see rules.ts for the classes):
 * runs the one comparison query, read-only, in a transaction of its own (or `db`'s) with the
 * search_path pinned so that deparsed names read the same on every server and session.
 *
 * @example
 * ```ts
 * const diff = await compareSchemas(db, { expected: reference.expected, owned: reference.latest })
 * if (diff.conflict.length > 0) console.log(formatSchemaDiff(diff))
 * ```
 */
export async function compareSchemas(
  db: Kysely<any>,
  inputs: ComparisonInputs,
): Promise<SchemaDiff> {
  const read = async (trx: Kysely<any>) => {
    await pinCatalogReads(trx)
    const compared = await withViewsDeparsedHere(trx, inputs)
    return (
      await sql.raw<ComparisonRow & { ordinal: number }>(comparisonQuery(compared)).execute(trx)
    ).rows
  }
  const rows = await catalogRead(db, read)
  const diff: SchemaDiff = { conflict: [], accepted: [], equivalent: [] }
  for (const { ordinal: _ordinal, ...row } of rows.sort((a, b) => a.ordinal - b.ordinal))
    diff[row.class].push(row)
  return diff
}

/**
 * `inputs` with each expected view's definition as this server deparses it. The reference is
 * read on PGlite, and pg_get_viewdef spells one view differently across versions (PostgreSQL 15
 * qualifies a column, `t.id`, where 17 writes `id`): the expected text is made a temporary view
 * here, read back with pg_get_viewdef, and dropped (a savepoint rolled back), so that both sides
 * come from the same deparser. A text this server cannot create (a table it lacks, no TEMP
 * privilege) stays as it was, and differs as it would.
 */
async function withViewsDeparsedHere(
  trx: Kysely<any>,
  inputs: ComparisonInputs,
): Promise<ComparisonInputs> {
  const relations = { ...inputs.expected.relations }
  let changed = false
  for (const [key, object] of Object.entries(relations)) {
    const text = object.definition['view definition']
    if (typeof text !== 'string') continue
    await sql`SAVEPOINT x402_view_deparse`.execute(trx)
    try {
      await sql
        .raw(`CREATE TEMPORARY VIEW x402_view_deparse AS ${text.trim().replace(/;$/, '')}`)
        .execute(trx)
      const { rows } = await sql<{ definition: string }>`
        SELECT pg_catalog.pg_get_viewdef('pg_temp.x402_view_deparse'::regclass) AS definition
      `.execute(trx)
      if (rows[0]!.definition !== text) {
        relations[key] = {
          ...object,
          definition: { ...object.definition, 'view definition': rows[0]!.definition },
        }
        changed = true
      }
    } catch {
      // Left as read on PGlite: the comparison then reports what differs.
    } finally {
      await sql`ROLLBACK TO SAVEPOINT x402_view_deparse`.execute(trx)
      await sql`RELEASE SAVEPOINT x402_view_deparse`.execute(trx)
    }
  }
  return changed ? { ...inputs, expected: { ...inputs.expected, relations } } : inputs
}

/**
 * The differences of a diff, under the heading of their class, one line each, as the SQL
 * script prints them too (comparisonReportQuery):
 *
 *     Conflicts (adoption refuses; …):
 *       x402_resources: index idx_x402_resources_openrouter_model: missing: CREATE INDEX …
 *     Production has more or is stricter (accepted, and recorded at adoption):
 *       x402_resources: table: row level security: live true / expected false (on where the module leaves it off)
 *     Equivalent (the same schema, spelled differently; never blocks):
 *       function update_claude_config_updated_at(): definition
 *
 * Empty when there is nothing in `classes`.
 *
 * @example
 * ```ts
 * console.log(formatSchemaDiff(diff, ['conflict']))
 * ```
 */
export function formatSchemaDiff(
  diff: SchemaDiff,
  classes: readonly DifferenceClass[] = DIFFERENCE_CLASSES,
): string {
  return DIFFERENCE_CLASSES.filter((name) => classes.includes(name) && diff[name].length > 0)
    .map((name) =>
      [CLASS_HEADINGS[name], ...diff[name].map(({ line }) => `  ${shownOnTerminal(line)}`)].join(
        '\n',
      ),
    )
    .join('\n')
}
