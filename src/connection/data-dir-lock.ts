import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'

import { errorCode } from './sql-state.js'

/**
 * Claims a PGlite data folder for this process, and returns the function that gives it back.
 * PGlite has no locking of its own: two processes on one folder each keep their own copy in
 * memory and overwrite each other's writes, so a second opener is refused here instead. A lock
 * left by a process that no longer runs is taken over.
 *
 * @example
 * ```ts
 * const release = lockDataDir('.data/pglite') // throws while another process has it open
 * release()
 * ```
 */
export function lockDataDir(dataDir: string): () => void {
  const lockFile = `${dataDir}.lock`
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      const release = () => {
        process.removeListener('exit', release)
        rmSync(lockFile, { force: true })
      }
      // A process that exits without destroying its Kysely instance still frees the folder.
      process.on('exit', release)
      return release
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error
      const holder = Number.parseInt(readFileSync(lockFile, 'utf8'), 10)
      if (holder === process.pid) {
        throw new Error(
          `The embedded database at ${dataDir} is open already in this process, through another createDb() instance. ` +
            'A PGlite folder takes one instance at a time: share that instance, or await its destroy() before creating the next.',
        )
      }
      if (isRunning(holder)) {
        throw new Error(
          `The embedded database at ${dataDir} is open in process ${holder}. ` +
            'A PGlite folder can be open in one process at a time: stop that process, or point PGLITE_DATA_DIR at another folder.',
        )
      }
      rmSync(lockFile, { force: true })
    }
  }
  throw new Error(`Could not claim the embedded database at ${dataDir}: its lock file ${lockFile} keeps reappearing.`)
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return errorCode(error) === 'EPERM'
  }
}
