import { createHash, createHmac, type Hash, randomBytes, timingSafeEqual } from 'node:crypto'
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync, gzipSync } from 'node:zlib'

import { makeFolder } from './make-folder.js'
import { PgliteMissingError } from './pglite-missing-error.js'
import { notPrivate } from './private-path.js'
import { errorCode } from './sql-state.js'

/**
 * The folder of the cached PGlite templates and of what is derived from them (schema
 * references): X402_DB_CACHE_DIR, else `x402-jobs-db/templates` in the user's cache folder
 * (XDG_CACHE_HOME, else ~/.cache). Never inside the installed package, which may be read-only
 * or shared.
 *
 * @example
 * ```ts
 * templateCacheDir() // '/home/me/.cache/x402-jobs-db/templates'
 * ```
 */
export function templateCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env.X402_DB_CACHE_DIR?.trim()
  if (chosen) return chosen
  return join(
    env.XDG_CACHE_HOME?.trim() || join(homeOf(env), '.cache'),
    'x402-jobs-db',
    'templates',
  )
}

/**
 * The file of the key that authenticates this user's cache entries: `x402-jobs-db/cache.key` in
 * the user's config folder (XDG_CONFIG_HOME, else ~/.config), never beside the entries: whoever
 * can write the cache folder (a shared X402_DB_CACHE_DIR, a CI cache restored from a fork) can
 * give a file a valid checksum, but cannot read this key.
 *
 * @example
 * ```ts
 * cacheKeyFile() // '/home/me/.config/x402-jobs-db/cache.key'
 * ```
 */
export function cacheKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(
    env.XDG_CONFIG_HOME?.trim() || join(homeOf(env), '.config'),
    'x402-jobs-db',
    'cache.key',
  )
}

function homeOf(env: NodeJS.ProcessEnv): string {
  return env.HOME?.trim() || homedir()
}

/**
 * Adds the code of the module's folders `folders` (such as 'migrator') to `hash`, for a cache key
 * that must change when that code does: the code that runs, the TypeScript in src/ where the
 * module runs from its sources (the tests), the JavaScript in dist/ where it runs compiled (the
 * commands, an app). Each keys what it makes by itself, so that what one made is never cached
 * under the key of the other, which may be other code.
 *
 * @example
 * ```ts
 * hashModuleCode(createHash('sha256'), ['migrator', 'supabase'])
 * ```
 */
export function hashModuleCode(hash: Hash, folders: readonly string[]): Hash {
  const id = folders.join('\0')
  let digest = codeDigests.get(id)
  if (digest === undefined) {
    const code = createHash('sha256')
    const extension = fileURLToPath(import.meta.url).endsWith('.ts') ? '.ts' : '.js'
    for (const folder of folders) {
      const directory = fileURLToPath(new URL(`../${folder}/`, import.meta.url))
      for (const file of readdirSync(directory).sort()) {
        if (file.endsWith(extension) && !file.endsWith('.d.ts'))
          code
            .update(`${folder}/${file}\0`)
            .update(readFileSync(join(directory, file)))
            .update('\0')
      }
    }
    digest = code.digest('hex')
    codeDigests.set(id, digest)
  }
  return hash.update(digest)
}

/**
 * The digests of the folders hashed so far in this process, by folder list: the code that runs
 * does not change while the process lives, and every template key (several per test database,
 * up to eight when a template is made) would hash it again.
 */
const codeDigests = new Map<string, string>()

/**
 * The installed PGlite's version: a template made by one version is never loaded by another.
 *
 * @example
 * ```ts
 * pgliteVersion() // '0.4.6'
 * ```
 */
export function pgliteVersion(): string {
  try {
    return installedVersion('@electric-sql/pglite')
  } catch (error) {
    throw PgliteMissingError.from(error) ?? error
  }
}

/**
 * The version of the installed package `name`, as this module resolves it: what a cached result
 * depends on besides the module's own code.
 *
 * @example
 * ```ts
 * installedVersion('kysely') // '0.29.9'
 * ```
 */
