/**
 * How long do single-row inserts into x402_resources stall while migration 005
 * applies, with the plan's plain SQL (one transaction) and with `migrate:latest`? And how long
 * do they wait for a `migrate:latest` whose process was stopped while it held ACCESS EXCLUSIVE?
 *
 *   npm run bench -- lock-stall [--rows 1000000] [--rate 500] [--baseline-seconds 5] [--description-bytes 100]
 *
 * It builds a database at 002 through the module's API, fills x402_resources with --rows rows,
 * VACUUM ANALYZE, and clones it twice (CREATE DATABASE ... TEMPLATE). A writer on a connection of
 * its own then inserts one row per statement, at most --rate a second: first with nothing else
 * running (the noise floor), then while the plan's SQL applies 005 on the original, then while
 * the CLI (`tsx src/cli/migrate.ts latest`, a child process with DATABASE_URL) migrates the
 * first clone to the latest migration, then while the CLI, on the second clone, is stopped
 * (SIGSTOP) in 005's step 1 holding ACCESS EXCLUSIVE on x402_resources, at the default settings
 * but for a long lock_timeout (see runStoppedMigration). It prints a table, then one
 * `BENCH_JSON {...}` line.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

import { createDb, migrateTo } from '../src/tooling.js'
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
import { withClient, withScratchDatabases } from './support/scratch-databases.js'

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
const PLAN_SQL = fileURLToPath(
  new URL('../test/fixtures/plan-005-openrouter-integration.sql', import.meta.url),
)
const TSX_CLI = fileURLToPath(import.meta.resolve('tsx/cli'))
const TARGET_WORST_MS = 25
/**
 * How long writers may wait for a stopped run: MIGRATION_IDLE_TIMEOUT_MS's default (5 s), plus
 * the moments before the stop and the server's own timer.
 */
const TARGET_STOPPED_MS = 5_500
// The writer runs this long before a measured window opens, so that its connection and
// prepared statement are warm.
const WARM_UP_MS = 500

interface Settings {
  rows: number
  rate: number
  descriptionBytes: number
}

/** What the writer saw while something ran. */
interface WriterWindow {
  /** Latencies of the inserts that started while it ran. */
  latency: LatencySummary
  /** How long it ran. */
  windowMs: number
  /** When the slowest insert started, in ms after it began: to line a stall up with a step. */
  worstAtMs: number
}

/** The writer's latencies in one scenario, and how long its apply took (the CLI's whole run for migrate-latest). */
interface Scenario extends LatencySummary {
  scenario: 'baseline' | 'plan-sql' | 'migrate-latest' | 'migrate-latest-stopped'
  applyMs: number | null
  worstAtMs: number
}

const SCENARIO_LABELS: Record<Scenario['scenario'], string> = {
  baseline: 'writer alone (noise floor)',
  'plan-sql': "plan's SQL, one transaction",
  'migrate-latest': 'migrate:latest (CLI)',
  'migrate-latest-stopped': 'migrate:latest stopped in 005 step 1',
}

const RESOURCE_COLUMNS =
  'name, slug, description, resource_url, normalized_url, network, pay_to, resource_type'

/**
 * The values of resource number `n` (an SQL integer expression), for the fill and the writer
 * alike: every column the baseline ports gets a plausible value, and the description pads the
 * row to the width asked for. Only types valid both before and after 005.
 */
function resourceValuesSql(n: string, descriptionBytes: number): string {
  return `
    (ARRAY['Weather forecast', 'Token price feed', 'Image captioning', 'Web search', 'PDF summary', 'Translation'])[1 + ${n} % 6] || ' #' || ${n},
    'resource-' || ${n},
    left(repeat('Pay-per-call API on the x402 protocol, answers in JSON. ', ${Math.ceil(descriptionBytes / 55)}), ${descriptionBytes}),
    'https://api' || ${n} % 997 || '.example.com/v1/resources/' || ${n},
    'api' || ${n} % 997 || '.example.com/v1/resources/' || ${n},
    (ARRAY['base', 'solana', 'ethereum', 'polygon', 'base-sepolia'])[1 + ${n} % 5],
    '0x' || lpad(to_hex(${n}), 40, '0'),
    (ARRAY['external', 'proxy', 'prompt', 'static', 'prompt_template'])[1 + ${n} % 5]`
}

