/**
 * A process that reads a large result while it holds a lock that blocks writers, for
 * test/down-guard-stalled-client.test.ts: `large-result-reader.ts <url> <table> <megabytes>`
 * opens a transaction with the session bounds of a run (setSessionBounds, the idle timeout far
 * away), locks `<table>` in ACCESS EXCLUSIVE mode, writes `locked` on stdout, and reads
 * `<megabytes>` MB of rows. A test stops it (SIGSTOP) while the server sends them.
 */
import { sql } from 'kysely'

import { createDb } from '../../src/index.js'
import { setSessionBounds } from '../../src/migrator/lock.js'

const [url, table, megabytes] = process.argv.slice(2)
const db = createDb({ connectionString: url! })
try {
  await db.transaction().execute(async (trx) => {
    await setSessionBounds(trx, { idleTimeoutMs: 600_000 }, 'transaction')
    await sql`LOCK TABLE ${sql.table(table!)} IN ACCESS EXCLUSIVE MODE`.execute(trx)
    process.stdout.write('locked\n')
    await sql`SELECT repeat('x', 1000) AS row FROM generate_series(1, ${Number(megabytes) * 1000})`.execute(
      trx,
    )
  })
} finally {
  await db.destroy()
}