export function installedVersion(name: string): string {
  const require = createRequire(import.meta.url)
  let folder = dirname(require.resolve(name))
  for (;;) {
    try {
      const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as {
        name?: string
        version?: string
      }
      if (manifest.name === name && manifest.version) return manifest.version
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error
    }
    const parent = dirname(folder)
    if (parent === folder)
      throw new Error(`Cannot find the version of ${name}: is it installed? Run npm install.`)
    folder = parent
  }
}

/**
 * Reads the template stored under `key`, or undefined when there is none, when this user did not
 * write it (see readCacheFile), or when it holds no tarball: the caller then makes it again.
 *
 * @example
 * ```ts
 * const tarball = readTemplate('base-0.4.6') // a Blob for PGlite's loadDataDir, or undefined
 * ```
 */
export function readTemplate(key: string, env: NodeJS.ProcessEnv = process.env): Blob | undefined {
  const name = templateFileName(key)
  const file = cacheFile(name, env)
  let version: string
  try {
    // A process that starts many databases (a test worker) reads and checks each file once.
    const { size, mtimeMs, ino } = statSync(file)
    version = `${file}:${ino}:${size}:${mtimeMs}`
  } catch {
    return undefined
  }
  const known = verified.get(version)
  if (known) return known
  const tarball = readCacheFile(name, env)
  if (!tarball) return undefined
  let unpacked: Buffer
  try {
    // Unpacked here, natively: PGlite loads a plain tarball faster than it unpacks a gzipped one.
    unpacked = gunzipSync(tarball)
  } catch {
    return undefined
  }
  // What PGlite's dumpDataDir makes: a tar archive, whose first header says "ustar". Anything
  // else would fail inside PGlite, in every database started from it.
  if (unpacked.subarray(257, 262).toString('latin1') !== 'ustar') return undefined
  const blob = new Blob([unpacked])
  verified.set(version, blob)
  return blob
}

const verified = new Map<string, Blob>()

/**
 * Stores `tarball` (a plain tarball, as dumpDataDir('none') makes) under `key`, gzipped here
 * (see writeCacheFile). Natively and at level 1: 0.2 s for a 40 MB dump, where PGlite's own gzip
 * took 0.7 s, for a file 15% larger.
 *
 * @example
 * ```ts
 * await writeTemplate('base-0.4.6', await pglite.dumpDataDir('none'))
 * ```
 */
export async function writeTemplate(
  key: string,
  tarball: Blob,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (!cacheKey(env)) return
  writeCacheFile(
    templateFileName(key),
    gzipSync(Buffer.from(await tarball.arrayBuffer()), { level: 1 }),
    env,
  )
}

/**
 * The contents of the cache file `name`, or undefined when there is none, or when its first line
 * is not the HMAC of its name and contents under this user's key (see cacheKeyFile): a file
 * that another user, a restored CI cache or a damaged write left is never trusted, and the
 * caller makes it again. Without a usable key, nothing is read.
 *
 * @example
 * ```ts
 * const json = readCacheFile('reference-005_add_openrouter_integration-0123abcd.json')
 * ```
 */
