import { readFileSync } from 'node:fs'

import { type Kysely, sql } from 'kysely'

import { RESTORE_005_FILE } from '../../src/export/restore-005-script.js'
import { splitSqlStatements } from '../../src/rehearsal/split-sql.js'

/**
 * The script that docs/rollback.md gives to put 005's backups back, as docs/migrations/ keeps
 * it (`npm run docs:migrations` writes it; CI checks it is current), `<time>` and all.
 */
export function documentedRestoreOf005(): string {
  return readFileSync(new URL(`../../docs/migrations/${RESTORE_005_FILE}`, import.meta.url), 'utf8')
}

/**
 * The stamps (`<time>`) of the backups that rollbacks of 005 left in x402_backup, oldest first.
 *
 * @example
 * ```ts
 * await restore005AsDocumented(db, (await backupStampsOf005(db))[0]!)
 * ```
 */
export async function backupStampsOf005(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'x402_backup' AND c.relkind = 'r'`.execute(db)
  const stamps = new Set<string>()
  for (const { name } of rows) {
    const stamp = /^005_(?:user_openrouter_integrations|x402_resources)_(.+)$/.exec(name)?.[1]
    if (stamp) stamps.add(stamp)
  }
  return [...stamps].sort()
}

/**
 * Runs docs/rollback.md's restore of 005's backups stamped `stamp` or later, as psql runs a
 * script: each statement on its own, in order, on one connection, stopping at the first that fails.
 * `afterChecks` runs on that connection right after the privilege checks' last statement (the
 * `$lesser$` block) went through, before the restore: what another session could do while psql
 * sends the next statement (review revf F3).
 *
 * @example
 * ```ts
 * await restore005AsDocumented(db, '20261205T141927175')
 * ```
 */
export async function restore005AsDocumented(
  db: Kysely<any>,
  stamp: string,
  options: { searchPath?: string; afterChecks?: (connection: Kysely<any>) => Promise<void> } = {},
): Promise<void> {
  const statements = [
    // The operator's session may have a path of its own (PGOPTIONS, a role's setting).
    ...(options.searchPath ? [`SET search_path = ${options.searchPath}`] : []),
    ...splitSqlStatements(documentedRestoreOf005().replaceAll('<time>', stamp)),
  ]
  await db.connection().execute(async (connection) => {
    try {
      for (const statement of statements) {
        await sql.raw(statement).execute(connection)
        if (statement.startsWith('DO $lesser$')) await options.afterChecks?.(connection)
      }
    } finally {
      // What psql does when the script ends in a failed transaction: the session ends with it.
      await sql`ROLLBACK`.execute(connection).catch(() => {})
      // The connection goes back to the pool: the path was this session's only.
      if (options.searchPath) await sql`RESET search_path`.execute(connection)
    }
  })
}
