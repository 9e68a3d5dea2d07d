import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

/** The repository root: scripts run from there, as the npm scripts do. */
const root = fileURLToPath(new URL('../..', import.meta.url))

/** What a script process left behind when it ended. */
export interface ScriptResult {
  /** The exit code; null when a signal ended the process. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** A TypeScript script running in a process of its own. */
export interface ScriptProcess {
  readonly child: ChildProcess
  /** Resolves when the process has ended, with what it wrote. */
  readonly exited: Promise<ScriptResult>
  /**
   * Resolves with the first whole line on `stream` that equals `line` or matches it; fails if
   * the process ends first.
   */
  lineOn(stream: 'stdout' | 'stderr', line: string | RegExp): Promise<string>
  /** Ends the process with SIGKILL, as a crash or the OOM killer would, and waits until it is gone. */
  kill(): Promise<ScriptResult>
}

const running = new Set<ScriptProcess>()

/**
 * How Node runs `script`: a command under src/cli runs compiled, through bin/x402-db.mjs as the npm
 * scripts run it (test/support/build-dist.ts brought dist/ up to date before the tests); any
 * other TypeScript file (a test's helper script) through tsx.
 *
 * @example
 * ```ts
 * nodeArguments('src/cli/migrate.ts') // ['--liftoff-only', 'bin/x402-db.mjs', 'migrate']
 * ```
 */
export function nodeArguments(script: string): string[] {
  const command = /^src\/cli\/([\w-]+)\.ts$/.exec(script)?.[1]
  return command ? ['--liftoff-only', 'bin/x402-db.mjs', command] : ['--import', 'tsx', script]
}

/**
 * Starts `script` (a path from the repository root) with Node (see nodeArguments), in one process: a
 * signal sent to it reaches the script itself, not a launcher. The child gets this process's
 * environment without any database or migration setting, plus `env`. It runs in the repository
 * root, or in `options.cwd` (a copy of the repository: test/support/repository-copy.ts).
 *
 * @example
 * ```ts
 * const run = startScript('src/cli/migrate.ts', ['latest'], { DATABASE_URL: url })
 * expect((await run.exited).code).toBe(0)
 * ```
 */
export function startScript(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { cwd?: string } = {},
): ScriptProcess {
  const child = spawn(process.execPath, [...nodeArguments(script), ...args], {
    cwd: options.cwd ?? root,
    env: { ...inheritedEnv(), ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<ScriptResult>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  const started: ScriptProcess = {
    child,
    exited,
    async lineOn(stream, line) {
      const matches = (written: string) =>
        typeof line === 'string' ? written === line : line.test(written)
      for (;;) {
        const found = (stream === 'stdout' ? stdout : stderr).split('\n').slice(0, -1).find(matches)
        if (found !== undefined) return found
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(
            `${script} ended before it wrote ${String(line)} on ${stream}; stdout: ${stdout}; stderr: ${stderr}`,
          )
        }
        await Promise.race([once(child[stream], 'data'), exited])
      }
    },
    async kill() {
      child.kill('SIGKILL')
      return exited
    },
  }
  running.add(started)
  const forget = () => void running.delete(started)
  exited.then(forget, forget)
  return started
}

/**
 * Kills every script process still running and waits until they are gone: the clean-up of a
 * test that failed half-way (call it in afterEach).
 *
 * @example
 * ```ts
 * afterEach(killRunningScripts)
 * ```
 */
export async function killRunningScripts(): Promise<void> {
  await Promise.all([...running].map((other) => other.kill()))
}

function inheritedEnv(): NodeJS.ProcessEnv {
  // A CI or developer setting must not redirect or reconfigure the child.
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(DATABASE_URL|PGLITE_DATA_DIR|AUTO_MIGRATE|MIGRATION_.*)$/.test(name),
    ),
  )
}
