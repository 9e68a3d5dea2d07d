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

/**
 * Hands every table and function of public and x402_migrations to `role`, as a database built by
 * that role has them: for tests of an operator that owns the tables without BYPASSRLS.
 *
 * @example
 * ```ts
 * await handOver(db, operator, 'x402_test_abc')
 * ```
 */
export async function handOver(db: Kysely<any>, role: string, database: string): Promise<void> {
  await sql`GRANT CREATE, CONNECT ON DATABASE ${sql.id(database)} TO ${sql.id(role)}`.execute(db)
  await sql`ALTER SCHEMA x402_migrations OWNER TO ${sql.id(role)}`.execute(db)
  await sql`GRANT USAGE ON SCHEMA auth TO ${sql.id(role)}`.execute(db)
  await sql`GRANT SELECT, REFERENCES ON auth.users TO ${sql.id(role)}`.execute(db)
  await sql
    .raw(
      `DO $$ DECLARE r record; BEGIN
        FOR r IN SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname IN ('public', 'x402_migrations') AND c.relkind IN ('r', 'p') LOOP
          EXECUTE format('ALTER TABLE %s OWNER TO %I', r.t, '${role}');
        END LOOP;
        FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = 'public' LOOP
          EXECUTE format('ALTER FUNCTION %s OWNER TO %I', r.f, '${role}');
        END LOOP;
      END $$`,
    )
    .execute(db)
}
