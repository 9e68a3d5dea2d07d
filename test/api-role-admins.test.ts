import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { createDb, exportMigrationSql, migrateToLatest } from '../src/tooling.js'
import { runScriptByStatement } from './support/exported-script.js'

// The migrations grant to Supabase's API roles (005's policy TO service_role on the keys table,
// the grants in public) and the stand-in gives service_role BYPASSRLS. A login that can
// administer an API role (on PostgreSQL 16+, a login with CREATEROLE holds ADMIN OPTION on every
// role it creates) can grant it to itself and read all that: a run refuses before it grants
// anything (review rev-6 R5). Each PGlite database is a cluster of its own, so roles made here
// reach no other test.

/** A PGlite cluster where `thief`, a login with CREATEROLE, created `apiRole` first. */
async function plantedBy(thief: string, apiRole: string): Promise<Kysely<any>> {
  const db = createDb({ dataDir: 'memory://' })
  await sql.raw(`CREATE ROLE ${thief} LOGIN CREATEROLE`).execute(db)
  await db.connection().execute(async (connection) => {
    await sql.raw(`SET ROLE ${thief}`).execute(connection)
    await sql.raw(`CREATE ROLE ${apiRole} NOLOGIN`).execute(connection)
    await sql`RESET ROLE`.execute(connection)
  })
  return db
}

/** Whether the first migration ran: it creates ai_models. */
async function anyApplied(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{
    found: boolean
  }>`SELECT to_regclass('public.ai_models') IS NOT NULL AS found`.execute(db)
  return rows[0]!.found
}

/** Runs the REVOKE statements that a refusal advises (as the superuser it names). */
async function runAdvice(db: Kysely<any>, error: unknown): Promise<void> {
  const advice = /take the right back \((REVOKE [^)]*)\)/.exec(String(error))?.[1]
  expect(advice, String(error)).toBeDefined()
  for (const statement of advice!.split('; ')) await sql.raw(statement).execute(db)
}

describe('an API role that a lesser login can administer', () => {
  it('refuses a run (42501), naming the login and the role, before anything is applied', async () => {
    const db = await plantedBy('key_thief', 'service_role')
    try {
      const error = await migrateToLatest(db).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(String(error)).toMatch(/key_thief/)
      expect(String(error)).toMatch(/service_role/)
      expect(String(error)).toMatch(/42501/)
      expect(await anyApplied(db)).toBe(false)

      // The way out it names, run as it says, lets the run go on.
      await runAdvice(db, error)
      expect((await migrateToLatest(db)).length).toBeGreaterThan(0)
    } finally {
      await db.destroy()
    }
  })

  it('finds the right through a role the login is a member of, and for authenticator too', async () => {
    const db = createDb({ dataDir: 'memory://' })
    try {
      await sql`CREATE ROLE ops NOLOGIN`.execute(db)
      await sql`CREATE ROLE authenticator NOLOGIN NOINHERIT`.execute(db)
      await sql`GRANT authenticator TO ops WITH ADMIN OPTION`.execute(db)
      await sql`CREATE ROLE night_shift LOGIN IN ROLE ops`.execute(db)
      const error = await migrateToLatest(db).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(String(error)).toMatch(/night_shift \(as ops\)/)
      expect(String(error)).toMatch(/authenticator/)
      expect(await anyApplied(db)).toBe(false)
    } finally {
      await db.destroy()
    }
  })

  // rev-c7 F2: a role the login administers that is a member of service_role is service_role to it.
  it('finds the right over a role that is a member of an API role, and its advice takes it back whatever the login did with it', async () => {
    const db = createDb({ dataDir: 'memory://' })
    try {
      await sql`CREATE ROLE key_thief LOGIN CREATEROLE`.execute(db)
      await sql`CREATE ROLE accomplice LOGIN`.execute(db)
      await db.connection().execute(async (connection) => {
        await sql`SET ROLE key_thief`.execute(connection)
        await sql`CREATE ROLE worker NOLOGIN`.execute(connection)
        // Passed on before the run: a REVOKE without CASCADE fails on it.
        await sql`GRANT worker TO accomplice`.execute(connection)
        await sql`RESET ROLE`.execute(connection)
      })
      await sql`CREATE ROLE service_role NOLOGIN BYPASSRLS`.execute(db)
      await sql`GRANT service_role TO worker`.execute(db)
      const error = await migrateToLatest(db).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(String(error)).toMatch(/key_thief may administer worker, a member of service_role/)
      expect(await anyApplied(db)).toBe(false)
      await runAdvice(db, error)
      expect((await migrateToLatest(db)).length).toBeGreaterThan(0)
    } finally {
      await db.destroy()
    }
  })

  // rev-c7 F1: a role made between the check and the stand-in would escape a check run before it.
  it('is asked after the stand-in has made or found the roles, in the same run', async () => {
    const statements: string[] = []
    const db = createDb({ dataDir: 'memory://', onStatement: (text) => statements.push(text) })
    try {
      await migrateToLatest(db)
      const standIn = statements.findLastIndex((text) =>
        text.includes('CREATE SCHEMA IF NOT EXISTS auth'),
      )
      const check = statements.findIndex((text) => text.startsWith('DO $api_roles$'))
      expect(standIn).toBeGreaterThan(-1)
      expect(check).toBeGreaterThan(standIn)
    } finally {
      await db.destroy()
    }
  })

  it('leaves the migrating role’s own right alone, as Supabase’s postgres has it on 16+', async () => {
    const db = createDb({ dataDir: 'memory://' })
    try {
      await sql`CREATE ROLE service_role NOLOGIN`.execute(db)
      await sql`GRANT service_role TO postgres WITH ADMIN OPTION`.execute(db)
      expect((await migrateToLatest(db)).length).toBeGreaterThan(0)
    } finally {
      await db.destroy()
    }
  })

  // Review reve L3: with an empty search_path PostgreSQL still looks in the session's temporary
  // schema first for relations, so a temporary table named as a catalog would answer instead.
  it('reads the catalog itself, never a temporary table of the session named as one', async () => {
    const db = await plantedBy('key_thief', 'service_role')
    try {
      await sql`CREATE TEMP TABLE pg_auth_members (LIKE pg_catalog.pg_auth_members)`.execute(db)
      const error = await migrateToLatest(db).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(String(error)).toMatch(/key_thief may administer service_role/)
      expect(await anyApplied(db)).toBe(false)
    } finally {
      await db.destroy()
    }
  })

  it('refuses in an exported migration script too, as the runner does', async () => {
    const db = await plantedBy('key_thief', 'anon')
    try {
      const script = await exportMigrationSql('000_baseline_ai_models', 'up')
      const error = await runScriptByStatement(db, script)
      expect(String(error)).toMatch(/key_thief/)
      expect((error as { code?: string }).code).toBe('42501')
      expect(await anyApplied(db)).toBe(false)
    } finally {
      await db.destroy()
    }
  })
})
