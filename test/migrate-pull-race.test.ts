import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'

import { type Kysely, sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'

import { migrationNames, migrations } from '../src/migrations/index.js'
import { MIGRATION_LOCK_KEY, migrateToLatest, recordedMigrationNames } from '../src/tooling.js'
import { cliEnv } from './support/cli.js'
import { commandIn, copyOfTheRepository } from './support/repository-copy.js'
import {
  killRunningScripts,
  type ScriptProcess,
  type ScriptResult,
  startScript,
} from './support/script-process.js'
import { createTestDatabase, serverUrl, type TestDatabase } from './support/test-database.js'

// migrate:pull compares the history with the migrations (every one applied) and reads the live
// schema before it takes the migration lock. Another run that changes the history meanwhile
// (migrate:down or redo by a second operator, CI) must make the pull refuse under the lock,
// writing and recording nothing: before, it recorded a reverted migration as applied (it never
// ran) with the pulled one on top. The interleaving is made by holding the lock, without
// timing: the test's session takes it, the pull passes its check and waits for it, and the
// test's session, as the other run, changes the history and commits.

const skipReason = process.env.TEST_DATABASE_URL
  ? undefined
  : 'TEST_DATABASE_URL is not set: a PGlite data folder takes one process at a time, so no other run can come between'

const latest = migrationNames.at(-1)!
const pulled = `${String(Number.parseInt(latest.slice(0, 3), 10) + 1).padStart(3, '0')}_pulled_race`

/** The other run's steps, as migrate:down takes them: the down, then the history row and checksum. */
async function revertLatest(holder: Kysely<any>): Promise<void> {
  await migrations[latest]!.down!(holder)
  await sql`DELETE FROM x402_migrations.kysely_migration WHERE name = ${latest}`.execute(holder)
  await sql`DELETE FROM x402_migrations.migration_checksum WHERE name = ${latest}`.execute(holder)
}

/**
 * A database at the latest migration with a table beyond it, and a copy of the repository; a
 * pull started there passes its check and waits for the lock, which the test's session holds,
 * and `otherRun` runs on that session and commits. Then `after` gets the pull's result.
 */
async function pullWhileAnotherRun(
  otherRun: (holder: Kysely<any>) => Promise<void>,
  after: (refused: ScriptResult, database: TestDatabase, copy: string) => Promise<void>,
): Promise<void> {
  const database = await createTestDatabase('postgres')
  const copy = copyOfTheRepository()
  const db = database.db
  try {
    await migrateToLatest(db)
    await sql`CREATE TABLE public.pull_race_extra (id integer PRIMARY KEY)`.execute(db)
    let pull: ScriptProcess | undefined
    await db.connection().execute(async (holder) => {
      await sql`BEGIN`.execute(holder)
      await sql`SELECT pg_catalog.pg_advisory_xact_lock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(
        holder,
      )
      pull = startScript(
        'src/cli/migrate.ts',
        ['pull', 'race'],
        { DATABASE_URL: serverUrl(database.location), MIGRATION_LOCK_WAIT_MS: '100000' },
        { cwd: copy },
      )
      // Past its check and its reading of the live schema: it waits for the lock alone now.
      await pull.lineOn('stderr', /^\[db\] waiting for the migration lock: /)
      await otherRun(holder)
      await sql`COMMIT`.execute(holder)
    })
    await after(await pull!.exited, database, copy)
  } finally {
    await database.destroy()
    rmSync(copy, { recursive: true, force: true })
  }
}

describe.skipIf(skipReason !== undefined)(
  `migrate:pull while another run changes the history${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    afterEach(killRunningScripts)

    it('refuses, writing and recording nothing, when a migration was reverted after its check; after migrate:latest it pulls', async () => {
      // The copy starts from this checkout's registry.
      const index = readFileSync(new URL('../src/migrations/index.ts', import.meta.url), 'utf8')
      await pullWhileAnotherRun(revertLatest, async (refused, database, copy) => {
        expect(refused.stderr).toContain(
          `migrate pull refused: Another run changed the migration history since pull compared the database with the migrations: ${latest} is no longer recorded as applied.`,
        )
        expect(refused.stderr).toContain('Nothing was written or recorded.')
        expect(refused.stderr).toContain('Run npm run migrate:latest, then pull again.')
        expect(refused.code).toBe(2)
        // Nothing half-done: no file, no registration, the history as the other run left it.
        expect(existsSync(join(copy, 'src/migrations', `${pulled}.ts`))).toBe(false)
        expect(readFileSync(join(copy, 'src/migrations/index.ts'), 'utf8')).toBe(index)
        expect(await recordedMigrationNames(database.db)).toEqual(migrationNames.slice(0, -1))

        // What the refusal says to do.
        await migrateToLatest(database.db)
        const again = await commandIn(copy, ['migrate', 'pull', 'race'], cliEnv(database.location))
        expect(again.stderr).toContain(`recorded the database at ${pulled}`)
        expect(again.code).toBe(0)
        expect(await recordedMigrationNames(database.db)).toEqual([...migrationNames, pulled])
        const checked = await commandIn(copy, ['migrate', 'check'], cliEnv(database.location))
        expect(checked.stdout).toContain(`OK: the schema matches ${pulled}`)
        expect(checked.code).toBe(0)
      })
    }, 600_000)

    it('refuses when a migration was reverted and applied again after its check (what it read may be from in between)', async () => {
      const redo = async (holder: Kysely<any>) => {
        const { rows } = await sql<{ timestamp: string }>`
          SELECT "timestamp" FROM x402_migrations.kysely_migration WHERE name = ${latest}
        `.execute(holder)
        await revertLatest(holder)
        await migrations[latest]!.up(holder)
        // As the Migrator records it, a moment after the first time.
        const again = new Date(new Date(rows[0]!.timestamp).getTime() + 1000).toISOString()
        await sql`
          INSERT INTO x402_migrations.kysely_migration (name, "timestamp") VALUES (${latest}, ${again})
        `.execute(holder)
      }
      await pullWhileAnotherRun(redo, async (refused, database, copy) => {
        expect(refused.stderr).toContain(
          `migrate pull refused: Another run changed the migration history since pull compared the database with the migrations: ${latest} was reverted and applied again.`,
        )
        expect(refused.code).toBe(2)
        expect(existsSync(join(copy, 'src/migrations', `${pulled}.ts`))).toBe(false)
        expect(await recordedMigrationNames(database.db)).toEqual(migrationNames)
      })
    }, 600_000)
  },
)
