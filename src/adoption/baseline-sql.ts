import { DEFAULT_MIGRATION_LOCK_TABLE, DEFAULT_MIGRATION_TABLE, MIGRATION_LOCK_ID } from 'kysely/migration'

import { migrationNames } from '../migrations/index.js'
import { checksumTableStatements, MIGRATION_CHECKSUM_TABLE, type MigrationSourceOptions, migrationChecksum } from '../migrator/checksums.js'
import { MIGRATION_LOCK_KEY } from '../migrator/lock.js'
import { MIGRATION_TABLE_SCHEMA } from '../migrator/history.js'
import { migrationNamesUpTo } from '../migrator/migration-names.js'
import { PORTED_TABLES } from '../schema/diff.js'
import { buildSchemaReference, type SchemaReference } from '../schema/reference.js'
import { SCHEMA_OBJECT_CATEGORIES, type SchemaSnapshot, schemaObjectKey, snapshotQuery } from '../schema/snapshot.js'

/**
 * `migrate:baseline` as one SQL script, for the Supabase SQL Editor where the command line
 * cannot reach production. The script first verifies, in the database, what the command
 * verifies: that the recorded history does not contradict the adoption, and that the live
 * schema equals the reference at `name` (built now on a scratch database and embedded in the
 * script), for what the module owns. If not, it raises an error that lists the differences, and
 * records nothing. Otherwise it creates the history tables as Kysely's Migrator does, and
 * records the migrations up to `name` and their checksums, in one transaction.
 *
 * @example
 * ```ts
 * process.stdout.write(await exportBaselineSql('005'))
 * ```
 */
