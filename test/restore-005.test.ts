import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { baselineMigrations, migrateDown, migrateTo, migrateUp } from '../src/tooling.js'
import { backupStampsOf005, restore005AsDocumented } from './support/documented-restore.js'
import { createModel, createResource, createUser } from './support/fixtures.js'
import { escalate, isSuperuser, withLesserRole } from './support/lesser-role.js'
import { MIGRATION_005 } from './support/migration-names.js'
import {
  createProductionShapedTestDatabase,
  PRODUCTION_ADOPTION_POINT,
} from './support/production-fixture.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// review revb F2: docs/rollback.md's way back from 005's backups, run as written (the
// statements psql would send, one by one). Production's x402_resources has a generated column
// (search_vector), which an `INSERT … SELECT *` cannot fill; and the restore of the keys and of the
// resources is one change: where one part fails, nothing of it stays.

/** Three stored keys, and three resources each of type openrouter_instant, configured for OpenRouter, and neither. */
async function seed(db: Kysely<any>): Promise<void> {
  const modelId = await createModel(db, undefined, 'ai_models')
  for (let i = 0; i < 3; i++) {
    const userId = await createUser(db)
    await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key, is_valid, last_verified_at)
              VALUES (${userId}, ${`aa:${i}`}, ${i !== 1}, now() - interval '1 day')`.execute(db)
    await createResource(db, {
      resource_type: 'openrouter_instant',
      description: `instant ${i}`,
      openrouter_model_id: modelId,
      openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: `p${i}`, params: {} },
    } as never)
    await createResource(db, {
      resource_type: 'proxy',
      openrouter_config: { modelId: 'x', systemPrompt: `c${i}`, params: {} },
    } as never)
    await createResource(db, { description: `plain ${i}` } as never)
  }
}

/** Every row of the keys and the resources, by key, as JSON. */
async function rows(db: Kysely<any>): Promise<{
  keys: Record<string, unknown>
  resources: Record<string, Record<string, unknown>>
}> {
  const { rows: keys } = await sql<{
    id: string
    row: Record<string, unknown>
  }>`SELECT user_id AS id, to_jsonb(k) AS row FROM user_openrouter_integrations k`.execute(db)
  const { rows: resources } = await sql<{
    id: string
    row: Record<string, unknown>
  }>`SELECT id, to_jsonb(r) AS row FROM x402_resources r`.execute(db)
  return {
    keys: Object.fromEntries(keys.map(({ id, row }) => [id, row])),
    resources: Object.fromEntries(resources.map(({ id, row }) => [id, row])),
  }
}

describe.each(testTargets)("restoring 005's backup as docs/rollback.md says, on %s", (target) => {
  it("puts every key and resource back on production's x402_resources, whose search_vector is generated", async () => {
    const database = await createProductionShapedTestDatabase(target)
    const db = database.db as Kysely<any>
    try {
      await baselineMigrations(db, PRODUCTION_ADOPTION_POINT)
      await migrateTo(db, MIGRATION_005, { env: {} })
      await seed(db)
      const before = await rows(db)
      expect(Object.values(before.resources)[0]).toHaveProperty('search_vector')

      await migrateDown(db, { allowDataLoss: true, env: {} })
      await migrateUp(db, { env: {} })
      const stamps = await backupStampsOf005(db)
      expect(stamps).toHaveLength(1)
      await restore005AsDocumented(db, stamps[0]!)

      const after = await rows(db)
      expect(after.keys).toEqual(before.keys)
      // The down cleared the configured resources, and the restore fills them again, with an
      // UPDATE that production's trigger stamps (docs/rollback.md says so): updated_at aside,
      // every row is as it was, the generated search_vector included.
      const withoutUpdatedAt = (resources: typeof before.resources) =>
        Object.fromEntries(
          Object.entries(resources).map(([id, { updated_at: _stamped, ...row }]) => [id, row]),
        )
      expect(withoutUpdatedAt(after.resources)).toEqual(withoutUpdatedAt(before.resources))
      for (const [id, row] of Object.entries(before.resources))
        if (row.openrouter_config === null || row.resource_type === 'openrouter_instant')
          expect(after.resources[id], id).toEqual(row)
    } finally {
      await database.destroy()
    }
  })
})

describe.each(testTargets)("restoring 005's backup as docs/rollback.md says, on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('changes nothing where a part of it fails: the keys are not restored without the resources', async () => {
    const db = database.db as Kysely<any>
    await seed(db)
    const before = await rows(db)
    await migrateDown(db, { allowDataLoss: true, env: {} })
    await migrateUp(db, { env: {} })
    // A resource of the same id as one that the restore puts back: its INSERT fails.
    const { rows: instant } = await sql<{ id: string }>`
      SELECT id FROM x402_backup.${sql.id(`005_x402_resources_${(await backupStampsOf005(db))[0]}`)}
      WHERE resource_type = 'openrouter_instant' LIMIT 1`.execute(db)
    await createResource(db, { id: instant[0]!.id } as never)

    const stamp = (await backupStampsOf005(db))[0]!
    await expect(restore005AsDocumented(db, stamp)).rejects.toThrow(/SQLSTATE 23505/)
    const after = await rows(db)
    expect(after.keys).toEqual({})
    expect(Object.keys(after.resources)).toHaveLength(Object.keys(before.resources).length - 2)
    expect(Object.values(after.resources).filter((row) => row.openrouter_config !== null)).toEqual(
      [],
    )

    // Once the row in the way is gone, it puts everything back.
    await sql`DELETE FROM x402_resources WHERE id = ${instant[0]!.id}`.execute(db)
    await restore005AsDocumented(db, stamp)
    expect((await rows(db)).keys).toEqual(before.keys)
  })
})

describe.each(testTargets)("restoring 005's backups as docs/rollback.md says, on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('refuses (42501) while a trigger of a lesser login is on a table it writes, and runs none of its code', async () => {
    // Review revc F1: Supabase grants TRIGGER on every public table to the API roles; the
    // operator runs the restore as the database's owner.
    const db = database.db as Kysely<any>
    await seed(db)
    await migrateDown(db, { allowDataLoss: true, env: {} })
    await migrateUp(db, { env: {} })
    await withLesserRole(
      db,
      'restore_trigger',
      async (role) => {
        await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
        await sql
          .raw(
            `CREATE FUNCTION ${role}.f() RETURNS trigger LANGUAGE plpgsql AS $f$
             BEGIN EXECUTE 'ALTER ROLE ${role} SUPERUSER'; RETURN NULL; END $f$`,
          )
          .execute(db)
        await sql.raw(`ALTER FUNCTION ${role}.f() OWNER TO ${role}`).execute(db)
        await sql
          .raw(
            `CREATE TRIGGER zz_restore AFTER INSERT OR UPDATE ON public.x402_resources
               FOR EACH STATEMENT EXECUTE FUNCTION ${role}.f()`,
          )
          .execute(db)
        // Also where the operator's search_path leaves public out (review revd F1).
        for (const searchPath of [undefined, 'pg_catalog']) {
          const refused = await restore005AsDocumented(db, (await backupStampsOf005(db))[0]!, {
            searchPath,
          }).catch((error: unknown) => error)
          expect(String(refused), searchPath).toMatch(/SQLSTATE 42501/)
          expect(String(refused)).toContain(role)
          expect(await isSuperuser(db, role)).toBe(false)
        }
        expect((await rows(db)).keys).toEqual({})
        await sql`DROP TRIGGER zz_restore ON public.x402_resources`.execute(db)
      },
      { login: true },
    )
  })
})

describe.each(testTargets)("restoring 005's backups as docs/rollback.md says, on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('restores every backup of a rollback that left keys under two times', async () => {
    // Review revc F2: keys stored after a rollback's first step are backed up by a later step,
    // under a later time.
    const db = database.db as Kysely<any>
    await seed(db)
    const first = await rows(db)
    await sql`
      CREATE FUNCTION public.refuse_drops() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN RAISE EXCEPTION 'drops are refused here'; END $fn$`.execute(db)
    await sql`CREATE EVENT TRIGGER refuse_drops ON ddl_command_start WHEN TAG IN ('DROP TABLE')
              EXECUTE FUNCTION public.refuse_drops()`.execute(db)
    await expect(migrateDown(db, { allowDataLoss: true, env: {} })).rejects.toThrow(
      /drops are refused here/,
    )
    await sql`DROP EVENT TRIGGER refuse_drops`.execute(db)
    await sql`DROP FUNCTION public.refuse_drops()`.execute(db)
    const userId = await createUser(db)
    await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${userId}, 'bb:late')`.execute(
      db,
    )
    const late = (await rows(db)).keys
    await migrateDown(db, { allowDataLoss: true, env: {} })
    const stamps = await backupStampsOf005(db)
    expect(stamps.length).toBeGreaterThan(1)
    await migrateUp(db, { env: {} })
    await restore005AsDocumented(db, stamps[0]!)
    expect((await rows(db)).keys).toEqual({ ...first.keys, ...late })
  })
})

