/**
 * `npm run db:codegen`: migrates a scratch in-memory database to the latest migration and has
 * kysely-codegen write src/types/database.ts from it, so no server is needed.
 * `npm run db:codegen -- --check` fails when the committed file differs from what it would write.
 */
import { fileURLToPath } from 'node:url'

import { devToolMissingError } from './dev-tool-missing-error.js'
import { type CommandSpec, runCommandLine } from './run-command.js'

/** From src/cli and from dist/cli alike, two folders up is the repository: the file is the TypeScript source. */
const TYPES_FILE = fileURLToPath(new URL('../../src/types/database.ts', import.meta.url))

const spec = {
  script: 'db:codegen',
  summary:
    'writes src/types/database.ts from a scratch embedded database migrated to the latest migration.',
  options: {
    check: {
      type: 'boolean',
      description: 'writes nothing; fails when the committed file differs from what it would write',
    },
  },
  notes: ['No server is needed: it never connects to DATABASE_URL.'],
} as const satisfies CommandSpec

/**
 * Rewrites, on the scratch database only, every comment of a relation or column that holds the
 * end of a block comment (a star, then a slash) with a space between the two, so that
 * kysely-codegen's comment blocks hold it whole.
 */
const COMMENTS_KEPT_IN_THEIR_BLOCK = `UPDATE pg_catalog.pg_description
  SET description = pg_catalog.replace(description, '*/', '* /')
  WHERE classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND pg_catalog.strpos(description, '*/') > 0`

async function main(check: boolean): Promise<void> {
  // Loaded only now, like kysely-codegen: --help and a refused argument do not wait for them.
  // One after the other: kysely-codegen require()s kysely, which Node refuses while an import()
  // of kysely running beside it has not finished ("not yet fully loaded").
  const { generate, Logger, PostgresDialect } = await import('kysely-codegen').catch(
    (error: unknown) => {
      throw devToolMissingError(error, 'kysely-codegen', 'db:codegen') ?? error
    },
  )
  const { MIGRATION_TABLE_SCHEMA } = await import('../migrator/history.js')
  const { migrateToLatest } = await import('../migrator/migrator.js')
  const { scratchDatabase } = await import('../migrated-dumps/migrated-template.js')
  const { sql } = await import('kysely')
  const db = scratchDatabase('latest')
  try {
    await migrateToLatest(db)
    // kysely-codegen writes a comment into a block comment as it is: one that holds the block's
    // end (a pulled migration carries production's text) would end it there and write code.
    await sql.raw(COMMENTS_KEPT_IN_THEIR_BLOCK).execute(db)
    await generate({
      db,
      dialect: new PostgresDialect(),
      outFile: TYPES_FILE,
      excludePattern: `${MIGRATION_TABLE_SCHEMA}.*`,
      // The CHECK-constrained text columns as unions of their values; test/allowed-values.test.ts
      // keeps src/types/allowed-values.ts in step with the constraints.
      overrides: {
        columns: {
          'x402_resources.openrouter_config': 'OpenRouterConfig | null',
          'x402_resources.resource_type': 'Generated<ResourceType>',
          'x402_resources.network': 'Network',
        },
      },
      customImports: {
        OpenRouterConfig: './openrouter-config.js',
        ResourceType: './allowed-values.js',
        Network: './allowed-values.js',
      },
      typeOnlyImports: true,
      verify: check,
      logger: new Logger('info'),
    })
  } catch (error) {
    // kysely-codegen has printed the diff already; its own hint names a flag of its CLI, not ours.
    if (
      check &&
      error instanceof Error &&
      error.message.startsWith('Generated types are not up-to-date')
    ) {
      throw new Error(
        'src/types/database.ts differs from what codegen produces now (diff above). Run `npm run db:codegen` and commit src/types/database.ts.',
      )
    }
    throw error
  } finally {
    await db.destroy()
  }
}

runCommandLine(spec, ({ values }) => main(values.check))
