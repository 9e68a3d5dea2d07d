/**
 * A process that holds an embedded database folder and writes new files there later, for
 * test/pglite-data-dir-path.test.ts: `pglite-late-writer.ts <dataDir>` opens the folder with
 * createDb, commits a row to `holder_rows`, writes `paused` and waits for its stdin to close; then
 * it creates the table `holder_after` (new relation files), commits a second row, checkpoints,
 * and writes `wrote` (or `refused <message>`). Last, it destroys the database and writes
 * `destroyed` (or `destroy failed <message>`).
 */
import { sql } from 'kysely'

import { createDb } from '../../src/index.js'

const db = createDb({ dataDir: process.argv[2]! })

const message = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).replace(/\n/g, ' ')

try {
  await sql`CREATE TABLE holder_rows (i int NOT NULL)`.execute(db)
  await sql`INSERT INTO holder_rows VALUES (1)`.execute(db)
  process.stdout.write('paused\n')
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.once('end', resolve))
  try {
    await sql`CREATE TABLE holder_after AS SELECT g FROM generate_series(1, 20000) g`.execute(db)
    await sql`INSERT INTO holder_rows VALUES (2)`.execute(db)
    await sql`CHECKPOINT`.execute(db)
    process.stdout.write('wrote\n')
  } catch (error) {
    process.stdout.write(`refused ${message(error)}\n`)
  }
} finally {
  try {
    await db.destroy()
    process.stdout.write('destroyed\n')
  } catch (error) {
    process.stdout.write(`destroy failed ${message(error)}\n`)
  }
}