describe.each(testTargets)("restoring 005's backups as docs/rollback.md says, on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('refuses (42501) to write a keys table that is not a table a role the operator can act as owns', async () => {
    // Review revd F2: 005 not applied again, and a lesser login's view holds the keys table's name.
    const db = database.db as Kysely<any>
    await seed(db)
    await migrateDown(db, { allowDataLoss: true, env: {} })
    await withLesserRole(
      db,
      'restore_view',
      async (role) => {
        await sql`CREATE VIEW public.x402_user_openrouter_integrations AS SELECT NULL::uuid AS user_id`.execute(
          db,
        )
        await sql
          .raw(`ALTER VIEW public.x402_user_openrouter_integrations OWNER TO ${role}`)
          .execute(db)
        const refused = await restore005AsDocumented(db, (await backupStampsOf005(db))[0]!).catch(
          (error: unknown) => error,
        )
        expect(String(refused)).toMatch(/SQLSTATE 42501/)
        expect(String(refused)).toMatch(/x402_user_openrouter_integrations \(not a table, owned by/)
        await sql`DROP VIEW public.x402_user_openrouter_integrations`.execute(db)
      },
      { login: true },
    )
  })
})

describe.each(testTargets)("restoring 005's backups as docs/rollback.md says, on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('refuses (42501) to read a backup that a role the operator cannot act as owns', async () => {
    // Review reve L2: its owner decides what the restore reads (rows it put there, policies that
    // run code as the reader), and the restore writes that into the keys table. The privilege
    // checks that run first already cover x402_backup; this keeps them doing so.
    const db = database.db as Kysely<any>
    await seed(db)
    await migrateDown(db, { allowDataLoss: true, env: {} })
    await migrateUp(db, { env: {} })
    const [stamp] = await backupStampsOf005(db)
    await withLesserRole(
      db,
      'restore_backup',
      async (role) => {
        const backup = `x402_backup."005_user_openrouter_integrations_${stamp}"`
        await sql.raw(`ALTER TABLE ${backup} OWNER TO ${role}`).execute(db)
        const refused = await restore005AsDocumented(db, stamp!).catch((error: unknown) => error)
        expect(String(refused)).toMatch(/SQLSTATE 42501/)
        expect(String(refused)).toContain(`005_user_openrouter_integrations_${stamp}`)
        const { rows: keys } = await sql`SELECT 1 FROM user_openrouter_integrations`.execute(db)
        expect(keys).toHaveLength(0)
      },
      { login: true },
    )
  })
})

