import { type Kysely, sql } from 'kysely'

import { QueryError } from '../connection/query-error.js'
import { COLUMN_TYPE_CODE_SQL, columnTypeUses } from '../connection/column-type-code.js'
import {
  actsAsSessionUser,
  CATALOG_CHECK_BEGIN,
  CATALOG_CHECK_DECLARE,
  LESSER_LOGIN_ROLES_SQL,
} from '../connection/shadowed-catalog.js'
import { shownOnTerminal } from '../connection/shown-argument.js'
import { errorCode } from '../connection/sql-state.js'
import { migrationNames } from '../migrations/index.js'
import { migrationSettings } from '../migrator/settings.js'
import type { SchemaDiff, SchemaDifference } from '../schema/diff.js'
import {
  buildSchemaReference,
  diffWithReference,
  type SchemaReference,
} from '../schema/reference.js'
import { API_ROLE_BYPASS_RULE } from '../schema/rules.js'
import { catalogRead } from '../schema/snapshot.js'
import { readAcceptedDifferences } from './accepted-differences.js'
import {
  ADOPTION_DECISIONS_FILE,
  type AdoptionDecision,
  readAdoptionDecisions,
} from './adoption-decisions.js'
import { interruptedRollback } from './interrupted-rollback.js'

/** A conflict the plan cannot fix safely: what was found, and what to decide. */
export interface UnresolvedConflict {
  line: string
  decide: string
}

/** What {@link planRepair} found and proposes. */
export interface RepairPlan {
  migrationName: string
  /** The comparison it planned from. */
  diff: SchemaDiff
  /** The statements that fix what can be fixed safely, in order, each complete. */
  statements: string[]
  /** The conflicts left to a person. */
  unresolved: UnresolvedConflict[]
  /** The whole plan as a reviewable SQL script: the statements, then the decisions as comments. */
  script: string
}

/** Options of {@link planRepair}. */
export interface RepairPlanOptions {
  /** The conflicts accepted by decision (by default those of adoption-decisions.json): left alone. */
  decisions?: readonly AdoptionDecision[]
}

/** How many of the rows that stand in a constraint's way a plan names. */
const NAMED_ROWS = 20

/**
 * The repair plan behind `migrate:baseline -- <name> --plan`: compares the live schema with the
 * module's at `name` (reference built on a scratch database; `db` is only read) and writes the
 * SQL that adds what the module has and the database lacks, where that is safe, under the lock
 * discipline of migration 005: a lock_timeout first, `CREATE INDEX CONCURRENTLY`, constraints
 * added `NOT VALID` and then validated. It keeps its header's promise, that nothing in it drops,
 * disables, replaces or loosens what production has:
 * - it adds a missing index, trigger, function, CHECK or foreign key, a restrictive policy or one
 *   only for roles that bypass row level security, row level security where it is off, and the
 *   module's comment where the database has none;
 * - a CHECK, foreign key or unique index only after counting the stored rows that stand in its
 *   way; with any, it names them and leaves the decision to a person: rows are never edited;
 * - never a permissive policy for a role that does not bypass RLS: it lets someone do more;
 * - a function body only where production's is one the module shipped (the header differs);
 * - on an adopted database, also what adoption accepted and is gone since, by the same rules.
 * Every statement can run again: CREATE TRIGGER, CREATE POLICY and ADD CONSTRAINT look in the
 * catalog first, and a replaced function keeps the settings production gave it. The rest (a
 * missing table or column, another type, default, CHECK, policy or body, grants, a view that
 * leaks, production's own additions) is listed with what to decide, and with the entry of
 * adoption-decisions.json that keeps it where a decision may. It refuses while a rollback is
 * interrupted, and runs nothing.
 *
 * @example
 * ```ts
 * const plan = await planRepair(db, '006')
 * process.stdout.write(plan.script) // review, then run it with psql
 * ```
 */
