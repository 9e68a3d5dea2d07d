/**
 * `npm run lint:sql`: exports the up and down SQL of every migration, as `npm run migrate:sql`
 * prints it, into a temporary directory (`<migration>.up.sql`, `<migration>.down.sql`) and runs
 * squawk over those files with the repository's .squawk.toml. The exit code is squawk's.
 * `--reporter <format>` goes to squawk, e.g. `npm run lint:sql -- --reporter=json`.
 *
 * The export runs each migration on a scratch in-memory database, never on DATABASE_URL.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import type { MigrationDirection } from '../export/migration-sql.js'
import { devToolMissingError } from './dev-tool-missing-error.js'
import { type CommandSpec, runCommandLine } from './run-command.js'

/** From src/cli and from dist/cli alike, two folders up is the repository. */
const SQUAWK_CONFIG = fileURLToPath(new URL('../../.squawk.toml', import.meta.url))

/**
 * Rules that do not apply to down scripts: a down drops what its up created. squawk's
 * configuration can only exclude a rule everywhere, so they are switched off per file with
 * squawk's own directive; the reason is recorded in .squawk.toml.
 */
const DOWN_SCRIPT_IGNORED_RULES = ['ban-drop-table', 'ban-drop-column'] as const

const spec = {
  script: 'lint:sql',
  summary:
    "lints the exported up and down SQL of every migration with squawk and .squawk.toml; exits with squawk's code.",
  options: {
    reporter: {
      type: 'string',
      valueName: '<format>',
      description: "squawk's report format: tty (default), gcc, json, gitlab",
      // squawk's own list (squawk --help, "possible values").
      choices: ['tty', 'gcc', 'json', 'gitlab'],
    },
  },
  notes: ['The SQL is exported on scratch embedded databases, never on DATABASE_URL.'],
} as const satisfies CommandSpec

/**
 * Writes the exported SQL of every migration into `directory`, one file per migration and
 * direction, and returns the file names in the order Kysely applies them.
 */
async function writeMigrationScripts(directory: string): Promise<string[]> {
  // Loaded once the arguments are checked: --help and a refused argument do not wait for them
  // (kysely, the migrations).
  const { migrationScripts } = await import('../export/migration-scripts.js')
  const fileNames: string[] = []
  for await (const { fileName, direction, sql } of migrationScripts()) {
    const directive =
      direction === 'down' ? `-- squawk-ignore-file ${DOWN_SCRIPT_IGNORED_RULES.join(', ')}\n` : ''
    // squawk parses SQL, not psql's meta-commands: the \set that stops a script run outside a
    // transaction at its first error is shown to it as a comment.
    const lintable = sql.replace(/^\\.*$/gm, (command) => `-- ${command}`)
    writeFileSync(join(directory, fileName), directive + lintable)
    fileNames.push(fileName)
  }
  return fileNames
}

function squawkExecutable(): string {
  const require = createRequire(import.meta.url)
  let packageJson: string
  try {
    packageJson = require.resolve('squawk-cli/package.json')
  } catch (error) {
    throw devToolMissingError(error, 'squawk-cli', 'lint:sql') ?? error
  }
  const { bin } = require(packageJson) as { bin: { squawk: string } }
  return join(dirname(packageJson), bin.squawk)
}

/** Runs squawk in `directory` (the file names in the config are relative to it) and resolves to its exit code. */
function runSquawk(
  squawkPath: string,
  directory: string,
  fileNames: string[],
  extraArgs: string[],
): Promise<number> {
  const squawk = spawn(
    process.execPath,
    [squawkPath, `--config=${SQUAWK_CONFIG}`, ...extraArgs, ...fileNames],
    { cwd: directory, stdio: 'inherit' },
  )
  return new Promise((resolve, reject) => {
    squawk.once('error', reject)
    squawk.once('exit', (code) => resolve(code ?? 1))
  })
}

async function main(extraArgs: string[]): Promise<number> {
  // Before the export, which takes a while: a missing squawk fails at once.
  const squawkPath = squawkExecutable()
  const directory = mkdtempSync(join(tmpdir(), 'x402-lint-sql-'))
  try {
    const fileNames = await writeMigrationScripts(directory)
    console.error(
      `lint:sql: squawk over ${fileNames.length} exported scripts with ${SQUAWK_CONFIG}`,
    )
    return await runSquawk(squawkPath, directory, fileNames, extraArgs)
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

runCommandLine(spec, ({ values }) => main(values.reporter ? [`--reporter=${values.reporter}`] : []))
