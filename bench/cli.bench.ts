/**
 * What does each command cost as a whole process, against Node's and npm's floors?
 *
 *   npm run bench -- cli [--runs 5] [--lint-runs 1]
 *
 * Each command runs --runs times as a process of its own (lint:sql --lint-runs times), under
 * GNU time, which gives the wall time and the peak memory (max RSS) of the process tree; the
 * table shows the medians. The floors, in the same run: `node -e 0`, and an npm script that only
 * runs `node -e 0` (`npm run bench:floor`): a figure through `npm run` is also given net of
 * that floor. On PostgreSQL (a scratch database of the bench server, migrated first): the no-op
 * `migrate:latest` compiled (what the npm script runs) and through npm, kysely-ctl's
 * `migrate:latest` on the same database, `migrate:check` (with its schema reference cached, and
 * without) and `migrate:baseline`. On the embedded database: opening a migrated PGlite folder
 * alone (with PGlite's defaults, and as the commands open it: Liftoff only, the module's
 * shared_buffers), the no-op `migrate:latest` and `migrate:check` (both ways) on it, and the
 * first `migrate:latest` on a new folder. Then `migrate:sql`, `db:codegen --check` and
 * `lint:sql`. The templates are made before the measured runs (the targets are "once the
 * template exists"). It prints a table, then one `BENCH_JSON {...}` line.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { templateCacheDir } from '../src/connection/template-cache.js'
import { migrationNames } from '../src/migrations/index.js'
import { wholeNumberOptions } from './support/options.js'
import { machineFacts, printBenchJson, printTable, roundTo } from './support/report.js'
import { withClient, withScratchDatabases } from './support/scratch-databases.js'

/** Adopting at the newest migration: the database the bench migrated records every one. */
const NEWEST = migrationNames.at(-1)!

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TIME = '/usr/bin/time'
/** The command line as the npm scripts run it. */
const BIN = ['node', '--liftoff-only', 'bin/x402-db.mjs']

interface Sample {
  seconds: number
  peakMb: number
}

interface Row {
  name: string
  seconds: number
  peakMb: number
  /** For a run through npm: seconds above the npm floor of the same run. */
  netOfNpmFloor?: number
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Runs `command` once under GNU time; fails when it fails. */
function runOnce(command: string[], env: NodeJS.ProcessEnv): Sample {
  const result = spawnSync(TIME, ['-f', 'BENCH_TIME %e %M', ...command], {
    cwd: ROOT,
    env: { ...cleanEnv(), ...env },
    encoding: 'utf8',
  })
  const line = /BENCH_TIME ([\d.]+) (\d+)/.exec(result.stderr)
  if (result.status !== 0 || !line) {
    throw new Error(
      `${command.join(' ')} failed (exit ${result.status}): ${result.stderr.trim().split('\n').slice(-3).join(' / ')}`,
    )
  }
  return { seconds: Number(line[1]), peakMb: Number(line[2]) / 1024 }
}

function measure(
  name: string,
  runs: number,
  command: string[],
  env: NodeJS.ProcessEnv = {},
  before?: () => NodeJS.ProcessEnv,
): Row {
  const samples: Sample[] = []
  for (let run = 0; run < runs; run++) samples.push(runOnce(command, { ...env, ...before?.() }))
  const row = {
    name,
    seconds: roundTo(median(samples.map((s) => s.seconds)), 3),
    peakMb: roundTo(median(samples.map((s) => s.peakMb)), 1),
  }
  console.error(`${name}: ${row.seconds} s, ${row.peakMb} MB`)
  return row
}

/** Removes the cached schema references (not the templates), for a check that builds its reference. */
function withoutReferences(): NodeJS.ProcessEnv {
  const cache = templateCacheDir()
  for (const file of readdirSync(cache).filter((name) => name.startsWith('reference-')))
    rmSync(join(cache, file), { force: true })
  return {}
}

function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(DATABASE_URL|PGLITE_DATA_DIR|MIGRATION_.*)$/.test(name),
    ),
  )
}

