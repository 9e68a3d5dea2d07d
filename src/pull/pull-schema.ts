import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

import { type Kysely, sql } from 'kysely'

import { migrationNames } from '../migrations/index.js'
import {
  ensureChecksumTable,
  insertChecksums,
  migrationChecksum,
  migrationSourcePath,
} from '../migrator/checksums.js'
import {
  clearRevertingMarks,
  hasMigrationHistory,
  type HistoryEntry,
  MIGRATION_HISTORY_TABLE,
  readMigrationHistory,
} from '../migrator/history.js'
import {
  boundedHistoryRead,
  DEFAULT_IDLE_TIMEOUT_MS,
  inWriterTransaction,
  withMigrationLock,
} from '../migrator/lock.js'
import { DEFAULT_LOCK_TIMEOUT_MS } from '../migrator/locked-history.js'
import { registeredMigrations, rollbackMarks } from '../migrator/resumable-down.js'
import { checkBookkeepingWrites } from '../migrator/write-checks.js'
import { buildSchemaReference } from '../schema/reference.js'
import {
  SCHEMA_OBJECT_CATEGORIES,
  type SchemaSnapshot,
  snapshotSchema,
} from '../schema/snapshot.js'
import { scratchDatabase } from '../migrated-dumps/migrated-template.js'
import { readPullCatalog, readSchemaGrants } from './pull-catalog.js'
import { pulledMigrationSource } from './pulled-migration-file.js'
import { type PullStep, pulledStatements } from './pulled-statements.js'

/** A pull that cannot run on this database as it is: the command exits with 2 (a usage error). */
export class PullRefusedError extends Error {
  override readonly name = 'PullRefusedError'
}

/** Options of {@link pullSchema}. */
export interface PullOptions {
  /** The migration's name after its number: `pulled_<name>`. */
  name: string
  /** How long to wait for the migration lock, in ms. */
  lockWaitMs?: number
  /**
   * How long its first read of the history waits for another session's lock on it, in ms
   * (MIGRATION_LOCK_TIMEOUT_MS; by default its default).
   */
  lockTimeoutMs?: number
  /** The tables whose lock is checked by lint:locks (lock-policy.json's busyTables). */
  busyTables?: readonly string[]
  /** Receives one line, naming the holder, when another run holds the migration lock and the pull starts to wait. */
  log?: (line: string) => void
}

/** What {@link pullSchema} did. */
export interface PullResult {
  /** The migration written and recorded; undefined when there was nothing to pull. */
  migrationName: string | undefined
  /** Its file. */
  path: string | undefined
  /** The schemas compared. */
  schemas: string[]
  /** Statements of up. */
  statements: number
  /** New tables, views and sequences. */
  created: string[]
  /** What was left out, and why. */
  notPulled: string[]
}

/** What a pulled migration's name may be after `NNN_pulled_`. */
export const PULL_NAME = /^[a-z][a-z0-9_]{0,39}$/

/** Supabase's own schemas and the module's bookkeeping, which a pull never reads. */
const NOT_PULLED_SCHEMAS =
  /^(auth|storage|extensions|graphql.*|realtime|supabase_.*|vault|pgsodium.*|net|cron|pgbouncer|pg_.*|information_schema|x402_migrations|x402_backup)$/

/**
 * `migrate:pull`: writes the next migration, `src/migrations/NNN_pulled_<name>.ts`, holding what
 * the live database has beyond the migrations (in `public` and every other schema anon or
 * authenticated may use, Supabase's own and the module's bookkeeping aside), registers it in
 * src/migrations/index.ts, and records the live database as being at it, with the checksum a run
 * records. Refuses ({@link PullRefusedError}) unless every migration is applied, and again, under
 * the migration lock before anything is written, unless the history is still the one it compared
 * (another run reverted or applied a migration meanwhile). The comparison is
 * with the reference schema of the latest migration (src/schema/reference.ts); the DDL comes from
 * the live catalog (pulled-statements.ts; docs/pull.md says why not migra or pg_dump).
 *
 * @example
 * ```ts
 * const { migrationName } = await pullSchema(db, { name: 'production' })
 * ```
 */