describe.each(testTargets)("restoring 005's backups as docs/rollback.md says, on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it("keeps each user's newest key where a user stored one again while the rollback stood, and newer OpenRouter values", async () => {
    // Review revd F3 and F4.
    const db = database.db as Kysely<any>
    await seed(db)
    const before = await rows(db)
    const [again] = Object.keys(before.keys)
    await sql`
      CREATE FUNCTION public.refuse_drops() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN RAISE EXCEPTION 'drops are refused here'; END $fn$`.execute(db)
    await sql`CREATE EVENT TRIGGER refuse_drops ON ddl_command_start WHEN TAG IN ('DROP TABLE')
              EXECUTE FUNCTION public.refuse_drops()`.execute(db)
    await expect(migrateDown(db, { allowDataLoss: true, env: {} })).rejects.toThrow(
      /drops are refused here/,
    )
    await sql`DROP EVENT TRIGGER refuse_drops`.execute(db)
    await sql`DROP FUNCTION public.refuse_drops()`.execute(db)
    await sql`INSERT INTO user_openrouter_integrations (user_id, encrypted_api_key) VALUES (${again}, 'bb:again')`.execute(
      db,
    )
    await migrateDown(db, { allowDataLoss: true, env: {} })
    await migrateUp(db, { env: {} })
    const configured = Object.values(before.resources).find(
      (row) => row.openrouter_config !== null && row.resource_type !== 'openrouter_instant',
    )!
    await sql`UPDATE x402_resources SET openrouter_config = ${JSON.stringify({ modelId: 'newer', systemPrompt: '', params: {} })}::jsonb
              WHERE id = ${configured.id as string}`.execute(db)
    await restore005AsDocumented(db, (await backupStampsOf005(db))[0]!)
    const after = await rows(db)
    expect(Object.keys(after.keys).sort()).toEqual(Object.keys(before.keys).sort())
    expect(after.keys[again!]).toMatchObject({ encrypted_api_key: 'bb:again' })
    expect(after.resources[configured.id as string]!.openrouter_config).toMatchObject({
      modelId: 'newer',
    })
  })
})

