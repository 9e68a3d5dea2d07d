/**
 * `migrate:new <name>`: writes the next migration of src/migrations from a template that keeps
 * the module's lock discipline, and registers it in src/migrations/index.ts.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

import { describeArgument, UsageError } from './command-line.js'

/** From src/cli and from dist/cli alike, two folders up is the repository: the TypeScript sources. */
const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../src/migrations/', import.meta.url))

/** Lowercase words of letters and digits, joined by single underscores, starting with a letter. */
const NAME = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/
const MAX_NAME_LENGTH = 60

/**
 * Writes `<next number>_<name>.ts` into `folder` (the repository's src/migrations) from the
 * template, and adds its import and entry to `folder`/index.ts. The next number is the highest
 * of the files there plus one, on three digits. Refuses a name that is not lowercase words
 * joined by underscores (a {@link UsageError}), a name that a migration has already, and a file
 * that exists; in a copy installed under node_modules, where there is no repository to write to.
 *
 * @example
 * ```ts
 * writeNewMigration('add_widget_notes').file // '/repo/src/migrations/009_add_widget_notes.ts'
 * ```
 */
export function writeNewMigration(
  name: string,
  folder = MIGRATIONS_FOLDER,
): { file: string; registry: string } {
  if (!NAME.test(name) || name.length > MAX_NAME_LENGTH) {
    throw new UsageError(
      `migrate:new needs a name of lowercase words joined by underscores, at most ${MAX_NAME_LENGTH} characters, ` +
        `such as add_widget_notes; got ${name === '' ? 'none' : describeArgument(name)}. usage: npm run migrate:new -- <name>`,
    )
  }
  if (folder.split(sep).includes('node_modules')) {
    throw new Error(
      `migrate:new writes into the module's own src/migrations, and this copy is installed under node_modules (${folder}): ` +
        "run it in a clone of the module's repository.",
    )
  }
  const files = readdirSync(folder).filter((file) => /^\d{3}_\w+\.ts$/.test(file))
  const same = files.find((file) => file.slice(4, -3) === name)
  if (same)
    throw new UsageError(
      `a migration named ${name} exists already: ${join(folder, same)}. Nothing was written. ` +
        `Choose another name (npm run migrate:new -- <name>), or edit ${join(folder, same)} if it is the one you meant.`,
    )
  const next = String(Math.max(-1, ...files.map((file) => Number(file.slice(0, 3)))) + 1).padStart(
    3,
    '0',
  )
  if (next.length > 3)
    throw new Error(
      `src/migrations has migration 999 already: the numbering has three digits. Nothing was written.`,
    )
  const migrationName = `${next}_${name}`
  const file = join(folder, `${migrationName}.ts`)
  const registry = join(folder, 'index.ts')
  const registered = register(readFileSync(registry, 'utf8'), migrationName)
  // 'wx': never over a file that exists, even one written a moment ago by another process.
  writeFileSync(file, migrationTemplate(name), { flag: 'wx' })
  writeFileSync(registry, registered)
  return { file, registry }
}

/** index.ts with `migrationName` imported after the last import of a migration and listed after the last entry. */
function register(source: string, migrationName: string): string {
  const identifier = `m${migrationName
    .split('_')
    .map((word, index) => (index === 0 ? word : word[0]!.toUpperCase() + word.slice(1)))
    .join('')}`
  const lines = source.split('\n')
  const lastImport = lines.findLastIndex((line) =>
    /^import \* as m\w+ from '\.\/\d{3}_\w+\.js'$/.test(line),
  )
  const lastEntry = lines.findLastIndex((line) => /^ {2}'\d{3}_\w+': m\w+,$/.test(line))
  if (lastImport === -1 || lastEntry === -1 || lastEntry < lastImport) {
    throw new Error(
      "src/migrations/index.ts is not laid out as migrate:new expects (an `import * as m… from './NNN_….js'` line per " +
        "migration, and a `'NNN_…': m…,` entry each): nothing was written. Register the migration by hand.",
    )
  }
  lines.splice(lastEntry + 1, 0, `  '${migrationName}': ${identifier},`)
  lines.splice(lastImport + 1, 0, `import * as ${identifier} from './${migrationName}.js'`)
  return lines.join('\n')
}

/**
 * The new migration's source: a new table, named after `name` without its leading verb
 * (`add_widget_notes` → `x402_widget_notes`), with row level security and a service-role policy,
 * and its down; and, in comments, the lock discipline for a change to a table the app uses.
 */
function migrationTemplate(name: string): string {
  const table = `x402_${name.replace(/^(add|create|new)_(?=.)/, '')}`.slice(0, 63)
  const words = table.replace(/^x402_/, '').replace(/_/g, ' ')
  return `import { type Kysely, sql } from 'kysely'

/**
 * TODO: what this migration changes, and why.
 *
 * The lock discipline of the module (docs/adding-a-migration.md, lock-policy.json):
 * - The runner sets lock_timeout and statement_timeout before up and down, and tries again a
 *   migration whose lock wait timed out; do not set or lift them here without a reason.
 * - It runs in the run's transaction. On a table the app uses (lock-policy.json's busyTables),
 *   change only the catalog, and lock that table last: a nullable column without a default, or
 *   with a constant one; a CHECK or foreign key NOT VALID. Never a rewrite or a scan while it
 *   holds ACCESS EXCLUSIVE:
 *     await sql\`ALTER TABLE x402_resources ADD COLUMN widget_note text\`.execute(db)
 * - What scans or builds on such a table goes outside the transaction, with
 *   \`export const config = { transaction: false }\` and each step re-runnable:
 *     ALTER TABLE … VALIDATE CONSTRAINT …, CREATE INDEX CONCURRENTLY IF NOT EXISTS …
 *   as 005_add_openrouter_integration.ts does. Such a migration writes rows only inside
 *   db.transaction(), which the runner fences (ARCHITECTURE.md: no write runs a lesser role's trigger).
 * - npm run lint:locks (and migrate:plan on a copy of production) measures what each statement
 *   locks; npm run lint:sql runs squawk on its SQL.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // A new table: no one uses it yet, so its locks stall nothing.
  await db.schema
    .createTable('${table}')
    .addColumn('id', 'uuid', (col) => col.primaryKey().defaultTo(sql\`gen_random_uuid()\`))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql\`now()\`))
    .execute()
  // Supabase's API reaches every table in public as anon and authenticated: row level security
  // on, and a policy for each role that may use it (here the backend's service role only).
  await sql\`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY\`.execute(db)
  await sql\`
    CREATE POLICY "Service role full access on ${words}" ON ${table}
    FOR ALL TO service_role
    USING (true)
    WITH CHECK (true)
  \`.execute(db)
  await sql\`COMMENT ON TABLE ${table} IS 'TODO: what one row is, and who writes it.'\`.execute(db)
}

/**
 * Drops what up created. Where the table has rows, the runner refuses it unless the run allows
 * data loss, and then copies them to schema x402_backup first.
 */
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('${table}').execute()
}
`
}
