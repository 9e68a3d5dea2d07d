import { spawn, spawnSync } from 'node:child_process'
import {
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { hostname, tmpdir } from 'node:os'
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

/** Where this process's pids mean something, as the lock records it: host and pid namespace. */
const PLACE = `${hostname()} ${readlinkSync('/proc/self/ns/pid')}`

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

/** A data folder whose lock a holder left when it was killed (SIGKILL), in this namespace. */
async function lockOfKilledHolder(): Promise<{ dataDir: string; lockFile: string }> {
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
  return { dataDir, lockFile }
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

  // A lock from another host or pid namespace names a pid that cannot be checked from here, and a
  // holder stopped there in the middle of a statement (PGlite cannot be interrupted) writes on
  // when it is continued: however old its mtime, such a lock is never taken over.
  describe('held in another pid namespace or on another host, whose pid it cannot check', () => {
    it('refuses it while it is refreshed, naming the holder and the lock file', () => {
      const { dataDir, lockFile, dead } = lockedElsewhere(5)
      expect(() => lockDataDir(dataDir)).toThrow(
        new RegExp(
          `is open in process ${dead} on another-host pid:\\[1\\].* which refreshed its lock 5 s ago`,
        ),
      )
      expect(readFileSync(lockFile, 'utf8')).toBe(`${dead}\nanother-host pid:[1]\n`)
    })

    it.each([
      ['unrefreshed for two minutes', 120, /which refreshed its lock 1[12][0-9] s ago/],
      [
        'with an mtime far in the future',
        -97_114_997,
        /whose lock has a modification time 9711499[0-9] s in the future/,
      ],
    ])(
      'refuses it %s, saying since when, why, and which file to remove once it has certainly ended',
      (_how, ageS, age) => {
        const { dataDir, lockFile, dead } = lockedElsewhere(ageS)
        let message = ''
        try {
          lockDataDir(dataDir)()
        } catch (error) {
          message = (error as Error).message
        }
        expect(message).toMatch(
          new RegExp(`is open in process ${dead} on another-host pid:\\[1\\]`),
        )
        expect(message).toMatch(age)
        expect(message).toMatch(/its lock file was made at \d{4}-\d\d-\d\dT/)
        expect(message).toMatch(/cannot check whether it still runs/)
        expect(message).toContain(`remove the lock file ${lockFile}`)
        expect(message).not.toMatch(/ -\d/)
        expect(readFileSync(lockFile, 'utf8')).toBe(`${dead}\nanother-host pid:[1]\n`)
      },
    )

    // The same host and namespace, but another boot: the pid and start time are of a kernel that
    // is not this one's (a host of the same name, or this one before a restart).
    it('refuses a lock of this host and namespace recorded on another boot', () => {
      const { dataDir, lockFile, dead } = lockedElsewhere(120, PLACE)
      writeFileSync(lockFile, `${dead}\n${PLACE}\n00000000-0000-0000-0000-000000000000 12345\n`)
      expect(() => lockDataDir(dataDir)).toThrow(
        /recorded on boot 00000000-0000-0000-0000-000000000000.*cannot check whether it still runs/,
      )
      expect(readFileSync(lockFile, 'utf8')).toMatch(/^\d+\n.*\n00000000-/)
    })
  })

  // The real thing: a holder in a pid namespace of its own, stopped, its lock long unrefreshed.
  const unshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'])
  it.skipIf(unshare.status !== 0)(
    `refuses a folder whose holder is stopped in another pid namespace${unshare.status === 0 ? '' : ' (skipped: unshare --pid is not allowed here)'}`,
    async () => {
      const dataDir = mkdtempSync(join(base, 'ns-'))
      const holder = spawn(
        'unshare',
        [
          '--pid',
          '--fork',
          '--mount-proc',
          process.execPath,
          '--input-type=module',
          '-e',
          `const { lockDataDir } = await import(${JSON.stringify(lockModule)})
           lockDataDir(${JSON.stringify(dataDir)})
           process.stdout.write('held\\n')
           setInterval(() => {}, 1000)`,
        ],
        { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
      )
      let node: number | undefined
      try {
        await new Promise<void>((resolve) =>
          holder.stdout.on('data', (chunk: Buffer) => chunk.includes('held') && resolve()),
        )
        // unshare forks: the holder is its child, pid 1 in the new namespace.
        node = Number(
          spawnSync('pgrep', ['-P', String(holder.pid)], { encoding: 'utf8' }).stdout.trim(),
        )
        process.kill(node, 'SIGSTOP')
        const lockFile = readLockFileName(dataDir)
        const old = new Date(Date.now() - 3_600_000)
        utimesSync(lockFile, old, old)
        const before = readFileSync(lockFile, 'utf8')
        expect(before).toMatch(/^1\n/)
        expect(() => lockDataDir(dataDir)).toThrow(
          /is open in process 1 on .*cannot check whether it still runs/,
        )
        expect(readFileSync(lockFile, 'utf8')).toBe(before)
      } finally {
        if (node) process.kill(node, 'SIGKILL')
        holder.kill('SIGKILL')
      }
    },
  )

  it("shows the lock's host line escaped and cut in the refusal", () => {
    const host = `evil\x1b[2J\r${'h'.repeat(200)} pid:[1]`
    for (const ageS of [5, 120]) {
      const refused = lockedElsewhere(ageS, host)
      let message = ''
      try {
        lockDataDir(refused.dataDir)
      } catch (error) {
        message = (error as Error).message
      }
      expect(message).toMatch(/on evil\\x1b\[2J\\rh+… \(\d+ characters\)/)
      expect(message).not.toMatch(/[\x1b\r]/)
    }
  })

  // A lock file is trusted only when this user wrote it: another user's file may name any
  // process (pid 1, with its real start time) and would keep the folder locked for ever.
  it.skipIf(process.getuid?.() !== 0)(
    'refuses a lock file another user owns, naming the file and its owner, and leaves it',
    () => {
      const dataDir = mkdtempSync(join(base, 'db-'))
      const lockFile = readLockFileName(dataDir)
      const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
      const stat = readFileSync('/proc/1/stat', 'utf8')
      const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
      writeFileSync(lockFile, `1\n${PLACE}\n${boot} ${start}\nplanted\n`)
      chownSync(lockFile, 65534, 65534)
      expect(() => lockDataDir(dataDir)).toThrow(
        new RegExp(
          `The lock file ${lockFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is owned by user nobody \\(uid 65534\\), not by .*uid 0`,
        ),
      )
      expect(statSync(lockFile).uid).toBe(65534)
    },
  )

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
    const { dataDir, lockFile } = await lockOfKilledHolder()
    // Its pid reused: by this test's parent, a process that runs and never held the folder.
    writeFileSync(lockFile, readFileSync(lockFile, 'utf8').replace(/^\d+/, String(process.ppid)))

    lockDataDir(dataDir)()
  })

  // A container restarted after its app (pid 1) was killed may land in a pid namespace whose
  // number the kernel gave again: the lock then names this pid and this place, but the start
  // time of a process that has ended. It is stale, not this process's own.
  it("takes over a lock that names this process's pid and place but another start time", async () => {
    const { dataDir, lockFile } = await lockOfKilledHolder()
    const left = readFileSync(lockFile, 'utf8')
    expect(left.split('\n')[1]).toBe(PLACE)
    writeFileSync(lockFile, left.replace(/^\d+/, String(process.pid)))

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
