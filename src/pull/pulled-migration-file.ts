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
          ...header.notPulled.map((line) => ` * - ${commentText(line)}`),
        ]
      : []
  const lock =
    header.touchedTables.length > 0
      ? [
          ' *',
          ` * It changes tables that the migrations create (${commentText(header.touchedTables.join(', '))}), under one ACCESS EXCLUSIVE`,
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
    ` * The live schema beyond ${commentText(header.after)}, pulled by \`npm run migrate:pull\` from`,
    ` * ${commentText(header.schemas.join(', '))}: generated from the catalog (see docs/pull.md), for review like any migration.`,
    ' * Ordered to apply after the migrations before it: types, the functions that defaults call,',
    ' * tables, foreign keys once every table exists, functions, views, triggers, policies, grants.',
    ...lock,
    ...notPulled,
    ' */',
    'export async function up(db: Kysely<any>): Promise<void> {',
    ...header.busyTables.map(
      (table) =>
        `  // lint:locks allow ${commentText(table)}: the database it was pulled from has this already and never runs it`,
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
      lines.push(`  // ${commentText(step.group)}`)
      group = step.group
    }
    lines.push(`  await sql\`${templateText(step.sql)}\`.execute(db)`)
  }
  return lines
}

/*
 * Everything the catalog gives (names, comments, definitions) reaches the file through one of
 * the two functions below, and nowhere else: commentText for the comments (the header, a
 * group's heading, lint:locks' exceptions), templateText for the `sql` templates. Text that
 * left either would be JavaScript, run as the developer's user by the next command that loads
 * the migrations, before anyone reviewed it (rev-a7).
 */

/**
 * `text` inside a template literal, as typed: its cooked value is `text` byte for byte.
 * Backslashes first (so that no escape added after is undone), then the backtick that would end
 * the literal and the `${` that would open code, and the line terminators a template literal
 * does not keep as they are (a carriage return is read as a newline).
 *
 * @example
 * ```ts
 * templateText('a`${b}') // 'a\\`\\${b}'
 * ```
 */
export function templateText(text: string): string {
  return text
    .replaceAll('\\', '\\\\')
    .replaceAll('`', '\\`')
    .replaceAll('${', '\\${')
    .replaceAll('\r', '\\r')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029')
}

/** Controls and the characters that reorder or hide text (Trojan Source), shown as escapes in a comment. */
const UNSEEN =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g

/**
 * `text` as one line inside a `/* … *\/` or `//` comment: every JavaScript line terminator (\n,
 * \r, U+2028, U+2029) with the space around it becomes one space, so nothing after it leaves a
 * `//` comment; `*\/` becomes `* /`, so nothing leaves a block comment; and a control or
 * direction character is shown as its escape, so that the reviewer reads what the name is.
 *
 * @example
 * ```ts
 * commentText("*\/import('x')/*") // "* /import('x')/*"
 * ```
 */
export function commentText(text: string): string {
  return text
    .replace(/\s*[\n\r\u2028\u2029]\s*/g, ' ')
    .replace(UNSEEN, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replaceAll('*/', '* /')
}
