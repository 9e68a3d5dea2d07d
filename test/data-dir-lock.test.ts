import { spawn, spawnSync } from 'node:child_process'
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { afterAll, describe, expect, it, vi } from 'vitest'

import { LOCK_FILE_NAME, lockDataDir } from '../src/connection/data-dir-lock.js'

// The PGlite folder lock holds whatever the folder is called, and of many processes taking over
// a stale lock at once, exactly one gets it.

const root = fileURLToPath(new URL('..', import.meta.url))
/** The lock as the commands run it: compiled (test/support/build-dist.ts brought dist/ up to date). */
const lockModule = pathToFileURL(join(root, 'dist', 'connection', 'data-dir-lock.js')).href
const base = mkdtempSync(join(tmpdir(), 'x402-dir-lock-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))

/** The lock file of a data folder. */
function readLockFileName(dataDir: string): string {
  return join(realpathSync(dataDir), LOCK_FILE_NAME)
}

function mount(folder: string, at: string): void {
  const done = spawnSync('mount', ['--bind', folder, at], { encoding: 'utf8' })
  if (done.status !== 0) throw new Error(`mount --bind failed: ${done.stderr}`)
}

function unmount(at: string): void {
  spawnSync('umount', [at])
}

/** Whether this machine lets the tests bind-mount (root, and a kernel that allows it here). */
function tryBindMount(): { works: true } | { works: false; reason: string } {
  const probe = mkdtempSync(join(base, 'probe-'))
  const at = join(probe, 'at')
  mkdirSync(at)
  const done = spawnSync('mount', ['--bind', probe, at], { encoding: 'utf8' })
  if (done.status !== 0)
    return {
      works: false,
      reason: `mount --bind is not allowed here: ${(done.stderr || done.error?.message || '').trim()}`,
    }
  unmount(at)
  return { works: true }
}

/** A data folder whose lock names a pid that has ended here, elsewhere, refreshed `ageS` ago. */
function lockedElsewhere(
  ageS: number,
  host = 'another-host pid:[1]',
): { dataDir: string; lockFile: string; dead: string } {
  const dataDir = mkdtempSync(join(base, 'db-'))
  const lockFile = readLockFileName(dataDir)
  // The pid of a process that has ended here; in the holder's own namespace it may well run.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  }).stdout
  writeFileSync(lockFile, `${dead}\n${host}\n`)
  const refreshed = new Date(Date.now() - ageS * 1000)
  utimesSync(lockFile, refreshed, refreshed)
  return { dataDir, lockFile, dead }
}

describe('the PGlite folder lock', () => {
  it.each([
    ['with a trailing slash', (dir: string) => `${dir}/`],
    [
      'through a symlink',
      (dir: string) => {
        const link = `${dir}-link`
        symlinkSync(dir, link)
        return link
      },
    ],
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

  // A bind mount (a container's volume, most often) is a second path to the same folder that no
  // resolution of the path can tell apart: the lock must be where every path meets, inside it.
  const bindMount = tryBindMount()
  it.skipIf(!bindMount.works)(
    `refuses the same folder bind-mounted at a second path while it is open${bindMount.works ? '' : ` (skipped: ${bindMount.reason})`}`,
    () => {
      const dataDir = mkdtempSync(join(base, 'db-'))
      const second = mkdtempSync(join(base, 'mount-'))
      mount(dataDir, second)
      try {
        const release = lockDataDir(dataDir)
        try {
          expect(() => lockDataDir(second)).toThrow(/is open already in this process/)
        } finally {
          release()
        }
        lockDataDir(second)()
      } finally {
        unmount(second)
      }
    },
  )

  // A lock from another host or pid namespace names a pid that cannot be checked from here: its
  // holder refreshes the lock file's mtime, and a lock whose mtime stopped moving is stale (a
  // container restarted: its new pid namespace never releases the old one's lock).
  describe('held in another pid namespace or on another host, whose pid it cannot check', () => {
    it('refuses it while it is refreshed, saying how long to wait', () => {
      const { dataDir, lockFile, dead } = lockedElsewhere(5)
      expect(() => lockDataDir(dataDir)).toThrow(
        new RegExp(
          `is open in process ${dead} on another-host pid:\\[1\\].* if that process has ended, try again in (2[0-9]|30) s`,
        ),
      )
      expect(readFileSync(lockFile, 'utf8')).toBe(`${dead}\nanother-host pid:[1]\n`)
    })

    it('takes it over once it has not been refreshed for longer than the bound, and says so', () => {
      const { dataDir, lockFile, dead } = lockedElsewhere(120)
      const said: string[] = []
      const release = lockDataDir(dataDir, { log: (line) => said.push(line) })
      try {
        expect(readFileSync(lockFile, 'utf8')).toMatch(new RegExp(`^${process.pid}\n`))
        expect(said).toEqual([
          expect.stringMatching(
            new RegExp(
              `^Took over the embedded database at .*: its lock, held by process ${dead} on another-host pid:\\[1\\], was last refreshed 1[12][0-9] s ago`,
            ),
          ),
        ])
      } finally {
        release()
      }
    })
  })

  it("shows the lock's host line escaped and cut, in the refusal and in the takeover", () => {
    const host = `evil\x1b[2J\r${'h'.repeat(200)} pid:[1]`
    const refused = lockedElsewhere(5, host)
    let message = ''
    try {
      lockDataDir(refused.dataDir)
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toMatch(/on evil\\x1b\[2J\\rh+… \(\d+ characters\)/)
    expect(message).not.toMatch(/[\x1b\r]/)
    const stale = lockedElsewhere(120, host)
    const said: string[] = []
    lockDataDir(stale.dataDir, { log: (line) => said.push(line) })()
    expect(said.join('\n')).toMatch(/on evil\\x1b\[2J\\rh+… \(\d+ characters\)/)
    expect(said.join('')).not.toMatch(/[\x1b\r]/)
  })

  // A live holder sets the mtime to its own clock's now: a little ahead is clock skew between
  // hosts, far ahead is a clock far off or a file set by hand, and no refresh can show a live
  // holder there.
  describe('with an mtime in the future', () => {
    it('refuses it while it is within the clock skew allowed, with no negative age', () => {
      const { dataDir, dead } = lockedElsewhere(-10)
      expect(() => lockDataDir(dataDir)).toThrow(
        new RegExp(
          `is open in process ${dead} on another-host pid:\\[1\\], whose lock has a modification time 10 s in the future`,
        ),
      )
    })

    // |age| < 30 s is live: an mtime 20 s ahead stays live until it is 30 s behind, 50 s on.
    it('states the wait that is true for an mtime 20 s ahead', () => {
      const { dataDir } = lockedElsewhere(-20)
      expect(() => lockDataDir(dataDir)).toThrow(/try again in (49|50|51) s/)
    })

    it('takes it over when it is far ahead, and says why', () => {
      const { dataDir, lockFile, dead } = lockedElsewhere(-97_114_997)
      const said: string[] = []
      const release = lockDataDir(dataDir, { log: (line) => said.push(line) })
      try {
        expect(readFileSync(lockFile, 'utf8')).toMatch(new RegExp(`^${process.pid}\n`))
        expect(said).toEqual([
          expect.stringMatching(
            new RegExp(
              `^Took over the embedded database at .*: its lock, held by process ${dead} on another-host pid:\\[1\\], has a modification time 9711499[0-9] s in the future`,
            ),
          ),
        ])
        expect(said.join('')).not.toMatch(/ -\d/)
      } finally {
        release()
      }
    })
  })

  // What sits at the lock's name is read as a small regular file, or not at all: a FIFO blocks
  // a plain read for ever, and a link to /dev/zero never ends.
  it.each([
    ['a FIFO', (file: string) => spawnSync('mkfifo', [file]), /is a FIFO, not a lock file/],
    [
      'a symlink to /dev/zero',
      (file: string) => symlinkSync('/dev/zero', file),
      /is a symbolic link, not a lock file/,
    ],
    ['a folder', (file: string) => mkdirSync(file), /is a folder, not a lock file/],
    [
      'a huge file',
      (file: string) => writeFileSync(file, 'x'.repeat(1_000_000)),
      /is 1000000 bytes, larger than any lock file/,
    ],
  ])(
    'refuses a lock file that is %s, saying what it found and what to do',
    async (_what, plant, found) => {
      const dataDir = mkdtempSync(join(base, 'db-'))
      const lockFile = readLockFileName(dataDir)
      plant(lockFile)
      // In a child, its memory capped: the test's timeout is the bound on a read that never ends.
      const child = spawn(
        'bash',
        [
          '-c',
          `ulimit -v 1500000; exec "$0" --input-type=module -e "$1"`,
          process.execPath,
          `const { lockDataDir } = await import(${JSON.stringify(lockModule)})
         try { lockDataDir(${JSON.stringify(dataDir)}); console.log('held') } catch (error) { console.log(error.message) }`,
        ],
        { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
      )
      try {
        let out = ''
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
        await new Promise((resolve) => child.once('exit', resolve))
        expect(out).toMatch(found)
        expect(out).toContain(lockFile)
        expect(out).toMatch(/remove it/)
      } finally {
        child.kill('SIGKILL')
      }
    },
  )

  it("refreshes its own lock's mtime while it holds it", async () => {
    const dataDir = mkdtempSync(join(base, 'db-'))
    const release = lockDataDir(dataDir)
    try {
      const lockFile = readLockFileName(dataDir)
      const old = new Date(Date.now() - 120_000)
      utimesSync(lockFile, old, old)
      // Waits for the next refresh; the test's timeout is what fails where there is none.
      await vi.waitUntil(() => statSync(lockFile).mtimeMs > old.getTime() + 60_000, {
        timeout: 30_000,
        interval: 100,
      })
    } finally {
      release()
    }
  })

  // In this namespace the pid is checked: a stopped holder (SIGSTOP, a debugger) refreshes
  // nothing, and still holds the folder.
  it('refuses a lock held in this namespace by a stopped process, however old its mtime', async () => {
    const dataDir = mkdtempSync(join(base, 'db-'))
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { lockDataDir } = await import(${JSON.stringify(lockModule)})
         lockDataDir(${JSON.stringify(dataDir)})
         process.stdout.write('held\\n')
         setInterval(() => {}, 1000)`,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    try {
      await new Promise<void>((resolve) =>
        holder.stdout.on('data', (chunk: Buffer) => chunk.includes('held') && resolve()),
      )
      holder.kill('SIGSTOP')
      const lockFile = readLockFileName(dataDir)
      const old = new Date(Date.now() - 3_600_000)
      utimesSync(lockFile, old, old)
      expect(() => lockDataDir(dataDir)).toThrow(new RegExp(`is open in process ${holder.pid}\\. `))
    } finally {
      holder.kill('SIGKILL')
    }
  })

  // A holder killed (SIGKILL, a crash, a reboot) leaves its lock; its pid may then be given to
  // an unrelated process, which must not keep the folder locked for ever (nor be named as the
  // process to stop).
  it('takes over a lock whose pid now belongs to another process', async () => {
    const dataDir = mkdtempSync(join(base, 'db-'))
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { lockDataDir } = await import(${JSON.stringify(lockModule)})
         lockDataDir(${JSON.stringify(dataDir)})
         process.stdout.write('held\\n')
         setInterval(() => {}, 1000)`,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    await new Promise<void>((resolve) =>
      holder.stdout.on('data', (chunk: Buffer) => chunk.includes('held') && resolve()),
    )
    const exited = new Promise((resolve) => holder.once('exit', resolve))
    holder.kill('SIGKILL')
    await exited
    const lockFile = readLockFileName(dataDir)
    // Its pid reused: by this test's parent, a process that runs and never held the folder.
    writeFileSync(lockFile, readFileSync(lockFile, 'utf8').replace(/^\d+/, String(process.ppid)))

    lockDataDir(dataDir)()
  })

  // Two processes taking over one stale lock, in every interleaving of a few steps: this process
  // runs lockDataDir, and a rival (the test's own pid, alive) takes the stale lock over between
  // two of its file operations on the lock, and links its own lock between two others. The child
  // interposes on node:fs to play the rival at those points. Of the two, exactly one may hold
  // the lock, and the lock file names it. (One interleaving held both: the first process found
  // the lock gone after its failed claim, took the takeover lock, found it gone again, and then
  // removed the rival's fresh lock, which had appeared in the meantime.)
  it('lets exactly one of two processes hold the lock, in every interleaving of a takeover', () => {
    const dataDir = mkdtempSync(join(base, 'interleave-'))
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    }).stdout
    const script = `
      const fs = (await import('node:fs')).default
      const { syncBuiltinESMExports } = await import('node:module')
      const original = { linkSync: fs.linkSync, readFileSync: fs.readFileSync, rmSync: fs.rmSync, statSync: fs.statSync }
      const lockFile = ${JSON.stringify(readLockFileName(dataDir))}
      const stale = ${JSON.stringify(dead)}
      const rival = String(${process.pid})
      let plan
      const read = (path) => { try { return original.readFileSync(path, 'utf8') } catch { return undefined } }
      const claim = () => { try { original.linkSync(plan.draft, lockFile); return true } catch { return false } }
      // The rival's steps, each whole between two of this process's operations on the lock file.
      const rivalStep = () => {
        if (plan.rival === 'takeover') {
          if (claim()) return void (plan.rival = 'held')
          if (read(lockFile) !== stale) return void (plan.rival = 'refused')
          if (read(lockFile + '.takeover') !== undefined) return // busy: it tries again later
          original.rmSync(lockFile)
          plan.rival = 'link'
        } else if (plan.rival === 'link') {
          plan.rival = claim() ? 'held' : 'refused'
        }
      }
      const touching = (name, pathOf) => (...args) => {
        if (plan && pathOf(args) === lockFile) {
          plan.touches++
          if (plan.touches === plan.takeoverAt || (plan.touches >= plan.linkAt && plan.rival === 'link')) rivalStep()
        }
        return original[name](...args)
      }
      fs.linkSync = touching('linkSync', (args) => String(args[1]))
      fs.readFileSync = touching('readFileSync', (args) => String(args[0]))
      fs.rmSync = touching('rmSync', (args) => String(args[0]))
      fs.statSync = touching('statSync', (args) => String(args[0]))
      syncBuiltinESMExports()
      const { lockDataDir } = await import('./src/connection/data-dir-lock.ts')
      const outcomes = []
      for (let takeoverAt = 1; takeoverAt <= 6; takeoverAt++) {
        for (let linkAt = takeoverAt + 1; linkAt <= 10; linkAt++) {
          fs.writeFileSync(lockFile, stale)
          const draft = lockFile + '.rival'
          fs.writeFileSync(draft, rival)
          plan = { takeoverAt, linkAt, touches: 0, rival: 'takeover', draft }
          let release
          let self
          try { release = lockDataDir(${JSON.stringify(dataDir)}); self = 'held' } catch (error) { self = 'refused: ' + error.message }
          const { rival: rivalOutcome } = plan
          plan = undefined
          outcomes.push({ takeoverAt, linkAt, self, rival: rivalOutcome, lock: read(lockFile) })
          release?.()
          original.rmSync(lockFile, { force: true })
          original.rmSync(draft, { force: true })
        }
      }
      process.stdout.write(JSON.stringify(outcomes))
    `
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: root, encoding: 'utf8' },
    )
    expect(child.stderr).toBe('')
    const outcomes = JSON.parse(child.stdout) as {
      takeoverAt: number
      linkAt: number
      self: string
      rival: string
      lock: string
    }[]
    expect(outcomes).toHaveLength(39)
    const wrong = outcomes.filter(({ self, rival, lock }) => {
      const holders = [
        self === 'held' ? 'self' : undefined,
        rival === 'held' ? 'rival' : undefined,
      ].filter(Boolean)
      if (holders.length !== 1) return true
      if (holders[0] === 'rival')
        return lock !== String(process.pid) || !/is open in process \d+/.test(self)
      return lock === String(process.pid) || lock === undefined
    })
    expect(wrong).toEqual([])
  })

  it('lets exactly one of several processes take over a stale lock at once', async () => {
    const contenders = 2
    for (let trial = 0; trial < 12; trial++) {
      const dataDir = mkdtempSync(join(base, 'race-'))
      // The pid of a process that has ended: its lock is stale.
      const dead = spawnSync(
        process.execPath,
        ['-e', 'process.stdout.write(String(process.pid))'],
        { encoding: 'utf8' },
      ).stdout
      writeFileSync(readLockFileName(dataDir), dead)
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
        spawn(process.execPath, ['--input-type=module', '-e', script], {
          cwd: root,
          stdio: ['pipe', 'pipe', 'inherit'],
        }),
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
      await Promise.all(
        children.map(
          (child) =>
            new Promise((resolve) =>
              child.exitCode !== null ? resolve(null) : child.once('exit', resolve),
            ),
        ),
      )
      expect(answers.filter((answer) => answer === 'held')).toHaveLength(1)
      expect(
        answers
          .filter((answer) => answer !== 'held')
          .every((answer) => /is open in process \d+/.test(answer)),
      ).toBe(true)
    }
  })
})
