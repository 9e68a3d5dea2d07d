import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  type Stats,
  writeFileSync,
} from 'node:fs'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { Worker } from 'node:worker_threads'

import { makeFolder } from './make-folder.js'
import { assertPrivateDataContents, assertPrivateDataFolder, userName } from './private-path.js'
import { isPlainFolder, shownFolder, shownShortOnTerminal } from './shown-argument.js'
import { errorCode } from './sql-state.js'

/**
 * The lock's file, inside the data folder: every path that reaches the folder (a symlink, `..`,
 * a bind mount or a container's volume at another path) reaches this one file. PostgreSQL
 * ignores files it does not know in its data directory, as it ignores its own postmaster.pid.
 */
export const LOCK_FILE_NAME = 'x402-db.lock'

/**
 * How often the holder sets its lock file's mtime to the current time, in ms: a refusal says how
 * long ago a holder elsewhere last did, for the person deciding whether it still runs.
 */
export const LOCK_REFRESH_MS = 5_000

/**
 * How long, in ms, the short-lived takeover lock (`<lock>.takeover`, held for a few file steps,
 * never while the folder is written) of another host or pid namespace may go unrefreshed before
 * it is stale: six missed refreshes.
 */
export const LOCK_STALE_AFTER_MS = 30_000

/**
 * The largest lock file read, in bytes: a lock holds a pid, a host name and a pid namespace. A
 * larger file at the lock's name is not a lock this module wrote.
 */
export const MAX_LOCK_FILE_BYTES = 4096

/**
 * Claims a PGlite data folder for this process, and returns the function that gives it back.
 * PGlite has no locking of its own: two processes on one folder each keep their own copy in
 * memory and overwrite each other's writes, so a second opener is refused here instead. A lock
 * left by a process that certainly no longer runs is taken over.
 *
 * The lock is a file inside the folder ({@link LOCK_FILE_NAME}), so that every path to the folder
 * meets it. It holds the holder's pid and where that pid means something (the host and the pid
 * namespace), and when the holder started (boot id and start time). Recorded in this host, pid
 * namespace and boot, the pid is checked, and a lock is stale only when its process has ended,
 * or the pid now belongs to a process that started at another time (given again after a kill):
 * a stopped holder (SIGSTOP, a debugger) keeps the folder. A pid from another host, namespace or
 * boot cannot be checked from here, and such a lock is never taken over, however old: a holder
 * stopped there in the middle of a statement (a PGlite statement cannot be interrupted) would
 * write it over the folder when continued. The refusal names the holder, since when it holds the
 * folder and when it last refreshed its lock (every {@link LOCK_REFRESH_MS}, from a worker thread
 * that runs on while a long statement holds the main one), and the lock file to remove once that
 * process has certainly ended. Only a lock file this user owns is trusted, in a folder this user
 * owns that its group may not write nor others use (0700 or 0750, PostgreSQL's rule for a data
 * directory; see assertPrivateDataFolder).
 *
 * It appears whole or not at all: it is written to a file of its own, which is then hard-linked
 * to the lock's name, an atomic step that fails when the lock exists. A stale lock is removed
 * only under a second, short-lived lock (`.takeover`), and only if it still holds, byte for
 * byte, what was found stale, and is stale still: two processes taking over the same stale lock
 * cannot remove each other's fresh one.
 *
 * A holder whose lock file was removed by hand while it ran has lost the folder:
 * `assertHeld` tells, before each thing it writes (see openPglite). Each lock holds a random
 * token of its own, so that a lock this process makes later (another createDb() on the folder)
 * is not taken for the lost one.
 *
 * @example
 * ```ts
 * const release = lockDataDir('.data/pglite') // throws while another process has it open
 * release.assertHeld() // throws once the lock is gone or another process's
 * release.folder // the folder's real path, to open it by
 * release()
 * ```
 */
