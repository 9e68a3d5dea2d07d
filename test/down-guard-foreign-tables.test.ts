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
import { createModel, createResource } from './support/fixtures.js'
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
    await createResource(db, {
      resource_type: 'openrouter_instant',
      openrouter_model_id: await createModel(db, undefined, 'ai_models'),
      openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: '', params: {} },
    })
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
