/**
 * The lesser-code check that runs before every write of the module (lesserTriggersSql), on a
 * database with many tables, each with columns of types of its own (an enum, a domain with a
 * CHECK) and a foreign key with ON DELETE CASCADE to the one before. The target: time that grows
 * linearly with the tables (the ratio of the two sizes' medians near the ratio of the sizes), and
 * at most 1 s at 600 tables (review revk K2: 12 s there, quadratic in the types).
 *
 * A third database has the same tables, and review revw's audit shape (auditOf): 44 audit
 * triggers writing into 4 chains of --chain tables off the path, through PL/pgSQL bodies that
 * the check reads (review revv V6, revw: 7.6 s at chains of 10 before the walk was made once).
 *
 * A fourth has review revo O9's hub shape (hubOf): a table that --hub tables reference ON DELETE
 * CASCADE, each with a PL/pgSQL trigger that writes it, and a function owned by a lesser login
 * (108 s at a hub of 90 before the check walked back from its problems).
 *
 *   npm run bench -- wide-schema [--tables 600] [--chain 10] [--hub 90] [--runs 7]
 *
 * Four scratch databases, with tables/2 and tables tables, tables with the chain, and the hub; the
 * check is run --runs times in each, in turn, as postgres, on a fresh catalog (statistics as the
 * new database has them). The hub's lesser login is a role of the run, on the server while all
 * four are measured, and dropped at the end with the databases. It prints the medians, then one
 * `BENCH_JSON {...}` line.
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

/**
 * Review revw's audit shape: 44 app tables in public, each with a PL/pgSQL audit trigger (a body
 * of about 2.5 kB, comments included) that writes a history table and the head of one of 4
 * chains of `links` tables off the path, each link's trigger writing the next through one of 200
 * helpers. Before its walk was made once per function, 44 entries sharing chains of 10 took
 * 7.6 s there.
 */
function auditOf(links: number): string {
  const pad = Array.from(
    { length: 25 },
    (_, i) =>
      `  -- step ${i}: normalise the payload, keep the history, emit the notification for the consumer`,
  ).join('\n')
  const out = ['CREATE SCHEMA app_hist', 'CREATE SCHEMA app_util']
  for (let h = 0; h < 200; h++)
    out.push(
      `CREATE FUNCTION app_util.helper_${h}(v text) RETURNS text LANGUAGE plpgsql AS $f$\nBEGIN\n${pad}\n  RETURN lower(v) || '${h}';\nEND $f$`,
    )
  for (let c = 0; c < 4; c++) {
    out.push(`CREATE SCHEMA chain${c}`)
    for (let i = 0; i < links; i++)
      out.push(`CREATE TABLE chain${c}.t${i} (id bigserial PRIMARY KEY, payload text)`)
    for (let i = 0; i < links - 1; i++)
      out.push(
        `CREATE FUNCTION chain${c}.f${i}() RETURNS trigger LANGUAGE plpgsql AS $f$\nBEGIN\n${pad}\n  INSERT INTO chain${c}.t${i + 1} (payload) VALUES (app_util.helper_${(c * links + i) % 200}(NEW.payload));\n  RETURN NEW;\nEND $f$`,
        `CREATE TRIGGER trg AFTER INSERT ON chain${c}.t${i} FOR EACH ROW EXECUTE FUNCTION chain${c}.f${i}()`,
      )
  }
  for (let t = 0; t < 44; t++)
    out.push(
      `CREATE TABLE public.app_t${t} (id bigserial PRIMARY KEY, name text, updated_at timestamptz)`,
      `CREATE TABLE app_hist.app_t${t}_history (id bigserial PRIMARY KEY, row_id bigint, operation text, old jsonb)`,
      `CREATE FUNCTION public.app_t${t}_audit() RETURNS trigger LANGUAGE plpgsql AS $f$\nBEGIN\n${pad}\n  INSERT INTO app_hist.app_t${t}_history (row_id, operation, old) VALUES (OLD.id, TG_OP, to_jsonb(OLD));\n  INSERT INTO chain${t % 4}.t0 (payload) VALUES (app_util.helper_${(t * 7) % 200}(OLD.name));\n  RETURN OLD;\nEND $f$`,
      `CREATE TRIGGER audit AFTER UPDATE OR DELETE ON public.app_t${t} FOR EACH ROW EXECUTE FUNCTION public.app_t${t}_audit()`,
    )
  return out.join(';\n')
}

