import { existsSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { runTmpdir } from './support/build-dist.js'

// The tests' temporary folders, the seed folders that test databases are copied from among
// them (test/support/test-database.ts: 40 MB each, one per template and worker, never removed
// by the tests themselves), live in one folder of the run, removed after it. Where /dev/shm is
// missing or small (a container's 64 MB, macOS), that folder must still be made, elsewhere:
// otherwise the seeds landed in the system's temporary folder and stayed there after every run.

describe('the run’s temporary folder', () => {
  it('is made on the memory-backed folder where it has room', () => {
    const folder = runTmpdir('/dev/shm', 0)
    try {
      expect(dirname(folder)).toBe('/dev/shm')
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  })

  it('is made in the system’s temporary folder where there is no memory-backed one, to be removed all the same', () => {
    const folder = runTmpdir(join(tmpdir(), 'no-such-shm'))
    try {
      expect(existsSync(folder)).toBe(true)
      expect(dirname(folder)).toBe(tmpdir())
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  })
})
