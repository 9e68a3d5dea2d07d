import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { lintMigrationLocks, readLockExceptions, readLockPolicy } from '../src/tooling.js'

const policy = readLockPolicy(new URL('../lock-policy.json', import.meta.url).pathname)
const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip
const up = (text: string) => async (db: Kysely<any>) => void (await sql.raw(text).execute(db))

postgres('lint:locks on PostgreSQL: scans through an index count', () => {
  it('catches a validated FOREIGN KEY on a filled, indexed column of x402_resources, and not a SET NOT NULL that changes nothing', async () => {
    // The validation reads every row through an index while SHARE ROW EXCLUSIVE blocks writes.
    const fk = async (db: Kysely<any>) => {
      await sql`UPDATE x402_resources SET openrouter_model_id = (SELECT id FROM x402_openrouter_models LIMIT 1)`.execute(
        db,
      )
      await sql`ALTER TABLE x402_resources ADD CONSTRAINT fk_scan FOREIGN KEY (openrouter_model_id) REFERENCES x402_openrouter_models (id)`.execute(
        db,
      )
    }
    const lint = await lintMigrationLocks(policy, {
      server: process.env.TEST_DATABASE_URL,
      startingPoint: '008_close_supabase_advisor_findings',
      steps: [
        {
          name: 'harmless_set_not_null',
          candidate: { up: up('ALTER TABLE x402_resources ALTER COLUMN id SET NOT NULL') },
        },
        { name: 'unsafe_validated_fk', candidate: { up: fk } },
      ],
      sourceOf: () => '',
    })
    expect(lint.violations.map((violation) => violation.migration)).toEqual(['unsafe_validated_fk'])
  })
})

describe('lint:locks policy: a busy table must exist', () => {
  it('refuses a busy table that is not in the rehearsed schema (a typo)', async () => {
    const typo = { ...policy, busyTables: ['x402_resource'] }
    await expect(
      lintMigrationLocks(typo, {
        startingPoint: '008_close_supabase_advisor_findings',
        steps: [
          {
            name: 'plain_index',
            candidate: { up: up('CREATE INDEX typo_i ON x402_resources (name)') },
          },
        ],
        sourceOf: () => '',
      }),
    ).rejects.toThrow(/x402_resource\b.*not/)
  })
})

describe('lock exceptions are whole comment lines, with a reason in words', () => {
  it('does not take a comment that forbids the exception for an exception', () => {
    expect(
      readLockExceptions(
        '// Do NOT add lint:locks allow x402_resources: that would hide the rewrite below',
        'm',
      ),
    ).toEqual([])
  })
  it('refuses an exception inside an SQL string or a block comment', () => {
    expect(() =>
      readLockExceptions(
        "  await sql`COMMENT ON TABLE ai_models IS 'lint:locks allow x402_resources: docs'`.execute(db)",
        'm',
      ),
    ).toThrow(/comment line/)
    expect(() =>
      readLockExceptions(
        '/* lint:locks allow x402_resources: applies to ai_models only, really */',
        'm',
      ),
    ).toThrow(/comment line/)
  })
  it('refuses a reason that is not words', () => {
    expect(() => readLockExceptions('// lint:locks allow x402_resources: xxxxxxxxxx', 'm')).toThrow(
      /reason/,
    )
    expect(() => readLockExceptions('// lint:locks allow x402_resources:', 'm')).toThrow(/reason/)
  })
  it('takes a whole comment line with a reason', () => {
    expect(
      readLockExceptions(
        '  // lint:locks allow x402_resources: the table is empty everywhere',
        'm',
      ),
    ).toEqual([{ table: 'x402_resources', reason: 'the table is empty everywhere' }])
  })
})
