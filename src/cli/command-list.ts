/**
 * Every command of `x402-db`, in one list: the top-level help prints it, the dispatcher
 * (dispatch.ts) runs from it, and the npm_config_dry_run guard reads from it what each command
 * changes. A new command is one entry here plus its module in src/cli/.
 *
 * Plain data, no import: `x402-db --help` and a refused command answer without loading
 * kysely, pg or PGlite.
 */

/** One command: `x402-db <name> [arguments]`. */
export interface CommandEntry {
  /** The words that name it, e.g. `migrate latest`. */
  name: string
  /**
   * The module that runs it, dist/cli/<module>.js, which reads the words after the module's
   * name from process.argv: `migrate latest --dry-run` runs migrate.js with `latest --dry-run`.
   */
  module: string
  /** The npm script that runs it in this repository, e.g. `migrate:latest`. */
  script: string
  /** One line for the top-level help. */
  summary: string
  /** What it changes where it runs: the target database, files of the repository, or nothing. */
  writes: 'database' | 'files' | 'nothing'
  /** The flag that makes it change nothing, where it has one. */
  dryRunFlag?: '--dry-run' | '--check'
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'migrate latest',
    module: 'migrate',
    script: 'migrate:latest',
    summary: 'applies every pending migration',
    writes: 'database',
    dryRunFlag: '--dry-run',
  },
  {
    name: 'migrate up',
    module: 'migrate',
    script: 'migrate:up',
    summary: 'applies the next pending migration',
    writes: 'database',
    dryRunFlag: '--dry-run',
  },
  {
    name: 'migrate down',
    module: 'migrate',
    script: 'migrate:down',
    summary: 'reverts the last applied migration (refuses to drop data unless allowed)',
    writes: 'database',
    dryRunFlag: '--dry-run',
  },
  {
    name: 'migrate redo',
    module: 'migrate',
    script: 'migrate:redo',
    summary: 'reverts and re-applies the last applied migration (the same data-loss guard as down)',
    writes: 'database',
  },
  {
    name: 'migrate new',
    module: 'migrate',
    script: 'migrate:new',
    summary: 'writes the next migration, src/migrations/NNN_<name>.ts, and registers it',
    writes: 'files',
  },
  {
    name: 'migrate list',
    module: 'migrate',
    script: 'migrate:list',
    summary: 'lists every migration: applied (with when), pending or reverting',
    writes: 'nothing',
  },
  {
    name: 'migrate check',
    module: 'migrate',
    script: 'migrate:check',
    summary: 'compares the live schema and the migration files with what was applied',
    writes: 'nothing',
  },
  {
    name: 'migrate pull',
    module: 'migrate',
    script: 'migrate:pull',
    summary: 'writes what the live database has beyond the migrations as the next migration',
    writes: 'database',
  },
  {
    name: 'migrate sql',
    module: 'migrate',
    script: 'migrate:sql',
    summary: 'prints the SQL a migration runs, up or down (on a scratch database)',
    writes: 'nothing',
  },
  {
    name: 'migrate baseline',
    module: 'migrate',
    script: 'migrate:baseline',
    summary: 'adopts a database built by hand, after checking its schema',
    writes: 'database',
  },
  {
    name: 'migrate-plan',
    module: 'migrate-plan',
    script: 'migrate:plan',
    summary: 'rehearses the pending migrations on a scratch copy: locks, rewrites, scans',
    writes: 'nothing',
  },
  {
    name: 'codegen',
    module: 'codegen',
    script: 'db:codegen',
    summary: 'writes src/types/database.ts from the migrated schema (--check compares)',
    writes: 'files',
    dryRunFlag: '--check',
  },
  {
    name: 'access',
    module: 'access',
    script: 'db:access',
    summary: 'measures what each API role may do, writes docs/access-matrix.md (--check compares)',
    writes: 'files',
    dryRunFlag: '--check',
  },
  {
    name: 'advise',
    module: 'advise',
    script: 'db:advise',
    summary:
      "runs Supabase's security lints on the live database, read-only (advisor-accepted.json)",
    writes: 'nothing',
  },
  {
    name: 'docs-migrations',
    module: 'docs-migrations',
    script: 'docs:migrations',
    summary: "writes each migration's up and down SQL into docs/migrations/ (--check compares)",
    writes: 'files',
    dryRunFlag: '--check',
  },
  {
    name: 'lint-sql',
    module: 'lint-sql',
    script: 'lint:sql',
    summary: "lints every migration's exported SQL with squawk",
    writes: 'nothing',
  },
  {
    name: 'lint-locks',
    module: 'lint-locks',
    script: 'lint:locks',
    summary: 'fails on a migration that blocks writes to a busy table (lock-policy.json)',
    writes: 'nothing',
  },
  {
    name: 'rotate-keys',
    module: 'rotate-keys',
    script: 'keys:rotate',
    summary: 're-encrypts every stored OpenRouter key with INTEGRATION_ENCRYPTION_SECRET',
    writes: 'database',
  },
]

/** The exit codes of every command, for the help. */
export const EXIT_CODES = [
  [0, 'done'],
  [1, 'failed, a failed connection included'],
  [2, 'usage error: an unknown command, flag or argument; nothing was done'],
  [3, 'drift or findings (migrate check, advise)'],
] as const
