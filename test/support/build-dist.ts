import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * vitest's global setup: brings dist/ up to date once, before any test file runs, so that the
 * tests that run the commands as the npm scripts do (compiled, through bin/run.mjs) do not each
 * wait for a build.
 */
export default function setup(): void {
  execFileSync(process.execPath, ['bin/run.mjs', '--build'], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: 'inherit' })
}