export async function exportBaselineSql(name: string, options: MigrationSourceOptions = {}): Promise<string> {
  const reference = await buildSchemaReference(name)
  const { migrationName } = reference
  const upTo = migrationNamesUpTo(migrationName)
  const checksums = await Promise.all(upTo.map(async (known) => [known, await migrationChecksum(known, options)] as const))
  const schema = MIGRATION_TABLE_SCHEMA
  const history = `${schema}.${DEFAULT_MIGRATION_TABLE}`
  const checksumTable = `${schema}.${MIGRATION_CHECKSUM_TABLE}`

  return [
    `-- Adoption of a database built by hand: records ${upTo.join(', ')} as applied, without running them.`,
    `-- Exported by \`npm run migrate:sql -- --baseline ${migrationName}\`. Run it as one script (the Supabase SQL Editor).`,
    `-- It first compares the live schema with what the migrations up to ${migrationName} produce (embedded below),`,
    '-- and checks the recorded history; on any difference it stops with an error listing them, and records nothing.',
    'BEGIN;',
    '',
    '-- The migration lock (MIGRATION_LOCK_KEY), so that no migration run changes the schema meanwhile.',
    `SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY});`,
    '',
    guard(reference, upTo),
    '',
    `CREATE SCHEMA IF NOT EXISTS ${schema};`,
    '',
    '-- The history tables, as Kysely 0.29\'s Migrator creates them.',
    `CREATE TABLE IF NOT EXISTS ${history} (name varchar(255) NOT NULL PRIMARY KEY, "timestamp" varchar(255) NOT NULL);`,
    '',
    `CREATE TABLE IF NOT EXISTS ${schema}.${DEFAULT_MIGRATION_LOCK_TABLE} (id varchar(255) NOT NULL PRIMARY KEY, is_locked integer NOT NULL DEFAULT 0);`,
    '',
    `INSERT INTO ${schema}.${DEFAULT_MIGRATION_LOCK_TABLE} (id, is_locked) VALUES (${literal(MIGRATION_LOCK_ID)}, 0) ON CONFLICT (id) DO NOTHING;`,
    '',
    ...checksumTableStatements().flatMap((statement) => [`${statement};`, '']),
    '-- A checksum for each migration; one recorded before this script is a backfill (applied before checksums existed).',
    `INSERT INTO ${checksumTable} (name, sha256, origin)`,
    `SELECT v.name, v.sha256, CASE WHEN EXISTS (SELECT FROM ${history} m WHERE m.name = v.name) THEN 'backfill' ELSE 'baseline' END`,
    `FROM (VALUES ${checksums.map(([known, sha256]) => `(${literal(known)}, ${literal(sha256)})`).join(', ')}) AS v(name, sha256)`,
    'ON CONFLICT (name) DO NOTHING;',
    '',
    '-- The history rows, as the Migrator writes them: an ISO timestamp, 1 ms apart, after any recorded before.',
    `INSERT INTO ${history} (name, "timestamp")`,
    `SELECT v.name, to_char((s.start + v.ordinal * interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
    `FROM (VALUES ${upTo.map((known, index) => `(${literal(known)}, ${index + 1})`).join(', ')}) AS v(name, ordinal)`,
    `CROSS JOIN (SELECT greatest(now(), (SELECT max("timestamp"::timestamptz) FROM ${history})) AS start) AS s`,
    `WHERE NOT EXISTS (SELECT FROM ${history} m WHERE m.name = v.name);`,
    '',
    'COMMIT;',
    '',
  ].join('\n')
}

/**
 * The DO block that refuses before anything is recorded. It runs the snapshot query of
 * schema-snapshot.ts on the live database and compares its rows with the reference's, under
 * the rules of diffSchemas: missing and changed objects count; a live object that is not
 * expected counts where a later migration creates it, or where it is a policy on one of the
 * module's tables.
 */
function guard(reference: SchemaReference, upTo: string[]): string {
  const { migrationName } = reference
  const history = `${MIGRATION_TABLE_SCHEMA}.${DEFAULT_MIGRATION_TABLE}`
  const referenceObjects = Object.fromEntries(
    flatten(reference.expected).map(({ key, definition }) => [key, definition]),
  )
  const ownedKeys = flatten(reference.latest).map(({ key }) => key)
  return `DO $x402_baseline$
DECLARE
  reference_objects jsonb := ${literal(jsonLines(referenceObjects))};
  owned_keys text[] := ${textArray(ownedKeys)};
  ported_tables text[] := ${textArray([...PORTED_TABLES])};
  reference_tables text[] := ${textArray(Object.keys(reference.expected.relations))};
  baseline_names text[] := ${textArray(upTo)};
  saved_search_path text := current_setting('search_path');
  problems text;
BEGIN
  IF to_regclass(${literal(history)}) IS NOT NULL THEN
    SELECT string_agg(h.name, ', ' ORDER BY h.name) INTO problems
    FROM ${history} h WHERE NOT (h.name = ANY (baseline_names));
    IF problems IS NOT NULL THEN
      RAISE EXCEPTION 'Cannot adopt the database at %: the history already records %, which are not among the migrations up to it. Nothing was recorded.',
        ${literal(migrationName)}, problems;
    END IF;
    SELECT string_agg(b.name, ', ' ORDER BY b.ordinal) INTO problems
    FROM unnest(baseline_names) WITH ORDINALITY AS b(name, ordinal)
    WHERE b.ordinal <= (SELECT count(*) FROM ${history})
      AND NOT EXISTS (SELECT FROM ${history} h WHERE h.name = b.name);
    IF problems IS NOT NULL THEN
      RAISE EXCEPTION 'Cannot adopt the database at %: the history skips % while recording later migrations. Nothing was recorded.',
        ${literal(migrationName)}, problems;
    END IF;
  END IF;

  PERFORM pg_catalog.set_config('search_path', 'public', true);
  WITH live AS (${snapshotQuery('public')}),
  live_side AS (
    SELECT live.category || ' ' || CASE WHEN live.category = 'relations' OR live.table_name IS NULL THEN live.object_name
                                        ELSE live.table_name || '.' || live.object_name END AS key,
           live.category, live.table_name, live.definition
    FROM live
  ),
  reference_side AS (SELECT r.key, r.value AS definition FROM jsonb_each(reference_objects) AS r)
  SELECT string_agg(d.line, E'\\n' ORDER BY d.line) INTO problems FROM (
    SELECT CASE
             WHEN l.key IS NULL THEN 'missing ' || e.key
             WHEN e.key IS NULL THEN 'unexpected ' || l.key
             ELSE 'changed ' || e.key || ': ' || (
               SELECT string_agg(f.field || ': live ' || coalesce(l.definition -> f.field, 'null'::jsonb)::text
                                 || ' / expected ' || coalesce(e.definition -> f.field, 'null'::jsonb)::text, '; ' ORDER BY f.field)
               FROM (SELECT jsonb_object_keys(l.definition) UNION SELECT jsonb_object_keys(e.definition)) AS f(field)
               WHERE (l.definition -> f.field) IS DISTINCT FROM (e.definition -> f.field))
           END AS line
    FROM reference_side e FULL JOIN live_side l ON l.key = e.key
    WHERE CASE
            WHEN l.key IS NULL THEN true
            WHEN e.key IS NULL THEN CASE WHEN l.category IN ('relations', 'functions') THEN l.key = ANY (owned_keys)
                                         ELSE l.table_name = ANY (reference_tables)
                                              AND (l.key = ANY (owned_keys) OR l.category = 'policies'
                                                   OR NOT (l.table_name = ANY (ported_tables))) END
            ELSE l.definition <> e.definition
          END
  ) AS d;
  PERFORM pg_catalog.set_config('search_path', saved_search_path, true);
  IF problems IS NOT NULL THEN
    RAISE EXCEPTION USING
      MESSAGE = format(E'The live schema differs from what the migrations up to %s produce; nothing was recorded.\\n%s', ${literal(migrationName)}, problems),
      HINT = 'Make the database match, or adopt it at the migration whose schema it has. npm run migrate:check describes each difference.';
  END IF;
END
$x402_baseline$;`
}

function flatten(snapshot: SchemaSnapshot): Array<{ key: string; definition: Record<string, unknown> }> {
  return SCHEMA_OBJECT_CATEGORIES.flatMap((category) =>
    Object.values(snapshot[category]).map((object) => ({
      key: `${category} ${schemaObjectKey(category, object)}`,
      definition: object.definition,
    })),
  )
}

function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`
}

/** A JSON object with one entry a line, so that the script reads object by object. */
function jsonLines(object: Record<string, unknown>): string {
  return `{\n${Object.entries(object).map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`).join(',\n')}\n}`
}

function textArray(values: string[]): string {
  if (values.length === 0) return `'{}'::text[]`
  return `ARRAY[\n    ${values.map(literal).join(',\n    ')}\n  ]::text[]`
}
