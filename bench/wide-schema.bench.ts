/**
 * The lesser-code check that runs before every write of the module (lesserTriggersSql), on a
 * database with many tables, each with columns of types of its own (an enum, a domain with a
 * CHECK) and a foreign key with ON DELETE CASCADE to the one before. The target: time that grows
 * linearly with the tables (the ratio of the two sizes' medians near the ratio of the sizes), and
 * at most 1 s at 600 tables (review revk K2: 12 s there, quadratic in the types).
 *
 * A third database has the same tables, and a chain of --chain tables in a schema off the path,
 * each with a PL/pgSQL trigger function (owned by postgres) that deletes from the next, reached
 * from a trigger on public.w1: the check follows what such bodies write (review revv V6: it took a
 * pass per link, 24.7 s at 10 links beside 1,000 tables).
 *
 *   npm run bench -- wide-schema [--tables 600] [--chain 20] [--runs 7]
 *
 * Three scratch databases, with tables/2 and tables tables, and tables with the chain; the check is
 * run --runs times in each, in turn, as postgres, on a fresh catalog (statistics as the new
 * database has them). It prints the medians, then one `BENCH_JSON {...}` line.
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

/** `links` tables in schema chain, each trigger deleting from the next; public.w1's deletes from the first. */
function chainOf(links: number): string {
  const statements = ['CREATE SCHEMA chain']
  for (let i = links; i >= 1; i--) {
    statements.push(`CREATE TABLE chain.c${i} (id int)`)
    const next = i < links ? `DELETE FROM chain.c${i + 1} WHERE id = OLD.id;` : ''
    statements.push(
      `CREATE FUNCTION chain.f${i}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${next} RETURN OLD; END $f$`,
      `CREATE TRIGGER t${i} AFTER DELETE ON chain.c${i} FOR EACH ROW EXECUTE FUNCTION chain.f${i}()`,
    )
  }
  statements.push(
    `CREATE FUNCTION public.into_chain() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN DELETE FROM chain.c1 WHERE id = OLD.id; RETURN OLD; END $f$`,
    `CREATE TRIGGER into_chain AFTER DELETE ON public.w1 FOR EACH ROW EXECUTE FUNCTION public.into_chain()`,
  )
  return statements.join(';\n')
}

async function main(): Promise<void> {
  const { tables, chain, runs } = wholeNumberOptions('wide-schema', {
    tables: 600,
    chain: 20,
    runs: 7,
  })
  const check = lesserTriggersSql({ lock: false })
  const loadBefore = loadavg()
  await withScratchDatabases('wide-schema', async (scratch) => {
    const sizes = [Math.ceil(tables / 2), tables]
    const databases = [...sizes.map((size) => `t${size}`), `t${tables}_chain${chain}`]
    const urls = new Map<string, string>()
    for (const name of databases) {
      const url = await scratch.create(name)
      const size = Number(/^t([0-9]+)/.exec(name)![1])
      await withClient(url, async (client) => {
        await client.query(schemaOf(size))
        if (name.includes('chain')) await client.query(chainOf(chain))
      })
      urls.set(name, url)
    }
    const samples = new Map(databases.map((name) => [name, [] as number[]]))
    let postgresVersion = ''
    for (let run = 0; run < runs; run++) {
      for (const name of databases) {
        await withClient(urls.get(name)!, async (client) => {
          postgresVersion ||= (await client.query('SHOW server_version')).rows[0].server_version
          const started = performance.now()
          await client.query(check)
          samples.get(name)!.push((performance.now() - started) / 1000)
        })
      }
    }
    const byName = Object.fromEntries(
      databases.map((name) => [name, roundTo(median(samples.get(name)!), 3)]),
    )
    const seconds = Object.fromEntries(sizes.map((size) => [size, byName[`t${size}`]!]))
    const chained = byName[databases[2]!]!
    printTable(
      ['tables (each: an enum, a domain, a cascading key)', 'median s'],
      [
        ...sizes.map((size) => [String(size), seconds[size]!.toFixed(3)]),
        [`${tables}, and a chain of ${chain} trigger functions off the path`, chained.toFixed(3)],
      ],
    )
    const growth = roundTo(seconds[tables]! / seconds[sizes[0]!]!, 2)
    console.log(
      `\nTwice the tables took ${growth} times as long; at ${tables} tables ${seconds[tables]} s, ` +
        `${seconds[tables]! <= TARGET_SECONDS ? 'within' : 'over'} the target of ${TARGET_SECONDS} s; ` +
        `with the chain of ${chain} links, ${chained} s (${chained <= TARGET_SECONDS ? 'within' : 'over'} it).`,
    )
    printBenchJson({
      bench: 'wide-schema',
      tables,
      runs,
      node: process.version,
      loadAverageBefore: loadBefore.map((value) => roundTo(value, 2)),
      loadAverageAfter: loadavg().map((value) => roundTo(value, 2)),
      machine: machineFacts(postgresVersion),
      chain,
      medianSeconds: seconds,
      chainMedianSeconds: chained,
      growth,
      targetSeconds: TARGET_SECONDS,
    })
  })
}

main().catch((error: unknown) => {
  console.error(`wide-schema bench failed: ${(error as Error).message}`)
  process.exitCode = 1
})
