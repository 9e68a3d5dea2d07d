import { chmodSync, lstatSync, mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

import { errorCode } from './sql-state.js'

/**
 * Makes `path` and the folders above it that do not exist, each with `mode` (less the umask), as
 * `mkdirSync(path, { recursive: true, mode })` does, but one level at a time, from the deepest
 * that exists: Node's recursive mkdir (libuv's, in Node 20 and 22) loops for ever where mkdir
 * answers ENOENT under a parent that exists, as every path under /proc does. Here such a level
 * throws mkdir's own error, which names it. The levels made above it stay, empty: removed, they
 * could be the levels another process is making its own folder in at that moment. Each level
 * made has exactly `mode`, whatever the umask. A level made meanwhile by another process is
 * taken as it is.
 *
 * @example
 * ```ts
 * makeFolder('.data/pglite', 0o700)
 * ```
 */
export function makeFolder(path: string, mode: number): void {
  const missing: string[] = []
  for (let level = resolve(path); !exists(level); level = dirname(level)) {
    missing.unshift(level)
    if (dirname(level) === level) break
  }
  for (const level of missing) {
    try {
      mkdirSync(level, { mode })
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error
      continue
    }
    // Exactly `mode`, whatever the umask: a umask that took the owner's write bit (0277) would
    // leave a level the next one cannot be made in.
    chmodSync(level, mode)
  }
}

/** Whether something (a folder, a file, a link, even a broken one) is at `path`. */
function exists(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false
    throw error
  }
}
