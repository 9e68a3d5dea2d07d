import { describe, expect, it } from 'vitest'

import { migrateToLatest } from '../src/tooling.js'
import { migrationNames } from '../src/migrations/index.js'
import { testTargets, withTestDatabase } from './support/test-database.js'

// Per-migration transaction control: the runner runs each transactional migration in a
// transaction of its own, and a migration that declares `config = { transaction: false }` (005)
// outside one, so that its CREATE INDEX CONCURRENTLY can run. Proven on the statements the
// driver sends, transaction boundaries included.

interface Recorded {
  sql: string
  connection: number
  /** Whether its connection was in a transaction when the statement was sent. */
  depth: number
}

describe.each(testTargets)('transaction control on %s', (target) => {
  async function recordLatest(): Promise<Recorded[]> {
    const recorded: Recorded[] = []
    const depths = new Map<number, number>()
    const onStatement = (sql: string, _parameters: readonly unknown[], connection: number) => {
      const text = sql.trim().replace(/\s+/g, ' ')
      let depth = depths.get(connection) ?? 0
      if (/^(COMMIT|ROLLBACK)$/i.test(text)) depth--
      recorded.push({ sql: text, connection, depth })
      if (/^BEGIN\b/i.test(text)) depth++
      depths.set(connection, depth)
    }
    await withTestDatabase(target, ({ db }) => migrateToLatest(db, { env: {} }), { onStatement })
    return recorded
  }

  function historyInsert(recorded: Recorded[], name: string): Recorded {
    // Kysely binds the name as a parameter; the history inserts come in migration order.
    const inserts = recorded.filter((r) =>
      r.sql.startsWith('insert into "x402_migrations"."kysely_migration"'),
    )
    const order = migrationNames
    return inserts[order.indexOf(name)]!
  }

  it('runs each migration in a transaction of its own, and 005 outside one', async () => {
    const recorded = await recordLatest()
    const at = (entry: Recorded) => recorded.indexOf(entry)

    // Each transactional migration's history record commits before the next migration begins,
    // so that a lock one takes on x402_resources is held for that migration alone.
    const transactional = migrationNames.filter((name) => name !== '005_add_openrouter_integration')
    for (const [index, name] of transactional.slice(0, -1).entries()) {
      const next = transactional[index + 1]!
      const entry = historyInsert(recorded, name)
      const nextEntry = historyInsert(recorded, next)
      expect(entry.depth).toBe(1)
      const between = recorded
        .slice(at(entry), at(nextEntry))
        .filter((r) => r.connection === entry.connection)
      expect(
        between.some((r) => r.sql === 'COMMIT'),
        `${name} commits before ${next}`,
      ).toBe(true)
    }

    const concurrently = recorded.find((r) => r.sql.startsWith('CREATE INDEX CONCURRENTLY'))!
    expect(concurrently.depth).toBe(0)
    const validate = recorded.find((r) =>
      r.sql.includes('VALIDATE CONSTRAINT x402_resources_resource_type_check'),
    )!
    expect(validate.depth).toBe(1)
    // Recorded after all its steps, in a short transaction of its own that commits only once
    // the migration lock is confirmed held.
    const recorded005 = historyInsert(recorded, '005_add_openrouter_integration')
    expect(recorded005.depth).toBe(1)
    expect(at(recorded005)).toBeGreaterThan(at(concurrently))
    const after005 = recorded
      .slice(at(concurrently), at(recorded005))
      .filter((r) => r.connection === recorded005.connection)
    expect(after005.filter((r) => /^BEGIN\b/i.test(r.sql))).toHaveLength(1)

    const recorded006 = historyInsert(recorded, '006_rename_to_production_names')
    expect(recorded006.depth).toBe(1)
    const before006 = recorded
      .slice(at(recorded005), at(recorded006))
      .filter((r) => r.connection === recorded006.connection)
    expect(before006.some((r) => r.sql === 'BEGIN')).toBe(true)
  })

  it('gives every migration statement a lock_timeout and a statement_timeout', async () => {
    const recorded = await recordLatest()
    const sets = recorded.filter((r) =>
      /^SET (LOCAL )?(lock|statement)_timeout = '\d+ms'$/.test(r.sql),
    )
    expect(sets.every((r) => r.sql.startsWith('SET LOCAL') === (r.depth === 1))).toBe(true)
    // Before each migration: two in each transaction, and two on 005's connection.
    const inTransaction = (count: number) =>
      Array.from({ length: count }, () => [
        "SET LOCAL lock_timeout = '…'",
        "SET LOCAL statement_timeout = '…'",
      ]).flat()
    const index005 = migrationNames.indexOf('005_add_openrouter_integration')
    expect(sets.map((r) => r.sql.replace(/'\d+ms'/, "'…'"))).toEqual([
      ...inTransaction(index005),
      "SET lock_timeout = '…'",
      "SET statement_timeout = '…'",
      ...inTransaction(migrationNames.length - index005 - 1),
    ])
  })
})
