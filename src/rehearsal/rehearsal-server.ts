import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { parse as parseConnectionString } from 'pg-connection-string'

import { checkConnectionString } from '../connection/connection-string.js'
import { serverClientConfig } from '../connection/server-client-config.js'
import { startScratchCluster } from './scratch-cluster.js'

/**
 * Runs `work` with a PostgreSQL server to rehearse the migrations of the target `db` on, never
 * the target's own: `named`, a server named for rehearsals (REHEARSAL_DATABASE_URL), refused
 * where it is the target's server; else a scratch cluster started for this rehearsal from the
 * PostgreSQL binaries on this machine, of the target's major version where there are several
 * (see startScratchCluster), and stopped after it. A rehearsal creates a role and a database on
 * its server, and the Supabase roles where they are missing: none of that may land on the
 * target's server, and none of the target's code may run there.
 *
 * @example
 * ```ts
 * const plan = await withRehearsalServer(db, process.env.REHEARSAL_DATABASE_URL, (server) => rehearse(steps, { server, … }))
 * ```
 */
export async function withRehearsalServer<T>(
  db: Kysely<any>,
  named: string | undefined,
  work: (server: string) => Promise<T>,
): Promise<T> {
  if (named !== undefined) {
    checkConnectionString(named, 'REHEARSAL_DATABASE_URL')
    if (await isSameServer(db, named)) {
      throw new Error(
        "REHEARSAL_DATABASE_URL names the target's own server. A rehearsal creates a role, a database and the Supabase roles on its server, " +
          "and runs the target's code there: name another server for rehearsals, or unset REHEARSAL_DATABASE_URL to rehearse on a " +
          "scratch cluster started from this machine's PostgreSQL binaries.",
      )
    }
    return work(named)
  }
  const { rows } = await sql<{
    major: number
  }>`SELECT current_setting('server_version_num')::int / 10000 AS major`.execute(db)
  const cluster = await startScratchCluster({ major: Number(rows[0]!.major) })
  try {
    return await work(cluster.connectionString)
  } finally {
    await cluster.stop()
  }
}

/**
 * Whether the server of `db` and the one at `other` are the same cluster: the same system
 * identifier (pg_control_system()), or, where either cannot read it, the same host and port.
 */
async function isSameServer(db: Kysely<any>, other: string): Promise<boolean> {
  const client = new pg.Client(serverClientConfig(other))
  client.on('error', () => {})
  await client.connect()
  try {
    const theirs = await client
      .query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')
      .then(({ rows }) => rows[0]?.id)
      .catch(() => undefined)
    const ours = await sql<{
      id: string
    }>`SELECT system_identifier::text AS id FROM pg_control_system()`
      .execute(db)
      .then(({ rows }) => rows[0]?.id)
      .catch(() => undefined)
    if (theirs !== undefined && ours !== undefined) return theirs === ours
    const { rows } = await sql<{
      host: string | null
      port: number | null
    }>`SELECT inet_server_addr()::text AS host, inet_server_port() AS port`.execute(db)
    const where = parseConnectionString(other)
    return (
      String(rows[0]?.port ?? 5432) === String(where.port || 5432) &&
      (rows[0]?.host ?? '').replace(/\/\d+$/, '') === (where.host ?? '')
    )
  } finally {
    await client.end().catch(() => {})
  }
}
