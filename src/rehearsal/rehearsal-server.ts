import { type Kysely, sql } from 'kysely'
import pg from 'pg'

import { checkConnectionString } from '../connection/connection-string.js'
import { explainTimeout, serverClientConfig } from '../connection/server-client-config.js'
import { unlessRefused } from '../connection/sql-state.js'
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
    const found = await sameServer(db, named)
    if (found === 'unknown') {
      throw new Error(
        "Cannot tell whether REHEARSAL_DATABASE_URL names another server than the target's: neither the system identifier " +
          "(pg_control_system()) nor the postmaster's start time can be read on both. A rehearsal creates a role, a database and " +
          'the Supabase roles on its server, so nothing was created. Unset REHEARSAL_DATABASE_URL to rehearse on a scratch cluster ' +
          "started from this machine's PostgreSQL binaries, or name a server on which the target's user and the rehearsal's may read them.",
      )
    }
    if (found === 'same') {
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
 * Whether the server of `db` and the one at `other` are the same cluster: by the system
 * identifier (pg_control_system()) where both sides may read it, else by the postmaster's start
 * time (pg_postmaster_start_time(), to the microsecond), which every user reads and a pooler
 * does not change. Never by host and port: one server has many addresses. Where neither can be
 * read on both sides, nothing tells them apart, and the answer is `unknown`.
 */
async function sameServer(db: Kysely<any>, other: string): Promise<'same' | 'other' | 'unknown'> {
  const client = new pg.Client(serverClientConfig(other))
  client.on('error', () => {})
  await client.connect().catch((error: unknown) => {
    throw explainTimeout(error, other)
  })
  try {
    for (const text of [
      'SELECT system_identifier::text AS id FROM pg_control_system()',
      'SELECT pg_postmaster_start_time()::text AS id',
    ]) {
      // A query refused (no privilege to read it) leaves that side unknown; an unanswered one
      // ends the rehearsal here, with its bound.
      const theirs = await client
        .query<{ id: string }>(text)
        .then(({ rows }) => rows[0]?.id ?? undefined)
        .catch((error: unknown) => unlessRefused(explainTimeout(error, other)))
      const ours = await sql
        .raw<{ id: string }>(text)
        .execute(db)
        .then(({ rows }) => rows[0]?.id ?? undefined)
        .catch(unlessRefused)
      if (theirs !== undefined && ours !== undefined) return theirs === ours ? 'same' : 'other'
    }
    return 'unknown'
  } finally {
    await client.end().catch(() => {})
  }
}
