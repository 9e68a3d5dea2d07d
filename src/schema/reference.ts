import { createHash } from 'node:crypto'
import { type Kysely, sql } from 'kysely'

import { hashModuleCode, readCacheFile, writeCacheFile } from '../connection/template-cache.js'

import { migrationNames } from '../migrations/index.js'
import { resolveMigrationName } from '../migrator/migration-names.js'
import { migrateTo } from '../migrator/migrator.js'
import { migratedTemplateKey, scratchDatabase } from '../migrated-dumps/migrated-template.js'
import { compareSchemas, type SchemaDiff } from './diff.js'
import type {
  AcceptedDifferenceRecord,
  AdoptionDecision,
  ComparisonInputs,
  ProductionObjectRecord,
} from './rules.js'
import {
  SCHEMA_OBJECT_CATEGORIES,
  type SchemaSnapshot,
  schemaObjectKey,
  snapshotAppSchemas,
} from './snapshot.js'

/** The schema that the module's migrations produce, to compare a live database with. */
export interface SchemaReference {
  /** The migration it stops at. */
  migrationName: string
  /**
   * The schema that the migrations up to `migrationName` produce, in every one of the app's
   * schemas (see snapshotAppSchemas: names outside `public` schema-qualified).
   */
  expected: SchemaSnapshot
  /** The schema that all of the module's migrations produce: everything the module owns. */
  latest: SchemaSnapshot
  /**
   * The full `CREATE OR REPLACE FUNCTION` text of each function at `migrationName`, keyed as in
   * `expected.functions`, as the server deparses it (the snapshot collapses whitespace, which
   * would break a body with a `--` comment): what a repair plan puts back.
   */
  functionSources: Record<string, string>
  /**
   * Every object any migration creates, as `<category> <key>` (see schemaObjectKey), with the
   * first migration whose schema has it: what the module owns, at every point of its history
   * (ai_models before 006, x402_openrouter_models from it), and which migration to adopt at.
   */
  createdBy: Record<string, string>
}

/**
 * Builds the reference schema at a migration (a full name or a unique prefix such as `005`):
 * the module's own migrations run on a scratch in-memory PGlite database (from its template), with
 * the Supabase stand-in applied by the runner before the first of them, as it is everywhere, one
 * at a time to the newest, read after each, to learn what the module owns at every point and
 * which migration creates each object. It never touches DATABASE_URL. Built once per
 * migration and process, and cached beside the templates (see referenceCacheName), where only an
 * entry this user wrote is read (see readCacheFile): a check in a new process reads it instead of
 * starting a scratch database.
 *
 * @example
 * ```ts
 * const reference = await buildSchemaReference('006')
 * Object.keys(reference.expected.relations) // ['x402_openrouter_models', 'x402_resources', …]
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
  const cacheName = await referenceCacheName(migrationName)
  const cached = cacheName ? readCacheFile(cacheName) : undefined
  if (cached) {
    // Written by this user (its HMAC matched), it may still hold no reference of this shape:
    // built again below, and the file replaced.
    const parsed = parseReference(cached.toString('utf8'), migrationName)
    if (parsed) return parsed
  }
  const reference = await buildOnScratch(migrationName)
  if (cacheName) writeCacheFile(cacheName, Buffer.from(JSON.stringify(reference)))
  return reference
}

/**
 * The reference in `json` (a cached file's contents), or undefined where it is not JSON or not a
 * reference at `migrationName` in the shape the comparison reads: such a file is built again.
 *
 * @example
 * ```ts
 * parseReference('null', '005_add_openrouter_integration') // undefined
 * ```
 */
export function parseReference(json: string, migrationName: string): SchemaReference | undefined {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return undefined
  }
  const isRecord = (field: unknown): field is Record<string, unknown> =>
    typeof field === 'object' && field !== null && !Array.isArray(field)
  // Each object too: the comparison reads every one's name, table and definition.
  const isObject = (field: unknown): boolean =>
    isRecord(field) &&
    typeof field.name === 'string' &&
    (field.table === null || typeof field.table === 'string') &&
    isRecord(field.definition)
  const isSnapshot = (field: unknown): boolean =>
    isRecord(field) &&
    SCHEMA_OBJECT_CATEGORIES.every(
      (category) => isRecord(field[category]) && Object.values(field[category]).every(isObject),
    )
  if (!isRecord(value) || value.migrationName !== migrationName) return undefined
  if (!isSnapshot(value.expected) || !isSnapshot(value.latest)) return undefined
  if (
    !isRecord(value.functionSources) ||
    !Object.values(value.functionSources).every((source) => typeof source === 'string')
  )
    return undefined
  if (
    !isRecord(value.createdBy) ||
    !Object.values(value.createdBy).every(
      (name) => typeof name === 'string' && migrationNames.includes(name),
    )
  ) {
    return undefined
  }
  return value as unknown as SchemaReference
}

