import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createDb, IN_MEMORY } from '../src/connection/create-db.js'
import {
  AcceptedFindingsError,
  type AdvisorReport,
  ensureSupabaseStandIn,
  failingFindings,
  parseAcceptedFindings,
  readAcceptedFindings,
  runAdvisor,
} from '../src/tooling.js'
import { cli, cliEnv } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import { createProductionTodayDatabase } from './support/production-today.js'
import { serverUrl, testTargets, useTestDatabase } from './support/test-database.js'

// db:advise, Supabase's advisor lints on the live database: on production today it reports what
// splinter would (RLS off on the catalog and x402_oauth_pending, oauth_token exposed, every
// function without a fixed search_path) and fails on the ERRORs until advisor-accepted.json keeps
// them; on a fresh database migrated to the latest migration it reports no ERROR. It reads only.

const ADVISE = 'src/cli/advise.ts'
const folder = mkdtempSync(join(tmpdir(), 'x402-advise-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

/** An accepted-findings file in the test's folder, with `accepted` as its entries. */
function acceptedFile(name: string, accepted: unknown[]): string {
  const path = join(folder, name)
  writeFileSync(path, JSON.stringify({ about: 'accepted in a test', accepted }))
  return path
}

const REASON = 'kept on purpose for this test, reviewed by the test author'

const found = (report: AdvisorReport, lint: string) =>
  report.findings
    .filter((finding) => finding.lint === lint)
    .map(({ level, object, detail }) => ({ level, object, detail }))

describe.each(testTargets)('db:advise on production today (%s)', (target) => {
  let database: ScriptableDatabase
  beforeAll(async () => {
    database = await createProductionTodayDatabase(target, createScriptableDatabase)
  })
  afterAll(async () => {
    await database.destroy()
  })

  it('reports the fixture’s findings at their levels, as splinter would', async () => {
    const report = await runAdvisor(database.db)
    expect(report.skipped).toEqual([])
    expect(found(report, 'rls_disabled_in_public')).toEqual([
      { level: 'ERROR', object: 'public.x402_oauth_pending', detail: null },
      { level: 'ERROR', object: 'public.x402_openrouter_models', detail: null },
    ])
    expect(found(report, 'sensitive_columns_exposed')).toEqual([
      { level: 'ERROR', object: 'public.x402_oauth_pending', detail: 'columns: oauth_token' },
    ])
    // Every function of public without a search_path setting of its own, read from the catalog.
    const { rows } = await sql<{ object: string }>`
      SELECT 'public.' || proname AS object FROM pg_proc
      WHERE pronamespace = 'public'::regnamespace
        AND NOT coalesce(array_to_string(proconfig, ' ') ~ '(^| )search_path=', false)
    `.execute(database.db)
    expect(rows.length).toBeGreaterThanOrEqual(11)
    const mutable = found(report, 'function_search_path_mutable')
    const objects = mutable.map((finding) => finding.object).sort()
    expect(objects).toEqual(rows.map((row) => row.object).sort())
    expect(new Set(mutable.map((finding) => finding.level))).toEqual(new Set(['WARN']))
    expect(mutable).toContainEqual({
      level: 'WARN',
      object: 'public.soft_delete_user_tx',
      detail: 'soft_delete_user_tx(target_user uuid), SECURITY DEFINER',
    })
    // Production revoked EXECUTE on it from anon and authenticated.
    const executable = report.findings.filter((finding) =>
      finding.lint.endsWith('_security_definer_function_executable'),
    )
    expect(executable.map((finding) => finding.object)).not.toContain('public.soft_delete_user_tx')
    // The view reads with the caller's rights.
    expect(found(report, 'security_definer_view')).toEqual([])
    const failing = failingFindings(report, 'ERROR').map(({ lint, object }) => `${lint} ${object}`)
    expect(failing).toEqual([
      'rls_disabled_in_public public.x402_oauth_pending',
      'rls_disabled_in_public public.x402_openrouter_models',
      'sensitive_columns_exposed public.x402_oauth_pending',
    ])
    const remedy = report.findings.find(({ lint }) => lint === 'rls_disabled_in_public')!.remedy
    expect(remedy).toMatch(/^ALTER TABLE public\.x402_oauth_pending ENABLE ROW LEVEL SECURITY/)
  })

  it('exits 3 on the ERRORs, 0 once a file accepts them, and names a stale acceptance', async () => {
    // The command line opens the embedded folder itself: one process at a time.
    if (target === 'pglite') await database.db.destroy()
    const env = cliEnv(database.location)

    const refused = await cli([], env, ADVISE)
    expect(refused.code).toBe(3)
    expect(refused.stdout).toMatch(/^ERROR \(3\)$/m)
    const printed = refused.stdout.split('\n')
    expect(printed).toContain('  rls_disabled_in_public  public.x402_openrouter_models')
    expect(printed).toContain(
      '  sensitive_columns_exposed  public.x402_oauth_pending  (columns: oauth_token)',
    )
    expect(refused.stdout).toMatch(
      /^ {2}function_search_path_mutable {2}public\.soft_delete_user_tx /m,
    )
    expect(refused.stderr).toMatch(/3 finding\(s\) at ERROR not accepted/)

    const accepted = acceptedFile('accepted.json', [
      { lint: 'rls_disabled_in_public', object: 'public.x402_oauth_pending', reason: REASON },
      { lint: 'rls_disabled_in_public', object: 'public.x402_openrouter_models', reason: REASON },
      {
        lint: 'sensitive_columns_exposed',
        object: 'public.x402_oauth_pending',
        detail: 'columns: oauth_token',
        reason: REASON,
      },
      { lint: 'security_definer_view', object: 'public.public_x402_resources', reason: REASON },
    ])
    const passed = await cli(['--json', '--accepted', accepted], env, ADVISE)
    expect(passed.stderr).not.toMatch(/failed/)
    expect(passed.code).toBe(0)
    const report = JSON.parse(passed.stdout) as AdvisorReport & { failing: number }
    expect(report.failing).toBe(0)
    expect(report.findings.filter((finding) => finding.acceptedBecause === REASON)).toHaveLength(3)
    expect(report.unmatched).toEqual([
      { lint: 'security_definer_view', object: 'public.public_x402_resources', reason: REASON },
    ])
    const mutable = report.findings.filter(({ lint }) => lint === 'function_search_path_mutable')
    expect(mutable.length).toBeGreaterThanOrEqual(11)

    // WARN fails only when told.
    const strict = await cli(['--accepted', accepted, '--fail-on', 'warn'], env, ADVISE)
    expect(strict.code).toBe(3)
    expect(strict.stdout).toMatch(/^Accepted in the accepted file \(3\)$/m)
    expect(strict.stdout.split('\n')).toContain(
      'Accepted in the accepted file but found no more: remove these entries (1)',
    )
    expect(strict.stderr).toMatch(/finding\(s\) at WARN or above not accepted/)
  })
})

describe.each(testTargets)(
  'db:advise on a fresh database at the latest migration (%s)',
  (target) => {
    const statements: string[] = []
    const onStatement = (text: string) => statements.push(text)
    const database = useTestDatabase(target, 'latest', { onStatement })

    it('reports no ERROR, in one READ ONLY transaction that writes nothing', async () => {
      statements.length = 0
      const report = await runAdvisor(database.db, { performance: true })
      expect(report.skipped).toEqual([])
      expect(report.findings.filter((finding) => finding.level === 'ERROR')).toEqual([])
      expect(statements.slice(0, 2)).toEqual(['BEGIN', 'set transaction read only'])
      expect(statements.at(-1)).toBe('COMMIT')
      for (const statement of statements.slice(2, -1))
        expect(statement.trim()).toMatch(/^select\b/i)
    })

    it('finds a policy with RLS off, a view run as its owner, and a view over auth.users', async () => {
      const db = database.db as Kysely<any>
      await sql`CREATE TABLE public.advisor_keys (id int PRIMARY KEY, api_key text)`.execute(db)
      await sql`CREATE POLICY "own keys" ON public.advisor_keys FOR SELECT TO authenticated USING (false)`.execute(
        db,
      )
      await sql`CREATE VIEW public.advisor_all_keys AS SELECT id, api_key FROM public.advisor_keys`.execute(
        db,
      )
      await sql`CREATE VIEW public.advisor_users AS SELECT id, email FROM auth.users`.execute(db)
      await sql`GRANT SELECT ON public.advisor_keys, public.advisor_all_keys, public.advisor_users
              TO anon, authenticated`.execute(db)
      const report = await runAdvisor(db, { schemas: ['public'] })
      const errors = failingFindings(report, 'ERROR').map(({ lint, object, detail }) =>
        `${lint} ${object} ${detail ?? ''}`.trim(),
      )
      expect(errors).toEqual([
        'auth_users_exposed public.advisor_users view over auth.users',
        'policy_exists_rls_disabled public.advisor_keys policies: own keys',
        'rls_disabled_in_public public.advisor_keys',
        'security_definer_view public.advisor_all_keys',
        'security_definer_view public.advisor_users',
        'sensitive_columns_exposed public.advisor_keys columns: api_key',
      ])
      // A schema PostgREST does not expose is not reachable through the API.
      const unexposed = await runAdvisor(db, { schemas: ['graphql_public'] })
      const unexposedErrors = failingFindings(unexposed, 'ERROR').map(({ lint }) => lint)
      expect(unexposedErrors).toEqual(['policy_exists_rls_disabled'])
    })
  },
)

// CI may run the lints as a role that may read the catalog and nothing else: no USAGE on auth.
describe.skipIf(!process.env.TEST_DATABASE_URL)(
  'db:advise as a role that reads only the catalog',
  () => {
    it('finds what it finds as the owner', async () => {
      const database = await createProductionTodayDatabase('postgres', createScriptableDatabase)
      const role = `x402_advise_reader_${process.pid}`
      const url = new URL(serverUrl(database.location))
      url.username = role
      const reader = createDb({ connectionString: url.toString() })
      try {
        await database.runScript(`CREATE ROLE ${role} LOGIN`)
        const owner = await runAdvisor(database.db)
        const read = await runAdvisor(reader)
        expect(read.skipped).toEqual([])
        expect(read.findings).toEqual(owner.findings)
      } finally {
        await reader.destroy()
        await database.runScript(`DROP ROLE IF EXISTS ${role}`)
        await database.destroy()
      }
    }, 120_000)
  },
)

describe('db:advise where Supabase’s pieces are missing', () => {
  it('skips the lints that need the API roles or auth.users, saying why; runs the others', async () => {
    // A plain embedded database: no stand-in, so no anon, authenticated or auth.users.
    const db = createDb({ dataDir: IN_MEMORY })
    try {
      await sql`CREATE TABLE open_table (id int)`.execute(db)
      const report = await runAdvisor(db)
      expect(report.skipped.map((skip) => skip.lint)).toEqual([
        'auth_users_exposed',
        'security_definer_view',
        'rls_disabled_in_public',
        'materialized_view_in_api',
        'foreign_table_in_api',
        'sensitive_columns_exposed',
        'anon_security_definer_function_executable',
        'authenticated_security_definer_function_executable',
      ])
      expect(report.skipped[0]!.reason).toMatch(/no anon and authenticated roles/)
      expect(report.findings).toEqual([])
    } finally {
      await db.destroy()
    }
  })
})

describe('the accepted-findings file', () => {
  const refusal = (text: string) => {
    try {
      parseAcceptedFindings(text, 'advisor-accepted.json')
    } catch (error) {
      expect(error).toBeInstanceOf(AcceptedFindingsError)
      return (error as Error).message
    }
    throw new Error('accepted')
  }
  const entry = {
    lint: 'rls_disabled_in_public',
    object: 'public.x402_oauth_pending',
    reason: REASON,
  }
  const file = (accepted: unknown[]) => JSON.stringify({ about: 'x', accepted })

  it('is refused with what is wrong in it', () => {
    expect(refusal('{')).toMatch(/not JSON/)
    expect(refusal('{"accepted": []}')).toMatch(/no "about"/)
    expect(refusal('{"about": "x"}')).toMatch(/no "accepted" array/)
    expect(refusal(file([{ ...entry, lint: 'rls_disabled' }]))).toMatch(
      /entry 1 of "accepted" has no known "lint" \("rls_disabled"\)/,
    )
    expect(refusal(file([{ ...entry, object: 'x402_oauth_pending' }]))).toMatch(
      /no "object" written schema\.name/,
    )
    expect(refusal(file([{ ...entry, reason: 'TODO: why' }]))).toMatch(/gives no reason/)
    expect(refusal(file([{ ...entry, objet: 'public.x' }]))).toMatch(
      /has "objet": an entry takes only lint, object, detail, reason/,
    )
    expect(refusal(file([entry, entry]))).toMatch(
      /entry 2 of "accepted" accepts rls_disabled_in_public on public\.x402_oauth_pending a second time/,
    )
    expect(parseAcceptedFindings(file([entry]), 'advisor-accepted.json')).toEqual([entry])
  })

  // An accepted finding names its object exactly as the report prints it: whatever characters
  // the name holds (spaces, dots, quotes), it keeps exactly that finding and no other.
  it('accepts any object name, exactly', async () => {
    const names = ['my table', 'a.b "c"', ' padded ']
    const accepted = parseAcceptedFindings(
      file(names.map((name) => ({ ...entry, object: `public.${name}` }))),
      'advisor-accepted.json',
    )
    expect(accepted.map(({ object }) => object)).toEqual(names.map((name) => `public.${name}`))
    const db = createDb({ dataDir: IN_MEMORY })
    try {
      await ensureSupabaseStandIn(db)
      for (const name of [...names, 'my  table'])
        await sql`CREATE TABLE ${sql.id('public', name)} (id int)`.execute(db)
      const report = await runAdvisor(db, { accepted })
      const rlsOff = report.findings.filter(({ lint }) => lint === 'rls_disabled_in_public')
      expect(
        Object.fromEntries(rlsOff.map(({ object, acceptedBecause }) => [object, acceptedBecause])),
      ).toEqual({
        ...Object.fromEntries(names.map((name) => [`public.${name}`, REASON])),
        'public.my  table': undefined,
      })
      expect(report.unmatched).toEqual([])
    } finally {
      await db.destroy()
    }
  })

  // A finding with a detail (the columns, the policy, the function's signature) is kept only by an
  // entry with that detail: a sensitive column added later, or another overload, is a new finding.
  it('keeps a finding only with its detail, so that what was not reviewed is not hidden', async () => {
    const withDetail = { lint: 'sensitive_columns_exposed', object: 'public.keys', reason: REASON }
    const accepted = parseAcceptedFindings(
      file([{ ...withDetail, detail: 'columns: api_key' }]),
      'advisor-accepted.json',
    )
    expect(accepted).toEqual([{ ...withDetail, detail: 'columns: api_key' }])
    expect(refusal(file([{ ...withDetail, detail: 7 }]))).toMatch(/"detail" that is not text/)
    const db = createDb({ dataDir: IN_MEMORY })
    try {
      await ensureSupabaseStandIn(db)
      await sql`CREATE TABLE public.keys (id int, api_key text)`.execute(db)
      await sql`GRANT SELECT ON public.keys TO anon`.execute(db)
      const sensitive = (report: AdvisorReport) =>
        report.findings.filter(({ lint }) => lint === 'sensitive_columns_exposed')
      const kept = await runAdvisor(db, { accepted })
      expect(sensitive(kept)).toEqual([expect.objectContaining({ acceptedBecause: REASON })])

      // Without its detail, the entry keeps nothing.
      const bare = await runAdvisor(db, { accepted: [withDetail] })
      expect(sensitive(bare)[0]!.acceptedBecause).toBeUndefined()
      expect(bare.unmatched).toEqual([withDetail])

      await sql`ALTER TABLE public.keys ADD COLUMN password text`.execute(db)
      const widened = await runAdvisor(db, { accepted })
      expect(sensitive(widened)).toEqual([
        expect.objectContaining({ detail: 'columns: api_key, password' }),
      ])
      expect(sensitive(widened)[0]!.acceptedBecause).toBeUndefined()
      expect(widened.unmatched).toEqual(accepted)
    } finally {
      await db.destroy()
    }
  })

  it('of the repository is valid', () => {
    expect(() => readAcceptedFindings()).not.toThrow()
  })

  it('makes the command exit 2 when unusable, before it opens a database; so do bad arguments', async () => {
    const missing = join(folder, 'no-database-here')
    const env = { PGLITE_DATA_DIR: missing }
    const badFile = acceptedFile('bad.json', [{ ...entry, reason: 'ok' }])
    const bad = await cli(['--accepted', badFile], env, ADVISE)
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(
      /entry 1 of "accepted" \(rls_disabled_in_public public\.x402_oauth_pending\) gives no reason/,
    )
    expect(bad.stderr).not.toMatch(/Database:/)

    const absent = await cli(['--accepted', join(folder, 'absent.json')], env, ADVISE)
    expect(absent.code).toBe(2)
    expect(absent.stderr).toMatch(
      /Cannot read the accepted findings in the file given to --accepted/,
    )

    const level = await cli(['--fail-on', 'sometimes'], env, ADVISE)
    expect(level.code).toBe(2)
    expect(level.stderr).toMatch(/--fail-on is "sometimes", expected error, warn or info/)
    const schemas = await cli(['--schemas', 'public,'], env, ADVISE)
    expect(schemas.code).toBe(2)
    expect(schemas.stderr).toMatch(/--schemas lists an empty name/)
    const flag = await cli(['--frobnicate'], env, ADVISE)
    expect(flag.code).toBe(2)
    // Nothing a user passes is echoed whole: a key given by mistake is shown by its length.
    const key = `sk-or-v1-${'0123456789abcdef'.repeat(4)}`
    const secret = await cli(['--schemas', key], env, ADVISE)
    expect(secret.code).toBe(2)
    expect(secret.stderr).not.toContain(key.slice(9))
    expect(secret.stderr).toMatch(/\(73 characters, not shown\)/)

    // No database to check is a failure, and the command does not create one.
    const none = await cli([], env, ADVISE)
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/there is no embedded database at .*: nothing to check/)
    expect(existsSync(missing)).toBe(false)
    // The folder's name is whoever chose it: never shown as an escape sequence; not plainly a
    // path, not shown at all (shownFolder, review revq Q3).
    const named = await cli([], { PGLITE_DATA_DIR: join(folder, 'x\x1b]0;owned\x07') }, ADVISE)
    expect(named.code).toBe(1)
    expect(named.stderr).not.toContain('\x1b')
    expect(named.stderr).toMatch(
      /there is no embedded database at \(not shown: .*\): nothing to check/,
    )
    expect(named.stderr).not.toContain('owned')
  })
})
