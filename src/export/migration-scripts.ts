import { migrationNames } from '../migrations/index.js'
import { exportMigrationSql, type MigrationDirection } from './migration-sql.js'

/** One migration's exported SQL in one direction, under the file name it is kept or linted as. */
export interface MigrationScript {
  /** `<migration>.<direction>.sql`, such as `005_add_openrouter_integration.down.sql`. */
  fileName: string
  name: string
  direction: MigrationDirection
  sql: string
}

const DIRECTIONS: readonly MigrationDirection[] = ['up', 'down']

/**
 * The up and then the down SQL of every migration, in the order Kysely applies them, as
 * `migrate:sql` exports them (each on a scratch embedded database, never on DATABASE_URL): what
 * `lint:sql` lints and `docs:migrations` writes into docs/migrations/.
 *
 * @example
 * ```ts
 * for await (const script of migrationScripts()) writeFileSync(join('docs/migrations', script.fileName), script.sql)
 * ```
 */
export async function* migrationScripts(): AsyncGenerator<MigrationScript> {
  for (const name of migrationNames) {
    for (const direction of DIRECTIONS) {
      const sql = await exportMigrationSql(name, direction)
      yield { fileName: `${name}.${direction}.sql`, name, direction, sql }
    }
  }
}
