import { randomBytes } from 'node:crypto'

import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { asRequester, asService, asUser, createDb, type DB } from '../src/index.js'
import { migrateToLatest } from '../src/tooling.js'
import { createUser } from './support/fixtures.js'
import {
  serverUrl,
  testTargets,
  useTestDatabase,
  withTestDatabase,
} from './support/test-database.js'

// The product's PostgREST emulation: role and request.jwt.claims for one transaction, then the
// connection exactly as it was.

const whoAmI = sql<{ role: string; uid: string | null; jwtRole: string | null }>`
  SELECT current_user AS role, auth.uid()::text AS uid, auth.role() AS "jwtRole"
`

describe.each(testTargets)('running queries as a requester on %s', (target) => {
  const database = useTestDatabase(target)
  // Roles are cluster-wide on a server: a name of its own per run. Not a member of any API role.
  const plainRole = `x402_test_plain_${randomBytes(4).toString('hex')}`
  let userId: string

  beforeAll(async () => {
    userId = await createUser(database.db)
    await sql`CREATE ROLE ${sql.id(plainRole)} NOLOGIN`.execute(database.db)
  })

  afterAll(async () => {
    await sql`DROP ROLE IF EXISTS ${sql.id(plainRole)}`.execute(database.db)
  })

  it('answers auth.uid() and current_user for the user, and for the service', async () => {
    const { db } = database

    expect((await asUser(db, userId, (trx) => whoAmI.execute(trx))).rows).toEqual([
      { role: 'authenticated', uid: userId, jwtRole: 'authenticated' },
    ])
    expect((await asService(db, (trx) => whoAmI.execute(trx))).rows).toEqual([
      { role: 'service_role', uid: null, jwtRole: 'service_role' },
    ])
  })

  it('gives the connection back with its own role and no claims, after a commit and after a failure', async () => {
    await database.db.connection().execute(async (connection) => {
      const sessionState = async () =>
        (
          await sql<{ role: string; claims: string | null }>`
            SELECT current_user AS role, nullif(current_setting('request.jwt.claims', true), '') AS claims
          `.execute(connection)
        ).rows
      expect(await sessionState()).toEqual([{ role: 'postgres', claims: null }])

      await asUser(connection, userId, (trx) => whoAmI.execute(trx))
      expect(await sessionState()).toEqual([{ role: 'postgres', claims: null }])

      await expect(
        asUser(connection, userId, () => Promise.reject(new Error('the request failed'))),
      ).rejects.toThrow('the request failed')
      expect(await sessionState()).toEqual([{ role: 'postgres', claims: null }])
    })
  })

  it('commits what the callback wrote, and rolls it back when the callback throws', async () => {
    const { db } = database
    const kept = await createUser(db)
    const dropped = await createUser(db)
    const insertOwnKey = (owner: string) => (trx: Kysely<DB>) =>
      trx
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: owner, encrypted_api_key: 'ab:cd' })
        .execute()

    await asUser(db, kept, insertOwnKey(kept))
    await expect(
      asUser(db, dropped, async (trx) => {
        await insertOwnKey(dropped)(trx)
        throw new Error('verification failed after the insert')
      }),
    ).rejects.toThrow('verification failed after the insert')

    const owners = await db
      .selectFrom('x402_user_openrouter_integrations')
      .select('user_id')
      .where('user_id', 'in', [kept, dropped])
      .execute()
    expect(owners).toEqual([{ user_id: kept }])
  })

  it('enforces row level security on the user: another user’s row is invisible', async () => {
    const { db } = database
    const other = await createUser(db)
    await db
      .insertInto('x402_user_openrouter_integrations')
      .values({ user_id: other, encrypted_api_key: 'ef:01' })
      .execute()

    const seen = await asUser(db, userId, (trx) =>
      trx
        .selectFrom('x402_user_openrouter_integrations')
        .select('user_id')
        .where('user_id', '=', other)
        .execute(),
    )
    const seenByService = await asService(db, (trx) =>
      trx
        .selectFrom('x402_user_openrouter_integrations')
        .select('user_id')
        .where('user_id', '=', other)
        .execute(),
    )
    expect(seen).toEqual([])
    expect(seenByService).toEqual([{ user_id: other }])
  })

  it('refuses to run inside a transaction that is already open, where SET LOCAL would outlive it', async () => {
    await expect(
      database.db.transaction().execute((trx) => asService(trx, (inner) => whoAmI.execute(inner))),
    ).rejects.toThrow(/^Cannot run as service_role inside a transaction that is already open/)
  })

  it('says what is missing when the role does not exist', async () => {
    await expect(
      asRequester(database.db, { role: plainRole.replace('plain', 'missing') }, (trx) =>
        whoAmI.execute(trx),
      ),
    ).rejects.toThrow(
      /^Cannot switch to role "x402_test_missing_[0-9a-f]+": role "x402_test_missing_[0-9a-f]+" does not exist\. The role must exist/,
    )
  })

  // PostgreSQL reads the role name "none" as RESET ROLE (SET ROLE and set_config alike): the
  // request would run as the database user, a superuser, past every grant and policy.
  it('refuses the role name none, which PostgreSQL takes for the database user itself', async () => {
    await expect(
      asRequester(database.db, { role: 'none' }, (trx) => whoAmI.execute(trx)),
    ).rejects.toThrow(
      /^Cannot switch to role "none": PostgreSQL reads "none" as the database user itself/,
    )
  })

  // A superuser may switch to any role, and PGlite knows no other login: only a server shows a
  // database user that is not a member of the role.
  it.skipIf(target === 'pglite')(
    'says which GRANT is missing when the database user is not a member of the role',
    async () => {
      const url = new URL(serverUrl(database.location))
      url.username = plainRole
      await sql`ALTER ROLE ${sql.id(plainRole)} LOGIN`.execute(database.db)
      const asPlainRole = createDb({ connectionString: url.toString() })
      try {
        await expect(asService(asPlainRole, (trx) => whoAmI.execute(trx))).rejects.toThrow(
          new RegExp(
            `^Cannot switch to role "service_role": permission denied to set role "service_role"\\..*GRANT "service_role" TO`,
          ),
        )
        await sql`GRANT service_role TO ${sql.id(plainRole)}`.execute(database.db)
        expect((await asService(asPlainRole, (trx) => whoAmI.execute(trx))).rows).toEqual([
          { role: 'service_role', uid: null, jwtRole: 'service_role' },
        ])
      } finally {
        await asPlainRole.destroy()
        await sql`REVOKE service_role FROM ${sql.id(plainRole)}`.execute(database.db)
      }
    },
  )
})

