import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'

import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'

import { migrationNames } from '../src/migrations/index.js'
import { MIGRATION_HISTORY_TABLE } from '../src/migrator/history-tables.js'
import { baselineMigrations, migrateToLatest, syncMigrationChecksums } from '../src/tooling.js'
import { cliEnv } from './support/cli.js'
import { createScriptableDatabase } from './support/hand-built-database.js'
import { commandIn, copyOfTheRepository } from './support/repository-copy.js'

// A pulled migration runs as the migrating role wherever the migrations build a database: every
// object it creates is that role's there. An object that a role which cannot act as it owns on
// the live database (a SECURITY DEFINER function, a view that reads with its owner's rights)
// would then run its code with the migrating role's power (rev-a7 finding 2): the pull refuses,
// naming each, and writes and records nothing.

const LATEST = migrationNames.at(-1)!

async function asAdmin(query: string): Promise<void> {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL })
  await client.connect()
  await client.query(query).finally(() => client.end())
}

describe.skipIf(!process.env.TEST_DATABASE_URL)(
  'migrate:pull of objects a lesser role owns',
  () => {
    const cleanups: (() => Promise<void> | void)[] = []
    afterAll(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup()
    })

    it('refuses where an object it would write is owned by a role that cannot act as the migrating role, naming each; nothing is written', async () => {
      const role = `x402_test_pull_${randomBytes(4).toString('hex')}`
      const database = await createScriptableDatabase('postgres', 'latest')
      cleanups.push(async () => {
        await database.destroy()
        await asAdmin(`DROP ROLE IF EXISTS ${role}`)
      })
      const db = database.db as Kysely<any>
      await migrateToLatest(db)
      await syncMigrationChecksums(db)
      const dbName = (await sql<{ name: string }>`SELECT current_database() AS name`.execute(db))
        .rows[0]!.name
      await database.runScript(`
      CREATE ROLE ${role} LOGIN;
      GRANT CREATE ON DATABASE ${dbName} TO ${role};
      SET ROLE ${role};
      CREATE SCHEMA pull_app;
      GRANT USAGE ON SCHEMA pull_app TO anon;
      CREATE FUNCTION pull_app.promote() RETURNS text LANGUAGE sql SECURITY DEFINER
        AS $$ ALTER ROLE ${role} SUPERUSER; SELECT current_user::text $$;
      CREATE TABLE pull_app.secrets (v text);
      CREATE VIEW pull_app.everything AS SELECT v FROM pull_app.secrets;
      RESET ROLE;
      REVOKE CREATE ON DATABASE ${dbName} FROM ${role};
    `)
      await baselineMigrations(db, LATEST, { decisions: [] })
      const copy = copyOfTheRepository()
      cleanups.push(() => rmSync(copy, { recursive: true, force: true }))
      const before = readdirSync(join(copy, 'src/migrations'))
      const index = readFileSync(join(copy, 'src/migrations/index.ts'), 'utf8')

      const pulled = await commandIn(copy, ['migrate', 'pull', 'owned'], cliEnv(database.location))
      expect(pulled.stderr).toContain('migrate pull refused:')
      expect(pulled.stderr).toContain(`function pull_app.promote() owned by ${role}`)
      expect(pulled.stderr).toContain(`view pull_app.everything owned by ${role}`)
      expect(pulled.stderr).toContain(`schema pull_app owned by ${role}`)
      expect(pulled.stderr).toMatch(/Nothing was written or recorded/)
      expect(pulled.code).toBe(2)
      expect(readdirSync(join(copy, 'src/migrations'))).toEqual(before)
      expect(readFileSync(join(copy, 'src/migrations/index.ts'), 'utf8')).toBe(index)
      const { rows } = await sql<{ name: string }>`
      SELECT name FROM ${sql.raw(MIGRATION_HISTORY_TABLE)} ORDER BY name
    `.execute(db)
      expect(rows.map((row) => row.name)).toEqual([...migrationNames])

      // What the refusal says to do: the function runs with its caller's rights, and the objects,
      // reviewed, are made the migrating role's on the live database. Then it pulls.
      await database.runScript(`
      ALTER FUNCTION pull_app.promote() SECURITY INVOKER;
      ALTER VIEW pull_app.everything SET (security_invoker = on);
      ALTER SCHEMA pull_app OWNER TO CURRENT_USER;
      ALTER FUNCTION pull_app.promote() OWNER TO CURRENT_USER;
      ALTER TABLE pull_app.secrets OWNER TO CURRENT_USER;
      ALTER VIEW pull_app.everything OWNER TO CURRENT_USER;
    `)
      const again = await commandIn(copy, ['migrate', 'pull', 'owned'], cliEnv(database.location))
      expect(again.stderr).toMatch(/recorded the database at \d{3}_pulled_owned/)
      expect(again.code).toBe(0)
    }, 600_000)
  },
)
