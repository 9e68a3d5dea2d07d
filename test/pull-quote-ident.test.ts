import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { quoteIdent } from '../src/pull/pulled-statements.js'
import {
  createTestDatabase,
  type TestDatabase,
  type TestTarget,
  testTargets,
} from './support/test-database.js'

// A pulled migration writes names with quoteIdent. A keyword quote_ident() quotes and quoteIdent
// left bare (a policy named "join", a schema named "left") gave a migration that no database
// could apply (rev-d1 F4). Every keyword the server knows, and a few ordinary names, must come
// out as the server's quote_ident() writes them, on PostgreSQL 15 and on PGlite (17) alike.

const ORDINARY = [
  'x402_resources',
  'a',
  '_private',
  'with$dollar',
  'v2',
  'Mixed',
  'has space',
  'has"quote',
  '2starts_with_digit',
  'dotted.name',
  'é',
  'user_id',
  'joins',
]

describe.each(testTargets)('quoteIdent, on %s', (target: TestTarget) => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createTestDatabase(target)
  }, 120_000)
  afterAll(async () => {
    await database?.destroy()
  })

  it('quotes exactly what quote_ident() quotes: every keyword, and ordinary names', async () => {
    const { rows } = await sql<{ word: string; quoted: string; catcode: string }>`
      SELECT word, pg_catalog.quote_ident(word) AS quoted, catcode::text AS catcode
      FROM pg_catalog.pg_get_keywords()
      UNION ALL
      SELECT name, pg_catalog.quote_ident(name), '-'
      FROM pg_catalog.unnest(${ORDINARY}::text[]) AS name
    `.execute(database.db as Kysely<any>)
    expect(rows.filter((row) => row.catcode === 'T').length).toBeGreaterThan(10)
    const mismatches = rows
      .filter((row) => quoteIdent(row.word) !== row.quoted)
      .map((row) => `${row.word} (${row.catcode}): ${quoteIdent(row.word)} <> ${row.quoted}`)
    expect(mismatches).toEqual([])
  })
})
