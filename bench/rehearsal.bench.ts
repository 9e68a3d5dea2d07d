/**
 * How long does `migrate:plan` take to rehearse 005 against a production-shaped
 * database, and what does it measure there?
 *
 *   npm run bench -- rehearsal [--rows 100000] [--runs 3]
 *
 * It builds the production-shaped schema of test/support/production-fixture.ts (a 69-column
 * x402_resources with RLS, enums, a generated tsvector with a GIN index, twelve more tables) in
 * a database of its own, records the migration history at 002 (as an adopted database has it),
 * fills x402_resources with --rows rows and analyzes it, so that the target's row estimate is
 * --rows. It then runs planPendingMigrations (what `migrate:plan` runs), --runs times for each
 * way of building the scratch schema: by the module's migrations, and copied with pg_dump
 * (`--copy-schema`). It prints a table (medians), then one `BENCH_JSON {...}` line.
 */
import { sql } from 'kysely'

import { createDb, planPendingMigrations, type Rehearsal } from '../src/tooling.js'
import { seedRepresentativeRows } from '../src/rehearsal/seed-rows.js'
import { buildProductionShapedDatabase } from '../test/support/production-fixture.js'
import { wholeNumberOptions } from './support/options.js'
import { formatMs, machineFacts, printBenchJson, printTable, roundTo } from './support/report.js'
import { withScratchDatabases } from './support/scratch-databases.js'

const HISTORY_AT_002 = [
  '000_baseline_ai_models',
  '000_baseline_x402_resources',
  '001_add_prompt_template_fields',
  '002_add_claude_integration',
]

interface Run {
  totalMs: number
  rehearsal005Ms: number
  setupMs: number
  exclusiveHeldMs: number
  validateMs: number
  concurrentIndexMs: number
}

function summarize(plan: Rehearsal, totalMs: number): Run {
  const m005 = plan.migrations.find(
    (migration) => migration.name === '005_add_openrouter_integration',
  )!
  const statement = (pattern: RegExp) =>
    m005.statements.find((candidate) => pattern.test(candidate.sql))!
  const alter = statement(/^ALTER TABLE x402_resources\s+ADD COLUMN/)
  return {
    totalMs,
    rehearsal005Ms: m005.durationMs,
    setupMs: totalMs - plan.migrations.reduce((sum, migration) => sum + migration.durationMs, 0),
    exclusiveHeldMs:
      alter.locks.find(
        (lock) => lock.table === 'x402_resources' && lock.mode === 'ACCESS EXCLUSIVE',
      )?.heldMs ?? Number.NaN,
    validateMs: statement(/VALIDATE CONSTRAINT x402_resources_resource_type_check/).durationMs,
    concurrentIndexMs: statement(/^CREATE INDEX CONCURRENTLY/).durationMs,
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

async function main(): Promise<void> {
  const { rows, runs } = wholeNumberOptions('rehearsal', { rows: 100_000, runs: 3 })
  await withScratchDatabases('rehearsal', async (scratch) => {
    const url = await scratch.create('target')
    const db = createDb({ connectionString: url })
    let postgres = ''
    const results: Record<string, Run[]> = {
      'built by the migrations': [],
      'copied from the target (pg_dump)': [],
    }
    try {
      console.error(`building the production-shaped database with ${rows} rows in x402_resources`)
      await buildProductionShapedDatabase(db)
      // The history an adopted database has (migrate:baseline at 002), written as Kysely keeps it.
      await sql`CREATE SCHEMA x402_migrations`.execute(db)
      await sql`CREATE TABLE x402_migrations.kysely_migration (name varchar(255) PRIMARY KEY, timestamp varchar(255) NOT NULL)`.execute(
        db,
      )
      for (const name of HISTORY_AT_002) {
        await sql`INSERT INTO x402_migrations.kysely_migration VALUES (${name}, ${new Date().toISOString()})`.execute(
          db,
        )
      }
      await seedRepresentativeRows(db, { x402_resources: rows, ai_models: 300 })
      postgres = (
        await sql<{ version: string }>`SELECT current_setting('server_version') AS version`.execute(
          db,
        )
      ).rows[0]!.version
      const target = { kind: 'postgres' as const, connectionString: url }
      for (let run = 1; run <= runs; run++) {
        for (const copySchema of [false, true]) {
          const started = performance.now()
          const plan = await planPendingMigrations(
            db,
            target,
            { minRows: rows, maxRows: rows },
            { copySchema },
          )
          const totalMs = performance.now() - started
          if (plan.migrations.some((migration) => migration.error))
            throw new Error(`the rehearsal failed: ${plan.migrations.find((m) => m.error)!.error}`)
          const label = copySchema ? 'copied from the target (pg_dump)' : 'built by the migrations'
          results[label]!.push(summarize(plan, totalMs))
          console.error(`run ${run}, schema ${label}: ${formatMs(totalMs)} ms`)
        }
      }
    } finally {
      await db.destroy()
    }
    const medians = Object.entries(results).map(([schema, list]) => ({
      schema,
      ...(Object.fromEntries(
        (Object.keys(list[0]!) as (keyof Run)[]).map((key) => [
          key,
          roundTo(median(list.map((entry) => entry[key])), 2),
        ]),
      ) as unknown as Run),
    }))
    printTable(
      [
        'scratch schema',
        'migrate:plan ms',
        'setup ms',
        '005 rehearsed ms',
        'ACCESS EXCLUSIVE held ms',
        'VALIDATE ms',
        'CONCURRENTLY ms',
      ],
      medians.map((entry) => [
        entry.schema,
        formatMs(entry.totalMs),
        formatMs(entry.setupMs),
        formatMs(entry.rehearsal005Ms),
        formatMs(entry.exclusiveHeldMs),
        formatMs(entry.validateMs),
        formatMs(entry.concurrentIndexMs),
      ]),
    )
    printBenchJson({
      bench: 'rehearsal',
      rows,
      runs,
      machine: machineFacts(postgres),
      results: medians,
    })
  })
}

main().catch((error: unknown) => {
  console.error(`rehearsal bench failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
