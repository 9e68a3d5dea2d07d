import { type Kysely, sql } from 'kysely'
import type { Migration, MigrationProvider } from 'kysely/migration'

import { migrations } from '../migrations/index.js'
import type { MigrationSettings } from './settings.js'

/**
 * A migration file opts out of the run's transaction with `export const config = { transaction:
 * false }`, as in knex: it then runs on a connection of its own and commits its steps itself,
 * which `CREATE INDEX CONCURRENTLY` needs. Such a migration must be re-runnable from any point,
 * because a crash can stop it between steps.
 */
export interface MigrationConfig {
  transaction?: boolean
}

/**
 * Whether `migration` runs inside the run's transaction (the default).
 *
 * @example
 * ```ts
 * runsInTransaction(migrations['005_add_openrouter_integration']) // false
 * ```
 */
export function runsInTransaction(migration: Migration): boolean {
  return (migration as { config?: MigrationConfig }).config?.transaction !== false
}

/**
 * The module's migrations, for Kysely's Migrator, each prepared for a run with `settings`:
 * before `up` or `down` it sets lock_timeout and statement_timeout (SET LOCAL in a transaction,
 * SET on a migration's own connection). The runner sets the data-loss opt-in,
 * `x402.allow_data_loss`, for each block it runs. The migration files stay frozen history that
 * imports nothing but kysely.
 *
 * @example
 * ```ts
 * new Migrator({ db, provider: migrationProvider(migrationSettings()) })
 * ```
 */
export function migrationProvider(settings: MigrationSettings): MigrationProvider {
  return {
    async getMigrations() {
      return Object.fromEntries(
        Object.entries(migrations).map(([name, migration]) => [
          name,
          prepared(migration, settings),
        ]),
      )
    },
  }
}

function prepared(migration: Migration, settings: MigrationSettings): Migration {
  const down = migration.down
  return {
    ...migration,
    async up(db: Kysely<any>) {
      await setTimeouts(db, settings)
      await migration.up(db)
    },
    down:
      down &&
      (async (db: Kysely<any>) => {
        await setTimeouts(db, settings)
        await down(db)
      }),
  }
}

/**
 * Sets a migration's lock_timeout and statement_timeout on `db`, for its transaction (SET LOCAL)
 * or, outside one, for the session: what the runner does before each `up` and `down`, and before
 * the bookkeeping that a resumable down writes first (resumable-down.ts).
 *
 * @example
 * ```ts
 * await setTimeouts(connection, settings)
 * ```
 */
export async function setTimeouts(db: Kysely<any>, settings: MigrationSettings): Promise<void> {
  for (const statement of timeoutStatements(settings, db.isTransaction ? 'SET LOCAL' : 'SET'))
    await sql.raw(statement).execute(db)
}

/**
 * The statements that set a migration's lock_timeout and statement_timeout, as the runner sends
 * them before `up` or `down` (and as the exported scripts carry them): plain SET statements, not
 * set_config(), so that they read as what they are in `migrate:sql` output, and squawk's
 * require-lock-timeout recognises them. The values are whole numbers of ms (settings.ts).
 *
 * @example
 * ```ts
 * timeoutStatements(migrationSettings({ env: {} }), 'SET LOCAL')
 * // ["SET LOCAL lock_timeout = '2000ms'", "SET LOCAL statement_timeout = '60000ms'"]
 * ```
 */
export function timeoutStatements(
  settings: Pick<MigrationSettings, 'lockTimeoutMs' | 'statementTimeoutMs'>,
  scope: 'SET' | 'SET LOCAL',
): string[] {
  return [
    `${scope} lock_timeout = '${settings.lockTimeoutMs}ms'`,
    `${scope} statement_timeout = '${settings.statementTimeoutMs}ms'`,
  ]
}