async function buildBaseline(
  url: string,
  settings: Settings,
): Promise<{ tableBytes: number; totalBytes: number; tableSize: string }> {
  const db = createDb({ connectionString: url })
  try {
    await migrateTo(db, '002_add_claude_integration')
  } finally {
    await db.destroy()
  }
  return withClient(url, async (client) => {
    await timed(`filling x402_resources with ${settings.rows.toLocaleString('en')} rows`, () =>
      client.query(
        `INSERT INTO x402_resources (${RESOURCE_COLUMNS})
         SELECT ${resourceValuesSql('g', settings.descriptionBytes)} FROM generate_series(1, ${settings.rows}) AS g`,
      ),
    )
    await timed('VACUUM ANALYZE', () => client.query('VACUUM ANALYZE x402_resources'))
    const { rows } = await client.query<{
      table_bytes: string
      total_bytes: string
      table_size: string
    }>(
      `SELECT pg_table_size('x402_resources') AS table_bytes, pg_total_relation_size('x402_resources') AS total_bytes,
              pg_size_pretty(pg_table_size('x402_resources')) AS table_size`,
    )
    const size = rows[0]!
    return {
      tableBytes: Number(size.table_bytes),
      totalBytes: Number(size.total_bytes),
      tableSize: size.table_size,
    }
  })
}

/**
 * Inserts one row per statement into x402_resources of `url`, at most `settings.rate` a second
 * (paced, not flat out: on 2 cores a flat-out writer would take a core from the migration it
 * measures), while `during` runs, and summarises the latency of the inserts that started
 * after `during` opened the window (by calling `openWindow`, at once unless it waits for
 * something) and before it returned. A stall shows as one insert that waits as long as the stall, less at most one
 * interval of the pace.
 */
async function measureWriter(
  url: string,
  settings: Settings,
  during: (openWindow: () => void) => Promise<unknown>,
): Promise<WriterWindow> {
  return withClient(url, async (client) => {
    const insert = {
      name: 'bench_insert',
      text: `INSERT INTO x402_resources (${RESOURCE_COLUMNS}) SELECT ${resourceValuesSql('$1::int', settings.descriptionBytes)}`,
    }
    const intervalMs = 1000 / settings.rate
    const samples: Array<{ startedAt: number; ms: number }> = []
    let writing = true
    let row = settings.rows
    const writer = (async () => {
      let next = performance.now()
      while (writing) {
        const startedAt = performance.now()
        await client.query({ ...insert, values: [++row] })
        samples.push({ startedAt, ms: performance.now() - startedAt })
        next = Math.max(next + intervalMs, performance.now())
        const wait = next - performance.now()
        if (wait > 0) await sleep(wait)
      }
    })()

    await Promise.race([sleep(WARM_UP_MS), writer])
    let windowStart = performance.now()
    let windowEnd = windowStart
    try {
      await during(() => (windowStart = performance.now()))
      windowEnd = performance.now()
    } finally {
      writing = false
      await writer
    }
    const inWindow = samples.filter(
      ({ startedAt }) => startedAt >= windowStart && startedAt <= windowEnd,
    )
    const worst = inWindow.reduce(
      (slowest, sample) => (sample.ms > slowest.ms ? sample : slowest),
      inWindow[0]!,
    )
    return {
      latency: summarizeLatencies(inWindow.map(({ ms }) => ms)),
      windowMs: windowEnd - windowStart,
      worstAtMs: worst.startedAt - windowStart,
    }
  })
}

function toScenario(scenario: Scenario['scenario'], window: WriterWindow): Scenario {
  return {
    scenario,
    ...window.latency,
    applyMs: scenario === 'baseline' ? null : roundTo(window.windowMs, 1),
    worstAtMs: roundTo(window.worstAtMs, 1),
  }
}

async function applyPlanSql(url: string): Promise<void> {
  // One simple-protocol query: the whole script, BEGIN to COMMIT, as the SQL Editor runs it.
  await withClient(url, (client) => client.query(readFileSync(PLAN_SQL, 'utf8')))
}

/**
 * Runs `migrate:latest` as users do, in a child process with DATABASE_URL; returns the names it
 * applied. The window opens when the CLI names its database, just before it connects: starting
 * Node and loading the TypeScript before that touches no table, but on this 2-core machine it
 * takes CPU from the writer and the server, which is not a lock stall and does not happen where
 * the deploy runs on a machine other than the database's.
 */
