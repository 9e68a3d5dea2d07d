/**
 * The names of the module's history tables, apart from the code that reads and writes them so
 * that the command line's no-op check (up-to-date-at-once.ts) names them without loading kysely.
 */

import { MIGRATION_TABLE_SCHEMA } from '../connection/module-schemas.js'
import { canActAs } from '../connection/shadowed-catalog.js'

export { MIGRATION_TABLE_SCHEMA }

/** Kysely's history table, schema-qualified, for SQL text. */
export const MIGRATION_HISTORY_TABLE = `${MIGRATION_TABLE_SCHEMA}.kysely_migration`

/**
 * The history table's column that marks a migration whose non-transactional `down` has begun
 * and not finished. Added by the runner the first time such a down runs; Kysely's Migrator reads
 * only name and timestamp, so it is not disturbed by it.
 */
export const REVERTING_COLUMN = 'reverting_since'

/** The table that keeps a checksum of each applied migration, schema-qualified, for SQL text. */
export const MIGRATION_CHECKSUM_TABLE = `${MIGRATION_TABLE_SCHEMA}.migration_checksum`

/**
 * The table in which a migration's up records what it found, for its down to check and restore,
 * such as `x402_migrations.prior_state_008`: its own down reads and drops it, so the check after
 * that down lets it go (down-guard.ts, downCheckSql).
 */
export function priorStateTable(migration: string): string {
  return `${MIGRATION_TABLE_SCHEMA}.prior_state_${migration.split('_')[0]}`
}

/** The history table's columns as Kysely's Migrator makes them, in pg_catalog.format_type's words. */
export const HISTORY_COLUMNS = ['name character varying(255)', 'timestamp character varying(255)']

/** The history table's column that the runner may add: see {@link REVERTING_COLUMN}. */
export const HISTORY_OPTIONAL_COLUMNS = [`${REVERTING_COLUMN} timestamp with time zone`]

/** The checksum table's columns, as checksums.ts makes it. */
export const CHECKSUM_COLUMNS = [
  'name character varying(255)',
  'sha256 character(64)',
  'origin text',
  'recorded_at timestamp with time zone',
]

/**
 * A SQL expression, catalog reads only, that is NULL when `table` (schema-qualified) is absent
 * or may be read without running code that anyone but the reader could have written, and
 * otherwise says why it may not, what was expected and what to do. Every read of the module's
 * bookkeeping in x402_migrations asks it in the same statement, and reads nothing when it is
 * not NULL (see ARCHITECTURE.md, "Rules that hold everywhere"). It asks for:
 * - a plain table (relkind 'r'): a view runs its definition, a foreign table its server's;
 * - a table and a schema whose owners can already act as the reader (canActAs):
 *   an owner can attach code that runs as whoever reads or writes the table (a policy, a
 *   trigger, a default, a column's type and its casts), and that gains it nothing only where it
 *   has the reader's privileges already. This one check covers all of them, present and future;
 * - exactly the `required` columns, with at most the `optional` ones besides, of the built-in
 *   types named there, so that reading named columns calls no cast or function of a user's.
 * Operators and functions are pg_catalog's, named so, whatever the search_path.
 */