export function lockDataDir(dataDir: string): DataDirLock {
  // Made private, with every folder made for it, whatever the umask: the app's data (the users'
  // encrypted keys among it) is for the user the app runs as, as the template cache is. A folder
  // that exists already, made by the user, is left as it is.
  const folder = madeFolder(dataDir)
  // Before anything is written there or read from it: PostgreSQL's rule for a data directory
  // (PGlite's is the folder itself).
  const folderStat = statSync(folder)
  if (!folderStat.isDirectory()) {
    throw new Error(
      `The embedded database folder ${shownFolder(dataDir)} is ${kindOf(folderStat)}, not a folder, and was not opened; ` +
        'nothing was written. Point PGLITE_DATA_DIR (or dataDir) at a folder, or at a path where one may be made.',
    )
  }
  assertPrivateDataFolder(folder, folderStat)
  const lockFile = join(folder, LOCK_FILE_NAME)
  const content = `${OWN_LOCK}${randomBytes(8).toString('hex')}\n`
  for (let attempt = 0; attempt < 50; attempt++) {
    if (tryCreate(lockFile, content)) {
      const refresher = refreshLock(lockFile, content)
      let lost: string | undefined
      const release = () => {
        process.removeListener('exit', release)
        void refresher.terminate()
        // Only this lock is removed, never what took its place.
        if (lost === undefined && readLock(lockFile) === content) rmSync(lockFile, { force: true })
      }
      const assertHeld = () => {
        lost ??= lostBecause(folder, lockFile, content)
        if (lost !== undefined) throw new Error(lost)
      }
      // A process that exits without destroying its Kysely instance still frees the folder.
      process.on('exit', release)
      // Its contents once the lock is held, when no process of this user changes them (a holder's
      // files come and go): before PGlite reads any of them. The lock's own files have their rule.
      try {
        assertPrivateDataContents(folder, folderStat, (entry) => entry.startsWith(LOCK_FILE_NAME))
      } catch (error) {
        release()
        throw error
      }
      return Object.assign(release, { assertHeld, folder })
    }
    const seen = readLock(lockFile)
    // Released (or taken over) between the two steps: claim it again. Never a reason to remove
    // what is there by now, which may be another process's fresh lock.
    if (seen === undefined) continue
    const holder = pidIn(seen)
    if (isOwnLock(seen)) {
      throw new Error(
        `The embedded database at ${shownFolder(folder)} is open already in this process, through another createDb() instance. ` +
          'A PGlite folder takes one instance at a time: share that instance, or await its destroy() before creating the next.',
      )
    }
    // The lock file's host line is whatever the file holds: shown escaped and cut.
    const place = shownShortOnTerminal(placeIn(seen))
    if (holder !== undefined && !canCheck(seen)) {
      // A holder whose pid this process cannot check may be stopped in the middle of a PGlite
      // statement, which nothing interrupts: continued, it writes that statement's pages and WAL
      // over whoever took the folder, and corrupts it. Its lock's age cannot tell it from one
      // that ended, so only a person who knows it ended may remove the lock.
      const ageS = Math.round((ageMs(lockFile) ?? 0) / 1000)
      const refreshed =
        ageS < 0
          ? `whose lock has a modification time ${-ageS} s in the future (clocks that differ, or a file set by hand)`
          : `which refreshed its lock ${ageS} s ago`
      const made = createdAt(lockFile)
      const boot = bootIn(seen)
      const where =
        placeIn(seen) === PLACE
          ? `was recorded on boot ${shownShortOnTerminal(boot ?? '')}, not this boot (${BOOT}): on another host of the same name, or on this one before it restarted`
          : 'runs on another host or in another pid namespace (a container)'
      throw new Error(
        `The embedded database at ${shownFolder(folder)} is open in process ${holder} on ${place}${made ? ` (its lock file was made at ${made})` : ''}, ` +
          `${refreshed}. That process ${where}, so this process cannot check whether it still runs, and does not take the folder ` +
          'over: a process stopped there would write over the folder when it ran again. Stop that process, or point PGLITE_DATA_DIR ' +
          `at another folder; if that process has certainly ended (its container or host is gone, or the machine restarted), ` +
          `remove the lock file ${shownLockFile(lockFile)} and run the command again.`,
      )
    }
    if (holder !== undefined && isLive(lockFile, seen)) {
      throw new Error(
        `The embedded database at ${shownFolder(folder)} is open in process ${holder}. ` +
          'A PGlite folder can be open in one process at a time: stop that process, or point PGLITE_DATA_DIR at another folder.',
      )
    }
    removeStale(lockFile, seen)
  }
  throw new Error(
    `Could not claim the embedded database at ${shownFolder(folder)}: its lock file ${shownLockFile(lockFile)} keeps reappearing.`,
  )
}

/**
 * `dataDir` made where it is missing (makeFolder: private, one level at a time), by its real
 * path; a refusal that names the level that failed, in words, where it cannot be made or
 * resolved.
 */
