import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import pg from 'pg'

const run = promisify(execFile)

/**
 * Why this machine's pg_dump cannot dump the server at `connectionString`, or undefined where it
 * can: pg_dump refuses a server of a newer major version than its own (Debian 12 ships pg_dump
 * 15; CI's second server is PostgreSQL 17), and is missing where PostgreSQL's client tools are.
 *
 * @example
 * ```ts
 * const reason = await pgDumpSkipReason(url)
 * if (reason) context.skip(reason)
 * ```
 */
export async function pgDumpSkipReason(connectionString: string): Promise<string | undefined> {
  let dumpMajor: number
  try {
    const { stdout } = await run('pg_dump', ['--version'])
    dumpMajor = Number(/(\d+)(?:\.\d+)?/.exec(stdout)?.[1])
  } catch {
    return 'pg_dump is not installed on this machine'
  }
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    const { rows } = await client.query<{ version: string }>(
      "SELECT current_setting('server_version_num') AS version",
    )
    const serverMajor = Math.floor(Number(rows[0]!.version) / 10_000)
    if (dumpMajor >= serverMajor) return undefined
    return `needs pg_dump ${serverMajor} or newer for this PostgreSQL ${serverMajor} server; this machine's pg_dump is ${dumpMajor}`
  } finally {
    await client.end()
  }
}
