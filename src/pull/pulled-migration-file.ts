import type { PullStep } from './pulled-statements.js'

/** What the header of a pulled migration says. */
export interface PulledMigrationHeader {
  /** The migration it follows. */
  after: string
  /** The schemas it was pulled from. */
  schemas: readonly string[]
  /** Tables of the migrations that `up` changes, under one lock. */
  touchedTables: readonly string[]
  /** The tables of lock-policy.json that `up` changes: each gets its lint:locks exception. */
  busyTables: readonly string[]
  /** What was left out, and why. */
  notPulled: readonly string[]
}

/**
 * The source of a pulled migration: `up` and `down` as one `sql` statement each, under a
 * comment naming each group (a table, its foreign keys, the views, the grants), taking
 * Kysely<any> and importing only kysely, like every migration.
 *
 * @example
 * ```ts
 * writeFileSync(path, pulledMigrationSource({ after: '008_x', schemas: ['public'], … }, up, down))
 * ```
 */
export function pulledMigrationSource(
  header: PulledMigrationHeader,
  up: readonly PullStep[],
  down: readonly PullStep[],
): string {
  const notPulled =
    header.notPulled.length > 0
      ? [
          ' *',
          ' * Left out (the pull never drops or weakens what the migrations create; see docs/pull.md):',
          ...header.notPulled.map((line) => ` * - ${oneLine(line)}`),
        ]
      : []
  const lock =
    header.touchedTables.length > 0
      ? [
          ' *',
          ` * It changes tables that the migrations create (${header.touchedTables.join(', ')}), under one ACCESS EXCLUSIVE`,
          ' * lock taken before the first change, in the order the app writes them (x402_resources first).',
          ' * The database it was pulled from has all of it already and is recorded at this migration',
          ' * without running it: up runs where the migrations build the database (a laptop, CI, a new',
          ' * project), and down as a rollback there.',
        ]
      : []
  return [
    "import { type Kysely, sql } from 'kysely'",
    '',
    '/**',
    ` * The live schema beyond ${header.after}, pulled by \`npm run migrate:pull\` from`,
    ` * ${header.schemas.join(', ')}: generated from the catalog (see docs/pull.md), for review like any migration.`,
    ' * Ordered to apply after the migrations before it: types, the functions that defaults call,',
    ' * tables, foreign keys once every table exists, functions, views, triggers, policies, grants.',
    ...lock,
    ...notPulled,
    ' */',
    'export async function up(db: Kysely<any>): Promise<void> {',
    ...header.busyTables.map(
      (table) =>
        `  // lint:locks allow ${table}: the database it was pulled from has this already and never runs it`,
    ),
    ...body(up),
    '}',
    '',
    '/** Drops what up created and puts back what up changed, in reverse order. */',
    'export async function down(db: Kysely<any>): Promise<void> {',
    ...body(down),
    '}',
    '',
  ].join('\n')
}

function body(steps: readonly PullStep[]): string[] {
  const lines: string[] = []
  let group: string | undefined
  for (const step of steps) {
    if (step.group !== group) {
      if (group !== undefined) lines.push('')
      lines.push(`  // ${oneLine(step.group)}`)
      group = step.group
    }
    lines.push(`  await sql\`${templateText(step.sql)}\`.execute(db)`)
  }
  return lines
}

/** `text` inside a template literal, as typed: backslashes, backticks and `${` escaped. */
function templateText(text: string): string {
  return (
    text
      .replaceAll('\\', '\\\\')
      .replaceAll('`', '\\`')
      .replaceAll('${', '\\${')
      // A template literal reads a carriage return as a newline: kept as the escape it is.
      .replaceAll('\r', '\\r')
      .replaceAll('\u2028', '\\u2028')
      .replaceAll('\u2029', '\\u2029')
  )
}

function oneLine(text: string): string {
  // Every line terminator of JavaScript (\r, U+2028 and U+2029 as well as \n): text after one
  // would leave the comment and run as code.
  return text.replace(/\s*[\n\r\u2028\u2029]\s*/g, ' ').replaceAll('*/', '* /')
}
