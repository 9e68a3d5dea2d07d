/**
 * `npm run docs:migrations`: writes each migration's up and down SQL, as `npm run migrate:sql`
 * exports it, into docs/migrations/<migration>.up.sql and .down.sql, for reviewers who read SQL,
 * and the restore script of 005's backups (docs/rollback.md).
 * `npm run docs:migrations:check` writes nothing and fails when a file there is stale, missing or
 * left over from a migration that no longer exists.
 *
 * The export runs each migration on a scratch embedded database, never on DATABASE_URL.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { type CommandSpec, runCommandLine } from './run-command.js'

/** From src/cli and from dist/cli alike, two folders up is the repository. */
const DOCS_DIR = fileURLToPath(new URL('../../docs/migrations', import.meta.url))

const spec = {
  script: 'docs:migrations',
  summary:
    "writes each migration's up and down SQL, as migrate:sql exports it, into docs/migrations/.",
  options: {
    check: {
      type: 'boolean',
      description: 'writes nothing; fails when a file in docs/migrations/ is not current',
    },
  },
  notes: ['The SQL is exported on scratch embedded databases, never on DATABASE_URL.'],
} as const satisfies CommandSpec

async function main(check: boolean): Promise<void> {
  // Loaded once the arguments are checked: --help and a refused argument do not wait for them.
  const { migrationScripts, scriptFolderDifferences } =
    await import('../export/migration-scripts.js')
  const scripts = new Map<string, string>()
  const { RESTORE_005_FILE, restoreScriptOf005 } = await import('../export/restore-005-script.js')
  for await (const { fileName, sql } of migrationScripts()) scripts.set(fileName, sql)
  scripts.set(RESTORE_005_FILE, restoreScriptOf005())
  const { stale, extra } = scriptFolderDifferences(DOCS_DIR, scripts)

  if (!check && stale.length + extra.length === 0) {
    console.error(`docs/migrations/ is current (${scripts.size} files): nothing written.`)
    return
  }
  if (!check) {
    mkdirSync(DOCS_DIR, { recursive: true })
    for (const file of extra) rmSync(join(DOCS_DIR, file))
    for (const file of stale) writeFileSync(join(DOCS_DIR, file), scripts.get(file)!)
    console.error(
      `docs/migrations/: ${stale.length} file(s) written, ${extra.length} removed, of ${scripts.size}. ` +
        'Review their diff, and commit them with the migration.',
    )
    return
  }
  if (stale.length === 0 && extra.length === 0) {
    console.error(`docs/migrations/ is current (${scripts.size} files).`)
    return
  }
  throw new Error(
    'docs/migrations/ differs from what the migrations export now: ' +
      [
        ...stale.map((file) => `${file} is stale or missing`),
        ...extra.map((file) => `${file} has no migration`),
      ].join(', ') +
      '. Run `npm run docs:migrations` and commit docs/migrations/.',
  )
}

runCommandLine(spec, ({ values }) => main(values.check))
