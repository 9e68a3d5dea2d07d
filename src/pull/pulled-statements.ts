import type { SchemaObject, SchemaSnapshot } from '../schema/snapshot.js'
import type { PullCatalog, PullColumn, PullTable } from './pull-catalog.js'

/** One statement of a pulled migration, under the heading of its group (a table, "views", …). */
export interface PullStep {
  group: string
  sql: string
}

/** What the live database has beyond the migrations, as the statements of a migration. */
export interface PulledStatements {
  up: PullStep[]
  down: PullStep[]
  /** Differences left out, one line each, with why: the pull never weakens or drops anything. */
  notPulled: string[]
  /** Tables that the migrations create already and that `up` changes: locked first. */
  touchedTables: string[]
  /** New relations (tables, views, sequences), by name. */
  created: string[]
  /**
   * What `up` creates or changes that a role which cannot act as the session's user owns live,
   * one `<kind> <name> owned by <role>` each: the migration would make it the migrating role's,
   * and run what it runs with its owner's rights with that role's power. pullSchema refuses.
   */
  lesserOwned: string[]
}

/** What {@link pulledStatements} compares, for one schema. */
export interface PullInputs {
  /** The live schema's snapshot. */
  live: SchemaSnapshot
  /** The snapshot of the same schema that the migrations produce (empty outside public). */
  reference: SchemaSnapshot
  /** The full text of each function the migrations create, keyed as in the snapshot. */
  referenceFunctionSources: Record<string, string>
  /** The enum and domain types that the migrations create, by name. */
  referenceTypes: readonly string[]
  /** The schema's grants as the migrations make them (see PullCatalog.schemaGrants); undefined where they do not create it. */
  referenceSchemaGrants?: Record<string, string>
  /** The live database's details for DDL. */
  catalog: PullCatalog
  /** The roles whose grants are pulled; others are listed in notPulled. */
  roles?: readonly string[]
}

/** The roles whose privileges the pull writes: PostgREST's and PUBLIC. */
export const PULLED_ROLES: readonly string[] = ['PUBLIC', 'anon', 'authenticated', 'service_role']

/** What a type from an extension the target lacks becomes (pgvector's vector: real[]). */
export const EXTENSION_TYPE_STAND_INS: Readonly<Record<string, string>> = { vector: 'real[]' }

type Phase =
  | 'schemas'
  | 'extensions'
  | 'types'
  | 'sequences'
  | 'early functions'
  | 'existing tables'
  | 'tables'
  | 'sequence owners'
  | 'foreign keys'
  | 'functions'
  | 'views'
  | 'triggers'
  | 'policies'
  | 'grants'

const PHASES: readonly Phase[] = [
  'schemas',
  'extensions',
  'types',
  'sequences',
  'early functions',
  // The migrations' tables before the new ones: down then drops the new tables (and the
  // policies and views that read the new columns) before the columns they read.
  'existing tables',
  'tables',
  'sequence owners',
  'foreign keys',
  'functions',
  'views',
  'triggers',
  'policies',
  'grants',
]

/**
 * The keywords quote_ident() quotes: every keyword of pg_get_keywords() whose category is not
 * unreserved (catcode R reserved, C col_name, T type_func_name), the union over PostgreSQL 15 and
 * 17 (PGlite): `SELECT word FROM pg_get_keywords() WHERE catcode <> 'U'`. 17 adds the json_* words,
 * merge_action and system_user; quoting them on 15 as well changes nothing a server reads.
 * test/pull-quote-ident.test.ts compares quoteIdent with the server's quote_ident() for every
 * keyword, so this list cannot drift from a server the tests run on.
 */
const QUOTED_KEYWORDS = new Set(
  // R: reserved
  (
    'all analyse analyze and any array as asc asymmetric both case cast check collate column constraint ' +
    'create current_catalog current_date current_role current_time current_timestamp current_user default ' +
    'deferrable desc distinct do else end except false fetch for foreign from grant group having in ' +
    'initially intersect into lateral leading limit localtime localtimestamp not null offset on only or ' +
    'order placing primary references returning select session_user some symmetric system_user table then ' +
    'to trailing true union unique user using variadic when where window with ' +
    // C: col_name (may name a column, not a function or a type)
    'between bigint bit boolean char character coalesce dec decimal exists extract float greatest grouping ' +
    'inout int integer interval json json_array json_arrayagg json_exists json_object json_objectagg ' +
    'json_query json_scalar json_serialize json_table json_value least merge_action national nchar none ' +
    'normalize nullif numeric out overlay position precision real row setof smallint substring time ' +
    'timestamp treat trim values varchar xmlattributes xmlconcat xmlelement xmlexists xmlforest ' +
    'xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable ' +
    // T: type_func_name (may name a function or a type, not a column)
    'authorization binary collation concurrently cross current_schema freeze full ilike inner is isnull ' +
    'join left like natural notnull outer overlaps right similar tablesample verbose'
  ).split(' '),
)

/**
 * An identifier as quote_ident() writes it: bare when it is lower case and no keyword that
 * quote_ident() quotes ({@link QUOTED_KEYWORDS}).
 *
 * @example
 * ```ts
 * quoteIdent('Users read own rows') // '"Users read own rows"'
 * ```
 */
export function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) && !QUOTED_KEYWORDS.has(name)
    ? name
    : `"${name.replaceAll('"', '""')}"`
}

