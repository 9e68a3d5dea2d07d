import { defineConfig } from 'kysely-ctl'

import { createDb, createMigrator } from './src/tooling.js'

/**
 * kysely-ctl (`npx kysely migrate:list`, …) on the module's own database factory and migrator,
 * so it sees the same history and the same target (DATABASE_URL, or the embedded database) as
 * the npm scripts.
 */
export default defineConfig({
  kysely: () => createDb(),
  migrations: { migrator: (db) => createMigrator(db) },
})
