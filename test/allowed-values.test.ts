import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { CHECKED_VALUES } from '../src/types/allowed-values.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// The unions of src/types/allowed-values.ts (the generated types use them) against the CHECK
// constraints of the migrated schema: a migration that changes a constraint must update them.

describe.each(testTargets)('the allowed values on %s', (target) => {
  const database = useTestDatabase(target)

  it.each(Object.entries(CHECKED_VALUES))(
    '%s allows exactly the listed values',
    async (constraint, { table, values }) => {
      const { rows } = await sql<{ definition: string; table: string }>`
      SELECT pg_get_constraintdef(c.oid) AS definition, c.conrelid::regclass::text AS table
      FROM pg_constraint c WHERE c.conname = ${constraint}
    `.execute(database.db)
      expect(rows).toHaveLength(1)
      expect(rows[0]!.table).toBe(table)
      const listed = [...rows[0]!.definition.matchAll(/'((?:[^']|'')*)'::text/g)].map((match) =>
        match[1]!.replace(/''/g, "'"),
      )
      expect(listed).toEqual([...values])
    },
  )

  it('lists the allowed values when a CHECK constraint refuses one', async () => {
    const refused =
      sql`INSERT INTO x402_resources (name, network, pay_to, resource_url, normalized_url) VALUES ('n', 'bitcoin', 'p', 'u', 'u')`.execute(
        database.db,
      )
    await expect(refused).rejects.toThrow(
      /"network" on table "x402_resources" must be one of 'solana', 'base', /,
    )
  })
})
