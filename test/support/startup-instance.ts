/**
 * One instance of the app starting up, for test/concurrent-startup.test.ts: it runs
 * `migrateOnStartup(createDb())` as the app does, on DATABASE_URL, with the environment it is
 * given (MIGRATION_LOCK_WAIT_MS, ...).
 *
 * So that many instances start at the same moment, it first loads, connects, and writes
 * `ready` on stdout; then it waits for its stdin to close, the start signal, which the test
 * gives all instances at once. The start-up logs ("[db] applied migration ...") go to stdout;
 * a failure is one line on stderr and exit code 1, and the app would not serve.
 */
import { sql } from 'kysely'

import { createDb, migrateOnStartup } from '../../src/index.js'

const db = createDb()
try {
  // The connection is made before the signal: the instances race from the first query on.
  await sql`SELECT 1`.execute(db)
  process.stdout.write('ready\n')
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.once('end', resolve))
  await migrateOnStartup(db)
} catch (error) {
  console.error(`start-up failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
} finally {
  await db.destroy()
}
