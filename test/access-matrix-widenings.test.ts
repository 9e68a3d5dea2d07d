import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'

import { seedEmptyTables } from '../src/access/generic-seed.js'
import { type AccessEntry, measureAccess, seedAccessFixtures } from '../src/tooling.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// Widenings of access that are real through PostgREST but that the matrix once missed: writes
// whose policy has no SELECT policy beside it, column-level grants, a user handing a row to
// another user, and policies keyed on claims that every signed-in user's JWT carries. Each
// attack runs in a transaction that is rolled back after measuring, so one seeded database
// serves the whole file.

const ROLLED_BACK = new Error('roll back')

describe.each(testTargets)('the access matrix sees widenings on %s', (target) => {
  const database = useTestDatabase(target, 'none')
  let baseline: AccessEntry[]
  beforeAll(async () => {
    await seedAccessFixtures(database.db)
    baseline = await measureAccess(database.db)
  })

  /** The cell of `role` for `operation` on `object`, measured after `attack`; the attack is then undone. */
  async function cellAfter(
    attack: string[],
    object: string,
    operation: string,
    role: 'anon' | 'authenticated',
  ): Promise<string> {
    const { db } = database
    for (const statement of attack) await sql.raw(statement).execute(db)
    try {
      const entry = (await measureAccess(db)).find(
        (line) => `${line.schema}.${line.object}` === object && line.operation === operation,
      )
      expect(entry, `${object} ${operation}`).toBeDefined()
      return entry![role]
    } finally {
      await undo(attack)
    }
  }

  async function undo(attack: string[]): Promise<void> {
    const { db } = database
    // The attacks are undone by hand: measureAccess needs transactions of its own.
    for (const statement of attack.toReversed()) {
      const policy = /^CREATE POLICY (\S+|"[^"]+") ON (\S+)/.exec(statement)
      if (policy) await sql.raw(`DROP POLICY ${policy[1]} ON ${policy[2]}`).execute(db)
      const dropped = /^DROP POLICY "([^"]+)" ON (\S+)/.exec(statement)
      if (dropped) {
        await sql
          .raw(
            `CREATE POLICY "${dropped[1]}" ON ${dropped[2]} FOR ALL TO authenticated USING ((select auth.uid()) = user_id) WITH CHECK ((select auth.uid()) = user_id)`,
          )
          .execute(db)
      }
      const columns = /^GRANT SELECT \(([^)]+)\) ON (\S+) TO anon/.exec(statement)
      if (columns)
        await sql.raw(`REVOKE SELECT (${columns[1]}) ON ${columns[2]} FROM anon`).execute(db)
      const revoked = /^REVOKE SELECT ON (\S+) FROM anon/.exec(statement)
      if (revoked) await sql.raw(`GRANT SELECT ON ${revoked[1]} TO anon`).execute(db)
    }
  }

  it('starts from the committed access: anon reaches nothing of x402_resources', () => {
    const cells = baseline
      .filter((entry) => entry.object === 'x402_resources')
      .map((entry) => entry.anon)
    expect(cells).toEqual(['none', 'none', 'none', 'none'])
  })

  it('a DELETE policy for anon without any SELECT policy: anon deletes every resource, as an unfiltered DELETE does', async () => {
    // The attack itself, as PostgREST would send DELETE /x402_resources: no filter, so no SELECT policy is consulted.
    await sql`CREATE POLICY "anon deletes" ON x402_resources FOR DELETE TO anon USING (true)`.execute(
      database.db,
    )
    try {
      await database.db
        .transaction()
        .execute(async (trx) => {
          await sql`SELECT set_config('request.jwt.claims', '{"role":"anon"}', true)`.execute(trx)
          await sql`SET LOCAL ROLE anon`.execute(trx)
          expect(Number((await sql`DELETE FROM x402_resources`.execute(trx)).numAffectedRows)).toBe(
            2,
          )
          throw ROLLED_BACK
        })
        .catch((error: unknown) => {
          if (error !== ROLLED_BACK) throw error
        })
    } finally {
      await sql`DROP POLICY "anon deletes" ON x402_resources`.execute(database.db)
    }
    expect(
      await cellAfter(
        ['CREATE POLICY "anon deletes" ON x402_resources FOR DELETE TO anon USING (true)'],
        'public.x402_resources',
        'DELETE',
        'anon',
      ),
    ).toBe('all rows')
  })

  it('an UPDATE policy for anon without any SELECT policy: anon updates every resource', async () => {
    const attack = [
      'CREATE POLICY "anon updates" ON x402_resources FOR UPDATE TO anon USING (true) WITH CHECK (true)',
    ]
    expect(await cellAfter(attack, 'public.x402_resources', 'UPDATE', 'anon')).toBe('all rows')
  })

  it("a column-level SELECT grant lets anon read every user's encrypted Claude key", async () => {
    const attack = [
      'REVOKE SELECT ON x402_user_claude_configs FROM anon',
      'GRANT SELECT (user_id, api_key_encrypted) ON x402_user_claude_configs TO anon',
      'CREATE POLICY "anon reads keys" ON x402_user_claude_configs FOR SELECT TO anon USING (true)',
    ]
    expect(await cellAfter(attack, 'public.x402_user_claude_configs', 'SELECT', 'anon')).toBe(
      'all rows (columns: user_id, api_key_encrypted)',
    )
  })

  it('an UPDATE policy whose WITH CHECK lets a user hand a row to another user is wider than own rows only', async () => {
    const attack = [
      'DROP POLICY "Users can manage their own Claude config" ON x402_user_claude_configs',
      'CREATE POLICY u ON x402_user_claude_configs FOR UPDATE TO authenticated USING ((select auth.uid()) = user_id) WITH CHECK (true)',
    ]
    expect(
      await cellAfter(attack, 'public.x402_user_claude_configs', 'UPDATE', 'authenticated'),
    ).toBe('own rows only, and gives them to another user')
  })

  it("an UPDATE policy whose USING reaches every row lets a user take another user's row, even if WITH CHECK keeps the owner", async () => {
    const attack = [
      'DROP POLICY "Users can manage their own Claude config" ON x402_user_claude_configs',
      'CREATE POLICY u ON x402_user_claude_configs FOR UPDATE TO authenticated USING (true) WITH CHECK ((select auth.uid()) = user_id)',
    ]
    expect(
      await cellAfter(attack, 'public.x402_user_claude_configs', 'UPDATE', 'authenticated'),
    ).toBe('all rows')
  })

  it('a policy keyed on the email claim, which every signed-in user has, opens every key to every signed-in user', async () => {
    const attack = [
      'CREATE POLICY "any user with an email" ON x402_user_claude_configs FOR SELECT TO authenticated USING ((select auth.email()) IS NOT NULL)',
    ]
    expect(
      await cellAfter(attack, 'public.x402_user_claude_configs', 'SELECT', 'authenticated'),
    ).toBe('all rows')
  })

  it('a new table is seeded generically and measured; one that cannot be says why, on its own lines', async () => {
    const { db } = database
    await sql`CREATE TABLE public.x402_new (id int PRIMARY KEY, label text NOT NULL, user_id uuid REFERENCES auth.users (id))`.execute(
      db,
    )
    // Its foreign keys take rows of the tables they point at: another empty table's, seeded first.
    await sql`CREATE TABLE public.x402_parent (id int PRIMARY KEY, status text NOT NULL CHECK (status IN ('it''s on', 'off')))`.execute(
      db,
    )
    await sql`CREATE TABLE public.x402_child (id uuid PRIMARY KEY REFERENCES auth.users (id), parent int NOT NULL REFERENCES public.x402_parent (id))`.execute(
      db,
    )
    await sql`CREATE TABLE public.x402_unseedable (label text NOT NULL CHECK (length(label) > 100))`.execute(
      db,
    )
    try {
      await seedEmptyTables(db)
      const lines = (await measureAccess(db)).filter((entry) =>
        /^x402_(child|new|parent|unseedable)$/.test(entry.object),
      )
      const allRows = (table: string) =>
        ['SELECT', 'INSERT', 'UPDATE', 'DELETE'].map((operation) => [table, operation, 'all rows'])
      expect(lines.map((entry) => [entry.object, entry.operation, entry.anon])).toEqual([
        // Supabase's default privileges in public, and RLS off: exactly what review must see.
        ...allRows('x402_child'),
        ...allRows('x402_new'),
        ...allRows('x402_parent'),
        ...['SELECT', 'INSERT', 'UPDATE', 'DELETE'].map((operation) => [
          'x402_unseedable',
          operation,
          expect.stringMatching(
            /^not seeded: made-up rows for public\.x402_unseedable were refused: .*violates check constraint.*; seed it in src\/access\/access-fixtures\.ts$/,
          ),
        ]),
      ])
    } finally {
      await sql`DROP TABLE public.x402_new, public.x402_child, public.x402_parent, public.x402_unseedable`.execute(
        db,
      )
    }
  })

  it('a schema of its own that anon may use is measured too', async () => {
    const { db } = database
    await sql`CREATE SCHEMA api`.execute(db)
    try {
      await sql`GRANT USAGE ON SCHEMA api TO anon`.execute(db)
      await sql`CREATE VIEW api.resources AS SELECT id, name FROM public.x402_resources`.execute(db)
      await sql`GRANT SELECT ON api.resources TO anon`.execute(db)
      const lines = (await measureAccess(db)).filter((entry) => entry.schema === 'api')
      expect(lines.map((entry) => [entry.object, entry.operation, entry.anon])).toEqual([
        ['resources', 'SELECT', 'all rows'],
        ['resources', 'INSERT', 'none'],
        ['resources', 'UPDATE', 'none'],
        ['resources', 'DELETE', 'none'],
      ])
    } finally {
      await sql`DROP SCHEMA api CASCADE`.execute(db)
    }
  })
})
