import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely'
import type { Migration } from 'kysely/migration'
import pg from 'pg'

import { endClient } from '../connection/end-client.js'
import { IN_MEMORY, openPglite } from '../connection/open-pglite.js'
import { serverClient, serverClientConfig } from '../connection/server-client-config.js'
import { withoutKyselyMigrationLock } from '../connection/without-kysely-migration-lock.js'
import { migrationNames } from '../migrations/index.js'
import { migrateTo } from '../migrator/migrator.js'
import { type MigrationConfig, migrationProvider, runsInTransaction } from '../migrator/provider.js'
import { migratedTemplate } from '../migrated-dumps/migrated-template.js'
import { type MigrateOptions, migrationSettings } from '../migrator/settings.js'
import { ensureSupabaseStandIn } from '../supabase/stand-in.js'
import { dumpSchema, restoreSchema } from './copy-schema.js'
import { readExistingTables } from './existing-tables.js'
import { LockSampler } from './lock-sampler.js'
import type { MigrationRehearsal } from './measured-statement.js'
import { adminClientConfig, createServerScratch, type ServerScratch } from './scratch-database.js'
import { type SeededTable, seedRepresentativeRows } from './seed-rows.js'
import { withStatementProbes } from './probing-dialect.js'
import { splitSqlStatements } from './split-sql.js'
import { type ScratchKind, StatementRecorder } from './statement-recorder.js'

/**
 * What to rehearse: a migration of the module (by name), an SQL script (such as a plan's), or a
 * migration that is not in the module (a candidate, or a test's), run as the runner would.
 */
export type RehearsalStep =
  | { migration: string }
  | { name: string; script: string }
  | { name: string; candidate: Migration & { config?: MigrationConfig } }

/** Where and from which state a rehearsal runs. */
export interface RehearsalOptions {
  /**
   * A PostgreSQL server for rehearsals, to create the scratch database and its role on (a
   * superuser's connection string, whose database is left alone; see createServerScratch), or
   * undefined for an in-memory PGlite. Never the target's own server: the rehearsal creates a
   * role there, and the Supabase roles where they are missing.
   */
  server?: string
  /** The last migration applied before the steps (null: none). */
  startingPoint: string | null
  /**
   * Copy the schema of this database (read only, with pg_dump; see {@link dumpSchema}) instead of
   * building it with the module's migrations up to `startingPoint`. PostgreSQL only, and the
   * scratch database must be on a server (`server`). The copy is made, owned and run by the
   * scratch database's unprivileged role, never by the server's user.
   */
  copySchemaFrom?: string
  /** Rows to put in each table {@link seedRepresentativeRows} knows, before the steps. */
  rows: Readonly<Record<string, number>>
  /** The runner's settings (lock_timeout, statement_timeout), from the environment by default. */
  settings?: MigrateOptions
}

/** The result of a rehearsal. */
export interface Rehearsal {
  scratch: ScratchKind
  startingPoint: string | null
  /** Where the scratch schema came from: the target's (pg_dump), or the module's migrations. */
  schema: 'copied from the target' | 'built by the migrations'
  seeded: SeededTable[]
  /** The tables of the scratch schema before the first step. */
  tables: string[]
  migrations: MigrationRehearsal[]
}

/**
 * Rehearses `steps` in order, statement by statement, on a scratch database brought to
 * `startingPoint` by the module's migrations and filled with representative rows, and measures
 * each statement (see {@link StatementRecorder}). The scratch database is created for the
 * rehearsal (on `options.server`, or in memory) and dropped after it; nothing else is changed.
 * On a server, the server's user only creates the database, its role and the Supabase pieces;
 * every statement after that (the copied schema, the rows, the steps, the lock sampler) runs as
 * the role, which owns the database and has no other power.
 * A step that fails ends the rehearsal; its error is in the result.
 *
 * @example
 * ```ts
 * const { migrations } = await rehearse([{ migration: '005_add_openrouter_integration' }], {
 *   server: 'postgres://postgres@127.0.0.1:5432/postgres', startingPoint: '002_add_claude_integration', rows: { x402_resources: 10_000 },
 * })
 * ```
 */
