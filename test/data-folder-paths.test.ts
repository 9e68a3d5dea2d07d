import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, afterEach, describe, expect, it } from 'vitest'

import { cli } from './support/cli.js'
import { killRunningScripts, startScript } from './support/script-process.js'

// The folders the module makes for itself (the embedded database's, the template cache's and its
// key's) where the path given cannot be made: Node's recursive mkdir (20 and 22) loops for ever
// on a path under /proc, where mkdir answers ENOENT and the parent exists (review F6). And the
// embedded database is never made in a folder that holds files of its own (review F7): the
// cluster's files would be mixed with the user's, as initdb refuses to.

const base = mkdtempSync(join(tmpdir(), 'x402-folder-paths-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))
afterEach(killRunningScripts)

// Under the tests' bound: a command that spins is killed, and the case fails with what it printed.
const BOUND_MS = 60_000
const unmakeable = `/proc/x402-never-${process.pid}/below`

describe('a folder the module must make, under /proc', () => {
  it('refuses PGLITE_DATA_DIR there, saying the folder could not be made', async () => {
    const run = await cli(['list'], { PGLITE_DATA_DIR: unmakeable }, undefined, BOUND_MS)
    expect(run.stderr).not.toContain('the test killed the command')
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain('could not be made')
    expect(run.stderr).toContain('PGLITE_DATA_DIR')
    // Said as what it is: no history was read, and none could be.
    expect(run.stderr).not.toContain('migration history')
  })

  it.each([['X402_DB_CACHE_DIR'], ['XDG_CONFIG_HOME']])(
    'migrates without the cache when %s is there',
    async (variable) => {
      const dataDir = join(base, `db-${variable}`)
      const run = await cli(
        ['latest'],
        {
          PGLITE_DATA_DIR: dataDir,
          X402_DB_CACHE_DIR: join(base, `cache-${variable}`),
          [variable]: unmakeable,
        },
        undefined,
        BOUND_MS,
      )
      expect(run.stderr).not.toContain('the test killed the command')
      expect(run.code, run.stderr).toBe(0)
      expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true)
    },
  )
})

describe('a PGLITE_DATA_DIR that holds files and no database', () => {
  it('is refused, naming what it holds, and nothing is written there', async () => {
    const folder = join(base, 'home-like')
    mkdirSync(folder, { mode: 0o700 })
    writeFileSync(join(folder, 'notes.txt'), 'mine\n', { mode: 0o600 })
    mkdirSync(join(folder, 'projects'), { mode: 0o700 })
    const run = await cli(['latest'], { PGLITE_DATA_DIR: folder })
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain('holds files and no database')
    expect(run.stderr).toContain('notes.txt')
    expect(run.stderr).not.toMatch(/\brm\b|delete|remove/i)
    expect(run.stderr).not.toContain('migration run failed')
    expect(readdirSync(folder).sort()).toEqual(['notes.txt', 'projects'])
    expect(readFileSync(join(folder, 'notes.txt'), 'utf8')).toBe('mine\n')
  })

  it('opens an empty folder made by the user', async () => {
    const folder = join(base, 'empty')
    mkdirSync(folder, { mode: 0o700 })
    const run = await cli(['latest'], { PGLITE_DATA_DIR: folder })
    expect(run.code, run.stderr).toBe(0)
    expect(existsSync(join(folder, 'PG_VERSION'))).toBe(true)
  })
})

/** Starts `migrate latest` on the new `folder` and kills it once the fill has begun, before it ends. */
async function killWhileFilling(folder: string): Promise<void> {
  const run = startScript('src/cli/migrate.ts', ['latest'], { PGLITE_DATA_DIR: folder })
  for (let polls = 0; polls < 600_000; polls++) {
    if (existsSync(join(folder, 'global')) || run.child.exitCode !== null) break
    await new Promise((resolve) => setImmediate(resolve))
  }
  await run.kill()
}

// Review of 2d48335 (helper-186): what the new rules still got wrong.
describe('review of the folder rules', () => {
  // R1: the template's PG_VERSION is among its last entries: a first start killed while it
  // filled the folder left the cluster's folders and no PG_VERSION, refused ever after.
  it('finishes a first start that was killed while it filled the folder', async () => {
    const folder = join(base, 'killed-fill')
    await killWhileFilling(folder)
    const left = readdirSync(folder)
    expect(left).toContain('global')
    expect(left).not.toContain('PG_VERSION')
    const again = await cli(['latest'], { PGLITE_DATA_DIR: folder })
    expect(again.code, again.stderr).toBe(0)
    expect(existsSync(join(folder, 'PG_VERSION'))).toBe(true)
  })

  it("keeps what is not the cluster's in a folder whose fill was interrupted, and refuses it", async () => {
    const folder = join(base, 'killed-fill-then-mine')
    await killWhileFilling(folder)
    writeFileSync(join(folder, 'notes.txt'), 'mine\n', { mode: 0o600 })
    const again = await cli(['latest'], { PGLITE_DATA_DIR: folder })
    expect(again.code).not.toBe(0)
    expect(again.stderr).toContain('notes.txt')
    expect(readFileSync(join(folder, 'notes.txt'), 'utf8')).toBe('mine\n')
  })

  // R1, the reviewer's second case: cut after PG_VERSION, the cluster is there but incomplete.
  it('clears and fills again a marked fill that got as far as PG_VERSION', async () => {
    const folder = join(base, 'cut-after-version')
    mkdirSync(join(folder, 'base'), { recursive: true, mode: 0o700 })
    writeFileSync(join(folder, 'PG_VERSION'), '17\n', { mode: 0o600 })
    writeFileSync(join(folder, 'x402-db.filling'), '', { mode: 0o600 })
    const run = await cli(['latest'], { PGLITE_DATA_DIR: folder })
    expect(run.code, run.stderr).toBe(0)
    expect(readdirSync(folder)).not.toContain('x402-db.filling')
    expect(existsSync(join(folder, 'global'))).toBe(true)
    // Set aside, not deleted.
    const aside = readdirSync(folder).filter((entry) => entry.startsWith('x402-db.interrupted-'))
    expect(aside).toHaveLength(1)
    expect(readdirSync(join(folder, aside[0]!)).sort()).toEqual(['PG_VERSION', 'base'])
  })

  // A mark put back over a database in use (by hand, by a restore) must not lose it.
  it('sets a database in use aside whole where a mark was put back over it', async () => {
    const folder = join(base, 'mark-over-data')
    expect((await cli(['latest'], { PGLITE_DATA_DIR: folder })).code).toBe(0)
    const before = readdirSync(join(folder, 'base')).sort()
    writeFileSync(join(folder, 'x402-db.filling'), '', { mode: 0o600 })
    const run = await cli(['latest'], { PGLITE_DATA_DIR: folder })
    expect(run.code, run.stderr).toBe(0)
    const aside = readdirSync(folder).filter((entry) => entry.startsWith('x402-db.interrupted-'))
    expect(aside).toHaveLength(1)
    expect(readdirSync(join(folder, aside[0]!, 'base')).sort()).toEqual(before)
    expect(run.stderr).toContain(`moved to ${aside[0]} inside it`)
  })

  it('refuses a mark that is not an empty file, and changes nothing', async () => {
    const folder = join(base, 'mark-not-file')
    mkdirSync(join(folder, 'x402-db.filling'), { recursive: true, mode: 0o700 })
    mkdirSync(join(folder, 'base'), { mode: 0o700 })
    const run = await cli(['latest'], { PGLITE_DATA_DIR: folder })
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain('not the empty file this module makes')
    expect(readdirSync(folder).sort()).toEqual(['base', 'x402-db.filling'])
  })

  // Review of the mark, F3: beside another file, the mark was reported as "no PG_VERSION" with
  // advice to move the database aside.
  it('names the mark, and moves nothing, where it lies beside entries no fill makes', async () => {
    const folder = join(base, 'mark-and-notes')
    expect((await cli(['latest'], { PGLITE_DATA_DIR: folder })).code).toBe(0)
    writeFileSync(join(folder, 'x402-db.filling'), '', { mode: 0o600 })
    writeFileSync(join(folder, 'NOTES.txt'), 'notes\n', { mode: 0o600 })
    const before = readdirSync(folder).sort()
    const run = await cli(['list'], { PGLITE_DATA_DIR: folder })
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain('the mark of a first start that was interrupted')
    expect(run.stderr).toContain('NOTES.txt')
    expect(run.stderr).not.toContain('no PG_VERSION')
    expect(readdirSync(folder).sort()).toEqual(before)
  })

  // R2: a refusal whose text held "Connection terminated" or "timeout expired" (a file's or the
  // folder's name) was printed as a server that cannot be reached.
  it('says an embedded folder refusal as it is, whatever names it quotes', async () => {
    const folder = join(base, 'timeout expired')
    mkdirSync(folder, { mode: 0o700 })
    writeFileSync(join(folder, 'Connection terminated.log'), '', { mode: 0o600 })
    const run = await cli(['list'], { PGLITE_DATA_DIR: folder })
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain('holds files and no database')
    expect(run.stderr).not.toContain('Cannot reach')
    expect(run.stderr).not.toContain('DATABASE_URL')
  })

  // R3: a file (or FIFO, or device) at the folder's path was taken for the folder, and refused
  // with advice to chmod it.
  it("refuses a file at the folder's path as not a folder", async () => {
    const file = join(base, 'a-file')
    writeFileSync(file, 'hello\n', { mode: 0o644 })
    const run = await cli(['list'], { PGLITE_DATA_DIR: file })
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain('is a file, not a folder')
    expect(run.stderr).not.toContain('chmod')
    expect(readFileSync(file, 'utf8')).toBe('hello\n')
  })

  // R4, R6: a dangling symbolic link and a loop gave Node's bare error.
  it.each([
    ['a symbolic link to nothing', 'dangling', join(base, 'nowhere', 'deeper')],
    ['a symbolic link loop', 'loop', 'loop'],
  ])('words %s in the path', async (_kind, name, target) => {
    const link = join(base, name)
    symlinkSync(target, link)
    const run = await cli(['list'], { PGLITE_DATA_DIR: join(link, 'db') })
    expect(run.code).not.toBe(0)
    expect(run.stderr).toMatch(/The embedded database folder .* could not be made/)
    expect(run.stderr).not.toContain('/proc')
  })

  // R5: "nothing was written" where a level had been made. The levels stay (removing them
  // races with another process making its folder there: review of the mark, F4), empty, and
  // the message says so.
  it('says that a level made above one that cannot be made stays, empty', async () => {
    const top = join(base, 'long')
    const run = await cli(['list'], { PGLITE_DATA_DIR: join(top, 'a'.repeat(300), 'db') })
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain('no file was written (a folder made above it stays, empty)')
    expect(readdirSync(top)).toEqual([])
  })

  // R7: entry names were printed whole, a key-shaped one included.
  it('shows no key-shaped or very long entry name in the refusal', async () => {
    const folder = join(base, 'secret-names')
    mkdirSync(folder, { mode: 0o700 })
    const key = 'sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef'
    writeFileSync(join(folder, key), '', { mode: 0o600 })
    writeFileSync(join(folder, 'A'.repeat(250)), '', { mode: 0o600 })
    const run = await cli(['list'], { PGLITE_DATA_DIR: folder })
    expect(run.stderr).toContain('holds files and no database')
    expect(run.stderr).not.toContain('sk-or-v1')
    expect(run.stderr).not.toContain('A'.repeat(100))
  })
})
