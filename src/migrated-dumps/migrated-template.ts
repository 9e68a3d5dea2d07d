import { createHash } from 'node:crypto'

import type { Kysely } from 'kysely'

import { createDb, type CreateDbOptions, IN_MEMORY } from '../connection/create-db.js'
import { dumpEmbeddedDatabase } from '../connection/embedded-database.js'
import { emptyClusterTemplate } from '../connection/open-pglite.js'
import {
  hashModuleCode,
  installedVersion,
  pgliteVersion,
  readTemplate,
  writeTemplate,
} from '../connection/template-cache.js'
import { migrationChecksum, readMigrationChecksums } from '../migrator/checksums.js'
import { recordedMigrationNames } from '../migrator/history.js'
import { migrationNames } from '../migrations/index.js'
import { migrationNamesUpTo, resolveMigrationName } from '../migrator/migration-names.js'
import { migrateTo } from '../migrator/migrator.js'

/** Where a template stops: no migration at all, a migration's full name, or the newest. */
export type TemplatePoint = 'none' | 'latest' | string

/**
 * The folders whose code shapes a migrated database besides the migrations themselves (the
 * runner, the history and checksum tables, the Supabase stand-in, and the connection the runner
 * migrates through: createDb's session settings, the dialect hooks): their files are part of a
 * template's key, so a change to them is a new template too.
 */
const ENGINE_FOLDERS = ['connection', 'migrator', 'supabase']

/** Bumped when the way templates are made changes. */
const TEMPLATE_FORMAT = 2

/**
 * A dump of an embedded database migrated to `point`, for {@link CreateDbOptions.template}:
 * made once and cached under a key of the migrations' checksums (with the migration engine's
 * code and PGlite's and Kysely's versions), so that a scratch database starts migrated in a
 * fraction of the time. A changed migration, runner, PGlite or Kysely gives a new key, so a
 * stale dump is never picked;
 * a damaged file fails its sha256 and is made again (see readTemplate). A dump is cached only
 * after the database inside was found to record exactly the current files' checksums. Where
 * the migration sources cannot be read, the dump is made each time and not cached.
 *
 * @example
 * ```ts
 * const scratch = createDb({ dataDir: IN_MEMORY, template: () => migratedTemplate('002_add_claude_integration') })
 * ```
 */
export async function migratedTemplate(point: TemplatePoint): Promise<Blob> {
  if (point === 'none') return emptyClusterTemplate()
  const { names, checksums, key } = await templateInputs(point)

  const cached = key ? readTemplate(key) : undefined
  if (cached) return cached

  // From the newest earlier template in the cache, else from an empty cluster: where the earlier
  // ones are made first (the tests' global setup walks the migrations in order), making them all
  // costs one run of the migrations instead of one run each; a single command makes only the
  // template it needs.
  const start = key ? newestCachedBefore(names, checksums as string[]) : undefined
  const scratch = createDb({
    dataDir: IN_MEMORY,
    template: start && (() => Promise.resolve(start)),
  })
  try {
    await migrateTo(scratch, names.at(-1)!, { env: {} })
    const tarball = await dumpEmbeddedDatabase(scratch)
    // Cached only once the database inside is known to record exactly these files.
    if (key && (await recordsExactly(scratch, names, checksums as string[])))
      await writeTemplate(key, tarball)
    return tarball
  } finally {
    await scratch.destroy()
  }
}

/**
 * A new scratch database in memory, migrated to `point`, from its template: for the commands
 * that must never touch the configured database (SQL export, schema reference, codegen).
 *
 * @example
 * ```ts
 * const scratch = await scratchDatabase('latest')
 * try { … } finally { await scratch.destroy() }
 * ```
 */
export function scratchDatabase(
  point: TemplatePoint,
  options: Pick<CreateDbOptions, 'onStatement'> = {},
): Kysely<any> {
  return createDb({ ...options, dataDir: IN_MEMORY, template: () => migratedTemplate(point) })
}

/**
 * The cache key of the template migrated to `point` (see {@link migratedTemplate}): what a
 * result derived from that database, such as a schema reference, is keyed by in turn. Undefined
 * where the migration sources cannot be read, and nothing made from them may be cached.
 *
 * @example
 * ```ts
 * await migratedTemplateKey('latest') // 'migrated-008_close_supabase_advisor_findings-…'
 * ```
 */
export async function migratedTemplateKey(
  point: Exclude<TemplatePoint, 'none'>,
): Promise<string | undefined> {
  return (await templateInputs(point)).key
}

async function templateInputs(
  point: Exclude<TemplatePoint, 'none'>,
): Promise<{ names: string[]; checksums: (string | undefined)[]; key?: string }> {
  const names =
    point === 'latest' ? [...migrationNames] : migrationNamesUpTo(resolveMigrationName(point))
  const checksums = await Promise.all(
    names.map((name) => migrationChecksum(name).catch(() => undefined)),
  )
  const cacheable = checksums.every((checksum) => checksum !== undefined)
  return {
    names,
    checksums,
    key: cacheable ? templateKey(names, checksums as string[]) : undefined,
  }
}

function templateKey(names: readonly string[], checksums: readonly string[]): string {
  const hash = createHash('sha256')
  // Kysely compiles the migrations' schema builders: another version may send other SQL.
  const versions = { pglite: pgliteVersion(), kysely: installedVersion('kysely') }
  hash.update(
    JSON.stringify({
      format: TEMPLATE_FORMAT,
      ...versions,
      migrations: names.map((name, i) => [name, checksums[i]]),
    }),
  )
  hashModuleCode(hash, ENGINE_FOLDERS)
  return `migrated-${names.at(-1) ?? 'none'}-${hash.digest('hex').slice(0, 24)}`
}

/** The cached template of the newest migration before the last of `names`, if there is one. */
function newestCachedBefore(
  names: readonly string[],
  checksums: readonly string[],
): Blob | undefined {
  for (let count = names.length - 1; count > 0; count--) {
    const cached = readTemplate(templateKey(names.slice(0, count), checksums.slice(0, count)))
    if (cached) return cached
  }
  return undefined
}

/** Whether `db` records exactly `names` as applied, each with the checksum its file has now. */
async function recordsExactly(
  db: Kysely<any>,
  names: readonly string[],
  checksums: readonly string[],
): Promise<boolean> {
  if ((await recordedMigrationNames(db)).join() !== names.join()) return false
  const recorded = await readMigrationChecksums(db)
  return names.every((name, i) => recorded.get(name)?.sha256 === checksums[i])
}
