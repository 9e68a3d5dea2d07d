import type { Kysely } from 'kysely'
import type { Migration, MigrationProvider } from 'kysely/migration'

import { migrations } from '../migrations/index.js'
import { ensureSupabaseStandIn } from './supabase-stand-in.js'

/**
 * The module's migrations, for Kysely's Migrator (and kysely-ctl). Each `up` first makes sure
 * the Supabase platform pieces exist ({@link ensureSupabaseStandIn}: a no-op on Supabase), so
 * that every way of migrating a plain PostgreSQL or PGlite database gets them, while the
 * migration files themselves stay frozen history that imports nothing but kysely.
 *
 * @example
 * ```ts
 * new Migrator({ db, provider: migrationProvider })
 * ```
 */
export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return Object.fromEntries(
      Object.entries(migrations).map(([name, migration]) => [name, withSupabaseStandIn(migration)]),
    )
  },
}

function withSupabaseStandIn(migration: Migration): Migration {
  return {
    ...migration,
    async up(db: Kysely<any>) {
      await ensureSupabaseStandIn(db)
      await migration.up(db)
    },
  }
}
