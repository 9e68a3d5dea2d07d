import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { withFencedTransactions } from '../src/migrator/fenced-transactions.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// The runner gives a migration that runs outside a transaction a Kysely whose transactions run
// the lesser-trigger check first (runner.ts, confirmingLock). Here the fence marks the
// transaction instead, and each way of opening one must show the mark inside, before the
// migration's own code, and nowhere else.

const mark = (db: Kysely<any>) =>
  sql<{ v: string }>`SELECT coalesce(current_setting('x402.test_fenced', true), '') AS v`
    .execute(db)
    .then(({ rows }) => rows[0]!.v)

describe.each(testTargets)('withFencedTransactions on %s', (target) => {
  const database = useTestDatabase(target, 'none')
  let fences = 0
  const fenced = () =>
    withFencedTransactions(database.db, async (trx) => {
      fences++
      await sql`SELECT set_config('x402.test_fenced', 'yes', true)`.execute(trx)
    })

  it('runs the fence first in each transaction, however it is opened, and nowhere else', async () => {
    const db = fenced()
    fences = 0
    const opened: Array<[string, () => Promise<string>]> = [
      ['transaction()', () => db.transaction().execute(mark)],
      [
        'with settings',
        () =>
          db
            .transaction()
            .setIsolationLevel('read committed')
            .setAccessMode('read write')
            .execute(mark),
      ],
      [
        'withPlugin()',
        () =>
          db
            .withPlugin({ transformQuery: (a) => a.node, transformResult: async (a) => a.result })
            .transaction()
            .execute(mark),
      ],
      ['withSchema()', () => db.withSchema('public').transaction().execute(mark)],
      ['connection()', () => db.connection().execute((c) => c.transaction().execute(mark))],
      [
        'startTransaction()',
        async () => {
          const trx = await db.startTransaction().execute()
          const seen = await mark(trx)
          await trx.commit().execute()
          return seen
        },
      ],
    ]
    for (const [how, open] of opened) expect(await open(), how).toBe('yes')
    expect(fences).toBe(opened.length)
    // Outside a transaction each statement commits by itself: nothing to fence.
    expect(await mark(db)).toBe('')
    expect(fences).toBe(opened.length)
  })

  it('a fence that refuses: the transaction is rolled back before its code runs', async () => {
    const refusing = withFencedTransactions(database.db, async () => {
      throw new Error('refused by the fence')
    })
    let ran = false
    await expect(
      refusing.transaction().execute(async () => {
        ran = true
      }),
    ).rejects.toThrow('refused by the fence')
    await expect(refusing.startTransaction().execute()).rejects.toThrow('refused by the fence')
    expect(ran).toBe(false)
    // The connection is usable again: nothing was left open on it.
    expect(await mark(database.db)).toBe('')
  })
})
