import { createRequire } from 'node:module'

import type pg from 'pg'
import { parseIntoClientConfig } from 'pg-connection-string'

import { strictSslMode } from './connection-string.js'
import { describeArgument, shownHost, shownShortOnTerminal } from './shown-argument.js'

/** Called by node-postgres with the connection's parameters when the server asks for a password. */
type PasswordLookup = (parameters?: {
  host?: string
  port?: number
  user?: string
  database?: string
}) => Promise<string>

/**
 * The node-postgres settings of a connection string, with a password that is looked up only
 * when the server asks for one: the URL's, else PGPASSWORD, else the password file (~/.pgpass
 * or PGPASSFILE), as libpq does. Where none of them has one, the connection fails at once with
 * an error that says the password is missing, instead of a SCRAM error from deep inside the
 * driver after the connection timeout.
 *
 * @example
 * ```ts
 * new pg.Pool({ ...serverConnectionConfig('postgres://app@db:5432/app'), connectionTimeoutMillis: 10_000 })
 * ```
 */
export function serverConnectionConfig(
  connectionString: string,
  env: NodeJS.ProcessEnv = process.env,
): pg.ClientConfig {
  const config = parseIntoClientConfig(strictSslMode(connectionString))
  if (typeof config.password === 'string' && config.password !== '') return config
  return { ...config, password: lookUpPassword(env) }
}

function lookUpPassword(env: NodeJS.ProcessEnv): PasswordLookup {
  return async (parameters = {}) => {
    if (env.PGPASSWORD) return env.PGPASSWORD
    const fromFile = await passwordFromFile(parameters)
    if (fromFile !== undefined) return fromFile
    // The user part may hold a password where the user name was forgotten (postgres://secret@host).
    const who = `user ${describeArgument(parameters.user ?? '?')} at ${shownHost(String(parameters.host ?? '?'))}:${shownShortOnTerminal(String(parameters.port ?? '?'))}`
    throw new Error(
      `The password is missing: the server asks ${who} for a password, and the connection string has none ` +
        '(nor PGPASSWORD, nor a matching line in ~/.pgpass). Put it in DATABASE_URL as postgres://user:password@host:port/database.',
    )
  }
}

/** libpq's password file, read with the module node-postgres uses for it. */
function passwordFromFile(parameters: object): Promise<string | undefined> {
  const requireFromPg = createRequire(createRequire(import.meta.url).resolve('pg'))
  const pgpass = requireFromPg('pgpass') as (
    parameters: object,
    done: (password: string | undefined) => void,
  ) => void
  return new Promise((resolve) => pgpass(parameters, resolve))
}
