import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateDown, migrateTo, migrateUp } from '../src/tooling.js'
import { snapshotPublicSchema } from '../src/schema/snapshot.js'
import { attemptAs } from './support/attempt-as.js'
import { createModel, createResource, createUser } from './support/fixtures.js'
import { testTargets, useTestDatabase } from './support/test-database.js'
import { MIGRATION_007, MIGRATION_008 } from './support/migration-names.js'

// 008 closes the advisor's findings on the module's objects: RLS on x402_resources (service role
// only) and x402_openrouter_models (read by anyone, written by the service role), and 002's
// policy and trigger function as Supabase advises. Its down restores what it found, including
// RLS that was on already, as on production.

const RLS_REFUSED = {
  ok: false,
  code: '42501',
  message: expect.stringMatching(/violates row-level security policy/),
}
const ok = (value: unknown) => ({ ok: true, value })

describe.each(testTargets)('migration 008 on %s', (target) => {
  const database = useTestDatabase(target, MIGRATION_007)

  it('goes up, down and up, and its down restores exactly what it found', async () => {
    const { db } = database
    const before = await snapshotPublicSchema(db)

    expect((await migrateUp(db)).map((result) => result.migrationName)).toEqual([MIGRATION_008])
    const after = await snapshotPublicSchema(db)
    const rls = (table: string) => after.relations[table]?.definition['row level security']
    expect([rls('x402_resources'), rls('x402_openrouter_models')]).toEqual([true, true])

    expect((await migrateDown(db)).map((result) => result.migrationName)).toEqual([MIGRATION_008])
    expect(await snapshotPublicSchema(db)).toEqual(before)
    expect(await priorStateTable()).toBeNull()

    await migrateUp(db)
    expect(await snapshotPublicSchema(db)).toEqual(after)
    await migrateDown(db)
    expect(await snapshotPublicSchema(db)).toEqual(before)
  })

  it('works where RLS is on already (production), and its down leaves it on', async () => {
    const { db } = database
    await sql`ALTER TABLE x402_resources ENABLE ROW LEVEL SECURITY`.execute(db)
    await sql`ALTER FUNCTION update_claude_config_updated_at() SET search_path = public, extensions`.execute(
      db,
    )
    await sql`ALTER FUNCTION update_claude_config_updated_at() SET work_mem = '8MB'`.execute(db)
    const production = await snapshotPublicSchema(db)

    await migrateUp(db)
    const rows = await sql<{ relname: string; relrowsecurity: boolean }>`
      SELECT relname, relrowsecurity FROM pg_class WHERE oid IN ('x402_resources'::regclass, 'x402_openrouter_models'::regclass) ORDER BY relname
    `.execute(db)
    expect(rows.rows).toEqual([
      { relname: 'x402_openrouter_models', relrowsecurity: true },
      { relname: 'x402_resources', relrowsecurity: true },
    ])

    await migrateDown(db)
    expect(await snapshotPublicSchema(db)).toEqual(production)

    await sql`ALTER TABLE x402_resources DISABLE ROW LEVEL SECURITY`.execute(db)
    await sql`ALTER FUNCTION update_claude_config_updated_at() RESET ALL`.execute(db)
    await migrateUp(db)
  })

  it('restores a Claude policy changed by hand exactly: restrictive, its command, roles and comment', async () => {
    const { db } = database
    const policy = async () =>
      (
        await sql<{
          permissive: boolean
          command: string
          roles: string[]
          comment: string | null
        }>`
          SELECT polpermissive AS permissive, polcmd::text AS command, polroles::regrole[]::text[] AS roles,
                 obj_description(oid, 'pg_policy') AS comment
          FROM pg_policy
          WHERE polrelid = 'public.x402_user_claude_configs'::regclass AND polname = 'Users can manage their own Claude config'
        `.execute(db)
      ).rows
    await migrateTo(db, MIGRATION_007)
    await sql`DROP POLICY "Users can manage their own Claude config" ON x402_user_claude_configs`.execute(
      db,
    )
    await sql`
      CREATE POLICY "Users can manage their own Claude config" ON x402_user_claude_configs
      AS RESTRICTIVE FOR UPDATE TO authenticated, anon USING (auth.uid() = user_id)
    `.execute(db)
    await sql`COMMENT ON POLICY "Users can manage their own Claude config" ON x402_user_claude_configs IS 'made by hand, it''s production''s'`.execute(
      db,
    )
    const before = await policy()
    const schema = await snapshotPublicSchema(db)

    await migrateUp(db)
    await migrateDown(db)
    expect(await policy()).toEqual(before)
    expect(await snapshotPublicSchema(db)).toEqual(schema)

    await sql`DROP POLICY "Users can manage their own Claude config" ON x402_user_claude_configs`.execute(
      db,
    )
    await sql`
      CREATE POLICY "Users can manage their own Claude config" ON x402_user_claude_configs
      USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id)
    `.execute(db)
    await migrateUp(db)
  })

  it('writes 002’s policy and trigger function as Supabase advises, and the trigger still works', async () => {
    const { db } = database
    const { rows } = await sql<{
      roles: string[]
      qual: string
      with_check: string
      config: string[]
    }>`
      SELECT p.roles::text[] AS roles, p.qual, p.with_check,
             (SELECT proconfig FROM pg_proc WHERE oid = 'update_claude_config_updated_at()'::regprocedure) AS config
      FROM pg_policies p
      WHERE p.tablename = 'x402_user_claude_configs' AND p.policyname = 'Users can manage their own Claude config'
    `.execute(db)
    expect(rows).toEqual([
      {
        roles: ['authenticated'],
        qual: expect.stringMatching(/^\(\( SELECT auth\.uid\(\) AS uid\) = user_id\)$/),
        with_check: expect.stringMatching(/^\(\( SELECT auth\.uid\(\) AS uid\) = user_id\)$/),
        config: ['search_path=""'],
      },
    ])

    const userId = await createUser(db)
    await db
      .insertInto('x402_user_claude_configs')
      .values({ user_id: userId, api_key_encrypted: 'ab:cd', updated_at: new Date(0) })
      .execute()
    await db
      .updateTable('x402_user_claude_configs')
      .set({ is_enabled: false })
      .where('user_id', '=', userId)
      .execute()
    const { updated_at } = await db
      .selectFrom('x402_user_claude_configs')
      .select('updated_at')
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow()
    expect(updated_at!.getTime()).toBeGreaterThan(0)
  })

  it('refuses anon on x402_resources: it sees, adds, changes and removes nothing', async () => {
    const { db } = database
    const resourceId = await createResource(db)
    const anon = { role: 'anon' } as const
    expect(
      await attemptAs(db, anon, (trx) => trx.selectFrom('x402_resources').select('id').execute()),
    ).toEqual(ok([]))
    expect(
      await attemptAs(db, anon, (trx) =>
        trx
          .insertInto('x402_resources')
          .values({
            name: 'n',
            resource_url: 'https://x.test',
            normalized_url: 'x.test',
            network: 'base',
            pay_to: '0x0',
          })
          .execute(),
      ),
    ).toEqual(RLS_REFUSED)
    const updated = await attemptAs(db, anon, async (trx) =>
      Number(
        (
          await trx
            .updateTable('x402_resources')
            .set({ name: 'taken' })
            .where('id', '=', resourceId)
            .executeTakeFirst()
        ).numUpdatedRows,
      ),
    )
    expect(updated).toEqual(ok(0))
    const deleted = await attemptAs(db, anon, async (trx) =>
      Number(
        (await trx.deleteFrom('x402_resources').where('id', '=', resourceId).executeTakeFirst())
          .numDeletedRows,
      ),
    )
    expect(deleted).toEqual(ok(0))

    // A signed-in user is refused the same way; the backend, as service_role, reaches every row.
    const user = { role: 'authenticated', sub: await createUser(db) } as const
    expect(
      await attemptAs(db, user, (trx) => trx.selectFrom('x402_resources').select('id').execute()),
    ).toEqual(ok([]))
    const service = { role: 'service_role' } as const
    expect(
      await attemptAs(db, service, (trx) =>
        trx.selectFrom('x402_resources').select('id').where('id', '=', resourceId).execute(),
      ),
    ).toEqual(ok([{ id: resourceId }]))
  })

  it('lets anon and authenticated read x402_openrouter_models but not write it, and the service role write it', async () => {
    const { db } = database
    const modelId = await createModel(db)
    const readers = [
      { role: 'anon' },
      { role: 'authenticated', sub: await createUser(db) },
    ] as const
    for (const requester of readers) {
      const read = await attemptAs(db, requester, (trx) =>
        trx.selectFrom('x402_openrouter_models').select('id').where('id', '=', modelId).execute(),
      )
      expect(read, requester.role).toEqual(ok([{ id: modelId }]))
      const inserted = await attemptAs(db, requester, (trx) =>
        trx
          .insertInto('x402_openrouter_models')
          .values({ openrouter_id: `x/${requester.role}`, display_name: 'X', provider: 'x' })
          .execute(),
      )
      expect(inserted, requester.role).toEqual(RLS_REFUSED)
      const updated = await attemptAs(db, requester, async (trx) =>
        Number(
          (
            await trx
              .updateTable('x402_openrouter_models')
              .set({ display_name: 'changed' })
              .where('id', '=', modelId)
              .executeTakeFirst()
          ).numUpdatedRows,
        ),
      )
      expect(updated, requester.role).toEqual(ok(0))
      const deleted = await attemptAs(db, requester, async (trx) =>
        Number(
          (
            await trx
              .deleteFrom('x402_openrouter_models')
              .where('id', '=', modelId)
              .executeTakeFirst()
          ).numDeletedRows,
        ),
      )
      expect(deleted, requester.role).toEqual(ok(0))
    }

    const service = { role: 'service_role' } as const
    const written = await attemptAs(db, service, async (trx) =>
      Number(
        (
          await trx
            .updateTable('x402_openrouter_models')
            .set({ display_name: 'synced' })
            .where('id', '=', modelId)
            .executeTakeFirst()
        ).numUpdatedRows,
      ),
    )
    expect(written).toEqual(ok(1))
  })

  async function priorStateTable(): Promise<string | null> {
    const { rows } = await sql<{
      found: string | null
    }>`SELECT to_regclass('x402_migrations.prior_state_008')::text AS found`.execute(database.db)
    return rows[0]!.found
  }
})