/**
 * A string literal, as quote_literal() writes it: quotes doubled, and where `value` holds a
 * backslash, an E'' literal with the backslashes doubled, which reads the same whatever
 * standard_conforming_strings is (a backslash before a quote would otherwise end it there).
 */
export function quoteLiteral(value: string): string {
  const quoted = `'${value.replaceAll("'", "''")}'`
  return value.includes('\\') ? `E${quoted.replaceAll('\\', '\\\\')}` : quoted
}

/**
 * The text of a `RAISE NOTICE` as a literal: {@link quoteLiteral}, its `%` doubled (RAISE reads
 * one as a placeholder). A name in it stays inside the literal.
 */
function noticeText(text: string): string {
  return quoteLiteral(text.replaceAll('%', '%%'))
}

/**
 * A `DO` block of `body`, quoted with the first of $pull$, $pull1$, … that `body` does not hold:
 * a name, a default or an enum label holding `$pull$` would otherwise end the block there, and
 * what follows run as statements of their own.
 */
function doBlock(body: string): string {
  let tag = '$pull$'
  for (let n = 1; body.includes(tag); n++) tag = `$pull${n}$`
  return `DO ${tag}\n${body}\n${tag}`
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
const field = (object: SchemaObject | undefined, name: string) =>
  object?.definition[name] as unknown

/**
 * The objects of one category of a snapshot, found by their table and name as separate fields.
 * The snapshot's own key, `table.name`, is ambiguous when a name holds a dot: table "a.b"'s
 * column c and table a's column "b.c" share it, and splitting it at a dot gives the wrong table
 * (rev-d1 F5). Never split such a key, nor match it by its prefix.
 */
function byTableAndName(
  objects: Record<string, SchemaObject>,
): (table: string, name: string) => SchemaObject | undefined {
  const found = new Map<string, SchemaObject>()
  for (const object of Object.values(objects))
    if (object.table !== null) found.set(JSON.stringify([object.table, object.name]), object)
  return (table, name) => found.get(JSON.stringify([table, name]))
}

/**
 * The statements that bring a database built by the migrations to the live schema, and back:
 * everything the live schema has that the reference lacks (created whole), and the comments,
 * defaults, grants, row level security, constraints, functions and policies it has otherwise.
 * Ordered so that `up` applies on a database the migrations built: schemas, extensions (only
 * where available), types, sequences, the functions that defaults and CHECKs call, what changes
 * on the migrations' own tables (under one lock), new tables, sequence owners, foreign
 * keys once every table exists, the other functions, views in dependency order, triggers,
 * policies, grants. `down` undoes each step in reverse. What would weaken or drop something the
 * migrations create (RLS switched off, a missing column) is left out, and named in notPulled.
 *
 * @example
 * ```ts
 * const { up, down } = pulledStatements({ live, reference, referenceFunctionSources, referenceTypes, catalog })
 * ```
 */
/**
 * Why a change to an object the migrations create is not pulled: a policy, grant or function of
 * the module's own tables decides who reaches its rows and keys, and writing production's
 * version into the history would make every new database as open as production became. Such a
 * difference is reviewed as adoption reviews it.
 */
const OWN_OBJECT_CHANGED =
  'differs from what the migrations create, and decides who may reach their rows: not pulled. ' +
  'Review it (npm run migrate:check lists it): record it by a decision in ' +
  'adoption-decisions.json, or write a migration that makes it so.'

export function pulledStatements(inputs: PullInputs): PulledStatements {
  const { live, reference, catalog } = inputs
  const roles = inputs.roles ?? PULLED_ROLES
  const phases = new Map<Phase, { step: PullStep; undo: PullStep[] }[]>(
    PHASES.map((phase) => [phase, []]),
  )
  // Drops of new functions, sequences, types and schemas: last in down, once nothing uses them.
  const lastUndo: PullStep[] = []
  const notPulled: string[] = []
  const touched = new Set<string>()
  const add = (phase: Phase, group: string, up: string, undo?: string | string[]) =>
    phases.get(phase)!.push({
      step: { group, sql: up },
      undo: [undo ?? []].flat().map((statement) => ({ group, sql: statement })),
    })

  const tables = new Map(catalog.tables.map((table) => [table.name, table]))
  const liveColumn = byTableAndName(live.columns)
  const referenceColumn = byTableAndName(reference.columns)
  const liveConstraint = byTableAndName(live.constraints)
  const referenceConstraint = byTableAndName(reference.constraints)
  const liveIndex = byTableAndName(live.indexes)
  const referenceIndex = byTableAndName(reference.indexes)
  const liveTrigger = byTableAndName(live.triggers)
  const referenceTrigger = byTableAndName(reference.triggers)
  const livePolicy = byTableAndName(live.policies)
  const referencePolicy = byTableAndName(reference.policies)
  const isNew = (relation: string) => !(relation in reference.relations)
  const qualified = (relation: string) =>
    tables.get(relation)?.qualified ??
    catalog.views.find((view) => view.name === relation)?.qualified ??
    catalog.sequences.find((sequence) => sequence.name === relation)?.qualified ??
    (catalog.schema === 'public'
      ? quoteIdent(relation)
      : `${quoteIdent(catalog.schema)}.${quoteIdent(relation)}`)
  const kindWord = (relation: string) => {
    const kind = field(live.relations[relation] ?? reference.relations[relation], 'kind')
    return kind === 'view'
      ? 'VIEW'
      : kind === 'materialized view'
        ? 'MATERIALIZED VIEW'
        : kind === 'sequence'
          ? 'SEQUENCE'
          : 'TABLE'
  }
  const comment = (target: string, value: unknown) =>
    `COMMENT ON ${target} IS ${typeof value === 'string' ? quoteLiteral(value) : 'NULL'}`
  const touch = (relation: string) => {
    if (!isNew(relation)) touched.add(relation)
  }
  const lesserOwned: string[] = []
  const ownedBy = (
    kind: 'schema' | 'relation' | 'function' | 'type',
    name: string,
    shown: string,
  ) => {
    const owner = catalog.lesserOwners[`${kind}:${name}`]
    if (owner !== undefined) lesserOwned.push(`${shown} owned by ${owner}`)
  }

  if (catalog.schema !== 'public' && inputs.referenceSchemaGrants !== undefined) {
    if (!sameJson(inputs.referenceSchemaGrants, catalog.schemaGrants))
      notPulled.push(`grants on schema ${catalog.schema}: ${OWN_OBJECT_CHANGED}`)
  } else if (
    catalog.schema !== 'public' &&
    Object.keys(live.relations).length + Object.keys(live.functions).length > 0
  ) {
    const schema = quoteIdent(catalog.schema)
    const group = `schema ${catalog.schema}`
    ownedBy('schema', catalog.schema, `schema ${schema}`)
    add('schemas', group, `CREATE SCHEMA IF NOT EXISTS ${schema}`)
    // Exactly the live ACL: a wider grant here would open every new database more than production.
    const grants = pulledGrants(catalog.schemaGrants, roles, `schema ${catalog.schema}`, notPulled)
    add('schemas', group, `REVOKE ALL ON SCHEMA ${schema} FROM ${roles.join(', ')}`)
    const byPrivileges = new Map<string, string[]>()
    for (const [role, privileges] of Object.entries(grants))
      byPrivileges.set(privileges, [...(byPrivileges.get(privileges) ?? []), role])
    for (const [privileges, grantees] of byPrivileges)
      for (const statement of grantStatements('SCHEMA', ` ${schema} `, grantees, privileges))
        add('schemas', group, statement)
  }

  // Extensions: created where the server has them, else named at apply time (see docs/pull.md).
  const extensions = new Set<string>()
  for (const [table, needed] of Object.entries(catalog.extensionsByTable)) {
    if (isNew(table) || hasNewColumns(live, referenceColumn, table))
      for (const name of needed) extensions.add(name)
  }
  for (const name of [...extensions].sort()) {
    const schema = catalog.extensionSchemas[name]
    add(
      'extensions',
      'extensions',
      doBlock(`BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_available_extensions WHERE name = ${quoteLiteral(name)}) THEN
    CREATE EXTENSION IF NOT EXISTS ${quoteIdent(name)}${schema ? ` WITH SCHEMA ${schema}` : ''};
  ELSE
    RAISE NOTICE ${noticeText(`Extension ${name} is not available on this server: what needs it uses a stand-in or is left out (docs/pull.md).`)};
  END IF;
END`),
    )
  }

  for (const type of catalog.types) {
    if (inputs.referenceTypes.includes(type.name)) continue
    ownedBy('type', type.name, `type ${type.qualified}`)
    // Made only where missing: a rollback with the data-loss opt-in keeps it for its backups.
    add(
      'types',
      'types',
      doBlock(`BEGIN
  IF to_regtype(${quoteLiteral(type.qualified)}) IS NULL THEN
    ${type.create};
  END IF;
END`),
    )
    // A rollback with the data-loss opt-in copies tables to x402_backup with their types: the
    // type stays for those copies, which restore the data as it was.
    lastUndo.push({
      group: 'types',
      sql: doBlock(`BEGIN
  DROP ${type.kind === 'e' ? 'TYPE' : 'DOMAIN'} ${type.qualified};
EXCEPTION WHEN dependent_objects_still_exist THEN
  RAISE NOTICE ${noticeText(`Type ${type.qualified} is kept: a table outside the migrations (a backup in x402_backup) uses it.`)};
END`),
    })
  }

  for (const sequence of catalog.sequences) {
    if (!isNew(sequence.name)) continue
    add('sequences', 'sequences', sequence.create)
    lastUndo.unshift({ group: 'sequences', sql: `DROP SEQUENCE IF EXISTS ${sequence.qualified}` })
    if (sequence.ownedBy)
      add(
        'sequence owners',
        'sequences',
        `ALTER SEQUENCE ${sequence.qualified} OWNED BY ${sequence.ownedBy}`,
      )
  }

  // Functions: new ones, and those whose definition differs (CREATE OR REPLACE, and back in down).
  for (const [key, fn] of Object.entries(catalog.functions).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    const phase: Phase = fn.usedByTables ? 'early functions' : 'functions'
    const source = fn.source.trimEnd()
    if (!(key in reference.functions)) {
      ownedBy('function', key, `function ${fn.signature}`)
      add(phase, 'functions', source)
      lastUndo.unshift({ group: 'functions', sql: `DROP FUNCTION ${fn.signature}` })
    } else if (
      field(live.functions[key], 'definition') !== field(reference.functions[key], 'definition')
    ) {
      const before = inputs.referenceFunctionSources[key]
      // A body production rewrote is its truth, and pulled; a function of the migrations that
      // now runs with its owner's rights is not.
      if (/\bSECURITY\s+DEFINER\b/i.test(source) && !/\bSECURITY\s+DEFINER\b/i.test(before ?? '')) {
        notPulled.push(`function ${key}: ${OWN_OBJECT_CHANGED}`)
      } else {
        ownedBy('function', key, `function ${fn.signature}`)
        add(phase, 'functions', source, before?.trimEnd())
      }
    }
  }

  // Tables: new ones whole, with their own constraints but foreign keys, which wait for every table.
  for (const table of catalog.tables) {
    if (!(table.name in live.relations)) continue
    if (isNew(table.name)) createTable(table)
    else alterTable(table)
  }

  function createTable(table: PullTable): void {
    const group = `table ${table.name}`
    const plain = table.columns.filter((column) => !standInNeeded(column))
    const lines = [
      ...plain.map((column) => `  ${column.quoted} ${column.definition}`),
      ...table.constraints
        .filter((constraint) => constraint.type !== 'f' && constraint.validated)
        .map((constraint) => `  CONSTRAINT ${constraint.quoted} ${constraint.definition}`),
    ]
    // A partition and an inheriting table are made plain here with every column, and joined to
    // their parent once every table exists; UNLOGGED and PARTITION BY are said at creation.
    const unlogged = table.persistence === 'u' ? 'UNLOGGED ' : ''
    const partitioned = table.partitionKey ? ` PARTITION BY ${table.partitionKey}` : ''
    add(
      'tables',
      group,
      `CREATE ${unlogged}TABLE ${table.qualified} (\n${lines.join(',\n')}\n)${partitioned}`,
      `DROP TABLE ${table.qualified}`,
    )
    for (const column of table.columns.filter(standInNeeded))
      add('tables', group, addColumnWithStandIn(table, column))
    for (const constraint of table.constraints) {
      if (constraint.type === 'f') continue
      if (!constraint.validated)
        add(
          'tables',
          group,
          `ALTER TABLE ${table.qualified} ADD CONSTRAINT ${constraint.quoted} ${constraint.definition} NOT VALID`,
        )
    }
    tableDetails(table, 'tables', false)
  }

  function alterTable(table: PullTable): void {
    const group = `table ${table.name} (created by the migrations)`
    for (const column of table.columns) {
      const key = `${table.name}.${column.name}`
      const now = liveColumn(table.name, column.name)
      const before = referenceColumn(table.name, column.name)
      if (!before) {
        touch(table.name)
        if (standInNeeded(column))
          add(
            'existing tables',
            group,
            addColumnWithStandIn(table, column),
            dropColumn(table, column),
          )
        else
          add(
            'existing tables',
            group,
            `ALTER TABLE ${table.qualified} ADD COLUMN ${column.quoted} ${column.definition}`,
            dropColumn(table, column),
          )
        continue
      }
      if (
        field(now, 'type') !== field(before, 'type') ||
        field(now, 'generated') !== field(before, 'generated') ||
        field(now, 'identity') !== field(before, 'identity')
      ) {
        notPulled.push(
          `${key}: column type or generation differs (live ${String(field(now, 'type'))}); change it in a migration of its own`,
        )
      }
      if (field(now, 'default') !== field(before, 'default')) {
        touch(table.name)
        const set = (value: unknown) =>
          `ALTER TABLE ${table.qualified} ALTER COLUMN ${column.quoted} ${typeof value === 'string' ? `SET DEFAULT ${value}` : 'DROP DEFAULT'}`
        add('existing tables', group, set(field(now, 'default')), set(field(before, 'default')))
      }
      if (field(now, 'not null') !== field(before, 'not null')) {
        touch(table.name)
        const set = (value: unknown) =>
          `ALTER TABLE ${table.qualified} ALTER COLUMN ${column.quoted} ${value ? 'SET' : 'DROP'} NOT NULL`
        add('existing tables', group, set(field(now, 'not null')), set(field(before, 'not null')))
      }
    }
    for (const before of Object.values(reference.columns)) {
      if (before.table === table.name && !liveColumn(table.name, before.name))
        notPulled.push(
          `${table.name}.${before.name}: the live table lacks this column (the pull drops nothing)`,
        )
    }
    for (const constraint of table.constraints) {
      if (constraint.type === 'f') continue
      const before = referenceConstraint(table.name, constraint.name)
      const addIt = `ALTER TABLE ${table.qualified} ADD CONSTRAINT ${constraint.quoted} ${constraint.definition}${constraint.validated ? '' : ' NOT VALID'}`
      const dropIt = `ALTER TABLE ${table.qualified} DROP CONSTRAINT ${constraint.quoted}`
      if (!before) {
        touch(table.name)
        add('existing tables', group, addIt, dropIt)
      } else if (field(before, 'definition') !== constraint.definition) {
        touch(table.name)
        const restore = `ALTER TABLE ${table.qualified} ADD CONSTRAINT ${constraint.quoted} ${String(field(before, 'definition'))} NOT VALID`
        add('existing tables', group, dropIt, restore)
        add('existing tables', group, addIt, dropIt)
      } else if (constraint.validated && field(before, 'validated') === false) {
        touch(table.name)
        add(
          'existing tables',
          group,
          `ALTER TABLE ${table.qualified} VALIDATE CONSTRAINT ${constraint.quoted}`,
        )
      }
    }
    tableDetails(table, 'existing tables', true)
  }

  /** Comments, row level security and indexes of a table, new or the migrations'. */
  function tableDetails(table: PullTable, phase: Phase, existing: boolean): void {
    const group = existing
      ? `table ${table.name} (created by the migrations)`
      : `table ${table.name}`
    const now = live.relations[table.name]
    const before = reference.relations[table.name]
    if (
      typeof field(now, 'comment') === 'string' &&
      field(now, 'comment') !== (existing ? field(before, 'comment') : null)
    ) {
      if (existing) touch(table.name)
      add(
        phase,
        group,
        comment(`TABLE ${table.qualified}`, field(now, 'comment')),
        existing ? comment(`TABLE ${table.qualified}`, field(before, 'comment')) : undefined,
      )
    }
    for (const column of table.columns) {
      const before = referenceColumn(table.name, column.name)
      const value = field(liveColumn(table.name, column.name), 'comment')
      const old = existing ? (field(before, 'comment') ?? null) : null
      if (typeof value !== 'string' || value === old) continue
      if (existing) touch(table.name)
      const target = `COLUMN ${table.qualified}.${column.quoted}`
      add(
        phase,
        group,
        comment(target, value),
        existing && before ? comment(target, old) : undefined,
      )
    }
    for (const [flag, word] of [
      ['row level security', 'ROW LEVEL SECURITY'],
      ['forced row level security', 'FORCE ROW LEVEL SECURITY'],
    ] as const) {
      const on = field(now, flag) === true
      const was = existing ? field(before, flag) === true : false
      if (on === was) continue
      if (!on) {
        notPulled.push(
          `${table.name}: ${flag} is off on the live table where the migrations switch it on (the pull never switches it off)`,
        )
        continue
      }
      if (existing) touch(table.name)
      const enable =
        word === 'ROW LEVEL SECURITY' ? 'ENABLE ROW LEVEL SECURITY' : 'FORCE ROW LEVEL SECURITY'
      const disable =
        word === 'ROW LEVEL SECURITY' ? 'DISABLE ROW LEVEL SECURITY' : 'NO FORCE ROW LEVEL SECURITY'
      add(
        phase,
        group,
        `ALTER TABLE ${table.qualified} ${enable}`,
        existing ? `ALTER TABLE ${table.qualified} ${disable}` : undefined,
      )
    }
    for (const index of table.indexes) {
      const before = referenceIndex(table.name, index.name)
      const indexName =
        catalog.schema === 'public'
          ? quoteIdent(index.name)
          : `${quoteIdent(catalog.schema)}.${quoteIdent(index.name)}`
      if (!index.ofConstraint) {
        if (!before) {
          if (existing) touch(table.name)
          add(
            phase,
            group,
            guardedByExtension(table, index.definition),
            existing ? `DROP INDEX ${indexName}` : undefined,
          )
        } else if (field(before, 'definition') !== index.definition) {
          touch(table.name)
          add(phase, group, `DROP INDEX ${indexName}`, String(field(before, 'definition')))
          add(phase, group, index.definition, `DROP INDEX ${indexName}`)
        }
      }
      const value = field(liveIndex(table.name, index.name), 'comment')
      const old = existing ? (field(before, 'comment') ?? null) : null
      if (typeof value === 'string' && value !== old)
        add(
          phase,
          group,
          comment(`INDEX ${indexName}`, value),
          existing && before ? comment(`INDEX ${indexName}`, old) : undefined,
        )
    }
    for (const constraint of table.constraints) {
      const before = referenceConstraint(table.name, constraint.name)
      const value = field(liveConstraint(table.name, constraint.name), 'comment')
      const old = existing ? (field(before, 'comment') ?? null) : null
      if (typeof value !== 'string' || value === old) continue
      const target = `CONSTRAINT ${constraint.quoted} ON ${table.qualified}`
      add(
        constraint.type === 'f' ? 'foreign keys' : phase,
        group,
        comment(target, value),
        existing && before ? comment(target, old) : undefined,
      )
    }
  }

  // Partitions attached and inheritance joined, once every table exists (ATTACH takes the
  // partition's own indexes as the partitions of the parent's).
  for (const table of catalog.tables) {
    if (!(table.name in live.relations) || !isNew(table.name)) continue
    const group = `parents of ${table.name}`
    if (table.partitionBound !== null) {
      const parent = table.parents[0]!
      add(
        'foreign keys',
        group,
        `ALTER TABLE ${parent} ATTACH PARTITION ${table.qualified} ${table.partitionBound}`,
        `ALTER TABLE ${parent} DETACH PARTITION ${table.qualified}`,
      )
    } else {
      for (const parent of table.parents)
        add(
          'foreign keys',
          group,
          `ALTER TABLE ${table.qualified} INHERIT ${parent}`,
          `ALTER TABLE ${table.qualified} NO INHERIT ${parent}`,
        )
    }
  }

  // Foreign keys, once every table exists.
  for (const table of catalog.tables) {
    if (!(table.name in live.relations)) continue
    for (const constraint of table.constraints.filter((candidate) => candidate.type === 'f')) {
      const before = referenceConstraint(table.name, constraint.name)
      const addIt = `ALTER TABLE ${table.qualified} ADD CONSTRAINT ${constraint.quoted} ${constraint.definition}${constraint.validated ? '' : ' NOT VALID'}`
      const dropIt = `ALTER TABLE ${table.qualified} DROP CONSTRAINT ${constraint.quoted}`
      if (!before) {
        touch(table.name)
        add('foreign keys', `foreign keys of ${table.name}`, addIt, dropIt)
      } else if (field(before, 'definition') !== constraint.definition) {
        touch(table.name)
        const restore = `ALTER TABLE ${table.qualified} ADD CONSTRAINT ${constraint.quoted} ${String(field(before, 'definition'))}`
        add('foreign keys', `foreign keys of ${table.name}`, dropIt, restore)
        add('foreign keys', `foreign keys of ${table.name}`, addIt, dropIt)
      }
    }
  }

  // Views, each after the views it reads.
  const pending = catalog.views.filter((view) => view.name in live.relations)
  const placed = new Set<string>()
  while (pending.length > 0) {
    const next = pending.findIndex((view) =>
      view.reads.every((name) => placed.has(name) || !pending.some((other) => other.name === name)),
    )
    const [view] = pending.splice(next === -1 ? 0 : next, 1)
    placed.add(view!.name)
    const now = live.relations[view!.name]
    const before = reference.relations[view!.name]
    const word = view!.materialized ? 'MATERIALIZED VIEW' : 'VIEW'
    const group = `view ${view!.name}`
    if (!before) {
      const options = view!.options.length > 0 ? ` WITH (${view!.options.join(', ')})` : ''
      const body = view!.definition.trim().replace(/;$/, '')
      add(
        'views',
        group,
        `CREATE ${word} ${view!.qualified}${options} AS\n${body}`,
        `DROP ${word} ${view!.qualified}`,
      )
      if (typeof field(now, 'comment') === 'string')
        add('views', group, comment(`${word} ${view!.qualified}`, field(now, 'comment')))
      for (const index of view!.indexes) add('views', group, index)
    } else {
      if (
        field(now, 'view definition') !== field(before, 'view definition') ||
        field(now, 'security invoker') !== field(before, 'security invoker')
      ) {
        notPulled.push(
          `${view!.name}: the view differs from the migrations' (definition or security_invoker); change it in a migration of its own`,
        )
      }
      if (
        typeof field(now, 'comment') === 'string' &&
        field(now, 'comment') !== field(before, 'comment')
      ) {
        add(
          'views',
          group,
          comment(`${word} ${view!.qualified}`, field(now, 'comment')),
          comment(`${word} ${view!.qualified}`, field(before, 'comment')),
        )
      }
    }
  }

  // Triggers and policies: new ones, and those that differ (dropped and made again).
  // Each by its table and its name, never by a `table.name` split at a dot (rev-d1 F5).
  for (const { table: tableName, name, definition } of [...catalog.triggers].sort(
    (a, b) => a.table.localeCompare(b.table) || a.name.localeCompare(b.name),
  )) {
    const before = referenceTrigger(tableName, name)
    const drop = `DROP TRIGGER ${quoteIdent(name)} ON ${qualified(tableName)}`
    const group = `table ${tableName}`
    if (!before) {
      touch(tableName)
      add('triggers', group, definition, isNew(tableName) ? undefined : drop)
    } else if (field(before, 'definition') !== definition) {
      touch(tableName)
      add('triggers', group, drop, String(field(before, 'definition')))
      add('triggers', group, definition, drop)
    }
    const value = field(liveTrigger(tableName, name), 'comment')
    const old = field(before, 'comment') ?? null
    if (typeof value === 'string' && value !== old)
      add(
        'triggers',
        group,
        comment(`TRIGGER ${quoteIdent(name)} ON ${qualified(tableName)}`, value),
      )
  }

  // Rules (CREATE RULE, as pg_get_ruledef writes it): new ones; one that differs from the
  // migrations' is not pulled, as a changed view is not.
  for (const [relation, object] of Object.entries(live.relations).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    const rules = (field(object, 'rules') ?? {}) as Record<string, string>
    const before = (field(reference.relations[relation], 'rules') ?? {}) as Record<string, string>
    for (const [name, definition] of Object.entries(rules).sort(([a], [b]) => a.localeCompare(b))) {
      if (before[name] === definition) continue
      if (before[name] !== undefined) {
        notPulled.push(`rule ${relation}.${name}: ${OWN_OBJECT_CHANGED}`)
        continue
      }
      if (!isNew(relation)) touch(relation)
      add(
        'triggers',
        `table ${relation}`,
        definition.trim().replace(/;$/, ''),
        `DROP RULE ${quoteIdent(name)} ON ${qualified(relation)}`,
      )
    }
  }

  for (const [key, policy] of Object.entries(live.policies).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    const table = policy.table!
    const before = referencePolicy(table, policy.name)
    const drop = `DROP POLICY ${quoteIdent(policy.name)} ON ${qualified(table)}`
    const group = `table ${table}`
    const differs =
      before &&
      ['permissive', 'command', 'roles', 'using', 'with check'].some(
        (name) => !sameJson(field(policy, name), field(before, name)),
      )
    if (!isNew(table) && (!before || differs)) {
      notPulled.push(`policy ${key}: ${OWN_OBJECT_CHANGED}`)
      continue
    }
    if (!before) {
      touch(table)
      // Dropped in down even on a new table: its expression may read another new table.
      add('policies', group, createPolicy(policy, qualified(table)), drop)
    }
    const value = field(policy, 'comment')
    if (typeof value === 'string' && value !== (field(before, 'comment') ?? null))
      add(
        'policies',
        group,
        comment(`POLICY ${quoteIdent(policy.name)} ON ${qualified(table)}`, value),
      )
  }
  for (const [key, policy] of Object.entries(reference.policies)) {
    if (!livePolicy(policy.table!, policy.name))
      notPulled.push(`policy ${key}: the live table lacks it (the pull drops nothing)`)
  }
  for (const key of Object.keys(reference.relations)) {
    if (!(key in live.relations))
      notPulled.push(`${key}: the live database lacks it (the pull drops nothing)`)
  }

  // Grants last, as the live ACL has them: revoked from every pulled role, then granted, for
  // objects that share an ACL in one statement each.
  const grantGroups = new Map<
    string,
    {
      word: string
      grants: Record<string, string>
      objects: string[]
      undo?: Record<string, string>
    }
  >()
  const addGrants = (word: string, object: string, now: unknown, before: unknown) => {
    const grants = pulledGrants(now, roles, object, notPulled)
    const undo = before === undefined ? undefined : pulledGrants(before, roles, object, [])
    if (undo && sameJson(grants, undo)) return
    const key = JSON.stringify([word, grants, undo ?? null])
    const entry = grantGroups.get(key) ?? { word, grants, objects: [], undo }
    entry.objects.push(object)
    grantGroups.set(key, entry)
  }
  for (const [name, relation] of Object.entries(live.relations).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    const word = kindWord(name) === 'SEQUENCE' ? 'SEQUENCE' : 'TABLE'
    const before = reference.relations[name]
    if (before && !sameJson(field(relation, 'grants'), field(before, 'grants'))) {
      notPulled.push(`grants on ${name}: ${OWN_OBJECT_CHANGED}`)
      continue
    }
    addGrants(
      word,
      qualified(name),
      field(relation, 'grants'),
      before ? field(before, 'grants') : undefined,
    )
  }
  for (const [key, fn] of Object.entries(live.functions).sort(([a], [b]) => a.localeCompare(b))) {
    const signature = catalog.functions[key]?.signature
    const before =
      key in reference.functions ? field(reference.functions[key], 'grants') : undefined
    if (before !== undefined && !sameJson(field(fn, 'grants'), before)) {
      notPulled.push(`grants on function ${key}: ${OWN_OBJECT_CHANGED}`)
      continue
    }
    if (signature)
      addGrants(
        'FUNCTION',
        signature,
        field(fn, 'grants'),
        key in reference.functions ? field(reference.functions[key], 'grants') : undefined,
      )
  }
  for (const entry of grantGroups.values()) {
    const objects =
      entry.objects.length > 3
        ? `\n  ${entry.objects.join(',\n  ')}\n`
        : ` ${entry.objects.join(', ')} `
    const statements = (grants: Record<string, string>) => {
      const byPrivileges = new Map<string, string[]>()
      for (const [role, privileges] of Object.entries(grants))
        byPrivileges.set(privileges, [...(byPrivileges.get(privileges) ?? []), role])
      return [
        `REVOKE ALL ON ${entry.word}${objects}FROM ${roles.join(', ')}`,
        ...[...byPrivileges].flatMap(([privileges, grantees]) =>
          grantStatements(entry.word, objects, grantees, privileges),
        ),
      ]
    }
    const up = statements(entry.grants)
    const down = entry.undo ? statements(entry.undo) : []
    up.forEach((statement, index) =>
      add(
        'grants',
        `grants on ${entry.word.toLowerCase()}s`,
        statement,
        index === 0 ? down : undefined,
      ),
    )
  }
  for (const [key, column] of Object.entries(live.columns)) {
    const grants = field(column, 'grants')
    const before = column.table === null ? undefined : referenceColumn(column.table, column.name)
    if (grants && !sameJson(grants, field(before, 'grants'))) {
      notPulled.push(
        `${key}: column-level grants (${JSON.stringify(grants)}); grant them in a migration of its own`,
      )
    }
  }

  for (const [key, fn] of Object.entries(live.functions)) {
    const value = field(fn, 'comment')
    const old =
      key in reference.functions ? (field(reference.functions[key], 'comment') ?? null) : null
    const signature = catalog.functions[key]?.signature
    if (typeof value === 'string' && value !== old && signature)
      add(
        'functions',
        'functions',
        comment(`FUNCTION ${signature}`, value),
        key in reference.functions ? comment(`FUNCTION ${signature}`, old) : undefined,
      )
  }

  const ordered = PHASES.flatMap((phase) => phases.get(phase)!)
  // One lock for every table of the migrations that `up` changes, taken before the first change,
  // in the order the app's writes take them (x402_resources first), so that up cannot deadlock.
  const touchedTables = [...touched].sort((a, b) =>
    a === 'x402_resources' ? -1 : b === 'x402_resources' ? 1 : a.localeCompare(b),
  )
  const lock =
    touchedTables.length > 0
      ? {
          group: 'lock',
          sql: `LOCK TABLE ${touchedTables.map(qualified).join(', ')} IN ACCESS EXCLUSIVE MODE`,
        }
      : undefined
  const firstTouch = ordered.findIndex(({ step }) =>
    touchedTables.some((table) => mentions(step.sql, qualified(table))),
  )
  const up = ordered.map(({ step }) => step)
  if (lock) up.splice(firstTouch === -1 ? up.length : firstTouch, 0, lock)
  const undo = ordered
    .map(({ undo }) => undo)
    .reverse()
    .flat()
  const schemaDrop =
    catalog.schema === 'public' || phases.get('schemas')!.length === 0
      ? []
      : [
          {
            group: `schema ${catalog.schema}`,
            sql: `DROP SCHEMA IF EXISTS ${quoteIdent(catalog.schema)}`,
          },
        ]
  const down = [...(lock ? [lock] : []), ...undo, ...lastUndo, ...schemaDrop]
  const created = Object.keys(live.relations).filter(isNew)
  for (const relation of [...created, ...touchedTables])
    ownedBy('relation', relation, `${kindWord(relation).toLowerCase()} ${qualified(relation)}`)
  return { up, down, notPulled, touchedTables, created, lesserOwned }

  function standInNeeded(column: PullColumn): boolean {
    return column.extension !== null
  }

  function addColumnWithStandIn(table: PullTable, column: PullColumn): string {
    const standIn =
      EXTENSION_TYPE_STAND_INS[column.type.replace(/^.*\./, '').replace(/\(.*$/, '')] ?? 'text'
    const definition = column.definition.slice(column.type.length)
    return doBlock(`BEGIN
  IF to_regtype(${quoteLiteral(column.type)}) IS NOT NULL THEN
    ALTER TABLE ${table.qualified} ADD COLUMN ${column.quoted} ${column.definition};
  ELSE
    RAISE NOTICE ${noticeText(`${table.name}.${column.name}: ${column.type} (extension ${column.extension}) is not available here: ${standIn} stands in (docs/pull.md).`)};
    ALTER TABLE ${table.qualified} ADD COLUMN ${column.quoted} ${standIn}${definition};
  END IF;
END`)
  }

  function guardedByExtension(table: PullTable, statement: string): string {
    if (!(table.name in catalog.extensionsByTable)) return statement
    return doBlock(`BEGIN
  ${statement};
EXCEPTION WHEN undefined_object OR undefined_function OR datatype_mismatch THEN
  RAISE NOTICE ${noticeText(`${table.name}: an index needs an extension that is not available here, and is left out (docs/pull.md).`)};
END`)
  }
}

function hasNewColumns(
  live: SchemaSnapshot,
  referenceColumn: (table: string, name: string) => SchemaObject | undefined,
  table: string,
): boolean {
  return Object.values(live.columns).some(
    (column) => column.table === table && !referenceColumn(table, column.name),
  )
}

function dropColumn(table: PullTable, column: PullColumn): string {
  return `ALTER TABLE ${table.qualified} DROP COLUMN ${column.quoted}`
}

function mentions(statement: string, name: string): boolean {
  return new RegExp(`(^|[\\s(,])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([\\s(,.;]|$)`).test(
    statement,
  )
}

function createPolicy(policy: SchemaObject, table: string): string {
  // The snapshot's list is SQL already: each name as quote_ident() writes it, and `public`
  // (PUBLIC: no role may be named so). Never split: a quoted name may hold ", ".
  const roles = String(field(policy, 'roles') ?? 'public')
  const using = field(policy, 'using')
  const check = field(policy, 'with check')
  return [
    `CREATE POLICY ${quoteIdent(policy.name)} ON ${table}`,
    `  AS ${field(policy, 'permissive') === false ? 'RESTRICTIVE' : 'PERMISSIVE'} FOR ${String(field(policy, 'command'))} TO ${roles}`,
    ...(typeof using === 'string' ? [`  USING (${using})`] : []),
    ...(typeof check === 'string' ? [`  WITH CHECK (${check})`] : []),
  ].join('\n')
}

/** The grants of a snapshot for the pulled roles; others are named in `notPulled`. */
function pulledGrants(
  grants: unknown,
  roles: readonly string[],
  object: string,
  notPulled: string[],
): Record<string, string> {
  const pulled: Record<string, string> = {}
  for (const [grantee, privileges] of Object.entries((grants ?? {}) as Record<string, string>).sort(
    ([a], [b]) => a.localeCompare(b),
  )) {
    if (grantee === '(owner)') continue
    if (roles.includes(grantee)) pulled[grantee] = privileges
    else
      notPulled.push(
        `${object}: privileges of ${grantee} (${privileges}); only ${roles.join(', ')} are pulled`,
      )
  }
  return pulled
}

/** GRANT statements for `privileges` as the snapshot writes them (`ALL`, or `SELECT, UPDATE WITH GRANT OPTION`). */
function grantStatements(
  word: string,
  objects: string,
  roles: readonly string[],
  privileges: string,
): string[] {
  const grantees = roles.map((role) => (role === 'PUBLIC' ? 'PUBLIC' : quoteIdent(role))).join(', ')
  const all = privileges.split(', ')
  const withOption = all
    .filter((privilege) => privilege.endsWith(' WITH GRANT OPTION'))
    .map((privilege) => privilege.replace(' WITH GRANT OPTION', ''))
  // MAINTAIN exists from PostgreSQL 17 on; a server before it has nothing to grant.
  const plain = all.filter(
    (privilege) => !privilege.endsWith(' WITH GRANT OPTION') && privilege !== 'MAINTAIN',
  )
  const optioned = withOption.filter((privilege) => privilege !== 'MAINTAIN')
  return [
    ...(plain.length > 0 ? [`GRANT ${plain.join(', ')} ON ${word}${objects}TO ${grantees}`] : []),
    ...(optioned.length > 0
      ? [`GRANT ${optioned.join(', ')} ON ${word}${objects}TO ${grantees} WITH GRANT OPTION`]
      : []),
  ]
}
