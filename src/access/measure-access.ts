import { type Kysely, sql, type Transaction } from 'kysely'

import { errorCode, SQLSTATE } from '../connection/sql-state.js'
import { enterRequest, type Requester } from '../supabase/request-context.js'
import { ACCESS_USERS } from './access-fixtures.js'

/** The schemas the module owns or creates, whose every object the access matrix covers. */
export const ACCESS_SCHEMAS = ['public', 'x402_migrations', 'x402_backup'] as const

export type AccessOperation = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE' | 'EXECUTE'

/**
 * One line of the access matrix: what each API role may do with one operation on one object.
 * A cell of a relation is `all rows`, `own rows only` or `none` (anything else is spelled out);
 * of a sequence or function, `allowed` or `none`.
 */
export interface AccessEntry {
  schema: string
  object: string
  /** `table (RLS on)`, `view`, `sequence`, `function`, … */
  kind: string
  operation: AccessOperation
  anon: string
  authenticated: string
  service_role: string
}

interface Relation {
  schema: string
  name: string
  relkind: string
  rls: boolean
  hasOwner: boolean
  firstColumn: string
}

interface SeedRow {
  row: string
  owner: string | null
}

const ANON: Requester = { role: 'anon' }
const USER_A: Requester = { role: 'authenticated', sub: ACCESS_USERS.A }
const USER_B: Requester = { role: 'authenticated', sub: ACCESS_USERS.B }
const SERVICE: Requester = { role: 'service_role' }