export async function planRepair(
  db: Kysely<any>,
  name: string,
  options: RepairPlanOptions = {},
): Promise<RepairPlan> {
  const reference = await buildSchemaReference(name)
  const rollback = await interruptedRollback(db)
  if (rollback !== undefined) throw new Error(`Cannot plan a repair: ${rollback}.`)
  // What adoption accepted and is gone since is put back too (a dropped policy, RLS switched off).
  const accepted = await readAcceptedDifferences(db)
  const decisions = options.decisions ?? readAdoptionDecisions()
  const diff = await diffWithReference(db, reference, {
    decisions,
    ...(accepted.length > 0 ? { acceptedBefore: accepted } : {}),
  })
  const statements: string[] = []
  const unresolved: UnresolvedConflict[] = []
  const later: string[] = []
  await planReads(db, async (trx) => {
    const settings = await functionSettings(trx)
    for (const difference of diff.conflict) {
      const fix = await repair(trx, difference, reference, settings)
      if ('decide' in fix) {
        const keep = difference.decidable
          ? ` Or keep it as it is by a decision in ${ADOPTION_DECISIONS_FILE} (the refusal of migrate:baseline prints its entry).`
          : ''
        unresolved.push({ line: difference.line, decide: `${fix.decide}${keep}` })
      } else {
        statements.push(...fix.now)
        later.push(...(fix.after ?? []))
      }
    }
    // The module's wording where the database has no comment; a comment of production's own
    // wording is its documentation, and stays.
    for (const difference of diff.equivalent) {
      if (
        difference.field === 'comment' &&
        difference.expected !== null &&
        difference.live === null
      ) {
        statements.push(await commentStatement(trx, difference))
      }
    }
  })
  statements.push(...later)
  // A function first: a missing trigger may call it.
  const isFunction = (statement: string) =>
    Number(statement.startsWith('CREATE OR REPLACE FUNCTION'))
  statements.sort((a, b) => isFunction(b) - isFunction(a))
  const { migrationName } = reference
  return {
    migrationName,
    diff,
    statements,
    unresolved,
    script: script(migrationName, statements, unresolved),
  }
}

type Fix = { now: string[]; after?: string[] } | { decide: string }

/**
 * What the plan does about one difference of a comparison with `reference`: the statements that
 * fix it (`now`, and `after` the rest), or what a person must decide. A comment difference gets
 * the module's comment.
 *
 * @example
 * ```ts
 * const fix = await repairOf(db, diff.conflict[0], reference)
 * ```
 */
export async function repairOf(
  db: Kysely<any>,
  difference: SchemaDifference,
  reference: SchemaReference,
): Promise<Fix> {
  return planReads(db, async (trx) => {
    if (difference.class === 'equivalent' && difference.field === 'comment')
      return { now: [await commentStatement(trx, difference)] }
    return repair(trx, difference, reference, await functionSettings(trx))
  })
}

/**
 * Runs `read`, the plan's reads after its comparison (the stored rows it counts, and the catalog
 * around them), in one READ ONLY transaction bounded by the server as the catalog's reads are
 * ({@link catalogRead}), with row_security off: where a table's row level security applies to
 * the session's role, PostgreSQL then refuses the read (42501) instead of running its policies
 * with that role's power (review revf F4), see {@link countedRows}. In a caller's transaction,
 * inside a savepoint rolled back at the end, which takes both settings back.
 */
function planReads<T>(db: Kysely<any>, read: (trx: Kysely<any>) => Promise<T>): Promise<T> {
  const readOnly = async (trx: Kysely<any>) => {
    // Said in SQL: Kysely's PGlite driver begins every transaction read-write (run-advisor.ts).
    await sql`SET TRANSACTION READ ONLY`.execute(trx)
    await sql`SET LOCAL row_security = off`.execute(trx)
    return read(trx)
  }
  return catalogRead(db, async (trx) => {
    if (!db.isTransaction) return readOnly(trx)
    await sql`SAVEPOINT x402_plan_reads`.execute(trx)
    try {
      return await readOnly(trx)
    } finally {
      await sql`ROLLBACK TO SAVEPOINT x402_plan_reads`.execute(trx)
      await sql`RELEASE SAVEPOINT x402_plan_reads`.execute(trx)
    }
  })
}

/** SQLSTATE of the refusals of {@link countedRows}: insufficient_privilege, as PostgreSQL's. */
const PLAN_READ_STATE = '42501'

/**
 * The rows of `query`, which counts stored rows of `table` (a foreign key's count also
 * matches them with the table it references), in {@link planReads}'s transaction. It first
 * refuses ({@link PLAN_READ_STATE}) where `table` belongs to a role that cannot act as the
 * session's user (actsAsSessionUser): its owner's code (its policies, whatever it attaches to it
 * later) would run with the operator's power. The referenced table is not held to that: on
 * Supabase it is auth.users, owned by supabase_auth_admin; its rows are only matched by key, and
 * with row_security off no policy of it runs. Then PostgreSQL's refusal to read past row level
 * security that applies to the session's role becomes one that says what to do.
 */
async function countedRows<R>(
  db: Kysely<any>,
  table: string,
  query: ReturnType<typeof sql<R>>,
): Promise<R[]> {
  await sql.raw(lesserOwnedTableSql(table)).execute(db)
  try {
    return (await query.execute(db)).rows
  } catch (error) {
    if (errorCode(error) !== PLAN_READ_STATE) throw error
    const reason = error instanceof QueryError && error.cause instanceof Error ? error.cause : error
    throw Object.assign(
      new Error(
        `The repair plan counts the stored rows of ${table} that stand in the way of a constraint or unique index the ` +
          `database lacks, and PostgreSQL refused to read them (${(reason as Error).message}): the plan reads with ` +
          'row_security off, so that row level security that applies to its role is refused rather than run, as its ' +
          "policies would run with that role's power and hide rows from the count. Nothing was changed, and no plan was " +
          `made. Make the plan as a role that reads every row of ${table} (and of a table its foreign key references) ` +
          'without policies: their owner, where row level security is not forced on them, or a role that bypasses row ' +
          "level security, such as Supabase's postgres.",
        { cause: error },
      ),
      { code: PLAN_READ_STATE },
    )
  }
}

