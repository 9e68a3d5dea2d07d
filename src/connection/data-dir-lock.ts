import { linkSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'

import { errorCode } from './sql-state.js'

/**
 * Claims a PGlite data folder for this process, and returns the function that gives it back.
 * PGlite has no locking of its own: two processes on one folder each keep their own copy in
 * memory and overwrite each other's writes, so a second opener is refused here instead. A lock
 * left by a process that no longer runs is taken over.
 *
 * The lock is `<real path of the folder>.lock`, so that every spelling of the folder (a trailing
 * slash, a symlink, `..`) meets the same lock. It appears whole or not at all: the holder's pid
 * is written to a file of its own, which is then hard-linked to the lock's name, an atomic step
 * that fails when the lock exists. A stale lock is removed only under a second, short-lived
 * lock (`.lock.takeover`), after reading it again there, so that two processes taking over the
 * same stale lock cannot remove each other's fresh one.
 *
 * @example
 * ```ts
 * const release = lockDataDir('.data/pglite') // throws while another process has it open
 * release()
 * ```
 */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true })
  const folder = realpathSync(dataDir)
  const lockFile = `${folder}.lock`
  for (let attempt = 0; attempt < 50; attempt++) {
    if (tryCreate(lockFile)) {
      const release = () => {
        process.removeListener('exit', release)
        // Only a lock that is still this process's own is removed.
        if (readHolder(lockFile) === process.pid) rmSync(lockFile, { force: true })
      }
      // A process that exits without destroying its Kysely instance still frees the folder.
      process.on('exit', release)
      return release
    }
    const holder = readHolder(lockFile)
    if (holder === process.pid) {
      throw new Error(
        `The embedded database at ${folder} is open already in this process, through another createDb() instance. ` +
          'A PGlite folder takes one instance at a time: share that instance, or await its destroy() before creating the next.',
      )
    }
    if (holder !== undefined && isRunning(holder)) {
      throw new Error(
        `The embedded database at ${folder} is open in process ${holder}. ` +
          'A PGlite folder can be open in one process at a time: stop that process, or point PGLITE_DATA_DIR at another folder.',
      )
    }
    removeStale(lockFile, holder)
  }
  throw new Error(`Could not claim the embedded database at ${folder}: its lock file ${lockFile} keeps reappearing.`)
}

/** Creates `lockFile` holding this process's pid, atomically; false when it exists. */
function tryCreate(lockFile: string): boolean {
  const draft = `${lockFile}.${process.pid}.${randomBytes(4).toString('hex')}`
  writeFileSync(draft, String(process.pid), { flag: 'wx' })
  try {
    linkSync(draft, lockFile)
    return true
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false
    throw error
  } finally {
    rmSync(draft, { force: true })
  }
}

/** The pid in a lock file; undefined when it is gone or unreadable. */
function readHolder(lockFile: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockFile, 'utf8'), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/**
 * Removes `lockFile` if it still names `stale`, under the takeover lock. A takeover lock left by
 * a process that died inside this short step is itself stale, and removed.
 */
function removeStale(lockFile: string, stale: number | undefined): void {
  const takeover = `${lockFile}.takeover`
  if (!tryCreate(takeover)) {
    const other = readHolder(takeover)
    if (other === undefined || !isRunning(other)) rmSync(takeover, { force: true })
    return
  }
  try {
    // Read again: between the first read and now, the stale lock may have been replaced.
    if (readHolder(lockFile) === stale && existsNow(lockFile)) rmSync(lockFile, { force: true })
  } finally {
    rmSync(takeover, { force: true })
  }
}

function existsNow(path: string): boolean {
  try {
    statSync(path)
    return true
  } catch {
    return false
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return errorCode(error) === 'EPERM'
  }
}
