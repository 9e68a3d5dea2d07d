import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { sql } from 'kysely'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

import { createDb } from '../src/index.js'
import { killRunningScripts, startScript } from './support/script-process.js'

// The embedded database is opened on the folder its lock was taken on: a symlink in the path
// moved while a process holds the folder does not carry that process's writes into the folder
// the link points at now, which another process may hold.

const base = mkdtempSync(join(tmpdir(), 'x402-data-dir-path-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))
afterEach(killRunningScripts)

/** What `query` returns (its one column `v`) in the embedded database in `dataDir`. */
async function valueIn(dataDir: string, query: string): Promise<unknown> {
  const db = createDb({ dataDir })
  try {
    const { rows } = await sql.raw<{ v: unknown }>(query).execute(db)
    return rows[0]?.v
  } finally {
    await db.destroy()
  }
}

describe('an embedded database folder reached through a symlink', () => {
  it('keeps writing to the folder it holds after the link is moved, and the folder the link points at now stays whole', async () => {
    const place = mkdtempSync(join(base, 'switch-'))
    const [x, y, link] = [join(place, 'X'), join(place, 'Y'), join(place, 'L')]
    mkdirSync(x)
    mkdirSync(y)
    symlinkSync(x, link)

    const holder = startScript('test/support/pglite-late-writer.ts', [join(link, 'pg')], {})
    await holder.lineOn('stdout', 'paused')
    // A deploy's "current" switch: the link now points at Y.
    rmSync(link)
    symlinkSync(y, link)
    const other = await startScript('test/support/pglite-writer.ts', [join(y, 'pg'), 'B', '30'], {})
      .exited
    expect(other.stderr).toBe('')
    expect(other.stdout).toMatch(/committed B 29\ndestroyed\n$/)

    holder.child.stdin!.end()
    const done = await holder.exited
    expect(done.stdout).toBe('paused\nwrote\ndestroyed\n')

    expect(
      await valueIn(
        join(x, 'pg'),
        "SELECT string_agg(i::text, ',' ORDER BY i) AS v FROM holder_rows",
      ),
    ).toBe('1,2')
    expect(await valueIn(join(x, 'pg'), 'SELECT count(*)::int AS v FROM holder_after')).toBe(20000)
    expect(await valueIn(join(y, 'pg'), 'SELECT count(*)::int AS v FROM writer_rows')).toBe(30)
    expect(await valueIn(join(y, 'pg'), "SELECT to_regclass('holder_after')::text AS v")).toBeNull()
  })

  it('opens a data folder that is itself a symlink to a folder', async () => {
    const folder = mkdtempSync(join(base, 'target-'))
    const link = join(base, 'linked-data-dir')
    symlinkSync(folder, link)
    const db = createDb({ dataDir: link })
    try {
      await sql`CREATE TABLE through_link (i int)`.execute(db)
    } finally {
      await db.destroy()
    }
    expect(await valueIn(folder, "SELECT to_regclass('through_link')::text AS v")).toBe(
      'through_link',
    )
  })
})

// The app's data (the users' encrypted keys among it) is for the user the app runs as: the folders
// the module makes for it are private whatever the umask, as the template cache's are. A folder
// the user made is left as it is.
describe('a new embedded database folder', () => {
  it('is made readable by its owner only, with every folder made for it, under umask 022', async () => {
    const parent = join(mkdtempSync(join(base, 'umask-')), 'theirs')
    mkdirSync(parent, { mode: 0o755 })
    const made = join(parent, '.data')
    const dataDir = join(made, 'pglite')
    const before = process.umask(0o022)
    try {
      const db = createDb({ dataDir })
      try {
        await sql`SELECT 1`.execute(db)
      } finally {
        await db.destroy()
      }
    } finally {
      process.umask(before)
    }
    const mode = (folder: string) => (statSync(folder).mode & 0o777).toString(8)
    expect({ parent: mode(parent), made: mode(made), dataDir: mode(dataDir) }).toEqual({
      parent: '755',
      made: '700',
      dataDir: '700',
    })
  })
})
