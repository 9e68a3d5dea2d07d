import { createHash } from 'node:crypto'

import { type Kysely, sql } from 'kysely'
import type { Migration } from 'kysely/migration'

import { QueryError } from '../connection/query-error.js'
import {
  CATALOG_CHECK_BEGIN,
  CATALOG_CHECK_DECLARE,
  LESSER_LOGIN_ROLES_SQL,
} from '../connection/shadowed-catalog.js'
import { errorCode } from '../connection/sql-state.js'
import {
  MIGRATION_HISTORY_TABLE,
  MIGRATION_TABLE_SCHEMA,
  priorStateTable,
} from './history-tables.js'

/**
 * Thrown before anything changes when a `down` would destroy data and the run did not opt in.
 * The message names each table or column and how much of it would be lost.
 */
export class DataLossRefusal extends Error {
  override readonly name = 'DataLossRefusal'
  readonly code = 'DATA_LOSS_REFUSED'
}

/** The SQLSTATE of the guard's refusal, by which the runner tells it from any other error. */
const REFUSED = '5X402'

/** The UTC time that ends a backup's name, and its length, which a backup's name always keeps. */
export const STAMP_FORMAT = 'YYYYMMDD"T"HH24MISSMS'
export const STAMP_LENGTH = '20261231T235959999'.length

/** A table of the catalog, and the rows this transaction deleted and updated in it so far. */
interface CatalogTable {
  /** The same whatever its name: a table that a down renames is not dropped. */
  oid: number
  schema: string
  table: string
  /** `schema.table`, each quoted where SQL needs it. */
  name: string
  deleted: number
  updated: number
  /**
   * The table's storage: TRUNCATE and a rewrite (ALTER COLUMN … TYPE, say) give it a new one
   * within the transaction, which the row counters above do not show.
   */
  storage: number
}

/**
 * What a down destroys: a table it drops, a column it drops from a table that stays, a table
 * whose storage it replaces (TRUNCATE, a rewrite), or rows of a table that it (or a foreign key's
 * action, or a trigger) deletes or changes, as counted by a rehearsal of the down in the same
 * transaction.
 */
export type Loss =
  | { kind: 'table'; table: CatalogTable }
  | { kind: 'column'; table: CatalogTable; column: string }
  | { kind: 'storage'; table: CatalogTable }
  | { kind: 'rows'; table: CatalogTable; deleted: number; updated: number }

/** The tables a down's guard compares: outside the system's schemas and the module's bookkeeping. */
const GUARDED =
  "c.relkind IN ('r', 'p') AND n.nspname NOT LIKE 'pg\\_%' " +
  `AND n.nspname NOT IN ('information_schema', ${literal(MIGRATION_TABLE_SCHEMA)}, 'x402_backup')`

/**
 * SQL, an expression: the catalog as a down's guard compares it, as jsonb keyed by each table's
 * oid (the same whatever its name: a table that a down renames is not dropped): `[schema, table,
 * schema.table quoted where SQL needs it, rows deleted, rows updated, storage, {attnum: column
 * quoted where SQL needs it}]`. pg_stat_get_xact_* count the rows this transaction deleted and
 * updated so far, cascades and SET NULL actions of foreign keys included: the rows of any table
 * that the down touched. The storage (relfilenode) is new after TRUNCATE or a rewrite (ALTER
 * COLUMN … TYPE, say) within the transaction, which those counters do not show.
 */
const CATALOG_STATE = [
  "(SELECT coalesce(jsonb_object_agg(c.oid::text, jsonb_build_array(n.nspname, c.relname, format('%I.%I', n.nspname, c.relname),",
  '          pg_stat_get_xact_tuples_deleted(c.oid), pg_stat_get_xact_tuples_updated(c.oid), c.relfilenode::text,',
  "          (SELECT coalesce(jsonb_object_agg(a.attnum::text, format('%I', a.attname)), '{}') FROM pg_attribute a",
  "            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))), '{}')",
  '   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace',
  `  WHERE ${GUARDED})`,
].join('\n')

/** The setting in which {@link noteCatalog} keeps the catalog, on the server. */
const NOTED_CATALOG = 'x402.down_catalog'

/**
 * Notes the catalog as a down's guard compares it ({@link CATALOG_STATE}), on the server, in the
 * setting x402.down_catalog: for the transaction (`transaction`, undone with it or with a
 * savepoint rolled back), or for the session (`session`, a scratch database of one connection).
 * Nothing of it comes back to the client: the comparison ({@link catalogLosses}) is made on the
 * server too. Under the locks of a down, a client that stopped while reading a result larger than
 * its sockets hold would keep them, out of reach of every timeout (review revg F6): the catalog
 * of an app's schema (a partitioned table of many partitions, say) has no bound.
 *
 * @example
 * ```ts
 * await noteCatalog(trx, 'transaction')
 * ```
 */
export async function noteCatalog(
  db: Kysely<any>,
  scope: 'transaction' | 'session',
): Promise<void> {
  // set_config returns what it set: only whether it did comes back.
  await sql
    .raw(
      `SELECT set_config(${literal(NOTED_CATALOG)}, ${CATALOG_STATE}::text, ${scope === 'transaction'}) IS NOT NULL AS noted`,
    )
    .execute(db)
}

/**
 * What a down destroys, from the catalog noted by {@link noteCatalog} before a rehearsal of it and
 * the catalog now, compared on the server: a table it drops (gone from the tables compared), a
 * column it drops from a table that stays (named as before the down, where the guard counts its
 * values), a table whose storage it replaced, or rows of a table that it (or a foreign key's
 * action, or a trigger) deleted or changed. Only those come back, whatever the size of the
 * catalog. Throws where no catalog was noted (or the down reset it).
 *
 * @example
 * ```ts
 * await catalogLosses(trx) // [{ kind: 'table', table: { name: 'public.x402_user_claude_configs', … } }]
 * ```
 */
export async function catalogLosses(db: Kysely<any>): Promise<Loss[]> {
  const { rows } = await sql<{
    noted: boolean
    kind: Loss['kind'] | null
    oid: string
    schema_name: string
    table_name: string
    name: string
    deleted: string
    updated: string
    storage: string
    now_deleted: string
    now_updated: string
    col: string | null
  }>`
    WITH before AS (
      SELECT b.key::oid AS oid, b.value AS v
        FROM jsonb_each(coalesce(nullif(current_setting(${NOTED_CATALOG}, true), ''), '{}')::jsonb) AS b
    ), cur AS (
      SELECT c.oid, c.relfilenode::text AS storage, pg_stat_get_xact_tuples_deleted(c.oid) AS deleted,
             pg_stat_get_xact_tuples_updated(c.oid) AS updated,
             ARRAY(SELECT a.attnum::int FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1) AS attnums
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE ${sql.raw(GUARDED)}
    ), lost AS (
      SELECT 0 AS rank, 'table' AS kind, b.oid, b.v, NULL::bigint AS now_deleted, NULL::bigint AS now_updated,
             NULL::int AS attnum, NULL AS col
        FROM before b WHERE NOT EXISTS (SELECT FROM cur WHERE cur.oid = b.oid)
      UNION ALL
      SELECT 1, 'storage', b.oid, b.v, NULL, NULL, NULL, NULL
        FROM before b JOIN cur ON cur.oid = b.oid WHERE cur.storage <> b.v ->> 5
      UNION ALL
      SELECT 2, 'rows', b.oid, b.v, cur.deleted, cur.updated, NULL, NULL
        FROM before b JOIN cur ON cur.oid = b.oid
       WHERE cur.deleted > (b.v ->> 3)::bigint OR cur.updated > (b.v ->> 4)::bigint
      UNION ALL
      -- Only the columns of a table whose columns are not those it had.
      SELECT 3, 'column', b.oid, b.v, NULL, NULL, a.key::int, a.value
        FROM before b JOIN cur ON cur.oid = b.oid CROSS JOIN LATERAL jsonb_each_text(b.v -> 6) AS a(key, value)
       WHERE cur.attnums <> ARRAY(SELECT k::int FROM jsonb_object_keys(b.v -> 6) AS k ORDER BY 1)
         AND NOT a.key::int = ANY (cur.attnums)
    )
    SELECT one.noted, l.kind, l.oid::text AS oid,
           l.v ->> 0 AS schema_name, l.v ->> 1 AS table_name, l.v ->> 2 AS name, l.v ->> 3 AS deleted,
           l.v ->> 4 AS updated, l.v ->> 5 AS storage, l.now_deleted::text AS now_deleted,
           l.now_updated::text AS now_updated, l.col
      FROM (SELECT coalesce(current_setting(${NOTED_CATALOG}, true), '') <> '' AS noted) AS one
      LEFT JOIN lost l ON true
     ORDER BY l.rank = 3, l.v ->> 2, l.rank, l.attnum
  `.execute(db)
  if (!rows[0]?.noted) {
    throw new Error(
      `The catalog before the down was not noted (${NOTED_CATALOG} is unset): the data-loss guard cannot tell what the down destroys.`,
    )
  }
  return rows.flatMap((row): Loss[] => {
    if (row.kind === null) return []
    const table: CatalogTable = {
      oid: Number(row.oid),
      schema: row.schema_name,
      table: row.table_name,
      name: row.name,
      deleted: Number(row.deleted),
      updated: Number(row.updated),
      storage: Number(row.storage),
    }
    switch (row.kind) {
      case 'table':
      case 'storage':
        return [{ kind: row.kind, table }]
      case 'rows':
        return [
          {
            kind: 'rows',
            table,
            deleted: Number(row.now_deleted) - table.deleted,
            updated: Number(row.now_updated) - table.updated,
          },
        ]
      case 'column':
        return [{ kind: 'column', table, column: row.col! }]
    }
  })
}

