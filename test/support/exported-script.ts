/*
 * Running an exported script (migrate:sql) as its users do: statement by statement as a client
 * sends it, or as one multi-statement query as the Supabase SQL Editor sends it.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { type Kysely, sql } from 'kysely'
import pg from 'pg'

/**
 * The script, statement by statement on one connection of `db` (after `prefix`, a setting
 * the test wants first); the error it ended with, or undefined. The connection is rolled back
 * and reset afterwards, so that the pool gets it back clean.
 *
 * @example
 * ```ts
 * const error = await runScriptByStatement(db, await exportMigrationSql('002', 'down'))
 * ```
 */
export async function runScriptByStatement(
  db: Kysely<any>,
  script: string,
  prefix = '',
): Promise<unknown> {
  return db
    .connection()
    .execute(async (connection) => {
      try {
        if (prefix) await sql.raw(prefix).execute(connection)
        for (const statement of script.split(/;\n\n/)) await sql.raw(statement).execute(connection)
      } finally {
        await sql`ROLLBACK`.execute(connection).catch(() => {})
        await sql`RESET ALL`.execute(connection).catch(() => {})
      }
    })
    .then(
      () => undefined,
      (caught: unknown) => caught,
    )
}

/**
 * The script as the SQL Editor runs it: one multi-statement query on a connection of its own.
 * Its SQLSTATE, or 'ok'.
 *
 * @example
 * ```ts
 * expect(await runScriptInOneQuery(url, script)).toBe('42501')
 * ```
 */
export async function runScriptInOneQuery(
  url: string,
  script: string,
  config: pg.ClientConfig = {},
): Promise<string> {
  const client = new pg.Client({ connectionString: url, ...config })
  await client.connect()
  try {
    await client.query(script)
    return 'ok'
  } catch (error) {
    return String((error as { code?: string }).code)
  } finally {
    await client.end()
  }
}

/**
 * The script as `psql -f` runs it, stopping at the first error (as the scripts of migrations
 * outside a transaction require). psql's stderr, or 'ok'.
 *
 * @example
 * ```ts
 * expect(await runScriptWithPsql(url, script)).toMatch(/ERROR: {2}42501/)
 * ```
 */
export async function runScriptWithPsql(url: string, script: string): Promise<string> {
  // From a file, as `psql -f` reads it: psql stops reading at the first error, and a script
  // larger than a pipe's buffer written to its stdin would then fail with EPIPE.
  return withScriptFile(script, async (file) => {
    try {
      await promisify(execFile)('psql', [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-v',
        'VERBOSITY=verbose',
        '-d',
        url,
        '-f',
        file,
      ])
      return 'ok'
    } catch (error) {
      return String((error as { stderr?: string }).stderr)
    }
  })
}

/**
 * Calls `use` with the path of a file of its own that holds `script`, removed afterwards.
 *
 * @example
 * ```ts
 * await withScriptFile(script, (file) => run('psql', ['-f', file]))
 * ```
 */
export async function withScriptFile<T>(
  script: string,
  use: (file: string) => Promise<T> | T,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'x402-script-'))
  try {
    const file = join(dir, 'script.sql')
    writeFileSync(file, script)
    return await use(file)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
