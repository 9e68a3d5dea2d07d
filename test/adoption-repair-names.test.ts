import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { repairOf } from '../src/adoption/repair-plan.js'
import { migrationNames } from '../src/migrations/index.js'
import type { SchemaDifference } from '../src/schema/diff.js'
import { buildSchemaReference, type SchemaReference } from '../src/schema/reference.js'
import { migrateToLatest } from '../src/tooling.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import { type TestTarget, testTargets } from './support/test-database.js'

// The repair plan writes SQL around names that CREATE accepted: a quote in a table's or a
// schema's name, and a table outside public, give statements that run, on the table meant.

const NEWEST = migrationNames.at(-1)!

/** A difference as the comparison reports it, with what a test needs filled in. */
function difference(fields: Partial<SchemaDifference>): SchemaDifference {
  return {
    class: 'conflict',
    kind: 'missing',
    category: 'constraints',
    key: '',
    table_name: null,
    object_name: '',
    field: '',
    live: null,
    expected: null,
    reason: 'missing',
    decision: null,
    decidable: true,
    line: '',
    ...fields,
  }
}

/** The statements of a fix, failing the test where the plan left it to a person. */
async function statementsOf(
  db: Kysely<any>,
  found: SchemaDifference,
  reference: SchemaReference,
): Promise<string[]> {
  const fix = await repairOf(db, found, reference)
  if ('decide' in fix) throw new Error(`left to a person: ${fix.decide}`)
  return [...fix.now, ...(fix.after ?? [])]
}

describe.each(testTargets)(
  'the repair plan around names with quotes, on %s',
  (target: TestTarget) => {
    let database: ScriptableDatabase
    let db: Kysely<any>
    let reference: SchemaReference
    beforeAll(async () => {
      database = await createScriptableDatabase(target, 'latest')
      db = database.db
      await migrateToLatest(db)
      await database.runScript(`
      CREATE TABLE public."it's" (id int PRIMARY KEY, n int);
      CREATE SCHEMA "Side's";
      CREATE TABLE "Side's"."it's" (id int PRIMARY KEY, n int);
    `)
      reference = await buildSchemaReference(NEWEST)
    }, 300_000)
    afterAll(async () => {
      await database?.destroy()
    })

    /** Where constraint or policy `name` is, as schema.table. */
    async function placesOf(name: string): Promise<string[]> {
      const { rows } = await sql<{ place: string }>`
      SELECT format('%I.%I', n.nspname, c.relname) AS place
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.conname = ${name})
         OR EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = ${name})
      ORDER BY 1
    `.execute(db)
      return rows.map(({ place }) => place)
    }

    it.each([
      ['public', "it's", `public."it's"`],
      ['another schema', `"Side's".it's`, `"Side's"."it's"`],
    ])(
      'adds a missing CHECK and a restrictive policy to a table in %s whose name has a quote',
      async (_where, table, qualified) => {
        const suffix = qualified.startsWith('public') ? 'p' : 's'
        const check = difference({
          key: `constraints ${table}.positive_${suffix}`,
          table_name: table,
          object_name: `positive_${suffix}`,
          expected: { definition: 'CHECK ((n > 0))', validated: true, comment: null },
        })
        const policy = difference({
          category: 'policies',
          key: `policies ${table}.no anon ${suffix}`,
          table_name: table,
          object_name: `no anon ${suffix}`,
          expected: {
            permissive: false,
            command: 'SELECT',
            roles: 'anon',
            using: 'false',
            'with check': null,
            comment: null,
          },
        })
        for (let run = 0; run < 2; run++) {
          for (const found of [check, policy])
            for (const statement of await statementsOf(db, found, reference))
              await sql.raw(statement).execute(db)
        }
        expect(await placesOf(`positive_${suffix}`)).toEqual([qualified])
        expect(await placesOf(`no anon ${suffix}`)).toEqual([qualified])
      },
    )

    it('writes a schema comment as valid SQL, on the schema named', async () => {
      const statements = await statementsOf(
        db,
        difference({
          class: 'equivalent',
          kind: 'changed',
          category: 'schemas',
          key: `schemas "Side's"`,
          object_name: `"Side's"`,
          field: 'comment',
          live: null,
          expected: "the side's tables",
        }),
        reference,
      )
      expect(statements).toEqual([`COMMENT ON SCHEMA "Side's" IS 'the side''s tables'`])
      for (const statement of statements) await sql.raw(statement).execute(db)
      const { rows } = await sql<{ comment: string }>`
      SELECT pg_catalog.obj_description(oid, 'pg_namespace') AS comment FROM pg_catalog.pg_namespace WHERE nspname = ${"Side's"}
    `.execute(db)
      expect(rows).toEqual([{ comment: "the side's tables" }])
    })
  },
)