export async function pullSchema(db: Kysely<any>, options: PullOptions): Promise<PullResult> {
  if (!PULL_NAME.test(options.name)) {
    throw new PullRefusedError(
      'The name of a pulled migration is 1 to 40 lower-case letters, digits or underscores, starting with a letter.',
    )
  }
  const latest = migrationNames.at(-1)!
  // A lock that another session holds on the history is said after a bounded wait
  // (HistoryLockedError), not waited out (hostile review, F1).
  const compared = await boundedHistoryRead(
    db,
    options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
    (trx) => refuseUnlessAtLatest(trx, latest),
  )
  const indexPath = join(dirname(migrationSourcePath(latest)), 'index.ts')
  if (!existsSync(indexPath)) {
    throw new PullRefusedError(
      `The migration sources are not at ${dirname(indexPath)}: run migrate:pull from a checkout of the module's repository.`,
    )
  }

  const reference = await buildSchemaReference(latest)
  const schemas = await pulledSchemas(db)
  const migrated = await whatTheMigrationsHave(schemas.filter((schema) => schema !== 'public'))
  const up: PullStep[] = []
  const down: PullStep[] = []
  const notPulled: string[] = []
  const created: string[] = []
  const touchedTables: string[] = []
  const lesserOwned: string[] = []
  for (const schema of schemas) {
    const live = await snapshotSchema(db, schema)
    const catalog = await readPullCatalog(db, schema)
    const pulled = pulledStatements({
      live,
      reference:
        schema === 'public' ? reference.expected : (migrated.snapshots[schema] ?? emptySnapshot()),
      referenceFunctionSources:
        schema === 'public' ? reference.functionSources : (migrated.functionSources[schema] ?? {}),
      referenceSchemaGrants: migrated.schemaGrants[schema],
      referenceTypes: migrated.types
        .filter((type) => type.schema === schema)
        .map((type) => type.name),
      catalog,
    })
    up.push(...pulled.up)
    down.unshift(...pulled.down)
    notPulled.push(
      ...pulled.notPulled.map((line) => (schema === 'public' ? line : `${schema}: ${line}`)),
    )
    created.push(
      ...pulled.created.map((name) => (schema === 'public' ? name : `${schema}.${name}`)),
    )
    touchedTables.push(...pulled.touchedTables)
    lesserOwned.push(...pulled.lesserOwned)
  }
  if (lesserOwned.length > 0) await refuseLesserOwned(db, lesserOwned)
  if (up.length === 0)
    return { migrationName: undefined, path: undefined, schemas, statements: 0, created, notPulled }

  const number =
    Math.max(...migrationNames.map((name) => Number.parseInt(name.slice(0, 3), 10))) + 1
  const migrationName = `${String(number).padStart(3, '0')}_pulled_${options.name}`
  const path = migrationSourcePath(migrationName)
  if (existsSync(path))
    throw new PullRefusedError(`${path} exists already: remove it, or pull under another name.`)
  const busy = options.busyTables ?? []
  const source = pulledMigrationSource(
    {
      after: latest,
      schemas,
      touchedTables,
      busyTables: touchedTables.filter((table) => busy.includes(table)),
      notPulled,
    },
    up,
    down,
  )
  // The registry as it will be, made before anything is written: an index.ts laid out otherwise
  // refuses with nothing written.
  const index = registered(readFileSync(indexPath, 'utf8'), migrationName)
  // Written once the lock is held and the history is found unchanged: a run that cannot take
  // the lock, or that another run came before, leaves no migration unrecorded. A pull that fails
  // or dies between the write and its COMMIT leaves the file registered and unrecorded: nothing
  // of it is in the database's history, so it is deleted and pulled again (docs/pull.md).
  let written = false
  await recordAsApplied(db, migrationName, compared, options, () => {
    writeFileSync(path, source)
    writeFileSync(indexPath, index)
    written = true
  }).catch((error: unknown) => {
    if (!written || !(error instanceof Error)) throw error
    throw new Error(
      `${error.message} ${migrationName} was written to ${path} and registered in index.ts, and may not be recorded: ` +
        `if npm run migrate:list shows it pending, delete that file and its two lines in index.ts, then pull again.`,
      { cause: error },
    )
  })
  return { migrationName, path, schemas, statements: up.length, created, notPulled }
}

/** The history, every migration applied; refuses otherwise. */
async function refuseUnlessAtLatest(db: Kysely<any>, latest: string): Promise<HistoryEntry[]> {
  const history = await readMigrationHistory(db)
  const recorded = history.map((entry) => entry.name)
  if (recorded.length === 0) {
    throw new PullRefusedError(
      'The database has no migration history. Adopt it first (npm run migrate:baseline -- <the migration whose schema it has>, ' +
        'with --plan to see what differs), then npm run migrate:latest, then pull. Nothing was changed.',
    )
  }
  // The rule every reader follows (rollbackMarks): a mark left by an attempt stopped before its
  // first step committed is no rollback under way (recordAsApplied clears it), and one the
  // schema shows without a mark is.
  if ((await rollbackMarks(db, history, registeredMigrations(history))).interrupted) {
    throw new PullRefusedError(
      'A rollback of this database was interrupted: finish it first (npm run migrate:down). Nothing was changed.',
    )
  }
  const unknown = recorded.filter((name) => !migrationNames.includes(name))
  if (unknown.length > 0) {
    throw new PullRefusedError(
      `The database records migrations this checkout does not have (${unknown.join(', ')}): update the checkout, then pull. Nothing was changed.`,
    )
  }
  const pending = migrationNames.filter((name) => !recorded.includes(name))
  if (pending.length > 0) {
    throw new PullRefusedError(
      `The database is not at the latest migration, ${latest}: ${pending.length} pending (${pending.join(', ')}). ` +
        'Run npm run migrate:latest first, so that the pull holds only what the migrations do not. Nothing was changed.',
    )
  }
  return history
}

