import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

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

/** How a folder of exported scripts differs from what the migrations export now. */
export interface ScriptFolderDifferences {
  /** Files whose text differs from the export, or that are missing. */
  stale: string[]
  /** `.sql` files that no migration exports. */
  extra: string[]
}

/**
 * Compares `folder` (docs/migrations/) with `scripts`, the exported text by file name. Both
 * lists are empty when the folder is current; a folder that does not exist has every file stale.
 *
 * @example
 * ```ts
 * scriptFolderDifferences('docs/migrations', new Map([['000_x.up.sql', 'BEGIN;']])) // { stale: [], extra: [] }
 * ```
 */
export function scriptFolderDifferences(
  folder: string,
  scripts: ReadonlyMap<string, string>,
): ScriptFolderDifferences {
  const present = existsSync(folder)
    ? readdirSync(folder).filter((file) => file.endsWith('.sql'))
    : []
  const stale = [...scripts]
    .filter(
      ([file, sql]) => !present.includes(file) || readFileSync(join(folder, file), 'utf8') !== sql,
    )
    .map(([file]) => file)
  return { stale, extra: present.filter((file) => !scripts.has(file)) }
}