/**
 * One `DO` block that raises {@link PLAN_READ_STATE} where what a missing foreign key of `table`
 * references, and the count matches its rows with, could run its owner's code in that read: a
 * relation other than a table (a view's functions run as the reader), or a key column of another
 * type than the column it is matched with (an implicit cast runs a function). Its owner is not held
 * to the owner check (on Supabase it is auth.users, Supabase Auth's own): review revh H1.
 */
function referencedTableSql(
  table: string,
  columns: readonly string[],
  referencedTable: string,
  referenced: readonly string[],
): string {
  const pairs = columns
    .map((column, i) => `(${literal(column)}, ${literal(referenced[i]!)})`)
    .join(', ')
  return `DO $plan_references$
DECLARE
  counted pg_catalog.oid := pg_catalog.to_regclass(${literal(table)})::pg_catalog.oid;
  target pg_catalog.oid := pg_catalog.to_regclass(${literal(referencedTable)})::pg_catalog.oid;
  found pg_catalog.text;
  ${CATALOG_CHECK_DECLARE}
BEGIN
  ${CATALOG_CHECK_BEGIN}
  SELECT format('%s is not a table', c.oid::regclass) INTO found
    FROM pg_class c WHERE c.oid = target AND c.relkind NOT IN ('r', 'p');
  IF found IS NULL THEN
    SELECT string_agg(format('%s.%s (%s) and %s.%s (%s) are not of the same type', counted::regclass, p.col,
                             format_type(a.atttypid, a.atttypmod), target::regclass, p.ref, format_type(b.atttypid, b.atttypmod)), '; ')
      INTO found
      FROM (VALUES ${pairs}) AS p(col, ref)
      LEFT JOIN pg_attribute a ON a.attrelid = counted AND quote_ident(a.attname) = p.col AND NOT a.attisdropped
      LEFT JOIN pg_attribute b ON b.attrelid = target AND quote_ident(b.attname) = p.ref AND NOT b.attisdropped
     WHERE a.atttypid IS DISTINCT FROM b.atttypid;
  END IF;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '${PLAN_READ_STATE}', MESSAGE = format(
      'The repair plan counts the stored rows that a foreign key the database lacks would reject, matching them with '
      'the rows it references, and %s: its owner''s code (a view''s functions, a type''s cast) would run in that read '
      'with the power of %s. Nothing was changed, and no plan was made. Find out who changed it and why; the module''s '
      'key needs a table there, with a key column of the same type.',
      found, session_user);
  END IF;
  PERFORM pg_catalog.set_config('search_path', saved, true);
END
$plan_references$`
}

/**
 * One `DO` block that raises {@link PLAN_READ_STATE} where `table` belongs to a role that cannot
 * act as the session's user, or where a column of it reaches code of a role that a lesser login
 * can act as (COLUMN_TYPE_CODE_SQL, the rule of the lesser-code check of the writes): the count
 * evaluates the CHECK over those columns, and a type's owner may give it an implicit cast of its
 * own (`network = ANY (ARRAY[…])` compares as text), even under a domain of a trusted role
 * (review R1).
 */
function lesserOwnedTableSql(table: string): string {
  return `DO $plan_reads$
DECLARE
  -- Resolved as the count resolves it: on the session's search_path, before the block pins its own.
  counted pg_catalog.oid := pg_catalog.to_regclass(${literal(table)})::pg_catalog.oid;
  found pg_catalog.text;
  ${CATALOG_CHECK_DECLARE}
BEGIN
  ${CATALOG_CHECK_BEGIN}
  SELECT format('%s is owned by %s, a role that cannot act as %s', c.oid::regclass, pg_get_userbyid(c.relowner), session_user)
    INTO found
    FROM pg_class c
   WHERE c.oid = counted AND NOT ${actsAsSessionUser('c.relowner')};
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '${PLAN_READ_STATE}', MESSAGE = format(
      'The repair plan counts the stored rows that stand in the way of a constraint or unique index the database lacks, '
      'and %s: its owner''s code on it (row level security policies, and what it may attach to the table at any time) '
      'would run in that read with the power of %s. Nothing was changed, and no plan was made. Find out who made it; where it is '
      'your own, give it to a role that can act as %s (ALTER TABLE … OWNER TO), then make the plan again; otherwise '
      'check its rows as its owner, and add what the module has by hand.',
      found, session_user, session_user);
  END IF;
  WITH RECURSIVE lesser_roles AS (${LESSER_LOGIN_ROLES_SQL}),
  typed_uses AS (${columnTypeUses('a.attrelid = counted')}),
  ${COLUMN_TYPE_CODE_SQL}
  SELECT string_agg(DISTINCT problem, '; ' ORDER BY problem) INTO found FROM column_type_code;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '${PLAN_READ_STATE}', MESSAGE = format(
      'The repair plan counts the stored rows of %s that stand in the way of a constraint or unique index the database '
      'lacks by evaluating it over their columns, and %s: that code (an implicit cast of the type, which its owner may '
      'add at any time, a domain''s CHECK and what it calls) would run in that read with the power of %s. Nothing was '
      'changed, and no plan was made. Find out who made each; where it is your own, give it to a role that can act as %s '
      '(ALTER TYPE, ALTER DOMAIN or ALTER FUNCTION … OWNER TO), then make the plan again; otherwise check the rows as '
      'that owner, and add what the module has by hand.',
      counted::regclass, found, session_user, session_user);
  END IF;
  PERFORM pg_catalog.set_config('search_path', saved, true);
END
$plan_reads$`
}

