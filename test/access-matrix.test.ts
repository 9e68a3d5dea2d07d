import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  ACCESS_MATRIX_FILE,
  accessMatrixOf,
  compareAccessMatrix,
  formatAccessMatrix,
  measureAccess,
} from '../src/tooling.js'
import { cli, lines } from './support/cli.js'
import { testTargets, useTestDatabase } from './support/test-database.js'

// The access matrix is measured, not read from grants: the committed file is what each API role
// can do on PGlite and on PostgreSQL alike, it gives anon no write anywhere, and a widened
// policy makes the check fail with the line that changed.

const matrixPath = fileURLToPath(new URL(`../${ACCESS_MATRIX_FILE}`, import.meta.url))
const committed = () => readFileSync(matrixPath, 'utf8')

/** The table lines of the matrix: schema section, then the cells. */
function tableLines(text: string): Array<{
  object: string
  operation: string
  anon: string
  authenticated: string
  service_role: string
}> {
  return text
    .split('\n')
    .filter(
      (line) => line.startsWith('| ') && !line.startsWith('| object') && !line.startsWith('| ---'),
    )
    .map((line) => {
      const [object, , operation, anon, authenticated, service_role] = line
        .slice(2, -2)
        .split(' | ')
      return {
        object: object!,
        operation: operation!,
        anon: anon!,
        authenticated: authenticated!,
        service_role: service_role!,
      }
    })
}

describe('the committed access matrix', () => {
  it('gives anon no write anywhere, and authenticated no write beyond its own rows', () => {
    const entries = tableLines(committed())
    expect(entries.length).toBeGreaterThan(0)
    const writes = entries.filter((entry) =>
      ['INSERT', 'UPDATE', 'DELETE'].includes(entry.operation),
    )
    expect(writes.filter((entry) => entry.anon !== 'none')).toEqual([])
    expect(
      writes.filter((entry) => !['none', 'own rows only'].includes(entry.authenticated)),
    ).toEqual([])
    expect(
      entries
        .filter((entry) => entry.object === 'public.x402_resources')
        .map((entry) => [entry.anon, entry.authenticated]),
    ).toEqual(Array.from({ length: 4 }, () => ['none', 'none']))
    for (const keys of [
      'public.x402_user_openrouter_integrations',
      'public.x402_user_claude_configs',
    ]) {
      expect(
        entries
          .filter((entry) => entry.object === keys)
          .map((entry) => [entry.operation, entry.anon, entry.authenticated]),
      ).toEqual(
        ['SELECT', 'INSERT', 'UPDATE', 'DELETE'].map((operation) => [
          operation,
          'none',
          'own rows only',
        ]),
      )
    }
  })

  it('db:access --check passes on the committed file and fails, with the changed line, on a stale one', async () => {
    const original = committed()
    const clean = await cli(['--check'], {}, 'src/cli/access.ts')
    expect(clean.code).toBe(0)
    expect(clean.stderr).toContain(`${ACCESS_MATRIX_FILE} is current.`)

    const line =
      '| public.x402_openrouter_models | table (RLS on) | INSERT | none | none | all rows |'
    const stale = original.replace(
      line,
      '| public.x402_openrouter_models | table (RLS on) | INSERT | none | all rows | all rows |',
    )
    expect(stale).not.toBe(original)
    writeFileSync(matrixPath, stale)
    try {
      const failed = await cli(['--check'], {}, 'src/cli/access.ts')
      expect(failed.code).toBe(1)
      expect(lines(failed.stdout)).toEqual([
        `@@ line ${original.split('\n').indexOf(line) + 1} @@`,
        '- | public.x402_openrouter_models | table (RLS on) | INSERT | none | all rows | all rows |',
        '+ | public.x402_openrouter_models | table (RLS on) | INSERT | none | none | all rows |',
      ])
      expect(lines(failed.stderr).at(-1)).toMatch(
        new RegExp(
          `^db:access --check failed: ${ACCESS_MATRIX_FILE} differs from the access the migrations give now`,
        ),
      )
    } finally {
      writeFileSync(matrixPath, original)
    }
  })
})

describe.each(testTargets)('measuring access on %s', (target) => {
  const database = useTestDatabase(target, 'none')

  it('measures what the committed file says, and a widened policy changes exactly its line', async () => {
    const { db } = database
    const measured = await accessMatrixOf(db)
    expect(compareAccessMatrix(committed(), measured)).toEqual([])

    // A migration that lets the browser add resources, as 008 stopped it from doing.
    await sql`CREATE POLICY "Anyone can add resources" ON x402_resources FOR INSERT TO anon WITH CHECK (true)`.execute(
      db,
    )
    // And one that lets any signed-in user read every user's Claude key.
    await sql`CREATE POLICY "Signed-in users read all configs" ON x402_user_claude_configs FOR SELECT TO authenticated USING (true)`.execute(
      db,
    )
    const widened = formatAccessMatrix(await measureAccess(db))
    const lineOf = (text: string) => committed().split('\n').indexOf(text) + 1
    const insert = '| public.x402_resources | table (RLS on) | INSERT | none | none | all rows |'
    const select =
      '| public.x402_user_claude_configs | table (RLS on) | SELECT | none | own rows only | all rows |'
    expect(compareAccessMatrix(committed(), widened)).toEqual([
      `@@ line ${lineOf(insert)} @@`,
      `- ${insert}`,
      '+ | public.x402_resources | table (RLS on) | INSERT | all rows | none | all rows |',
      `@@ line ${lineOf(select)} @@`,
      `- ${select}`,
      '+ | public.x402_user_claude_configs | table (RLS on) | SELECT | none | all rows | all rows |',
    ])
  })

  it('covers views and sequences too: a view that runs as its owner shows every resource to anon', async () => {
    const { db } = database
    await sql`CREATE SEQUENCE public.probe_sequence`.execute(db)
    await sql`CREATE VIEW public.probe_resources AS SELECT id, name FROM x402_resources`.execute(db)
    const entries = (await measureAccess(db)).filter((entry) => entry.object.startsWith('probe_'))
    expect(
      entries.map(({ object, kind, operation, anon, authenticated, service_role }) => [
        object,
        kind,
        operation,
        anon,
        authenticated,
        service_role,
      ]),
    ).toEqual([
      // Supabase's default privileges in public, and a view that reads x402_resources as its
      // owner, past row level security: exactly what the matrix is there to show in review.
      ['probe_resources', 'view', 'SELECT', 'all rows', 'all rows', 'all rows'],
      ['probe_resources', 'view', 'INSERT', 'all rows', 'all rows', 'all rows'],
      ['probe_resources', 'view', 'UPDATE', 'all rows', 'all rows', 'all rows'],
      ['probe_resources', 'view', 'DELETE', 'all rows', 'all rows', 'all rows'],
      ['probe_sequence', 'sequence', 'SELECT', 'allowed', 'allowed', 'allowed'],
      ['probe_sequence', 'sequence', 'UPDATE', 'allowed', 'allowed', 'allowed'],
    ])
    await sql`REVOKE ALL ON public.probe_resources, public.probe_sequence FROM anon`.execute(db)
    const revoked = (await measureAccess(db)).filter((entry) => entry.object.startsWith('probe_'))
    expect(revoked.map((entry) => entry.anon)).toEqual(Array.from({ length: 6 }, () => 'none'))
  })
})
