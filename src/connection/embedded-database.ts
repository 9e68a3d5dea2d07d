import type { PGlite } from '@electric-sql/pglite'
import type { Kysely } from 'kysely'

// Apart from create-db.ts, so that the app's type declarations (createDb's) never reach PGlite's.
const embedded = new WeakMap<Kysely<any>, () => Promise<PGlite>>()

/**
 * A dump of the embedded database behind `db` (a createDb() instance on PGlite), for
 * createDb's `template` option: the tarball of PGlite's dumpDataDir, not compressed (PGlite
 * loads a plain one faster, and writeTemplate compresses natively what it caches).
 *
 * @example
 * ```ts
 * const template = await dumpEmbeddedDatabase(scratch)
 * const copy = createDb({ dataDir: IN_MEMORY, template: async () => template })
 * ```
 */
export async function dumpEmbeddedDatabase(db: Kysely<any>): Promise<Blob> {
  return (await embeddedDatabase(db, 'dumpEmbeddedDatabase')).dumpDataDir('none')
}

/**
 * The PGlite instance behind `db` (a createDb() instance on the embedded database), opened
 * and idle: for what Kysely cannot do, such as running a whole multi-statement script with
 * PGlite's exec() in the same instance, where closing `db` and opening the folder again would
 * cost a second start of PGlite. `caller` names the function in the error for another `db`.
 *
 * @example
 * ```ts
 * await (await embeddedDatabase(db)).exec('CREATE TABLE a (id int); CREATE TABLE b (id int);')
 * ```
 */
export async function embeddedDatabase(
  db: Kysely<any>,
  caller = 'embeddedDatabase',
): Promise<PGlite> {
  const pglite = embedded.get(db)
  if (!pglite)
    throw new Error(`${caller} takes a createDb() instance on the embedded database (PGlite).`)
  // A query first: PGlite opens on the first one, and Kysely's connection is then idle.
  await db.selectNoFrom((eb) => eb.lit(1).as('one')).execute()
  return pglite()
}

/**
 * Records that `db`, made by createDb on the embedded database, opens its PGlite instance with
 * `open`: {@link embeddedDatabase} and {@link dumpEmbeddedDatabase} reach it through this.
 *
 * @example
 * ```ts
 * registerEmbeddedDatabase(db, () => openPglite(dataDir))
 * ```
 */
export function registerEmbeddedDatabase(db: Kysely<any>, open: () => Promise<PGlite>): void {
  embedded.set(db, open)
}
