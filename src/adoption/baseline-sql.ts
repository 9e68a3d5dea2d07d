import {
  DEFAULT_MIGRATION_LOCK_TABLE,
  DEFAULT_MIGRATION_TABLE,
  MIGRATION_LOCK_ID,
} from 'kysely/migration'

import { migrationNames } from '../migrations/index.js'
import {
  checksumTableStatements,
  MIGRATION_CHECKSUM_TABLE,
  type MigrationSourceOptions,
  migrationChecksum,
} from '../migrator/checksums.js'
import { PINNED_SHADOWED_CATALOG_SQL } from '../connection/shadowed-catalog.js'
import { MIGRATION_TABLE_SCHEMA, REVERTING_COLUMN } from '../migrator/history.js'
import { bookkeepingTablesProblemSql } from '../migrator/history-tables.js'
import { migrationNamesUpTo } from '../migrator/migration-names.js'
import {
  buildSchemaReference,
  comparisonInputs,
  type SchemaReference,
} from '../schema/reference.js'
import {
  comparisonQuery,
  comparisonReportQuery,
  DIFFERENCE_CLASSES,
  productionObjectsQuery,
} from '../schema/rules.js'
import { PINNED_CATALOG_READS } from '../schema/snapshot.js'
import {
  ACCEPTED_DIFFERENCE_TABLE,
  acceptedDifferenceTableStatements,
} from './accepted-differences.js'
import { type AdoptionDecision, readAdoptionDecisions } from './adoption-decisions.js'
import {
  migrationLockSql,
  privilegeChecks,
  SCRIPT_BEGIN,
  scriptTimeouts,
} from '../migrator/script-checks.js'
import {
  productionObjectTableStatements,
  recordProductionObjectsStatements,
} from './production-objects.js'

/** Options of {@link exportBaselineSql}. */
export interface BaselineSqlOptions extends MigrationSourceOptions {
  /** The exact comparison: every difference refuses, as `migrate:baseline -- <name> --strict`. */
  strict?: boolean
  /** The decisions to embed (by default those of the repository's adoption-decisions.json). */
  decisions?: readonly AdoptionDecision[]
}

/** The temporary table the script keeps the comparison in until COMMIT. */
const COMPARED = 'x402_baseline_compared'

/** The temporary table the script keeps production's own objects in until COMMIT. */
const PRODUCTION_OWN = 'x402_baseline_production_own'

/**
 * `migrate:baseline` as one SQL script, for the Supabase SQL Editor where the command line
 * cannot reach production. The script first verifies, in the database, what the command
 * verifies: that the recorded history does not contradict the adoption, and that the live
 * schema has no conflict with the reference at `name` (built now on a scratch database and
 * embedded in the script), by running the same comparison query as the command (rules.ts).
 * On a conflict it raises an error that lists every difference under its class, as the command
 * prints them, and records nothing. Otherwise it prints the equivalent and accepted differences
 * (a NOTICE), creates the history tables as Kysely's Migrator does, and records the migrations
 * up to `name`, their checksums, the accepted differences and production's own objects (as
 * migrate:baseline does), in one transaction.
 *
 * @example
 * ```ts
 * process.stdout.write(await exportBaselineSql('005'))
 * ```
 */
