/**
 * `npm run db:codegen`: migrates a scratch in-memory database to the latest migration and has
 * kysely-codegen write src/types/database.ts from it, so no server is needed.
 * `npm run db:codegen -- --check` fails when the committed file differs from what it would write.
 */
import { fileURLToPath } from 'node:url'

import { generate, Logger, PostgresDialect } from 'kysely-codegen'

import { createDb, IN_MEMORY } from '../connection/create-db.js'
import { MIGRATION_TABLE_SCHEMA } from '../migrator/history.js'
import { migrateToLatest } from '../migrator/migrator.js'
import { runCommand } from './run-command.js'

const TYPES_FILE = fileURLToPath(new URL('../types/database.ts', import.meta.url))

async function main(args: string[]): Promise<void> {
  const check = args.includes('--check')
  const db = createDb({ dataDir: IN_MEMORY })
  try {
    await migrateToLatest(db)
    await generate({
      db,
      dialect: new PostgresDialect(),
      outFile: TYPES_FILE,
      excludePattern: `${MIGRATION_TABLE_SCHEMA}.*`,
      overrides: { columns: { 'x402_resources.openrouter_config': 'OpenRouterConfig | null' } },
      customImports: { OpenRouterConfig: './openrouter-config.js' },
      typeOnlyImports: true,
      verify: check,
      logger: new Logger('info'),
    })
  } catch (error) {
    // kysely-codegen has printed the diff already; its own hint names a flag of its CLI, not ours.
    if (check && error instanceof Error && error.message.startsWith('Generated types are not up-to-date')) {
      throw new Error(
        'src/types/database.ts differs from what codegen produces now (diff above). Run `npm run db:codegen` and commit src/types/database.ts.',
      )
    }
    throw error
  } finally {
    await db.destroy()
  }
}

runCommand(process.argv.includes('--check') ? 'db:codegen --check' : 'db:codegen', main)
