import { execFileSync } from 'node:child_process'

import type { Kysely } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { embeddedDatabase } from '../src/connection/embedded-database.js'
import {
  ensureSupabaseStandIn,
  exportMigrationSql,
  migrateTo,
  migrateToLatest,
} from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { snapshotPublicSchema } from '../src/schema/snapshot.js'
import { withScriptFile } from './support/exported-script.js'
import { createTestDatabase, type TestTarget, testTargets } from './support/test-database.js'

// migrate:sql exports what a migration runs, for the Supabase SQL Editor or psql. Proven by
// running the exported scripts outside the module, as their header says (a transactional one as
// a single multi-statement script, as the SQL Editor does; one that runs outside a transaction
// with psql -f, statement by statement), and comparing the result with what the migrator builds.

interface ScriptDatabase {
  runScript(script: string): Promise<void>
  db: Kysely<any>
  destroy(): Promise<void>
}

/** A fresh database with the Supabase stand-in, on which whole scripts run in one go. */
async function createScriptDatabase(target: TestTarget): Promise<ScriptDatabase> {
  const database = await createTestDatabase(target)
  await ensureSupabaseStandIn(database.db)
  const { location } = database
  if ('connectionString' in location) {
    return {
      db: database.db,
      destroy: database.destroy,
      async runScript(script) {
        if (runsOutsideTransaction(script)) {
          // From a file: psql stops reading at an error, and a large script on its stdin fails with EPIPE.
          await withScriptFile(script, (file) =>
            execFileSync('psql', [
              '-X',
              '-q',
              '-v',
              'ON_ERROR_STOP=1',
              '-d',
              location.connectionString,
              '-f',
              file,
            ]),
          )
          return
        }
        const client = new pg.Client({ connectionString: location.connectionString })
        await client.connect()
        await client.query(script).finally(() => client.end())
      },
    }
  }
  // PGlite has no psql: the module's own instance runs the scripts with exec(), which takes a
  // whole multi-statement script (closing it and opening the folder again would start PGlite twice).
  const pglite = await embeddedDatabase(database.db)
  return {
    db: database.db,
    destroy: database.destroy,
    async runScript(script) {
      if (!runsOutsideTransaction(script)) return void (await pglite.exec(script))
      // One statement at a time, split where the export ends one, without psql's \set: a
      // failure stops the loop as ON_ERROR_STOP stops psql.
      for (const statement of withoutPsqlCommands(script).split(/;\n\n/))
        await pglite.exec(statement)
    },
  }
}

/** The script without its psql meta-commands (`\set …`), for a client that sends SQL only. */
function withoutPsqlCommands(script: string): string {
  return script.replace(/^\\.*\n/gm, '')
}

function runsOutsideTransaction(script: string): boolean {
  return script.includes('-- It runs outside a transaction')
}

describe.each(testTargets)('exported migration SQL on %s', (target) => {
  it('builds, script by script, the schema the migrator builds; the down scripts from the newest to 005 revert it', async () => {
    const byScripts = await createScriptDatabase(target)
    // On PGlite, from the template that the migrator built to the newest (made once, cached):
    // migrateToLatest then has nothing left to do there.
    const byMigrator = await createTestDatabase(target, {}, 'latest')
    try {
      for (const name of migrationNames)
        await byScripts.runScript(await exportMigrationSql(name, 'up'))
      await migrateToLatest(byMigrator.db)
      expect(await snapshotPublicSchema(byScripts.db)).toEqual(
        await snapshotPublicSchema(byMigrator.db),
      )

      for (const name of migrationNames
        .filter((later) => later >= '005_add_openrouter_integration')
        .toReversed()) {
        await byScripts.runScript(await exportMigrationSql(name, 'down'))
      }
      await migrateTo(byMigrator.db, '002_add_claude_integration')
      expect(await snapshotPublicSchema(byScripts.db)).toEqual(
        await snapshotPublicSchema(byMigrator.db),
      )
    } finally {
      await byScripts.destroy()
      await byMigrator.destroy()
    }
    // Each export replays the migrations before it on a scratch database of its own: the work
    // grows with every migration, beyond the default limit on a busy machine.
  }, 180_000)

  it('accepts a unique prefix, and refuses an unknown name with the list of known ones', async () => {
    expect(await exportMigrationSql('005')).toBe(
      await exportMigrationSql('005_add_openrouter_integration'),
    )
    await expect(exportMigrationSql('999')).rejects.toThrow(
      /^No migration is named "999"\. Known migrations: 000_baseline_ai_models, /,
    )
    await expect(exportMigrationSql('000')).rejects.toThrow('"000" matches several migrations')
  })
})
