import { type Kysely, sql } from 'kysely'

import { migrationSettings } from '../migrator/settings.js'
import type { SchemaDiff, SchemaDifference } from '../schema/diff.js'
import { buildSchemaReference, diffWithReference, type SchemaReference } from '../schema/reference.js'
import { readAcceptedDifferences } from './accepted-differences.js'
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

/**
 * The repair plan behind `migrate:baseline -- <name> --plan`: compares the live schema with the
 * module's at `name` (reference built on a scratch database; `db` is only read) and writes the
 * SQL that brings the database to the module's schema where that is safe, under the lock
 * discipline of migration 005: a lock_timeout first, `CREATE INDEX CONCURRENTLY`, constraints
 * added `NOT VALID` and then validated. It covers a missing index, trigger, CHECK or foreign key
 * constraint, or policy; an unvalidated constraint or invalid index; a function body; row level
 * security off where the module has it on; the module's comments; and, on an adopted database,
 * what adoption accepted and is gone since. Every statement can run again: CREATE TRIGGER,
 * CREATE POLICY and ADD CONSTRAINT look in the catalog first, and a replaced function keeps the
 * settings production gave it (CREATE OR REPLACE would reset a hardening search_path). It
 * refuses while a rollback is interrupted. Nothing in it drops, disables or loosens anything. What it cannot fix safely (a missing table or column, another
 * type, default, CHECK or policy, grants) is listed with what to decide; a missing table whose
 * columns and keys another table has is named as a probable rename. It runs nothing.
 *
 * @example
 * ```ts
 * const plan = await planRepair(db, '002')
 * process.stdout.write(plan.script) // review, then run it with psql
 * ```
 */
export async function planRepair(db: Kysely<any>, name: string): Promise<RepairPlan> {
  const reference = await buildSchemaReference(name)
  const rollback = await interruptedRollback(db)
  if (rollback !== undefined) throw new Error(`Cannot plan a repair: ${rollback}.`)
  // What adoption accepted and is gone since is put back too (a dropped policy, RLS switched off).
  const accepted = await readAcceptedDifferences(db)
  const diff = await diffWithReference(db, reference, accepted.length > 0 ? { acceptedBefore: accepted } : {})
  const settings = await functionSettings(db)
  const statements: string[] = []
  const unresolved: UnresolvedConflict[] = []
  const later: string[] = []
  for (const difference of diff.conflict) {
    const fix = repair(difference, reference, settings)
    if ('decide' in fix) unresolved.push({ line: difference.line, decide: fix.decide })
    else {
      statements.push(...fix.now)
      later.push(...(fix.after ?? []))
    }
  }
  // The module's wording where the database has no comment, or another one; a comment the
  // module lacks is documentation, and stays.
  for (const difference of diff.equivalent) {
    if (difference.field === 'comment' && difference.expected !== null) {
      statements.push(`${commentTarget(difference)} IS ${literal(String(difference.expected))}`)
    }
  }
  statements.push(...later)
  // A function first: a missing trigger may call it.
  statements.sort((a, b) => Number(b.startsWith('CREATE OR REPLACE FUNCTION')) - Number(a.startsWith('CREATE OR REPLACE FUNCTION')))
  return { migrationName: reference.migrationName, diff, statements, unresolved, script: script(reference.migrationName, statements, unresolved) }
}

type Fix = { now: string[]; after?: string[] } | { decide: string }

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
  return Object.fromEntries(rows.map(({ name, source }) => [name, header(source).filter((line) => /^ SET /.test(line))]))
}

/** The lines of a deparsed function before its body (`AS $function$…`). */
function header(source: string): string[] {
  const lines = source.split('\n')
  const body = lines.findIndex((line) => line.startsWith('AS '))
  return body < 0 ? [] : lines.slice(0, body)
}

/**
 * The module's source of a function with the settings production has (a fixed search_path)
 * kept: the module's own SET lines win where both set the same parameter. Undefined when the
 * source has no header to put them in, so that the plan leaves it to a person instead of
 * dropping a setting.
 */
function replaceFunction(source: string, kept: string[] = []): string | undefined {
  const lines = source.trim().split('\n')
  const body = lines.findIndex((line) => line.startsWith('AS '))
  if (body < 0) return kept.length === 0 ? source.trim() : undefined
  const own = new Set(lines.slice(0, body).filter((line) => /^ SET /.test(line)).map((line) => line.split(' ')[2]))
  const extra = kept.filter((line) => !own.has(line.split(' ')[2]))
  return [...lines.slice(0, body), ...extra, ...lines.slice(body)].join('\n')
}

