import { describe, expect, it } from 'vitest'

import { compareAccessMatrix } from '../src/tooling.js'

// db:access:check compares the whole file: an object that moves between schemas, a line that
// moves or is duplicated, all make it fail, with a line diff that says where.

const committed = [
  '# Access matrix',
  '',
  '| object | kind | operation | anon | authenticated | service_role |',
  '| public.x402_openrouter_models | table (RLS on) | SELECT | all rows | all rows | all rows |',
  '| x402_migrations.prior_state_008 | table (RLS off) | SELECT | none | none | none |',
  '',
].join('\n')

describe('compareAccessMatrix', () => {
  it('finds no difference between equal files', () => {
    expect(compareAccessMatrix(committed, committed)).toEqual([])
  })

  it('sees an object that moved from x402_migrations to public, with the line number', () => {
    const moved = committed.replace(
      '| x402_migrations.prior_state_008 |',
      '| public.prior_state_008 |',
    )
    expect(compareAccessMatrix(committed, moved)).toEqual([
      '@@ line 5 @@',
      '- | x402_migrations.prior_state_008 | table (RLS off) | SELECT | none | none | none |',
      '+ | public.prior_state_008 | table (RLS off) | SELECT | none | none | none |',
    ])
  })

  it('sees reordered and duplicated lines', () => {
    const lines = committed.split('\n')
    const reordered = [...lines.slice(0, 3), lines[4], lines[3], ...lines.slice(5)].join('\n')
    expect(compareAccessMatrix(committed, reordered)).not.toEqual([])
    const duplicated = [...lines.slice(0, 4), lines[3], ...lines.slice(4)].join('\n')
    expect(compareAccessMatrix(committed, duplicated)).toEqual(['@@ line 5 @@', `+ ${lines[3]}`])
  })

  it('sees a difference of line endings alone', () => {
    expect(compareAccessMatrix(committed.replaceAll('\n', '\r\n'), committed)).toEqual([
      '~ the files differ only in line endings or in the final newline: run `npm run db:access` and commit the file as written',
    ])
  })
})
