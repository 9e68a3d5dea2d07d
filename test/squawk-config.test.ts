import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { afterAll, describe, expect, it } from 'vitest'

import { migrations } from '../src/migrations/index.js'

// .squawk.toml exempts the frozen baseline files by name. Whatever is added to it, the
// lock-safety rules must keep firing on 005 and every later migration, up and down: squawk runs
// here with the repository's configuration on unsafe SQL filed under those migrations' names,
// as `npm run lint:sql` names its exports.

const root = fileURLToPath(new URL('..', import.meta.url))
const LOCK_SAFETY_RULES = [
  'constraint-missing-not-valid',
  'require-concurrent-index-creation',
  'require-lock-timeout',
]
const UNSAFE_SQL = [
  'ALTER TABLE x402_resources ADD CONSTRAINT some_check CHECK (price > 0);',
  'CREATE INDEX some_index ON x402_resources (price);',
  '',
].join('\n')

describe('.squawk.toml', () => {
  const directory = mkdtempSync(join(tmpdir(), 'x402-squawk-config-'))
  afterAll(() => rmSync(directory, { recursive: true, force: true }))

  it('keeps the lock-safety rules on for 005 and every later migration, up and down', async () => {
    const fileNames = Object.keys(migrations)
      .filter((name) => name >= '005')
      .flatMap((name) => [`${name}.up.sql`, `${name}.down.sql`])
    expect(fileNames).toContain('005_add_openrouter_integration.up.sql')
    for (const fileName of fileNames) writeFileSync(join(directory, fileName), UNSAFE_SQL)

    const findings = await squawkJson(directory, fileNames)

    for (const fileName of fileNames) {
      const rules = new Set(
        findings.filter((finding) => finding.file === fileName).map((finding) => finding.rule_name),
      )
      expect(
        [...rules].filter((rule) => LOCK_SAFETY_RULES.includes(rule)).sort(),
        fileName,
      ).toEqual(LOCK_SAFETY_RULES)
    }
  })
})

interface SquawkFinding {
  file: string
  rule_name: string
}

/** squawk's JSON report of `fileNames` in `directory`, with the repository's configuration. */
async function squawkJson(directory: string, fileNames: string[]): Promise<SquawkFinding[]> {
  const args = [
    join(root, 'node_modules/squawk-cli/js/bin/squawk'),
    `--config=${join(root, '.squawk.toml')}`,
    '--reporter=json',
    ...fileNames,
  ]
  // squawk exits with 1 when it finds something, which is the point here.
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: directory }).catch(
    (error: { stdout?: string }) => {
      if (!error.stdout) throw error
      return { stdout: error.stdout }
    },
  )
  return JSON.parse(stdout) as SquawkFinding[]
}
