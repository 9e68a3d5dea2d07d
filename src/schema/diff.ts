import { isDeepStrictEqual } from 'node:util'

import {
  SCHEMA_OBJECT_CATEGORIES,
  type SchemaObject,
  type SchemaObjectCategory,
  type SchemaSnapshot,
} from './snapshot.js'

/** One field of an object that differs: its value live and its value expected. */
export interface FieldDifference {
  field: string
  live: unknown
  expected: unknown
}

/**
 * A difference between the live schema and the expected one:
 * - `missing`: expected, not live;
 * - `unexpected`: live, not expected, and the module's business: a later migration creates it,
 *   or it is a policy on one of the module's tables (it changes who can reach the rows), or,
 *   with `strict`, anything on the module's tables;
 * - `changed`: both, with the fields that differ.
 */
export interface SchemaDifference {
  kind: 'missing' | 'unexpected' | 'changed'
  category: SchemaObjectCategory
  /** The expected object (the live one for `unexpected`). */
  object: SchemaObject
  /** For `changed`: each field that differs. */
  fields: FieldDifference[]
  /** For `unexpected`: why it counts. */
  reason?: string
}

/** An object on one of the module's tables that none of its migrations creates. */
export interface UnmanagedObject {
  category: SchemaObjectCategory
  object: SchemaObject
}

/** What {@link diffSchemas} found. */
export interface SchemaDiff {
  /** Differences: the schemas are equal, for what the module owns, when there are none. */
  differences: SchemaDifference[]
  /**
   * Columns, constraints, indexes and triggers on the module's tables that none of its
   * migrations creates, such as production's columns that the baseline leaves out (pgvector's
   * `embedding`). They are left alone and are not differences, unless `strict`.
   */
  unmanaged: UnmanagedObject[]
}

/** Options of {@link diffSchemas}. */
/**
 * The tables that production had before this module, which the baseline ports only in part
 * (production's x402_resources has about 80 columns): extra objects on them are listed as left
 * alone. On a table the module creates whole (user_openrouter_integrations), an object no
 * migration creates is a difference, such as a trigger added by hand to the keys table.
 */
export const PORTED_TABLES: ReadonlySet<string> = new Set(['ai_models', 'x402_resources', 'x402_user_claude_configs'])

export interface SchemaDiffOptions {
  /**
   * Everything the module's migrations create (the schema at the newest migration). A live
   * object that is not expected counts only where the module owns it; without `owned`, the
   * expected schema is taken as all the module owns.
   */
  owned?: SchemaSnapshot
  /** Count unmanaged objects on the module's tables as differences too. */
  strict?: boolean
}

/**
 * Compares a live schema with the expected one, for the objects the module owns: what is
 * missing, what differs field by field, and what is there but should not be. Relations and
 * functions of the app that no migration of the module creates are not its business and are
 * ignored.
 *
 * @example
 * ```ts
 * const diff = diffSchemas(await snapshotPublicSchema(db), reference.expected, { owned: reference.latest })
 * if (diff.differences.length > 0) console.log(formatSchemaDiff(diff))
 * ```
 */
export function diffSchemas(live: SchemaSnapshot, expected: SchemaSnapshot, options: SchemaDiffOptions = {}): SchemaDiff {
  const owned = options.owned ?? expected
  const moduleTables = new Set(Object.keys(expected.relations))
  const differences: SchemaDifference[] = []
  const unmanaged: UnmanagedObject[] = []

  for (const category of SCHEMA_OBJECT_CATEGORIES) {
    for (const [key, object] of Object.entries(expected[category])) {
      const liveObject = live[category][key]
      if (!liveObject) {
        differences.push({ kind: 'missing', category, object, fields: [] })
        continue
      }
      const fields = fieldDifferences(liveObject.definition, object.definition)
      if (fields.length > 0) differences.push({ kind: 'changed', category, object, fields })
    }
    for (const [key, object] of Object.entries(live[category])) {
      if (expected[category][key]) continue
      const onModuleTable = object.table !== null && category !== 'relations' && moduleTables.has(object.table)
      if (owned[category][key] && (onModuleTable || category === 'relations' || category === 'functions')) {
        differences.push({ kind: 'unexpected', category, object, fields: [], reason: 'a later migration creates it' })
      } else if (onModuleTable && category === 'policies') {
        differences.push({
          kind: 'unexpected',
          category,
          object,
          fields: [],
          reason: 'no migration of the module creates it, and it changes who can reach the rows',
        })
      } else if (onModuleTable && (options.strict || !PORTED_TABLES.has(object.table ?? ''))) {
        differences.push({ kind: 'unexpected', category, object, fields: [], reason: 'no migration of the module creates it' })
      } else if (onModuleTable) {
        unmanaged.push({ category, object })
      }
    }
  }
  return { differences: differences.sort(byPlace), unmanaged: unmanaged.sort(byPlace) }
}

