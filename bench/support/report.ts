import { availableParallelism } from 'node:os'

/** The prefix of the one machine-readable line each benchmark prints: `grep '^BENCH_JSON '`. */
export const BENCH_JSON_PREFIX = 'BENCH_JSON'

/** Latencies of one measurement, in milliseconds. */
export interface LatencySummary {
  count: number
  p50Ms: number
  p99Ms: number
  worstMs: number
}

/** The machine a benchmark ran on, for its JSON line. */
export interface MachineFacts {
  cpus: number
  node: string
  postgres: string
}

/**
 * Count, median, 99th percentile (nearest rank) and maximum of `latenciesMs`.
 *
 * @example
 * ```ts
 * summarizeLatencies([1, 2, 3, 40.00041]) // { count: 4, p50Ms: 2, p99Ms: 40, worstMs: 40 }
 * ```
 */
export function summarizeLatencies(latenciesMs: readonly number[]): LatencySummary {
  if (latenciesMs.length === 0) {
    throw new Error(
      'No latency was recorded: the measured window was shorter than one operation. Measure for longer.',
    )
  }
  const sorted = [...latenciesMs].sort((a, b) => a - b)
  // Microseconds are below what these benchmarks can resolve.
  const rank = (fraction: number) =>
    roundTo(sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)]!, 3)
  return { count: sorted.length, p50Ms: rank(0.5), p99Ms: rank(0.99), worstMs: rank(1) }
}

/**
 * `value` rounded to `decimals` decimals, for the JSON line.
 *
 * @example
 * ```ts
 * roundTo(2.90073, 2) // 2.9
 * ```
 */
export function roundTo(value: number, decimals: number): number {
  const scale = 10 ** decimals
  return Math.round(value * scale) / scale
}

/**
 * The machine's CPU count and Node version, with the server's version string.
 *
 * @example
 * ```ts
 * machineFacts('15.20') // { cpus: 2, node: 'v22.23.3', postgres: '15.20' }
 * ```
 */
export function machineFacts(postgresVersion: string): MachineFacts {
  return { cpus: availableParallelism(), node: process.version, postgres: postgresVersion }
}

/**
 * Prints `rows` under `header` as a plain text table with aligned columns.
 *
 * @example
 * ```ts
 * printTable(['scenario', 'worst ms'], [['plan SQL', '270.1']])
 * ```
 */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)),
  )
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd()
  console.log(line(header))
  console.log(line(widths.map((width) => '-'.repeat(width))))
  for (const row of rows) console.log(line(row))
}

/**
 * Prints the benchmark's one machine-readable line: `BENCH_JSON {...}`.
 *
 * @example
 * ```ts
 * printBenchJson({ bench: 'startup-noop', results: [] })
 * ```
 */
export function printBenchJson(result: { bench: string } & Record<string, unknown>): void {
  console.log(`${BENCH_JSON_PREFIX} ${JSON.stringify(result)}`)
}

/**
 * Milliseconds with two decimals, for tables.
 *
 * @example
 * ```ts
 * formatMs(0.2564) // '0.26'
 * ```
 */
export function formatMs(ms: number): string {
  return ms.toFixed(2)
}
