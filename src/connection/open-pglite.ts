import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { basename, join } from 'node:path'

import type { PGlite } from '@electric-sql/pglite'

import { DatabaseNotOpenedError } from './database-not-opened-error.js'
import { type DataDirLock, lockDataDir } from './data-dir-lock.js'
import { shownEntry, shownFolder } from './shown-argument.js'
import { PgliteMissingError } from './pglite-missing-error.js'
import { IN_MEMORY } from './in-memory.js'
import { pgliteVersion, readTemplate, writeTemplate } from './template-cache.js'

export { IN_MEMORY } from './in-memory.js'

/**
 * Opens the embedded database in `dataDir` (or in memory), loading PGlite only now: the
 * commands that never use it do not pay for it. A database that does not exist yet starts from
 * `template` (a data-directory dump) when given, and otherwise from a dump of an empty cluster,
 * made once per PGlite version and cached, instead of running initdb each time. A folder is
 * claimed for this process while it is open (see lockDataDir).
 *
 * @example
 * ```ts
 * const pglite = await openPglite('.data/pglite')
 * ```
 */
export async function openPglite(dataDir: string, template?: () => Promise<Blob>): Promise<PGlite> {
  const { PGlite } = await loadPglite()
  const options = pgliteOptions(PGlite.defaultStartParams)
  if (dataDir === IN_MEMORY)
    return new PGlite({ ...options, loadDataDir: await (template ?? emptyClusterTemplate)() })

  let lock: DataDirLock
  try {
    lock = lockDataDir(dataDir)
  } catch (error) {
    throw DatabaseNotOpenedError.of(error)
  }
  // The folder by its real path, as the lock resolved it once: opened by the path it was given,
  // PGlite would follow a symlink in it anew at each file it opens, into another folder (which
  // another process may hold) once the link is moved; and a dataDir that is itself a symlink to
  // a folder would not open at all (PGlite's file system takes it for a file).
  const folder = lock.folder
  const filling = join(folder, FILLING_MARK)
  try {
    // By lstat: a mark that is a link (to nothing, even) is looked at, and refused.
    if (readdirSync(folder).includes(FILLING_MARK)) setAsideInterruptedFill(folder)
    if (existsSync(join(folder, 'PG_VERSION')) && !shutDownCleanly(folder)) {
      // Left open by a process that ended without close(): on the recovery that follows, PGlite
      // re-arms the same timer for ever. Recovered by an instance of its own, closed at once
      // (a clean shutdown), the folder is then opened as after a close().
      const recovering = new PGlite(folder, options)
      try {
        await recovering.waitReady
      } finally {
        await recovering.close()
      }
    } else if (!existsSync(join(folder, 'PG_VERSION'))) {
      assertNothingElseIn(folder)
      // Filled from the template by an instance of its own, closed at once, and then opened from
      // the folder: on a cluster it loaded from a dump, PGlite re-arms a timer (its 10 s
      // statistics timeout) for ever, which keeps a process that never calls destroy() alive;
      // opened from its folder, it arms it once. Marked while it fills: a fill cut short (a
      // kill, a crash) leaves part of a cluster, with or without PG_VERSION (among the dump's
      // last entries), which the next opener clears and fills again.
      writeFileSync(filling, '', { flag: 'wx', mode: 0o600 })
      const filler = new PGlite(folder, {
        ...options,
        loadDataDir: await (template ?? emptyClusterTemplate)(),
      })
      try {
        await filler.waitReady
      } finally {
        await filler.close()
      }
      rmSync(filling)
    }
    const pglite = new PGlite(folder, options)
    fenceWrites(pglite, lock)
    return pglite
  } catch (error) {
    lock()
    throw error
  }
}

/**
 * The mark of a fill under way (openPglite), in the data folder: made only in a folder that held
 * nothing else (assertNothingElseIn), by the holder of its lock, and removed once the fill has
 * closed. Where it is found, what a cluster's entries are there was made by that fill, as far as
 * the module knows: a mark put back by hand or by a restore could say so of a database in use.
 */
const FILLING_MARK = 'x402-db.filling'

/**
 * What the module keeps in the data folder beside the cluster, which the empty-folder rule
 * leaves out: its lock files (LOCK_FILE_NAME and those beside it), the fill's mark, and
 * interrupted fills set aside.
 */
const MODULE_ENTRY = 'x402-db.'