/**
 * Refuses unless the history, read under the migration lock in the transaction that records,
 * is still `compared`: the same migrations, each applied at the same time, none being rolled
 * back. Another run (migrate:down, redo, a pull from another checkout) that changed it since
 * the pull compared would otherwise have the pull record on top of a database that is not at
 * the latest migration, and its file hold what it read of the live schema before or during
 * that run. Returns the history's marks that show no rollback under way (rollbackMarks), for
 * the transaction to clear before it records on top of them.
 */
async function refuseUnlessUnchanged(
  trx: Kysely<any>,
  compared: readonly HistoryEntry[],
  latest: string,
): Promise<string[]> {
  // The table's absence is asked first: a failed query would end the transaction.
  const now = (await hasMigrationHistory(trx)) ? await readMigrationHistory(trx) : []
  const then = new Map(compared.map((entry) => [entry.name, entry]))
  const named = (entries: readonly HistoryEntry[], one: string, many: string) =>
    `${entries.map((entry) => entry.name).join(', ')} ${entries.length === 1 ? one : many}`
  const missing = compared.filter((entry) => !now.some((found) => found.name === entry.name))
  const added = now.filter((entry) => !then.has(entry.name))
  const reapplied = now.filter((entry) => {
    const before = then.get(entry.name)
    return before !== undefined && !Object.is(before.appliedAt.getTime(), entry.appliedAt.getTime())
  })
  const { interrupted, stale } = await rollbackMarks(trx, now, registeredMigrations(now))
  const changes = [
    missing.length > 0 &&
      named(missing, 'is no longer recorded as applied', 'are no longer recorded as applied'),
    added.length > 0 && named(added, 'was recorded meanwhile', 'were recorded meanwhile'),
    reapplied.length > 0 &&
      named(reapplied, 'was reverted and applied again', 'were reverted and applied again'),
    interrupted !== undefined && `a rollback of ${interrupted} began and did not finish`,
  ].filter((change): change is string => change !== false)
  if (changes.length === 0) return stale
  throw new PullRefusedError(
    `Another run changed the migration history since pull compared the database with the migrations: ${changes.join('; ')}. ` +
      `Pull compared a database at ${latest}, every migration up to it applied and nothing else, and records the pulled migration only on top of that. ` +
      'Nothing was written or recorded. Run npm run migrate:latest, then pull again.',
  )
}

/**
 * Refuses the pull of objects that a role which cannot act as the session's user owns (rev-a7):
 * the migration creates every object as the role that runs it, so a SECURITY DEFINER function,
 * a view without security_invoker, a materialized view's query or a table's rules and index
 * expressions, written by a lesser role, would run with that role's power wherever the
 * migrations build a database. Nothing has been written or recorded yet.
 */
async function refuseLesserOwned(db: Kysely<any>, found: readonly string[]): Promise<never> {
  const { rows } = await sql<{ me: string }>`SELECT session_user::text AS me`.execute(db)
  const me = rows[0]!.me
  throw new PullRefusedError(
    `Objects it would write are owned by roles that cannot act as ${me}: ${found.join('; ')}. ` +
      `The pulled migration would create each as the role that runs the migrations, so what runs with its owner's rights ` +
      `(a SECURITY DEFINER function, a view without security_invoker, a materialized view's query, a table's rules and ` +
      `index expressions) would run with that role's power wherever the migrations build a database. ` +
      'Nothing was written or recorded. Review each one: drop what must not be carried into the history; ' +
      "where one need not run with its owner's rights, make it run with its caller's (ALTER FUNCTION … SECURITY INVOKER, " +
      `ALTER VIEW … SET (security_invoker = on)); then, only for what you accept as code that ${me} may own and run, ` +
      `make ${me} its owner on this database (ALTER … OWNER TO ${me}), and pull again (docs/pull.md).`,
  )
}

