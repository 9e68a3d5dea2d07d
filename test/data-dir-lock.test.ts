import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { afterAll, describe, expect, it } from 'vitest'

import { lockDataDir } from '../src/connection/data-dir-lock.js'

// The PGlite folder lock holds whatever the folder is called, and of many processes taking over
// a stale lock at once, exactly one gets it.

const root = fileURLToPath(new URL('..', import.meta.url))
const base = mkdtempSync(join(tmpdir(), 'x402-dir-lock-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))

describe('the PGlite folder lock', () => {
  it.each([
    ['with a trailing slash', (dir: string) => `${dir}/`],
    ['through a symlink', (dir: string) => {
      const link = `${dir}-link`
      symlinkSync(dir, link)
      return link
    }],
    ['with a dot segment', (dir: string) => `${dir}/../${dir.split('/').at(-1)}`],
  ])('refuses the same folder spelled %s while it is open', (_how, spell) => {
    const dataDir = mkdtempSync(join(base, 'db-'))
    const spelled = spell(dataDir)
    const release = lockDataDir(dataDir)
    try {
      // The holder is this process, so the refusal is the same-process one, and it names the
      // folder by its real path: every spelling met the one lock.
      expect(() => lockDataDir(spelled)).toThrow(
        `The embedded database at ${realpathSync(dataDir)} is open already in this process, through another createDb() instance.`,
      )
    } finally {
      release()
    }
    lockDataDir(spelled)()
  })

  it('lets exactly one of several processes take over a stale lock at once', async () => {
    const contenders = 2
    for (let trial = 0; trial < 12; trial++) {
      const dataDir = mkdtempSync(join(base, 'race-'))
      // The pid of a process that has ended: its lock is stale.
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout
      writeFileSync(`${dataDir}.lock`, dead)
      const startAt = Date.now() + 1500
      const script = `
        const { lockDataDir } = await import('./src/connection/data-dir-lock.ts')
        while (Date.now() < ${startAt}) {}
        let outcome
        try { lockDataDir(${JSON.stringify(dataDir)}); outcome = 'held' } catch (error) { outcome = 'refused: ' + error.message }
        process.stdout.write(outcome + '\\n')
        // Hold until the test has every answer, so that no one gets it after a release.
        process.stdin.resume()
        process.stdin.on('end', () => process.exit(0))
      `
      const children = Array.from({ length: contenders }, () =>
        spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }),
      )
      const answers = await Promise.all(
        children.map(
          (child) =>
            new Promise<string>((resolve) => {
              let out = ''
              child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
                out += chunk
                if (out.includes('\n')) resolve(out.trim())
              })
              child.once('exit', () => resolve(out.trim()))
            }),
        ),
      )
      for (const child of children) child.stdin.end()
      await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))))
      expect(answers.filter((answer) => answer === 'held')).toHaveLength(1)
      expect(answers.filter((answer) => answer !== 'held').every((answer) => /is open in process \d+/.test(answer))).toBe(true)
    }
  })
})
