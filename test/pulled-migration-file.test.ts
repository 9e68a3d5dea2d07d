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

// The header names the schemas pulled and the tables changed: names a lesser role may choose
// (a schema's owner picks its name). None of them may close the comment they are written in.
describe("a pulled migration file's header", () => {
  const names = [
    ...HOSTILE,
    'a*/x/*',
    "*/import('child_process').then(c=>c.execSync('id>/tmp/p7'))/*",
    'g\u2028*/console.error("PWNED-HEADER-LS")/*',
    'h\u202e*/console.error("PWNED-BIDI")/*',
  ]
  const source = pulledMigrationSource(
    {
      after: '008_x*/console.error("PWNED-AFTER")/*',
      schemas: ['public', ...names],
      touchedTables: names,
      busyTables: names,
      notPulled: names,
    },
    [{ group: 'views', sql: 'SELECT 1' }],
    [{ group: 'views', sql: 'SELECT 2' }],
  )

  it('keeps every name inside its comment: the file is an import and the two functions', () => {
    const file = ts.createSourceFile('pulled.ts', source, ts.ScriptTarget.ES2022, true)
    expect(file.statements.map((node) => ts.SyntaxKind[node.kind])).toEqual([
      'ImportDeclaration',
      'FunctionDeclaration',
      'FunctionDeclaration',
    ])
    expect(statementsOf(source, 'up')).toEqual({
      kinds: ['ExpressionStatement'],
      sql: ['SELECT 1'],
    })
    expect(statementsOf(source, 'down')).toEqual({
      kinds: ['ExpressionStatement'],
      sql: ['SELECT 2'],
    })
    expect(ts.transpileModule(source, {}).diagnostics ?? []).toEqual([])
    // No JavaScript line terminator but \n, and no character that reorders what a reviewer sees.
    expect(source).not.toMatch(/[\r\u2028\u2029\u202a-\u202e\u2066-\u2069]/)
  })

  it('still shows each name, legibly', () => {
    expect(source).toContain('a* /x/*')
    expect(source).toContain("* /import('child_process').then(c=>c.execSync('id>/tmp/p7'))/*")
    expect(source).toContain('h\\u202e* /console.error("PWNED-BIDI")/*')
  })
})
