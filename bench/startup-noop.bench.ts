/**
 * What does start-up cost on a database that is up to date, against one `SELECT 1`?
 *
 *   npm run bench -- startup-noop [--extra-tables 1000] [--iterations 1000] [--seconds 3]
 *
 * On a database of its own, migrated to the latest migration through the module's API, with
 * one warm Kysely instance from createDb (a node-postgres pool), it times `SELECT 1`, the
 * module's no-op start-up `migrateOnStartup(db)`, and Kysely's own Migrator no-op on the same
 * migrations. SELECT 1 and the no-op alternate, so that noise hits both alike; each
 * measurement runs --iterations times or for --seconds, whichever ends first. It measures all
 * three with no other table, then again after creating --extra-tables tables in public. It
 * prints a table, then one `BENCH_JSON {...}` line.
 */
import { type Kysely, sql } from 'kysely'
import { Migrator } from 'kysely/migration'

import { migrations } from '../src/migrations/index.js'
import {
  createDb,
  MIGRATION_TABLE_SCHEMA,
  migrateOnStartup,
  migrateToLatest,
} from '../src/tooling.js'
import { wholeNumberOptions } from './support/options.js'
import {
  formatMs,
  type LatencySummary,
  machineFacts,
  printBenchJson,
  printTable,
  roundTo,
  summarizeLatencies,
} from './support/report.js'
import { withScratchDatabases } from './support/scratch-databases.js'

const TARGET_RATIO = 3
// How long operations run before they are measured (and at least twice each), so that the
// pool's connection, the server's catalog caches and V8's JIT are warm.
const WARM_UP_MS = 500

interface Limits {
  iterations: number
  seconds: number
}

interface CatalogResult {
  extraTables: number
  select1: LatencySummary
  moduleNoop: LatencySummary
  kyselyMigratorNoop: LatencySummary
  /** Median of the module's no-op over the median of SELECT 1: the target is at most 3. */
  moduleNoopRatio: number
  kyselyMigratorNoopRatio: number
}

/**
 * Times `operations` in turn, one run of each per round, so that noise from the rest of the
 * machine (other engineers' tests share its 2 cores) hits each of them alike and their ratio
 * holds. Rounds go on until each ran `limits.iterations` times or `limits.seconds` passed.
 */
async function measureInTurn<Name extends string>(
  limits: Limits,
  operations: Record<Name, () => Promise<void>>,
): Promise<Record<Name, LatencySummary>> {
  const entries = Object.entries(operations) as Array<[Name, () => Promise<void>]>
  const warmUpEnd = performance.now() + WARM_UP_MS
  for (let round = 0; round < 2 || performance.now() < warmUpEnd; round++) {
    for (const [, operation] of entries) await operation()
  }
  const latencies = new Map<Name, number[]>(entries.map(([name]) => [name, []]))
  const deadline = performance.now() + limits.seconds * 1000
  for (let round = 0; round < limits.iterations && performance.now() < deadline; round++) {
    for (const [name, operation] of entries) {
      const started = performance.now()
      await operation()
      latencies.get(name)!.push(performance.now() - started)
    }
  }
  return Object.fromEntries(
    entries.map(([name]) => [name, summarizeLatencies(latencies.get(name)!)]),
  ) as Record<Name, LatencySummary>
}

