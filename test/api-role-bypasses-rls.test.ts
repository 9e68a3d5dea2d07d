import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { checkDrift, migrateToLatest, syncMigrationChecksums } from '../src/tooling.js'
import { cli, cliEnv, lines } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import { testTargets } from './support/test-database.js'

// migrate:check reports a change to Supabase's API roles (anon, authenticated) that switches row
// level security off for them: with it, one user reads every other user's stored key. Roles are
// cluster-wide, so the cases that change them run on PGlite, whose roles belong to its data
// folder; on the shared server only the untouched roles are checked.

const KEYS = 'x402_user_openrouter_integrations'

/** The conflicts of the drift check that are this rule's, one line each. */
async function bypassLines(database: ScriptableDatabase): Promise<string[]> {
  const report = await checkDrift(database.db)
  return (report.schema?.conflict ?? [])
    .filter(({ field }) => field === 'api_role_bypasses_rls')
    .map(({ line }) => line)
}

describe.each(testTargets)('API roles held to row level security on %s', (target) => {
  let database: ScriptableDatabase

  beforeAll(async () => {
    database = await createScriptableDatabase(target, 'latest')
    await migrateToLatest(database.db)
    await syncMigrationChecksums(database.db)
  })

  afterAll(() => database.destroy())

  it("finds nothing with the stand-in's roles (authenticator and postgres are members of the API roles, not the other way round)", async () => {
    const report = await checkDrift(database.db)
    expect(report.schema?.conflict.map(({ line }) => line)).toEqual([])
    expect(report.ok).toBe(true)
  })
})

describe('API roles that bypass row level security, on pglite (roles of its own)', () => {
  let database: ScriptableDatabase

  beforeAll(async () => {
    database = await createScriptableDatabase('pglite', 'latest')
    await migrateToLatest(database.db)
    await syncMigrationChecksums(database.db)
  })

  afterAll(() => database.destroy())

  it.each([
    {
      change: 'GRANT service_role TO authenticated',
      undo: 'REVOKE service_role FROM authenticated',
      live: 'authenticated: a member of service_role',
      remedy: 'REVOKE service_role FROM authenticated',
    },
    {
      change: 'ALTER ROLE authenticated BYPASSRLS',
      undo: 'ALTER ROLE authenticated NOBYPASSRLS',
      live: 'authenticated: has BYPASSRLS',
      remedy: 'ALTER ROLE authenticated NOBYPASSRLS',
    },
    {
      change: 'ALTER ROLE anon BYPASSRLS',
      undo: 'ALTER ROLE anon NOBYPASSRLS',
      live: 'anon: has BYPASSRLS',
      remedy: 'ALTER ROLE anon NOBYPASSRLS',
    },
    {
      change: 'ALTER ROLE anon SUPERUSER',
      undo: 'ALTER ROLE anon NOSUPERUSER',
      live: 'anon: a superuser',
      remedy: 'ALTER ROLE anon NOSUPERUSER',
    },
    {
      // Inherited through a role in between, and a membership without INHERIT still lets the
      // role SET ROLE to the one that bypasses.
      change:
        'CREATE ROLE x402_test_bypass NOLOGIN BYPASSRLS; CREATE ROLE x402_test_between NOLOGIN IN ROLE x402_test_bypass; ' +
        'GRANT x402_test_between TO anon WITH INHERIT FALSE',
      undo: 'DROP ROLE x402_test_between; DROP ROLE x402_test_bypass',
      live: 'anon: a member of x402_test_between (through it of x402_test_bypass)',
      remedy: 'REVOKE x402_test_between FROM anon',
    },
  ])('reports $change on every table with RLS on, and nothing once undone', async (rule) => {
    await database.runScript(rule.change)
    try {
      const found = await bypassLines(database)
      expect(found.length).toBeGreaterThan(1)
      const keys = found.find((line) => line.startsWith(`${KEYS}: table: `))
      expect(keys).toBe(
        `${KEYS}: table: api_role_bypasses_rls: live ${rule.live} / expected anon and authenticated held to its policies ` +
          '(row level security does not hold for them here: through the API they read and change every row, ' +
          `other users' keys and data included; ${rule.remedy})`,
      )
      expect((await checkDrift(database.db)).ok).toBe(false)
    } finally {
      await database.runScript(rule.undo)
    }
    expect(await bypassLines(database)).toEqual([])
  })

  it('names both roles on one line when both bypass it', async () => {
    await database.runScript(
      'ALTER ROLE anon BYPASSRLS; GRANT service_role TO authenticated WITH INHERIT FALSE',
    )
    try {
      const keys = (await bypassLines(database)).find((line) => line.startsWith(`${KEYS}: `))
      expect(keys).toContain(
        'live anon: has BYPASSRLS; authenticated: a member of service_role / expected',
      )
      expect(keys).toMatch(
        /; ALTER ROLE anon NOBYPASSRLS; REVOKE service_role FROM authenticated\)$/,
      )
    } finally {
      await database.runScript(
        'ALTER ROLE anon NOBYPASSRLS; REVOKE service_role FROM authenticated',
      )
    }
  })

  it('does not count authenticator: PostgREST reads as the role it switches to (SET ROLE), never as itself', async () => {
    await database.runScript('ALTER ROLE authenticator BYPASSRLS')
    try {
      expect(await bypassLines(database)).toEqual([])
      expect((await checkDrift(database.db)).ok).toBe(true)
    } finally {
      await database.runScript('ALTER ROLE authenticator NOBYPASSRLS')
    }
  })

  it("reports membership in a table's owner through the owner rule", async () => {
    // The owner bypasses row level security unless FORCE; postgres, the owner here, is a
    // superuser, so give the keys table an owner of its own that bypasses nothing.
    await database.runScript(
      `CREATE ROLE x402_test_keys_owner NOLOGIN; ALTER TABLE ${KEYS} OWNER TO x402_test_keys_owner; ` +
        'GRANT x402_test_keys_owner TO authenticated',
    )
    try {
      const report = await checkDrift(database.db)
      expect(report.ok).toBe(false)
      expect(report.schema?.conflict.map(({ line }) => line)).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^${KEYS}: table: owner: live x402_test_keys_owner / .*an API role is a member of its owner`,
          ),
        ),
      )
    } finally {
      await database.runScript(
        `ALTER TABLE ${KEYS} OWNER TO CURRENT_USER; DROP ROLE x402_test_keys_owner`,
      )
    }
  })

  it('makes migrate check exit 3 and say why, and 0 once it is undone', async () => {
    await database.runScript('GRANT service_role TO authenticated')
    await database.db.destroy() // the command opens the folder itself
    const env = cliEnv(database.location)
    const drifted = await cli(['check'], env)
    expect(drifted.code).toBe(3)
    expect(drifted.stdout).toContain(
      `  ${KEYS}: table: api_role_bypasses_rls: live authenticated: a member of service_role`,
    )
    expect(lines(drifted.stderr).at(-1)).toMatch(
      /^migrate check failed: drift found: \d+ schema difference/,
    )
    await database.runScript('REVOKE service_role FROM authenticated')
    await database.db.destroy()
    const clean = await cli(['check'], env)
    expect(clean.code).toBe(0)
    expect(lines(clean.stdout).at(-1)).toMatch(/^OK: the schema matches /)
  })
})