/**
 * Review revo O9's hub shape: a table `hub` that `count` tables reference ON DELETE CASCADE,
 * each with a PL/pgSQL trigger (postgres's, so trusted) that writes `hub`, and a function in a
 * schema of `login` that nothing calls. Each body writes the hub, whose cascading keys bring
 * every child's trigger into the walk; once a lesser login existed (only then does the check
 * read what bodies call), it carried each starting trigger through that walk: the cube of
 * `count`, 13 s at 60 and 108 s at 90.
 */
function hubOf(count: number, login: string): string {
  const out = [
    'CREATE TABLE public.hub (id int PRIMARY KEY, n int)',
    `CREATE SCHEMA hub_lesser AUTHORIZATION ${login}`,
    "CREATE FUNCTION hub_lesser.helper() RETURNS void LANGUAGE sql AS 'SELECT 1'",
    `ALTER FUNCTION hub_lesser.helper() OWNER TO ${login}`,
  ]
  for (let i = 1; i <= count; i++)
    out.push(
      `CREATE TABLE public.child_${i} (id int PRIMARY KEY, hub_id int REFERENCES public.hub (id) ON DELETE CASCADE)`,
      `CREATE FUNCTION public.child_${i}_fn() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN UPDATE hub SET n = n + 1 WHERE id = 0; RETURN NULL; END $f$`,
      `CREATE TRIGGER child_${i}_trg AFTER INSERT OR UPDATE OR DELETE ON public.child_${i} FOR EACH ROW EXECUTE FUNCTION public.child_${i}_fn()`,
    )
  return out.join(';\n')
}

async function main(): Promise<void> {
  const { tables, chain, hub, runs } = wholeNumberOptions('wide-schema', {
    tables: 600,
    chain: 10,
    hub: 90,
    runs: 7,
  })
  const check = lesserTriggersSql({ lock: false })
  const loadBefore = loadavg()
  await withScratchDatabases('wide-schema', async (scratch) => {
    const sizes = [Math.ceil(tables / 2), tables]
    const chainName = `t${tables}_chain${chain}`
    const hubName = `hub${hub}`
    const login = await scratch.createLogin('lesser')
    const schemas = new Map<string, () => string[]>([
      ...sizes.map((size) => [`t${size}`, () => [schemaOf(size)]] as const),
      [chainName, () => [schemaOf(tables), auditOf(chain)]],
      [hubName, () => [hubOf(hub, login)]],
    ])
    const databases = [...schemas.keys()]
    const urls = new Map<string, string>()
    for (const [name, statements] of schemas) {
      const url = await scratch.create(name)
      await withClient(url, async (client) => {
        for (const sql of statements()) await client.query(sql)
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
    const chained = byName[chainName]!
    const hubbed = byName[hubName]!
    printTable(
      ['tables (each: an enum, a domain, a cascading key)', 'median s'],
      [
        ...sizes.map((size) => [String(size), seconds[size]!.toFixed(3)]),
        [
          `${tables}, and 44 audit triggers into 4 chains of ${chain} off the path`,
          chained.toFixed(3),
        ],
        [
          `a hub and ${hub} tables cascading into it, each trigger writing it; a lesser login's function`,
          hubbed.toFixed(3),
        ],
      ],
    )
    const growth = roundTo(seconds[tables]! / seconds[sizes[0]!]!, 2)
    console.log(
      `\nTwice the tables took ${growth} times as long; at ${tables} tables ${seconds[tables]} s, ` +
        `${seconds[tables]! <= TARGET_SECONDS ? 'within' : 'over'} the target of ${TARGET_SECONDS} s; ` +
        `with the audit triggers and chains of ${chain}, ${chained} s (${chained <= TARGET_SECONDS ? 'within' : 'over'} it); ` +
        `the hub of ${hub}, ${hubbed} s (${hubbed <= TARGET_SECONDS ? 'within' : 'over'} it).`,
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
      hub,
      hubMedianSeconds: hubbed,
      growth,
      targetSeconds: TARGET_SECONDS,
    })
  })
}

main().catch((error: unknown) => {
  console.error(`wide-schema bench failed: ${(error as Error).message}`)
  process.exitCode = 1
})