function madeFolder(dataDir: string): string {
  try {
    makeFolder(dataDir, 0o700)
    return realpathSync(dataDir)
  } catch (error) {
    const at = (error as { path?: string }).path ?? dataDir
    const code = errorCode(error) ?? String(error)
    const why =
      code === 'ENOENT' && hasLinkToNothing(at)
        ? 'a part of the path is a symbolic link to nothing'
        : MKDIR_FAILURES[code]
    throw new Error(
      `The embedded database folder ${shownFolder(dataDir)} could not be made: ${shownFolder(at)} failed ` +
        `with ${code}${why ? ` (${why})` : ''}; no file was written (a folder made above it stays, empty). Point ` +
        'PGLITE_DATA_DIR (or dataDir) at a folder you may create, such as one under the project or your home.',
      { cause: error },
    )
  }
}

/** What the usual failures of making or resolving a folder mean, in words. */
const MKDIR_FAILURES: Record<string, string> = {
  ENOTDIR: 'a part of the path is a file, not a folder',
  EACCES: 'this user may not write the folder above it',
  EPERM: 'the file system does not allow it',
  EROFS: 'the file system is read-only',
  ENOENT: 'the file system makes no folder there, as /proc does',
  ELOOP: 'a symbolic link in the path leads back to itself',
  ENAMETOOLONG: 'the path, or a part of it, is longer than the file system takes',
}

/** Whether a part of `path` (resolved) is a symbolic link whose target does not exist. */
function hasLinkToNothing(path: string): boolean {
  for (let level = resolve(path); dirname(level) !== level; level = dirname(level)) {
    try {
      if (lstatSync(level).isSymbolicLink() && !existsSync(level)) return true
    } catch {
      // Not there (a level below the link), or not to be looked at: the levels above tell.
    }
  }
  return false
}

/** What `stat` is, in words, where it is not a folder. */
function kindOf(stat: Stats): string {
  if (stat.isFIFO()) return 'a FIFO'
  if (stat.isSocket()) return 'a socket'
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device'
  return 'a file'
}

/**
 * A claimed folder: called, it gives the folder back. `assertHeld()` throws, saying what
 * happened and what to do, once its lock file is gone or holds another lock: another process
 * took the folder over, and this one must write nothing more there. Once lost, always lost.
 * `folder` is the folder claimed, by its real path (no symlink, no `..`): what the holder opens,
 * so that a symlink in the path it was given, moved while it holds the folder, cannot carry its
 * writes into another folder, which another process may hold.
 */
export type DataDirLock = (() => void) & { assertHeld(): void; readonly folder: string }

/**
 * Why `lockFile` is no longer this process's lock (`content`), for the error of each statement
 * refused; undefined while it is. One small read: it runs before each statement.
 */
function lostBecause(folder: string, lockFile: string, content: string): string | undefined {
  let found: string | undefined
  try {
    found = readLock(lockFile)
  } catch (error) {
    found = `unreadable: ${(error as Error).message}`
  }
  if (found === content) return undefined
  const after =
    `Nothing more is written to the folder by this process: this statement and every later one through ` +
    `this database fail, and destroy() lets it go without closing it (a close would write this process's ` +
    `state over the folder); what it had not committed is lost. Destroy this database, and open the folder ` +
    `again with createDb(), which refuses it while the other process holds it, as it refuses any opener.`
  // No process of this module takes over a lock whose holder may still run: one that is gone
  // was removed, by hand or by what the module does not know.
  const why =
    'its lock file was removed while this process held the folder (by hand, or by a program other than this module)'
  if (found === undefined)
    return `The embedded database at ${shownFolder(folder)} is no longer this process's: its lock file is gone; ${why}. ${after}`
  if (found.startsWith('unreadable: '))
    return `The embedded database at ${shownFolder(folder)} is no longer this process's: its lock file ${shownLockFile(lockFile)} is ${found}. ${after}`
  const holder = pidIn(found) ?? '(no pid)'
  const made = createdAt(lockFile)
  return (
    `The embedded database at ${shownFolder(folder)} is no longer this process's: it was taken over by process ${holder} ` +
    `on ${shownShortOnTerminal(placeIn(found))}${made ? ` (its lock file was made at ${made})` : ''}, ` +
    `after ${why}. ${after}`
  )
}

/** When `file` was made, as an ISO time, where the file system records it. */
function createdAt(file: string): string | undefined {
  try {
    const { birthtimeMs } = lstatSync(file)
    return birthtimeMs > 0 ? new Date(birthtimeMs).toISOString() : undefined
  } catch {
    return undefined
  }
}

/**
 * Sets the mtime of `lockFile` to the current time every LOCK_REFRESH_MS while it holds `content`
 * (this process's lock), from a worker thread that does not keep the process alive.
 */