/**
 * The guard of a down, as one `DO` block that runs before the down in its transaction; undefined
 * where the down destroys nothing. It counts what holds data: the rows of a table the down drops
 * or whose storage it replaces (TRUNCATE, a rewrite), the non-null values of a column it drops
 * (each under the name it has before the down), and takes the rows it deletes or changes as
 * `losses` gives them. With nothing to lose it ends. Otherwise it refuses (SQLSTATE 5X402),
 * naming each with its count, unless the session set `x402.allow_data_loss = on`: then it copies
 * each table concerned whole into schema x402_backup (`<migration number>_[<schema>_]<table>_<UTC
 * time>`, with a short hash of the table's name before the time where two names would meet or
 * the name is cut) and leaves their names, as a JSON array, in the transaction's setting
 * `x402.backups`. Each table's rows are counted and digested before the first backup is made,
 * and each backup must be a permanent ordinary table with no rule and hold them once all are
 * made; the backups and those digests join
 * `x402.backups_held`, which {@link downCheckSql} compares again, last before COMMIT. The tables
 * it backed up, and those whose storage the down replaces while they hold no row, it leaves in
 * `x402.down_covered`, which {@link downCheckSql} reads. In a
 * `transactional` down it first locks the tables concerned against writes (SHARE) until the
 * transaction ends, so that nothing arrives between the counts and the down, waiting at most 2 s
 * where the session has no lock_timeout.
 *
 * @example
 * ```ts
 * downGuardSql('002_add_claude_integration', await catalogLosses(trx), { transactional: true })
 * // 'DO $guard$ … RAISE EXCEPTION … $guard$'
 * ```
 */
export function downGuardSql(
  name: string,
  losses: readonly Loss[],
  options: { transactional: boolean },
): string | undefined {
  if (losses.length === 0) return undefined
  const tables = [...new Map(losses.map((loss) => [loss.table.oid, loss.table])).values()]
  const counts = losses.flatMap((loss) => {
    const table = loss.table.name
    const concerned = (indent: string) =>
      `${indent}concerned := concerned || ${literal(table)}::text;`
    if (loss.kind === 'rows') {
      const lines = [
        loss.deleted > 0 && `table ${table}: ${loss.deleted} row(s) deleted`,
        loss.updated > 0 && `table ${table}: ${loss.updated} row(s) changed`,
      ].filter((line) => line !== false)
      return [
        '  -- Counted by the rehearsal of the down, in this transaction:',
        ...lines.map((line) => `  lost := lost || ${literal(line)}::text;`),
        concerned('  '),
      ]
    }
    // A column is counted through an alias: a column named like a variable of the block is no clash.
    const [count, from, label, unit] =
      loss.kind === 'column'
        ? [
            `count(d.${loss.column})`,
            `${table} d`,
            `column ${table}.${loss.column} (dropped): `,
            ' value(s)',
          ]
        : [
            'count(*)',
            table,
            `table ${table} (${loss.kind === 'table' ? 'dropped' : 'truncated or rewritten'}): `,
            ' row(s)',
          ]
    return [
      `  SELECT ${count} INTO n FROM ${from};`,
      '  IF n > 0 THEN',
      `    lost := lost || (${literal(label)} || n || ${literal(unit)});`,
      concerned('    '),
      ...(loss.kind === 'column'
        ? [
            '  ELSE',
            '    -- No value to lose: the check before COMMIT lets it go.',
            `    covered := covered || (to_regclass(${literal(table)})::oid || ':' || (SELECT attnum FROM pg_attribute`,
            `      WHERE attrelid = to_regclass(${literal(table)}) AND format('%I', attname) = ${literal(loss.column)}));`,
          ]
        : []),
      ...(loss.kind === 'storage'
        ? [
            '  ELSE',
            '    -- Empty, and locked against writes: replacing its storage destroys nothing.',
            `    covered := covered || to_regclass(${literal(table)})::oid::text;`,
          ]
        : []),
      '  END IF;',
    ]
  })
  const prefixes = backupPrefixes(name, tables)
  const backups = tables.flatMap((table) => [
    `  IF ${literal(table.name)} = ANY (concerned) THEN`,
    `    backup := ${literal(prefixes.get(table.oid)!)} || stamp;`,
    `    EXECUTE format('CREATE TABLE x402_backup.%I AS TABLE %s', backup, ${literal(table.name)});`,
    `    held := held || jsonb_build_object(format('x402_backup.%I', backup), expected -> ${literal(table.name)});`,
    `    backups := backups || format('x402_backup.%I', backup);`,
    `    covered := covered || to_regclass(${literal(table.name)})::oid::text;`,
    '  END IF;',
  ])
  const refusal = [
    literal(`Rolling back ${name} would destroy data: `),
    "array_to_string(lost, '; ')",
    literal(
      `. Nothing was changed. Keep ${name}, or move the data first; to roll back anyway, run ` +
        'npm run migrate:down -- --allow-data-loss (or set MIGRATION_ALLOW_DATA_LOSS=true), or in SQL ' +
        'run SET x402.allow_data_loss = on before the down: each table concerned is then copied whole ' +
        'to schema x402_backup first.',
    ),
  ].join(' ||\n      ')
  const unkeptMessage = [
    literal(
      `Rolling back ${name} stopped before the down: its backups in schema x402_backup do not hold what was copied into them (a trigger, a rule or an event trigger changed them): `,
    ),
    "array_to_string(unkept, '; ')",
    literal(
      `. Nothing was changed (it was rolled back). Keep ${name}, or roll back once nothing writes to, deletes from or drops new tables of schema x402_backup.`,
    ),
  ].join(' ||\n      ')
  const hiddenMessage = [
    literal(`Rolling back ${name} cannot see every row of `),
    "array_to_string(hidden, ', ')",
    literal(': row level security filters what role '),
    'current_user',
    literal(
      ' reads there (FORCE ROW LEVEL SECURITY on a table it owns, or policies for a role without ' +
        'BYPASSRLS), so rows hidden from it would be destroyed unreported. Nothing was changed. ' +
        `Keep ${name}, or run the down as a role that row level security does not filter: a ` +
        "superuser or a role with BYPASSRLS, such as Supabase's postgres.",
    ),
  ].join(' ||\n      ')
  const body = [
    'DECLARE',
    '  n bigint;',
    '  hidden text[];',
    "  lost text[] := '{}';",
    "  concerned text[] := '{}';",
    "  covered text[] := '{}';",
    '  backup text;',
    "  backups text[] := '{}';",
    "  expected jsonb := '{}';",
    `  held jsonb := ${HELD};`,
    '  digest text;',
    '  holds text;',
    '  unmade text;',
    '  source text;',
    "  unkept text[] := '{}';",
    `  stamp text := to_char(clock_timestamp() AT TIME ZONE 'UTC', '${STAMP_FORMAT}');`,
    'BEGIN',
    ...(options.transactional
      ? [
          '  -- Writes wait until the transaction ends: nothing arrives between the counts and the down.',
          "  IF current_setting('lock_timeout') = '0' THEN PERFORM set_config('lock_timeout', '2s', true); END IF;",
          `  LOCK TABLE ${tables.map((table) => table.name).join(', ')} IN SHARE MODE;`,
        ]
      : []),
    '  -- Row level security would hide rows from the counts and the copies below: an owner under',
    '  -- FORCE ROW LEVEL SECURITY, or a role without BYPASSRLS, would see an empty table.',
    `  SELECT array_agg(t) INTO hidden FROM unnest(ARRAY[${tables.map((table) => literal(table.name)).join(', ')}]) AS t`,
    '   WHERE row_security_active(t);',
    '  IF cardinality(hidden) > 0 THEN',
    `    RAISE EXCEPTION USING ERRCODE = '${REFUSED}', MESSAGE =
      ${hiddenMessage};`,
    '  END IF;',
    ...counts,
    "  PERFORM set_config('x402.down_covered', array_to_json(covered)::text, true);",
    '  IF cardinality(lost) = 0 THEN RETURN; END IF;',
    "  IF current_setting('x402.allow_data_loss', true) IS DISTINCT FROM 'on' THEN",
    `    RAISE EXCEPTION USING ERRCODE = '${REFUSED}', MESSAGE =\n      ${refusal};`,
    '  END IF;',
    '  -- What each table concerned holds, counted before the first statement below that can fire an',
    '  -- event trigger (one could delete from a table before its copy is made).',
    '  FOR source IN SELECT DISTINCT unnest(concerned) LOOP',
    `    EXECUTE format(${ROWS_DIGEST}, source) INTO digest;`,
    '    expected := expected || jsonb_build_object(source, digest);',
    '  END LOOP;',
    '  CREATE SCHEMA IF NOT EXISTS x402_backup;',
    ...backups,
    // Compared once all are made: an event trigger of a later copy could empty an earlier one too.
    '  -- An event trigger can empty, fill or drop a new table as it is made: a backup that does not',
    '  -- hold what was copied into it would report as kept what the down then destroys.',
    ...unkeptBackupLines('held'),
    '  IF cardinality(unkept) > 0 THEN',
    `    RAISE EXCEPTION USING ERRCODE = '${REFUSED}', MESSAGE =\n      ${unkeptMessage};`,
    '  END IF;',
    '  -- The runner reports the backups from here, the check after the down skips what they hold,',
    '  -- and compares each backup with what went into it again, last before COMMIT.',
    "  PERFORM set_config('x402.backups', array_to_json(backups)::text, true);",
    "  PERFORM set_config('x402.backups_held', held::text, true);",
    "  PERFORM set_config('x402.down_covered', array_to_json(covered)::text, true);",
    'END',
  ].join('\n')
  const tag = dollarTag('guard', body)
  return [
    '-- Refuses, before anything changes, where this down would destroy data, unless the session ran',
    '-- SET x402.allow_data_loss = on; then it first copies each table concerned whole to schema x402_backup.',
    `DO ${tag}`,
    body,
    tag,
  ].join('\n')
}

