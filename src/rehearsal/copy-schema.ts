import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import pg from 'pg'

import { serverClientConfig } from '../connection/server-client-config.js'

const run = promisify(execFile)

/** The schemas copied: the app's tables, and the migration history's. Supabase's own come from the stand-in. */
const COPIED_SCHEMAS = ['public', 'x402_migrations']

/**
 * pg_dump's arguments and environment for a schema-only dump of `from`. The password goes in
 * PGPASSWORD, never in the arguments, which any user of the machine can read with `ps`.
 *
 * @example
 * ```ts
 * pgDumpInvocation('postgres://app:secret@db:5432/app').env.PGPASSWORD // 'secret'
 * ```
 */
export function pgDumpInvocation(from: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const url = new URL(from)
  const password = url.password
    ? decodeURIComponent(url.password)
    : (url.searchParams.get('password') ?? undefined)
  url.password = ''
  url.searchParams.delete('password')
  const schemas = COPIED_SCHEMAS.map((schema) => `--schema=${schema}`)
  return {
    args: ['--schema-only', '--no-owner', '--no-privileges', ...schemas, url.toString()],
    env: password === undefined ? { ...process.env } : { ...process.env, PGPASSWORD: password },
  }
}

/**
 * Copies the schema (no rows) of the database at `from` into the database at `to` with pg_dump
 * --schema-only, which must be on the PATH and at least as new as the server. Only schemas
 * public and x402_migrations are copied, without owners or grants; `to` must already have the
 * Supabase pieces they refer to (the stand-in). pg_dump only reads `from`.
 *
 * @example
 * ```ts
 * await copySchema(process.env.DATABASE_URL!, scratchUrl)
 * ```
 */
export async function copySchema(from: string, to: string): Promise<void> {
  let dump: string
  try {
    const { args, env } = pgDumpInvocation(from)
    ;({ stdout: dump } = await run('pg_dump', args, { env, maxBuffer: 64 * 1024 * 1024 }))
  } catch (error) {
    const reason =
      (error as { stderr?: string }).stderr?.trim() ||
      (error instanceof Error ? error.message : String(error))
    throw new Error(
      `Copying the target's schema with pg_dump failed (${reason}). Install PostgreSQL's client tools at the server's version, ` +
        "or leave out --copy-schema to rehearse on the schema the module's migrations build.",
    )
  }
  const script = dump
    .split('\n')
    // psql's meta-commands (\restrict of recent pg_dump) are not SQL.
    .filter((line) => !line.startsWith('\\'))
    .map((line) => line.replace(/^CREATE SCHEMA (\S+);$/, 'CREATE SCHEMA IF NOT EXISTS $1;'))
    .join('\n')
  const client = new pg.Client(serverClientConfig(to))
  // A Ctrl-C drops the scratch database WITH (FORCE) meanwhile: its session's end must not crash the process.
  client.on('error', () => {})
  await client.connect()
  try {
    // One simple-protocol query: the dump is many statements.
    await client.query(script)
  } finally {
    await client.end()
  }
}