async function main(): Promise<void> {
  const { runs, 'lint-runs': lintRuns } = wholeNumberOptions('cli', { runs: 5, 'lint-runs': 1 })
  execFileSync(process.execPath, ['bin/x402-db.mjs', '--build'], { cwd: ROOT, stdio: 'inherit' })
  const work = mkdtempSync(join(tmpdir(), 'x402-bench-cli-'))
  const loadBefore = loadavg()
  try {
    await withScratchDatabases('cli', async (scratch) => {
      const url = await scratch.create('noop')
      const postgresVersion = await withClient(
        url,
        async (client) =>
          (await client.query('SHOW server_version')).rows[0].server_version as string,
      )
      const onServer = { DATABASE_URL: url }
      const folder = join(work, 'pglite')
      const embedded = { PGLITE_DATA_DIR: folder }
      // Set-up, not measured: the migrated server database, the migrated folder, the templates.
      for (const env of [onServer, embedded]) runOnce([...BIN, 'migrate', 'latest'], env)
      runOnce([...BIN, 'codegen', '--check'], {})
      runOnce([...BIN, 'migrate', 'sql', '005'], {})
      let fresh = 0
      const newFolder = () => ({ PGLITE_DATA_DIR: join(work, `new-${fresh++}`) })

      const rows: Row[] = [
        measure('node -e 0', runs, ['node', '-e', '0']),
        measure('npm run bench:floor (node -e 0)', runs, ['npm', 'run', '--silent', 'bench:floor']),
        measure(
          'postgres: no-op migrate:latest, compiled',
          runs,
          [...BIN, 'migrate', 'latest'],
          onServer,
        ),
        measure(
          'postgres: no-op npm run migrate:latest',
          runs,
          ['npm', 'run', '--silent', 'migrate:latest'],
          onServer,
        ),
        measure(
          'postgres: kysely-ctl migrate:latest',
          runs,
          ['node_modules/.bin/kysely', 'migrate:latest'],
          onServer,
        ),
        measure('postgres: migrate:check', runs, [...BIN, 'migrate', 'check'], onServer),
        measure(
          'postgres: migrate:check, schema reference not cached',
          runs,
          [...BIN, 'migrate', 'check'],
          onServer,
          withoutReferences,
        ),
        measure(
          `postgres: migrate:baseline ${NEWEST} (adopted)`,
          runs,
          [...BIN, 'migrate', 'baseline', NEWEST],
          onServer,
        ),
        measure('embedded: open the PGlite folder alone', runs, [
          'node',
          'bench/support/open-pglite-folder.mjs',
          folder,
        ]),
        measure('embedded: open the PGlite folder alone, as the commands do', runs, [
          'node',
          '--liftoff-only',
          'bench/support/open-pglite-folder.mjs',
          folder,
          '--as-commands',
        ]),
        measure('embedded: no-op migrate:latest', runs, [...BIN, 'migrate', 'latest'], embedded),
        measure('embedded: migrate:check', runs, [...BIN, 'migrate', 'check'], embedded),
        measure(
          'embedded: migrate:check, schema reference not cached',
          runs,
          [...BIN, 'migrate', 'check'],
          embedded,
          withoutReferences,
        ),
        measure(
          'embedded: first migrate:latest, new folder',
          runs,
          [...BIN, 'migrate', 'latest'],
          {},
          newFolder,
        ),
        measure('migrate:sql 005', runs, [...BIN, 'migrate', 'sql', '005']),
        measure('db:codegen --check', runs, [...BIN, 'codegen', '--check']),
        measure('lint:sql', lintRuns, [...BIN, 'lint-sql']),
      ]
      const npmFloor = rows[1]!.seconds
      for (const row of rows)
        if (row.name.includes('npm run migrate'))
          row.netOfNpmFloor = roundTo(row.seconds - npmFloor, 3)

      printTable(
        ['command', 'median s', 'peak MB', 'net of npm floor s'],
        rows.map((row) => [
          row.name,
          row.seconds.toFixed(2),
          row.peakMb.toFixed(0),
          row.netOfNpmFloor?.toFixed(2) ?? '',
        ]),
      )
      printBenchJson({
        bench: 'cli',
        runs,
        loadAverageBefore: loadBefore.map((value) => roundTo(value, 2)),
        loadAverageAfter: loadavg().map((value) => roundTo(value, 2)),
        machine: machineFacts(postgresVersion),
        results: rows,
      })
    })
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(`cli bench failed: ${(error as Error).message}`)
  process.exitCode = 1
})
