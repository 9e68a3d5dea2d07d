import type { Dialect } from 'kysely'

import { withDialectHooks } from '../connection/dialect-hooks.js'
import type { StatementRecorder } from './statement-recorder.js'

/**
 * Wraps `dialect` so that every statement, and every transaction the driver begins and ends,
 * goes through `recorder`, which measures them while it records.
 *
 * @example
 * ```ts
 * const db = new Kysely({ dialect: withStatementProbes(new PostgresDialect({ pool }), recorder) })
 * ```
 */
export function withStatementProbes(dialect: Dialect, recorder: StatementRecorder): Dialect {
  return withDialectHooks(dialect, {
    aroundQuery: (connection, query, run) => recorder.execute(connection, query, run),
    afterBegin: (connection) => recorder.begin(connection),
    aroundEnd: (end) => recorder.end(end),
  })
}
