import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { pgDumpSkipReason } from './support/pg-dump.js'
import { withTestDatabase } from './support/test-database.js'

// Review revk K2: `migrate:plan -- --copy-schema` stopped (Ctrl-Z stops its process group) while
// pg_dump waited for a table's lock: pg_dump, stopped with it, then held that lock in an open
// transaction with no bound (pg_dump sets the session's timeouts to 0, and the module's bound is
// a timer of the stopped process). pg_dump runs in a process group of its own, writing a file,
// so it finishes, and its transaction ends, whatever becomes of the process that started it.

const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip
const root = fileURLToPath(new URL('..', import.meta.url))

/** Polls `check` every 200 ms until it holds, or `ms` have passed; whether it held. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await sleep(200)
  }
  return check()
}

postgres('a stopped --copy-schema', () => {
  it('leaves no pg_dump transaction open on the target', async (context) => {
    await withTestDatabase('postgres', async ({ location }) => {
      const url = (location as { connectionString: string }).connectionString
      // CI's PostgreSQL 17 pass, where the machine's pg_dump is 15: it refuses the server.
      const reason = await pgDumpSkipReason(url)
      if (reason) return context.skip(reason)
      const blocker = new pg.Client({ connectionString: url })
      const watcher = new pg.Client({ connectionString: url })
      await blocker.connect()
      await watcher.connect()
      const dumpSessions = async (): Promise<Array<{ state: string; wait: string | null }>> =>
        (
          await watcher.query<{ state: string; wait: string | null }>(
            `SELECT state, wait_event_type AS wait FROM pg_stat_activity
              WHERE application_name = 'pg_dump' AND datname = current_database()`,
          )
        ).rows
      // Its own process group, as a terminal's job: stopped as a whole, as Ctrl-Z stops it.
      let child: ReturnType<typeof spawn> | undefined
      try {
        await blocker.query('CREATE TABLE public.zz_busy (id int)')
        await blocker.query('BEGIN')
        await blocker.query('LOCK TABLE public.zz_busy IN ACCESS EXCLUSIVE MODE')
        child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            '-e',
            `import { dumpSchema } from './src/rehearsal/copy-schema.ts'; await dumpSchema(${JSON.stringify(url)})`,
          ],
          { cwd: root, detached: true, stdio: 'ignore' },
        )
        const waiting = await eventually(
          async () => (await dumpSessions()).some((session) => session.wait === 'Lock'),
          30_000,
        )
        expect(waiting).toBe(true)
        process.kill(-child.pid!, 'SIGSTOP')
        await blocker.query('COMMIT')
        const ended = await eventually(async () => (await dumpSessions()).length === 0, 30_000)
        expect({ ended, sessions: await dumpSessions() }).toEqual({ ended: true, sessions: [] })
      } finally {
        if (child?.pid) {
          for (const signal of ['SIGKILL', 'SIGCONT'] as const) {
            try {
              process.kill(-child.pid, signal)
            } catch {
              // gone already
            }
          }
        }
        await blocker.end()
        await watcher.end()
      }
    })
  })
})
