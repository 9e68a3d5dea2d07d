/**
 * A process that writes to an embedded database folder, for test/pglite-lost-lock.test.ts:
 * `pglite-writer.ts <dataDir> <who> <rows> [<later>]` opens the folder with createDb, creates the
 * table `writer_rows` if needed, and commits `<rows>` rows tagged `<who>`, one statement each
 * (`committed <who> <i>` on stdout). With `<later>`, it then writes `paused` and waits for its
 * stdin to close, and tries `<later>` more rows, each both alone and in a transaction, writing
 * `committed ...` or `refused <i> <message>` for each. Last, it destroys the database and writes
 * `destroyed` (or `destroy failed <message>`).
 */
import { type Kysely, sql } from 'kysely'

import { createDb } from '../../src/index.js'
import type { DB } from '../../src/types/database.js'

const [dataDir, who, rows, later] = process.argv.slice(2)
const db = createDb({ dataDir: dataDir! })

async function attempt(i: number, write: () => Promise<unknown>): Promise<void> {
  try {
    await write()
    process.stdout.write(`committed ${who} ${i}\n`)
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    process.stdout.write(`refused ${i} ${message.replace(/\n/g, ' ')}\n`)
  }
}

const insert = (i: number, on: Kysely<DB> = db) =>
  sql`INSERT INTO writer_rows VALUES (${who}, ${i})`.execute(on)

try {
  await sql`CREATE TABLE IF NOT EXISTS writer_rows (who text NOT NULL, i int NOT NULL)`.execute(db)
  for (let i = 0; i < Number(rows); i++) await attempt(i, () => insert(i))
  if (later !== undefined) {
    process.stdout.write('paused\n')
    process.stdin.resume()
    await new Promise((resolve) => process.stdin.once('end', resolve))
    for (let i = Number(rows); i < Number(rows) + Number(later); i += 2) {
      await attempt(i, () => insert(i))
      await attempt(i + 1, () => db.transaction().execute((trx) => insert(i + 1, trx)))
    }
  }
} finally {
  try {
    await db.destroy()
    process.stdout.write('destroyed\n')
  } catch (error) {
    process.stdout.write(
      `destroy failed ${error instanceof Error ? error.message : String(error)}\n`,
    )
  }
}
