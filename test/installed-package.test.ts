import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// The package as npm installs it holds only what package.json's `files` lists (docs/installing.md:
// "What must ship beside dist/"). bin/x402-db.mjs, which runs the commands, compares the sources
// with the stamp recorded when dist/ was built: everything that stamp reads must ship too, or the
// installed commands cannot start. An app runs the bin from its node_modules/.bin (npx x402-db),
// through a link, with the modification times of an unpacked tarball.

const root = fileURLToPath(new URL('..', import.meta.url))

describe('the installed package', () => {
  let app: string
  let copy: string
  beforeAll(() => {
    // The files `npm pack` would put in the tarball, and nothing else. dist/ is current: the
    // tests' global setup built it.
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })) as [{ files: { path: string }[] }]
    app = mkdtempSync(join(tmpdir(), 'x402-installed-'))
    copy = join(app, 'node_modules', '@x402-jobs', 'db')
    // npm writes every file of a tarball with the same time, not the one it had here.
    const packedTime = new Date('1985-10-26T08:15:00Z')
    for (const { path } of packed.files) {
      mkdirSync(dirname(join(copy, path)), { recursive: true })
      cpSync(join(root, path), join(copy, path))
      utimesSync(join(copy, path), packedTime, packedTime)
    }
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
    // What npm makes of package.json's "bin".
    mkdirSync(join(app, 'node_modules', '.bin'))
    symlinkSync('../@x402-jobs/db/bin/x402-db.mjs', join(app, 'node_modules', '.bin', 'x402-db'))
  })
  afterAll(() => rmSync(app, { recursive: true, force: true }))

  it('runs its commands with the dist/ it ships, without building it again', () => {
    const run = spawnSync(process.execPath, ['bin/x402-db.mjs', 'migrate', '--help'], { cwd: copy, encoding: 'utf8' })
    expect(run.stderr).not.toMatch(/build failed|Building dist|older than src/)
    expect(run.status).toBe(0)
    expect(run.stdout).toMatch(/^usage: npm run migrate:latest/m)
  })

  it('runs as x402-db from the app\'s node_modules/.bin, as npx runs it', () => {
    const run = spawnSync(join(app, 'node_modules', '.bin', 'x402-db'), ['--help'], { cwd: app, encoding: 'utf8' })
    expect(run.stderr).not.toMatch(/build failed|Building dist|older than src/)
    expect(run.status).toBe(0)
    expect(run.stdout).toMatch(/^ {2}migrate latest +applies every pending migration/m)
  })
})
