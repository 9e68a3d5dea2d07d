import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// The package as npm installs it holds only what package.json's `files` lists
// (docs/installing.md: "What must ship beside dist/"). bin/run.mjs, which runs the commands, compares a fingerprint
// of the sources with the one recorded when dist/ was built: everything that fingerprint reads
// must ship too, or the installed commands cannot start.

const root = fileURLToPath(new URL('..', import.meta.url))

describe('the installed package', () => {
  let copy: string
  beforeAll(() => {
    // The files `npm pack` would put in the tarball, and nothing else. dist/ is current: the
    // tests' global setup built it.
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })) as [{ files: { path: string }[] }]
    copy = mkdtempSync(join(tmpdir(), 'x402-installed-'))
    for (const { path } of packed.files) {
      mkdirSync(dirname(join(copy, path)), { recursive: true })
      cpSync(join(root, path), join(copy, path))
    }
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
  })
  afterAll(() => rmSync(copy, { recursive: true, force: true }))

  it('runs its commands with the dist/ it ships, without building it again', () => {
    const run = spawnSync(process.execPath, ['bin/run.mjs', 'migrate', '--help'], { cwd: copy, encoding: 'utf8' })
    expect(run.stderr).not.toMatch(/build failed|Building dist|older than src/)
    expect(run.status).toBe(0)
    expect(run.stdout).toMatch(/^usage: npm run migrate:latest/m)
  })
})