export async function rehearse(
  steps: readonly RehearsalStep[],
  options: RehearsalOptions,
): Promise<Rehearsal> {
  let schemaScript: string | undefined
  if (options.copySchemaFrom !== undefined) {
    if (options.server === undefined)
      throw new Error(
        'A schema can be copied only onto a PostgreSQL scratch database: give the server to create it on.',
      )
    // Read before the scratch database is made: it is restored on a session opened beforehand.
    schemaScript = await dumpSchema(options.copySchemaFrom)
  }
  const scratch = await openScratchDatabase(
    options.server,
    options.copySchemaFrom === undefined ? options.startingPoint : null,
    schemaScript,
  )
  try {
    const { db, recorder } = scratch
    if (options.copySchemaFrom === undefined) {
      await migrateTo(db, options.startingPoint)
      await ensureSupabaseStandIn(db)
    }
    const seeded = await seedRepresentativeRows(db, options.rows)
    const tables = (await readExistingTables(db)).map((table) => table.name)
    const settings = migrationSettings({ ...options.settings, log: () => {} })
    const prepared = await migrationProvider(settings).getMigrations()
    const migrations: MigrationRehearsal[] = []
    for (const step of steps) {
      const name = 'migration' in step ? step.migration : step.name
      const migration =
        'migration' in step
          ? prepared[step.migration]
          : 'candidate' in step
            ? step.candidate
            : undefined
      if ('migration' in step && !migration)
        throw new Error(
          `No migration is named "${step.migration}". Known migrations: ${migrationNames.join(', ')}.`,
        )
      const runnerTransaction = migration ? runsInTransaction(migration) : false
      recorder.start(await readExistingTables(db))
      const started = performance.now()
      let error: string | undefined
      try {
        if (migration && runnerTransaction)
          await db.transaction().execute((trx) => migration.up(trx))
        else if (migration) await db.connection().execute((connection) => migration.up(connection))
        else await runScript(db, (step as { script: string }).script)
      } catch (caught) {
        error = caught instanceof Error ? caught.message : String(caught)
      }
      const statements = recorder.stop()
      migrations.push({
        name,
        runnerTransaction,
        statements,
        durationMs: Math.round(performance.now() - started),
        ...(error ? { error } : {}),
      })
      if (error) break
    }
    const schema =
      options.copySchemaFrom !== undefined ? 'copied from the target' : 'built by the migrations'
    return {
      scratch: scratch.kind,
      startingPoint: options.startingPoint,
      schema,
      seeded,
      tables,
      migrations,
    }
  } finally {
    await scratch.destroy()
  }
}

/**
 * What the server's user does on a new scratch database before its role runs anything there:
 * the Supabase pieces (roles, schema auth), which need a superuser, and the privileges that
 * Supabase's own migration role has on them, so that the role can reference, lock and measure
 * auth.users as a migration does on Supabase. Its session has pg_catalog alone on the path
 * (adminClientConfig), and the database is a copy of template0 (createServerScratch), so that it
 * holds nothing that another role of the server wrote (reviews revo O1, revp P3, revq Q2).
 */
async function prepareForOwner(scratch: ServerScratch): Promise<void> {
  const pool = new pg.Pool({ ...adminClientConfig(scratch.adminConnectionString), max: 1 })
  // A Ctrl-C drops the database WITH (FORCE) meanwhile: its session's end must not crash the process.
  pool.on('error', () => {})
  const admin = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
  try {
    await admin.transaction().execute(async (trx) => {
      await ensureSupabaseStandIn(trx)
      await sql`GRANT USAGE ON SCHEMA auth TO ${sql.id(scratch.name)}`.execute(trx)
      await sql`GRANT ALL ON ALL TABLES IN SCHEMA auth TO ${sql.id(scratch.name)}`.execute(trx)
    })
  } finally {
    await admin.destroy()
  }
}

async function runScript(db: Kysely<any>, script: string): Promise<void> {
  await db.connection().execute(async (connection) => {
    for (const statement of splitSqlStatements(script)) await sql.raw(statement).execute(connection)
  })
}

