import { type Kysely, type RawBuilder, sql } from 'kysely'

import { listAccessSchemas } from './access-schemas.js'
import { ACCESS_USERS } from './access-users.js'

interface Column {
  name: string
  type: string
  typeName: string
  category: string
  notNull: boolean
  hasDefault: boolean
}

/**
 * Gives every empty table of the measured schemas two rows (user A's and user B's where it has
 * a `user_id` column, or a foreign key to auth.users), each in a transaction of its own, a table
 * after those its foreign keys point at; a CHECK that lists a column's allowed values gives the
 * first. A table whose columns this cannot fill (a foreign key of several columns, a type
 * without a made-up value, another CHECK the made-up values break) stays empty; the access
 * matrix then names it `not seeded`, with the reason.
 *
 * @example
 * ```ts
 * await seedEmptyTables(db)
 * ```
 */
export async function seedEmptyTables(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ schema: string; name: string }>`
    SELECT n.nspname AS schema, c.relname AS name
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY (${await listAccessSchemas(db)}::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2
  `.execute(db)
  // Again while a pass seeds something: a table whose foreign key points at another empty
  // table is seeded once that one has rows.
  let pending = rows
  while (pending.length > 0) {
    const left: typeof rows = []
    for (const table of pending) {
      const { rows: any } =
        await sql`SELECT 1 FROM ${sql.id(table.schema, table.name)} LIMIT 1`.execute(db)
      if (any.length > 0) continue
      await db
        .transaction()
        .execute((trx) => seedTableGenerically(trx, table.schema, table.name))
        .catch(() => {
          // Left empty on purpose: measureAccess reports why, on the table's own lines.
          left.push(table)
        })
    }
    if (left.length === pending.length) break
    pending = left
  }
}

/**
 * Inserts two made-up rows into `schema.name`: `user_id` A and B, and for every other column
 * without a default a value of its type that differs between the rows. Throws, saying which
 * column, where it cannot.
 *
 * @example
 * ```ts
 * await db.transaction().execute((trx) => seedTableGenerically(trx, 'public', 'x402_new'))
 * ```
 */
export async function seedTableGenerically(
  db: Kysely<any>,
  schema: string,
  name: string,
): Promise<void> {
  const table = sql.id(schema, name)
  const { rows: columns } = await sql<Column>`
    SELECT a.attname::text AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, t.typname::text AS "typeName",
           t.typcategory::text AS category, a.attnotnull AS "notNull", (a.atthasdef OR a.attidentity <> '') AS "hasDefault"
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = ${`${quoteIdent(schema)}.${quoteIdent(name)}`}::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
    ORDER BY a.attnum
  `.execute(db)
  // A column that alone is a foreign key takes a row of the table it points at: the access
  // user's own row of auth.users, else the first and second rows there.
  const { rows: keys } = await sql<{
    column: string
    target: string
    authUsers: boolean
    to: string
  }>`
    SELECT a.attname::text AS "column", format('%I.%I', n.nspname, c.relname) AS target,
           (n.nspname = 'auth' AND c.relname = 'users' AND r.attname = 'id') AS "authUsers", r.attname::text AS "to"
    FROM pg_catalog.pg_constraint k
    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
    JOIN pg_catalog.pg_class c ON c.oid = k.confrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute r ON r.attrelid = k.confrelid AND r.attnum = k.confkey[1]
    WHERE k.conrelid = ${`${quoteIdent(schema)}.${quoteIdent(name)}`}::regclass AND k.contype = 'f'
      AND cardinality(k.conkey) = 1
  `.execute(db)
  const foreign = new Map(keys.map((key) => [key.column, key]))
  // A CHECK that lists a column's allowed values (`status = ANY (ARRAY['queued'::text, …])`, as
  // the server deparses `IN (…)`): the first of them.
  const { rows: allowed } = await sql<{ column: string; value: string }>`
    SELECT a.attname::text AS "column",
           replace(substring(pg_catalog.pg_get_constraintdef(k.oid) FROM 'ARRAY\\[''((?:[^'']|'''')*)'''), '''''', '''') AS value
    FROM pg_catalog.pg_constraint k
    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
    WHERE k.conrelid = ${`${quoteIdent(schema)}.${quoteIdent(name)}`}::regclass AND k.contype = 'c'
      AND cardinality(k.conkey) = 1 AND pg_catalog.pg_get_constraintdef(k.oid) ~ '= ANY \\(\\(?ARRAY\\['''
  `.execute(db)
  const allowedValue = new Map(allowed.map(({ column, value }) => [column, value]))
  for (const [index, owner] of [ACCESS_USERS.A, ACCESS_USERS.B].entries()) {
    const filled = columns.flatMap((column) => {
      const key = foreign.get(column.name)
      const value =
        column.name === 'user_id' || key?.authUsers
          ? sql`${owner}`
          : key
            ? sql`(SELECT ${sql.id(key.to)} FROM ${sql.raw(key.target)} ORDER BY 1 OFFSET ${sql.lit(index)} LIMIT 1)`
            : allowedValue.has(column.name) && !column.hasDefault
              ? allowedValue.get(column.name)
              : madeUpValue(column, index + 1)
      if (value) return [{ column, value: sql`${value}::${sql.raw(column.type)}` }]
      if (column.notNull && !column.hasDefault) {
        throw new Error(
          `no value can be made up for ${schema}.${name}.${column.name} (${column.type})`,
        )
      }
      return []
    })
    try {
      await (
        filled.length === 0
          ? sql`INSERT INTO ${table} DEFAULT VALUES`
          : sql`INSERT INTO ${table} (${sql.join(filled.map(({ column }) => sql.id(column.name)))}) VALUES (${sql.join(filled.map(({ value }) => value))})`
      ).execute(db)
    } catch (error) {
      // The server's own words, without the advice meant for the app's callers.
      const reason =
        error instanceof Error && error.cause instanceof Error
          ? error.cause.message
          : (error as Error).message
      throw new Error(`made-up rows for ${schema}.${name} were refused: ${reason}`, {
        cause: error,
      })
    }
  }
}

/** A value of the column's type, different for rows 1 and 2; undefined where none is made up. */
function madeUpValue(column: Column, row: number): RawBuilder<unknown> | string | undefined {
  if (column.hasDefault) return undefined
  if (column.typeName === 'uuid') return `00000000-0000-4000-8000-00000000000${row}`
  if (column.typeName === 'json' || column.typeName === 'jsonb')
    return JSON.stringify({ seed: row })
  switch (column.category) {
    case 'N':
      return String(row)
    case 'S':
      return `seed ${row}`
    case 'B':
      return row === 1 ? 'true' : 'false'
    case 'D':
      return `2026-01-0${row}`
    case 'A':
      return '{}'
    case 'E':
      return sql`(pg_catalog.enum_range(NULL::${sql.raw(column.type)}))[1]`
    default:
      return undefined
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}