function fieldDifferences(live: Record<string, unknown>, expected: Record<string, unknown>): FieldDifference[] {
  const fields = [...new Set([...Object.keys(expected), ...Object.keys(live)])]
  return fields
    .filter((field) => !isDeepStrictEqual(live[field] ?? null, expected[field] ?? null))
    .map((field) => ({ field, live: live[field] ?? null, expected: expected[field] ?? null }))
}

function byPlace(a: { category: SchemaObjectCategory; object: SchemaObject }, b: typeof a): number {
  const place = (entry: typeof a) => [
    entry.object.table ?? '~',
    SCHEMA_OBJECT_CATEGORIES.indexOf(entry.category),
    entry.object.name,
  ]
  const [x, y] = [place(a), place(b)]
  for (let i = 0; i < x.length; i++) {
    if (x[i]! < y[i]!) return -1
    if (x[i]! > y[i]!) return 1
  }
  return 0
}

/**
 * The differences of a diff, one line each, readable:
 *
 *     x402_resources: constraint x402_resources_resource_type_check: definition: live CHECK (…) / expected CHECK (…)
 *     user_openrouter_integrations: missing index idx_openrouter_integrations_user_enabled: CREATE INDEX …
 *     x402_resources: unexpected column openrouter_config (jsonb): a later migration creates it
 *
 * followed, when there are any, by the unmanaged objects that were left alone. Empty when the
 * diff is empty.
 *
 * @example
 * ```ts
 * console.log(formatSchemaDiff(diffSchemas(live, expected)))
 * ```
 */
export function formatSchemaDiff(diff: SchemaDiff): string {
  const lines = diff.differences.map(describeDifference)
  if (diff.unmanaged.length > 0) {
    lines.push(
      `Left alone, as no migration of the module creates them (${diff.unmanaged.length}; --strict counts them as differences):`,
      ...diff.unmanaged.map(({ category, object }) => `  ${place(category, object)}${aside(summary(category, object), ' (', ')')}`),
    )
  }
  return lines.join('\n')
}

function describeDifference(difference: SchemaDifference): string {
  const { kind, category, object } = difference
  switch (kind) {
    case 'missing':
      return `${place(category, object, 'missing')}${aside(summary(category, object), ': ')}`
    case 'unexpected':
      return `${place(category, object, 'unexpected')}${aside(summary(category, object), ' (', ')')}: ${difference.reason}`
    case 'changed':
      return `${place(category, object)}: ${difference.fields
        .map(({ field, live, expected }) => `${field}: live ${render(live)} / expected ${render(expected)}`)
        .join('; ')}`
  }
}

const SINGULAR: Record<SchemaObjectCategory, string> = {
  relations: 'relation',
  columns: 'column',
  constraints: 'constraint',
  indexes: 'index',
  triggers: 'trigger',
  functions: 'function',
  policies: 'policy',
}

/** `x402_resources: missing index idx_…`, `x402_resources: table`, `function update_…()`. */
function place(category: SchemaObjectCategory, object: SchemaObject, adjective?: string): string {
  const kind = category === 'relations' ? String(object.definition.kind ?? 'relation') : SINGULAR[category]
  const what = [adjective, kind].filter(Boolean).join(' ')
  if (category === 'relations') return `${object.name}: ${what}`
  if (object.table === null) return `${what} ${quoted(object.name)}`
  return `${object.table}: ${what} ${quoted(object.name)}`
}

function quoted(name: string): string {
  return /^[a-z_][a-z0-9_$]*(\(.*\))?$/.test(name) ? name : `"${name}"`
}

/** `text` between `before` and `after`; nothing for no text. */
function aside(text: string, before: string, after = ''): string {
  return text ? `${before}${text}${after}` : ''
}

/** What an object is, in a few words, to name it in a line. */
function summary(category: SchemaObjectCategory, object: SchemaObject): string {
  const definition = object.definition as Record<string, string | null | undefined>
  switch (category) {
    case 'relations':
      return ''
    case 'columns':
      return definition.type ?? ''
    case 'policies':
      return [
        `FOR ${definition.command} TO ${definition.roles}`,
        definition.using && `USING ${definition.using}`,
        definition['with check'] && `WITH CHECK ${definition['with check']}`,
      ]
        .filter(Boolean)
        .join(' ')
    default:
      return definition.definition ?? ''
  }
}

function render(value: unknown): string {
  if (value === null || value === undefined) return 'none'
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return entries.length === 0 ? 'none' : `{${entries.map(([key, inner]) => `${key}: ${render(inner)}`).join(', ')}}`
  }
  return String(value)
}
