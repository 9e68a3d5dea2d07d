import type { Kysely } from 'kysely'

import { resolveMigrationName } from '../migrator/migration-names.js'
import { migrateToLatest } from '../migrator/migrator.js'
import { scratchDatabase } from '../templates/migrated-template.js'
import { diffSchemas, type SchemaDiff } from './diff.js'
import { type SchemaSnapshot, snapshotPublicSchema } from './snapshot.js'

/** The schema that the module's migrations produce, to compare a live database with. */
export interface SchemaReference {
  /** The migration it stops at. */
  migrationName: string
  /** The schema that the migrations up to `migrationName` produce. */
  expected: SchemaSnapshot
  /** The schema that all of the module's migrations produce: everything the module owns. */
  latest: SchemaSnapshot
}

/**
 * Builds the reference schema at a migration (a full name or a unique prefix such as `005`):
 * the module's own migrations run on a scratch in-memory PGlite database (from its template), with the Supabase
 * stand-in applied before each one as the migrator does everywhere, and then on to the newest
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
    await migrateToLatest(scratch)
    return { migrationName, expected, latest: await snapshotPublicSchema(scratch) }
  } finally {
    await scratch.destroy()
  }
}

/**
 * Compares the live schema of `db` with a reference, for what the module owns (see
 * {@link diffSchemas}); `strict` also counts objects on the module's tables that no migration
 * creates.
 *
 * @example
 * ```ts
 * const { differences } = await diffWithReference(db, await buildSchemaReference('005'))
 * ```
 */
export async function diffWithReference(
  db: Kysely<any>,
  reference: SchemaReference,
  options: { strict?: boolean } = {},
): Promise<SchemaDiff> {
  return diffSchemas(await snapshotPublicSchema(db), reference.expected, { owned: reference.latest, strict: options.strict })
}
