import { type Kysely, sql, type Transaction } from 'kysely'

import { lesserTriggersSql } from '../connection/lesser-triggers.js'
import { errorCode, SQLSTATE } from '../connection/sql-state.js'
import { enterRequest, type Requester } from '../supabase/request-context.js'
import { ACCESS_SCHEMAS, listAccessSchemas } from './access-schemas.js'
import { ACCESS_USERS } from './access-users.js'
import { seedTableGenerically } from './generic-seed.js'

export { ACCESS_SCHEMAS } from './access-schemas.js'

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
  oid: string
}

interface SeedRow {
  row: string
  owner: string | null
}

/** A requester and the rest of the claims its JWT carries. */
interface Actor {
  requester: Requester
  claims: Record<string, unknown>
  /** The user it is signed in as, and the other user. */
  user?: string
  other?: string
}

// As Supabase's tokens carry them: the API keys' (anon, service_role), and a signed-in user's
// from Supabase Auth, so that a policy on any of their claims is measured as it would act.
const ISSUED = { iat: 1767225600, exp: 4102444800 }
const ANON: Actor = {
  requester: { role: 'anon' },
  claims: { iss: 'supabase', ref: 'x402-jobs', ...ISSUED },
}
const SERVICE: Actor = {
  requester: { role: 'service_role' },
  claims: { iss: 'supabase', ref: 'x402-jobs', ...ISSUED },
}
const USER_A = signedIn('A', 'B')
const USER_B = signedIn('B', 'A')

function signedIn(name: 'A' | 'B', other: 'A' | 'B'): Actor {
  const sub = ACCESS_USERS[name]
  return {
    requester: { role: 'authenticated', sub },
    claims: {
      iss: 'https://x402-jobs.supabase.co/auth/v1',
      aud: 'authenticated',
      ...ISSUED,
      email: `user-${name.toLowerCase()}@example.test`,
      phone: '',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: { email_verified: true },
      aal: 'aal1',
      amr: [{ method: 'password', timestamp: ISSUED.iat }],
      session_id: `${sub.slice(0, -4)}5e55`,
      is_anonymous: false,
    },
    user: sub,
    other: ACCESS_USERS[other],
  }
}

