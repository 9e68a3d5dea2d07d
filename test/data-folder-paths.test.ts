import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { cli } from './support/cli.js'

// The folders the module makes for itself (the embedded database's, the template cache's and its
// key's) where the path given cannot be made: Node's recursive mkdir (20 and 22) loops for ever
// on a path under /proc, where mkdir answers ENOENT and the parent exists (review F6). And the
// embedded database is never made in a folder that holds files of its own (review F7): the
// cluster's files would be mixed with the user's, as initdb refuses to.

const base = mkdtempSync(join(tmpdir(), 'x402-folder-paths-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))

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
