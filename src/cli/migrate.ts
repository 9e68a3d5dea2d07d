/**
 * The migration command line, behind the npm scripts:
 *
 *   migrate:latest | migrate:up | migrate:list
 *   migrate:down [-- --allow-data-loss]
 *   migrate:sql -- <name> [--down]
 *
 * It works on MIGRATION_DATABASE_URL when set, else DATABASE_URL, otherwise on the embedded
 * database (PGLITE_DATA_DIR, default .data/pglite). Progress goes to stderr, results (the list, the SQL) to stdout. On
 * failure it prints one line saying why and exits with 1.
 */
import type { Kysely } from 'kysely'
import type { MigrationResult } from 'kysely/migration'

import { createDb, describeDatabaseTarget, resolveDatabaseTarget } from '../db/create-db.js'
import { exportMigrationSql, resolveMigrationName } from '../db/migration-sql.js'
import { migrateDown, migrateToLatest, migrateUp, migrationStatus } from '../db/migrator.js'

const USAGE = 'usage: migrate <latest | up | down [--allow-data-loss] | list | sql <name> [--down]>'

type Command = (db: () => Kysely<any>, args: string[]) => Promise<void>

const commands: Record<string, Command> = {
  latest: (db) => report(migrateToLatest(db()), 'Already up to date: no pending migration.'),
  up: (db) => report(migrateUp(db()), 'Nothing to apply: no pending migration.'),
  down: (db, args) => {
    const unknownFlags = args.filter((arg) => arg !== '--allow-data-loss')
    if (unknownFlags.length > 0) throw new Error(`migrate:down takes only --allow-data-loss, not ${unknownFlags.join(' ')}. ${USAGE}`)
    // Unset, the environment (MIGRATION_ALLOW_DATA_LOSS) decides.
    const allowDataLoss = args.includes('--allow-data-loss') || undefined
    return report(migrateDown(db(), { allowDataLoss }), 'Nothing to roll back: no migration is applied.')
  },
  list: async (db) => {
    for (const { name, appliedAt } of await migrationStatus(db())) {
      console.log(`${appliedAt ? 'applied' : 'pending'}  ${appliedAt?.toISOString() ?? '-'.padEnd(24)}  ${name}`)
    }
  },
  // Runs on a scratch in-memory database, never on the target.
  sql: async (_db, args) => {
    const names = args.filter((arg) => !arg.startsWith('--'))
    const unknownFlags = args.filter((arg) => arg.startsWith('--') && arg !== '--down')
    if (names.length !== 1 || unknownFlags.length > 0) {
      throw new Error(`migrate:sql takes one migration name and optionally --down. ${USAGE}`)
    }
    const name = resolveMigrationName(names[0]!)
    process.stdout.write(await exportMigrationSql(name, args.includes('--down') ? 'down' : 'up'))
  },
}

async function report(run: Promise<MigrationResult[]>, nothingDone: string): Promise<void> {
  const results = await run
  for (const { migrationName, direction } of results) {
    console.error(`${direction === 'Up' ? 'applied ' : 'reverted'} ${migrationName}`)
  }
  if (results.length === 0) console.error(nothingDone)
}

async function main(argv: string[]): Promise<void> {
  const [name, ...args] = argv
  const command = name === undefined ? undefined : commands[name]
  if (!command) throw new Error(`unknown command "${name ?? ''}". ${USAGE}`)

  let db: Kysely<any> | undefined
  const openDb = () => {
    // Migrations may need a direct connection where the app goes through a transaction pooler.
    const options = { connectionString: process.env.MIGRATION_DATABASE_URL?.trim() || undefined }
    console.error(`Database: ${describeDatabaseTarget(resolveDatabaseTarget(options))}`)
    db = createDb(options)
    return db
  }
  try {
    await command(openDb, args)
  } finally {
    await db?.destroy()
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  console.error(`migrate ${process.argv[2] ?? ''} failed: ${message.replace(/\s*\n\s*/g, ' ')}`)
  process.exitCode = 1
})