export function readCacheFile(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Buffer | undefined {
  const key = cacheKey(env)
  if (!key) return undefined
  const contents = readRegularFile(cacheFile(name, env))
  if (!contents) return undefined
  const body = contents.subarray(65)
  const found = Buffer.from(contents.subarray(0, 64).toString('latin1'), 'hex')
  const expected = authenticate(key, name, body)
  return contents[64] === 0x0a &&
    found.length === expected.length &&
    timingSafeEqual(found, expected)
    ? body
    : undefined
}

/**
 * Stores `bytes` as the cache file `name`, with their HMAC under this user's key (see
 * readCacheFile), atomically: a process reading the cache at the same moment finds the whole
 * file or none. The cache is best-effort: without a usable key, or where the folder cannot be
 * written, nothing is stored, and nothing fails.
 *
 * @example
 * ```ts
 * writeCacheFile('reference-005_add_openrouter_integration-0123abcd.json', Buffer.from(json))
 * ```
 */
export function writeCacheFile(
  name: string,
  bytes: Buffer,
  env: NodeJS.ProcessEnv = process.env,
): void {
  const key = cacheKey(env)
  if (!key) return
  const file = cacheFile(name, env)
  const partial = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.partial`
  try {
    makeFolder(dirname(file), 0o700)
    // 'wx' never writes through a file or a link someone else put at that name.
    writeFileSync(
      partial,
      Buffer.concat([
        Buffer.from(`${authenticate(key, name, bytes).toString('hex')}\n`, 'latin1'),
        bytes,
      ]),
      { flag: 'wx', mode: 0o600 },
    )
    renameSync(partial, file)
  } catch {
    try {
      rmSync(partial, { force: true })
    } catch {
      // The folder is not there, or not a folder: nothing was written.
    }
  }
}

/** The largest cache entry read: a template of the whole schema is a few megabytes. */
const MAX_ENTRY_BYTES = 256 * 1024 * 1024

/**
 * The bytes of `file` where it is a regular file of bounded size, else undefined. Opened without
 * following a link and without blocking, so that a FIFO or a device planted at an entry's name
 * is a miss rather than a read that never ends.
 */
function readRegularFile(file: string): Buffer | undefined {
  let fd: number
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch {
    // Missing, a link, or unreadable here: made afresh, as without a cache.
    return undefined
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile() || stat.size > MAX_ENTRY_BYTES) return undefined
    return readFileSync(fd)
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

function authenticate(key: Buffer, name: string, body: Buffer): Buffer {
  return createHmac('sha256', key).update(name).update('\0').update(body).digest()
}

/**
 * This user's cache key (see cacheKeyFile), made on first use, or undefined where it cannot be
 * made or is not private: a regular file of this user, readable and writable by no one else.
 * Read once per process and file.
 */
function cacheKey(env: NodeJS.ProcessEnv): Buffer | undefined {
  const file = cacheKeyFile(env)
  if (!keys.has(file)) keys.set(file, readKey(file) ?? makeKey(file))
  return keys.get(file)
}

const keys = new Map<string, Buffer | undefined>()

const KEY_BYTES = 32

/**
 * The key in `file`, or undefined where it is missing or not usable (see cacheKey). Opened as the
 * entries are (see readRegularFile): a FIFO or a device planted at its name makes the cache
 * unused, never a command that waits forever.
 */
function readKey(file: string): Buffer | undefined {
  let fd: number
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile() || notPrivate(stat, 0o077) !== undefined || stat.size !== KEY_BYTES)
      return undefined
    const key = Buffer.alloc(KEY_BYTES)
    return readFileSync(fd).copy(key) === KEY_BYTES ? key : undefined
  } finally {
    closeSync(fd)
  }
}

/**
 * Makes the key file, whole or not at all (a draft linked to its name, which fails where another
 * process made it first: its key is then read), or undefined where the config folder cannot be
 * written, or a key file is there but not usable.
 */
function makeKey(file: string): Buffer | undefined {
  const draft = `${file}.${process.pid}.${randomBytes(6).toString('hex')}`
  try {
    makeFolder(dirname(file), 0o700)
    writeFileSync(draft, randomBytes(KEY_BYTES), { flag: 'wx', mode: 0o600 })
    try {
      linkSync(draft, file)
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') return undefined
    }
    return readKey(file)
  } catch {
    return undefined
  } finally {
    try {
      rmSync(draft, { force: true })
    } catch {
      // Nothing was written.
    }
  }
}

function templateFileName(key: string): string {
  return `${key}.tgz`
}

function cacheFile(name: string, env: NodeJS.ProcessEnv): string {
  if (!/^[\w.-]+$/.test(name))
    throw new Error(`A cache file's name is letters, digits, dots and dashes, not "${name}".`)
  return join(templateCacheDir(env), name)
}