function refreshLock(lockFile: string, content: string): Worker {
  const worker = new Worker(
    `const { closeSync, constants, fstatSync, futimesSync, openSync, readFileSync } = require('node:fs')
     const { workerData: { lockFile, content, every, most } } = require('node:worker_threads')
     setInterval(() => {
       let fd
       try {
         // As readLock reads it: what replaced the lock (a FIFO, a link) never blocks this thread.
         fd = openSync(lockFile, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
         const stat = fstatSync(fd)
         if (!stat.isFile() || stat.size > most || readFileSync(fd, 'utf8') !== content) return
         const now = new Date()
         futimesSync(fd, now, now)
       } catch {
       } finally {
         if (fd !== undefined) closeSync(fd)
       }
     }, every)`,
    {
      eval: true,
      // CommonJS whatever the process was started with: an inherited --input-type=module (node
      // --input-type=module -e …) would run it as a module, without require, and end the process.
      execArgv: [],
      workerData: { lockFile, content, every: LOCK_REFRESH_MS, most: MAX_LOCK_FILE_BYTES },
    },
  )
  worker.unref()
  return worker
}

/**
 * How long ago, in ms, `file` was last modified (negative for an mtime in the future); undefined
 * when it is gone.
 */
function ageMs(file: string): number | undefined {
  try {
    return Date.now() - lstatSync(file).mtimeMs
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    throw error
  }
}

/** Creates `lockFile` holding `content` (this process's pid first), atomically; false when it exists. */
function tryCreate(lockFile: string, content = OWN_LOCK): boolean {
  const draft = `${lockFile}.${process.pid}.${randomBytes(4).toString('hex')}`
  writeFileSync(draft, content, { flag: 'wx' })
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

/**
 * What a lock file holds; undefined when it is gone. Read as a small regular file, opened without
 * following a link and without blocking: a FIFO at the lock's name would block a plain read for
 * ever, and a link to /dev/zero would never end. Anything else there is refused, saying what it is.
 */
function readLock(lockFile: string): string | undefined {
  let fd: number
  try {
    fd = openSync(lockFile, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    // ELOOP: a symbolic link; ENXIO: a socket.
    if (errorCode(error) === 'ELOOP' || errorCode(error) === 'ENXIO') throw notALock(lockFile)
    throw error
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw notALock(lockFile)
    // Only a file this user wrote is a lock: another user's may name any live process (pid 1, with
    // its real start time), and would keep the folder locked for ever. Never removed here: it is
    // that user's file.
    const uid = process.getuid?.()
    if (uid !== undefined && stat.uid !== uid) {
      throw new Error(
        `The lock file ${shownLockFile(lockFile)} is owned by user ${userName(stat.uid)} (uid ${stat.uid}), not by ${userName(uid)} (uid ${uid}), ` +
          'the user this process runs as: a lock file another user wrote is not trusted, and the embedded database was not ' +
          'opened. If that user runs a process on this folder, wait for it to end; if not, have that user or an administrator ' +
          'check what wrote the file and remove it, then run the command again.',
      )
    }
    if (stat.size > MAX_LOCK_FILE_BYTES) {
      throw new Error(
        `The lock file ${shownLockFile(lockFile)} is ${stat.size} bytes, larger than any lock file (at most ${MAX_LOCK_FILE_BYTES}): ` +
          'it is not a lock this module wrote, and the embedded database was not opened. Check what wrote it, ' +
          'remove it, and run the command again.',
      )
    }
    return readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
}

/**
 * A lock file's path as a message shows it: whole where its folder plainly looks like a path
 * (a refusal asks to remove it), else its name in the folder as shownFolder says it.
 */
function shownLockFile(lockFile: string): string {
  return isPlainFolder(lockFile)
    ? lockFile
    : `${basename(lockFile)} in ${shownFolder(dirname(lockFile))}`
}

/** The refusal of something at a lock's name that is not a regular file, saying what it is. */
function notALock(lockFile: string): Error {
  let kind = 'something other than a file'
  try {
    const stat = lstatSync(lockFile)
    kind = stat.isSymbolicLink()
      ? 'a symbolic link'
      : stat.isFIFO()
        ? 'a FIFO'
        : stat.isDirectory()
          ? 'a folder'
          : stat.isSocket()
            ? 'a socket'
            : stat.isCharacterDevice() || stat.isBlockDevice()
              ? 'a device'
              : kind
  } catch {
    // Gone meanwhile: named by what it is not.
  }
  return new Error(
    `The lock file ${shownLockFile(lockFile)} is ${kind}, not a lock file (a regular file this module writes), and the embedded database ` +
      'was not opened. No process of this module put it there: check what did, remove it, and run the command again.',
  )
}

/** The pid in what a lock file holds; undefined when it holds none. */
function pidIn(content: string | undefined): number | undefined {
  const pid = Number.parseInt(content ?? '', 10)
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/**
 * Where this process's pid means something: the host, and on Linux the pid namespace (a
 * container has its own, where the same number is another process).
 */
const PLACE = `${hostname()} ${pidNamespace()}`

function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return ''
  }
}

/**
 * When a process started, as this boot's id and the process's start time in clock ticks since
 * boot (/proc/<pid>/stat): what a pid given again to a new process (after its holder was killed,
 * or after a reboot) does not share. Undefined where /proc cannot tell (not Linux, hidepid).
 */
function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name, in parentheses, may hold spaces and parentheses: the fields follow its last ")".
    const start = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')[19]
      ?.trim()
    return BOOT && start && /^\d+$/.test(start) ? `${BOOT} ${start}` : undefined
  } catch {
    return undefined
  }
}

