import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { readAcceptedDifferences } from '../src/adoption/accepted-differences.js'
import { readMigrationChecksums } from '../src/migrator/checksums.js'
import { readMigrationHistory } from '../src/migrator/history.js'
import { historyProblemSql } from '../src/migrator/history-tables.js'
import { upToDateAtOnce } from '../src/migrator/up-to-date-at-once.js'
import {
  checkDrift,
  migrateDown,
  migrateToLatest,
  migrationStatus,
  readProductionObjects,
} from '../src/tooling.js'
import { isSuperuser, withLesserRole } from './support/lesser-role.js'
import { serverUrl, testTargets, withTestDatabase } from './support/test-database.js'

// The module's reads of its own bookkeeping in x402_migrations run no code that anyone else wrote.
// A role that owns the schema or one of its tables, and is no superuser, plants code that makes
// it a superuser if a superuser runs it; then the test, as a superuser, runs what reads that
// table. Each read must refuse, and the role must still be no superuser.

const MIGRATION_008 = '008_close_supabase_advisor_findings'

/** Makes `role` a superuser when run by one; returns `value`. */
const escalating = (role: string, returns: string) => `
  BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
      EXECUTE 'ALTER ROLE ${role} SUPERUSER';
    END IF;
    RETURN ${returns};
  END`