/** The entries of a cluster's data directory, as a fill from the template makes them. */
const CLUSTER_ENTRY =
  /^(PG_VERSION|base|global|pg_[a-z_]+|pg_hba\.conf|pg_ident\.conf|postgresql(\.auto)?\.conf|postmaster\.(opts|pid))$/

/**
 * Sets aside what an interrupted fill of `folder` made (see FILLING_MARK), in a folder of its own
 * inside it (`x402-db.interrupted-<time>`), and removes the mark, so that the fill starts again.
 * Moved, never deleted: where the mark lied (put back by hand, or by a restore over a database in
 * use), the database is all there, to be moved back. Where anything else is there too (put there
 * since), nothing is moved, and the folder is refused, naming it. A mark that is not an empty
 * file is not the module's, and is refused.
 */
function setAsideInterruptedFill(folder: string): void {
  const mark = join(folder, FILLING_MARK)
  const stat = lstatSync(mark)
  if (!stat.isFile() || stat.size !== 0) {
    throw new DatabaseNotOpenedError(
      `The embedded database folder ${shownFolder(folder)} holds ${FILLING_MARK}, which is not the empty file this ` +
        'module makes there while it fills a new database; it was not opened, and nothing was changed. Check what ' +
        'put it there, and move it out of the folder; then run the command again.',
    )
  }
  const entries = readdirSync(folder).filter((entry) => !entry.startsWith(MODULE_ENTRY))
  const others = entries.filter((entry) => !CLUSTER_ENTRY.test(entry))
  if (others.length > 0) {
    throw new DatabaseNotOpenedError(
      `The embedded database folder ${shownFolder(folder)} holds ${FILLING_MARK}, the mark of a first start that ` +
        `was interrupted, beside entries no fill makes: ${others.slice(0, 5).map(shownEntry).join(', ')}` +
        `${others.length > 5 ? ` and ${others.length - 5} more` : ''}. It was not opened, and nothing was changed. ` +
        `If the folder holds a database in use, the mark is stale (put back by a restore, or by hand): move ` +
        `${FILLING_MARK} out of the folder and run the command again. If not, move those entries out instead.`,
    )
  }
  const aside = join(
    folder,
    `${MODULE_ENTRY}interrupted-${new Date().toISOString().replace(/[:.]/g, '-')}`,
  )
  mkdirSync(aside, { mode: 0o700 })
  for (const entry of entries) renameSync(join(folder, entry), join(aside, entry))
  rmSync(mark)
  // Said, not silent: where the mark lied, the data is in the folder set aside.
  console.warn(
    `[db] The embedded database at ${shownFolder(folder)} was left half made by an interrupted first start: ` +
      `what it wrote was moved to ${shownEntry(basename(aside))} inside it, and a new database is made. If that ` +
      'folder held data, stop the app and move its entries back in place of the new ones.',
  )
}

/**
 * Refuses to make a database in `folder` (claimed, without a cluster) where it holds anything but
 * the lock's files: the cluster's files would be mixed with what is there (a home folder, a
 * project named by mistake), as initdb refuses a non-empty data directory for. Nothing is
 * written there.
 */
function assertNothingElseIn(folder: string): void {
  const found = readdirSync(folder).filter((entry) => !entry.startsWith(MODULE_ENTRY))
  if (found.length === 0) return
  const shown = found.slice(0, 5).map(shownEntry).join(', ')
  throw new DatabaseNotOpenedError(
    `The embedded database folder ${shownFolder(folder)} holds files and no database (it has no PG_VERSION): ` +
      `${shown}${found.length > 5 ? ` and ${found.length - 5} more` : ''}. A new embedded database is made only in an ` +
      'empty folder, so that its files are never mixed with others, and nothing was written there. Point ' +
      'PGLITE_DATA_DIR (or dataDir) at a new or empty folder. If these entries are what an interrupted first start ' +
      'left (PostgreSQL folders such as base, global, pg_wal), move them aside and run the command again.',
  )
}

/**
 * Makes `pglite` write nothing more to its folder once `lock` is lost (its lock file was removed
 * while it ran, and another process may have claimed the folder since; see lockDataDir). PGlite on a Node folder writes through to its files as it runs
 * (Emscripten's NODEFS: its WAL at each commit, its pages when evicted), and close() shuts
 * PostgreSQL down, which checkpoints: its pages and pg_control, over the new holder's. So the lock
 * is checked before each protocol message PGlite runs (execProtocolRawSync, which every query,
 * exec and transaction of PGlite goes through, the module's and embeddedDatabase()'s alike), and a
 * lost instance is never closed, only let go. Only a simple BEGIN, and the Sync after it, pass
 * unchecked: they write nothing, and Kysely's PGlite driver waits for ever on a transaction whose
 * BEGIN failed; the first statement in the transaction is refused instead.
 */
