import { randomBytes } from 'node:crypto'

import pg from 'pg'

/** The server the benchmarks use when BENCH_DATABASE_URL is unset: the local PostgreSQL. */
export const DEFAULT_BENCH_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

/** Databases of one benchmark run, created on the bench server and dropped when it ends. */
export interface ScratchDatabases {
  /**
   * Creates the database `label` of this run, empty or as a copy of the database `template`
   * (a label given to an earlier `create`), and returns its connection string.
   */
  create(label: string, options?: { template?: string }): Promise<string>
  /**
   * Creates the login role `label` of this run (no password, no attribute but LOGIN) and
   * returns its name. A role is the server's, not a database's, so dropping the databases
   * would leave it behind: it is dropped after them, once nothing of theirs is its.
   */
  createLogin(label: string): Promise<string>
}

/**
 * The server a benchmark creates its databases on: BENCH_DATABASE_URL, else the local
 * PostgreSQL. Never DATABASE_URL, which may be a real app's database.
 *
 * @example
 * ```ts
 * benchServerUrl() // 'postgres://postgres@127.0.0.1:5432/postgres'
 * ```
 */
export function benchServerUrl(): string {
  return process.env.BENCH_DATABASE_URL?.trim() || DEFAULT_BENCH_SERVER_URL
}

/**
 * Runs `use` with databases (and login roles) of its own, named
 * `x402_bench_<bench>_<random>_<label>`, and drops them all when it ends: on success, on
 * failure, and on Ctrl-C or SIGTERM (then the process exits with 130 or 143). Dropping uses
 * WITH (FORCE), which also ends the sessions still open on them, a child process's included;
 * the roles go last, even if a database could not be dropped.
 *
 * @example
 * ```ts
 * await withScratchDatabases('lock-stall', async (scratch) => {
 *   const before = await scratch.create('before')
 *   const copy = await scratch.create('copy', { template: 'before' })
 *   const login = await scratch.createLogin('lesser')
 * })
 * ```
 */
export async function withScratchDatabases<T>(
  bench: string,
  use: (scratch: ScratchDatabases) => Promise<T>,
): Promise<T> {
  const serverUrl = benchServerUrl()
  const prefix = `x402_bench_${bench.replace(/\W/g, '_')}_${randomBytes(3).toString('hex')}`
  const created: string[] = []
  const logins: string[] = []
  let dropping: Promise<void> | undefined
  const dropAll = () => {
    dropping ??= withClient(serverUrl, async (client) => {
      try {
        for (const name of created.reverse())
          await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        for (const name of logins.reverse()) await client.query(`DROP ROLE IF EXISTS ${name}`)
      }
    })
    return dropping
  }
  // Kept until the end, so that a second signal (tsx relays one) cannot cut the drop short.
  const onSignal = (signal: NodeJS.Signals) => {
    if (dropping) return
    console.error(`\n${signal}: dropping the benchmark databases (${prefix}_*)`)
    dropAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const scratch: ScratchDatabases = {
    async create(label, options = {}) {
      const name = `${prefix}_${label}`
      const template =
        options.template === undefined ? '' : ` TEMPLATE ${prefix}_${options.template}`
      created.push(name)
      await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${name}${template}`))
      const url = new URL(serverUrl)
      url.pathname = `/${name}`
      return url.toString()
    },
    async createLogin(label) {
      const name = `${prefix}_${label}`
      logins.push(name)
      await withClient(serverUrl, (client) => client.query(`CREATE ROLE ${name} LOGIN`))
      return name
    },
  }
  try {
    return await use(scratch)
  } finally {
    await dropAll()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/**
 * Runs `use` on a client of its own on `connectionString`, and closes it afterwards.
 *
 * @example
 * ```ts
 * const version = await withClient(url, async (client) => (await client.query('SHOW server_version')).rows[0].server_version)
 * ```
 */
export async function withClient<T>(
  connectionString: string,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString, application_name: 'x402-jobs-bench' })
  // A connection lost while idle (its database dropped on Ctrl-C) fails its next query; the
  // event alone must not crash the process before the drop is done.
  client.on('error', () => {})
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}
