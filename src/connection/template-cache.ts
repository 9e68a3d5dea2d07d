import { createHash, type Hash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync, gzipSync } from 'node:zlib'

import { sourceFingerprint } from '../../bin/source-fingerprint.mjs'
import { errorCode } from './sql-state.js'

/**
 * From src/connection and from dist/connection alike, two folders up is the package root:
 * the cache sits in its node_modules/.cache, where tools keep theirs.
 */
const DEFAULT_CACHE_DIR = fileURLToPath(new URL('../../node_modules/.cache/x402-jobs-db/', import.meta.url))

/**
 * The folder of the cached PGlite templates: X402_DB_CACHE_DIR, else
 * node_modules/.cache/x402-jobs-db in the package.
 *
 * @example
 * ```ts
 * templateCacheDir() // '/app/node_modules/.cache/x402-jobs-db'
 * ```
 */
export function templateCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.X402_DB_CACHE_DIR?.trim() || DEFAULT_CACHE_DIR
}

/**
 * Adds the code of the module's folders `folders` (such as 'migrator') to `hash`, for a cache key
 * that must change when that code does. The TypeScript sources are read, from src/ beside dist/
 * (the package ships both), so that the commands (compiled) and the tests (run from src/) make
 * the same key and share what they cache; but only where dist/ was built from src/ as it is now
 * (see compiledFromTheSources): otherwise, and where src/ is missing, the compiled files are, so
 * that what stale compiled code makes is never cached under the key of the edited sources.
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
    for (const folder of folders) {
      const [directory, extension] = runsFromSources()
        ? [fileURLToPath(new URL(`../../src/${folder}/`, import.meta.url)), '.ts']
        : [fileURLToPath(new URL(`../${folder}/`, import.meta.url)), '.js']
      for (const file of readdirSync(directory).sort()) {
        if (file.endsWith(extension) && !file.endsWith('.d.ts')) code.update(`${folder}/${file}\0`).update(readFileSync(join(directory, file))).update('\0')
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
 * up to eight when a template is made) hashed it again, from dist/ with the whole of src/.
 */
const codeDigests = new Map<string, string>()

/** Whether the code to hash is the sources in src/ (see hashModuleCode), decided once. */
function runsFromSources(): boolean {
  fromSources ??= fileURLToPath(import.meta.url).endsWith('.ts') || compiledFromTheSources()
  return fromSources
}

let fromSources: boolean | undefined

/**
 * Whether dist/, which this code runs from, was built from src/ as it is now: bin/run.mjs writes
 * the sources' fingerprint (bin/source-fingerprint.mjs, which both use) to
 * dist/.source-fingerprint when it builds. Not where src/ was edited since (an
 * app that imports dist/, or bin/run.mjs without TypeScript to build again), nor where src/ or
 * the fingerprint is missing (a package installed without them).
 */
function compiledFromTheSources(): boolean {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  try {
    return readFileSync(join(root, 'dist', '.source-fingerprint'), 'utf8') === sourceFingerprint(root)
  } catch {
    return false
  }
}

/**
 * The installed PGlite's version: a template made by one version is never loaded by another.
 *
 * @example
 * ```ts
 * pgliteVersion() // '0.4.6'
 * ```
 */
export function pgliteVersion(): string {
  return installedVersion('@electric-sql/pglite')
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
      const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { name?: string; version?: string }
      if (manifest.name === name && manifest.version) return manifest.version
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error
    }
    const parent = dirname(folder)
    if (parent === folder) throw new Error(`Cannot find the version of ${name}: is it installed? Run npm install.`)
    folder = parent
  }
}

/**
 * Reads the template stored under `key`, or undefined when there is none or it is damaged (see
 * readCacheFile).
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
    rmSync(file, { force: true })
    return undefined
  }
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
export async function writeTemplate(key: string, tarball: Blob, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  writeCacheFile(templateFileName(key), gzipSync(Buffer.from(await tarball.arrayBuffer()), { level: 1 }), env)
}

/**
 * The contents of the cache file `name`, or undefined when there is none or it is damaged: each
 * file carries the sha256 of its contents, which must match, so a truncated or altered file is
 * removed, to be made again, instead of trusted.
 *
 * @example
 * ```ts
 * const json = readCacheFile('reference-005_add_openrouter_integration-0123abcd.json')
 * ```
 */
export function readCacheFile(name: string, env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const file = cacheFile(name, env)
  let contents: Buffer
  try {
    contents = readFileSync(file)
  } catch {
    // Missing, or unreadable here (a read-only install): made afresh, as without a cache.
    return undefined
  }
  const body = contents.subarray(65)
  if (contents.subarray(0, 64).toString('latin1') !== createHash('sha256').update(body).digest('hex')) {
    rmSync(file, { force: true })
    return undefined
  }
  return body
}

/**
 * Stores `bytes` as the cache file `name`, with their sha256, atomically: a process reading the
 * cache at the same moment finds the whole file or none. A cache that cannot be written is not
 * an error.
 *
 * @example
 * ```ts
 * writeCacheFile('reference-005_add_openrouter_integration-0123abcd.json', Buffer.from(json))
 * ```
 */
export function writeCacheFile(name: string, bytes: Buffer, env: NodeJS.ProcessEnv = process.env): void {
  const file = cacheFile(name, env)
  const digest = createHash('sha256').update(bytes).digest('hex')
  const partial = `${file}.${process.pid}.partial`
  try {
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(partial, Buffer.concat([Buffer.from(`${digest}\n`, 'latin1'), bytes]))
    renameSync(partial, file)
  } catch {
    rmSync(partial, { force: true })
  }
}

function templateFileName(key: string): string {
  return `${key}.tgz`
}

function cacheFile(name: string, env: NodeJS.ProcessEnv): string {
  if (!/^[\w.-]+$/.test(name)) throw new Error(`A cache file's name is letters, digits, dots and dashes, not "${name}".`)
  return join(templateCacheDir(env), name)
}
