#!/usr/bin/env -S node --liftoff-only
/**
 * `x402-db <command> [arguments]`, the module's command line (package.json "bin"; the npm
 * scripts run `node --liftoff-only bin/x402-db.mjs …`). `x402-db --help` lists the commands
 * (src/cli/command-list.ts); src/cli/dispatch.ts runs them, compiled, from dist/.
 *
 * dist/ is built by `npm install` (the prepare script) and built again here, incrementally
 * (`tsc --incremental`), when a file under src/ or a tsconfig has changed since: the commands
 * never transpile TypeScript at run time. `x402-db --build` only brings dist/ up to date.
 *
 * --liftoff-only, on the shebang line and in the npm scripts: PGlite is 10 MB of WebAssembly,
 * which V8 compiles quickly (Liftoff) and then again, optimised, on background threads
 * (TurboFan); for a command of a few seconds the second compile costs more CPU and memory than
 * it saves (opening an embedded database: 1.15 s and 324 MB with it, 1.02 s and 252 MB without).
 *
 * Plain JavaScript on purpose: it must run before anything is compiled.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import * as nodeModule from 'node:module'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = join(root, 'dist')
const stampFile = join(dist, '.build-stamp')
const lockDir = join(root, 'node_modules', '.cache', 'x402-jobs-db', 'build.lock')

/** The files dist/ is built from: every file under src/, and the tsconfigs. */
function sourceFiles() {
  const files = readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort()
  return [...files, join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json')]
}

/** A hash of the sources' paths, sizes and modification times: a stat each, no read. */
function statKey(files) {
  const hash = createHash('sha256')
  for (const file of files) {
    const { size, mtimeMs } = statSync(file)
    hash.update(`${file.slice(root.length)}\0${size}\0${mtimeMs}\n`)
  }
  return hash.digest('hex')
}

/** A hash of the sources' paths and contents, the same wherever they were copied or unpacked. */
function contentKey(files) {
  const hash = createHash('sha256')
  for (const file of files)
    hash
      .update(`${file.slice(root.length)}\0`)
      .update(readFileSync(file))
      .update('\0')
  return hash.digest('hex')
}

/**
 * Whether dist/ was built from the sources as they are. The modification times answer at the
 * cost of a stat per file; where they differ from the build's (a fresh checkout, an unpacked
 * package), the contents decide, and the stamp then takes the new times where it can be written.
 */
function isCurrent({ write = true } = {}) {
  let stamp
  try {
    stamp = JSON.parse(readFileSync(stampFile, 'utf8'))
  } catch {
    return false
  }
  const files = sourceFiles()
  const stats = statKey(files)
  if (stamp.stats === stats) return true
  if (stamp.contents !== contentKey(files)) return false
  if (!write) return true
  try {
    writeFileSync(stampFile, JSON.stringify({ ...stamp, stats }))
  } catch {
    // A read-only install: the contents are compared again next time.
  }
  return true
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** Builds dist/ with tsc unless it is current; one process builds while the others wait. */
async function ensureBuilt() {
  if (isCurrent()) return
  mkdirSync(join(lockDir, '..'), { recursive: true })
  for (let waited = 0; ; waited += 200) {
    try {
      mkdirSync(lockDir)
      break
    } catch (error) {
      if (error.code !== 'EEXIST') throw error
      // A build that died long ago left its lock: take it over.
      if (Date.now() - statSync(lockDir).mtimeMs > 300_000)
        rmSync(lockDir, { recursive: true, force: true })
      if (waited === 0) console.error('Waiting for another process that builds dist/…')
      sleep(200)
      if (isCurrent()) return
    }
  }
  try {
    if (isCurrent()) return
    let tsc
    try {
      tsc = nodeModule.createRequire(import.meta.url).resolve('typescript/bin/tsc')
    } catch {
      if (existsSync(join(dist, 'cli'))) {
        console.error(
          'dist/ is older than src/, and TypeScript is not installed to build it again: running dist/ as it is.',
        )
        return
      }
      throw new Error(
        'dist/ is missing and TypeScript is not installed: run npm install (it builds dist/).',
      )
    }
    // Taken before the build: an edit made while tsc runs leaves dist/ out of date, and rebuilt.
    const files = sourceFiles()
    const stamp = { stats: statKey(files), contents: contentKey(files) }
    console.error('Building dist/ from src/ (changed since the last build)…')
    rmSync(stampFile, { force: true })
    // Incremental: tsc re-emits what the change reaches. Its build info lives in dist/, so that
    // a deleted dist/ is built again in full.
    const built = spawnSync(
      process.execPath,
      [
        tsc,
        '-p',
        join(root, 'tsconfig.build.json'),
        '--incremental',
        '--tsBuildInfoFile',
        join(dist, '.tsbuildinfo'),
      ],
      { cwd: root, stdio: ['ignore', 2, 2] },
    )
    if (built.status !== 0) {
      throw new Error(
        'tsc could not build dist/ (its errors are above): fix them, or run `npm run typecheck` to see them all.',
      )
    }
    // The names and checksums of the migrations, for the no-op `migrate latest` that answers
    // without loading them (src/migrator/up-to-date-at-once.ts).
    const { writeMigrationManifest } = await import(
      pathToFileURL(join(dist, 'migrator', 'migration-manifest.js')).href
    )
    await writeMigrationManifest()
    // The manifest read the files after tsc did: an edit in between would give the built code
    // another text's checksums (review revt F1). Left unstamped, the next start builds again.
    if (contentKey(sourceFiles()) !== stamp.contents) {
      throw new Error(
        'src/ changed while dist/ was being built: run the command again to build it from the files as they are now.',
      )
    }
    writeFileSync(stampFile, JSON.stringify(stamp))
  } finally {
    rmSync(lockDir, { recursive: true, force: true })
  }
}

// Before anything that an older Node.js cannot run: a named import of what it lacks would
// fail as a SyntaxError that says nothing of the version. The minimum is package.json's engines.
const minimum = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node.replace(
  /^>=/,
  '',
)
const [major, minor] = process.versions.node.split('.').map(Number)
const [minMajor, minMinor] = minimum.split('.').map(Number)
if (major < minMajor || (major === minMajor && minor < minMinor)) {
  console.error(
    `This module needs Node.js ${minimum} or newer (package.json "engines"); this is ${process.version}. ` +
      'Install Node.js 22 LTS, or run with it first on PATH.',
  )
  process.exit(1)
}

// No V8 compile cache (module.enableCompileCache): Node.js checks an entry only by unkeyed CRCs
// and the source's length, so whoever could write the folder would run code in every command
// (review reva F2), and the user's cache folder is not trusted (docs/cache.md).

const args = process.argv.slice(2)
// npm keeps a --dry-run typed without `--` for itself and says so only in npm_config_dry_run:
// then the bin writes nothing, not even dist/, and dispatch decides which commands may run.
const dryRun = process.env.npm_config_dry_run?.trim().toLowerCase()
const npmDryRun = Boolean(dryRun) && dryRun !== 'false' && args[0] !== '--build'
if (npmDryRun && !isCurrent({ write: false })) {
  console.error(
    'x402-db refused: npm_config_dry_run is set (npm keeps a --dry-run typed without `--` for itself), and dist/ ' +
      'is older than src/, so running anything would first rebuild it. Nothing was done. Run `npm run build` first, ' +
      'then the command again (a dry run goes after `--`: npm run <script> -- --dry-run).',
  )
  process.exit(2)
}
try {
  if (!npmDryRun) await ensureBuilt()
} catch (error) {
  console.error(`build failed: ${error.message}`)
  process.exit(1)
}
if (args[0] !== '--build') {
  const { dispatch } = await import(pathToFileURL(join(dist, 'cli', 'dispatch.js')).href)
  const code = await dispatch(args)
  if (code !== undefined) process.exitCode = code
}
