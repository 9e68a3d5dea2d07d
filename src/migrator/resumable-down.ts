import { type Kysely, sql } from 'kysely'
import type { Migration, MigrationInfo, MigrationProvider } from 'kysely/migration'

import { QueryError } from '../connection/query-error.js'
import { errorCode } from '../connection/sql-state.js'
import { migrationNames, migrations } from '../migrations/index.js'
import { refuseReferencedRows, type DeletedRows } from './down-guard.js'
import {
  clearRevertingMark,
  clearRevertingMarks,
  markReverting,
  readMigrationHistory,
  revertingSince,
} from './history.js'
import { runsInTransaction, setTimeouts } from './provider.js'
import type { MigrationSettings } from './settings.js'

/**
 * What a migration that runs outside a transaction exports beside `up` and `down`, so that its
 * rollback can be resumed: `downDone` tells that every step of its `down` has committed (the
 * history row is deleted after the last step, so a run interrupted between the two leaves the
 * migration recorded with its objects gone; the next rollback then records the end instead of
 * running steps that no longer apply; so does a rollback done outside the runner, by the exported
 * script), `downBegun` that a step of it has committed (so that a half-done rollback is found
 * from the schema where no mark stands), `downMayHaveBegun` whether any trace of a committed step
 * is there (in doubt, yes: so that a mark is taken for stale only where none is), and
 * `downDeletes` names the rows its `down` deletes (see {@link refuseReferencedRows}). A
 * transactional down needs none of them: its rehearsal finds them.
 */
export interface ResumableDown {
  downDone?: (db: Kysely<any>) => Promise<boolean>
  downBegun?: (db: Kysely<any>) => Promise<boolean>
  downMayHaveBegun?: (db: Kysely<any>, markedAt?: Date) => Promise<boolean>
  downDeletes?: readonly DeletedRows[]
}

/**
 * What the history's rollback marks mean, by the one rule every reader follows: a mark (set
 * before the first step of a down outside a transaction) shows a rollback under way unless the
 * marked migration is the newest applied and its `downMayHaveBegun` (else its `downBegun`) finds
 * no trace of a committed step. Then the mark is stale: an attempt stopped (killed, its
 * connection lost) before its first step committed, and nothing of the schema was removed. `interrupted` is the migration whose rollback began and did not finish: the
 * one a standing mark names, or, where no mark stands (a rollback by the exported script, which
 * writes no history, or a mark cleared by hand), the newest applied whose `downBegun` says so.
 * `stale` names the marks that show nothing under way, for a run under the migration lock to
 * clear; a read-only command just does not report them.
 *
 * @example
 * ```ts
 * const { interrupted, stale } = await rollbackMarks(trx, history, await migrator.getMigrations())
 * ```
 */
export async function rollbackMarks(
  db: Kysely<any>,
  history: readonly { name: string; reverting: boolean }[],
  migrations: readonly MigrationInfo[],
): Promise<{ interrupted: string | undefined; stale: string[] }> {
  const newest = migrations.filter((m) => m.executedAt !== undefined).at(-1)
  const { downBegun, downMayHaveBegun = downBegun } = (newest?.migration ?? {}) as ResumableDown
  const stale: string[] = []
  let interrupted: string | undefined
  for (const entry of history.filter((entry) => entry.reverting)) {
    if (
      entry.name !== newest?.name ||
      downMayHaveBegun === undefined ||
      (await downMayHaveBegun(db, await revertingSince(db, entry.name)))
    ) {
      interrupted ??= entry.name
    } else {
      stale.push(entry.name)
    }
  }
  if (interrupted === undefined && newest && downBegun && (await downBegun(db)))
    interrupted = newest.name
  return { interrupted, stale }
}

/**
 * The migration whose rollback began and did not finish, on which nothing may be applied (see
 * {@link rollbackMarks}): the one a standing mark of the history names, or the one whose schema
 * shows it.
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
  return (await rollbackMarks(db, history, migrations)).interrupted
}

/**
 * The module's registered migrations, each applied where `history` records it: what
 * {@link rollbackMarks} reads, for a caller with no Migrator at hand (start-up's one query,
 * adoption, pull).
 *
 * @example
 * ```ts
 * const { interrupted } = await rollbackMarks(db, history, registeredMigrations(history))
 * ```
 */