async function runMigrateLatest(url: string, openWindow: () => void): Promise<string[]> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: url }
  delete env.MIGRATION_DATABASE_URL
  const child = spawn(process.execPath, [TSX_CLI, 'src/cli/migrate.ts', 'latest'], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (!stderr.includes('Database: ') && (stderr + chunk).includes('Database: ')) openWindow()
    stderr += chunk
  })
  const code = await new Promise<number | null>((resolve, reject) =>
    child.on('error', reject).on('close', resolve),
  )
  if (code !== 0)
    throw new Error(`migrate:latest exited with ${code}; its output:\n${stderr.trim()}`)
  return [...stderr.matchAll(/^applied\s+(\S+)/gm)].map((match) => match[1]!)
}

/**
 * Runs `migrate:latest` as runMigrateLatest does, and stops it (SIGSTOP, as a debugger, a frozen
 * VM or a container pause would) once 005's step 1 has asked for ACCESS EXCLUSIVE on
 * x402_resources: a reader that the bench holds makes it queue there, and is let go right after
 * the stop, so that the stopped run gets the lock and holds it. Resolves, with how long the run
 * held the table after the stop, once no session of the run holds a lock on it; then kills the
 * run. The settings are the defaults but for MIGRATION_LOCK_TIMEOUT_MS, long enough that step 1
 * waits for the reader instead of giving up.
 */
async function runStoppedMigration(url: string, openWindow: () => void): Promise<number> {
  const applicationName = 'x402-bench-stopped-run'
  const named = new URL(url)
  named.searchParams.set('application_name', applicationName)
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: named.toString(),
    MIGRATION_LOCK_TIMEOUT_MS: '60000',
  }
  for (const name of Object.keys(env))
    if (name.startsWith('MIGRATION_') && name !== 'MIGRATION_LOCK_TIMEOUT_MS') delete env[name]
  return withClient(url, (holder) =>
    withClient(url, async (observer) => {
      const until = async (what: string, sql: string) => {
        for (const limit = performance.now() + 60_000; performance.now() < limit; await sleep(5)) {
          if ((await observer.query(sql, [applicationName])).rows.length > 0) return
        }
        throw new Error(`Waited 60 s for ${what}.`)
      }
      await holder.query('BEGIN; SELECT 1 FROM x402_resources LIMIT 1')
      // tsx's loader in this very process, not tsx's CLI, which runs the script in a child: the
      // signal must stop the process that holds the connections.
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate.ts', 'latest'], {
        cwd: REPO_ROOT,
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      const exited = new Promise((resolve) => child.on('close', resolve))
      try {
        child.stderr
          .setEncoding('utf8')
          .on('data', (chunk: string) => chunk.includes('Database: ') && openWindow())
        await until(
          'step 1 to queue for x402_resources',
          `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND query ILIKE '%ALTER TABLE x402_resources%'`,
        )
        child.kill('SIGSTOP')
        await holder.query('ROLLBACK')
        const stoppedAt = performance.now()
        await until(
          'the stopped run to hold no lock on x402_resources',
          `SELECT 1 WHERE NOT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE a.application_name = $1 AND l.relation = 'x402_resources'::regclass)`,
        )
        return performance.now() - stoppedAt
      } finally {
        child.kill('SIGKILL')
        await exited
      }
    }),
  )
}

/** Fails unless 005 is complete on `url`: its CHECK validated and its index valid. */
async function assert005Complete(url: string, scenario: string): Promise<void> {
  const { rows } = await withClient(url, (client) =>
    client.query<{ check_valid: boolean | null; index_valid: boolean | null }>(`
      SELECT (SELECT convalidated FROM pg_constraint
              WHERE conname = 'x402_resources_resource_type_check'
                AND pg_get_constraintdef(oid) LIKE '%openrouter_instant%') AS check_valid,
             (SELECT indisvalid FROM pg_index
              WHERE indexrelid = to_regclass('public.idx_x402_resources_openrouter_model')) AS index_valid`),
  )
  const { check_valid, index_valid } = rows[0]!
  if (!check_valid || !index_valid) {
    throw new Error(
      `After ${scenario}, 005 is not complete (validated openrouter_instant CHECK: ${check_valid}, valid index ` +
        `idx_x402_resources_openrouter_model: ${index_valid}). Its latency figures would be meaningless; see why the apply stopped early.`,
    )
  }
}

async function timed<T>(what: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now()
  process.stderr.write(`${what}... `)
  const result = await work()
  process.stderr.write(`${((performance.now() - started) / 1000).toFixed(1)} s\n`)
  return result
}

