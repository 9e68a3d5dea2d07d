import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { guardDown } from '../src/migrator/down-guard.js'
import { DataLossRefusal } from '../src/tooling.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// The guard writes table names into its DO block and names its backups after them: no name can
// end the block's quote, and no two tables of one down get the same backup.

describe.each(testTargets)("the down guard's names on %s", (target) => {
  const database = useTestDatabase(target, 'latest')

  it('refuses, naming the table, where the name holds the dollar quote of the block', async () => {
    const { db } = database
    await sql`CREATE TABLE "odd$guard$name" (x int)`.execute(db)
    await sql`INSERT INTO "odd$guard$name" VALUES (1)`.execute(db)
    const dropsIt = {
      up: async () => {},
      down: async (trx: typeof db) => void (await sql`DROP TABLE "odd$guard$name"`.execute(trx)),
    }
    const error = await db
      .transaction()
      .execute((trx) => guardDown(trx, '009_test', dropsIt, { allowDataLoss: false }))
      .catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(DataLossRefusal)
    expect((error as Error).message).toContain('table public."odd$guard$name" (dropped): 1 row(s)')
    await sql`DROP TABLE "odd$guard$name"`.execute(db)
  })

  it('refuses, naming the table, where a backslash meets a quote and the session reads backslashes as escapes', async () => {
    const { db } = database
    await sql`CREATE TABLE ${sql.id("x\\'y")} (x int)`.execute(db)
    await sql`INSERT INTO ${sql.id("x\\'y")} VALUES (1)`.execute(db)
    const dropsIt = {
      up: async () => {},
      down: async (trx: typeof db) => void (await sql`DROP TABLE ${sql.id("x\\'y")}`.execute(trx)),
    }
    const error = await db
      .transaction()
      .execute(async (trx) => {
        // As a database or role default would set it.
        await sql`SET LOCAL standard_conforming_strings = off`.execute(trx)
        return guardDown(trx, '009_test', dropsIt, { allowDataLoss: false })
      })
      .catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(DataLossRefusal)
    expect((error as Error).message).toContain(`table public."x\\'y" (dropped): 1 row(s)`)
    await sql`DROP TABLE ${sql.id("x\\'y")}`.execute(db)
  })

  it('backs up tables whose backup names would meet, each under a name of its own', async () => {
    const { db } = database
    const long = 'a'.repeat(50)
    await sql`CREATE SCHEMA IF NOT EXISTS s`.execute(db)
    await sql`CREATE TABLE s.t (x int)`.execute(db)
    await sql`CREATE TABLE public.s_t (x int)`.execute(db)
    await sql`CREATE TABLE ${sql.id(`${long}_one`)} (x int)`.execute(db)
    await sql`CREATE TABLE ${sql.id(`${long}_two`)} (x int)`.execute(db)
    const tables = [sql`s.t`, sql`public.s_t`, sql.id(`${long}_one`), sql.id(`${long}_two`)]
    for (const [i, table] of tables.entries())
      await sql`INSERT INTO ${table} VALUES (${i + 1})`.execute(db)
    const dropsThem = {
      up: async () => {},
      down: async (trx: typeof db) => {
        for (const table of tables) await sql`DROP TABLE ${table}`.execute(trx)
      },
    }
    const backups = await db
      .transaction()
      .execute((trx) => guardDown(trx, '009_test', dropsThem, { allowDataLoss: true }))
    expect(backups).toHaveLength(4)
    expect(new Set(backups).size).toBe(4)
    // Each is SQL, quoted where it must be, so that it can be pasted into a query.
    const unquoted = (backup: string) =>
      backup
        .split('.')[1]!
        .replace(/^"(.*)"$/, '$1')
        .replaceAll('""', '"')
    for (const backup of backups)
      expect(Buffer.byteLength(unquoted(backup))).toBeLessThanOrEqual(63)
    const values = await Promise.all(
      backups.map(async (backup) => {
        const { rows } = await sql<{
          x: number
        }>`SELECT x FROM ${sql.raw(backup)}`.execute(db)
        return rows[0]!.x
      }),
    )
    expect(values.sort()).toEqual([1, 2, 3, 4])
    for (const table of tables) await sql`DROP TABLE ${table}`.execute(db)
  })
})
