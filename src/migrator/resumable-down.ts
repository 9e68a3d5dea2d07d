import { type Kysely, sql } from 'kysely'
import type { Migration, MigrationProvider } from 'kysely/migration'

import { refuseReferencedRows, type DeletedRows } from './down-guard.js'
import { clearRevertingMark, markReverting, readMigrationHistory } from './history.js'
import { runsInTransaction } from './provider.js'

/**
 * For each migration that runs outside a transaction, how to tell that every step of its `down`
 * has committed. The history row is deleted after the last step, so a run interrupted between
 * the two leaves the migration recorded with its objects gone; the next rollback then records
 * the end instead of running steps that no longer apply. A test requires an entry for every
 * migration with `config = { transaction: false }`.
 */
export const downCompleted: Readonly<Record<string, (db: Kysely<any>) => Promise<boolean>>> = {
  // 005's last step drops the keys table, its trigger function and both columns in one transaction.
  '005_add_openrouter_integration': async (db) => {
    const { rows } = await sql<{ done: boolean }>`
      SELECT to_regclass('public.user_openrouter_integrations') IS NULL
         AND NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'public.x402_resources'::regclass
                         AND attname IN ('openrouter_model_id', 'openrouter_config') AND NOT attisdropped) AS done
    `.execute(db)
    return rows[0]!.done
  },
}

/**
 * For each migration that runs outside a transaction, the rows its `down` deletes, so that the
 * runner can refuse before it begins when rows of other tables reference them
 * ({@link refuseReferencedRows}). A transactional down needs no entry: its rehearsal finds them.
 */
export const downDeletes: Readonly<Record<string, readonly DeletedRows[]>> = {
  // 005's down moves these rows to x402_backup (with the data-loss opt-in) and deletes them.
  '005_add_openrouter_integration': [
    { table: 'public.x402_resources', where: "resource_type = 'openrouter_instant'" },
    { table: 'public.user_openrouter_integrations', where: 'true' },
  ],
}

/**
 * Wraps the `down` of every migration that runs outside a transaction so that its rollback is
 * recorded and resumable: before the first step the history marks the migration as being
 * reverted (the mark goes with the history row when the down completes); a down that fails
 * having changed nothing (a refusal) drops the mark again; and a down whose steps all committed
 * before the run was interrupted only records its end. Used by the runner only: the SQL that
 * `migrate:sql` exports is the migration's own.
 *
 * @example
 * ```ts
 * new Migrator({ db, provider: withResumableDowns(migrationProvider(settings)), disableTransactions: true })
 * ```
 */
export function withResumableDowns(provider: MigrationProvider): MigrationProvider {
  return {
    async getMigrations() {
      const migrations = await provider.getMigrations()
      return Object.fromEntries(
        Object.entries(migrations).map(([name, migration]) => [name, runsInTransaction(migration) ? migration : resumable(name, migration)]),
      )
    },
  }
}

function resumable(name: string, migration: Migration): Migration {
  const down = migration.down
  if (!down) return migration
  return {
    ...migration,
    async down(db: Kysely<any>) {
      const marked = (await readMigrationHistory(db, { times: false })).find((entry) => entry.name === name)?.reverting
      const completed = downCompleted[name]
      if (completed === undefined) {
        throw new Error(`${name} runs outside a transaction but the runner has no completion check for its down (downCompleted).`)
      }
      // Kysely's Migrator deletes the history row once this returns.
      if (marked && (await completed(db))) return
      await refuseReferencedRows(db, name, downDeletes[name] ?? [])
      const before = await catalogFingerprint(db)
      await markReverting(db, name)
      try {
        await down(db)
      } catch (error) {
        const after = await catalogFingerprint(db).catch(() => undefined)
        if (after === before) await clearRevertingMark(db, name).catch(() => {})
        throw error
      }
    },
  }
}

/**
 * One digest of the schema objects a down can change: relations, columns, constraints with
 * their definitions and validity, and index validity, outside the system schemas. Equal before
 * and after a failed down means it changed nothing.
 */
async function catalogFingerprint(db: Kysely<any>): Promise<string> {
  const { rows } = await sql<{ digest: string }>`
    SELECT md5(concat_ws('|',
      (SELECT string_agg(c.oid::text || ':' || c.relkind::text, ',' ORDER BY c.oid) FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'x402_migrations') AND n.nspname NOT LIKE 'pg_%'),
      (SELECT string_agg(a.attrelid::text || '.' || a.attname, ',' ORDER BY a.attrelid, a.attnum) FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'x402_migrations') AND n.nspname NOT LIKE 'pg_%'),
      (SELECT string_agg(co.conrelid::text || '.' || co.conname || '=' || pg_get_constraintdef(co.oid) || co.convalidated::text, ',' ORDER BY co.oid)
         FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'x402_migrations') AND n.nspname NOT LIKE 'pg_%'),
      (SELECT string_agg(i.indexrelid::text || ':' || i.indisvalid::text, ',' ORDER BY i.indexrelid) FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'x402_migrations') AND n.nspname NOT LIKE 'pg_%')
    )) AS digest
  `.execute(db)
  return rows[0]!.digest
}