const RELATION_KINDS: Record<string, { kind: string; operations: AccessOperation[] }> = {
  r: { kind: 'table', operations: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
  p: { kind: 'partitioned table', operations: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
  v: { kind: 'view', operations: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
  m: { kind: 'materialized view', operations: ['SELECT'] },
  f: { kind: 'foreign table', operations: ['SELECT'] },
  S: { kind: 'sequence', operations: ['SELECT', 'UPDATE'] },
}

/** Options of {@link measureAccess}. */
export interface MeasureAccessOptions {
  /**
   * At most this many rows of each owner (user A, user B, anyone else) stand for a table: on a
   * database with production's data, where trying every row as every role would take minutes.
   * A cell then says what the role reached of those rows. All rows where unset.
   */
  rowsPerOwner?: number
  /** Only these relations (`schema.name`), and every function; all of them where unset. */
  relations?: readonly string[]
}

/**
 * Measures, by acting as each API role the way PostgREST does ({@link enterRequest}: the JWT's
 * claims and `SET LOCAL ROLE`), what anon, the signed-in users A and B, and service_role may do
 * with every table, view, sequence and function of {@link listAccessSchemas}. Each attempt runs
 * in a transaction that is rolled back, on the rows that {@link seedAccessFixtures} put there: a
 * refusal (permission denied, or row level security) and a write that reaches no row both count
 * as not allowed; a table without rows gets `not seeded: <reason>`. The database user must be a
 * superuser: it switches to the roles, and adds a trigger (rolled back) to aim writes at one row.
 * So it first refuses (42501, touching nothing) where those schemas hold code that a lesser
 * login may change ({@link refuseLesserCode}): a scratch database the module made has none.
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
export async function measureAccess(
  db: Kysely<any>,
  options: MeasureAccessOptions = {},
): Promise<AccessEntry[]> {
  const entries: AccessEntry[] = []
  const schemas = await refuseLesserCode(db)
  const relations = (await listRelations(db, schemas)).filter(
    (relation) =>
      options.relations === undefined ||
      options.relations.includes(`${relation.schema}.${relation.name}`),
  )
  const columns = await listColumns(db, relations)
  for (const relation of relations) {
    const { kind, operations } = RELATION_KINDS[relation.relkind]!
    const label =
      relation.relkind === 'r' || relation.relkind === 'p'
        ? `${kind} (RLS ${relation.rls ? 'on' : 'off'})`
        : kind
    if (relation.relkind === 'S') {
      for (const operation of operations) {
        const statement =
          operation === 'SELECT'
            ? sql`SELECT last_value FROM ${sql.id(relation.schema, relation.name)}`
            : sql`SELECT nextval(${`${quoteIdent(relation.schema)}.${quoteIdent(relation.name)}`}::regclass)`
        entries.push({
          schema: relation.schema,
          object: relation.name,
          kind: label,
          operation,
          ...(await allowedCells(db, statement)),
        })
      }
      continue
    }
    const rows = await seedRows(db, relation, options.rowsPerOwner)
    if (rows.length === 0) {
      // Still a line per operation, so that the object shows in the diff for review.
      const reason = `not seeded: ${await whyNotSeeded(db, relation)}`.replaceAll('|', '/')
      for (const operation of operations) {
        entries.push({
          schema: relation.schema,
          object: relation.name,
          kind: label,
          operation,
          anon: reason,
          authenticated: 'not seeded',
          service_role: 'not seeded',
        })
      }
      continue
    }
    for (const operation of operations) {
      const [anon, userA, userB, service] = await reachedByEach(
        db,
        relation,
        columns.get(relation.oid) ?? [],
        rows,
        operation,
        [ANON, USER_A, USER_B, SERVICE],
      )
      entries.push({
        schema: relation.schema,
        object: relation.name,
        kind: label,
        operation,
        anon: rowsCell(anon!, rows.length),
        authenticated: authenticatedCell(userA!, userB!, rows),
        service_role: rowsCell(service!, rows.length),
      })
    }
  }
  for (const fn of await listFunctions(db, schemas)) {
    entries.push({
      schema: fn.schema,
      object: fn.name,
      kind: 'function',
      operation: 'EXECUTE',
      ...(await allowedCells(db, sql.raw(fn.call))),
    })
  }
  return entries
}

/**
 * Refuses (42501, naming each object and its owner, changing nothing) where measuring the access
 * schemas would run code that a lesser login (one that cannot act as the session's user) wrote or
 * may change: the measurement reads, empties, writes and calls all of it as the session's user, a
 * superuser, or as an API role that the code may RESET ROLE out of. The rule of the module's own
 * writes (lesserTriggersSql), over every relation, policy and function of those schemas. Returns
 * the schemas (listAccessSchemas).
 *
 * @example
 * ```ts
 * const schemas = await refuseLesserCode(db) // throws where a lesser login owns a table in public
 * ```
 */
export async function refuseLesserCode(db: Kysely<any>): Promise<string[]> {
  const schemas = await listAccessSchemas(db)
  const doing =
    'Measuring access (reading, writing and calling, rolled back, what the access schemas hold)'
  await sql.raw(lesserTriggersSql({ lock: false, schemas, doing })).execute(db)
  return schemas
}

async function listRelations(db: Kysely<any>, schemas: string[]): Promise<Relation[]> {
  const { rows } = await sql<Relation>`
    SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind, c.relrowsecurity AS rls,
           EXISTS (SELECT FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped) AS "hasOwner",
           c.oid::text AS oid
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY (${schemas}::text[])
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND NOT c.relispartition
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY array_position(${schemas}::text[], n.nspname::text), c.relname
  `.execute(db)
  return rows
}

async function listFunctions(
  db: Kysely<any>,
  schemas: string[],
): Promise<Array<{ schema: string; name: string; call: string }>> {
  // Called with typed NULLs: what is measured is whether the role may call it at all. A trigger
  // function then fails with "can only be called as triggers", which comes after the privilege check.
  const { rows } = await sql<{ schema: string; name: string; call: string }>`
    SELECT n.nspname AS schema,
           p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS name,
           format('%s %I.%I(%s)', CASE p.prokind WHEN 'p' THEN 'CALL' ELSE 'SELECT' END, n.nspname, p.proname,
                  (SELECT string_agg('NULL::' || pg_catalog.format_type(t.type, NULL), ', ' ORDER BY t.position)
                   FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t(type, position))) AS call
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = ANY (${schemas}::text[])
      AND p.prokind IN ('f', 'p')
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    ORDER BY array_position(${schemas}::text[], n.nspname::text), 2
  `.execute(db)
  return rows
}

/** Why an empty table stays empty: the error of seeding it generically, tried and rolled back. */
async function whyNotSeeded(db: Kysely<any>, relation: Relation): Promise<string> {
  let reason = 'it has no rows, and seedAccessFixtures was not run'
  await rolledBack(db, async (trx) => {
    try {
      await seedTableGenerically(trx, relation.schema, relation.name)
    } catch (error) {
      reason = `${(error as Error).message}; seed it in src/access/access-fixtures.ts`
    }
  })
  return reason
}

async function seedRows(
  db: Kysely<any>,
  relation: Relation,
  perOwner?: number,
): Promise<SeedRow[]> {
  const owner = relation.hasOwner ? sql`t.user_id::text` : sql`NULL::text`
  const { rows } = await sql<SeedRow>`
    SELECT s.row, s.owner FROM (
      SELECT to_jsonb(t)::text AS row, ${owner} AS owner,
             row_number() OVER (PARTITION BY CASE WHEN ${owner} IN (${ACCESS_USERS.A}, ${ACCESS_USERS.B}) THEN ${owner} END
                                ORDER BY to_jsonb(t)::text) AS n
      FROM ${sql.id(relation.schema, relation.name)} AS t) AS s
    WHERE ${perOwner === undefined ? sql`true` : sql`s.n <= ${perOwner}`}
    ORDER BY 1
  `.execute(db)
  return rows
}

/** What one actor reached with one operation: seed row indexes, and what the cell adds. */
interface Reach {
  rows: Set<number>
  /** The columns it was limited to, where a column-level grant leaves some out. */
  columns?: string[]
  /** Own rows it handed to the other user (UPDATE of user_id). */
  gave?: Set<number>
}

/**
 * What each of `actors`, in order, reached with `operation` ({@link reachedRows}). SELECT gives
 * each actor a transaction of its own; the writes share one, prepared once as the database user
 * (the table emptied for INSERT, the trigger that aims UPDATE and DELETE at one row), in which
 * every attempt runs in a savepoint of its own that is rolled back: each finds the same rows.
 */
async function reachedByEach(
  db: Kysely<any>,
  relation: Relation,
  columns: Column[],
  rows: SeedRow[],
  operation: AccessOperation,
  actors: Actor[],
): Promise<Reach[]> {
  const reaches: Reach[] = []
  if (operation === 'SELECT') {
    for (const actor of actors)
      await rolledBack(
        db,
        async (trx) =>
          void reaches.push(await reachedRows(trx, relation, columns, rows, operation, actor)),
      )
    return reaches
  }
  await rolledBack(db, async (trx) => {
    // An empty table to insert the seed rows into again, unchanged: no key or constraint clashes.
    // CASCADE empties the tables whose foreign keys point at its rows too (rolled back after).
    if (operation === 'INSERT' && isTable(relation))
      await sql`TRUNCATE ${sql.id(relation.schema, relation.name)} CASCADE`.execute(trx)
    else if (operation === 'INSERT')
      await sql`DELETE FROM ${sql.id(relation.schema, relation.name)}`.execute(trx)
    else if (isTable(relation)) await aimOneRowAtATime(trx, relation)
    for (const actor of actors)
      reaches.push(await reachedRows(trx, relation, columns, rows, operation, actor))
  })
  return reaches
}

/**
 * The seed rows that `actor` reached with `operation`, in `trx` as {@link reachedByEach} prepared
 * it. SELECT and INSERT use the columns the role holds the privilege on (a column-level grant is
 * a grant). UPDATE and DELETE on a table aim at one row at a time without a WHERE clause, as an
 * unfiltered PostgREST PATCH or DELETE does: a WHERE would consult the SELECT policies, and a
 * write policy without a SELECT policy beside it would go unseen. A trigger of the measuring
 * transaction skips every other row.
 */
async function reachedRows(
  trx: Transaction<any>,
  relation: Relation,
  columns: Column[],
  rows: SeedRow[],
  operation: AccessOperation,
  actor: Actor,
): Promise<Reach> {
  const table = sql.id(relation.schema, relation.name)
  const all = columnsOf(columns, null, operation)
  const granted = columnsOf(columns, actor.requester.role, operation)
  const partial = granted.length > 0 && granted.length < all.length ? granted : undefined
  const reach: Reach = { rows: new Set(), ...(partial && { columns: partial }) }
  if (operation === 'SELECT') {
    const projected = (from: Transaction<any>) =>
      partial
        ? sql<{
            row: string
          }>`SELECT to_jsonb(x)::text AS row FROM (SELECT ${sql.join(partial.map((column) => sql.id(column)))} FROM ${table}) AS x`.execute(
            from,
          )
        : sql<{ row: string }>`SELECT to_jsonb(t)::text AS row FROM ${table} AS t`.execute(from)
    const seeds = partial
      ? (
          await sql<{ row: string }>`
          SELECT (SELECT to_jsonb(x)::text FROM (SELECT ${sql.join(partial.map((column) => sql`(p).${sql.id(column)}`))}) AS x) AS row
          FROM (SELECT jsonb_populate_record(NULL::${table}, seed::jsonb) AS p FROM unnest(${rows.map((row) => row.row)}::text[]) AS seed) AS s
        `.execute(trx)
        ).rows.map((row) => row.row)
      : rows.map((row) => row.row)
    await enterRequest(trx, actor.requester, actor.claims)
    const visible = await attempt(relation, operation, actor, () => projected(trx))
    for (const { row } of visible && 'rows' in visible ? visible.rows : []) {
      const index = seeds.findIndex((seed, at) => seed === row && !reach.rows.has(at))
      if (index >= 0) reach.rows.add(index)
    }
    return reach
  }
  if (operation === 'INSERT') {
    const list = sql.join((partial ?? all).map((column) => sql.id(column)))
    for (const [index, { row }] of rows.entries()) {
      const statement = sql`INSERT INTO ${table} (${list}) SELECT ${list} FROM jsonb_populate_record(NULL::${table}, ${row}::jsonb)`
      if (await reachedOne(trx, relation, operation, actor, statement)) reach.rows.add(index)
    }
    return reach
  }
  const aimed = isTable(relation)
  const column = updateColumn(partial ?? granted, all)
  const valueOf = (row: string, name: string) =>
    sql`(jsonb_populate_record(NULL::${table}, ${row}::jsonb)).${sql.id(name)}`
  const write = (row: string, set?: { column: string; row: string }) => {
    // A view takes no row trigger: the row is picked by its content, which needs SELECT on it.
    const where = aimed ? sql`` : sql` WHERE to_jsonb(t)::text = ${row}`
    if (operation === 'DELETE') return sql`DELETE FROM ${table} AS t${where}`
    const target = set ?? { column: column!, row }
    return sql`UPDATE ${table} AS t SET ${sql.id(target.column)} = ${valueOf(target.row, target.column)}${where}`
  }
  for (const [index, seed] of rows.entries()) {
    const target = aimed ? seed.row : undefined
    if (await reachedOne(trx, relation, operation, actor, write(seed.row), target))
      reach.rows.add(index)
    if (operation !== 'UPDATE' || !relation.hasOwner || !actor.user || seed.owner === null) continue
    // The owner column itself: whether a user can take another's row, or give away their own.
    const owner = seed.owner === actor.user ? actor.other! : actor.user
    const moved = write(seed.row, { column: 'user_id', row: JSON.stringify({ user_id: owner }) })
    if (!(await reachedOne(trx, relation, operation, actor, moved, target))) continue
    if (seed.owner === actor.user) (reach.gave ??= new Set()).add(index)
    else reach.rows.add(index)
  }
  return reach
}

/**
 * Runs one write as `actor` in a savepoint, then undoes it: whether it reached a row. `target`
 * is the row the trigger of {@link aimOneRowAtATime} lets through, set with the request's claims.
 */
async function reachedOne(
  trx: Transaction<any>,
  relation: Relation,
  operation: AccessOperation,
  actor: Actor,
  statement: { execute(trx: Transaction<any>): Promise<{ numAffectedRows?: bigint }> },
  target?: string,
): Promise<boolean> {
  await sql`SAVEPOINT access_attempt`.execute(trx)
  try {
    await enterRequest(
      trx,
      actor.requester,
      actor.claims,
      target === undefined ? {} : { 'x402_access.target': target },
    )
    const result = await attempt(relation, operation, actor, () => statement.execute(trx))
    return result !== undefined && Number(result.numAffectedRows ?? 0) > 0
  } finally {
    // Also ends the role, the claims and the target, which were set inside the savepoint.
    await sql`ROLLBACK TO SAVEPOINT access_attempt`.execute(trx)
  }
}

/**
 * A BEFORE trigger, for this transaction only, that lets an UPDATE or DELETE through on the row
 * named by the setting x402_access.target and skips every other: one row aimed at without a WHERE
 * clause. Row level security has already filtered the rows it sees, and the WITH CHECK of an
 * UPDATE comes after it, so both act as on a request.
 */
async function aimOneRowAtATime(trx: Transaction<any>, relation: Relation): Promise<void> {
  await sql`
    CREATE FUNCTION pg_temp.x402_access_target() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF to_jsonb(OLD)::text = current_setting('x402_access.target') THEN
        RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
      END IF;
      RETURN NULL;
    END
    $$
  `.execute(trx)
  // Named to fire before the table's own triggers, which go in name order.
  await sql`
    CREATE TRIGGER "!x402_access_target" BEFORE UPDATE OR DELETE ON ${sql.id(relation.schema, relation.name)}
    FOR EACH ROW EXECUTE FUNCTION pg_temp.x402_access_target()
  `.execute(trx)
}

/** A column of a relation, and the API roles that hold each privilege on it. */
interface Column {
  name: string
  /** Privilege (SELECT, INSERT, UPDATE) → the roles holding it on this column. */
  holders: Record<string, string[]>
}

/**
 * The columns of every relation (but generated ones), in order, with which API roles hold
 * SELECT, INSERT and UPDATE on each: read once per measurement, since no attempt changes a grant.
 */
async function listColumns(db: Kysely<any>, relations: Relation[]): Promise<Map<string, Column[]>> {
  const roles = [...new Set([ANON, USER_A, USER_B, SERVICE].map((actor) => actor.requester.role))]
  const { rows } = await sql<{ oid: string } & Column>`
    SELECT a.attrelid::text AS oid, a.attname::text AS name,
           (SELECT jsonb_object_agg(p.privilege, (SELECT coalesce(jsonb_agg(r.role ORDER BY r.role), '[]')
                                                  FROM unnest(${roles}::text[]) AS r(role)
                                                  WHERE has_column_privilege(r.role, a.attrelid, a.attnum, p.privilege)))
            FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) AS p(privilege)) AS holders
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = ANY (${relations.map((relation) => relation.oid)}::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
    ORDER BY a.attrelid, a.attnum
  `.execute(db)
  const columns = new Map<string, Column[]>()
  for (const { oid, name, holders } of rows) {
    if (!columns.has(oid)) columns.set(oid, [])
    columns.get(oid)!.push({ name, holders })
  }
  return columns
}

/**
 * The relation's columns in order, all of them (`role` null) or those `role` holds the privilege
 * of `operation` on (DELETE: all, it has no columns).
 */
function columnsOf(columns: Column[], role: string | null, operation: AccessOperation): string[] {
  const privilege = operation === 'DELETE' ? null : operation
  return columns
    .filter(
      (column) => role === null || privilege === null || column.holders[privilege]!.includes(role),
    )
    .map((column) => column.name)
}

function isTable(relation: Relation): boolean {
  return relation.relkind === 'r' || relation.relkind === 'p'
}

/** The column an UPDATE sets: one the role may update that is not the owner, else any. */
function updateColumn(granted: string[], all: string[]): string | undefined {
  return (
    granted.find((column) => column !== 'user_id') ??
    all.find((column) => column !== 'user_id') ??
    all[0]
  )
}

/**
 * Runs `statement`; undefined where the role was refused (permission denied, a row level
 * security check, or a trigger that raised an exception: the database's own rule, such as a
 * production trigger that refuses to hand a key to another user). An integrity error (class 23:
 * a key, a NOT NULL, a foreign key) comes after every privilege and policy check: the write was
 * allowed, and counts as one row reached. Any other failure is a fault of the fixtures.
 */
async function attempt<T>(
  relation: Relation,
  operation: AccessOperation,
  actor: Actor,
  statement: () => Promise<T>,
): Promise<T | { numAffectedRows: bigint } | undefined> {
  try {
    return await statement()
  } catch (error) {
    const code = errorCode(error)
    if (code === SQLSTATE.insufficientPrivilege || code === SQLSTATE.raiseException)
      return undefined
    if (code?.startsWith('23')) return { numAffectedRows: 1n }
    throw new Error(
      `Measuring ${operation} on ${relation.schema}.${relation.name} as ${describe(actor.requester)} failed: ${(error as Error).message}. ` +
        'Only a refusal is an answer; fix the rows of src/access/access-fixtures.ts so that the attempt can succeed where it is allowed.',
      { cause: error },
    )
  }
}

async function allowedCells(
  db: Kysely<any>,
  statement: { execute(db: Kysely<any>): Promise<unknown> },
) {
  const allowed = async (actor: Actor) => {
    let outcome = false
    await rolledBack(db, async (trx) => {
      await enterRequest(trx, actor.requester, actor.claims)
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

async function rolledBack(
  db: Kysely<any>,
  use: (trx: Transaction<any>) => Promise<void>,
): Promise<void> {
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

function rowsCell(reach: Reach, total: number): string {
  const reached = reach.rows.size
  const cell =
    reached === total ? 'all rows' : reached === 0 ? 'none' : `${reached} of ${total} rows`
  return withColumns(cell, reach)
}

function withColumns(cell: string, reach: Reach): string {
  return cell !== 'none' && reach.columns ? `${cell} (columns: ${reach.columns.join(', ')})` : cell
}

function authenticatedCell(byA: Reach, byB: Reach, rows: SeedRow[]): string {
  const ownedBy = (user: string) =>
    new Set(rows.flatMap((row, index) => (row.owner === user ? [index] : [])))
  const same = (left: Set<number>, right: Set<number>) =>
    left.size === right.size && [...left].every((index) => right.has(index))
  const ownA = ownedBy(ACCESS_USERS.A)
  const ownB = ownedBy(ACCESS_USERS.B)
  const gives =
    (byA.gave?.size ?? 0) + (byB.gave?.size ?? 0) > 0 ? ', and gives them to another user' : ''
  const cell = (() => {
    if (byA.rows.size === rows.length && byB.rows.size === rows.length) return 'all rows'
    if (byA.rows.size === 0 && byB.rows.size === 0) return 'none'
    if (ownA.size > 0 && ownB.size > 0 && same(byA.rows, ownA) && same(byB.rows, ownB))
      return `own rows only${gives}`
    const describeReach = (reached: Set<number>, own: Set<number>) =>
      `${[...reached].filter((index) => own.has(index)).length} own and ${[...reached].filter((index) => !own.has(index)).length} other of ${rows.length} rows`
    return `user A: ${describeReach(byA.rows, ownA)}; user B: ${describeReach(byB.rows, ownB)}${gives}`
  })()
  return withColumns(cell, byA.columns ? byA : byB)
}

function describe(requester: Requester): string {
  return 'sub' in requester && requester.sub
    ? `${requester.role} (${requester.sub})`
    : requester.role
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}
