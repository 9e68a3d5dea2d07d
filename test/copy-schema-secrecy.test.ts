import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { copySchema, pgDumpInvocation } from '../src/rehearsal/copy-schema.js'

// --copy-schema runs pg_dump: its arguments are visible to every user of the machine (ps).
const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip
const bin = mkdtempSync(join(tmpdir(), 'fake-pg-dump-'))
afterAll(() => rmSync(bin, { recursive: true, force: true }))

describe('pg_dump is given no password in its arguments', () => {
  it('moves the password of the URL, or of its query, to PGPASSWORD', () => {
    const inUrl = pgDumpInvocation('postgres://app:s%40cret@db.example:5432/app?sslmode=require')
    expect(inUrl.args.join(' ')).not.toMatch(/cret/)
    expect(inUrl.args.at(-1)).toBe('postgres://app@db.example:5432/app?sslmode=require')
    expect(inUrl.env.PGPASSWORD).toBe('s@cret')
    const inQuery = pgDumpInvocation('postgres://app@db.example/app?password=hunter2')
    expect(inQuery.args.join(' ')).not.toMatch(/hunter2/)
    expect(inQuery.env.PGPASSWORD).toBe('hunter2')
  })
})

postgres('copySchema runs pg_dump without the password in argv', () => {
  it('hands pg_dump the password through its environment', async () => {
    // A stand-in pg_dump that records what it was given and dumps nothing.
    const record = join(bin, 'record')
    writeFileSync(
      join(bin, 'pg_dump'),
      `#!/bin/sh\necho "args: $*" > ${record}\necho "password: $PGPASSWORD" >> ${record}\n`,
    )
    chmodSync(join(bin, 'pg_dump'), 0o755)
    const path = process.env.PATH
    process.env.PATH = `${bin}${delimiter}${path}`
    try {
      const target = new URL(process.env.TEST_DATABASE_URL!)
      target.username = target.username || 'postgres'
      target.password = 'not-in-argv'
      await copySchema(target.toString(), process.env.TEST_DATABASE_URL!)
    } finally {
      process.env.PATH = path
    }
    const recorded = readFileSync(record, 'utf8')
    expect(recorded).toMatch(/^args: .*--schema-only/m)
    expect(recorded).not.toMatch(/^args: .*not-in-argv/m)
    expect(recorded).toMatch(/^password: not-in-argv$/m)
  })
})
