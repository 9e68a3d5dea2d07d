import { type Kysely, sql } from 'kysely'
import pg from 'pg'

import { checkConnectionString, givenConnectionString } from '../connection/connection-string.js'
import { endClient } from '../connection/end-client.js'
import {
  explainTimeout,
  serverClient,
  serverClientConfig,
} from '../connection/server-client-config.js'
import { unlessRefused } from '../connection/sql-state.js'
import { reachedThrough } from '../connection/unreachable.js'
import { startScratchCluster } from './scratch-cluster.js'
import { connectAdmin } from './scratch-database.js'

/**
 * Runs `work` with a PostgreSQL server to rehearse the migrations of the target `db` on, never
 * the target's own nor the app's: `named`, a server named for rehearsals (REHEARSAL_DATABASE_URL),
 * refused where it is the target's server, or the server of an app's database that `env` names
 * (see refuseAppServer: the target may be MIGRATION_DATABASE_URL's, the app DATABASE_URL's
 * elsewhere); else a scratch cluster started for this rehearsal from the
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
  env: NodeJS.ProcessEnv = process.env,
): Promise<T> {
  if (named !== undefined) {
    checkConnectionString(named, 'REHEARSAL_DATABASE_URL')
    const otherwise = "a scratch cluster started from this machine's PostgreSQL binaries"
    await refuseSameServer((text) => sql.raw<{ id: string }>(text).execute(db), named, {
      variable: 'REHEARSAL_DATABASE_URL',
      whose: "the target's own server",
      otherwise,
    })
    // The target is not always the app's database: MIGRATION_DATABASE_URL may name another
    // server than DATABASE_URL's, and a rehearsal's roles must land on neither (review N10-6).
    await refuseAppServer(named, 'REHEARSAL_DATABASE_URL', otherwise, env)
    return work(named)
  }
  const { rows } = await sql<{
    major: number
  }>`SELECT pg_catalog.current_setting('server_version_num')::int / 10000 AS major`.execute(db)
  const cluster = await startScratchCluster({ major: Number(rows[0]!.major) })
  try {
    return await work(cluster.connectionString)
  } finally {
    await cluster.stop()
  }
}

/**
 * Refuses `named` (the rehearsal server in the environment variable `variable`, already checked)
 * where it is the server of an app's database that the environment names: MIGRATION_DATABASE_URL
 * or DATABASE_URL, as withRehearsalServer refuses the target's (and, through here, the app's).
 * For every command that rehearses (migrate:sql, lint:locks, migrate:plan): a rehearsal creates a
 * login role and a database on its server, which must not be the app's. Where neither is set,
 * nothing to compare.
 * `otherwise` says where the command rehearses without `variable`, for the message.
 *
 * @example
 * ```ts
 * await refuseAppServer(server, 'LINT_LOCKS_DATABASE_URL', 'an in-memory PGlite (a partial check)')
 * ```
 */
export async function refuseAppServer(
  named: string,
  variable: string,
  otherwise: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  for (const app of ['MIGRATION_DATABASE_URL', 'DATABASE_URL']) {
    if (!env[app]?.trim()) continue
    const url = givenConnectionString(env[app], app)!
    const client = serverClient(serverClientConfig(url))
    try {
      await client.connect()
    } catch (error) {
      throw new Error(
        `Cannot tell whether ${variable} names another server than ${app}'s, the app's: ${app} cannot be reached ` +
          `(${error instanceof Error ? error.message : String(error)}). A rehearsal creates a role and a database on its ` +
          `server, so nothing was created. Check ${app}, or unset ${app} for this command.`,
      )
    }
    try {
      await refuseSameServer((text) => client.query<{ id: string }>(text), named, {
        variable,
        whose: `${app}'s server, the app's`,
        otherwise,
      })
    } finally {
      await endClient(client)
    }
  }
}

/**
 * Throws where the server at `named` (in `variable`) is the one that `ours` queries (`whose`),
 * or where nothing tells them apart (see sameServer); `otherwise` is where the command rehearses
 * without `variable`.
 */
async function refuseSameServer(
  ours: Query,
  named: string,
  { variable, whose, otherwise }: { variable: string; whose: string; otherwise: string },
): Promise<void> {
  // The first connection to the named server: where it fails, the message names its variable.
  const found = await reachedThrough(variable, () => sameServer(ours, named))
  if (found === 'unknown') {
    throw new Error(
      `Cannot tell whether ${variable} names another server than ${whose}: neither the system identifier ` +
        "(pg_control_system()) nor the postmaster's start time can be read on both. A rehearsal creates a role, a database and " +
        `the Supabase roles on its server, so nothing was created. Unset ${variable} to rehearse on ${otherwise}, ` +
        'or name a server on which both users may read them.',
    )
  }
  if (found === 'same') {
    throw new Error(
      `${variable} names ${whose}. A rehearsal creates a role, a database and the Supabase roles on its server, ` +
        `and runs the migrations' code there: name another server for rehearsals, or unset ${variable} to rehearse on ` +
        `${otherwise}.`,
    )
  }
}

/** Runs a query that returns one `id` on one side of the comparison. */
type Query = (text: string) => Promise<{ rows: Array<{ id: string }> }>

/**
 * Whether the server that `ours` queries and the one at `other` are the same cluster: by the system
 * identifier (pg_control_system()) where both sides may read it, else by the postmaster's start
 * time (pg_postmaster_start_time(), to the microsecond), which every user reads and a pooler
 * does not change. Never by host and port: one server has many addresses. Where neither can be
 * read on both sides, nothing tells them apart, and the answer is `unknown`.
 */
async function sameServer(ours: Query, other: string): Promise<'same' | 'other' | 'unknown'> {
  // `other` is the server named for rehearsals: its superuser's session, pinned as the rehearsal's.
  const client = await connectAdmin(other)
  try {
    for (const text of [
      'SELECT system_identifier::text AS id FROM pg_catalog.pg_control_system()',
      'SELECT pg_catalog.pg_postmaster_start_time()::text AS id',
    ]) {
      // A query refused (no privilege to read it) leaves that side unknown; an unanswered one
      // ends the rehearsal here, with its bound.
      const theirs = await client
        .query<{ id: string }>(text)
        .then(({ rows }) => rows[0]?.id ?? undefined)
        .catch((error: unknown) => unlessRefused(explainTimeout(error, other)))
      const mine = await ours(text)
        .then(({ rows }) => rows[0]?.id ?? undefined)
        .catch(unlessRefused)
      if (theirs !== undefined && mine !== undefined) return theirs === mine ? 'same' : 'other'
    }
    return 'unknown'
  } finally {
    await endClient(client)
  }
}
