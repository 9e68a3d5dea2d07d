import { type Kysely, sql } from 'kysely'
import type { Migration, MigrationInfo, MigrationProvider } from 'kysely/migration'

import { QueryError } from '../connection/query-error.js'
import { refuseReferencedRows, type DeletedRows } from './down-guard.js'
import { clearRevertingMark, markReverting, readMigrationHistory } from './history.js'
import { runsInTransaction } from './provider.js'

/**
 * What a migration that runs outside a transaction exports beside `up` and `down`, so that its
 * rollback can be resumed: `downDone` tells that every step of its `down` has committed (the
 * history row is deleted after the last step, so a run interrupted between the two leaves the
 * migration recorded with its objects gone; the next rollback then records the end instead of
 * running steps that no longer apply; so does a rollback done outside the runner, by the exported
 * script), `downBegun` that a step of it has committed (so that a
 * half-done rollback is found from the schema, whatever the history's mark says), and `downDeletes` names the rows its `down` deletes
 * (see {@link refuseReferencedRows}). A transactional down needs neither: its rehearsal finds them.
 */
export interface ResumableDown {
  downDone?: (db: Kysely<any>) => Promise<boolean>
  downBegun?: (db: Kysely<any>) => Promise<boolean>
  downDeletes?: readonly DeletedRows[]
}

/**
 * The newest applied migration if its rollback began (a step of its `down` committed) and did not
 * finish, as its own `downBegun` tells; only the newest can have a rollback under way.
 *
 * @example
 * ```ts
 * const begun = await rollbackBegun(trx, await migrator.getMigrations())
 * ```
 */
export async function rollbackBegun(
  db: Kysely<any>,
  migrations: readonly MigrationInfo[],
): Promise<string | undefined> {
  const newest = migrations.filter((m) => m.executedAt !== undefined).at(-1)
  const begun = (newest?.migration as ResumableDown | undefined)?.downBegun
  return newest && begun && (await begun(db)) ? newest.name : undefined
}

/**
 * The migration whose rollback began and did not finish, on which nothing may be applied: the
 * one the history marks as being reverted, or, where the mark is gone (a rollback run by the
 * exported script, which writes no history), the one whose schema shows it ({@link rollbackBegun}).
 *
 * @example
 * ```ts
 * const interrupted = await interruptedRollback(trx, history, await migrator.getMigrations())
 * ```
 */
export async function interruptedRollback(
  db: Kysely<any>,
  history: readonly { name: string; reverting: boolean }[],
  migrations: readonly MigrationInfo[],
): Promise<string | undefined> {
  return history.find((entry) => entry.reverting)?.name ?? (await rollbackBegun(db, migrations))
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
        Object.entries(migrations).map(([name, migration]) => [
          name,
          runsInTransaction(migration) ? migration : resumable(name, migration),
        ]),
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
      const marked = (await readMigrationHistory(db, { times: false })).find(
        (entry) => entry.name === name,
      )?.reverting
      const { downDone: completed, downDeletes = [] } = migration as ResumableDown
      if (completed === undefined) {
        throw new Error(
          `${name} runs outside a transaction but exports no downDone, which tells when its down has completed.`,
        )
      }
      // Kysely's Migrator deletes the history row once this returns. Done without a mark too: the
      // script that migrate:sql exports, run to its end in the SQL Editor, marks nothing.
      if (await completed(db)) return
      await refuseReferencedRows(db, name, downDeletes)
      await markReverting(db, name)
      // After the mark, which may add its column to the history: only what the down changed counts.
      const before = await catalogFingerprint(db)
      try {
        await down(db)
      } catch (error) {
        // The mark of an earlier attempt stays: its changes are still there, whatever this one did.
        if (marked) throw withUnfinishedRollback(error, name)
        const after = await catalogFingerprint(db).catch(() => undefined)
        if (after === before) await clearRevertingMark(db, name).catch(() => {})
        throw error
      }
    },
  }
}

/**
 * The refusal or failure `error` of a down whose earlier attempt left the rollback of `name` half
 * done, saying so: the advice of a refusal ("nothing was changed") is not the whole story then.
 */
function withUnfinishedRollback(error: unknown, name: string): Error {
  const reason =
    error instanceof QueryError && error.cause instanceof Error
      ? error.cause.message
      : String((error as Error)?.message ?? error)
  return new Error(
    `${reason.replace(/\.$/, '')}. The rollback of ${name} began earlier and is not complete: its schema is half ` +
      'removed, and nothing migrates forward until the rollback is completed with npm run migrate:down ' +
      '(with -- --allow-data-loss where data is in the way: the rows are moved to schema x402_backup).',
    { cause: error },
  )
}

/**
 * One digest of the schema objects a down can change: relations, columns, constraints with
 * their definitions and validity, and index validity, outside the system schemas (the module's
 * bookkeeping in x402_migrations included). Equal before and after a failed down means it
 * changed nothing.
 */
async function catalogFingerprint(db: Kysely<any>): Promise<string> {
  const { rows } = await sql<{ digest: string }>`
    SELECT md5(concat_ws('|',
      (SELECT string_agg(c.oid::text || ':' || c.relkind::text, ',' ORDER BY c.oid) FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'),
      (SELECT string_agg(a.attrelid::text || '.' || a.attname, ',' ORDER BY a.attrelid, a.attnum) FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'),
      (SELECT string_agg(co.conrelid::text || '.' || co.conname || '=' || pg_get_constraintdef(co.oid) || co.convalidated::text, ',' ORDER BY co.oid)
         FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'),
      (SELECT string_agg(i.indexrelid::text || ':' || i.indisvalid::text, ',' ORDER BY i.indexrelid) FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
    )) AS digest
  `.execute(db)
  return rows[0]!.digest
}
