import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createDb, migrateDown, migrateTo, migrateUp, migrationStatus } from '../src/tooling.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { createTestDatabase, type TestDatabase, testTargets } from './support/test-database.js'

// review revb F4: a rollback of 005 that stopped after a step committed (here, an event trigger
// refuses its last step's drops) is standing: migrate:latest refuses on it, and the message of a
// lost lock sends the operator to migrate:list. The list says so, with the time the rollback
// began, as the runner's rule reads it (rollbackMarks): a mark cleared by hand, with the schema
// half removed, still shows; a mark with no committed step behind it (stale) does not.

type ListedJson = {
  migrations: Array<{
    name: string
    status: string
    appliedAt: string | null
    revertingSince?: string | null
  }>
}

describe.each(testTargets)(
  'migrate:list while a rollback of 005 is interrupted, on %s',
  (target) => {
    let database: TestDatabase
    let env: NodeJS.ProcessEnv
    let markedAt: Date

    /** Runs `use` on a connection of its own, closed after: the command line needs the folder on PGlite. */
    async function withDb<T>(use: (db: Kysely<any>) => Promise<T>): Promise<T> {
      const db = createDb(
        'connectionString' in database.location
          ? { connectionString: database.location.connectionString }
          : { dataDir: database.location.dataDir },
      ) as Kysely<any>
      try {
        return await use(db)
      } finally {
        await db.destroy()
      }
    }

    beforeAll(async () => {
      database = await createTestDatabase(target, {}, MIGRATION_005)
      const db = database.db as Kysely<any>
      await migrateTo(db, MIGRATION_005, { env: {} })
      await sql`
      CREATE FUNCTION public.refuse_drops() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN RAISE EXCEPTION 'drops are refused here'; END $fn$`.execute(db)
      await sql`CREATE EVENT TRIGGER refuse_drops ON ddl_command_start WHEN TAG IN ('DROP TABLE')
              EXECUTE FUNCTION public.refuse_drops()`.execute(db)
      const refused = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
        (error: unknown) => error,
      )
      expect(String(refused)).toContain('drops are refused here')
      await sql`DROP EVENT TRIGGER refuse_drops`.execute(db)
      const { rows } = await sql<{
        since: Date | string
      }>`SELECT reverting_since AS since FROM x402_migrations.kysely_migration WHERE name = ${MIGRATION_005}`.execute(
        db,
      )
      markedAt = new Date(rows[0]!.since)
      await db.destroy()
      env = cliEnv(database.location)
    })
    afterAll(async () => {
      await database?.destroy()
    })

    it('shows 005 as reverting (interrupted), with the time its rollback began', async () => {
      const list = await cli(['list'], env)
      expect(list.code).toBe(0)
      expect(lines(list.stdout).find((line) => line.includes(MIGRATION_005))).toMatch(
        new RegExp(
          `^reverting  \\d{4}-\\d\\d-\\d\\dT\\S+\\s+${MIGRATION_005}  \\(interrupted rollback, begun ${markedAt.toISOString()}\\)$`,
        ),
      )
      expect(list.stderr).toContain(
        `reverting: the rollback of ${MIGRATION_005} began at ${markedAt.toISOString()} and did not finish`,
      )
      expect(list.stderr).toContain('npm run migrate:down')

      const json = await cli(['list', '--json'], env)
      expect(json.code).toBe(0)
      const listed = (JSON.parse(json.stdout) as ListedJson).migrations
      expect(listed.find((m) => m.name === MIGRATION_005)).toEqual({
        name: MIGRATION_005,
        status: 'reverting',
        appliedAt: expect.stringMatching(/^\d{4}-/),
        revertingSince: markedAt.toISOString(),
      })
      expect(listed.filter((m) => m.status === 'reverting')).toHaveLength(1)
    })

    it('still shows it with the mark cleared by hand, from what the schema shows, with no time', async () => {
      await withDb((db) =>
        sql`UPDATE x402_migrations.kysely_migration SET reverting_since = NULL`.execute(db),
      )
      const list = await cli(['list'], env)
      expect(lines(list.stdout).find((line) => line.includes(MIGRATION_005))).toMatch(
        /^reverting .*\(interrupted rollback\)$/,
      )
      const listed = (JSON.parse((await cli(['list', '--json'], env)).stdout) as ListedJson)
        .migrations
      expect(listed.find((m) => m.name === MIGRATION_005)).toMatchObject({
        status: 'reverting',
        revertingSince: null,
      })
    })

    it('shows 005 as applied once the rollback completed and 005 is applied again, a stale mark aside', async () => {
      await withDb(async (db) => {
        await migrateDown(db, { allowDataLoss: true, env: {} })
        await migrateUp(db, { env: {} })
        // A mark that an attempt left before its first step committed: no rollback under way.
        await sql`UPDATE x402_migrations.kysely_migration SET reverting_since = now() WHERE name = ${MIGRATION_005}`.execute(
          db,
        )
        expect((await migrationStatus(db)).find((m) => m.name === MIGRATION_005)).toEqual({
          name: MIGRATION_005,
          appliedAt: expect.any(Date),
        })
      })
      const list = await cli(['list'], env)
      expect(lines(list.stdout).find((line) => line.includes(MIGRATION_005))).toMatch(/^applied /)
      expect(list.stderr).not.toContain('reverting')
      const listed = (JSON.parse((await cli(['list', '--json'], env)).stdout) as ListedJson)
        .migrations
      expect(listed.find((m) => m.name === MIGRATION_005)).toEqual({
        name: MIGRATION_005,
        status: 'applied',
        appliedAt: expect.stringMatching(/^\d{4}-/),
      })
    })
  },
)
