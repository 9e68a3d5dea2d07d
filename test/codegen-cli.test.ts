import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import ts from 'typescript'
import { describe, expect, it } from 'vitest'

import { cli } from './support/cli.js'
import { commandIn, copyOfTheRepository } from './support/repository-copy.js'

// db:codegen --check, run as the npm script runs it (compiled, through bin/x402-db.mjs). Its modules are
// loaded lazily, and kysely-codegen require()s kysely: loaded in the same Promise.all as kysely's
// import, Node refuses the half-loaded module ("Cannot require() ES Module … because it is not
// yet fully loaded"). --help and refusals alone would not find that.
describe('db:codegen --check', () => {
  it('finds the committed src/types/database.ts up to date, and exits 0', async () => {
    const run = await cli(['--check'], {}, 'src/cli/codegen.ts')
    expect({ code: run.code, failed: /failed/.test(run.stderr) ? run.stderr : '' }).toEqual({
      code: 0,
      failed: '',
    })
  })
})

// rev-d1 F2: kysely-codegen writes a column's comment into a /** … */ block as it is. A comment
// from a pulled migration (production's text) that holds "*/" must stay inside its block.
describe('db:codegen with a comment that closes its block', () => {
  it('keeps the comment in its block: the types file declares only types', async () => {
    const copy = copyOfTheRepository()
    try {
      writeFileSync(
        join(copy, 'src/migrations/009_hostile_comment.ts'),
        [
          "import { type Kysely, sql } from 'kysely'",
          'export async function up(db: Kysely<any>): Promise<void> {',
          "  await sql`COMMENT ON COLUMN x402_resources.name IS 'note */ export const PWNED = 1; /* end'`.execute(db)",
          '}',
          'export async function down(db: Kysely<any>): Promise<void> {',
          '  await sql`COMMENT ON COLUMN x402_resources.name IS NULL`.execute(db)',
          '}',
          '',
        ].join('\n'),
      )
      const index = join(copy, 'src/migrations/index.ts')
      writeFileSync(
        index,
        readFileSync(index, 'utf8')
          .replace(
            "import type { Migration } from 'kysely/migration'\n",
            "import type { Migration } from 'kysely/migration'\nimport * as m009 from './009_hostile_comment.js'\n",
          )
          .replace(
            "  '008_close_supabase_advisor_findings': m008CloseSupabaseAdvisorFindings,\n",
            "  '008_close_supabase_advisor_findings': m008CloseSupabaseAdvisorFindings,\n  '009_hostile_comment': m009,\n",
          ),
      )
      const run = await commandIn(copy, ['codegen'], {})
      expect(run.code, run.stderr).toBe(0)
      const types = readFileSync(join(copy, 'src/types/database.ts'), 'utf8')
      expect(types).toContain('note')
      const file = ts.createSourceFile('database.ts', types, ts.ScriptTarget.ES2022, true)
      const values = file.statements.filter(
        (statement) => ts.isVariableStatement(statement) || ts.isExpressionStatement(statement),
      )
      expect(values).toEqual([])
    } finally {
      rmSync(copy, { recursive: true, force: true })
    }
  }, 300_000)
})
