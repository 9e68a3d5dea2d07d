import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { migrationNames } from '../../src/migrations/index.js'
import { migratedTemplate } from '../../src/migrated-dumps/migrated-template.js'

/**
 * vitest's global setup, once before any test file runs: brings dist/ up to date, so that the
 * tests that run the commands as the npm scripts do (compiled, through bin/x402-db.mjs) do not each
 * wait for a build; makes the template of each migration, which the test files start from, so
 * that the workers do not each make them at the same time on a fresh checkout (through the
 * sources, which the tests run, and through dist/, which the commands run: each keys them by its
 * own code); and points the workers' temporary folders at a folder of the run, removed after it
 * (see runTmpdir).
 */
export default async function setup(): Promise<() => void> {
  execFileSync(process.execPath, ['bin/x402-db.mjs', '--build'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: 'inherit',
  })
  // Each from the one before, so that making them all on a new checkout is one run of the
  // migrations (see migratedTemplate).
  for (const name of migrationNames) await migratedTemplate(name)
  // The commands run compiled, and key their templates by the compiled code: made here too, once.
  execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "const { migratedTemplate } = await import('./dist/migrated-dumps/migrated-template.js'); " +
        "const { migrationNames } = await import('./dist/migrations/index.js'); " +
        'for (const name of migrationNames) await migratedTemplate(name)',
    ],
    { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: 'inherit' },
  )
  const scratch = runTmpdir()
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
 * A new folder for the run's temporary files: on /dev/shm (tmpfs) where it has `minFreeBytes`
 * free, and otherwise (no /dev/shm, or a small one: a container gives 64 MB by default) in the
 * system's temporary folder. Each PGlite data folder of the tests is some thousand files and
 * 40 MB, written from a template, opened, and removed: on this machine's disk that took 1.6 s of
 * mostly system time per copy, on tmpfs 0.08 s. Made either way, and removed after the
 * run: the seed folders that test databases are copied from (test/support/test-database.ts) are
 * left to it, and would otherwise stay behind in the system's temporary folder.
 *
 * @example
 * ```ts
 * process.env.TMPDIR = runTmpdir()
 * ```
 */
export function runTmpdir(shm = '/dev/shm', minFreeBytes = MIN_FREE_BYTES): string {
  const folder = mkdtempSync(join(hasRoom(shm, minFreeBytes) ? shm : tmpdir(), 'x402-db-tests-'))
  // Open to all like /tmp (and sticky): PgBouncer runs as another user (postgres, when the
  // tests run as root) and must reach the folder the tests make for it inside.
  chmodSync(folder, 0o1777)
  return folder
}

function hasRoom(folder: string, minFreeBytes: number): boolean {
  try {
    const { bavail, bsize } = statfsSync(folder)
    return bavail * bsize >= minFreeBytes
  } catch {
    return false
  }
}
