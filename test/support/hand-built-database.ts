import { readFileSync, rmSync } from 'node:fs'

import { type Kysely, sql } from 'kysely'
import pg from 'pg'

import { embeddedDatabase } from '../../src/connection/embedded-database.js'
import type { TemplatePoint } from '../../src/migrated-dumps/migrated-template.js'
import { createDb, type DB, MIGRATION_TABLE_SCHEMA, migrateTo } from '../../src/tooling.js'
import { createTestDatabase, type TestDatabase, type TestTarget } from './test-database.js'

/** The plan's 005 as one plain SQL script, as it was pasted into the SQL Editor. */
export const PLAN_005_SQL = readFileSync(
  new URL('../fixtures/plan-005-openrouter-integration.sql', import.meta.url),
  'utf8',
)

/**
 * What production has on x402_resources beyond the baseline, in small: a column and an index that
 * no migration of the module creates (like production's search_vector).
 */
export const PRODUCTION_ONLY_SQL =
  'ALTER TABLE x402_resources ADD COLUMN search_vector tsvector; ' +
  'CREATE INDEX idx_x402_resources_search ON x402_resources USING gin (search_vector);'

/** A test database on which whole SQL scripts can also be run, outside the module. */
export interface ScriptableDatabase extends TestDatabase {
  /**
   * Runs `script` as one multi-statement script, as the Supabase SQL Editor does: through a
   * plain pg client, or PGlite's exec() in `db`'s instance (its one session, reset afterwards
   * as a new one would start; `db` is opened again if the test had closed it, in a folder).
   * Rejects with the server's error.
   */
  runScript(script: string): Promise<void>
}

/**
 * A fresh test database that can also run plain SQL scripts. On PGlite, `startAt` starts it
 * from the template migrated that far, in a data folder that `location` names (see
 * createTestDatabase: a copy of a folder loaded once, cheaper to start and to run on than a
 * database loaded in memory), so that a test can close `db` and hand the folder to the
 * command line; on the server it is empty.
 *
 * @example
 * ```ts
 * const database = await createScriptableDatabase('pglite')
 * await database.runScript('CREATE TABLE t (id int)')
 * ```
 */
export async function createScriptableDatabase(
  target: TestTarget,
  startAt: TemplatePoint = 'none',
): Promise<ScriptableDatabase> {
  const database = await createTestDatabase(target, {}, startAt)
  const { location } = database
  if ('connectionString' in location) {
    return {
      ...database,
      db: database.db,
      async runScript(script) {
        const client = new pg.Client({ connectionString: location.connectionString })
        await client.connect()
        await client.query(script).finally(() => client.end())
      },
    }
  }
  // A test closes db for a command line to open the folder, then may run a script again.
  let closed = false
  const tracked = (instance: Kysely<DB>): Kysely<DB> => {
    const destroy = instance.destroy.bind(instance)
    instance.destroy = () => {
      closed = true
      return destroy()
    }
    return instance
  }
  let db = tracked(database.db)
  return {
    target,
    location,
    get db() {
      return db
    },
    async runScript(script) {
      // In db's own instance (opened as the module opens it): PGlite takes one session, and
      // closing db to open the folder again cost a start of PGlite (0.5 s) per script.
      if (closed) {
        db = tracked(createDb({ dataDir: location.dataDir }))
        closed = false
      }
      const pglite = await embeddedDatabase(db)
      try {
        await pglite.exec(script)
      } finally {
        // What a new session would start from, as the SQL Editor's next run and the server's
        // new client do: no transaction a failed script left open, no SET it made.
        if (pglite.isInTransaction()) await pglite.exec('ROLLBACK')
        await pglite.exec('DISCARD ALL')
      }
    },
    async destroy() {
      await db.destroy()
      rmSync(location.dataDir, { recursive: true, force: true })
    },
  }
}

/**
 * A database as production got it: the schema of the migrations up to `builtTo` with no
 * migration history (built by the migrator, then x402_migrations dropped: what the hand-applied
 * SQL files left), and then `scripts` pasted in, such as the plan's SQL for 005.
 *
 * @example
 * ```ts
 * const database = await createHandBuiltDatabase('postgres', '002_add_claude_integration', [PLAN_005_SQL])
 * ```
 */
export async function createHandBuiltDatabase(
  target: TestTarget,
  builtTo: string,
  scripts: string[] = [],
): Promise<ScriptableDatabase> {
  // On PGlite the migrations are in the template already, and migrateTo finds nothing to do.
  const database = await createScriptableDatabase(target, builtTo)
  await migrateTo(database.db, builtTo)
  await sql`DROP SCHEMA ${sql.id(MIGRATION_TABLE_SCHEMA)} CASCADE`.execute(database.db)
  for (const script of scripts) await database.runScript(script)
  return database
}