/** Runs `statements` as `role`, in one transaction (so on one connection of the pool). */
async function asRole(db: Kysely<any>, role: string, statements: string[]) {
  await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL ROLE ${sql.id(role)}`.execute(trx)
    for (const statement of statements) await sql.raw(statement).execute(trx)
  })
}

/** An enum column on `table`, owned by `role`, whose cast to json makes `role` a superuser. */
function castColumn(role: string, table: string): string[] {
  return [
    `CREATE TYPE x402_migrations.mark AS ENUM ('m')`,
    `CREATE FUNCTION x402_migrations.mark_json(x402_migrations.mark) RETURNS json LANGUAGE plpgsql AS $f$${escalating(role, `'"m"'::json`)} $f$`,
    `CREATE CAST (x402_migrations.mark AS json) WITH FUNCTION x402_migrations.mark_json(x402_migrations.mark)`,
    `ALTER TABLE ${table} ADD COLUMN mark x402_migrations.mark DEFAULT 'm'`,
  ]
}

async function handOverHistory(db: Kysely<any>, role: string) {
  await sql`ALTER SCHEMA x402_migrations OWNER TO ${sql.id(role)}`.execute(db)
  await sql`ALTER TABLE x402_migrations.kysely_migration OWNER TO ${sql.id(role)}`.execute(db)
}

describe.each(testTargets)('reads of the bookkeeping in x402_migrations on %s', (target) => {
  it('refuse a run, before any migration, where only the schema of the bookkeeping has another owner', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await sql`ALTER SCHEMA x402_migrations OWNER TO ${sql.id(role)}`.execute(db)
        const error = await migrateDown(db, { env: {} }).catch((caught: unknown) => caught)
        expect(String(error)).toContain(`and the schema x402_migrations by ${role}`)
        const applied = (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
        expect(applied.at(-1)).toBe(MIGRATION_008)
        await sql`ALTER SCHEMA x402_migrations OWNER TO CURRENT_USER`.execute(db)
      })
    })
  })

  it('refuse a history table with a column whose cast to json runs its owner’s code', async () => {
    await withTestDatabase(target, async ({ db, location }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await handOverHistory(db, role)
        await asRole(db, role, castColumn(role, 'x402_migrations.kysely_migration'))
        // Its owners alone are refused already (below): here the column must be, too.
        await sql`ALTER TABLE x402_migrations.kysely_migration OWNER TO CURRENT_USER`.execute(db)
        await sql`ALTER SCHEMA x402_migrations OWNER TO CURRENT_USER`.execute(db)

        // Start-up's one statement reads named columns of its own types: the column stays unread.
        await readMigrationHistory(db)
        expect(await isSuperuser(db, role)).toBe(false)
        // The whole check, which every other read asks, names it.
        const { rows } = await sql<{
          problem: string | null
        }>`SELECT ${sql.raw(historyProblemSql())} AS problem`.execute(db)
        expect(rows[0]!.problem).toMatch(
          /x402_migrations\.kysely_migration has the columns .*mark x402_migrations\.mark.*, where the module keeps name character varying\(255\), timestamp character varying\(255\)/,
        )
        if (target === 'postgres') {
          expect(await upToDateAtOnce(serverUrl(location))).toBe(false)
          expect(await isSuperuser(db, role)).toBe(false)
        }
      })
    })
  })

  it('refuse a view in place of the history table, before its code runs', async () => {
    await withTestDatabase(target, async ({ db, location }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await handOverHistory(db, role)
        await asRole(db, role, [
          `ALTER TABLE x402_migrations.kysely_migration RENAME TO km_real`,
          `CREATE FUNCTION x402_migrations.pwn(t text) RETURNS text LANGUAGE plpgsql AS $f$${escalating(role, 't')} $f$`,
          // Called with a constant, an IMMUTABLE function runs while the query is planned.
          `CREATE FUNCTION x402_migrations.pwn_planned(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $f$
             BEGIN PERFORM x402_migrations.pwn(t); RETURN t; END $f$`,
          `CREATE VIEW x402_migrations.kysely_migration AS
             SELECT x402_migrations.pwn(name)::varchar(255) AS name,
                    x402_migrations.pwn_planned('t')::varchar(255) AS timestamp
             FROM x402_migrations.km_real`,
        ])

        const read = await readMigrationHistory(db, { times: false }).catch((e: unknown) => e)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String(read)).toMatch(/x402_migrations\.kysely_migration is a view/)
        if (target === 'postgres') {
          expect(await upToDateAtOnce(serverUrl(location))).toBe(false)
          expect(await isSuperuser(db, role)).toBe(false)
        }
      })
    })
  })

  it('refuse a view in place of the accepted differences, which migrate:check trusts, before its code runs', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await sql.raw(`GRANT USAGE, CREATE ON SCHEMA x402_migrations TO ${role}`).execute(db)
        await asRole(db, role, [
          `CREATE FUNCTION x402_migrations.pwn() RETURNS text LANGUAGE plpgsql AS $f$${escalating(role, "'k'")} $f$`,
          `CREATE VIEW x402_migrations.accepted_schema_difference AS
             SELECT x402_migrations.pwn() AS key, 'f'::text AS field, NULL::jsonb AS live`,
        ])
        const read = await readAcceptedDifferences(db).catch((e: unknown) => e)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String(read)).toMatch(/x402_migrations\.accepted_schema_difference is a view/)
      })
    })
  })

  it('refuse a history table of another owner that could run code as the reader', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await handOverHistory(db, role)
        await expect(readMigrationHistory(db)).rejects.toThrow(
          new RegExp(
            `x402_migrations\\.kysely_migration is owned by ${role}, and the schema x402_migrations by ${role}, which cannot act as role \\w+ that reads it`,
          ),
        )
      })
    })
  })

  it('refuse a checksum table with a column whose cast to json runs its owner’s code', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await sql`GRANT USAGE, CREATE ON SCHEMA x402_migrations TO ${sql.id(role)}`.execute(db)
        const table = 'x402_migrations.migration_checksum'
        await sql`ALTER TABLE x402_migrations.migration_checksum OWNER TO ${sql.id(role)}`.execute(
          db,
        )
        await asRole(db, role, castColumn(role, table))

        const read = await readMigrationChecksums(db).catch((error: unknown) => error)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String(read)).toMatch(
          new RegExp(`${table.replace('.', '\\.')} is owned by ${role}, and the schema`),
        )
      })
    })
  })

  it('008’s down refuses a record of another owner that could run code as the reader', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await sql`ALTER TABLE x402_migrations.prior_state_008 OWNER TO ${sql.id(role)}`.execute(db)
        const down = await migrateDown(db).catch((error: unknown) => error)
        expect(String(down)).toMatch(
          new RegExp(
            `x402_migrations\\.prior_state_008 is owned by ${role}, which cannot act as role \\w+ that runs the down`,
          ),
        )
        const applied = (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
        expect(applied.at(-1)).toBe(MIGRATION_008)
      })
    })
  })

  it('008’s down refuses a record with a column whose cast to json runs its owner’s code', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await sql`GRANT USAGE, CREATE ON SCHEMA x402_migrations TO ${sql.id(role)}`.execute(db)
        await sql`ALTER TABLE x402_migrations.prior_state_008 OWNER TO ${sql.id(role)}`.execute(db)
        await asRole(db, role, castColumn(role, 'x402_migrations.prior_state_008'))

        const down = await migrateDown(db).catch((error: unknown) => error)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String(down)).toMatch(/x402_migrations\.prior_state_008 is not the table 008 made/)
        const applied = (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
        expect(applied.at(-1)).toBe(MIGRATION_008)
      })
    })
  })

  it('refuse a view in place of production’s own objects, which migrate:check trusts, before its code runs', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await sql.raw(`GRANT USAGE, CREATE ON SCHEMA x402_migrations TO ${role}`).execute(db)
        await asRole(db, role, [
          `CREATE FUNCTION x402_migrations.pwn() RETURNS jsonb LANGUAGE plpgsql AS $f$${escalating(role, "'{}'::jsonb")} $f$`,
          `CREATE VIEW x402_migrations.production_schema_object AS
             SELECT 'k'::text AS key, 'table'::text AS category, NULL::text AS table_name,
                    'o'::text AS object_name, x402_migrations.pwn() AS definition`,
        ])
        await sql.raw(`REVOKE CREATE ON SCHEMA x402_migrations FROM ${role}`).execute(db)
        const read = await readProductionObjects(db).catch((e: unknown) => e)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String(read)).toMatch(/x402_migrations\.production_schema_object is a view/)
        const check = await checkDrift(db).catch((e: unknown) => e)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String(check)).toMatch(/x402_migrations\.production_schema_object is a view/)
      })
    })
  })

  it('refuse a run, before any migration, where a view replaced Kysely’s lock table, which its Migrator reads', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateToLatest(db)
      await withLesserRole(db, 'x402_test_owner', async (role) => {
        await sql`DROP TABLE x402_migrations.kysely_migration_lock`.execute(db)
        await sql.raw(`GRANT USAGE, CREATE ON SCHEMA x402_migrations TO ${role}`).execute(db)
        await asRole(db, role, [
          `CREATE FUNCTION x402_migrations.pwn() RETURNS integer LANGUAGE plpgsql AS $f$${escalating(role, '0')} $f$`,
          `CREATE VIEW x402_migrations.kysely_migration_lock AS
             SELECT 'migration_lock'::varchar(255) AS id, x402_migrations.pwn() AS is_locked`,
        ])
        await sql.raw(`REVOKE CREATE ON SCHEMA x402_migrations FROM ${role}`).execute(db)
        const down = await migrateDown(db).catch((error: unknown) => error)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String(down)).toMatch(/x402_migrations\.kysely_migration_lock is a view/)
        const applied = (await migrationStatus(db)).filter((m) => m.appliedAt).map((m) => m.name)
        expect(applied.at(-1)).toBe(MIGRATION_008)
      })
    })
  })
})