export function registeredMigrations(history: readonly { name: string }[]): MigrationInfo[] {
  const applied = new Set(history.map((entry) => entry.name))
  return migrationNames.map((name) => ({
    name,
    migration: migrations[name]!,
    executedAt: applied.has(name) ? new Date(0) : undefined,
  }))
}

/**
 * Clears, in `trx`, the marks of `history` that show no rollback under way ({@link rollbackMarks}),
 * for a command that records migrations under the migration lock (migrate:baseline, a pull)
 * before it records anything on top of them; a run of the migrations clears them too.
 *
 * @example
 * ```ts
 * await clearStaleMarks(trx, await readMigrationHistory(trx, { times: false }))
 * ```
 */
export async function clearStaleMarks(
  trx: Kysely<any>,
  history: readonly { name: string; reverting: boolean }[],
): Promise<void> {
  if (!history.some((entry) => entry.reverting)) return
  await clearRevertingMarks(
    trx,
    (await rollbackMarks(trx, history, registeredMigrations(history))).stale,
  )
}

/**
 * Wraps the `down` of every migration that runs outside a transaction so that its rollback is
 * recorded and resumable: before the first step the history marks the migration as being
 * reverted (the mark goes with the history row when the down completes); a down that fails
 * having changed nothing (a refusal) drops the mark again, also one an earlier attempt left
 * without committing a step (see {@link rollbackMarks}); and a down whose steps all committed
 * before the run was interrupted only records its end. Used by the runner only: the SQL that
 * `migrate:sql` exports is the migration's own.
 *
 * @example
 * ```ts
 * new Migrator({ db, provider: withResumableDowns(migrationProvider(settings)), disableTransactions: true })
 * ```
 */
export function withResumableDowns(
  provider: MigrationProvider,
  settings: MigrationSettings,
): MigrationProvider {
  return {
    async getMigrations() {
      const migrations = await provider.getMigrations()
      return Object.fromEntries(
        Object.entries(migrations).map(([name, migration]) => [
          name,
          runsInTransaction(migration) ? migration : resumable(name, migration, settings),
        ]),
      )
    },
  }
}

function resumable(name: string, migration: Migration, settings: MigrationSettings): Migration {
  const down = migration.down
  if (!down) return migration
  return {
    ...migration,
    async down(db: Kysely<any>) {
      const {
        downDone: completed,
        downBegun,
        downMayHaveBegun = downBegun,
        downDeletes = [],
      } = migration as ResumableDown
      if (completed === undefined) {
        throw new Error(
          `${name} runs outside a transaction but exports no downDone, which tells when its down has completed.`,
        )
      }
      // Kysely's Migrator deletes the history row once this returns. Done without a mark too: the
      // script that migrate:sql exports, run to its end in the SQL Editor, marks nothing.
      if (await completed(db)) return
      // The rule of rollbackMarks: a mark stands unless no trace of a committed step is there
      // (this down is the newest's). A stale one, left by an attempt stopped before its first
      // step committed, counts as none: a refusal now changed nothing, and clears it.
      const marked =
        (await readMigrationHistory(db, { times: false })).find((entry) => entry.name === name)
          ?.reverting &&
        (downMayHaveBegun === undefined ||
          (await downMayHaveBegun(db, await revertingSince(db, name))))
      // The count and the mark (whose first ALTER TABLE queues before every start-up's read of the
      // history) are bounded as the down's own statements are (review revg F3).
      await setTimeouts(db, settings)
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
  // The SQLSTATE stays: the runner retries a lock timeout by it (review revg F7).
  return Object.assign(
    new Error(
      `${reason.replace(/\.$/, '')}. The rollback of ${name} began earlier and is not complete: its schema is half ` +
        'removed, and nothing migrates forward until the rollback is completed with npm run migrate:down ' +
        '(with -- --allow-data-loss where data is in the way: the rows are moved to schema x402_backup).',
      { cause: error },
    ),
    { code: errorCode(error) },
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