/** `public`, then every schema anon or authenticated may use, but Supabase's own and the module's. */
async function pulledSchemas(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT n.nspname::text AS name FROM pg_catalog.pg_namespace n
    WHERE n.nspname <> 'public'
      AND EXISTS (SELECT FROM unnest(ARRAY['anon', 'authenticated']) AS r(role)
                  JOIN pg_catalog.pg_roles ON rolname = r.role
                  WHERE has_schema_privilege(r.role, n.oid, 'USAGE'))
    ORDER BY 1
  `.execute(db)
  return ['public', ...rows.map((row) => row.name).filter((name) => !NOT_PULLED_SCHEMAS.test(name))]
}

/**
 * What the migrations create, on a scratch database at the latest: the enum and domain types,
 * and the snapshot, function sources and grants of each of `schemas` that exists there (public's
 * are in the reference), so that what an earlier pull wrote there is not pulled again.
 */
async function whatTheMigrationsHave(schemas: readonly string[]): Promise<{
  types: { schema: string; name: string }[]
  snapshots: Record<string, SchemaSnapshot>
  functionSources: Record<string, Record<string, string>>
  schemaGrants: Record<string, Record<string, string>>
}> {
  const scratch = scratchDatabase('latest')
  try {
    const { rows: types } = await sql<{ schema: string; name: string }>`
      SELECT n.nspname::text AS schema, t.typname::text AS name
      FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
      WHERE t.typtype IN ('e', 'd') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    `.execute(scratch)
    const snapshots: Record<string, SchemaSnapshot> = {}
    const functionSources: Record<string, Record<string, string>> = {}
    const schemaGrants: Record<string, Record<string, string>> = {}
    for (const schema of schemas) {
      const grants = await readSchemaGrants(scratch, schema)
      if (grants !== undefined) schemaGrants[schema] = grants
      snapshots[schema] = await snapshotSchema(scratch, schema)
      const { rows } = await sql<{ name: string; source: string }>`
        SELECT p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS name,
               pg_catalog.pg_get_functiondef(p.oid) AS source
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ${schema} AND p.prokind IN ('f', 'p')
      `.execute(scratch)
      functionSources[schema] = Object.fromEntries(rows.map(({ name, source }) => [name, source]))
    }
    return { types, snapshots, functionSources, schemaGrants }
  } finally {
    await scratch.destroy()
  }
}

function emptySnapshot(): SchemaSnapshot {
  return Object.fromEntries(
    SCHEMA_OBJECT_CATEGORIES.map((category) => [category, {}]),
  ) as SchemaSnapshot
}

/**
 * src/migrations/index.ts with `name` imported and listed after the last migration. The list
 * is the registry that Kysely and the checksum test read.
 */
function registered(index: string, name: string): string {
  const alias = `m${name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase())}`
  const lines = index.split('\n')
  const lastImport = lines.findLastIndex((line) =>
    /^import \* as m\w+ from '\.\/[^']+\.js'$/.test(line),
  )
  const lastEntry = lines.findLastIndex((line) => /^ {2}'\d{3}_[^']+': m\w+,$/.test(line))
  if (lastImport === -1 || lastEntry === -1) {
    throw new Error(
      'src/migrations/index.ts does not list its migrations as expected (an import and an entry each), so the pulled one cannot be added to it. Nothing was written or recorded. Put index.ts back in its layout (one `import * as m… from` line and one entry a migration), then pull again.',
    )
  }
  lines.splice(lastEntry + 1, 0, `  '${name}': ${alias},`)
  lines.splice(lastImport + 1, 0, `import * as ${alias} from './${name}.js'`)
  return lines.join('\n')
}

/**
 * Records `name` as applied, as a run records it: its history row alone (the timestamp as
 * Kysely's Migrator writes it), and the file's checksum, in one transaction under the migration
 * lock, once {@link refuseUnlessUnchanged} found the history still the one the pull compared.
 * No earlier migration is ever recorded here: one missing from the history refuses.
 */
async function recordAsApplied(
  db: Kysely<any>,
  name: string,
  compared: readonly HistoryEntry[],
  options: Pick<PullOptions, 'lockWaitMs' | 'log'>,
  write: () => void,
): Promise<void> {
  await withMigrationLock(
    db,
    async (session) => {
      return inWriterTransaction(db, { idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS }, async (trx) => {
        // Asked as a run asks it, before the file is written: a refusal leaves nothing behind.
        await checkBookkeepingWrites(trx, { lock: true })
        await clearRevertingMarks(
          trx,
          await refuseUnlessUnchanged(trx, compared, migrationNames.at(-1)!),
        )
        write()
        const sha256 = await migrationChecksum(name)
        await sql`
          INSERT INTO ${sql.raw(MIGRATION_HISTORY_TABLE)} (name, "timestamp")
          VALUES (${name}, ${new Date().toISOString()})
        `.execute(trx)
        await ensureChecksumTable(trx, { recordedNow: [name] })
        await insertChecksums(trx, [{ name, sha256, origin: 'baseline' }])
        // The history commits only while this run holds the migration lock.
        await session.assertLockHeld()
      })
    },
    { lockWaitMs: options.lockWaitMs, log: options.log, idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS },
  )
}
