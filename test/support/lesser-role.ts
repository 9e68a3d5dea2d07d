import { randomBytes } from 'node:crypto'

import { type Kysely, sql } from 'kysely'

// The privilege tests plant code of a lesser role and check that the module never runs it
// with more power: each planted function tries to make its owner a superuser.

/** Whether `role` is a superuser: what each planted function tries to turn on. */
export async function isSuperuser(db: Kysely<any>, role: string): Promise<boolean> {
  const { rows } = await sql<{
    super: boolean
  }>`SELECT rolsuper AS super FROM pg_catalog.pg_roles WHERE rolname = ${role}`.execute(db)
  return rows[0]!.super
}

/** PL/pgSQL statements that make `role` a superuser when their caller is one. */
export const escalate = (role: string): string =>
  `IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN EXECUTE 'ALTER ROLE ${role} SUPERUSER'; END IF;`

/**
 * A throwaway role on the shared server, named `<prefix>_<random>`, dropped with what it owns
 * (its tables given back to the current user first) whatever `use` did. NOLOGIN unless `login`:
 * code that only a role nobody can log in as owns can be changed by no one but those it trusts.
 *
 * @example
 * ```ts
 * await withLesserRole(db, 'x402_test_owner', async (role) => { … })
 * ```
 */
export async function withLesserRole(
  db: Kysely<any>,
  prefix: string,
  use: (role: string) => Promise<void>,
  options: { login?: boolean } = {},
): Promise<void> {
  const role = `${prefix}_${randomBytes(4).toString('hex')}`
  await sql`CREATE ROLE ${sql.id(role)} ${sql.raw(options.login ? 'LOGIN' : 'NOLOGIN')} NOSUPERUSER`.execute(
    db,
  )
  try {
    await use(role)
  } finally {
    await sql`REASSIGN OWNED BY ${sql.id(role)} TO CURRENT_USER`.execute(db)
    await sql`DROP OWNED BY ${sql.id(role)}`.execute(db)
    await sql`DROP ROLE ${sql.id(role)}`.execute(db)
  }
}
