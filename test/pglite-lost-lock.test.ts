import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { sql } from 'kysely'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

import { LOCK_FILE_NAME } from '../src/connection/data-dir-lock.js'
import { createDb } from '../src/index.js'
import { killRunningScripts, type ScriptProcess, startScript } from './support/script-process.js'

// No write without the lock, on the embedded database too: a holder whose folder lock was removed
// while it was stopped (by hand: no process of this module takes over a lock whose holder may
// still run) writes nothing more there when it runs again, and the rows of the process that
// claimed the folder meanwhile all stay.

const base = mkdtempSync(join(tmpdir(), 'x402-lost-lock-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))
afterEach(killRunningScripts)

const WRITER = 'test/support/pglite-writer.ts'

/**
 * Starts writer A on a new folder: it commits 5 rows, and waits to try 6 more. Then it is
 * stopped, and its lock file is removed, as a person who took it for a dead one's might.
 */
async function stoppedHolder(): Promise<{ dataDir: string; holder: ScriptProcess }> {
  const dataDir = mkdtempSync(join(base, 'db-'))
  const holder = startScript(WRITER, [dataDir, 'A', '5', '6'], {})
  await holder.lineOn('stdout', 'paused')
  process.kill(holder.child.pid!, 'SIGSTOP')
  rmSync(join(dataDir, LOCK_FILE_NAME))
  return { dataDir, holder }
}

/** Continues the stopped writer A, lets it try its 6 rows, and returns what it wrote once it has ended. */
async function resume(holder: ScriptProcess): Promise<{ code: number | null; later: string[] }> {
  process.kill(holder.child.pid!, 'SIGCONT')
  holder.child.stdin!.end()
  const { code, stdout } = await holder.exited
  return { code, later: stdout.split('\n').slice(stdout.split('\n').indexOf('paused') + 1, -1) }
}

async function rowsIn(dataDir: string): Promise<string[]> {
  const db = createDb({ dataDir })
  try {
    const { rows } = await sql<{
      row: string
    }>`SELECT who || ' ' || i AS row FROM writer_rows ORDER BY who, i`.execute(db)
    return rows.map(({ row }) => row)
  } finally {
    await db.destroy()
  }
}

const rows = (who: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, k) => `${who} ${from + k}`)

describe('an embedded database whose folder lock was removed while it ran', () => {
  it('refuses every later statement of the old holder, and keeps all the rows of the process that claimed the folder since', async () => {
    const { dataDir, holder } = await stoppedHolder()
    const taker = await startScript(WRITER, [dataDir, 'B', '30'], {}).exited
    expect(taker.stderr).toBe('')
    expect(taker.stdout).toBe(
      [...rows('B', 0, 30).map((row) => `committed ${row}`), 'destroyed', ''].join('\n'),
    )

    const { code, later } = await resume(holder)
    expect(code).toBe(0)
    expect(later).toEqual([
      ...rows('refused', 5, 11).map((row) =>
        expect.stringMatching(
          new RegExp(
            `^${row} The embedded database at .+ is no longer this process's: its lock file is gone`,
          ),
        ),
      ),
      'destroyed',
    ])

    expect(await rowsIn(dataDir)).toEqual([...rows('A', 0, 5), ...rows('B', 0, 30)])
  })

  it('names the process that holds the folder now, which goes on writing', async () => {
    const { dataDir, holder } = await stoppedHolder()
    const taker = startScript(WRITER, [dataDir, 'B', '30', '4'], {})
    await taker.lineOn('stdout', 'paused')

    const { code, later } = await resume(holder)
    expect(code).toBe(0)
    expect(later).toEqual([
      ...rows('refused', 5, 11).map((row) =>
        expect.stringMatching(
          new RegExp(
            `^${row} The embedded database at .+ is no longer this process's: it was taken over by process ${taker.child.pid} on `,
          ),
        ),
      ),
      'destroyed',
    ])

    taker.child.stdin!.end()
    const done = await taker.exited
    expect(done.stdout).toMatch(/committed B 33\ndestroyed\n$/)
    expect(await rowsIn(dataDir)).toEqual([...rows('A', 0, 5), ...rows('B', 0, 34)])
  })
})
