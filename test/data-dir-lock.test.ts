import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { afterAll, describe, expect, it } from 'vitest'

import { lockDataDir } from '../src/connection/data-dir-lock.js'

// The PGlite folder lock holds whatever the folder is called, and of many processes taking over
// a stale lock at once, exactly one gets it.

const root = fileURLToPath(new URL('..', import.meta.url))
/** The lock as the commands run it: compiled (test/support/build-dist.ts brought dist/ up to date). */
const lockModule = pathToFileURL(join(root, 'dist', 'connection', 'data-dir-lock.js')).href
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
      // Each contender loads the lock (compiled, as the commands run it) and says so; then the
      // test gives every one the same instant to spin until, so that their attempts meet. The
      // start is set only once all are ready: no one burns a core waiting for a slow starter.
      const script = `
        const { lockDataDir } = await import(${JSON.stringify(lockModule)})
        process.stdout.write('ready\\n')
        let input = ''
        const startAt = await new Promise((resolve) => {
          process.stdin.setEncoding('utf8').on('data', (chunk) => {
            input += chunk
            if (input.includes('\\n')) resolve(Number(input.split('\\n')[0]))
          })
        })
        while (Date.now() < startAt) {}
        let outcome
        try { lockDataDir(${JSON.stringify(dataDir)}); outcome = 'held' } catch (error) { outcome = 'refused: ' + error.message }
        process.stdout.write(outcome + '\\n')
        // Hold until the test has every answer, so that no one gets it after a release.
        process.stdin.on('end', () => process.exit(0))
      `
      const children = Array.from({ length: contenders }, () =>
        spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }),
      )
      const outputs = children.map((child) => {
        let out = ''
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
        /** The child's next whole line after `skip` lines, or what it wrote when it exits first. */
        return (skip: number) =>
          new Promise<string>((resolve) => {
            const check = () => {
              const whole = out.split('\n').slice(0, -1)
              if (whole.length > skip) resolve(whole[skip]!.trim())
              else if (child.exitCode !== null || child.signalCode !== null) resolve(out.trim())
              else return false
              child.stdout.off('data', check)
              child.off('exit', check)
              return true
            }
            if (!check()) {
              child.stdout.on('data', check)
              child.once('exit', check)
            }
          })
      })
      expect(await Promise.all(outputs.map((line) => line(0)))).toEqual(children.map(() => 'ready'))
      const startAt = Date.now() + 150
      for (const child of children) child.stdin.write(`${startAt}\n`)
      const answers = await Promise.all(outputs.map((line) => line(1)))
      for (const child of children) child.stdin.end()
      await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))))
      expect(answers.filter((answer) => answer === 'held')).toHaveLength(1)
      expect(answers.filter((answer) => answer !== 'held').every((answer) => /is open in process \d+/.test(answer))).toBe(true)
    }
  })
})
