/**
 * What the migrate command line (migrate.ts) accepts, declared apart from what its commands do
 * (migrate-commands.ts): --help and a refused argument are answered before those, and the
 * modules they need (kysely, pg, the migrations), are loaded.
 */
import type { Kysely } from 'kysely'

import type { CommandSpec, OptionValues } from './command-line.js'
import { EXIT_NOTE, serverFromEnv } from './run-command.js'

const TARGET_NOTE =
  'Database: MIGRATION_DATABASE_URL, else DATABASE_URL, else the embedded database in PGLITE_DATA_DIR (default .data/pglite).'
const SCRATCH_NOTE = 'It runs on a scratch embedded database, never on DATABASE_URL.'
const PROGRESS_NOTE =
  'Each migration is listed with the time it took. On a terminal, a step that runs longer than 3 s is shown with the lock it waits for ' +
  "(and an index build's progress), read from another connection; never on the embedded database (one connection only)."

const jsonOption = {
  json: { type: 'boolean', description: 'prints one JSON document on stdout instead, for scripts' },
} as const
const dataLossOption = {
  'allow-data-loss': {
    type: 'boolean',
    description:
      'lets a down that would drop data go ahead, after it copied the data to schema x402_backup',
  },
} as const

const dryRunOptions = {
  'dry-run': {
    type: 'boolean',
    description: 'prints the migrations it would run, and changes nothing',
  },
  sql: { type: 'boolean', description: 'with --dry-run: prints the SQL of each of them too' },
} as const

export const specs = {
  latest: {
    script: 'migrate:latest',
    summary: 'applies every pending migration.',
    options: dryRunOptions,
    notes: [TARGET_NOTE, PROGRESS_NOTE, EXIT_NOTE],
  },
  up: {
    script: 'migrate:up',
    summary: 'applies the next pending migration.',
    options: dryRunOptions,
    notes: [TARGET_NOTE, PROGRESS_NOTE, EXIT_NOTE],
  },
  down: {
    script: 'migrate:down',
    summary: 'reverts the last applied migration.',
    options: { ...dataLossOption, ...dryRunOptions },
    notes: [TARGET_NOTE, PROGRESS_NOTE, EXIT_NOTE],
  },
  redo: {
    script: 'migrate:redo',
    summary:
      'reverts the last applied migration and applies it again, in one run under the migration lock.',
    options: dataLossOption,
    notes: [
      'The down goes through the same data-loss guard as migrate:down: it refuses where it would drop data, unless --allow-data-loss.',
      TARGET_NOTE,
      PROGRESS_NOTE,
      EXIT_NOTE,
    ],
  },
  list: {
    script: 'migrate:list',
    summary: 'lists every migration: applied (with when), pending or reverting.',
    options: jsonOption,
    notes: [TARGET_NOTE, EXIT_NOTE],
  },
  new: {
    script: 'migrate:new',
    summary:
      'writes the next migration, src/migrations/<next number>_<name>.ts, from a template, and registers it in index.ts.',
    positionals: [
      {
        name: 'name',
        description: 'what it does, in lowercase words joined by underscores: add_widget_notes',
      },
    ],
    notes: [
      'It refuses to overwrite a file, and needs no database. docs/adding-a-migration.md says what to do next.',
      EXIT_NOTE,
    ],
  },
  sql: {
    script: 'migrate:sql',
    summary:
      'prints the SQL that a migration runs, or with --baseline the adoption script of migrate:baseline.',
    positionals: [
      { name: 'name', description: 'the migration: its full name or a unique prefix such as 005' },
    ],
    options: {
      down: { type: 'boolean', description: 'prints the down (revert) SQL instead of the up' },
      baseline: {
        type: 'boolean',
        description: 'prints migrate:baseline <name> as one SQL script, for the SQL Editor',
      },
      strict: {
        type: 'boolean',
        description: 'with --baseline: the exact comparison, every difference a conflict',
      },
      'no-locks': {
        type: 'boolean',
        description:
          'leaves out the measured lock profile (-- locks: …) above each statement of an up script',
      },
    },
    notes: [
      SCRATCH_NOTE,
      "The lock comments are measured on a scratch database on REHEARSAL_DATABASE_URL's server when set (a server for rehearsals; dropped afterwards), else on a scratch embedded one.",
      EXIT_NOTE,
    ],
  },
  baseline: {
    script: 'migrate:baseline',
    summary:
      'adopts a database built by hand: records the migrations up to <name> as applied, after checking its schema.',
    positionals: [
      {
        name: 'name',
        description: 'the migration whose schema the database has: a full name or a unique prefix',
      },
    ],
    options: {
      strict: {
        type: 'boolean',
        description:
          'the exact comparison: every difference, even an equivalent or stricter one, refuses',
      },
      plan: {
        type: 'boolean',
        description:
          'prints a reviewable SQL repair plan for the conflicts it can fix safely, and what to decide for the others; runs nothing',
      },
    },
    notes: [TARGET_NOTE, EXIT_NOTE],
  },
  check: {
    script: 'migrate:check',
    summary:
      'compares the live schema and the migration files with what was applied; exits 3 on any difference.',
    options: {
      strict: {
        type: 'boolean',
        description: "counts every extra object on the module's tables as drift",
      },
      ...jsonOption,
    },
    notes: [TARGET_NOTE, EXIT_NOTE],
  },
  pull: {
    script: 'migrate:pull',
    summary:
      'writes the next migration, src/migrations/NNN_pulled_<name>.ts, with what the live database has beyond the migrations, registers it, and records the database at it.',
    positionals: [
      {
        name: 'name',
        description:
          "the migration's name after NNN_pulled_ (lower case, digits, _); default: schema",
        required: false,
      },
    ],
    notes: [
      TARGET_NOTE,
      'It runs on a database at the latest migration (adopt with migrate:baseline, then migrate:latest) and exits with 2 otherwise. See docs/pull.md.',
      EXIT_NOTE,
    ],
  },
} as const satisfies Record<string, CommandSpec>

export type Name = keyof typeof specs
export type Values<N extends Name> = OptionValues<(typeof specs)[N]>
/** A subcommand: it returns its exit code (nothing for 0), or throws to fail with 1. */
export type Command<N extends Name> = (
  db: () => Kysely<any>,
  values: Values<N>,
  positionals: string[],
) => Promise<number | void>

/** The commands that open no database. */
export const withoutDatabase: ReadonlySet<Name> = new Set<Name>(['new'])

/** Migrations may need a direct connection where the app goes through a transaction pooler. */
export function connectionOptions() {
  // Checked under its own name: a refusal says which variable to fix.
  return { connectionString: serverFromEnv(['MIGRATION_DATABASE_URL']) }
}