/**
 * The `SET` lines of each live function's header, as the server deparses them: a
 * CREATE OR REPLACE resets them, so the plan writes them into the module's source.
 */
async function functionSettings(db: Kysely<any>): Promise<Record<string, string[]>> {
  const { rows } = await sql<{ name: string; source: string }>`
    SELECT p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS name,
           pg_catalog.pg_get_functiondef(p.oid) AS source
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p') AND p.proconfig IS NOT NULL
  `.execute(db)
  return Object.fromEntries(
    rows.map(({ name, source }) => [name, header(source).filter((line) => /^ SET /.test(line))]),
  )
}

/** The lines of a deparsed function before its body (`AS $function$…`). */
function header(source: string): string[] {
  const lines = source.split('\n')
  const body = lines.findIndex((line) => line.startsWith('AS '))
  return body < 0 ? [] : lines.slice(0, body)
}

/**
 * The body of a function definition as the snapshot has it (whitespace runs as one space):
 * what follows its header, from ` AS ` on, with letter case and spaces around punctuation left
 * aside as the comparison leaves them.
 */
function body(definition: string): string | undefined {
  const at = definition.search(/ AS (\$|')/)
  return at < 0
    ? undefined
    : definition
        .slice(at)
        .replace(/\s*([^\w\s])\s*/g, '$1')
        .toLowerCase()
}

/**
 * The module's source of a function with the settings production has (a fixed search_path)
 * kept: the module's own SET lines win where both set the same parameter. Undefined when the
 * source has no header to put them in, so that the plan leaves it to a person instead of
 * dropping a setting.
 */
function replaceFunction(source: string, kept: string[] = []): string | undefined {
  const lines = source.trim().split('\n')
  const at = lines.findIndex((line) => line.startsWith('AS '))
  if (at < 0) return kept.length === 0 ? source.trim() : undefined
  const own = new Set(
    lines
      .slice(0, at)
      .filter((line) => /^ SET /.test(line))
      .map((line) => line.split(' ')[2]),
  )
  const extra = kept.filter((line) => !own.has(line.split(' ')[2]))
  return [...lines.slice(0, at), ...extra, ...lines.slice(at)].join('\n')
}

async function repair(
  db: Kysely<any>,
  difference: SchemaDifference,
  reference: SchemaReference,
  settings: Record<string, string[]>,
): Promise<Fix> {
  const { kind, category, field, table_name: table, object_name: name } = difference
  const expected = (difference.kind === 'missing' ? difference.expected : null) as Record<
    string,
    unknown
  > | null
  const relation = table === null ? undefined : await relationOf(db, table)
  const on = relation?.qualified ?? ''

  // A role's attributes and memberships are the cluster's, and the plan changes only the schema.
  if (field === 'owner' || field === API_ROLE_BYPASS_RULE) return { decide: difference.reason }
  if (kind === 'extra') {
    if (category === 'relations' && !(difference.key in reference.createdBy)) {
      return { decide: `${difference.reason}. The plan never changes a view production made.` }
    }
    return {
      decide:
        difference.reason.startsWith('a later migration') ||
        difference.reason.startsWith('the module had it')
          ? difference.reason
          : `${difference.reason}. The plan never drops or changes what production added.`,
    }
  }
  if (kind === 'missing') {
    switch (category) {
      case 'indexes': {
        const definition = String(expected!.definition)
        const duplicates = await duplicateRows(db, definition)
        if (duplicates) {
          return {
            decide: `${duplicates}; the plan builds no unique index that cannot be built, and never edits rows.`,
          }
        }
        return {
          now: [
            definition.replace(
              /^CREATE (UNIQUE )?INDEX /,
              'CREATE $1INDEX CONCURRENTLY IF NOT EXISTS ',
            ),
          ],
        }
      }
      case 'constraints': {
        const definition = String(expected!.definition)
        if (!/^(CHECK|FOREIGN KEY) /.test(definition)) {
          return {
            decide:
              'a key constraint: build its unique index CONCURRENTLY, then ALTER TABLE … ADD CONSTRAINT … USING INDEX, ' +
              'after checking the data has no duplicates.',
          }
        }
        const blocked = await rowsInTheWay(db, relation!, definition)
        if (blocked) {
          return {
            decide: `${blocked}; the plan adds no constraint that stored rows violate, and never edits rows.`,
          }
        }
        const validate =
          expected!.validated === false
            ? []
            : [`ALTER TABLE ${on} VALIDATE CONSTRAINT ${ident(name)}`]
        const add = `ALTER TABLE ${on} ADD CONSTRAINT ${ident(name)} ${definition.replace(/ NOT VALID$/, '')} NOT VALID`
        const absent = `conrelid = ${literal(on)}::regclass AND conname = ${literal(name)}`
        return { now: [unlessExists('pg_catalog.pg_constraint', absent, add)], after: validate }
      }
      case 'triggers':
        const absent = `tgrelid = ${literal(on)}::regclass AND tgname = ${literal(name)} AND NOT tgisinternal`
        return {
          now: [unlessExists('pg_catalog.pg_trigger', absent, String(expected!.definition))],
        }
      case 'policies': {
        const widens = await widensAccess(db, expected!)
        if (widens) {
          return {
            decide:
              `adding it would give ${widens} access beyond what production's own policies on ${table} allow ` +
              `(${await policiesOn(db, on)}); the plan never adds a policy more permissive than what production has. ` +
              'Create it by hand only if those roles must have that access.',
          }
        }
        const absent = `polrelid = ${literal(on)}::regclass AND polname = ${literal(name)}`
        return {
          now: [unlessExists('pg_catalog.pg_policy', absent, createPolicy(name, on, expected!))],
        }
      }
      case 'functions': {
        const source = reference.functionSources[name]
        return source
          ? { now: [source.trim()] }
          : { decide: "the module defines it; create it from the module's migration." }
      }
      case 'schemas':
      case 'relations':
        return { decide: missingRelation(difference, reference) }
      case 'columns':
        return {
          decide:
            `add it as the module has it (${describeColumn(expected!)}) after checking how the app fills it; ` +
            'adding a NOT NULL column needs a default or a backfill first.',
        }
    }
  }
  if (kind === 'changed') {
    const live = difference.live
    if (
      category === 'relations' &&
      (field === 'row level security' || field === 'forced row level security') &&
      live === false
    ) {
      const how = field === 'row level security' ? 'ENABLE' : 'FORCE'
      return { now: [`ALTER TABLE ${on} ${how} ROW LEVEL SECURITY`] }
    }
    if (category === 'functions' && field === 'definition') {
      const source = reference.functionSources[name]
      const shipped = [
        difference.expected,
        reference.latest.functions[name]?.definition.definition,
      ].map((text) => body(String(text)))
      const own = body(String(live))
      if (own === undefined || !shipped.includes(own)) {
        return {
          decide:
            'production changed its body: the plan never replaces a function body production changed (only one the module ' +
            "shipped). Review it: keep it, or replace it by hand with the module's (npm run migrate:sql -- <the migration that creates it>).",
        }
      }
      const replaced = source === undefined ? undefined : replaceFunction(source, settings[name])
      if (replaced !== undefined) return { now: [replaced] }
    }
    if (category === 'constraints' && field === 'validated' && live === false) {
      const definition = String(
        reference.expected.constraints[`${table}.${name}`]?.definition.definition ?? '',
      )
      const blocked = await rowsInTheWay(db, relation!, definition)
      if (blocked)
        return { decide: `${blocked}; VALIDATE would fail on them, and the plan never edits rows.` }
      return { now: [], after: [`ALTER TABLE ${on} VALIDATE CONSTRAINT ${ident(name)}`] }
    }
    if (category === 'indexes' && field === 'valid' && live === false) {
      const index = reference.expected.indexes[`${table}.${name}`]
      const duplicates = await duplicateRows(db, String(index?.definition.definition ?? ''))
      if (duplicates)
        return {
          decide: `${duplicates}; REINDEX would fail on them, and the plan never edits rows.`,
        }
      return { now: [`REINDEX INDEX CONCURRENTLY ${relation!.schema}.${ident(name)}`] }
    }
    if (category === 'triggers' && field === 'enabled' && difference.expected === 'O') {
      return { now: [`ALTER TABLE ${on} ENABLE TRIGGER ${ident(name)}`] }
    }
    return {
      decide:
        `the database has ${field} ${JSON.stringify(live)} where the module has ${JSON.stringify(difference.expected)}. ` +
        'Decide which is right: change the database by hand after checking the data and the app, or adopt at the migration ' +
        'whose schema it has.',
    }
  }
  return { decide: difference.reason }
}

/**
 * What to decide for a table the module has and the database lacks: adopt where a later
 * migration gives it the name the database has; rename by hand what is probably it; or create
 * it with the migration that does, and adopt at an earlier migration only where one exists
 * that does not have it yet.
 */
function missingRelation(difference: SchemaDifference, reference: SchemaReference): string {
  const { reason, key } = difference
  if (reason.startsWith('the database has it as'))
    return `${reason}; the plan never renames or moves data itself.`
  if (reason.startsWith('probably renamed')) {
    return 'rename it back only if it is the same table; the plan never renames or moves data itself.'
  }
  const creator = reference.createdBy[key]
  const earlier = creator === undefined ? -1 : migrationNames.indexOf(creator) - 1
  const create = creator === undefined ? 'the module creates it' : `${creator} creates it`
  return (
    `${create}: create it with that migration's SQL (npm run migrate:sql -- ${creator ?? '<that migration>'}) after review` +
    (earlier >= 0
      ? `, or adopt at ${migrationNames[earlier]}, whose schema does not have it yet.`
      : '.')
  )
}

/**
 * How adding `policy` would widen access, or undefined where it cannot: a restrictive policy
 * only narrows, and one only for roles that bypass row level security (service_role) changes
 * nothing they can do.
 */
async function widensAccess(
  db: Kysely<any>,
  policy: Record<string, unknown>,
): Promise<string | undefined> {
  if (policy.permissive === false) return undefined
  const roles = String(policy.roles).split(', ')
  const { rows } = await sql<{ role: string }>`
    SELECT r.role FROM unnest(${roles}::text[]) AS r(role)
    WHERE r.role = 'public' OR NOT coalesce((SELECT rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = r.role), false)
  `.execute(db)
  if (rows.length === 0) return undefined
  return `${rows.map(({ role }) => role).join(', ')} ${String(policy.command)}`
}

/** The policies a table (`on`, qualified) has, in a few words each, for a decision to weigh. */
async function policiesOn(db: Kysely<any>, on: string): Promise<string> {
  const { rows } = await sql<{ policy: string }>`
    SELECT format('%I %s %s TO %s', polname, CASE WHEN polpermissive THEN '' ELSE 'AS RESTRICTIVE' END,
                  CASE polcmd WHEN 'r' THEN 'FOR SELECT' WHEN 'a' THEN 'FOR INSERT' WHEN 'w' THEN 'FOR UPDATE' WHEN 'd' THEN 'FOR DELETE' ELSE 'FOR ALL' END,
                  coalesce((SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r) END, ', ') FROM unnest(polroles) AS r), 'public')) AS policy
    FROM pg_catalog.pg_policy WHERE polrelid = ${on}::regclass ORDER BY polname
  `.execute(db)
  return rows.length === 0
    ? 'none'
    : rows.map(({ policy }) => policy.replace(/ {2,}/g, ' ')).join('; ')
}

/**
 * The stored rows of `relation` that a CHECK or foreign key `definition` (as the server deparses
 * it) would reject, counted and the first named by their primary key; undefined where there is
 * none, or the definition is not one of those.
 */
async function rowsInTheWay(
  db: Kysely<any>,
  relation: Relation,
  definition: string,
): Promise<string | undefined> {
  const bare = definition.replace(/ NOT VALID$/, '')
  const check = /^CHECK \((.*)\)$/s.exec(bare)
  const key = /^FOREIGN KEY \(([^)]+)\) REFERENCES ([^(]+)\(([^)]+)\)/.exec(bare)
  let where: string
  if (check) where = `(${check[1]}) IS FALSE`
  else if (key) {
    const columns = key[1]!.split(', ')
    const referenced = key[3]!.split(', ')
    await sql.raw(referencedTableSql(relation.qualified, columns, key[2]!, referenced)).execute(db)
    where =
      `${columns.map((column) => `t.${column} IS NOT NULL`).join(' AND ')} AND NOT EXISTS (SELECT FROM ${key[2]} r WHERE ` +
      `${columns.map((column, i) => `r.${referenced[i]} = t.${column}`).join(' AND ')})`
  } else return undefined
  return namedRows(db, relation, where, check ? 'violate it' : 'point at no row')
}

/**
 * The groups of stored rows that a unique index `definition` would find duplicated, counted and
 * named; undefined for an index that is not unique, or where there is none.
 */
async function duplicateRows(db: Kysely<any>, definition: string): Promise<string | undefined> {
  // The server's own deparse: the table is schema-qualified, each part quoted where it needs it.
  const name = '(?:[^\\s"]|"(?:[^"]|"")*")+'
  const unique = new RegExp(
    `^CREATE UNIQUE INDEX ${name} ON (${name}) USING \\w+ \\((.+?)\\)(?: WHERE \\((.+)\\))?$`,
  ).exec(definition)
  if (!unique || /NULLS NOT DISTINCT/.test(definition)) return undefined
  const [, table, columns, predicate] = unique
  const list = columns!
    .split(', ')
    .map((column) => column.replace(/ (ASC|DESC|NULLS FIRST|NULLS LAST)$/g, ''))
  const rows = await countedRows(
    db,
    table!,
    sql<{ n: number; named: string | null }>`
    SELECT count(*)::int AS n, string_agg(d.value, '; ') FILTER (WHERE d.i <= ${NAMED_ROWS}) AS named FROM (
      SELECT row_number() OVER () AS i, ${sql.raw(`concat_ws(', ', ${list.map((column) => `format('%s=%s', ${literal(column)}, ${column})`).join(', ')})`)} || ' (' || count(*) || ' rows)' AS value
      FROM ${sql.raw(table!)} t
      WHERE ${sql.raw(list.map((column) => `${column} IS NOT NULL`).join(' AND '))}${sql.raw(predicate ? ` AND (${predicate})` : '')}
      GROUP BY ${sql.raw(list.join(', '))} HAVING count(*) > 1) AS d
  `,
  )
  const { n, named } = rows[0]!
  if (n === 0) return undefined
  return `${n} value(s) are stored more than once, which the unique index rejects: ${named}${n > NAMED_ROWS ? `, and ${n - NAMED_ROWS} more` : ''}`
}

/** `what` of the rows of `relation` matching `where` (over `t`), counted and named by primary key. */
async function namedRows(
  db: Kysely<any>,
  relation: Relation,
  where: string,
  what: string,
): Promise<string | undefined> {
  const { rows: keys } = await sql<{ columns: string[] | null }>`
    SELECT array_agg(a.attname::text ORDER BY k.i) AS columns
    FROM pg_catalog.pg_index x
    CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
    WHERE x.indrelid = ${relation.qualified}::regclass AND x.indisprimary
  `.execute(db)
  const columns = keys[0]?.columns ?? ['ctid']
  const named = `concat_ws(', ', ${columns.map((column) => `format('%s=%s', ${literal(column)}, t.${ident(column)})`).join(', ')})`
  const rows = await countedRows(
    db,
    relation.qualified,
    sql<{ n: number; named: string | null }>`
    SELECT count(*)::int AS n, string_agg(r.named, '; ') FILTER (WHERE r.i <= ${NAMED_ROWS}) AS named
    FROM (SELECT row_number() OVER () AS i, ${sql.raw(named)} AS named FROM ${sql.raw(relation.qualified)} t WHERE ${sql.raw(where)}) AS r
  `,
  )
  const { n, named: list } = rows[0]!
  if (n === 0) return undefined
  return `${n} stored row(s) of ${relation.name} ${what}: ${list}${n > NAMED_ROWS ? `, and ${n - NAMED_ROWS} more` : ''}`
}

/**
 * `statement`, run only where `catalog` has no row matching `condition`: CREATE TRIGGER, CREATE
 * POLICY and ADD CONSTRAINT have no IF NOT EXISTS, and the plan must be safe to run again.
 */
function unlessExists(catalog: string, condition: string, statement: string): string {
  return [
    'DO $repair$ BEGIN',
    `  IF NOT EXISTS (SELECT FROM ${catalog} WHERE ${condition}) THEN`,
    `    EXECUTE ${literal(statement)};`,
    '  END IF;',
    'END $repair$',
  ].join('\n')
}

function createPolicy(name: string, on: string, definition: Record<string, unknown>): string {
  const roles = String(definition.roles)
    .split(', ')
    .map((role) => (role === 'public' ? 'PUBLIC' : ident(role)))
    .join(', ')
  return [
    `CREATE POLICY ${ident(name)} ON ${on}`,
    `AS ${definition.permissive === false ? 'RESTRICTIVE' : 'PERMISSIVE'}`,
    `FOR ${definition.command} TO ${roles}`,
    definition.using ? `USING (${definition.using})` : '',
    definition['with check'] ? `WITH CHECK (${definition['with check']})` : '',
  ]
    .filter(Boolean)
    .join(' ')
}

/** The statement that gives the object of `difference` the module's comment. */
async function commentStatement(db: Kysely<any>, difference: SchemaDifference): Promise<string> {
  const { category, table_name: table, object_name: name } = difference
  const relation = table === null ? undefined : await relationOf(db, table)
  const on = relation?.qualified ?? ''
  const target = (() => {
    switch (category) {
      case 'schemas':
        // The snapshot names a schema as the server quotes it (regnamespace).
        return `SCHEMA ${IDENTIFIER.test(name) ? name : ident(name)}`
      case 'relations':
        return `TABLE ${on}`
      case 'columns':
        return `COLUMN ${on}.${ident(name)}`
      case 'constraints':
        return `CONSTRAINT ${ident(name)} ON ${on}`
      case 'indexes':
        return `INDEX ${relation!.schema}.${ident(name)}`
      case 'triggers':
        return `TRIGGER ${ident(name)} ON ${on}`
      case 'policies':
        return `POLICY ${ident(name)} ON ${on}`
      default:
        return undefined
    }
  })()
  return `COMMENT ON ${target ?? `FUNCTION ${await functionOf(db, name)}`} IS ${literal(String(difference.expected))}`
}

/** An identifier as the server writes it: plain, or quoted with its quotes doubled. */
const IDENTIFIER = /^(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")$/

/** A relation of the live database: its name as the snapshot keys it, and as SQL. */
interface Relation {
  /** As the snapshot keys it: bare in public, else schema-qualified (`"Reports".Daily Totals`). */
  name: string
  /** Schema-qualified, each part quoted where it needs it: `"Reports"."Daily Totals"`. */
  qualified: string
  /** Its schema, quoted where it needs it. */
  schema: string
}

/**
 * The relation the snapshot names `table`, found in the catalog: a name outside public is keyed
 * `<schema>.<relation>` with only the schema quoted, which cannot be split by its text alone.
 * Where there is none (a table the database lacks), `public.<table>`.
 */
async function relationOf(db: Kysely<any>, table: string): Promise<Relation> {
  const { rows } = await sql<{ qualified: string; schema: string }>`
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS qualified, pg_catalog.quote_ident(n.nspname) AS schema
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE CASE WHEN n.nspname = 'public' THEN c.relname::text
               ELSE n.oid::regnamespace::text || '.' || c.relname END = ${table}
    ORDER BY n.nspname = 'public' DESC
    LIMIT 1
  `.execute(db)
  return rows[0]
    ? { name: table, ...rows[0] }
    : { name: table, qualified: `public.${ident(table)}`, schema: 'public' }
}

/**
 * The function the snapshot names `name` (`f(a uuid)`, outside public `"Reports".f(a uuid)`), as
 * the SQL signature of COMMENT ON FUNCTION; where there is none, `public.<name>`.
 */
async function functionOf(db: Kysely<any>, name: string): Promise<string> {
  const { rows } = await sql<{ signature: string }>`
    SELECT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) AS signature
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE CASE WHEN n.nspname = 'public' THEN '' ELSE n.oid::regnamespace::text || '.' END
          || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' = ${name}
    LIMIT 1
  `.execute(db)
  return rows[0]?.signature ?? `public.${name.replace(/^([^(]+)/, (whole) => ident(whole))}`
}

function describeColumn(definition: Record<string, unknown>): string {
  return [
    definition.type,
    definition['not null'] ? 'NOT NULL' : '',
    definition.default ? `DEFAULT ${definition.default}` : '',
  ]
    .filter(Boolean)
    .join(' ')
}

function script(
  migrationName: string,
  statements: string[],
  unresolved: UnresolvedConflict[],
): string {
  const lockTimeout = `${migrationSettings().lockTimeoutMs}ms`
  const lines = [
    `-- Repair plan: brings the database closer to the schema of the migrations up to ${migrationName}, where that is safe.`,
    '-- Review it, then run it with psql (psql -f): not in one transaction, because CREATE INDEX CONCURRENTLY',
    '-- cannot run inside one (the Supabase SQL Editor runs a script as one; there, run the statements one by one).',
    '-- Each statement waits at most lock_timeout for its lock, so that it never queues the app behind it; if one',
    '-- times out, run the plan again: what is done is skipped or repeated harmlessly.',
    '-- It only adds what the module has and the database lacks: nothing here drops, disables or replaces what',
    '-- production made, or lets anyone do more than today. A constraint or unique index is added only where no',
    '-- stored row stands in its way (the rows are counted when the plan is made), a policy only where it is',
    '-- restrictive or for roles that bypass row level security, and a function body is replaced only where',
    "-- production's is one the module shipped. Rows are never edited.",
    `SET lock_timeout = '${lockTimeout}';`,
    '',
    ...(statements.length > 0
      ? statements.map((statement) => `${statement};\n`)
      : ['-- Nothing to run: no conflict the plan can fix.', '']),
  ]
  if (unresolved.length > 0) {
    lines.push('-- Not fixed here, because it cannot be done safely without a decision:')
    // One line each whatever the catalog's text holds (a trigger's name and arguments are its
    // maker's): a line break there would end the comment, and psql would run the rest.
    for (const { line, decide } of unresolved)
      lines.push(`--   ${shownOnTerminal(line)}`, `--     Decide: ${shownOnTerminal(decide)}`)
    lines.push('')
  }
  lines.push(`-- Then adopt: npm run migrate:baseline -- ${migrationName}`, '')
  return lines.join('\n')
}

function ident(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`
}

function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`
}