describe.each(testTargets)("restoring 005's backups as docs/rollback.md says, on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it("runs the app's own triggers on the operator's search_path, as any write does", async () => {
    // Review reve L4: a trigger function that names a table unqualified failed the restore.
    const db = database.db as Kysely<any>
    await seed(db)
    const before = await rows(db)
    await migrateDown(db, { allowDataLoss: true, env: {} })
    await migrateUp(db, { env: {} })
    await sql`CREATE FUNCTION public.count_resources() RETURNS trigger LANGUAGE plpgsql AS $f$
              BEGIN PERFORM count(*) FROM x402_resources; RETURN NULL; END $f$`.execute(db)
    await sql`CREATE TRIGGER count_resources AFTER INSERT OR UPDATE ON public.x402_resources
              FOR EACH STATEMENT EXECUTE FUNCTION public.count_resources()`.execute(db)
    await restore005AsDocumented(db, (await backupStampsOf005(db))[0]!)
    expect((await rows(db)).keys).toEqual(before.keys)
  })
})

/** The newest stamp a backup can have: every restore reads a backup of that name, if it is there. */
const PLANTED = 'x402_backup."005_x402_resources_99999999T999999999"'

/**
 * What a lesser login prepares in a schema of its own: a type whose assignment cast to text (the
 * type of x402_resources.description) makes it a superuser when a superuser runs it.
 */
async function prepareCast(db: Kysely<any>, role: string): Promise<void> {
  await sql.raw(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`).execute(db)
  await db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL ROLE ${role}`).execute(trx)
    await sql.raw(`CREATE TYPE ${role}.t AS (v text)`).execute(trx)
    await sql
      .raw(
        `CREATE FUNCTION ${role}.to_text(${role}.t) RETURNS text LANGUAGE plpgsql AS $f$
         BEGIN ${escalate(role)} RETURN $1.v; END $f$`,
      )
      .execute(trx)
    await sql
      .raw(`CREATE CAST (${role}.t AS text) WITH FUNCTION ${role}.to_text(${role}.t) AS ASSIGNMENT`)
      .execute(trx)
  })
}

/**
 * The lesser login's "backup", made as that login in the operator's transaction once the checks
 * went through (as another session of it could, while psql sends the next statement): every
 * column of x402_resources (pg_attribute is readable by all), its description of the login's
 * type, and one resource of type openrouter_instant.
 */