async function main(): Promise<void> {
  const options = wholeNumberOptions('lock-stall', {
    rows: 1_000_000,
    rate: 500,
    'baseline-seconds': 5,
    'description-bytes': 100,
  })
  const settings: Settings = {
    rows: options.rows,
    rate: options.rate,
    descriptionBytes: options['description-bytes'],
  }

  await withScratchDatabases('lock-stall', async (scratch) => {
    const planUrl = await scratch.create('plan')
    const size = await buildBaseline(planUrl, settings)
    const runnerUrl = await timed('cloning it (CREATE DATABASE ... TEMPLATE)', () =>
      scratch.create('runner', { template: 'plan' }),
    )
    const stoppedUrl = await timed('cloning it again', () =>
      scratch.create('stopped', { template: 'plan' }),
    )
    const postgres = await withClient(
      planUrl,
      async (client) =>
        (await client.query('SHOW server_version')).rows[0].server_version as string,
    )

    const baseline = await timed(`writer alone for ${options['baseline-seconds']} s`, () =>
      measureWriter(planUrl, settings, () => sleep(options['baseline-seconds'] * 1000)),
    )
    const plan = await timed("the plan's SQL applies 005", () =>
      measureWriter(planUrl, settings, () => applyPlanSql(planUrl)),
    )
    await assert005Complete(planUrl, "the plan's SQL")
    let applied: string[] = []
    const runner = await timed('migrate:latest applies 005 and what follows', () =>
      measureWriter(
        runnerUrl,
        settings,
        async (openWindow) => (applied = await runMigrateLatest(runnerUrl, openWindow)),
      ),
    )
    await assert005Complete(runnerUrl, 'migrate:latest')
    let heldMs = 0
    const stopped = await timed('migrate:latest, stopped in 005 step 1', () =>
      measureWriter(
        stoppedUrl,
        settings,
        async (openWindow) => (heldMs = await runStoppedMigration(stoppedUrl, openWindow)),
      ),
    )
    const scenarios = [
      toScenario('baseline', baseline),
      toScenario('plan-sql', plan),
      toScenario('migrate-latest', runner),
      toScenario('migrate-latest-stopped', stopped),
    ]

    console.log(
      `\nLock stall of single-row inserts into x402_resources (${settings.rows.toLocaleString('en')} rows, ` +
        `table ${size.tableSize}; writer at most ${settings.rate}/s; PostgreSQL ${postgres})\n`,
    )
    printTable(
      ['scenario', 'rows', 'table size', 'apply s', 'inserts', 'p50 ms', 'p99 ms', 'worst ms'],
      scenarios.map((s) => [
        SCENARIO_LABELS[s.scenario],
        settings.rows.toLocaleString('en'),
        size.tableSize,
        s.applyMs === null ? '-' : (s.applyMs / 1000).toFixed(2),
        String(s.count),
        formatMs(s.p50Ms),
        formatMs(s.p99Ms),
        formatMs(s.worstMs),
      ]),
    )
    const meetsTarget = runner.latency.worstMs <= TARGET_WORST_MS
    console.log(
      `\nmigrate:latest: worst stall ${formatMs(runner.latency.worstMs)} ms, ${meetsTarget ? 'within' : 'over'} the target of ` +
        `${TARGET_WORST_MS} ms (the plan's SQL: ${formatMs(plan.latency.worstMs)} ms). It applied ${applied.join(', ')}; ` +
        `its apply time runs from the moment the CLI names its database to its exit, and its worst insert began ${(runner.worstAtMs / 1000).toFixed(2)} s into it.\n`,
    )
    const stoppedWithin = stopped.latency.worstMs <= TARGET_STOPPED_MS
    console.log(
      `A stopped migrate:latest held x402_resources for ${formatMs(heldMs)} ms after its stop; the worst insert waited ` +
        `${formatMs(stopped.latency.worstMs)} ms, ${stoppedWithin ? 'within' : 'over'} the target of ${TARGET_STOPPED_MS} ms ` +
        '(MIGRATION_IDLE_TIMEOUT_MS at its default).\n',
    )
    printBenchJson({
      bench: 'lock-stall',
      rows: settings.rows,
      descriptionBytes: settings.descriptionBytes,
      tableBytes: size.tableBytes,
      totalBytes: size.totalBytes,
      writerMaxRatePerSecond: settings.rate,
      machine: machineFacts(postgres),
      scenarios,
      migrateLatestApplied: applied,
      targetWorstMs: TARGET_WORST_MS,
      meetsTarget,
      stoppedRunHeldMs: roundTo(heldMs, 1),
      targetStoppedMs: TARGET_STOPPED_MS,
      meetsStoppedTarget: stoppedWithin,
    })
  })
}

main().catch((error: unknown) => {
  console.error(`\nlock-stall failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
