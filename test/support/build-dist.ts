import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { migratedTemplate } from '../../src/templates/migrated-template.js'

/**
 * vitest's global setup, once before any test file runs: brings dist/ up to date, so that the
 * tests that run the commands as the npm scripts do (compiled, through bin/run.mjs) do not each
 * wait for a build; makes the template most test files start from (the latest migration), so
 * that the workers do not each make it at the same time on a fresh checkout; and points the
 * workers' temporary folders at memory where the machine has room (see memoryBackedTmpdir).
 */
export default async function setup(): Promise<() => void> {
  execFileSync(process.execPath, ['bin/run.mjs', '--build'], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: 'inherit' })
  await migratedTemplate('latest')
  const scratch = memoryBackedTmpdir()
  if (!scratch) return () => {}
  // The workers and the processes they start inherit it: every mkdtemp of the tests lands there.
  const previous = process.env.TMPDIR
  process.env.TMPDIR = scratch
  return () => {
    rmSync(scratch, { recursive: true, force: true })
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
  }
}

/** Free space a memory-backed folder must have to take the tests' databases (about 40 MB each). */
const MIN_FREE_BYTES = 2 * 1024 ** 3

/**
 * A new folder on /dev/shm (tmpfs), or undefined where there is none or it is small (a container
 * gives 64 MB by default). Each PGlite data folder of the tests is some thousand files and 40 MB,
 * written from a template, opened, and removed: on this machine's disk that took 1.6 s of mostly
 * system time per copy, on tmpfs 0.08 s (issue 14). The tests' data is thrown away anyway.
 */
function memoryBackedTmpdir(): string | undefined {
  const shm = '/dev/shm'
  try {
    const { bavail, bsize } = statfsSync(shm)
    if (bavail * bsize < MIN_FREE_BYTES) return undefined
    const folder = mkdtempSync(join(shm, 'x402-db-tests-'))
    // Open to all like /tmp (and sticky): PgBouncer runs as another user (postgres, when the
    // tests run as root) and must reach the folder the tests make for it inside.
    chmodSync(folder, 0o1777)
    return folder
  } catch {
    return undefined
  }
}