/**
 * SQL: the database's large objects as `<count>:<md5 of their oids>:<pages deleted>:<pages
 * updated>`, which the per-table counters do not show: a down that changes it destroyed or
 * replaced one. The pages are the rows of pg_catalog.pg_largeobject that this transaction deleted
 * and updated so far (the server counts them as for any table): lo_truncate and lo_unlink delete
 * them, lo_put and lo_write over existing content update them, while a new large object only
 * adds some.
 */
const LARGE_OBJECTS =
  "SELECT count(*) || ':' || coalesce(md5(string_agg(oid::text, ',' ORDER BY oid)), '') || ':' || " +
  "pg_stat_get_xact_tuples_deleted('pg_catalog.pg_largeobject'::regclass) || ':' || " +
  "pg_stat_get_xact_tuples_updated('pg_catalog.pg_largeobject'::regclass) " +
  'FROM pg_catalog.pg_largeobject_metadata'

/**
 * A string literal of SQL, a format() pattern whose %s is a table: the count and a digest of its
 * rows, as the text of a numeric[] `{count, a, b}`, a and b the sums of the two halves of each
 * row's md5 (of its text, which every type has). The order of the rows does not change it, and
 * it is read row by row, whatever the size of the table.
 */
const ROWS_DIGEST = literal(
  "SELECT ARRAY[count(*), coalesce(sum(('x' || left(h, 16))::bit(64)::bigint), 0), " +
    "coalesce(sum(('x' || right(h, 16))::bit(64)::bigint), 0)]::text " +
    'FROM (SELECT md5(r::text) AS h FROM %s AS r) AS d',
)

/**
 * SQL: the backups made so far in the transaction, by any down of it, as jsonb: each backup's
 * qualified name, and the {@link ROWS_DIGEST} of the rows that went into it.
 */
const HELD = "coalesce(nullif(current_setting('x402.backups_held', true), ''), '{}')::jsonb"

/**
 * SQL, an expression: why the relation named by the text variable `backup` is no longer a backup
 * that lasts, or null where it is a permanent ordinary table with no rule. An event trigger of
 * its CREATE TABLE AS can make it UNLOGGED (a crash, or a failover to a standby, empties it:
 * standbys have no unlogged rows), turn it into a view (PostgreSQL 15 and older do that to an
 * empty table with CREATE RULE "_RETURN"; a view over a temp table of the runner's session
 * vanishes at its end), attach it as a partition, or add a rule that redirects what is written
 * to it, while its rows still read as copied.
 */
const UNMADE_BACKUP = [
  "(SELECT CASE WHEN c.relkind <> 'r' THEN format('%s is no longer a table (%s)', backup,",
  "                    CASE c.relkind WHEN 'v' THEN 'a view' WHEN 'm' THEN 'a materialized view'",
  "                                   WHEN 'p' THEN 'a partitioned table' WHEN 'f' THEN 'a foreign table'",
  "                                   ELSE 'relkind ' || c.relkind::text END)",
  "             WHEN c.relpersistence = 'u' THEN format('%s was made UNLOGGED (a crash would empty it)', backup)",
  "             WHEN c.relpersistence <> 'p' THEN format('%s is not a permanent table', backup)",
  "             WHEN c.relispartition THEN format('%s was attached as a partition of another table', backup)",
  '             WHEN EXISTS (SELECT FROM pg_rewrite r WHERE r.ev_class = c.oid)',
  "               THEN format('%s has a rule (%s)', backup, (SELECT string_agg(format('%I', r.rulename), ', ' ORDER BY r.rulename)",
  '                                                           FROM pg_rewrite r WHERE r.ev_class = c.oid))',
  '        END FROM pg_class c WHERE c.oid = to_regclass(backup))',
].join('\n')

/**
 * PL/pgSQL lines: each backup of `held` (a jsonb variable as {@link HELD}) compared with what
 * went into it, a line added to `unkept` (text[]) for each that was dropped, is no longer a
 * permanent ordinary table without rules ({@link UNMADE_BACKUP}), or holds other rows. They use
 * the variables `backup`, `digest`, `holds` and `unmade` (text).
 */
function unkeptBackupLines(held: string): string[] {
  return [
    `  FOR backup, digest IN SELECT key, value #>> '{}' FROM jsonb_each(${held}) LOOP`,
    '    IF to_regclass(backup) IS NULL THEN',
    "      unkept := unkept || format('%s was dropped', backup);",
    '      CONTINUE;',
    '    END IF;',
    '    -- Rows that read as copied are no backup where a crash, a failover or the end of the session loses them.',
    `    unmade := ${UNMADE_BACKUP.replaceAll('\n', '\n    ')};`,
    '    IF unmade IS NOT NULL THEN',
    '      unkept := unkept || unmade;',
    '      CONTINUE;',
    '    END IF;',
    `    EXECUTE format(${ROWS_DIGEST}, backup) INTO holds;`,
    '    IF (holds::numeric[])[1] <> (digest::numeric[])[1] THEN',
    "      unkept := unkept || format('%s holds %s row(s), not the %s copied into it', backup,",
    '                                 (holds::numeric[])[1], (digest::numeric[])[1]);',
    '    ELSIF holds <> digest THEN',
    "      unkept := unkept || format('%s holds other rows than the %s copied into it', backup, (digest::numeric[])[1]);",
    '    END IF;',
    '  END LOOP;',
  ]
}

