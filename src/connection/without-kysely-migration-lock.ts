import type { Dialect, DialectAdapter, Kysely } from 'kysely'

const adaptersWithoutKyselyLock = new WeakSet<DialectAdapter>()

/**
 * Wraps a dialect so that Kysely's Migrator takes no lock of its own: the runner holds
 * its own lock for the whole run. Kysely's Postgres lock is session-level, which
 * leaks through a transaction-mode pooler, and inside a migration transaction that failed its
 * unlock fails too ("current transaction is aborted") and hides the migration's error.
 *
 * @example
 * ```ts
 * new Kysely({ dialect: withoutKyselyMigrationLock(new PostgresDialect({ pool })) })
 * ```
 */
export function withoutKyselyMigrationLock(dialect: Dialect): Dialect {
  return {
    createAdapter: () => {
      // Same prototype, so that instanceof PGliteAdapter and every capability still hold.
      const adapter: DialectAdapter = Object.create(dialect.createAdapter(), {
        acquireMigrationLock: { value: async () => {} },
        releaseMigrationLock: { value: async () => {} },
      })
      adaptersWithoutKyselyLock.add(adapter)
      return adapter
    },
    createDriver: () => dialect.createDriver(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
  }
}

/**
 * Whether `db` was made by createDb, its dialect wrapped by {@link withoutKyselyMigrationLock}.
 *
 * @example
 * ```ts
 * hasKyselyMigrationLockDisabled(createDb()) // true
 * ```
 */
export function hasKyselyMigrationLockDisabled(db: Kysely<any>): boolean {
  return adaptersWithoutKyselyLock.has(db.getExecutor().adapter)
}