export async function exportBaselineSql(
  name: string,
  options: BaselineSqlOptions = {},
): Promise<string> {
  const reference = await buildSchemaReference(name)
  const { migrationName } = reference
  const upTo = migrationNamesUpTo(migrationName)
  const checksums = await Promise.all(
    upTo.map(async (known) => [known, await migrationChecksum(known, options)] as const),
  )
  const schema = MIGRATION_TABLE_SCHEMA
  const history = `${schema}.${DEFAULT_MIGRATION_TABLE}`

  return [
    `-- Adoption of a database built by hand: records ${upTo.join(', ')} as applied, without running them.`,
    `-- Exported by \`npm run migrate:sql -- --baseline ${migrationName}\`. Run it as one script (the Supabase SQL Editor).`,
    `-- It first compares the live schema with what the migrations up to ${migrationName} produce (embedded below),`,
    '-- and checks the recorded history; on a conflict it stops with an error listing the differences, and records nothing.',
    '-- Equivalent differences and what production has more or stricter are listed in a NOTICE; the latter are recorded.',
    '-- At READ COMMITTED whatever the defaults: the check of the tables it writes reads the catalog after locking them.',
    `${SCRIPT_BEGIN};`,
    '',
    "-- The runner's bounds on an idle transaction, on a wait for a lock and on a statement, as the migration scripts set",
    '-- them: where a migration run holds the migration lock, the script gives up (lock_not_available) and records',
    '-- nothing; run it again. A client that stalls inside the transaction loses it, and the migration lock.',
    ...scriptTimeouts().flatMap((statement) => [`${statement};`, '']),
    "-- The runner's checks, as migrate:baseline runs them: a refusal (SQLSTATE 42501) where a lesser login",
    "-- role could shadow PostgreSQL's own functions, then the migration lock (MIGRATION_LOCK_KEY), so that",
    '-- no migration run changes the schema meanwhile, then a refusal where the writes below would run code',
    '-- of a role that a lesser login role can act as; the tables it checks stay locked against a new trigger',
    '-- until COMMIT.',
    ...privilegeChecks(true, [migrationLockSql]).flatMap((statement) => [`${statement};`, '']),
    guard(reference, upTo, options.strict === true, options.decisions ?? readAdoptionDecisions()),
    '',
    `CREATE SCHEMA IF NOT EXISTS ${schema};`,
    '',
    "-- The history tables, as Kysely 0.29's Migrator creates them.",
    `CREATE TABLE IF NOT EXISTS ${history} (name varchar(255) NOT NULL PRIMARY KEY, "timestamp" varchar(255) NOT NULL);`,
    '',
    `CREATE TABLE IF NOT EXISTS ${schema}.${DEFAULT_MIGRATION_LOCK_TABLE} (id varchar(255) NOT NULL PRIMARY KEY, is_locked integer NOT NULL DEFAULT 0);`,
    '',
    `INSERT INTO ${schema}.${DEFAULT_MIGRATION_LOCK_TABLE} (id, is_locked) VALUES (${literal(MIGRATION_LOCK_ID)}, 0) ON CONFLICT (id) DO NOTHING;`,
    '',
    ...checksumTableStatements().flatMap((statement) => [`${statement};`, '']),
    '-- A checksum for each migration; one recorded before this script is a backfill (applied before checksums existed).',
    `INSERT INTO ${MIGRATION_CHECKSUM_TABLE} (name, sha256, origin)`,
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
    ...acceptedDifferenceTableStatements().flatMap((statement) => [`${statement};`, '']),
    '-- What production has more or stricter, and what adoption-decisions.json accepts, as accepted now;',
    '-- migrate:check holds the database to it.',
    `DELETE FROM ${schema}.${ACCEPTED_DIFFERENCE_TABLE};`,
    `INSERT INTO ${schema}.${ACCEPTED_DIFFERENCE_TABLE} (key, field, live, line, migration_name, decision)`,
    `SELECT c.key, c.field, c.live, c.line, ${literal(migrationName)}, c.decision FROM ${COMPARED} c WHERE c.class = 'accepted';`,
    '',
    ...productionObjectTableStatements().flatMap((statement) => [`${statement};`, '']),
    "-- What the app's schemas have that no migration creates, as production's own; migrate:check holds the database to it.",
    ...recordProductionObjectsStatements(
      migrationName,
      `SELECT * FROM pg_temp.${PRODUCTION_OWN}`,
    ).flatMap((statement) => [`${statement};`, '']),
    'COMMIT;',
    '',
  ].join('\n')
}

/**
 * The DO block that refuses before anything is recorded: the history checks, then the
 * comparison query of rules.ts, the one migrate:baseline runs, kept in a temporary table until
 * COMMIT so that the accepted differences can be recorded after the history tables exist.
 */