/**
 * SQL: a recursive CTE `used(tbl, typ)`: each table of `tables` (an oid[] expression) with each
 * type whose values it keeps, through its columns: directly, as an array's elements, through a
 * domain, within a composite type, or as the bounds of a range or multirange (nested as deep as
 * they go).
 */
function typesUsedBy(tables: string): string[] {
  return [
    'WITH RECURSIVE used(tbl, typ) AS (',
    '          SELECT a.attrelid, a.atttypid FROM pg_attribute a',
    `           WHERE a.attrelid = ANY (${tables}) AND a.attnum > 0 AND NOT a.attisdropped`,
    '          UNION',
    '          SELECT u.tbl, x.typ FROM used u JOIN pg_type ty ON ty.oid = u.typ',
    "            CROSS JOIN LATERAL (SELECT ty.typbasetype WHERE ty.typtype = 'd'",
    "                                UNION ALL SELECT ty.typelem WHERE ty.typcategory = 'A' AND ty.typelem <> 0",
    '                                UNION ALL SELECT a.atttypid FROM pg_attribute a',
    "                                 WHERE ty.typtype = 'c' AND a.attrelid = ty.typrelid AND a.attnum > 0",
    '                                   AND NOT a.attisdropped',
    "                                UNION ALL SELECT rg.rngsubtype FROM pg_range rg WHERE ty.typtype = 'r' AND rg.rngtypid = ty.oid",
    "                                UNION ALL SELECT rg.rngtypid FROM pg_range rg WHERE ty.typtype = 'm' AND rg.rngmultitypid = ty.oid",
    '                               ) AS x(typ))',
  ]
}

/**
 * SQL: the composite types whose values the tables `tables` (an oid[] expression) hold, through
 * their columns (directly, as an array's elements, through a domain, or within another composite
 * type), as jsonb keyed by the type's pg_class oid: `[name, [oids of those tables], {attnum:
 * [attribute, oid of its type]}]`. ALTER TYPE … DROP ATTRIBUTE … CASCADE destroys that
 * attribute's value in every row, and no counter, storage or column of the tables shows it.
 */
function compositeTypesOf(tables: string): string {
  return [
    "SELECT coalesce(jsonb_object_agg(u.type::text, jsonb_build_array(format('%I.%I', n.nspname, c.relname), u.tables,",
    "         (SELECT coalesce(jsonb_object_agg(a.attnum::text, jsonb_build_array(format('%I', a.attname), a.atttypid::text)), '{}')",
    "            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))), '{}')",
    `  FROM (${typesUsedBy(tables).join('\n')}`,
    '        SELECT ty.typrelid AS type, jsonb_agg(DISTINCT u.tbl::text) AS tables',
    "          FROM used u JOIN pg_type ty ON ty.oid = u.typ WHERE ty.typtype = 'c' GROUP BY ty.typrelid) AS u",
    '  JOIN pg_class c ON c.oid = u.type JOIN pg_namespace n ON n.oid = c.relnamespace',
  ].join('\n')
}

/**
 * SQL: the enum types whose values the tables `tables` (an oid[] expression) hold, reached as in
 * {@link compositeTypesOf}, as jsonb keyed by the type's oid: `[name, [oids of those tables],
 * {oid of a label in pg_enum: label}]`. A row keeps the label's oid: ALTER TYPE … RENAME VALUE
 * changes what every row holding it reads, and no counter, storage or column of the tables shows
 * it.
 */
function enumTypesOf(tables: string): string {
  return [
    "SELECT coalesce(jsonb_object_agg(u.type::text, jsonb_build_array(format('%I.%I', n.nspname, et.typname), u.tables,",
    "         (SELECT coalesce(jsonb_object_agg(e.oid::text, e.enumlabel), '{}') FROM pg_enum e WHERE e.enumtypid = et.oid))), '{}')",
    `  FROM (${typesUsedBy(tables).join('\n')}`,
    '        SELECT ty.oid AS type, jsonb_agg(DISTINCT u.tbl::text) AS tables',
    "          FROM used u JOIN pg_type ty ON ty.oid = u.typ WHERE ty.typtype = 'e' GROUP BY ty.oid) AS u",
    '  JOIN pg_type et ON et.oid = u.type JOIN pg_namespace n ON n.oid = et.typnamespace',
  ].join('\n')
}

/**
 * PL/pgSQL statements that refuse (SQLSTATE 5X402) where the session's row counters cannot see
 * every row a down could delete: with track_counts off (postgresql.conf, a database or role
 * default, the URL's options), PostgreSQL counts no row of a table opened meanwhile (review revo
 * O2); and a foreign table's rows live on another server, where a delete through it (a trigger's,
 * an event trigger's) shows in no counter of this one (review revs S3). A foreign table that
 * postgres_fdw's options make read-only (`updatable` and `truncatable` false, on the table or its
 * server) cannot lose rows through this session. Run at the watch and again at the check, and in
 * each transaction of 005's exported script.
 */
const COUNTABLE = [
  "  IF NOT pg_catalog.current_setting('track_counts')::pg_catalog.bool THEN",
  `    RAISE EXCEPTION USING ERRCODE = '${REFUSED}', MESSAGE =`,
  `      ${literal(
    "The rollback counts the rows it deletes with the server's row counters, and track_counts is off in this " +
      'session, so they would count none. Nothing was changed. Turn track_counts on (its default; it may be off in ' +
      'postgresql.conf, for the database or the role (ALTER DATABASE … RESET track_counts), or in the ' +
      "connection's options), then roll back again.",
  )};`,
  '  END IF;',
  '  IF EXISTS (SELECT FROM pg_catalog.pg_foreign_table f',
  '              JOIN pg_catalog.pg_foreign_server s ON s.oid = f.ftserver',
  "             WHERE NOT pg_catalog.lower(coalesce((SELECT pg_catalog.substr(o, 11) FROM pg_catalog.unnest(f.ftoptions) o WHERE o LIKE 'updatable=%'),",
  "                                                (SELECT pg_catalog.substr(o, 11) FROM pg_catalog.unnest(s.srvoptions) o WHERE o LIKE 'updatable=%'), 'true')) IN ('false', 'off', 'no', '0')",
  "                OR NOT pg_catalog.lower(coalesce((SELECT pg_catalog.substr(o, 13) FROM pg_catalog.unnest(f.ftoptions) o WHERE o LIKE 'truncatable=%'),",
  "                                                (SELECT pg_catalog.substr(o, 13) FROM pg_catalog.unnest(s.srvoptions) o WHERE o LIKE 'truncatable=%'), 'true')) IN ('false', 'off', 'no', '0')) THEN",
  `    RAISE EXCEPTION USING ERRCODE = '${REFUSED}', MESSAGE = pg_catalog.format(`,
  `      ${literal(
    "The rollback counts the rows it deletes with the server's row counters, and the database holds %s, whose rows " +
      'live on another server: a trigger deleting through it would go uncounted. Nothing was changed. Make the ' +
      "foreign tables read-only for the rollback (postgres_fdw: ALTER SERVER … OPTIONS (ADD updatable 'false', ADD " +
      "truncatable 'false'), SET where they are set), or stop writes through another wrapper as its documentation " +
      'says, then roll back again.',
  )},`,
  "      (SELECT pg_catalog.string_agg(pg_catalog.format('foreign table %I.%I', n.nspname, c.relname), ', ' ORDER BY n.nspname, c.relname)",
  '         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace',
  "        WHERE c.relkind = 'f'));",
  '  END IF;',
].join('\n')

/**
 * SQL, an expression: the rows of the catalogs that define foreign access (pg_foreign_data_wrapper,
 * pg_foreign_server, pg_foreign_table, pg_user_mapping) that the session inserted, updated and
 * deleted so far, as jsonb keyed by catalog: `[inserted, updated, deleted]`. The server counts
 * them as for any table; the counts hold what the session has not reported yet from its earlier
 * transactions too, so only a change from a value noted in the same transaction tells. Code that
 * a down fires can make a read-only foreign table writable and back, or make one over an
 * existing server and user mapping and drop it, around a delete through it (review revt F2): the
 * check of the foreign tables that exist ({@link COUNTABLE}) sees neither.
 */
