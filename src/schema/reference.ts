import { type Kysely, sql } from 'kysely'

import { resolveMigrationName } from '../migrator/migration-names.js'
import { migrateTo, migrateToLatest } from '../migrator/migrator.js'
import { scratchDatabase } from '../templates/migrated-template.js'
import { compareSchemas, type SchemaDiff } from './diff.js'
import type { AcceptedDifferenceRecord } from './rules.js'
import { type SchemaSnapshot, snapshotPublicSchema } from './snapshot.js'

/** The schema that the module's migrations produce, to compare a live database with. */
export interface SchemaReference {
  /** The migration it stops at. */
  migrationName: string
  /** The schema that the migrations up to `migrationName` produce. */
  expected: SchemaSnapshot
  /** The schema that all of the module's migrations produce: everything the module owns. */
  latest: SchemaSnapshot
  /**
   * The full `CREATE OR REPLACE FUNCTION` text of each function at `migrationName`, keyed as in
   * `expected.functions`, as the server deparses it (the snapshot collapses whitespace, which
   * would break a body with a `--` comment): what a repair plan puts back.
   */
  functionSources: Record<string, string>
}

/**
 * Builds the reference schema at a migration (a full name or a unique prefix such as `005`):
 * the module's own migrations run on a scratch in-memory PGlite database (from its template), with
 * the Supabase stand-in applied by the runner before the first of them, as it is everywhere, and then on to the newest
 * migration, to learn what the module owns. It never touches DATABASE_URL. Built once per
 * migration and process.
 *
 * @example
 * ```ts
 * const reference = await buildSchemaReference('005')
 * Object.keys(reference.expected.relations) // ['ai_models', 'user_openrouter_integrations', …]
 * ```
 */
export function buildSchemaReference(upTo: string): Promise<SchemaReference> {
  const migrationName = resolveMigrationName(upTo)
  let reference = references.get(migrationName)
  if (!reference) {
    reference = build(migrationName)
    references.set(migrationName, reference)
    reference.catch(() => references.delete(migrationName))
  }
  return reference
}

/**
 * The references built in this process. The migrations are compiled in, so a reference cannot
 * change while the process lives, and a check or an export need not boot a scratch database
 * again. The snapshots are shared: do not change them.
 */
const references = new Map<string, Promise<SchemaReference>>()

async function build(migrationName: string): Promise<SchemaReference> {
  const scratch = scratchDatabase(migrationName)
  try {
    const expected = await snapshotPublicSchema(scratch)
    const { rows } = await sql<{ name: string; source: string }>`
      SELECT p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS name,
             pg_catalog.pg_get_functiondef(p.oid) AS source
      FROM pg_catalog.pg_proc p
      WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')
    `.execute(scratch)
    const functionSources = Object.fromEntries(rows.map(({ name, source }) => [name, source]))
    await migrateToLatest(scratch)
    return { migrationName, expected, latest: await snapshotPublicSchema(scratch), functionSources }
  } finally {
    await scratch.destroy()
  }
}

/**
 * Compares the live schema of `db` with a reference, for what the module owns, in the three
 * classes of rules.ts. `strict` makes every difference a conflict; `acceptedBefore` (a check)
 * holds accepted differences to those recorded at adoption.
 *
 * @example
 * ```ts
 * const { conflict } = await diffWithReference(db, await buildSchemaReference('005'))
 * ```
 */
export function diffWithReference(
  db: Kysely<any>,
  reference: SchemaReference,
  options: { strict?: boolean; acceptedBefore?: AcceptedDifferenceRecord[] } = {},
): Promise<SchemaDiff> {
  return compareSchemas(db, { expected: reference.expected, owned: reference.latest, ...options })
}
