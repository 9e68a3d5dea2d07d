import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'

import { migrateTo } from '../src/tooling.js'
import { killRunningScripts, startScript } from './support/script-process.js'
import { createTestDatabase, type TestDatabase } from './support/test-database.js'

// On a terminal, a migration step that runs longer than 3 s is shown as it runs: the statement,
// the lock it waits for and who holds it, read from another connection. X402_DB_PROGRESS=always
// stands in for the terminal here (a test's stderr is a pipe). PostgreSQL only: on PGlite no
// other session can hold a lock, and the display is off.

const MIGRATION_007 = '007_openrouter_policies_per_supabase_advice'
const MIGRATION_008 = '008_close_supabase_advisor_findings'

describe.skipIf(!process.env.TEST_DATABASE_URL)('a slow migration step (PostgreSQL)', () => {
  let database: TestDatabase | undefined
  afterEach(async () => {
    await killRunningScripts()
    await database?.destroy()
  })

  /**
   * A new database at 007, and a session on it that holds ACCESS SHARE on x402_resources, which
   * 008 locks ACCESS EXCLUSIVE, and that ran `lastQuery` last.
   */
  async function blockedAt007(lastQuery?: string) {
    database = await createTestDatabase('postgres')
    await migrateTo(database.db, MIGRATION_007)
    const connectionString = (database.location as { connectionString: string }).connectionString
    const holder = new pg.Client({ connectionString })
    await holder.connect()
    await holder.query('BEGIN')
    await holder.query('LOCK TABLE x402_resources IN ACCESS SHARE MODE')
    const { rows } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    if (lastQuery !== undefined) await holder.query(lastQuery)
    const env = {
      DATABASE_URL: connectionString,
      MIGRATION_LOCK_TIMEOUT_MS: '120000',
      MIGRATION_LOCK_ATTEMPTS: '1',
    }
    return {
      env,
      holderPid: rows[0]!.pid,
      /** Until another session waits for a lock on x402_resources (the migration got there). */
      async migrationWaits() {
        for (let waited = 0; waited < 120_000; waited += 100) {
          const { rows: waiting } = await holder.query<{ count: number }>(
            "SELECT count(*)::int AS count FROM pg_locks WHERE relation = 'x402_resources'::regclass AND NOT granted",
          )
          if (waiting[0]!.count > 0) return
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        throw new Error('the migration never waited for x402_resources')
      },
      release: () => holder.query('ROLLBACK').then(() => holder.end()),
    }
  }

  it('stays quiet where stderr is no terminal', async () => {
    const blocked = await blockedAt007()
    const run = startScript('src/cli/migrate.ts', ['up'], blocked.env)
    try {
      await blocked.migrationWaits()
      // Past the 3 s after which a terminal would show the step.
      await new Promise((resolve) => setTimeout(resolve, 5000))
    } finally {
      await blocked.release()
    }
    const result = await run.exited
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).not.toContain('[db] ')
    expect(result.stderr).toMatch(new RegExp(`\\napplied  ${MIGRATION_008} in \\d+\\.\\d s\\n`))
  })

  it('shows the step, the lock it waits for and who holds it, then the time it took', async () => {
    const blocked = await blockedAt007()
    const run = startScript('src/cli/migrate.ts', ['up'], {
      ...blocked.env,
      X402_DB_PROGRESS: 'always',
    })
    let line: string
    try {
      await blocked.migrationWaits()
      line = await run.lineOn(
        'stderr',
        new RegExp(`^\\[db\\] ${MIGRATION_008} \\(up\\) running for \\d+ s: `),
      )
    } finally {
      await blocked.release()
    }
    expect(line).toContain('LOCK TABLE x402_resources IN ACCESS EXCLUSIVE MODE')
    expect(line).toContain(
      `waits for AccessExclusiveLock on x402_resources, held by pid ${blocked.holderPid} (idle in transaction, transaction open for `,
    )
    expect(line).toContain(': SELECT … (the rest not shown))')
    const result = await run.exited
    expect(result.code, result.stderr).toBe(0)
    // Once the lock came, the step ended, and so did the display.
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(
      new RegExp(`^applied  ${MIGRATION_008} in \\d+\\.\\d s$`),
    )
  })

  // Review N10-2: the blocking session's query was quoted (its first 60 characters): it is the
  // app's, not the operator's input, and may hold a key and terminal escape codes.
  it("names the holder's statement by its first keyword only, never its text", async () => {
    const key = `sk-or-v1-${'0123456789abcdef'.repeat(4)}`
    const blocked = await blockedAt007(
      `SELECT '${key}' AS key, '\x1b]0;pwned\x07\x1b[2J' AS screen`,
    )
    const run = startScript('src/cli/migrate.ts', ['up'], {
      ...blocked.env,
      X402_DB_PROGRESS: 'always',
    })
    try {
      await blocked.migrationWaits()
      await run.lineOn(
        'stderr',
        new RegExp(`^\\[db\\] ${MIGRATION_008} \\(up\\) running for \\d+ s: `),
      )
    } finally {
      await blocked.release()
    }
    const result = await run.exited
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).toContain(
      `held by pid ${blocked.holderPid} (idle in transaction, transaction open for `,
    )
    expect(result.stderr).toContain(': SELECT … (the rest not shown))')
    expect(result.stderr).not.toContain('sk-or-v1')
    expect(result.stderr).not.toContain('\x1b')
    expect(result.stderr).not.toContain('\x07')
  })
})
