import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import type { CliResult } from './cli.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

/**
 * A copy of the repository that the commands can build and run in, node_modules linked: where
 * migrate:pull may write a migration without touching this checkout's src/migrations.
 *
 * @example
 * ```ts
 * const copy = copyOfTheRepository()
 * await commandIn(copy, ['migrate', 'pull', 'production'], cliEnv(database.location))
 * ```
 */
export function copyOfTheRepository(): string {
  const dir = mkdtempSync(join(tmpdir(), 'x402-pull-'))
  for (const entry of ['src', 'bin', 'dist', 'docs'])
    cpSync(join(root, entry), join(dir, entry), { recursive: true })
  for (const file of readdirSync(root).filter(
    (name) => /\.(json|cjs|toml)$/.test(name) || /^tsconfig.*\.json$/.test(name),
  )) {
    cpSync(join(root, file), join(dir, file))
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  return dir
}

/** Runs `node bin/x402-db.mjs <args>` in `cwd`, as the npm scripts do, without this process's DATABASE_URL. */
export async function commandIn(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<CliResult> {
  const {
    DATABASE_URL: _unused,
    MIGRATION_DATABASE_URL: _unused2,
    PGLITE_DATA_DIR: _unused3,
    ...inherited
  } = process.env
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--liftoff-only', 'bin/x402-db.mjs', ...args],
      { cwd, env: { ...inherited, ...env }, timeout: 240_000 },
    )
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}
