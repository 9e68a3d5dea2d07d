#!/usr/bin/env node
/**
 * What the npm scripts run: `node bin/run.mjs <command> [arguments]` runs the compiled command
 * dist/cli/<command>.js in this same process, with the arguments after the command name.
 * dist/ is built by `npm install` (the prepare script) and built again here, once, when a file
 * under src/ (or a tsconfig) has changed since: the commands never transpile TypeScript at run
 * time. `node bin/run.mjs --build` only brings dist/ up to date.
 *
 * Plain JavaScript on purpose: it must run before anything is compiled.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import * as nodeModule from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { sourceFingerprint } from './source-fingerprint.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = join(root, 'dist')
const stampFile = join(dist, '.source-fingerprint')
const lockDir = join(root, 'node_modules', '.cache', 'x402-jobs-db', 'build.lock')

function isCurrent(fingerprint) {
  return existsSync(stampFile) && readFileSync(stampFile, 'utf8') === fingerprint
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** Builds dist/ with tsc unless it is current; one process builds while the others wait. */
function ensureBuilt() {
  const fingerprint = sourceFingerprint(root)
  if (isCurrent(fingerprint)) return
  mkdirSync(join(lockDir, '..'), { recursive: true })
  for (let waited = 0; ; waited += 200) {
    try {
      mkdirSync(lockDir)
      break
    } catch (error) {
      if (error.code !== 'EEXIST') throw error
      // A build that died long ago left its lock: take it over.
      if (Date.now() - statSync(lockDir).mtimeMs > 300_000) rmSync(lockDir, { recursive: true, force: true })
      if (waited === 0) console.error('Waiting for another process that builds dist/…')
      sleep(200)
      if (isCurrent(sourceFingerprint(root))) return
    }
  }
  try {
    const current = sourceFingerprint(root)
    if (isCurrent(current)) return
    let tsc
    try {
      tsc = nodeModule.createRequire(import.meta.url).resolve('typescript/bin/tsc')
    } catch {
      if (existsSync(join(dist, 'cli'))) {
        console.error('dist/ is older than src/, and TypeScript is not installed to build it again: running dist/ as it is.')
        return
      }
      throw new Error('dist/ is missing and TypeScript is not installed: run npm install (it builds dist/).')
    }
    console.error('Building dist/ from src/ (changed since the last build)…')
    rmSync(dist, { recursive: true, force: true })
    const built = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: ['ignore', 2, 2] })
    if (built.status !== 0) {
      throw new Error('tsc could not build dist/ (its errors are above): fix them, or run `npm run typecheck` to see them all.')
    }
    writeFileSync(stampFile, current)
  } finally {
    rmSync(lockDir, { recursive: true, force: true })
  }
}

// Before anything that an older Node.js cannot run: a named import of what it lacks would
// fail as a SyntaxError that says nothing of the version. The minimum is package.json's engines.
const minimum = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node.replace(/^>=/, '')
const [major, minor] = process.versions.node.split('.').map(Number)
const [minMajor, minMinor] = minimum.split('.').map(Number)
if (major < minMajor || (major === minMajor && minor < minMinor)) {
  console.error(`This module needs Node.js ${minimum} or newer (package.json "engines"); this is ${process.version}. Install Node.js 22 LTS, or run with it first on PATH.`)
  process.exit(1)
}

// V8's code cache for the modules loaded below (kysely alone is some thousand files): a run
// after the first skips compiling them again. In the user's cache folder, as the templates: an
// installed package may be read-only, and writes nothing into itself. Node.js skips the cache
// where the folder cannot be written.
const userCache = process.env.XDG_CACHE_HOME?.trim() || join(homedir(), '.cache')
nodeModule.enableCompileCache?.(join(userCache, 'x402-jobs-db', 'compile-cache'))

// PGlite is 10 MB of WebAssembly. V8 compiles it quickly (Liftoff), then compiles its hot
// functions again, optimised, on background threads (TurboFan): for a command of a few seconds
// that second compile costs more than it saves. Measured (issue 14): opening an embedded
// database 1.15 s and 324 MB with it, 1.02 s and 252 MB without; lint:sql 22 CPU-s against 10.
// Only the commands run here: an app that imports the module keeps V8's defaults.
setFlagsFromString('--liftoff-only')
// A command that closes one embedded database and opens another frees the first's memory in
// between (releaseClosedDatabases in src/connection/open-pglite.ts), with V8's collector: the
// flag exposes it to contexts made from now on, such as this one.
setFlagsFromString('--expose-gc')
globalThis.gc ??= runInNewContext('gc')

const [command, ...args] = process.argv.slice(2)
try {
  ensureBuilt()
} catch (error) {
  console.error(`build failed: ${error.message}`)
  process.exit(1)
}
if (command && command !== '--build') {
  const script = join(dist, 'cli', `${command}.js`)
  if (!/^[\w-]+$/.test(command) || !existsSync(script)) {
    console.error(`no command "${command}" in dist/cli: see the scripts in package.json.`)
    process.exit(1)
  }
  // The command reads its arguments from process.argv, as when it is run directly.
  process.argv = [process.argv[0], script, ...args]
  await import(pathToFileURL(script).href)
}