const FOREIGN_CATALOGS = [
  '(SELECT pg_catalog.jsonb_object_agg(c::pg_catalog.text, pg_catalog.jsonb_build_array(',
  '          pg_catalog.pg_stat_get_xact_tuples_inserted(c), pg_catalog.pg_stat_get_xact_tuples_updated(c),',
  '          pg_catalog.pg_stat_get_xact_tuples_deleted(c)))',
  "   FROM pg_catalog.unnest(ARRAY['pg_catalog.pg_foreign_data_wrapper', 'pg_catalog.pg_foreign_server',",
  "                                'pg_catalog.pg_foreign_table', 'pg_catalog.pg_user_mapping']::pg_catalog.regclass[]) AS c)",
].join('\n')

/** The setting in which {@link DOWN_WATCH_SQL} notes {@link FOREIGN_CATALOGS} for the check. */
const NOTED_FOREIGN = 'x402.down_watch_foreign'

/**
 * {@link COUNTABLE} as a statement of its own: in the exported script of a down that runs
 * outside a transaction (005's, whose own checks count with the same counters), after the
 * search_path check, as {@link DOWN_WATCH_SQL} is in a transactional one's.
 */
export const COUNTABLE_SQL = ['DO $countable$', 'BEGIN', COUNTABLE, 'END', '$countable$'].join('\n')

/**
 * What every transactional down runs just before its guard's block (whose backups are DDL, which
 * fires event triggers) or, without one, before it starts: the row counters and the storage of
 * each table, the module's bookkeeping in x402_migrations included,
 * in the transaction's setting `x402.down_watch`, and the names the history records, in
 * `x402.down_recorded`, for {@link downCheckSql} to compare with once the down is done.
 */
export const DOWN_WATCH_SQL = [
  "-- Notes each table's row counters, storage, columns and whether it holds a row, and the history's",
  '-- records, for the check before COMMIT.',
  'DO $watch$',
  'DECLARE',
  '  t record;',
  '  present boolean;',
  "  watch jsonb := '{}';",
  "  holding oid[] := '{}';",
  "  recorded jsonb := '[]';",
  'BEGIN',
  COUNTABLE,
  '  -- What the transaction changed in the catalogs of foreign access so far, for the check.',
  `  PERFORM set_config(${literal(NOTED_FOREIGN)}, (${FOREIGN_CATALOGS})::text, true);`,
  "  FOR t IN SELECT c.oid, c.relfilenode, format('%I.%I', n.nspname, c.relname) AS name,",
  "                  has_table_privilege(c.oid, 'SELECT') AND NOT row_security_active(c.oid) AS readable",
  '             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace',
  "            WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' LOOP",
  '    -- A table it cannot read, or reads through row security, counts as holding rows; so does one',
  '    -- with an index that calls a function not built in: planning the read would compute the',
  "    -- function's calls of constant arguments with the session's power (review rev12).",
  '    present := true;',
  "    IF t.readable AND NOT EXISTS (SELECT FROM pg_index i JOIN pg_depend d ON d.classid = 'pg_class'::regclass",
  "                                  AND d.objid = i.indexrelid AND d.refclassid = 'pg_proc'::regclass",
  '                                WHERE i.indrelid = t.oid) THEN',
  "      EXECUTE format('SELECT EXISTS (SELECT FROM %s)', t.name) INTO present;",
  '    END IF;',
  '    IF present THEN holding := holding || t.oid; END IF;',
  '    watch := watch || jsonb_build_object(t.oid::text, jsonb_build_array(pg_stat_get_xact_tuples_deleted(t.oid),',
  '      pg_stat_get_xact_tuples_updated(t.oid), t.relfilenode::text, present, t.name,',
  "      (SELECT coalesce(jsonb_object_agg(a.attnum::text, format('%I', a.attname)), '{}') FROM pg_attribute a",
  '        WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped)));',
  '  END LOOP;',
  "  PERFORM set_config('x402.down_watch', watch::text, true);",
  "  -- The rows of the module's bookkeeping the down's own statements change (006's), from here.",
  "  PERFORM set_config('x402.down_own_updates', '{}', true);",
  '  -- The attributes of the composite types whose values the tables that hold rows keep.',
  `  PERFORM set_config('x402.down_watch_types', (${compositeTypesOf('holding')})::text, true);`,
  '  -- The labels of the enum types whose values they keep (a row keeps the oid of its label).',
  `  PERFORM set_config('x402.down_watch_enums', (${enumTypesOf('holding')})::text, true);`,
  '  -- Large objects live outside every table the counters watch (lo_unlink removes them, lo_truncate',
  '  -- and lo_put change their pages).',
  `  PERFORM set_config('x402.down_watch_lo', (${LARGE_OBJECTS}), true);`,
  `  IF to_regclass(${literal(MIGRATION_HISTORY_TABLE)}) IS NOT NULL THEN`,
  `    EXECUTE 'SELECT coalesce(jsonb_agg(name), ''[]'') FROM ${MIGRATION_HISTORY_TABLE}' INTO recorded;`,
  '  END IF;',
  "  PERFORM set_config('x402.down_recorded', recorded::text, true);",
  'END',
  '$watch$',
].join('\n')

/**
 * What every transactional down runs once it is done, before COMMIT: a table that existed before
 * the down, whose rows the transaction deleted or changed since {@link DOWN_WATCH_SQL} or whose
 * storage it replaced (TRUNCATE, a rewrite), and that the guard did not back up whole (nor
 * counted empty), was destroyed unreported: it raises (SQLSTATE 5X402), which rolls the whole
 * down back, with or without the data-loss opt-in. In x402_migrations, only the module's own
 * writes of the down of `name` go: the deletion of its history record (the runner's, in the same
 * transaction), once, where the watch saw it and it is gone; and its record of what its up found
 * ({@link priorStateTable}), which its down reads and drops; with `historyUpdated`, that many
 * rows of the history changed (the rollback's mark, which the module writes itself); and the rows
 * of a table of x402_migrations that the down's own statements changed, as it declares them in
 * the transaction's setting `x402.down_own_updates` (006 renames the records of accepted
 * differences). Last, each
 * backup that a guard made in the transaction (`x402.backups_held`) must still be a permanent
 * ordinary table with no rule, and hold what was copied into it, counted and digested as it was
 * copied: one dropped, made UNLOGGED, turned into a view, given a rule, emptied (TRUNCATE of a
 * table made in the same transaction counts no row) or changed rolls it all back too. Before that,
 * a change since the watch to foreign data wrappers, servers, tables or user mappings
 * ({@link FOREIGN_CATALOGS}) rolls it back, whatever it was, its message saying `undone` of
 * what was undone (by default, that nothing was changed).
 */
