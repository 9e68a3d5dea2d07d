import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { exportMigrationSql } from '../src/export/migration-sql.js'
import { MigrationError, migrateDown, migrateTo, migrationStatus } from '../src/tooling.js'
import { createInstantResource } from './support/fixtures.js'
import { MIGRATION_002, MIGRATION_005 } from './support/migration-names.js'
import { serverUrl, testTargets, useTestDatabase } from './support/test-database.js'

// Review revs S3: the rows of a foreign table live on another server, and no counter of this one
// sees them deleted: a trigger that deleted through postgres_fdw while a down ran went
// unreported. A down refuses where a foreign table could be written through; one made read-only
// (postgres_fdw's updatable and truncatable options) does not stop it.

const onServer = testTargets.includes('postgres')

/** Runs `statements` on the database at `url`. */
async function run(url: string, statements: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(statements)
  } finally {
    await client.end()
  }
}

async function remoteRows(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return Number((await client.query('SELECT count(*) AS n FROM ledger')).rows[0].n)
  } finally {
    await client.end()
  }
}

function applied(db: Kysely<any>) {
  return migrationStatus(db).then((all) => all.filter((m) => m.appliedAt).map((m) => m.name))
}

describe.skipIf(!onServer)('a down beside a foreign table on postgres', () => {
  const database = useTestDatabase('postgres', MIGRATION_005)
  const remoteName = `x402_test_remote_${randomBytes(4).toString('hex')}`
  let remote: string
  let server: URL

  beforeAll(async () => {
    server = new URL(serverUrl(database.location))
    const admin = new URL(server)
    admin.pathname = '/postgres'
    await run(admin.toString(), `CREATE DATABASE ${remoteName}`)
    const remoteUrl = new URL(server)
    remoteUrl.pathname = `/${remoteName}`
    remote = remoteUrl.toString()
    await run(
      remote,
      'CREATE TABLE ledger (id int PRIMARY KEY); INSERT INTO ledger SELECT generate_series(1, 5)',
    )
    const { db } = database
    await sql`CREATE EXTENSION postgres_fdw`.execute(db)
    await sql
      .raw(
        `CREATE SERVER ledger_server FOREIGN DATA WRAPPER postgres_fdw
           OPTIONS (host '${server.hostname}', port '${server.port || '5432'}', dbname '${remoteName}');
         CREATE USER MAPPING FOR CURRENT_USER SERVER ledger_server OPTIONS (user '${decodeURIComponent(server.username || 'postgres')}');
         CREATE FOREIGN TABLE remote_ledger (id int) SERVER ledger_server OPTIONS (table_name 'ledger')`,
      )
      .execute(db)
    await sql`
      CREATE FUNCTION forget_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN DELETE FROM remote_ledger; RETURN OLD; END $$
    `.execute(db)
    await sql`CREATE TRIGGER forget_ledger AFTER DELETE ON x402_resources FOR EACH ROW EXECUTE FUNCTION forget_ledger()`.execute(
      db,
    )
  })
  afterAll(async () => {
    const admin = new URL(server)
    admin.pathname = '/postgres'
    await run(admin.toString(), `DROP DATABASE IF EXISTS ${remoteName} WITH (FORCE)`)
  })

  it("refuses 005's down through the runner, even with the opt-in, naming it; nothing is lost", async () => {
    const { db } = database
    await createInstantResource(db)
    const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(MigrationError)
    expect((error as Error).message).toContain('foreign table public.remote_ledger')
    expect(await remoteRows(remote)).toBe(5)
    expect((await applied(db)).at(-1)).toBe(MIGRATION_005)
  })

  it("refuses 005's exported down script, run with the opt-in; nothing is lost", async () => {
    const script = (await exportMigrationSql(MIGRATION_005, 'down')).replace(
      'x402.allow_data_loss = off',
      'x402.allow_data_loss = on',
    )
    const folder = mkdtempSync(join(tmpdir(), 'x402-foreign-'))
    try {
      const file = join(folder, 'down.sql')
      writeFileSync(file, script)
      const psql = spawnSync('psql', ['-X', '-q', '-d', serverUrl(database.location), '-f', file], {
        encoding: 'utf8',
      })
      if (psql.error) throw psql.error
      expect(psql.stderr).toContain('foreign table public.remote_ledger')
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
    expect(await remoteRows(remote)).toBe(5)
    expect((await applied(database.db)).at(-1)).toBe(MIGRATION_005)
  })

  it('rolls back where every foreign table is read-only', async () => {
    const { db } = database
    await sql`DROP TRIGGER forget_ledger ON x402_resources`.execute(db)
    await sql`ALTER SERVER ledger_server OPTIONS (ADD updatable 'false', ADD truncatable 'false')`.execute(
      db,
    )
    await migrateTo(db, MIGRATION_002, { allowDataLoss: true, env: {} })
    expect((await applied(db)).at(-1)).toBe(MIGRATION_002)
    expect(await remoteRows(remote)).toBe(5)
  })
})

// Review revt F2: the check of foreign tables looked only at those that existed when it ran. Code
// that a down fires could switch a read-only server to updatable, delete through its foreign
// table and switch it back (a), or make a foreign table over an existing server and user mapping,
// delete through it and drop it (b): 5 remote rows went, and the down reported success. Changing
// foreign servers, tables or user mappings while a down runs is refused before COMMIT, which
// rolls back postgres_fdw's remote transaction with the local one.

/** The words every refusal of a change to the catalogs of foreign access uses. */
const FOREIGN_CHANGED = 'foreign servers, foreign tables or user mappings'

/** What the hostile code does, in PL/pgSQL statements, with the server ledger_server. */
const FOREIGN_TRICKS = {
  'switches the read-only server to updatable, deletes, and switches it back': `
    ALTER SERVER ledger_server OPTIONS (SET updatable 'true');
    DELETE FROM remote_ledger;
    ALTER SERVER ledger_server OPTIONS (SET updatable 'false');`,
  'makes a foreign table, deletes through it, and drops it': `
    CREATE FOREIGN TABLE remote_ledger_tmp (id int) SERVER ledger_server OPTIONS (table_name 'ledger');
    DELETE FROM remote_ledger_tmp;
    DROP FOREIGN TABLE remote_ledger_tmp;`,
} as const
type ForeignTrick = keyof typeof FOREIGN_TRICKS

/** Runs `script` with psql on the database at `url`; its stderr. */
function runScript(url: string, script: string): string {
  const folder = mkdtempSync(join(tmpdir(), 'x402-foreign-'))
  try {
    const file = join(folder, 'down.sql')
    writeFileSync(file, script.replace('x402.allow_data_loss = off', 'x402.allow_data_loss = on'))
    const psql = spawnSync('psql', ['-X', '-q', '-d', url, '-f', file], { encoding: 'utf8' })
    if (psql.error) throw psql.error
    return psql.stderr
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
}

describe.skipIf(!onServer)(
  'a down during which code changes foreign servers or tables, on postgres',
  () => {
    const database = useTestDatabase('postgres', MIGRATION_005)
    const remoteName = `x402_test_remote_${randomBytes(4).toString('hex')}`
    let remote: string
    let server: URL

    beforeAll(async () => {
      server = new URL(serverUrl(database.location))
      const admin = new URL(server)
      admin.pathname = '/postgres'
      await run(admin.toString(), `CREATE DATABASE ${remoteName}`)
      const remoteUrl = new URL(server)
      remoteUrl.pathname = `/${remoteName}`
      remote = remoteUrl.toString()
      await run(
        remote,
        'CREATE TABLE ledger (id int PRIMARY KEY); INSERT INTO ledger SELECT generate_series(1, 5)',
      )
      const { db } = database
      await sql`CREATE EXTENSION postgres_fdw`.execute(db)
      // Read-only: the check of the foreign tables that exist lets every down go.
      await sql
        .raw(
          `CREATE SERVER ledger_server FOREIGN DATA WRAPPER postgres_fdw
             OPTIONS (host '${server.hostname}', port '${server.port || '5432'}', dbname '${remoteName}',
                      updatable 'false', truncatable 'false');
           CREATE USER MAPPING FOR CURRENT_USER SERVER ledger_server OPTIONS (user '${decodeURIComponent(server.username || 'postgres')}')`,
        )
        .execute(db)
    })
    afterAll(async () => {
      const admin = new URL(server)
      admin.pathname = '/postgres'
      await run(admin.toString(), `DROP DATABASE IF EXISTS ${remoteName} WITH (FORCE)`)
    })

    /**
     * Each case starts afresh, whatever an earlier one left: 5 remote rows, the read-only server
     * with its read-only foreign table remote_ledger, the database at `migration` and, at 005, an
     * instant resource for its down to move.
     */
    async function startAt(migration: string): Promise<void> {
      const { db } = database
      await run(remote, 'TRUNCATE ledger; INSERT INTO ledger SELECT generate_series(1, 5)')
      await sql`CREATE FOREIGN TABLE IF NOT EXISTS remote_ledger (id int) SERVER ledger_server OPTIONS (table_name 'ledger')`.execute(
        db,
      )
      await migrateTo(db, migration, { allowDataLoss: true, env: {} })
      if (migration === MIGRATION_005) {
        await createInstantResource(db)
      }
    }

    /**
     * Puts `trick` in place: (a) beside the read-only foreign table remote_ledger, (b) with no
     * foreign table at all, over the server made writable. In a trigger of the rows 005's down
     * moves, or in an event trigger of the drops of a transactional down.
     */
    async function hostile(trick: ForeignTrick, on: 'rows' | 'drops'): Promise<void> {
      const { db } = database
      if (!trick.startsWith('switches')) {
        await sql`DROP FOREIGN TABLE remote_ledger`.execute(db)
        await sql`ALTER SERVER ledger_server OPTIONS (DROP updatable, DROP truncatable)`.execute(db)
      }
      await sql
        .raw(
          on === 'rows'
            ? `CREATE FUNCTION hostile() RETURNS trigger LANGUAGE plpgsql AS $fn$
               BEGIN ${FOREIGN_TRICKS[trick]} RETURN NULL; END $fn$;
               CREATE TRIGGER hostile AFTER DELETE ON x402_resources FOR EACH STATEMENT EXECUTE FUNCTION hostile()`
            : `CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
               BEGIN ${FOREIGN_TRICKS[trick]} END $fn$;
               CREATE EVENT TRIGGER hostile ON sql_drop WHEN TAG IN ('DROP TABLE') EXECUTE FUNCTION hostile()`,
        )
        .execute(db)
    }

    /** Takes the hostile code away, and makes the server read-only again. */
    async function harmless(): Promise<void> {
      await sql
        .raw(
          `DROP EVENT TRIGGER IF EXISTS hostile; DROP TRIGGER IF EXISTS hostile ON x402_resources;
           DROP FUNCTION IF EXISTS hostile()`,
        )
        .execute(database.db)
      await sql`ALTER SERVER ledger_server OPTIONS (DROP updatable, DROP truncatable)`
        .execute(database.db)
        .catch(() => undefined)
      await sql`ALTER SERVER ledger_server OPTIONS (ADD updatable 'false', ADD truncatable 'false')`.execute(
        database.db,
      )
    }

    describe.each(Object.keys(FOREIGN_TRICKS) as ForeignTrick[])(
      'where a trigger of the rows it moves %s',
      (trick) => {
        it("refuses 005's down through the runner, even with the opt-in; nothing is lost", async () => {
          const { db } = database
          await startAt(MIGRATION_005)
          await hostile(trick, 'rows')
          try {
            const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
              (caught: unknown) => caught,
            )
            expect(error).toBeInstanceOf(MigrationError)
            expect((error as Error).message).toContain(FOREIGN_CHANGED)
            expect((error as Error).message).toContain('Nothing was changed')
          } finally {
            await harmless()
          }
          expect(await remoteRows(remote)).toBe(5)
          expect((await applied(db)).at(-1)).toBe(MIGRATION_005)
        })

        it("refuses 005's exported down script, run with the opt-in; nothing is lost", async () => {
          const { db } = database
          const script = await exportMigrationSql(MIGRATION_005, 'down')
          await startAt(MIGRATION_005)
          await hostile(trick, 'rows')
          try {
            expect(runScript(serverUrl(database.location), script)).toContain(FOREIGN_CHANGED)
          } finally {
            await harmless()
          }
          expect(await remoteRows(remote)).toBe(5)
          expect((await applied(db)).at(-1)).toBe(MIGRATION_005)
        })
      },
    )

    describe.each(Object.keys(FOREIGN_TRICKS) as ForeignTrick[])(
      'where an event trigger of its drops %s',
      (trick) => {
        it("refuses 002's down (transactional) through the runner and its exported script; nothing is lost", async () => {
          const { db } = database
          await startAt(MIGRATION_002)
          const script = await exportMigrationSql(MIGRATION_002, 'down')
          await hostile(trick, 'drops')
          try {
            const error = await migrateDown(db, { allowDataLoss: true, env: {} }).catch(
              (caught: unknown) => caught,
            )
            expect(error).toBeInstanceOf(MigrationError)
            expect((error as Error).message).toContain(FOREIGN_CHANGED)
            expect((error as Error).message).toContain('Nothing was changed')
            expect(await remoteRows(remote)).toBe(5)
            expect((await applied(db)).at(-1)).toBe(MIGRATION_002)
            expect(runScript(serverUrl(database.location), script)).toContain(FOREIGN_CHANGED)
          } finally {
            await harmless()
          }
          expect(await remoteRows(remote)).toBe(5)
          expect((await applied(db)).at(-1)).toBe(MIGRATION_002)
        })
      },
    )
  },
)

// The same check without postgres_fdw, on every target (PGlite has no wrapper with a handler):
// the catalogs' counters move for a wrapper without one too.
describe.each(testTargets)(
  'a down during which an event trigger changes a foreign server on %s',
  (target) => {
    const database = useTestDatabase(target, MIGRATION_002)

    it("rolls 002's down back, naming it", async () => {
      const { db } = database
      await sql`CREATE FOREIGN DATA WRAPPER x402_test_wrapper`.execute(db)
      await sql`CREATE SERVER x402_test_server FOREIGN DATA WRAPPER x402_test_wrapper OPTIONS (updatable 'false')`.execute(
        db,
      )
      await sql`
      CREATE FUNCTION hostile() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN ALTER SERVER x402_test_server OPTIONS (SET updatable 'true'); END $fn$
    `.execute(db)
      await sql`CREATE EVENT TRIGGER hostile ON sql_drop EXECUTE FUNCTION hostile()`.execute(db)
      try {
        const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(MigrationError)
        expect((error as Error).message).toContain(FOREIGN_CHANGED)
        expect((error as Error).message).toMatch(/pg_foreign_server: \d+ row\(s\) changed/)
        expect((await applied(db)).at(-1)).toBe(MIGRATION_002)
        const { rows } = await sql<{
          options: string[]
        }>`SELECT srvoptions AS options FROM pg_foreign_server WHERE srvname = 'x402_test_server'`.execute(
          db,
        )
        expect(rows[0]!.options).toEqual(['updatable=false'])
      } finally {
        await sql`DROP EVENT TRIGGER IF EXISTS hostile`.execute(db)
        await sql`DROP FUNCTION IF EXISTS hostile()`.execute(db)
      }
    })
  },
)