function repair(difference: SchemaDifference, reference: SchemaReference, settings: Record<string, string[]>): Fix {
  const { kind, category, field, table_name: table, object_name: name } = difference
  const expected = (difference.kind === 'missing' ? difference.expected : null) as Record<string, unknown> | null
  const on = table === null ? '' : `public.${ident(table)}`

  if (field === 'owner') return { decide: difference.reason }
  if (kind === 'extra') {
    return { decide: `${difference.reason}. Decide whether the module should own it (a new migration), or adopt at the migration that creates it.` }
  }
  if (kind === 'missing') {
    switch (category) {
      case 'indexes':
        return { now: [String(expected!.definition).replace(/^CREATE (UNIQUE )?INDEX /, 'CREATE $1INDEX CONCURRENTLY IF NOT EXISTS ')] }
      case 'constraints': {
        const definition = String(expected!.definition)
        if (!/^(CHECK|FOREIGN KEY) /.test(definition)) {
          return { decide: 'a key constraint: build its unique index CONCURRENTLY, then ALTER TABLE … ADD CONSTRAINT … USING INDEX, after checking the data has no duplicates.' }
        }
        const validate = expected!.validated === false ? [] : [`ALTER TABLE ${on} VALIDATE CONSTRAINT ${ident(name)}`]
        const add = `ALTER TABLE ${on} ADD CONSTRAINT ${ident(name)} ${definition.replace(/ NOT VALID$/, '')} NOT VALID`
        return { now: [unlessExists('pg_catalog.pg_constraint', `conrelid = '${on}'::regclass AND conname = ${literal(name)}`, add)], after: validate }
      }
      case 'triggers':
        return {
          now: [unlessExists('pg_catalog.pg_trigger', `tgrelid = '${on}'::regclass AND tgname = ${literal(name)} AND NOT tgisinternal`, String(expected!.definition))],
        }
      case 'policies':
        return { now: [unlessExists('pg_catalog.pg_policy', `polrelid = '${on}'::regclass AND polname = ${literal(name)}`, createPolicy(name, on, expected!))] }
      case 'functions': {
        const source = reference.functionSources[name]
        return source ? { now: [source.trim()] } : { decide: 'the module defines it; create it from the module\'s migration.' }
      }
      case 'relations':
        return {
          decide: difference.reason.startsWith('probably renamed')
            ? 'rename it back only if it is the same table; the plan never renames or moves data itself.'
            : `the module creates it in a migration up to the one named; create it with that migration's SQL (npm run migrate:sql -- <that migration>), or adopt at an earlier migration.`,
        }
      case 'columns':
        return { decide: `add it as the module has it (${describeColumn(expected!)}) after checking how the app fills it; adding a NOT NULL column needs a default or a backfill first.` }
    }
  }
  if (kind === 'changed') {
    const live = difference.live
    if (category === 'relations' && (field === 'row level security' || field === 'forced row level security') && live === false) {
      return { now: [`ALTER TABLE ${on || `public.${ident(name)}`} ${field === 'row level security' ? 'ENABLE' : 'FORCE'} ROW LEVEL SECURITY`] }
    }
    if (category === 'functions' && field === 'definition') {
      const source = reference.functionSources[name]
      const replaced = source === undefined ? undefined : replaceFunction(source, settings[name])
      if (replaced !== undefined) return { now: [replaced] }
    }
    if (category === 'constraints' && field === 'validated' && live === false) {
      return { now: [], after: [`ALTER TABLE ${on} VALIDATE CONSTRAINT ${ident(name)}`] }
    }
    if (category === 'indexes' && field === 'valid' && live === false) {
      return { now: [`REINDEX INDEX CONCURRENTLY public.${ident(name)}`] }
    }
    if (category === 'triggers' && field === 'enabled' && difference.expected === 'O') {
      return { now: [`ALTER TABLE ${on} ENABLE TRIGGER ${ident(name)}`] }
    }
    return {
      decide: `the database has ${field} ${JSON.stringify(live)} where the module has ${JSON.stringify(difference.expected)}. ` +
        'Decide which is right: change the database by hand after checking the data and the app, or adopt at the migration whose schema it has.',
    }
  }
  return { decide: difference.reason }
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

function commentTarget({ category, table_name: table, object_name: name }: SchemaDifference): string {
  const on = `public.${ident(table ?? '')}`
  switch (category) {
    case 'relations':
      return `COMMENT ON TABLE public.${ident(name)}`
    case 'columns':
      return `COMMENT ON COLUMN ${on}.${ident(name)}`
    case 'constraints':
      return `COMMENT ON CONSTRAINT ${ident(name)} ON ${on}`
    case 'indexes':
      return `COMMENT ON INDEX public.${ident(name)}`
    case 'triggers':
      return `COMMENT ON TRIGGER ${ident(name)} ON ${on}`
    case 'policies':
      return `COMMENT ON POLICY ${ident(name)} ON ${on}`
    default:
      return `COMMENT ON FUNCTION public.${name.replace(/^([^(]+)/, (whole) => ident(whole))}`
  }
}

function describeColumn(definition: Record<string, unknown>): string {
  return [definition.type, definition['not null'] ? 'NOT NULL' : '', definition.default ? `DEFAULT ${definition.default}` : '']
    .filter(Boolean)
    .join(' ')
}

function script(migrationName: string, statements: string[], unresolved: UnresolvedConflict[]): string {
  const lockTimeout = `${migrationSettings().lockTimeoutMs}ms`
  const lines = [
    `-- Repair plan: brings the database to the schema of the migrations up to ${migrationName}, where that is safe.`,
    '-- Review it, then run it with psql (psql -f): not in one transaction, because CREATE INDEX CONCURRENTLY',
    '-- cannot run inside one (the Supabase SQL Editor runs a script as one; there, run the statements one by one).',
    '-- Each statement waits at most lock_timeout for its lock, so that it never queues the app behind it; if one',
    '-- times out, run the plan again: what is done is skipped or repeated harmlessly.',
    '-- Nothing here drops, disables or loosens anything.',
    `SET lock_timeout = '${lockTimeout}';`,
    '',
    ...(statements.length > 0 ? statements.map((statement) => `${statement};\n`) : ['-- Nothing to run: no conflict the plan can fix.', '']),
  ]
  if (unresolved.length > 0) {
    lines.push('-- Not fixed here, because it cannot be done safely without a decision:')
    for (const { line, decide } of unresolved) lines.push(`--   ${line}`, `--     Decide: ${decide}`)
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