/** Bumped when the reference's shape or the way it is built changes outside src/schema. */
const REFERENCE_FORMAT = 2

/**
 * The cache file of the reference at `migrationName`, named after everything that shapes it: the
 * template key of the newest migration (every migration's checksum, the migration engine's code,
 * PGlite's and Kysely's versions), the migration it stops at, and the snapshot code. Undefined
 * where the migration sources cannot be read: the reference is then built each time.
 */
async function referenceCacheName(migrationName: string): Promise<string | undefined> {
  const templateKey = await migratedTemplateKey('latest')
  if (!templateKey) return undefined
  // The code that reads a schema into a reference (src/schema): a change to it is a new reference.
  const hash = hashModuleCode(
    createHash('sha256').update(
      JSON.stringify({ format: REFERENCE_FORMAT, templateKey, migrationName }),
    ),
    ['schema'],
  )
  return `reference-${migrationName}-${hash.digest('hex').slice(0, 24)}.json`
}

async function buildOnScratch(migrationName: string): Promise<SchemaReference> {
  const scratch = scratchDatabase(migrationNames[0]!)
  try {
    const createdBy: Record<string, string> = {}
    let expected: SchemaSnapshot | undefined
    let functionSources: Record<string, string> = {}
    let latest: SchemaSnapshot | undefined
    for (const name of migrationNames) {
      await migrateTo(scratch, name)
      // Every schema of the app: a migration (migrate:pull) may create one beside public.
      latest = await snapshotAppSchemas(scratch)
      for (const category of SCHEMA_OBJECT_CATEGORIES) {
        for (const object of Object.values(latest[category])) {
          // The server creates public with the database; no migration does.
          if (category === 'schemas' && object.name === 'public') continue
          createdBy[`${category} ${schemaObjectKey(category, object)}`] ??= name
        }
      }
      if (name !== migrationName) continue
      expected = latest
      const { rows } = await sql<{ name: string; source: string }>`
        SELECT p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS name,
               pg_catalog.pg_get_functiondef(p.oid) AS source
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')
      `.execute(scratch)
      functionSources = Object.fromEntries(rows.map(({ name, source }) => [name, source]))
    }
    return { migrationName, expected: expected!, latest: latest!, functionSources, createdBy }
  } finally {
    await scratch.destroy()
  }
}

/** The options of a comparison with a reference (see ComparisonInputs). */
export interface ComparisonOptions {
  strict?: boolean
  acceptedBefore?: AcceptedDifferenceRecord[]
  decisions?: readonly AdoptionDecision[]
  productionObjects?: ProductionObjectRecord[]
  unrecordedSchemas?: 'reference' | 'skip'
}

/**
 * Compares the live schema of `db` with a reference, for what the module owns, in the three
 * classes of rules.ts. `strict` makes every difference a conflict; `acceptedBefore` (a check)
 * holds accepted differences to those recorded at adoption, and `productionObjects` (a check)
 * every other object of the app's schemas to production's own, as adoption recorded them.
 *
 * @example
 * ```ts
 * const { conflict } = await diffWithReference(db, await buildSchemaReference('005'))
 * ```
 */
export function diffWithReference(
  db: Kysely<any>,
  reference: SchemaReference,
  options: ComparisonOptions = {},
): Promise<SchemaDiff> {
  return compareSchemas(db, comparisonInputs(reference, options))
}

/**
 * What the comparison of rules.ts needs from a reference, with the options of a check or an
 * adoption.
 *
 * @example
 * ```ts
 * const query = comparisonQuery(comparisonInputs(reference, { strict: true }))
 * ```
 */
export function comparisonInputs(
  reference: SchemaReference,
  options: ComparisonOptions = {},
): ComparisonInputs {
  const { migrationName, expected, latest, createdBy } = reference
  return { migrationName, expected, latest, createdBy, ...options }
}
