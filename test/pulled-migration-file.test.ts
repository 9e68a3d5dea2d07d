import ts from 'typescript'
import { describe, expect, it } from 'vitest'

import { pulledMigrationSource } from '../src/pull/pulled-migration-file.js'

// The pulled migration is TypeScript written from the live catalog: names, comments, defaults and
// function bodies that anyone with CREATE could choose. Whatever they hold, the file's `up` and
// `down` are only `sql` statements, each with the text the catalog gave, byte for byte.

const HOSTILE = [
  'a\rconsole.error("PWNED-CR")//',
  'b\u2028console.error("PWNED-LS")//',
  'c\u2029console.error("PWNED-PS")//',
  'd\nconsole.error("PWNED-LF")//',
  'e*/console.error("PWNED-COMMENT")/*',
  'f`${console.error("PWNED-TEMPLATE")}`\\',
]

/** The statements of the exported function `name`, and the cooked text of each `sql` template. */
function statementsOf(source: string, name: string): { kinds: string[]; sql: string[] } {
  const file = ts.createSourceFile('pulled.ts', source, ts.ScriptTarget.ES2022, true)
  const fn = file.statements.find(
    (node): node is ts.FunctionDeclaration =>
      ts.isFunctionDeclaration(node) && node.name?.text === name,
  )
  const kinds: string[] = []
  const sql: string[] = []
  for (const statement of fn!.body!.statements) {
    kinds.push(ts.SyntaxKind[statement.kind])
    statement.forEachChild(function visit(node) {
      if (ts.isTaggedTemplateExpression(node) && ts.isNoSubstitutionTemplateLiteral(node.template))
        sql.push(node.template.text)
      node.forEachChild(visit)
    })
  }
  return { kinds, sql }
}

describe('a pulled migration file', () => {
  const up = HOSTILE.map((name) => ({
    group: `table ${name}`,
    sql: `CREATE TABLE "${name}" (id int DEFAULT E'x\\r\\ny')`,
  }))
  const down = HOSTILE.map((name) => ({ group: `table ${name}`, sql: `DROP TABLE "${name}"` }))
  const source = pulledMigrationSource(
    { after: '008_x', schemas: ['public'], touchedTables: [], busyTables: [], notPulled: HOSTILE },
    up,
    down,
  )

  it('holds no code from the names it writes: up and down are sql statements only', () => {
    for (const [name, steps] of [
      ['up', up],
      ['down', down],
    ] as const) {
      const { kinds, sql } = statementsOf(source, name)
      expect(kinds.every((kind) => kind === 'ExpressionStatement')).toBe(true)
      expect(sql).toEqual(steps.map((step) => step.sql))
    }
    expect(ts.transpileModule(source, {}).diagnostics ?? []).toEqual([])
  })
})