export function bookkeepingProblemSql(
  table: string,
  required: readonly string[],
  optional: readonly string[] = [],
): string {
  const text = (value: string) => `'${value.replaceAll("'", "''")}'`
  const list = (values: readonly string[]) =>
    `ARRAY[${values.map(text).join(', ')}]::pg_catalog.text[]`
  const expected = [
    required.join(', '),
    ...(optional.length > 0 ? [` (and ${optional.join(', ')} once the module added it)`] : []),
  ].join('')
  return `(SELECT CASE
    WHEN c.relkind OPERATOR(pg_catalog.<>) 'r' THEN pg_catalog.format(
      '%s is a %s, where the module keeps a plain table: reading it would run code of whoever made it, as the role that runs this command. Nothing was read from it. Find out who replaced the table, and restore it from a backup',
      ${text(table)}, CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'v' THEN 'view'
        WHEN c.relkind OPERATOR(pg_catalog.=) 'm' THEN 'materialized view'
        WHEN c.relkind OPERATOR(pg_catalog.=) 'f' THEN 'foreign table'
        WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN 'partitioned table'
        ELSE 'relation of kind ' OPERATOR(pg_catalog.||) c.relkind::pg_catalog.text END)
    WHEN NOT (${canActAs('c.relowner', 'current_user')} AND ${canActAs('n.nspowner', 'current_user')}) THEN pg_catalog.format(
      '%s is owned by %s, and the schema %s by %s, which cannot act as role %s that reads it: code an owner attaches to the table (a policy, a trigger, a column''s type) would run as %s. Nothing was read from it. Run this command as a role the owners can act as, or, once you have checked the table, give it and its schema to a role that can act as %s (ALTER TABLE … OWNER TO, ALTER SCHEMA … OWNER TO)',
      ${text(table)}, pg_catalog.pg_get_userbyid(c.relowner), n.nspname, pg_catalog.pg_get_userbyid(n.nspowner),
      current_user, current_user, current_user)
    WHEN NOT (cols.names OPERATOR(pg_catalog.<@) ${list([...required, ...optional])}
              AND ${list(required)} OPERATOR(pg_catalog.<@) cols.names) THEN pg_catalog.format(
      '%s has the columns %s, where the module keeps %s: a column of another type could run code when read. Nothing was read from it. Find out what changed the table, and put its columns back as they were',
      ${text(table)}, pg_catalog.array_to_string(cols.names, ', '), ${text(expected)})
    END
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  CROSS JOIN LATERAL (
    SELECT coalesce(pg_catalog.array_agg(a.attname::pg_catalog.text OPERATOR(pg_catalog.||) ' '
                      OPERATOR(pg_catalog.||) pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum),
                    '{}') AS names
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
  ) AS cols
  WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(${text(table)}))`
}

/**
 * A condition, catalog reads only, that holds where `table` is a plain table whose owner can act
 * as the reader: the part of {@link bookkeepingProblemSql} that start-up's one statement cannot
 * do without, put where PostgreSQL evaluates it once, before it reads the table (a "One-Time
 * Filter"), and cheap enough for start-up. Its columns need no check of their own there: only an
 * owner it trusts can change them (and a schema's owner, who could put another table in its
 * place, would own that one). Where it does not hold, nothing is read, and the reader asks
 * bookkeepingProblemSql why.
 */
export function trustedTableSql(table: string): string {
  return `(SELECT c.relkind OPERATOR(pg_catalog.=) 'r' AND ${canActAs('c.relowner', 'current_user')}
    FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('${table}'))`
}

/**
 * Every table of the module's bookkeeping in x402_migrations that the module reads (or that
 * Kysely's Migrator reads for it), with its columns as they are made, in pg_catalog.format_type's
 * words: what {@link bookkeepingTablesProblemSql} checks. A migration's own record
 * (`prior_state_<number>`) is checked by the down that reads it.
 */