const BOOT = (() => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return ''
  }
})()

/**
 * What this process's lock files begin with: its pid, its place, and when it started (startOf).
 * Each lock adds a token of its own (lockDataDir); the takeover lock holds this alone.
 */
const OWN_LOCK = `${process.pid}\n${PLACE}\n${startOf(process.pid) ?? ''}\n`

/** The place a lock file names (its second line); a lock without one is taken as this place's. */
function placeIn(content: string): string {
  return content.split('\n')[1]?.trim() || PLACE
}

/** The boot a lock file's holder started in (the first word of its third line), where it says. */
function bootIn(content: string): string | undefined {
  return content.split('\n')[2]?.trim().split(' ')[0] || undefined
}

/**
 * Whether this process can check the pid a lock file names: it was recorded in this host and pid
 * namespace, and in this boot (a host of the same name and namespace number has another boot).
 * A lock that records no start time was written in this boot, by what it claims.
 */
function canCheck(content: string): boolean {
  const boot = bootIn(content)
  return placeIn(content) === PLACE && (boot === undefined || boot === BOOT)
}

/**
 * Whether what a lock file holds is this process's own lock: its pid, place and start. A lock of
 * this pid and place but another start is a dead holder's: a container restarted after its pid 1
 * was killed can be given the same pid namespace number again.
 */
function isOwnLock(content: string | undefined): boolean {
  return content !== undefined && content.startsWith(OWN_LOCK)
}

/**
 * Whether `content`, read from the lock file `file`, names a process that runs: in this pid
 * namespace, by its pid; from another host or namespace, whose pid cannot be checked from here,
 * by the file's mtime. Only the takeover lock, held for a few file steps, is judged by its
 * mtime: lockDataDir refuses a folder lock it cannot check (canCheck) before asking here.
 */
function isLive(file: string, content: string): boolean {
  const pid = pidIn(content)
  if (pid === undefined) return false
  if (placeIn(content) === PLACE) {
    // A pid that runs, but started at another time than the holder did, is another process.
    const started = content.split('\n')[2]?.trim()
    const now = started ? startOf(pid) : undefined
    return isRunning(pid) && (now === undefined || now === started)
  }
  const age = ageMs(file)
  // An mtime far in the future shows no refresh: a clock far off, or a file set by hand.
  return age !== undefined && Math.abs(age) < LOCK_STALE_AFTER_MS
}

/**
 * Removes `file` if it still holds `seen`, the lock of a process that no longer runs, under the
 * takeover lock `<file>.takeover`, and says whether it did. Only a holder of the takeover lock
 * removes a lock it did not make, and the lock it reads there is the one it removes: a lock that
 * went and came back in the meantime holds a live pid, or a fresh mtime, and stays. A takeover
 * lock left by a process that died inside this short step is itself stale, and taken over the
 * same way, one level up; a busy one is waited for, briefly.
 */
function removeStale(file: string, seen: string): boolean {
  const takeover = `${file}.takeover`
  if (!tryCreate(takeover)) {
    const other = readLock(takeover)
    if (other !== undefined && !isLive(takeover, other)) removeStale(takeover, other)
    else Atomics.wait(pause, 0, 0, 2)
    return false
  }
  try {
    // Read again, and ask again: the pid may have been given to a new process since, or the
    // holder may have refreshed its lock.
    if (readLock(file) !== seen || isLive(file, seen)) return false
    rmSync(file, { force: true })
    return true
  } finally {
    rmSync(takeover, { force: true })
  }
}

/** Something to wait on, synchronously, for a few ms. */
const pause = new Int32Array(new SharedArrayBuffer(4))

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return errorCode(error) === 'EPERM'
  }
}