/**
 * The sessions of a rehearsal's pool on a server, all opened before the role is made NOLOGIN:
 * as many as the migrator uses at once (its lock session, the probe or a migration's session),
 * and one more.
 */
const POOL_SESSIONS = 3

interface ScratchDatabase {
  kind: ScratchKind
  connectionString?: string
  db: Kysely<any>
  recorder: StatementRecorder
  destroy(): Promise<void>
}

/**
 * An embedded scratch database starts from the template at `startingPoint` (migrating it there
 * again would cost seconds of CPU and a second helping of memory); a server one is created empty,
 * or with `schemaScript` (a schema read by dumpSchema) restored by its role.
 *
 * On a server, every session the rehearsal opens as the scratch role is open before that role
 * runs anything the target wrote: the sampler's, the pool's (a fixed number, opened at once and
 * kept), and the session that restores the schema. Then the role is made NOLOGIN (review revs
 * S1): a password that the target's code gives it opens no session on the rehearsal server. A
 * session of the pool that the server ends is not replaced: the rehearsal fails.
 */
async function openScratchDatabase(
  server: string | undefined,
  startingPoint: string | null,
  schemaScript?: string,
): Promise<ScratchDatabase> {
  if (server === undefined) {
    const recorder = new StatementRecorder('pglite')
    const dialect = new PGliteDialect({
      pglite: await openPglite(IN_MEMORY, () => migratedTemplate(startingPoint ?? 'none')),
    })
    const db = new Kysely<any>({
      dialect: withoutKyselyMigrationLock(withStatementProbes(dialect, recorder)),
    })
    return { kind: 'pglite', db, recorder, destroy: () => db.destroy() }
  }
  const scratch = await createServerScratch(server)
  const dropScratch = () => scratch.drop()
  let sampler: LockSampler | undefined
  // Its sessions, all opened now and kept (no idle timeout): the role cannot open another later.
  // The target's code runs there: the server ends a statement or an idle transaction after the
  // client's bound, where the client alone would give up on the answer and leave it running
  // (review revt F5).
  const config = serverClientConfig(scratch.connectionString)
  const pool = new pg.Pool({
    ...config,
    statement_timeout: Number(config.query_timeout),
    idle_in_transaction_session_timeout: Number(config.query_timeout),
    application_name: 'x402-jobs-db rehearsal',
    max: POOL_SESSIONS,
    idleTimeoutMillis: 0,
  })
  // A Ctrl-C drops the scratch database WITH (FORCE), which ends a session in the middle of a
  // statement: its error must not crash the process before the drop is done (each ServerClient
  // listens to its own).
  pool.on('error', () => {})
  try {
    await prepareForOwner(scratch)
    sampler = await LockSampler.open(scratch.connectionString)
    const sessions = await Promise.allSettled(
      Array.from({ length: POOL_SESSIONS }, () => pool.connect()),
    )
    for (const session of sessions) if (session.status === 'fulfilled') session.value.release()
    const failed = sessions.find((session) => session.status === 'rejected')
    if (failed) throw failed.reason
    const restoring =
      schemaScript === undefined
        ? undefined
        : serverClient(serverClientConfig(scratch.connectionString))
    try {
      await restoring?.connect()
      await scratch.refuseLogins()
      if (restoring) await restoreSchema(schemaScript!, restoring)
    } finally {
      if (restoring) await endClient(restoring)
    }
  } catch (error) {
    await pool.end().catch(() => {})
    await sampler?.close().catch(() => {})
    await dropScratch()
    throw error
  }
  const recorder = new StatementRecorder('postgres', sampler)
  const db = new Kysely<any>({
    dialect: withoutKyselyMigrationLock(
      withStatementProbes(new PostgresDialect({ pool }), recorder),
    ),
  })
  return {
    kind: 'postgres',
    connectionString: scratch.connectionString,
    db,
    recorder,
    async destroy() {
      try {
        await db.destroy()
        await sampler!.close()
      } finally {
        await dropScratch()
      }
    },
  }
}
