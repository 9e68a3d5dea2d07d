/**
 * `npm run db:codegen`: migrates a scratch in-memory database to the latest migration and has
 * kysely-codegen write src/db/types.ts from it, so no server is needed.
 * `npm run db:codegen -- --check` fails when the committed file differs from what it would write.
 */
import { fileURLToPath } from 'node:url'

import { generate, Logger, PostgresDialect } from 'kysely-codegen'

import { createDb, IN_MEMORY } from '../db/create-db.js'
import { MIGRATION_TABLE_SCHEMA, migrateToLatest } from '../db/migrator.js'

const TYPES_FILE = fileURLToPath(new URL('../db/types.ts', import.meta.url))

async function main(check: boolean): Promise<void> {
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
  } finally {
    await db.destroy()
  }
}

const check = process.argv.includes('--check')
main(check).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  // kysely-codegen has printed the diff already; its own hint names a flag of its CLI, not ours.
  console.error(
    check && message.startsWith('Generated types are not up-to-date')
      ? 'db:codegen --check failed: src/db/types.ts differs from what codegen produces now (diff above). Run `npm run db:codegen` and commit src/db/types.ts.'
      : `db:codegen failed: ${message}`,
  )
  process.exitCode = 1
})