const RELATION_KINDS: Record<string, { kind: string; operations: AccessOperation[] }> = {
  r: { kind: 'table', operations: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
  p: { kind: 'partitioned table', operations: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
  v: { kind: 'view', operations: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
  m: { kind: 'materialized view', operations: ['SELECT'] },
  f: { kind: 'foreign table', operations: ['SELECT'] },
  S: { kind: 'sequence', operations: ['SELECT', 'UPDATE'] },
}

/**
 * Measures, by acting as each API role the way PostgREST does ({@link enterRequest}: the JWT's
 * claims and `SET LOCAL ROLE`), what anon, the signed-in users A and B, and service_role may do
 * with every table, view, sequence and function of {@link ACCESS_SCHEMAS}. Each attempt runs in
 * a transaction that is rolled back, on the rows that {@link seedAccessFixtures} put there: a
 * refusal (permission denied, or row level security) and a write that reaches no row both count
 * as not allowed. The database user must be able to switch to the roles (a superuser can).
 *
 * A row belongs to the user in its `user_id` column. `own rows only` means that A reached A's
 * rows and not B's, and B reached B's and not A's: as the row's owner allowed, as another user
 * not.
 *
 * @example
 * ```ts
 * await seedAccessFixtures(db)
 * const entries = await measureAccess(db)
 * ```
 */
export async function measureAccess(db: Kysely<any>): Promise<AccessEntry[]> {
  const entries: AccessEntry[] = []
  for (const relation of await listRelations(db)) {
    const { kind, operations } = RELATION_KINDS[relation.relkind]!
    const label = relation.relkind === 'r' || relation.relkind === 'p' ? `${kind} (RLS ${relation.rls ? 'on' : 'off'})` : kind
    if (relation.relkind === 'S') {
      for (const operation of operations) {
        const statement =
          operation === 'SELECT'
            ? sql`SELECT last_value FROM ${sql.id(relation.schema, relation.name)}`
            : sql`SELECT nextval(${`${quoteIdent(relation.schema)}.${quoteIdent(relation.name)}`}::regclass)`
        entries.push({ schema: relation.schema, object: relation.name, kind: label, operation, ...(await allowedCells(db, statement)) })
      }
      continue
    }
    const rows = await seedRows(db, relation)
    for (const operation of operations) {
      const reached = async (requester: Requester) => reachedRows(db, relation, rows, operation, requester)
      entries.push({
        schema: relation.schema,
        object: relation.name,
        kind: label,
        operation,
        anon: rowsCell(await reached(ANON), rows.length),
        authenticated: authenticatedCell(await reached(USER_A), await reached(USER_B), rows),
        service_role: rowsCell(await reached(SERVICE), rows.length),
      })
    }
  }
  for (const fn of await listFunctions(db)) {
    entries.push({ schema: fn.schema, object: fn.name, kind: 'function', operation: 'EXECUTE', ...(await allowedCells(db, sql.raw(fn.call))) })
  }
  return entries
}

async function listRelations(db: Kysely<any>): Promise<Relation[]> {
  const { rows } = await sql<Relation>`
    SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind, c.relrowsecurity AS rls,
           EXISTS (SELECT FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped) AS "hasOwner",
           (SELECT a.attname::text FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1) AS "firstColumn"
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY (${[...ACCESS_SCHEMAS]}::text[])
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND NOT c.relispartition
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY array_position(${[...ACCESS_SCHEMAS]}::text[], n.nspname::text), c.relname
  `.execute(db)
  return rows
}

async function listFunctions(db: Kysely<any>): Promise<Array<{ schema: string; name: string; call: string }>> {
  // Called with typed NULLs: what is measured is whether the role may call it at all. A trigger
  // function then fails with "can only be called as triggers", which comes after the privilege check.
  const { rows } = await sql<{ schema: string; name: string; call: string }>`
    SELECT n.nspname AS schema,
           p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS name,
           format('%s %I.%I(%s)', CASE p.prokind WHEN 'p' THEN 'CALL' ELSE 'SELECT' END, n.nspname, p.proname,
                  (SELECT string_agg('NULL::' || pg_catalog.format_type(t.type, NULL), ', ' ORDER BY t.position)
                   FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t(type, position))) AS call
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = ANY (${[...ACCESS_SCHEMAS]}::text[])
      AND p.prokind IN ('f', 'p')
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    ORDER BY array_position(${[...ACCESS_SCHEMAS]}::text[], n.nspname::text), 2
  `.execute(db)
  return rows
}

async function seedRows(db: Kysely<any>, relation: Relation): Promise<SeedRow[]> {
  const owner = relation.hasOwner ? sql`t.user_id::text` : sql`NULL::text`
  const { rows } = await sql<SeedRow>`
    SELECT to_jsonb(t)::text AS row, ${owner} AS owner FROM ${sql.id(relation.schema, relation.name)} AS t ORDER BY 1
  `.execute(db)
  if (rows.length === 0) {
    throw new Error(
      `${relation.schema}.${relation.name} has no rows to measure access on: seed it in src/access/access-fixtures.ts ` +
        "(one row for each of the users A and B where it has a user_id column, otherwise two rows).",
    )
  }
  return rows
}

/** The indexes of the seed rows that `requester` reached with `operation`. */
async function reachedRows(
  db: Kysely<any>,
  relation: Relation,
  rows: SeedRow[],
  operation: AccessOperation,
  requester: Requester,
): Promise<Set<number>> {
  const table = sql.id(relation.schema, relation.name)
  const reached = new Set<number>()
  await rolledBack(db, async (trx) => {
    // An empty table to insert the seed rows into again, unchanged: no key or constraint clashes.
    if (operation === 'INSERT') await sql`DELETE FROM ${table}`.execute(trx)
    await enterRequest(trx, requester)
    if (operation === 'SELECT') {
      const visible = await attempt(trx, relation, operation, requester, () =>
        sql<{ row: string }>`SELECT to_jsonb(t)::text AS row FROM ${table} AS t`.execute(trx),
      )
      for (const { row } of visible && 'rows' in visible ? visible.rows : []) {
        const index = rows.findIndex((seed) => seed.row === row)
        if (index >= 0) reached.add(index)
      }
      return
    }
    for (const [index, { row }] of rows.entries()) {
      const column = sql.id(relation.firstColumn)
      const statement =
        operation === 'INSERT'
          ? sql`INSERT INTO ${table} SELECT * FROM jsonb_populate_record(NULL::${table}, ${row}::jsonb)`
          : operation === 'UPDATE'
            ? sql`UPDATE ${table} AS t SET ${column} = t.${column} WHERE to_jsonb(t)::text = ${row}`
            : sql`DELETE FROM ${table} AS t WHERE to_jsonb(t)::text = ${row}`
      await sql`SAVEPOINT access_attempt`.execute(trx)
      const result = await attempt(trx, relation, operation, requester, () => statement.execute(trx))
      if (result === undefined || !('rows' in result)) await sql`ROLLBACK TO SAVEPOINT access_attempt`.execute(trx)
      if (result !== undefined && Number(result.numAffectedRows ?? 0) > 0) reached.add(index)
    }
  })
  return reached
}

/**
 * Runs `statement`; undefined where the role was refused. On a view, a write that the view's
 * table refuses for its constraints (a view that leaves out a NOT NULL column, say) got past
 * every privilege and policy: it counts as one row reached. Any other failure is a fault of the
 * fixtures.
 */
async function attempt<T>(
  trx: Transaction<any>,
  relation: Relation,
  operation: AccessOperation,
  requester: Requester,
  statement: () => Promise<T>,
): Promise<T | { numAffectedRows: bigint } | undefined> {
  try {
    return await statement()
  } catch (error) {
    const code = errorCode(error)
    if (code === SQLSTATE.insufficientPrivilege) return undefined
    if (relation.relkind === 'v' && code?.startsWith('23')) return { numAffectedRows: 1n }
    throw new Error(
      `Measuring ${operation} on ${relation.schema}.${relation.name} as ${describe(requester)} failed: ${(error as Error).message}. ` +
        'Only a refusal is an answer; fix the rows of src/access/access-fixtures.ts so that the attempt can succeed where it is allowed.',
      { cause: error },
    )
  }
}

async function allowedCells(db: Kysely<any>, statement: { execute(db: Kysely<any>): Promise<unknown> }) {
  const allowed = async (requester: Requester) => {
    let outcome = false
    await rolledBack(db, async (trx) => {
      await enterRequest(trx, requester)
      try {
        await statement.execute(trx)
        outcome = true
      } catch (error) {
        // Anything but a refusal means the role got past the privilege check.
        outcome = errorCode(error) !== SQLSTATE.insufficientPrivilege
      }
    })
    return outcome ? 'allowed' : 'none'
  }
  const [a, b] = [await allowed(USER_A), await allowed(USER_B)]
  return {
    anon: await allowed(ANON),
    authenticated: a === b ? a : `user A: ${a}, user B: ${b}`,
    service_role: await allowed(SERVICE),
  }
}

const ROLL_BACK = Symbol('roll back')

async function rolledBack(db: Kysely<any>, use: (trx: Transaction<any>) => Promise<void>): Promise<void> {
  await db
    .transaction()
    .execute(async (trx) => {
      await use(trx)
      throw ROLL_BACK
    })
    .catch((error: unknown) => {
      if (error !== ROLL_BACK) throw error
    })
}

function rowsCell(reached: Set<number>, total: number): string {
  if (reached.size === total) return 'all rows'
  if (reached.size === 0) return 'none'
  return `${reached.size} of ${total} rows`
}

function authenticatedCell(byA: Set<number>, byB: Set<number>, rows: SeedRow[]): string {
  const ownedBy = (user: string) => new Set(rows.flatMap((row, index) => (row.owner === user ? [index] : [])))
  const same = (left: Set<number>, right: Set<number>) => left.size === right.size && [...left].every((index) => right.has(index))
  const ownA = ownedBy(ACCESS_USERS.A)
  const ownB = ownedBy(ACCESS_USERS.B)
  if (byA.size === rows.length && byB.size === rows.length) return 'all rows'
  if (byA.size === 0 && byB.size === 0) return 'none'
  if (ownA.size > 0 && ownB.size > 0 && same(byA, ownA) && same(byB, ownB)) return 'own rows only'
  const describeReach = (reached: Set<number>, own: Set<number>) =>
    `${[...reached].filter((index) => own.has(index)).length} own and ${[...reached].filter((index) => !own.has(index)).length} other of ${rows.length} rows`
  return `user A: ${describeReach(byA, ownA)}; user B: ${describeReach(byB, ownB)}`
}

function describe(requester: Requester): string {
  return 'sub' in requester && requester.sub ? `${requester.role} (${requester.sub})` : requester.role
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}
