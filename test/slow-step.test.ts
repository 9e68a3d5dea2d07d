import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'

import { killRunningScripts, startScript } from './support/script-process.js'
import { useTestDatabase } from './support/test-database.js'

// On a terminal, a migration step that runs longer than 3 s is shown as it runs: the statement,
// the lock it waits for and who holds it, read from another connection. X402_DB_PROGRESS=always
// stands in for the terminal here (a test's stderr is a pipe). PostgreSQL only: on PGlite no
// other session can hold a lock, and the display is off.

const MIGRATION_007 = '007_openrouter_policies_per_supabase_advice'
const MIGRATION_008 = '008_close_supabase_advisor_findings'

describe.skipIf(!process.env.TEST_DATABASE_URL)('a slow migration step (PostgreSQL)', () => {
  const database = useTestDatabase('postgres', MIGRATION_007)
  afterEach(killRunningScripts)

  /** A session that holds ACCESS SHARE on x402_resources, which 008 must lock ACCESS EXCLUSIVE. */
  async function holdResources(): Promise<{ pid: number; release: () => Promise<void> }> {
    const client = new pg.Client({ connectionString: (database.location as { connectionString: string }).connectionString })
    await client.connect()
    await client.query('BEGIN')
    await client.query('LOCK TABLE x402_resources IN ACCESS SHARE MODE')
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    return { pid: rows[0]!.pid, release: () => client.query('ROLLBACK').then(() => client.end()) }
  }

  const env = (extra: NodeJS.ProcessEnv) => ({
    DATABASE_URL: (database.location as { connectionString: string }).connectionString,
    MIGRATION_LOCK_TIMEOUT_MS: '60000',
    MIGRATION_LOCK_ATTEMPTS: '1',
    ...extra,
  })

  it('stays quiet where stderr is no terminal', async () => {
    const holder = await holdResources()
    const run = startScript('src/cli/migrate.ts', ['up'], env({}))
    try {
      await new Promise((resolve) => setTimeout(resolve, 5000))
    } finally {
      await holder.release()
    }
    const result = await run.exited
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).not.toContain('[db] ')
    expect(result.stderr).toMatch(new RegExp(`\\napplied  ${MIGRATION_008} in \\d+\\.\\d s\\n`))
    // Back to 007 for the next test.
    const down = startScript('src/cli/migrate.ts', ['down'], env({}))
    expect((await down.exited).code).toBe(0)
  })

  it('shows the step, the lock it waits for and who holds it, then the time it took', async () => {
    const holder = await holdResources()
    const run = startScript('src/cli/migrate.ts', ['up'], env({ X402_DB_PROGRESS: 'always' }))
    let line: string
    try {
      line = await run.lineOn('stderr', new RegExp(`^\\[db\\] ${MIGRATION_008} \\(up\\) running for \\d+ s: `))
    } finally {
      await holder.release()
    }
    expect(line).toContain('LOCK TABLE x402_resources IN ACCESS EXCLUSIVE MODE')
    expect(line).toContain(`waits for AccessExclusiveLock on x402_resources, held by pid ${holder.pid} (idle in transaction, transaction open for `)
    const result = await run.exited
    expect(result.code, result.stderr).toBe(0)
    // Once the lock came, the step ended, and so did the display.
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^applied  ${MIGRATION_008} in \\d+\\.\\d s$`))
  })
})