function guard(
  reference: SchemaReference,
  upTo: string[],
  strict: boolean,
  decisions: readonly AdoptionDecision[],
): string {
  const { migrationName } = reference
  const history = `${MIGRATION_TABLE_SCHEMA}.${DEFAULT_MIGRATION_TABLE}`
  const comparison = comparisonQuery(comparisonInputs(reference, { strict, decisions }))
  return `DO $x402_baseline$
DECLARE
  baseline_names text[] := ${textArray(upTo)};
  saved_search_path text := current_setting('search_path');
  problems text;
  report text;
BEGIN
  -- The bookkeeping is read and written only where that runs no code another role wrote
  -- (history-tables.ts): each of its tables, as migrate:baseline checks them.
  problems := ${bookkeepingTablesProblemSql()};
  IF problems IS NOT NULL THEN
    RAISE EXCEPTION 'Cannot adopt the database at %: %. Nothing was recorded.', ${literal(migrationName)}, problems;
  END IF;
  IF to_regclass(${literal(history)}) IS NOT NULL THEN
    -- A half-removed schema is not compared: the comparison would call the module's own objects missing.
    -- The marker column exists only once a rollback ran outside a transaction: read by name, where it does.
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = ${literal(history)}::regclass
               AND attname = ${literal(REVERTING_COLUMN)} AND NOT attisdropped) THEN
      EXECUTE ${literal(`SELECT string_agg(h.name, ', ' ORDER BY h.name) FROM ${history} h WHERE h.${REVERTING_COLUMN} IS NOT NULL`)}
        INTO problems;
    END IF;
    IF problems IS NOT NULL THEN
      RAISE EXCEPTION 'Cannot adopt the database at %: the rollback of % was interrupted, so the schema may be half removed and is not compared: complete it first with npm run migrate:down (it resumes where it stopped). Nothing was recorded.',
        ${literal(migrationName)}, problems;
    END IF;
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

  PERFORM ${PINNED_CATALOG_READS};
  -- The comparison reads with the search_path at public, which the check above covered only if
  -- the session's path names it: the same check again, on the path the reads run with.
  EXECUTE ${literal(PINNED_SHADOWED_CATALOG_SQL)};
  DROP TABLE IF EXISTS pg_temp.${COMPARED};
  CREATE TEMPORARY TABLE ${COMPARED} ON COMMIT DROP AS ${comparison.trim()};
  DROP TABLE IF EXISTS pg_temp.${PRODUCTION_OWN};
  CREATE TEMPORARY TABLE ${PRODUCTION_OWN} ON COMMIT DROP AS ${productionObjectsQuery(reference.createdBy).trim()};
  PERFORM pg_catalog.set_config('search_path', saved_search_path, true);
  report := (${comparisonReportQuery(`pg_temp.${COMPARED}`, DIFFERENCE_CLASSES)});
  IF EXISTS (SELECT FROM pg_temp.${COMPARED} WHERE class = 'conflict') THEN
    RAISE EXCEPTION USING
      MESSAGE = format(E'The live schema conflicts with what the migrations up to %s produce; nothing was recorded.\\n%s', ${literal(migrationName)}, report),
      HINT = ${literal(`See what to change with npm run migrate:baseline -- ${migrationName} --plan (or adopt at the migration whose schema the database has); npm run migrate:baseline -- ${migrationName} prints the entry of adoption-decisions.json that would keep each conflict a decision may accept, after review (export this script again then). The plan never weakens security or drops data; a decision keeps what production has, and is yours to make.`)};
  END IF;
  IF report IS NOT NULL THEN
    RAISE NOTICE '%', report;
  END IF;
END
$x402_baseline$;`
}

function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`
}

function textArray(values: string[]): string {
  if (values.length === 0) return `'{}'::text[]`
  return `ARRAY[\n    ${values.map(literal).join(',\n    ')}\n  ]::text[]`
}
