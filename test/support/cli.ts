import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { IN_MEMORY } from '../../src/connection/create-db.js'
import { nodeArguments } from './script-process.js'
import type { TestDatabase } from './test-database.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

/** What a run of the command line printed, and how it exited. */
export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs the migrate command line (src/cli/migrate.ts, compiled), or another `script`, as a user runs it: a
 * child process in the package root, with `env` over this process's environment minus
 * DATABASE_URL. A variable set to `undefined` in `env` is left out.
 *
 * @example
 * ```ts
 * const { code, stdout } = await cli(['list'], { PGLITE_DATA_DIR: dataDir })
 * ```
 */
export async function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
  script = 'src/cli/migrate.ts',
  // Under the tests' own bound (vitest.config.ts), so that a hung command fails the test with
  // what it printed; not a measure of speed.
  timeoutMs = 110_000,
): Promise<CliResult> {
  const { DATABASE_URL: _unused, ...inherited } = process.env
  try {
    const { stdout, stderr } = await run(process.execPath, [...nodeArguments(script), ...args], {
      cwd: root,
      env: { ...inherited, ...env },
      timeout: timeoutMs,
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string; killed?: boolean }
    const killed = failed.killed ? `\n(the test killed the command after ${timeoutMs} ms)` : ''
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr + killed }
  }
}

/**
 * The environment that points the command line at a test database. On PGlite, the test must
 * have closed its own connection first: a data folder takes one process at a time.
 */
export function cliEnv(location: TestDatabase['location']): NodeJS.ProcessEnv {
  if ('connectionString' in location) return { DATABASE_URL: location.connectionString }
  // The command would open a new, empty database of its own, and a refusal could pass on it.
  if (location.dataDir === IN_MEMORY) {
    throw new Error(
      'cliEnv got a test database that lives in memory, in this process only: the command line cannot reach it. ' +
        'Create it in a data folder, as createTestDatabase and createScriptableDatabase do.',
    )
  }
  return { PGLITE_DATA_DIR: location.dataDir }
}

/** The lines of a command's output. */
export const lines = (text: string): string[] => text.trim().split('\n')
