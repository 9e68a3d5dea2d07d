/**
 * The no-op `x402-db migrate latest` on PostgreSQL, as a whole process through the bin, against
 * node-pg-migrate's `up` no-op, side by side in one run. The target: at most 0.8 times
 * node-pg-migrate.
 *
 *   npm run bench -- noop-peers [--runs 21]
 *
 * Two scratch databases of the bench server: one migrated by x402-db, one by node-pg-migrate
 * over as many migrations (each a no-op `SELECT`, in a folder of its own). Then, --runs times,
 * in turn so that the rest of the machine's load hits each alike: `bin/x402-db.mjs migrate
 * latest` (its shebang, as node_modules/.bin runs it), `node-pg-migrate up`, and `node -e 0`
 * for Node's own floor. It prints the medians and their ratio, then one `BENCH_JSON {...}` line.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { migrationNames } from '../src/migrations/index.js'
import { wholeNumberOptions } from './support/options.js'
import { machineFacts, printBenchJson, printTable, roundTo } from './support/report.js'
import { withClient, withScratchDatabases } from './support/scratch-databases.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TARGET_RATIO = 0.8

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Runs `command` once and returns its wall time in seconds; fails when it fails. */
function timeOnce(command: string[], env: NodeJS.ProcessEnv): number {
  const started = performance.now()
  const result = spawnSync(command[0]!, command.slice(1), {
    cwd: ROOT,
    env: { ...cleanEnv(), ...env },
    encoding: 'utf8',
  })
  const seconds = (performance.now() - started) / 1000
  if (result.status !== 0) {
    throw new Error(
      `${command.join(' ')} failed (exit ${result.status}): ${result.stderr.trim().split('\n').slice(-3).join(' / ')}`,
    )
  }
  return seconds
}

function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(DATABASE_URL|PGLITE_DATA_DIR|MIGRATION_.*|npm_.*)$/.test(name),
    ),
  )
}

async function main(): Promise<void> {
  const { runs } = wholeNumberOptions('noop-peers', { runs: 21 })
  execFileSync(process.execPath, ['bin/x402-db.mjs', '--build'], { cwd: ROOT, stdio: 'inherit' })
  const folder = mkdtempSync(join(tmpdir(), 'x402-bench-peers-'))
  const loadBefore = loadavg()
  try {
    // node-pg-migrate's migrations: as many as the module's, each a no-op.
    for (const name of migrationNames)
      writeFileSync(join(folder, `${name}.cjs`), "exports.up = (pgm) => { pgm.sql('SELECT 1') }\n")
    await withScratchDatabases('peers', async (scratch) => {
      const ours = { DATABASE_URL: await scratch.create('x402') }
      const theirs = { DATABASE_URL: await scratch.create('npgm') }
      const postgresVersion = await withClient(
        ours.DATABASE_URL,
        async (client) =>
          (await client.query('SHOW server_version')).rows[0].server_version as string,
      )
      const commands = {
        'x402-db migrate latest': { command: ['bin/x402-db.mjs', 'migrate', 'latest'], env: ours },
        'node-pg-migrate up': {
          command: ['node_modules/.bin/node-pg-migrate', 'up', '-m', folder],
          env: theirs,
        },
        'node -e 0': { command: [process.execPath, '-e', '0'], env: {} },
      }
      // Set-up, not measured: both databases migrated, and each command run once (the OS file cache).
      for (const { command, env } of Object.values(commands)) timeOnce(command, env)
      const samples = new Map(Object.keys(commands).map((name) => [name, [] as number[]]))
      for (let run = 0; run < runs; run++) {
        for (const [name, { command, env }] of Object.entries(commands))
          samples.get(name)!.push(timeOnce(command, env))
      }
      const seconds = Object.fromEntries(
        [...samples].map(([name, values]) => [name, roundTo(median(values), 3)]),
      )
      const ratio = roundTo(seconds['x402-db migrate latest']! / seconds['node-pg-migrate up']!, 2)
      printTable(
        ['command (no-op, PostgreSQL, whole process)', 'median s'],
        Object.entries(seconds).map(([name, value]) => [name, value.toFixed(3)]),
      )
      const verdict = ratio <= TARGET_RATIO ? 'within' : 'over'
      console.log(
        `\nx402-db / node-pg-migrate: ${ratio}, ${verdict} the target of at most ${TARGET_RATIO}.`,
      )
      printBenchJson({
        bench: 'noop-peers',
        runs,
        node: process.version,
        loadAverageBefore: loadBefore.map((value) => roundTo(value, 2)),
        loadAverageAfter: loadavg().map((value) => roundTo(value, 2)),
        machine: machineFacts(postgresVersion),
        medianSeconds: seconds,
        ratio,
        targetRatio: TARGET_RATIO,
      })
    })
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(`noop-peers bench failed: ${(error as Error).message}`)
  process.exitCode = 1
})