function fenceWrites(pglite: PGlite, lock: DataDirLock): void {
  const run = pglite.execProtocolRawSync.bind(pglite)
  let afterBegin = false
  pglite.execProtocolRawSync = (message: Uint8Array) => {
    const unchecked = isSimpleBegin(message) || (afterBegin && message[0] === SYNC)
    afterBegin = isSimpleBegin(message)
    if (!unchecked) lock.assertHeld()
    return run(message)
  }
  // Kysely's destroy() closes the instance: that is when the folder is free again.
  const close = pglite.close.bind(pglite)
  pglite.close = async () => {
    try {
      lock.assertHeld()
    } catch {
      lock()
      return
    }
    await close().finally(lock)
  }
}

const SYNC = 'S'.charCodeAt(0)

/** The protocol message of PGlite's `exec('BEGIN')`: a simple query, 'Q', of the text BEGIN. */
const SIMPLE_BEGIN = Uint8Array.from([0x51, 0, 0, 0, 10, ...Buffer.from('BEGIN\0', 'latin1')])

function isSimpleBegin(message: Uint8Array): boolean {
  return (
    message.length === SIMPLE_BEGIN.length && message.every((byte, i) => byte === SIMPLE_BEGIN[i])
  )
}

/**
 * Whether the cluster in `dataDir` was shut down cleanly, as its pg_control says: its state, the
 * 4-byte word after the system identifier and the two version numbers, is DB_SHUTDOWNED (1).
 * Unreadable means no: a recovery then costs one more open, never a wrong answer.
 */
function shutDownCleanly(dataDir: string): boolean {
  try {
    return readFileSync(join(dataDir, 'global', 'pg_control')).readUInt32LE(16) === 1
  } catch {
    return false
  }
}

/**
 * The embedded database's shared_buffers. PostgreSQL's default, 128MB, is sized for a server;
 * in PGlite it is WebAssembly memory that the process keeps for its whole life, a third of a
 * command's peak memory (measured: 406 MB to open a database in memory, 296 MB with 16MB). A
 * developer's database and the scratch databases fit in it many times over.
 */
export const PGLITE_SHARED_BUFFERS = '16MB'

/**
 * The options every PGlite instance of the module is opened with: PGlite's own start parameters
 * (`PGlite.defaultStartParams`, which replacing them would lose) and a smaller shared_buffers.
 *
 * @example
 * ```ts
 * new PGlite(dataDir, pgliteOptions(PGlite.defaultStartParams))
 * ```
 */
export function pgliteOptions(defaultStartParams: readonly string[]): { startParams: string[] } {
  return { startParams: [...defaultStartParams, '-c', `shared_buffers=${PGLITE_SHARED_BUFFERS}`] }
}

/**
 * A dump of a new, empty PGlite cluster (what initdb makes), from the cache, or made now and
 * cached: loading it takes a fraction of initdb's time.
 *
 * @example
 * ```ts
 * new PGlite({ loadDataDir: await emptyClusterTemplate() })
 * ```
 */
export async function emptyClusterTemplate(): Promise<Blob> {
  const key = `empty-cluster-pglite-${pgliteVersion()}`
  const cached = readTemplate(key)
  if (cached) return cached
  const { PGlite } = await loadPglite()
  const fresh = new PGlite(pgliteOptions(PGlite.defaultStartParams))
  try {
    const tarball = await fresh.dumpDataDir('none')
    await writeTemplate(key, tarball)
    return tarball
  } finally {
    await fresh.close()
  }
}

/**
 * PGlite's module, loaded on first use. Its bundle creates errors at load time (async-mutex's),
 * and V8 keeps the async stack of each until it is printed: the objects of every function that
 * awaited the load (the first Kysely driver, its PGlite instance, 170 MB of WebAssembly memory)
 * stayed reachable for the life of the process. Resolving through a plain callback ends that
 * stack at this function.
 */
function loadPglite(): Promise<typeof import('@electric-sql/pglite')> {
  pgliteModule ??= new Promise((resolve, reject) => {
    import('@electric-sql/pglite').then(
      (module) => resolve(module),
      (error: unknown) => reject(PgliteMissingError.from(error) ?? error),
    )
  })
  return pgliteModule
}

let pgliteModule: Promise<typeof import('@electric-sql/pglite')> | undefined
