import { readFileSync } from 'node:fs'

import { errorCode } from '../connection/sql-state.js'

/**
 * The one-line failure of a command that needs one of the module's own development tools
 * (kysely-codegen for db:codegen, squawk-cli for lint:sql) where that tool is not installed, as
 * in an app's installed copy: what to install, at the version the repository pins. Undefined
 * where `error` is another failure, which the caller rethrows as it is.
 *
 * @example
 * ```ts
 * await import('kysely-codegen').catch((error) => { throw devToolMissingError(error, 'kysely-codegen', 'db:codegen') ?? error })
 * ```
 */
export function devToolMissingError(
  error: unknown,
  tool: string,
  command: string,
): Error | undefined {
  const code = errorCode(error)
  if (
    (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') ||
    !String((error as Error).message).includes(tool)
  )
    return undefined
  return new Error(
    `${command} needs ${tool}, a development tool of this module that is not installed here: ` +
      `run \`npm install --save-dev ${tool}@${pinnedVersion(tool)}\`, or run ${command} in the module's repository.`,
  )
}

/** The version of `tool` that the module's package.json pins among its devDependencies. */
function pinnedVersion(tool: string): string {
  try {
    // Two folders up from src/cli/ and from dist/cli/ alike.
    const manifest = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      devDependencies?: Record<string, string>
    }
    return manifest.devDependencies?.[tool] ?? 'latest'
  } catch {
    return 'latest'
  }
}
