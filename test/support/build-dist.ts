import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { migratedTemplate } from '../../src/templates/migrated-template.js'

/**
 * vitest's global setup, once before any test file runs: brings dist/ up to date, so that the
 * tests that run the commands as the npm scripts do (compiled, through bin/run.mjs) do not each
 * wait for a build; and makes the template most test files start from (the latest migration),
 * so that the workers do not each make it at the same time on a fresh checkout.
 */
export default async function setup(): Promise<void> {
  execFileSync(process.execPath, ['bin/run.mjs', '--build'], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: 'inherit' })
  await migratedTemplate('latest')
}
