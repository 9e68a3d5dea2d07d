import { execFile } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { migrationNames } from '../src/migrations/index.js'
import type { CliResult } from './support/cli.js'
import { createTestDatabase, testTargets } from './support/test-database.js'

// migrate:new, run in a temporary copy of the repository (src/, bin/, package.json, the
// tsconfigs and the lint configuration; node_modules linked), as a developer runs it in a clone:
// the migration it writes type-checks, applies, reverts, passes lint:locks, and its table is in
// the types db:codegen writes.

const root = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)
const NAME = 'add_widget_notes'
const NEXT = `${String(Math.max(...migrationNames.map((name) => Number(name.slice(0, 3)))) + 1).padStart(3, '0')}_${NAME}`

let copy: string

/** Runs src/cli/`script`.ts of the copy (through tsx: no dist/ to build), in the copy. */
async function inCopy(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !/^(DATABASE_URL|PGLITE_DATA_DIR|MIGRATION_.*|LINT_LOCKS_DATABASE_URL|REHEARSAL_DATABASE_URL)$/.test(
          name,
        ),
    ),
  )
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', `src/cli/${script}.ts`, ...args],
      {
        cwd: copy,
        env: { ...inherited, ...env },
        timeout: 600_000,
      },
    )
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), 'x402-migrate-new-'))
  for (const entry of [
    'src',
    'bin',
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'lock-policy.json',
    '.squawk.toml',
    'adoption-decisions.json',
  ]) {
    cpSync(join(root, entry), join(copy, entry), { recursive: true })
  }
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
})
afterAll(() => rmSync(copy, { recursive: true, force: true }))

describe('migrate:new in a copy of the repository', () => {
  it(`writes ${NEXT}.ts with up and down, importing only kysely, and registers it in index.ts`, async () => {
    const made = await inCopy('migrate', ['new', NAME])
    expect(made.code).toBe(0)
    expect(made.stdout).toBe('')
    expect(made.stderr).toContain(`wrote ${join(copy, 'src', 'migrations', `${NEXT}.ts`)}`)

    const source = readFileSync(join(copy, 'src', 'migrations', `${NEXT}.ts`), 'utf8')
    expect(source.match(/^import .*$/gm)).toEqual([`import { type Kysely, sql } from 'kysely'`])
    expect(source).toMatch(/export async function up\(db: Kysely<any>\): Promise<void>/)
    expect(source).toMatch(/export async function down\(db: Kysely<any>\): Promise<void>/)
    // The runner sets the timeouts; the template sets none of its own.
    expect(source).not.toMatch(/^\s*await sql`SET /m)

    const registry = readFileSync(join(copy, 'src', 'migrations', 'index.ts'), 'utf8')
    const identifier = `m${NEXT.slice(0, 3)}AddWidgetNotes`
    expect(registry).toContain(`import * as ${identifier} from './${NEXT}.js'\n\n`)
    expect(registry).toContain(`  '${NEXT}': ${identifier},\n}`)
  })

  it('refuses a name a migration has already, writing nothing', async () => {
    const files = readdirSync(join(copy, 'src', 'migrations'))
    const registry = readFileSync(join(copy, 'src', 'migrations', 'index.ts'), 'utf8')
    const again = await inCopy('migrate', ['new', NAME])
    expect(again.code).toBe(2)
    expect(again.stderr.trim()).toMatch(
      new RegExp(
        `^migrate new failed: a migration named ${NAME} exists already: .*${NEXT}\\.ts\\. Nothing was written\\. ` +
          `Choose another name \\(npm run migrate:new -- <name>\\), or edit .*${NEXT}\\.ts if it is the one you meant\\.$`,
      ),
    )
    expect(readdirSync(join(copy, 'src', 'migrations'))).toEqual(files)
    expect(readFileSync(join(copy, 'src', 'migrations', 'index.ts'), 'utf8')).toBe(registry)
  })

  it('type-checks', async () => {
    const checked = await run(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', 'tsconfig.json'],
      {
        cwd: copy,
        timeout: 600_000,
      },
    ).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    )
    expect(checked).toEqual({ code: 0, stdout: '' })
  })

  it.each(testTargets)('applies and reverts on %s', async (target) => {
    const database = await createTestDatabase(target)
    await database.db.destroy() // the command opens the database itself
    const env =
      'connectionString' in database.location
        ? { DATABASE_URL: database.location.connectionString }
        : { PGLITE_DATA_DIR: database.location.dataDir }
    try {
      const latest = await inCopy('migrate', ['latest'], env)
      expect(latest.code, latest.stderr).toBe(0)
      expect(latest.stderr).toMatch(new RegExp(`\\napplied  ${NEXT} in \\d`))

      const down = await inCopy('migrate', ['down'], env)
      expect(down.code, down.stderr).toBe(0)
      expect(down.stderr).toMatch(new RegExp(`\\nreverted ${NEXT} in \\d`))

      const list = await inCopy('migrate', ['list', '--json'], env)
      expect(
        (
          JSON.parse(list.stdout) as { migrations: Array<{ name: string; status: string }> }
        ).migrations.at(-1),
      ).toEqual({
        name: NEXT,
        status: 'pending',
        appliedAt: null,
      })
    } finally {
      await database.destroy()
    }
  })

  it('passes lint:locks', async () => {
    const server = process.env.TEST_DATABASE_URL
    const lint = await inCopy('lint-locks', [], server ? { LINT_LOCKS_DATABASE_URL: server } : {})
    expect(lint.code, lint.stderr).toBe(0)
    expect(lint.stderr).toMatch(new RegExp(`migrations rehearsed \\(.*, ${NEXT}\\)`))
    expect(lint.stdout).toBe('')
    if (server) expect(lint.stderr).not.toContain('PARTIAL CHECK')
  })

  it('shows up in the types db:codegen writes', async () => {
    const codegen = await inCopy('codegen', [])
    expect(codegen.code, codegen.stderr).toBe(0)
    const types = readFileSync(join(copy, 'src', 'types', 'database.ts'), 'utf8')
    expect(types).toMatch(
      /export interface X402WidgetNotes \{\n {2}created_at: Generated<Timestamp>;\n {2}id: Generated<string>;\n\}/,
    )
    expect(types).toContain('  x402_widget_notes: X402WidgetNotes;')
    expect(existsSync(join(root, 'src', 'migrations', `${NEXT}.ts`))).toBe(false)
  })
})