export function downCheckSql(
  name: string,
  outcome = `Nothing was changed (it was rolled back). Keep ${name}, or roll back once nothing deletes, ` +
    'truncates or rewrites those tables with the down.',
  options: { historyUpdated?: number; undone?: string } = {},
): string {
  const undone = options.undone ?? 'Nothing was changed (it was rolled back).'
  const foreignMessage = literal(
    `Rolling back ${name} changed foreign servers, foreign tables or user mappings while it ran, through a ` +
      'trigger, a rule or an event trigger (%s): rows on another server can be deleted through them, where no ' +
      `counter of this one sees it. ${undone} postgres_fdw's transaction on the other server rolled back with ` +
      'it. Changing foreign servers, foreign tables or user mappings during a down is refused: keep ' +
      `${name}, or roll back once nothing changes them with the down (find the trigger or event trigger that does).`,
  )
  const message = [
    literal(
      `Rolling back ${name} deleted, changed or dropped data it did not report or back up, through a trigger, a rule or its own statements: `,
    ),
    "array_to_string(unreported, '; ')",
    literal(`. ${outcome}`),
  ].join(' ||\n      ')
  const body = [
    'DECLARE',
    "  watched jsonb := coalesce(nullif(current_setting('x402.down_watch', true), ''), '{}')::jsonb;",
    "  covered jsonb := coalesce(nullif(current_setting('x402.down_covered', true), ''), '[]')::jsonb;",
    "  recorded jsonb := coalesce(nullif(current_setting('x402.down_recorded', true), ''), '[]')::jsonb;",
    `  history oid := to_regclass(${literal(MIGRATION_HISTORY_TABLE)});`,
    "  types jsonb := coalesce(nullif(current_setting('x402.down_watch_types', true), ''), '{}')::jsonb;",
    "  enums jsonb := coalesce(nullif(current_setting('x402.down_watch_enums', true), ''), '{}')::jsonb;",
    "  lo text := coalesce(current_setting('x402.down_watch_lo', true), '');",
    '  forgotten int := 0;',
    `  marked bigint := ${Math.max(0, Math.trunc(options.historyUpdated ?? 0))};`,
    "  own jsonb := coalesce(nullif(current_setting('x402.down_own_updates', true), ''), '{}')::jsonb;",
    `  held jsonb := ${HELD};`,
    '  backup text;',
    '  digest text;',
    '  holds text;',
    '  unmade text;',
    "  unkept text[] := '{}';",
    '  unreported text[];',
    `  noted_foreign jsonb := coalesce(nullif(current_setting(${literal(NOTED_FOREIGN)}, true), ''), '{}')::jsonb;`,
    '  foreign_changed text;',
    'BEGIN',
    COUNTABLE,
    // A deferred trigger would fire at COMMIT, after this check: fired now, what it does is counted.
    '  SET CONSTRAINTS ALL IMMEDIATE;',
    `  IF recorded ? ${literal(name)} AND history IS NOT NULL THEN`,
    "    EXECUTE format('SELECT CASE WHEN EXISTS (SELECT FROM %s WHERE name = $1) THEN 0 ELSE 1 END', history::regclass)",
    `      INTO forgotten USING ${literal(name)};`,
    '  END IF;',
    "  covered := covered || (SELECT coalesce(jsonb_agg(w.k), '[]') FROM jsonb_each(watched) AS w(k, v)",
    `                          WHERE w.v ->> 4 = ${literal(priorStateTable(name))});`,
    '  SELECT array_agg(line ORDER BY k, line) INTO unreported FROM (',
    "    SELECT w.k, format('table %I.%I: %s', n.nspname, c.relname, array_to_string(array_remove(ARRAY[",
    "             CASE WHEN c.relfilenode::text <> w.v ->> 2 THEN 'truncated or rewritten' END,",
    '             CASE WHEN pg_stat_get_xact_tuples_deleted(c.oid) > o.deleted',
    "                  THEN (pg_stat_get_xact_tuples_deleted(c.oid) - o.deleted) || ' row(s) deleted' END,",
    '             CASE WHEN pg_stat_get_xact_tuples_updated(c.oid) > o.updated',
    "                  THEN (pg_stat_get_xact_tuples_updated(c.oid) - o.updated) || ' row(s) changed' END",
    "           ], NULL), ', ')) AS line",
    '      FROM jsonb_each(watched) AS w(k, v) JOIN pg_class c ON c.oid = w.k::oid',
    '      JOIN pg_namespace n ON n.oid = c.relnamespace',
    '      CROSS JOIN LATERAL (SELECT (w.v ->> 0)::bigint + CASE WHEN c.oid = history THEN forgotten ELSE 0 END AS deleted,',
    '                                 (w.v ->> 1)::bigint + CASE WHEN c.oid = history THEN marked ELSE 0 END',
    `                                   + CASE WHEN n.nspname = ${literal(MIGRATION_TABLE_SCHEMA)} THEN coalesce((own ->> w.k)::bigint, 0) ELSE 0 END AS updated) AS o`,
    '     WHERE NOT covered ? w.k',
    '       AND (c.relfilenode::text <> w.v ->> 2',
    '            OR pg_stat_get_xact_tuples_deleted(c.oid) > o.deleted',
    '            OR pg_stat_get_xact_tuples_updated(c.oid) > o.updated)',
    '    UNION ALL',
    '    -- Dropped (DROP TABLE, DROP SCHEMA … CASCADE) while it held rows: no counter shows it.',
    "    SELECT w.k, format('table %s: dropped, with its rows', w.v ->> 4)",
    '      FROM jsonb_each(watched) AS w(k, v)',
    '     WHERE NOT covered ? w.k AND (w.v ->> 3)::boolean AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = w.k::oid)',
    '    UNION ALL',
    '    -- A column dropped (DROP COLUMN, DROP TYPE … CASCADE) from a table that held rows.',
    "    SELECT w.k, format('column %s.%s: dropped, with its values', w.v ->> 4, a.value #>> '{}')",
    '      FROM jsonb_each(watched) AS w(k, v), jsonb_each(w.v -> 5) AS a(key, value)',
    "     WHERE NOT covered ? w.k AND NOT covered ? (w.k || ':' || a.key) AND (w.v ->> 3)::boolean",
    '       AND EXISTS (SELECT FROM pg_class c WHERE c.oid = w.k::oid)',
    '       AND NOT EXISTS (SELECT FROM pg_attribute p WHERE p.attrelid = w.k::oid AND p.attnum = a.key::int AND NOT p.attisdropped)',
    '    UNION ALL',
    '    -- An attribute of a composite type that the values of a table that held rows use, gone',
    '    -- (ALTER TYPE … DROP ATTRIBUTE … CASCADE) or of another type: each row loses that value.',
    "    SELECT y.k, format('attribute %s.%s of a composite type that %s use(s): %s, with its values', y.v ->> 0,",
    "             a.value ->> 0, (SELECT string_agg(coalesce(watched -> u.t ->> 4, u.t), ', ' ORDER BY u.t)",
    '                              FROM jsonb_array_elements_text(y.v -> 1) AS u(t)),',
    '             CASE WHEN EXISTS (SELECT FROM pg_attribute p WHERE p.attrelid = y.k::oid AND p.attnum = a.key::int',
    "                               AND NOT p.attisdropped) THEN 'type changed' ELSE 'dropped' END)",
    '      FROM jsonb_each(types) AS y(k, v), jsonb_each(y.v -> 2) AS a(key, value)',
    '     WHERE NOT covered @> (y.v -> 1) AND EXISTS (SELECT FROM pg_class c WHERE c.oid = y.k::oid)',
    '       AND NOT EXISTS (SELECT FROM pg_attribute p WHERE p.attrelid = y.k::oid AND p.attnum = a.key::int',
    '                       AND NOT p.attisdropped AND p.atttypid::text = a.value ->> 1)',
    '    UNION ALL',
    '    -- A label of an enum type whose values a table that held rows keeps, renamed (ALTER TYPE …',
    '    -- RENAME VALUE) or gone: each row that held it now reads another value, or none.',
    "    SELECT y.k, format('label %L of enum type %s that %s use(s): %s', l.label, y.v ->> 0,",
    "             (SELECT string_agg(coalesce(watched -> u.t ->> 4, u.t), ', ' ORDER BY u.t)",
    '                FROM jsonb_array_elements_text(y.v -> 1) AS u(t)),',
    "             CASE WHEN l.now IS NULL THEN 'gone, with the values of the rows that held it'",
    "                  ELSE format('renamed to %L, in every row that holds it', l.now) END)",
    '      FROM jsonb_each(enums) AS y(k, v),',
    '           LATERAL (SELECT j.label, (SELECT e.enumlabel FROM pg_enum e WHERE e.oid = j.id::oid AND e.enumtypid = y.k::oid) AS now',
    '                      FROM jsonb_each_text(y.v -> 2) AS j(id, label)) AS l',
    '     WHERE NOT covered @> (y.v -> 1) AND EXISTS (SELECT FROM pg_type t WHERE t.oid = y.k::oid)',
    '       AND l.now IS DISTINCT FROM l.label',
    '    UNION ALL',
    '    -- Large objects: fewer or other ones, or pages of their content deleted or overwritten.',
    "    SELECT '', line FROM (",
    "      SELECT split_part(lo, ':', 1)::bigint AS n0, split_part(lo, ':', 2) AS h0, split_part(lo, ':', 3)::bigint AS d0,",
    "             split_part(lo, ':', 4)::bigint AS u0, split_part(now, ':', 1)::bigint AS n1, split_part(now, ':', 2) AS h1,",
    "             split_part(now, ':', 3)::bigint AS d1, split_part(now, ':', 4)::bigint AS u1",
    `        FROM (${LARGE_OBJECTS}) AS c(now) WHERE lo <> '') AS l,`,
    "      LATERAL (VALUES (CASE WHEN l.n1 < l.n0 THEN format('large objects: %s removed', l.n0 - l.n1)",
    "                            WHEN l.h1 <> l.h0 THEN 'large objects: removed or replaced' END),",
    '                      (CASE WHEN l.d1 > l.d0 OR l.u1 > l.u0',
    "                            THEN format('large objects: content deleted or overwritten (%s page(s) deleted, %s changed)',",
    '                                        l.d1 - l.d0, l.u1 - l.u0) END)) AS x(line)',
    '     WHERE line IS NOT NULL',
    '  ) AS found;',
    '  -- Last: each backup made so far in the transaction holds what went into it (an event trigger',
    '  -- of the down can empty or drop a new table, and TRUNCATE of one counts no row).',
    ...unkeptBackupLines('held'),
    "  IF cardinality(unkept) > 0 THEN unreported := coalesce(unreported, '{}') || unkept; END IF;",
    '  -- Foreign servers, tables or user mappings changed since the watch: a read-only foreign table',
    '  -- made writable and back, or one made and dropped, around a delete through it that no counter',
    "  -- of this server sees. Rolled back here, postgres_fdw's remote transaction rolls back with it.",
    "  SELECT string_agg(format('%s: %s', n.key, concat_ws(', ', CASE WHEN d.ins > 0 THEN d.ins || ' row(s) added' END,",
    "           CASE WHEN d.upd > 0 THEN d.upd || ' row(s) changed' END, CASE WHEN d.del > 0 THEN d.del || ' row(s) removed' END)),",
    "           '; ' ORDER BY n.key)",
    '    INTO foreign_changed',
    `    FROM jsonb_each(${FOREIGN_CATALOGS.replaceAll('\n', '\n    ')}) AS n(key, value)`,
    '    CROSS JOIN LATERAL (SELECT (n.value ->> 0)::bigint - coalesce((noted_foreign -> n.key ->> 0)::bigint, 0) AS ins,',
    '                               (n.value ->> 1)::bigint - coalesce((noted_foreign -> n.key ->> 1)::bigint, 0) AS upd,',
    '                               (n.value ->> 2)::bigint - coalesce((noted_foreign -> n.key ->> 2)::bigint, 0) AS del) AS d',
    '   WHERE d.ins > 0 OR d.upd > 0 OR d.del > 0;',
    '  IF foreign_changed IS NOT NULL THEN',
    `    RAISE EXCEPTION USING ERRCODE = '${REFUSED}', MESSAGE = format(\n      ${foreignMessage}, foreign_changed);`,
    '  END IF;',
    '  IF cardinality(unreported) > 0 THEN',
    `    RAISE EXCEPTION USING ERRCODE = '${REFUSED}', MESSAGE =\n      ${message};`,
    '  END IF;',
    'END',
  ].join('\n')
  return [
    '-- Rolls it all back where the down deleted, changed, truncated, rewrote or dropped rows or values of a',
    '-- table that the guard did not back up: what no rehearsal foresaw (a trigger, a rule) is never committed.',
    'DO $check$',
    body,
    '$check$',
  ].join('\n')
}