async function plant(connection: Kysely<any>, role: string): Promise<void> {
  const { rows: columns } = await sql<{ list: string }>`
    SELECT string_agg(format('%I %s', attname, CASE WHEN attname = 'description' THEN ${`${role}.t`}
                                                   ELSE format_type(atttypid, atttypmod) END), ', ' ORDER BY attnum) AS list
      FROM pg_attribute
     WHERE attrelid = 'public.x402_resources'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`.execute(
    connection,
  )
  await sql.raw(`SET ROLE ${role}`).execute(connection)
  await sql.raw(`CREATE TABLE ${PLANTED} (${columns[0]!.list})`).execute(connection)
  await sql
    .raw(
      `INSERT INTO ${PLANTED} (id, name, description, resource_url, normalized_url, network, pay_to, resource_type, created_at, updated_at)
       VALUES (gen_random_uuid(), 'planted', ROW('planted')::${role}.t, 'https://planted.test', 'planted.test', 'base', '0x2',
               'openrouter_instant', now(), now())`,
    )
    .execute(connection)
  await sql`RESET ROLE`.execute(connection)
}

describe.each(testTargets)("restoring 005's backups as docs/rollback.md says, on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('refuses (42501) while a lesser login may create tables in x402_backup, and runs no code of a backup it adds after the checks', async () => {
    // Review revf F3: the login adds a "backup" stamped after every other between the checks and
    // the restore; the restore read it, and its column's cast ran with the operator's power.
    const db = database.db as Kysely<any>
    await seed(db)
    const before = await rows(db)
    await migrateDown(db, { allowDataLoss: true, env: {} })
    await migrateUp(db, { env: {} })
    const [stamp] = await backupStampsOf005(db)
    await withLesserRole(
      db,
      'restore_plant',
      async (role) => {
        await prepareCast(db, role)
        await sql.raw(`GRANT USAGE, CREATE ON SCHEMA x402_backup TO ${role}`).execute(db)
        const refused = await restore005AsDocumented(db, stamp!, {
          afterChecks: (connection) => plant(connection, role),
        }).catch((error: unknown) => error)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String(refused)).toMatch(/SQLSTATE 42501/)
        expect(String(refused)).toContain(`${role} may create objects in schema x402_backup`)
        expect(String(refused)).toContain('REVOKE CREATE ON SCHEMA')
        expect((await rows(db)).keys).toEqual({})
        const { rows: planted } =
          await sql`SELECT 1 FROM x402_resources WHERE name = 'planted'`.execute(db)
        expect(planted).toHaveLength(0)

        // What the message advises lets it go on.
        await sql.raw(`REVOKE CREATE ON SCHEMA x402_backup FROM ${role}`).execute(db)
        await restore005AsDocumented(db, stamp!)
        expect((await rows(db)).keys).toEqual(before.keys)
      },
      { login: true },
    )
  })
})

describe.each(testTargets)("restoring 005's backups as docs/rollback.md says, on %s", (target) => {
  const database = useTestDatabase(target, MIGRATION_005)

  it('refuses (42501) to read a backup of another owner that turns up after the checks, and runs none of its code', async () => {
    // The restore's own rule, whatever the checks before it saw: here the right to create in
    // x402_backup comes only after them.
    const db = database.db as Kysely<any>
    await seed(db)
    await migrateDown(db, { allowDataLoss: true, env: {} })
    await migrateUp(db, { env: {} })
    const [stamp] = await backupStampsOf005(db)
    await withLesserRole(
      db,
      'restore_plant',
      async (role) => {
        await prepareCast(db, role)
        const refused = await restore005AsDocumented(db, stamp!, {
          afterChecks: async (connection) => {
            await sql
              .raw(`GRANT USAGE, CREATE ON SCHEMA x402_backup TO ${role}`)
              .execute(connection)
            await plant(connection, role)
          },
        }).catch((error: unknown) => error)
        expect(await isSuperuser(db, role)).toBe(false)
        expect(String(refused)).toMatch(/SQLSTATE 42501/)
        expect(String(refused)).toContain(`${PLANTED} (owned by ${role})`)
        expect((await rows(db)).keys).toEqual({})
        const { rows: planted } =
          await sql`SELECT 1 FROM x402_resources WHERE name = 'planted'`.execute(db)
        expect(planted).toHaveLength(0)
      },
      { login: true },
    )
  })
})
