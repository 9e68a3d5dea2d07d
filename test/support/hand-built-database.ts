import { readFileSync, rmSync } from 'node:fs'

import { type Kysely, sql } from 'kysely'
import pg from 'pg'

import { embeddedDatabase, IN_MEMORY } from '../../src/connection/create-db.js'
import type { TemplatePoint } from '../../src/templates/migrated-template.js'
import { createDb, type DB, MIGRATION_TABLE_SCHEMA, migrateTo } from '../../src/tooling.js'
import { createTestDatabase, type TestDatabase, type TestTarget, testTemplate } from './test-database.js'

/** The plan's 005 as one plain SQL script, as it was pasted into the SQL Editor. */
export const PLAN_005_SQL = readFileSync(new URL('../fixtures/plan-005-openrouter-integration.sql', import.meta.url), 'utf8')

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

/** How {@link createScriptableDatabase} makes a PGlite database. */
export interface ScriptableOptions {
  /**
   * Keep the PGlite database in a data folder, for a test that closes `db` to hand the folder
   * to the command line (`location`). Otherwise it lives in memory: loading the template into a
   * folder and running on it cost twice the CPU (issue 14), and `location` names no folder.
   */
  folder?: boolean
}

/**
 * A fresh test database that can also run plain SQL scripts. On PGlite, `startAt` starts it
 * from the template migrated that far (see createTestDatabase), in memory unless `folder` asks
 * for a data folder; on the server it is empty.
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
  { folder = false }: ScriptableOptions = {},
): Promise<ScriptableDatabase> {
  const database: TestDatabase =
    target === 'pglite' && !folder
      ? { db: createDb({ dataDir: IN_MEMORY, template: testTemplate(startAt) }), target, location: { dataDir: IN_MEMORY }, destroy: () => Promise.resolve() }
      : await createTestDatabase(target, {}, startAt)
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
        if (!folder) throw new Error('The in-memory test database was closed, and with it its contents: create it with { folder: true } to close and open it again.')
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
      if (folder) rmSync(location.dataDir, { recursive: true, force: true })
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
  options: ScriptableOptions = {},
): Promise<ScriptableDatabase> {
  // On PGlite the migrations are in the template already, and migrateTo finds nothing to do.
  const database = await createScriptableDatabase(target, builtTo, options)
  await migrateTo(database.db, builtTo)
  await sql`DROP SCHEMA ${sql.id(MIGRATION_TABLE_SCHEMA)} CASCADE`.execute(database.db)
  for (const script of scripts) await database.runScript(script)
  return database
}