// rev-f1 F1: after the switch to service_role, the default search_path's "$user" named a schema
// called service_role, which a login that once had CREATE on the database could make: its view
// of the keys table ran its code as the requester, and keys:rotate read it instead of the table.
// A request's search_path is PostgREST's on Supabase: public, then extensions (rev-g F3), and
// pg_temp last, so that a temporary table left on a pooled connection hides none (rev-g F4).
describe.each(testTargets)('the search_path of a request on %s', (target) => {
  it('is public, extensions, pg_temp: a schema named after the API role is not searched', async () => {
    await withTestDatabase(target, async ({ db }) => {
      await migrateToLatest(db, { env: {} })
      await sql`CREATE SCHEMA service_role`.execute(db)
      await sql`CREATE VIEW service_role.x402_user_openrouter_integrations AS SELECT 'planted'::text AS user_id`.execute(
        db,
      )
      await sql`GRANT USAGE ON SCHEMA service_role TO service_role`.execute(db)
      await sql`GRANT SELECT ON service_role.x402_user_openrouter_integrations TO service_role`.execute(
        db,
      )
      const { rows } = await asService(db, (trx) =>
        sql<{ path: string; found: number }>`
          SELECT current_setting('search_path') AS path,
                 (SELECT count(*)::int FROM x402_user_openrouter_integrations WHERE user_id::text = 'planted') AS found
        `.execute(trx),
      )
      expect(rows).toEqual([{ path: 'public, extensions, pg_temp', found: 0 }])
    })
  })
})
