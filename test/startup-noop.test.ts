import type { Kysely } from 'kysely'
import { describe, expect, it } from 'vitest'

import { type DB, migrateOnStartup, migrateTo, pendingMigrationNames } from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { testTargets, withTestDatabase } from './support/test-database.js'

// Every app start calls migrateOnStartup. When nothing is pending it must cost one query (one
// round trip), whatever the size of the catalog: counted here statement by statement, as the
// driver sends them. (How long that takes is measured by `npm run bench`, not here.)

describe.each(testTargets)('the no-op start-up on %s', (target) => {
  async function withCountingDb(use: (db: Kysely<DB>, statements: string[]) => Promise<void>) {
    const statements: string[] = []
    await withTestDatabase(target, ({ db }) => use(db, statements), {
      onStatement: (sql) => void statements.push(sql),
    })
  }

  it('sends one statement when nothing is pending, and takes no lock', async () => {
    await withCountingDb(async (db, statements) => {
      await migrateOnStartup(db, { env: {}, log: () => {} })
      statements.length = 0

      expect(await migrateOnStartup(db, { env: {}, log: () => {} })).toEqual({
        skipped: false,
        applied: [],
      })
      expect(statements).toHaveLength(1)
      // The names, and in the same statement whether the table may be read without running
      // anyone's code (checked first), whether a rollback was interrupted (the marker) and
      // whether the table still has the primary key that keeps each name to one row.
      expect(statements[0]).toMatch(
        /^\s*SELECT m\.name, reverting_since IS NOT NULL AS reverting, EXISTS \(SELECT FROM pg_catalog\.pg_constraint[^]*AS keyed\s+FROM x402_migrations\.kysely_migration AS m TABLESAMPLE SYSTEM \(100\)[^]*WHERE \(SELECT c\.relkind OPERATOR\(pg_catalog\.=\) 'r' AND \(pg_catalog\.pg_has_role[^]*$/,
      )
      expect(statements[0]).not.toMatch(/to_jsonb|::text\b/)
    })
  })

  it('finds what is pending with that one statement, also before any history exists', async () => {
    await withCountingDb(async (db, statements) => {
      const known = migrationNames
      expect(await pendingMigrationNames(db)).toEqual(known)
      await migrateTo(db, '002_add_claude_integration')
      statements.length = 0
      expect(await pendingMigrationNames(db)).toEqual(
        known.filter((name) => name > '002_add_claude_integration'),
      )
      expect(statements).toHaveLength(1)
    })
  })

  it('starts an older release against a database a newer release migrated further', async () => {
    await withCountingDb(async (db) => {
      await migrateOnStartup(db, { env: {}, log: () => {} })
      await db
        .insertInto('x402_migrations.kysely_migration' as never)
        .values({ name: '999_from_a_newer_release', timestamp: new Date().toISOString() } as never)
        .execute()
      expect(await pendingMigrationNames(db)).toEqual([])
      expect(await migrateOnStartup(db, { env: {}, log: () => {} })).toEqual({
        skipped: false,
        applied: [],
      })
    })
  })
})