async function measureCatalog(
  db: Kysely<any>,
  extraTables: number,
  limits: Limits,
): Promise<CatalogResult> {
  // Kysely's Migrator as it comes, on the module's migrations. The Kysely of createDb takes no
  // Kysely lock (the module holds its own), so this figure lacks Kysely's lock round trips.
  const kyselyMigrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: MIGRATION_TABLE_SCHEMA,
  })
  // SELECT 1 and the module's no-op in turn, for their ratio; Kysely's Migrator, a hundred times
  // slower with many tables, on its own so that it does not cut their number of runs.
  const { select1, moduleNoop } = await measureInTurn(limits, {
    select1: async () => {
      await sql`SELECT 1`.execute(db)
    },
    moduleNoop: async () => {
      const outcome = await migrateOnStartup(db, { log: () => {} })
      if (outcome.skipped || outcome.applied.length > 0) {
        throw new Error(
          `migrateOnStartup was expected to find nothing to do, but it ${outcome.skipped ? 'was skipped (unset AUTO_MIGRATE)' : 'applied migrations'}.`,
        )
      }
    },
  })
  const { kyselyMigratorNoop } = await measureInTurn(limits, {
    kyselyMigratorNoop: async () => {
      const { error, results } = await kyselyMigrator.migrateToLatest()
      if (error) throw error
      if (results?.length)
        throw new Error(
          `Kysely's Migrator was expected to find nothing to do, but it ran ${results.length} migrations.`,
        )
    },
  })
  return {
    extraTables,
    select1,
    moduleNoop,
    kyselyMigratorNoop,
    moduleNoopRatio: roundTo(moduleNoop.p50Ms / select1.p50Ms, 2),
    kyselyMigratorNoopRatio: roundTo(kyselyMigratorNoop.p50Ms / select1.p50Ms, 2),
  }
}

/** Creates `count` tables of four columns (with a primary key and an identity sequence) in public, in one round trip. */
async function createExtraTables(db: Kysely<any>, count: number): Promise<void> {
  await sql`
    DO $$
    BEGIN
      FOR i IN 1..${sql.lit(count)} LOOP
        EXECUTE format(
          'CREATE TABLE public.bench_extra_%s (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             name text NOT NULL,
             payload jsonb,
             created_at timestamptz NOT NULL DEFAULT now())',
          lpad(i::text, 4, '0'));
      END LOOP;
    END
    $$
  `.execute(db)
}

async function main(): Promise<void> {
  const options = wholeNumberOptions('startup-noop', {
    'extra-tables': 1000,
    iterations: 1000,
    seconds: 3,
  })
  const limits: Limits = { iterations: options.iterations, seconds: options.seconds }

  await withScratchDatabases('startup-noop', async (scratch) => {
    const db = createDb({ connectionString: await scratch.create('noop') })
    try {
      await migrateToLatest(db)
      const postgres = (await sql<{ server_version: string }>`SHOW server_version`.execute(db))
        .rows[0]!.server_version
      const results = [await measureCatalog(db, 0, limits)]
      await createExtraTables(db, options['extra-tables'])
      results.push(await measureCatalog(db, options['extra-tables'], limits))

      console.log(
        `\nStart-up no-op against one SELECT 1, warm pool (PostgreSQL ${postgres}; extra tables in public)\n`,
      )
      printTable(
        ['extra tables', 'operation', 'runs', 'median ms', 'p99 ms', 'x SELECT 1 (median)'],
        results.flatMap((result) =>
          (
            [
              ['SELECT 1', result.select1, 1],
              ['migrateOnStartup no-op', result.moduleNoop, result.moduleNoopRatio],
              [
                "Kysely's Migrator no-op",
                result.kyselyMigratorNoop,
                result.kyselyMigratorNoopRatio,
              ],
            ] as const
          ).map(([operation, summary, ratio]) => [
            String(result.extraTables),
            operation,
            String(summary.count),
            formatMs(summary.p50Ms),
            formatMs(summary.p99Ms),
            ratio.toFixed(1),
          ]),
        ),
      )
      const worstRatio = Math.max(...results.map((result) => result.moduleNoopRatio))
      const meetsTarget = worstRatio <= TARGET_RATIO
      console.log(
        `\nmigrateOnStartup no-op: at most ${worstRatio.toFixed(1)}x SELECT 1, ${meetsTarget ? 'within' : 'over'} the target of ${TARGET_RATIO}x.\n`,
      )
      printBenchJson({
        bench: 'startup-noop',
        extraTablesSchema: 'public',
        machine: machineFacts(postgres),
        results,
        targetRatio: TARGET_RATIO,
        meetsTarget,
      })
    } finally {
      await db.destroy()
    }
  })
}

main().catch((error: unknown) => {
  console.error(`\nstartup-noop failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
