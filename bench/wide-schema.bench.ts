/**
 * The lesser-code check that runs before every write of the module (lesserTriggersSql), on a
 * database with many tables, each with columns of types of its own (an enum, a domain with a
 * CHECK) and a foreign key with ON DELETE CASCADE to the one before. The target: time that grows
 * linearly with the tables (the ratio of the two sizes' medians near the ratio of the sizes), and
 * at most 1 s at 600 tables (review revk K2: 12 s there, quadratic in the types).
 *
 *   npm run bench -- wide-schema [--tables 600] [--runs 7]
 *
 * Two scratch databases, with tables/2 and tables tables; the check is run --runs times in
 * each, in turn, as postgres, on a fresh catalog (statistics as the new database has them). It
 * prints the medians, then one `BENCH_JSON {...}` line.
 */
import { loadavg } from 'node:os'

import { lesserTriggersSql } from '../src/connection/lesser-triggers.js'
import { wholeNumberOptions } from './support/options.js'
import { machineFacts, printBenchJson, printTable, roundTo } from './support/report.js'
import { withClient, withScratchDatabases } from './support/scratch-databases.js'

const TARGET_SECONDS = 1

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!

/** `count` tables, each with an enum, a domain with a CHECK and a cascading key to the last. */
function schemaOf(count: number): string {
  const statements = ['CREATE TABLE public.w0 (id int PRIMARY KEY)']
  for (let i = 1; i <= count; i++) {
    statements.push(
      `CREATE TYPE public.e${i} AS ENUM ('a', 'b')`,
      `CREATE DOMAIN public.d${i} AS text CHECK (VALUE <> '')`,
      `CREATE TABLE public.w${i} (id int PRIMARY KEY, kind public.e${i}, label public.d${i},
         state text CHECK (state IN ('x', 'y')), up int REFERENCES public.w${i - 1} ON DELETE CASCADE)`,
    )
  }
  return statements.join(';\n')
}

async function main(): Promise<void> {
  const { tables, runs } = wholeNumberOptions('wide-schema', { tables: 600, runs: 7 })
  const check = lesserTriggersSql({ lock: false })
  const loadBefore = loadavg()
  await withScratchDatabases('wide-schema', async (scratch) => {
    const sizes = [Math.ceil(tables / 2), tables]
    const urls = new Map<number, string>()
    for (const size of sizes) {
      const url = await scratch.create(`t${size}`)
      await withClient(url, (client) => client.query(schemaOf(size)))
      urls.set(size, url)
    }
    const samples = new Map(sizes.map((size) => [size, [] as number[]]))
    let postgresVersion = ''
    for (let run = 0; run < runs; run++) {
      for (const size of sizes) {
        await withClient(urls.get(size)!, async (client) => {
          postgresVersion ||= (await client.query('SHOW server_version')).rows[0].server_version
          const started = performance.now()
          await client.query(check)
          samples.get(size)!.push((performance.now() - started) / 1000)
        })
      }
    }
    const seconds = Object.fromEntries(
      sizes.map((size) => [size, roundTo(median(samples.get(size)!), 3)]),
    )
    printTable(
      ['tables (each: an enum, a domain, a cascading key)', 'median s'],
      sizes.map((size) => [String(size), seconds[size]!.toFixed(3)]),
    )
    const growth = roundTo(seconds[tables]! / seconds[sizes[0]!]!, 2)
    console.log(
      `\nTwice the tables took ${growth} times as long; at ${tables} tables ${seconds[tables]} s, ` +
        `${seconds[tables]! <= TARGET_SECONDS ? 'within' : 'over'} the target of ${TARGET_SECONDS} s.`,
    )
    printBenchJson({
      bench: 'wide-schema',
      tables,
      runs,
      node: process.version,
      loadAverageBefore: loadBefore.map((value) => roundTo(value, 2)),
      loadAverageAfter: loadavg().map((value) => roundTo(value, 2)),
      machine: machineFacts(postgresVersion),
      medianSeconds: seconds,
      growth,
      targetSeconds: TARGET_SECONDS,
    })
  })
}

main().catch((error: unknown) => {
  console.error(`wide-schema bench failed: ${(error as Error).message}`)
  process.exitCode = 1
})