/**
 * A dollar-quote tag `$<base>$` (or `$<base>_<n>$`) that `body` does not contain, so that no
 * name written into the body can end the quote.
 */
function dollarTag(base: string, body: string): string {
  for (let n = 0; ; n++) {
    const tag = n === 0 ? `$${base}$` : `$${base}_${n}$`
    if (!body.includes(tag)) return tag
  }
}

/**
 * Each table's `<migration number>_[<schema>_]<table>_`, to which the guard adds its UTC time:
 * within PostgreSQL's 63 bytes, the table part gives way, so that the time that sets two backups
 * apart is never cut off. Where the name is cut, or two tables would get the same name
 * (`s.t` and `public.s_t`), a short hash of the table's qualified name goes before the time.
 */
function backupPrefixes(name: string, tables: readonly CatalogTable[]): Map<number, string> {
  const number = name.split('_')[0]!
  const named = (table: CatalogTable) =>
    table.schema === 'public' ? table.table : `${table.schema}_${table.table}`
  const cut = (text: string, room: number) =>
    Buffer.from(text)
      .subarray(0, room)
      .toString()
      .replace(/\uFFFD+$/, '')
  const room = 63 - number.length - STAMP_LENGTH - 2
  const plain = new Map(tables.map((table) => [table.oid, cut(named(table), room)]))
  const taken = [...plain.values()]
  const prefixes = new Map<number, string>()
  for (const table of tables) {
    const kept = plain.get(table.oid)!
    const unique = kept === named(table) && taken.filter((other) => other === kept).length === 1
    if (unique) {
      prefixes.set(table.oid, `${number}_${kept}_`)
      continue
    }
    const hash = createHash('sha256')
      .update(`${table.schema}.${table.table}`)
      .digest('hex')
      .slice(0, 8)
    prefixes.set(table.oid, `${number}_${cut(named(table), room - hash.length - 1)}_${hash}_`)
  }
  return prefixes
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

/**
 * Guards a transactional `down` before it runs, in the run's transaction `trx`: rehearses it in a
 * savepoint and rolls the rehearsal back, learning from the catalog which tables and columns it
 * drops and which tables' storage it replaces (TRUNCATE, a rewrite) and, from the transaction's
 * row counters, which rows of any table it deletes or updates (the rows of other tables that
 * foreign keys delete or null with them included). Then it runs {@link downGuardSql}'s block,
 * the one that `migrate:sql` exports, with `x402.allow_data_loss` set from `allowDataLoss`: it
 * throws {@link DataLossRefusal} where the down would destroy data, or, with the opt-in, returns
 * the names of the backups it made. {@link DOWN_WATCH_SQL} runs before that block, whose backups
 * are DDL that can fire event triggers: run {@link checkDown} once the down is done.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await guardDown(trx, '002_add_claude_integration', migration, { allowDataLoss: false })
 *   await migration.down!(trx)
 *   await checkDown(trx, '002_add_claude_integration')
 * })
 * ```
 */
export async function guardDown(
  trx: Kysely<any>,
  name: string,
  migration: Migration,
  options: { allowDataLoss: boolean },
): Promise<string[]> {
  if (!migration.down) return []
  // The guard's literals double quotes only: a backslash in a name must stay a backslash.
  await sql`SET LOCAL standard_conforming_strings = on`.execute(trx)
  await sql`SAVEPOINT x402_down_rehearsal`.execute(trx)
  let losses: Loss[]
  try {
    // Compared on the server: the down's locks are held (008's ACCESS EXCLUSIVE on x402_resources),
    // and a client stopped while reading a large result would keep them (review revg F6).
    await noteCatalog(trx, 'transaction')
    await migration.down(trx)
    losses = await catalogLosses(trx)
  } finally {
    await sql`ROLLBACK TO SAVEPOINT x402_down_rehearsal`.execute(trx)
    await sql`RELEASE SAVEPOINT x402_down_rehearsal`.execute(trx)
  }
  await sql`SET LOCAL x402.allow_data_loss = ${sql.lit(options.allowDataLoss ? 'on' : 'off')}`.execute(
    trx,
  )
  // Cleared first: the block leaves them alone where nothing holds data, and an earlier down of
  // the same transaction may have set them.
  await sql`SET LOCAL x402.backups = '[]'`.execute(trx)
  await sql`SET LOCAL x402.down_covered = '[]'`.execute(trx)
  const guard = downGuardSql(name, losses, { transactional: true })
  // Before the guard's block: the backups it makes are DDL, whose event triggers are watched too.
  await sql.raw(DOWN_WATCH_SQL).execute(trx)
  if (guard) await refusing(trx, guard)
  const { rows } = await sql<{
    backups: string
  }>`SELECT current_setting('x402.backups') AS backups`.execute(trx)
  return JSON.parse(rows[0]!.backups) as string[]
}

/**
 * Once a transactional `down` guarded by {@link guardDown} is done, in the same transaction:
 * throws {@link DataLossRefusal}, so that the transaction rolls back, where the down deleted,
 * changed, truncated or rewrote rows of a table that the guard did not back up (see
 * {@link downCheckSql}).
 */
export async function checkDown(
  trx: Kysely<any>,
  name: string,
  outcome?: string,
  options?: { historyUpdated?: number; undone?: string },
): Promise<void> {
  await refusing(trx, downCheckSql(name, outcome, options))
}

async function refusing(trx: Kysely<any>, block: string): Promise<void> {
  try {
    await sql.raw(block).execute(trx)
  } catch (error) {
    if (errorCode(error) !== REFUSED) throw error
    // The block's own words, which the exported script shows too, not QueryError's wrapping of them.
    const raised = error instanceof QueryError && error.cause instanceof Error ? error.cause : error
    throw new DataLossRefusal((raised as Error).message, { cause: error })
  }
}

/** Rows that a non-transactional `down` deletes: a table, and which of its rows. */
export interface DeletedRows {
  table: string
  where: string
}

/**
 * Refuses, before a non-transactional `down` that deletes `deleted` begins, when rows of other
 * tables reference those rows through a foreign key (found in pg_constraint now, whoever made
 * the table): ON DELETE CASCADE would delete them and SET NULL or SET DEFAULT change them, unseen
 * and without a backup; NO ACTION or RESTRICT would fail the down half way. The module does not
 * own those tables and does not change them, with or without the data-loss opt-in.
 *
 * Reading them runs no code of others with the session's power (review revf F1): it first refuses
 * (42501) a referencing table of a role a lesser login can act as, or a key column whose type is
 * not the referenced column's (the comparison would run a cast function), see
 * {@link referencingCodeSql}; and it counts in a transaction of its own with row_security off,
 * where PostgreSQL errors rather than run a policy, which it turns into a refusal too.
 *
 * @example
 * ```ts
 * await refuseReferencedRows(connection, '005_add_openrouter_integration', [
 *   { table: 'public.x402_resources', where: "resource_type = 'openrouter_instant'" },
 * ])
 * ```
 */
export async function refuseReferencedRows(
  db: Kysely<any>,
  name: string,
  deleted: readonly DeletedRows[],
): Promise<void> {
  if (deleted.length === 0) return
  const lines: string[] = []
  await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL row_security = off`.execute(trx)
    await sql
      .raw(
        referencingCodeSql(
          name,
          deleted.map(({ table }) => table),
        ),
      )
      .execute(trx)
    for (const { table, where } of deleted) {
      const { rows: keys } = await sql<{
        referencing: string
        columns: string[]
        referenced: string[]
        action: string
      }>`
        SELECT conrelid::regclass::text AS referencing,
               array(SELECT format('%I', attname) FROM unnest(conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute ON attrelid = conrelid AND attnum = k.n ORDER BY k.i) AS columns,
               array(SELECT format('%I', attname) FROM unnest(confkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute ON attrelid = confrelid AND attnum = k.n ORDER BY k.i) AS referenced,
               CASE confdeltype WHEN 'c' THEN 'ON DELETE CASCADE: rows deleted' WHEN 'n' THEN 'ON DELETE SET NULL: links set to null'
                                WHEN 'd' THEN 'ON DELETE SET DEFAULT: links changed' ELSE 'ON DELETE NO ACTION: the rollback would fail' END AS action
        FROM pg_constraint WHERE contype = 'f' AND confrelid = to_regclass(${table}) AND conrelid <> confrelid
        ORDER BY 1
      `.execute(trx)
      for (const key of keys) {
        const matches = key.columns
          .map((column, i) => `r.${column} = d.${key.referenced[i]}`)
          .join(' AND ')
        const count = await countRows(
          trx,
          sql`SELECT count(*) AS n FROM ${sql.raw(key.referencing)} r WHERE EXISTS (SELECT FROM ${sql.raw(table)} d WHERE (${sql.raw(where)}) AND ${sql.raw(matches)})`,
        ).catch((error: unknown) => {
          // row_security off: where a policy would apply, PostgreSQL refuses instead of running it.
          if (errorCode(error) !== REFERENCING_CODE_STATE) throw error
          const reason =
            error instanceof QueryError && error.cause instanceof Error ? error.cause : error
          throw Object.assign(
            new Error(
              `Rolling back ${name} first counts the rows of ${key.referencing} that reference the rows it deletes, and ` +
                `PostgreSQL refused to count them without running its row level security policies (${(reason as Error).message}), ` +
                "which would run with this session's power and hide rows from the count. Nothing was changed. " +
                `Run the rollback as a role that owns ${key.referencing}, or as one that already bypasses row level ` +
                "security (Supabase's postgres does); do not grant that right for this.",
              { cause: error },
            ),
            { code: REFERENCING_CODE_STATE },
          )
        })
        if (count > 0)
          lines.push(`${key.referencing} (${key.action}): ${count} row(s) referencing ${table}`)
      }
    }
  })
  if (lines.length === 0) return
  throw new DataLossRefusal(
    `Rolling back ${name} would change rows of tables that reference the rows it deletes: ${lines.join('; ')}. ` +
      `Nothing was changed. The module does not change tables it does not own, even with --allow-data-loss: keep ${name}, ` +
      'or roll back once no row of another table references the rows named.',
  )
}

/** SQLSTATE of {@link referencingCodeSql}'s refusal: insufficient_privilege, as the lesser checks'. */
const REFERENCING_CODE_STATE = '42501'

/**
 * One `DO` block that raises {@link REFERENCING_CODE_STATE}, naming each cause, where counting
 * the rows that reference `tables` (qualified names) through a foreign key would run code of
 * others with the session's power: a referencing table owned by a role that a lesser login can
 * act as (LESSER_LOGIN_ROLES_SQL, the rule of lesserTriggersSql: its row level security and
 * whatever it may change on it later are its code), and a key column of another type than the
 * column it references (`r.col = d.id` would run a cast, a lesser login's own where the type is).
 */
function referencingCodeSql(name: string, tables: readonly string[]): string {
  return `DO $referencing$
DECLARE
  found pg_catalog.text;
  ${CATALOG_CHECK_DECLARE}
BEGIN
  ${CATALOG_CHECK_BEGIN}
  WITH lesser_roles AS (${LESSER_LOGIN_ROLES_SQL}),
  keys AS (
    SELECT k.* FROM pg_constraint k
     WHERE k.contype = 'f' AND k.conrelid <> k.confrelid
       AND k.confrelid IN (SELECT to_regclass(t) FROM unnest(ARRAY[${tables.map(literal).join(', ')}]::text[]) AS t)
  )
  SELECT string_agg(problem, '; ' ORDER BY problem) INTO found FROM (
    SELECT DISTINCT format('table %s is owned by %s', c.oid::regclass, pg_get_userbyid(c.relowner)) AS problem
      FROM keys k JOIN pg_class c ON c.oid = k.conrelid
     WHERE c.relowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    SELECT format('column %I of %s is of type %s, not %s as %s.%I', a.attname, k.conrelid::regclass, a.atttypid::regtype,
                  f.atttypid::regtype, k.confrelid::regclass, f.attname)
      FROM keys k CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(col, ref)
      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.col
      JOIN pg_attribute f ON f.attrelid = k.confrelid AND f.attnum = u.ref
     WHERE a.atttypid <> f.atttypid
  ) AS problems;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '${REFERENCING_CODE_STATE}', MESSAGE = pg_catalog.format(
      'Rolling back %s first counts the rows of the tables that reference the rows it deletes, and reading them would run '
      'code of others with the power of role %s: %s. Nothing was changed. A table that references them must be owned by a '
      'role that no lesser login can act as, and each key column must be of the type of the column it references (no '
      'cast runs). Find out who made each; where it is your own, give it to a role that can act as %s (ALTER TABLE … '
      'OWNER TO) or make its column of that type (ALTER TABLE … ALTER COLUMN … TYPE); otherwise have the foreign key '
      'dropped, then roll back again.',
      ${literal(name)}, session_user, found, session_user);
  END IF;
  PERFORM pg_catalog.set_config('search_path', saved, true);
END
$referencing$`
}

async function countRows(db: Kysely<any>, query: ReturnType<typeof sql>): Promise<number> {
  const { rows } = await (query as ReturnType<typeof sql<{ n: string }>>).execute(db)
  return Number(rows[0]!.n)
}