export const BOOKKEEPING_TABLES = {
  /** Kysely's history: every run reads and writes it. */
  history: {
    table: MIGRATION_HISTORY_TABLE,
    required: HISTORY_COLUMNS,
    optional: HISTORY_OPTIONAL_COLUMNS,
  },
  /** The checksum of each applied migration (checksums.ts). */
  checksums: { table: MIGRATION_CHECKSUM_TABLE, required: CHECKSUM_COLUMNS, optional: [] },
  /** Kysely's lock table: its Migrator reads its row on every run (the runner's lock replaces its use). */
  lock: {
    table: `${MIGRATION_TABLE_SCHEMA}.kysely_migration_lock`,
    required: ['id character varying(255)', 'is_locked integer'],
    optional: [],
  },
  /** The differences adoption accepted (adoption/accepted-differences.ts): migrate:check trusts them. */
  acceptedDifferences: {
    table: `${MIGRATION_TABLE_SCHEMA}.accepted_schema_difference`,
    required: [
      'key text',
      'field text',
      'live jsonb',
      'line text',
      'migration_name character varying(255)',
      'accepted_at timestamp with time zone',
    ],
    // Made before decisions existed, the table gets the column at the next adoption.
    optional: ['decision text'],
  },
  /** Production's own objects (adoption/production-objects.ts): migrate:check trusts them. */
  productionObjects: {
    table: `${MIGRATION_TABLE_SCHEMA}.production_schema_object`,
    required: [
      'key text',
      'category text',
      'table_name text',
      'object_name text',
      'definition jsonb',
      'migration_name character varying(255)',
      'recorded_at timestamp with time zone',
    ],
    optional: [],
  },
} as const satisfies Record<
  string,
  { table: string; required: readonly string[]; optional: readonly string[] }
>

/** {@link bookkeepingProblemSql} of one of the {@link BOOKKEEPING_TABLES}. */
export function bookkeepingTableProblemSql(name: keyof typeof BOOKKEEPING_TABLES): string {
  const { table, required, optional } = BOOKKEEPING_TABLES[name]
  return bookkeepingProblemSql(table, required, optional)
}

/** {@link bookkeepingProblemSql} of the history table. */
export function historyProblemSql(): string {
  return bookkeepingTableProblemSql('history')
}

/**
 * {@link bookkeepingProblemSql} of each of the {@link BOOKKEEPING_TABLES}, the first problem
 * found: NULL where every one may be read. Asked before a run, migrate:baseline and the
 * checksums' reads and writes.
 */
export function bookkeepingTablesProblemSql(): string {
  const names = Object.keys(BOOKKEEPING_TABLES) as (keyof typeof BOOKKEEPING_TABLES)[]
  return `coalesce(${names.map(bookkeepingTableProblemSql).join(', ')})`
}

/**
 * The one statement that reads the history: the names (with `times`, also when each was
 * applied), whether each is being rolled back, and whether the table keeps each name to one row
 * (its primary key). Where {@link trustedTableSql} does not hold, it reads nothing and returns
 * no row; an empty answer is then asked about with {@link historyProblemSql}. Start-up asks
 * nothing else, so the check is in this statement:
 * - the table's rows are produced under a condition on the check alone, which PostgreSQL
 *   evaluates once, before it reads the table (a gating "One-Time Filter");
 * - TABLESAMPLE SYSTEM (100), which reads every row, is accepted only on tables: on a view it is
 *   refused while the statement is parsed, before planning could run an IMMUTABLE function the
 *   view calls with constants;
 * - the marker column (REVERTING_COLUMN) is read by name where the runner added it and is NULL
 *   elsewhere, through a NATURAL LEFT JOIN with an empty row that has only that column.
 */
export function historyReadSql(options: { times: boolean }): string {
  const keyed = `EXISTS (SELECT FROM pg_catalog.pg_constraint
      WHERE conrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('${MIGRATION_HISTORY_TABLE}') AND contype OPERATOR(pg_catalog.=) 'p'
        AND pg_catalog.pg_get_constraintdef(oid) OPERATOR(pg_catalog.=) 'PRIMARY KEY (name)')`
  return `
  SELECT m.name${options.times ? ', m.timestamp' : ''}, ${REVERTING_COLUMN} IS NOT NULL AS reverting, ${keyed} AS keyed
  FROM ${MIGRATION_HISTORY_TABLE} AS m TABLESAMPLE SYSTEM (100)
  NATURAL LEFT JOIN (SELECT NULL::pg_catalog.timestamptz AS ${REVERTING_COLUMN} WHERE false) AS unmarked
  WHERE ${trustedTableSql(MIGRATION_HISTORY_TABLE)}
`
}
