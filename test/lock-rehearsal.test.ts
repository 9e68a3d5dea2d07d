import { readFileSync } from 'node:fs'

import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import {
  checkLockPolicy,
  describeStatement,
  exportMigrationSql,
  type LockLint,
  type LockPolicy,
  lintMigrationLocks,
  type MeasuredStatement,
  type MigrationRehearsal,
  readLockExceptions,
  readLockPolicy,
  type Rehearsal,
  rehearse,
  snapshotSchema,
} from '../src/tooling.js'
import { splitSqlStatements } from '../src/rehearsal/split-sql.js'
import { pgDumpSkipReason } from './support/pg-dump.js'
import {
  buildProductionShapedDatabase,
  PRODUCTION_ADOPTION_POINT,
} from './support/production-fixture.js'
import { serverUrl, testTargets, withTestDatabase } from './support/test-database.js'

// The measured lock report (migrate:plan, lint:locks): each statement rehearsed on a scratch
// database with rows, its locks read from pg_locks, rewrites from relfilenode, scans from the
// scan counters. On PostgreSQL the scratch database is created on the TEST_DATABASE_URL server;
// on PGlite it is in memory, where a statement outside a transaction cannot be watched.

const PLAN_SQL = readFileSync(
  new URL('./fixtures/plan-005-openrouter-integration.sql', import.meta.url),
  'utf8',
)
const POLICY = readLockPolicy(new URL('../lock-policy.json', import.meta.url).pathname)
const ROWS = 500
// No limit by time here: the tests judge what was measured, never how fast the machine was.
const policy: LockPolicy = { ...POLICY, rows: ROWS, maxHoldMs: undefined }

function serverOf(target: string): string | undefined {
  return target === 'postgres' ? process.env.TEST_DATABASE_URL : undefined
}

function find(migration: MigrationRehearsal, start: RegExp): MeasuredStatement[] {
  return migration.statements.filter((statement) => start.test(statement.sql.replace(/\s+/g, ' ')))
}

function modesOn(statement: MeasuredStatement, table: string): string[] {
  return statement.locks.filter((lock) => lock.table === table).map((lock) => lock.mode)
}

/** Candidate migrations that each block writes to x402_resources while they scan or rewrite it. */
const UNSAFE = {
  unsafe_plain_index: async (db: Kysely<any>) => {
    await sql`CREATE INDEX idx_x402_resources_name ON x402_resources (name)`.execute(db)
  },
  unsafe_validated_check: async (db: Kysely<any>) => {
    await sql`ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_name_check CHECK (length(name) > 0)`.execute(
      db,
    )
  },
  unsafe_volatile_default: async (db: Kysely<any>) => {
    await sql`ALTER TABLE x402_resources ADD COLUMN request_token uuid DEFAULT gen_random_uuid()`.execute(
      db,
    )
  },
}

describe.each(testTargets)('the measured lock report on %s', (target) => {
  let modules: LockLint | undefined
  const moduleLint = async () =>
    (modules ??= await lintMigrationLocks(policy, { server: serverOf(target) }))

  it('shows 005 holding ACCESS EXCLUSIVE on x402_resources only for its catalog-only step, and passes the policy with those after it', async () => {
    const lint = await moduleLint()
    const [m005, m006] = lint.rehearsal.migrations
    expect(m005!.name).toBe('005_add_openrouter_integration')
    expect(m006!.name).toBe('006_rename_to_production_names')
    expect(lint.violations).toEqual([])
    expect(lint.rehearsal.seeded).toContainEqual({ table: 'x402_resources', rows: ROWS })

    const exclusive = m005!.statements.filter((statement) =>
      modesOn(statement, 'x402_resources').includes('ACCESS EXCLUSIVE'),
    )
    expect(exclusive.map((statement) => statement.sql)).toEqual([
      expect.stringMatching(/^ALTER TABLE x402_resources\s+ADD COLUMN openrouter_model_id/),
    ])
    const step1 = m005!.statements.filter(
      (statement) => statement.transaction === exclusive[0]!.transaction,
    )
    for (const statement of step1) {
      expect(statement.rewrote).toEqual([])
      expect(statement.scanned).toEqual([])
    }
    expect(exclusive[0]!.lockTimeout).toBe('2s')
    expect(exclusive[0]!.locks.every((lock) => lock.heldMs !== null && lock.heldMs > 0)).toBe(true)

    const validations = find(m005!, /^ALTER TABLE x402_resources VALIDATE CONSTRAINT/)
    expect(validations).toHaveLength(2)
    expect(modesOn(validations[0]!, 'x402_resources')).toEqual(['SHARE UPDATE EXCLUSIVE'])
    for (const validation of validations) {
      expect(validation.transaction).not.toBeNull()
      expect(validation.scanned).toContainEqual({ table: 'x402_resources', rowsRead: ROWS })
    }
  })

  it('shows the concurrent index build outside a transaction, blocking no write, or says it cannot see it', async () => {
    const [m005] = (await moduleLint()).rehearsal.migrations
    const [build] = find(m005!, /^CREATE INDEX CONCURRENTLY/)
    expect(build!.transaction).toBeNull()
    if (target === 'postgres') {
      expect(build!.lockEvidence).toBe('second-session')
      expect(modesOn(build!, 'x402_resources')).toContain('SHARE UPDATE EXCLUSIVE')
      expect(
        build!.locks.filter((lock) =>
          ['SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE'].includes(lock.mode),
        ),
      ).toEqual([])
      expect(build!.scanned?.map((scan) => scan.table)).toContain('x402_resources')
    } else {
      expect(build!.lockEvidence).toBe('not-measurable')
      expect(build!.locks).toEqual([])
      expect(describeStatement(build!)).toMatch(/locks not measurable here/)
      expect(modules!.unmeasured.length).toBeGreaterThan(0)
    }
  })

  it("shows the plan's plain SQL scanning for the CHECK under ACCESS EXCLUSIVE and building the index under SHARE", async () => {
    const rehearsal: Rehearsal = await rehearse([{ name: 'plan-005', script: PLAN_SQL }], {
      server: serverOf(target),
      startingPoint: '002_add_claude_integration',
      rows: { x402_resources: ROWS },
    })
    const [plan] = rehearsal.migrations
    expect(plan!.error).toBeUndefined()
    const [check] = find(
      plan!,
      /^ALTER TABLE x402_resources ADD CONSTRAINT x402_resources_resource_type_check/,
    )
    const [index] = find(plan!, /^CREATE INDEX idx_x402_resources_openrouter_model/)
    const exclusiveFrom = plan!.statements.find((statement) =>
      modesOn(statement, 'x402_resources').includes('ACCESS EXCLUSIVE'),
    )!
    expect(exclusiveFrom.index).toBeLessThan(check!.index)
    expect(check!.transaction).toBe(exclusiveFrom.transaction)
    expect(check!.scanned).toContainEqual({ table: 'x402_resources', rowsRead: ROWS })
    expect(modesOn(index!, 'x402_resources')).toContain('SHARE')
    expect(index!.scanned?.map((scan) => scan.table)).toContain('x402_resources')
    expect(index!.transaction).toBe(exclusiveFrom.transaction)
    expect(checkLockPolicy(plan!, policy).map((violation) => violation.table)).toContain(
      'x402_resources',
    )
  })

  it('catches a plain CREATE INDEX, a CHECK without NOT VALID and a column with a volatile default, unless the migration gives a reason', async () => {
    const allowed =
      '// lint:locks allow x402_resources: x402_resources is still empty when this runs'
    const lint = await lintMigrationLocks(policy, {
      server: serverOf(target),
      startingPoint: '007_openrouter_policies_per_supabase_advice',
      steps: Object.entries(UNSAFE).map(([name, up]) => ({ name, candidate: { up } })),
      sourceOf: (name) => (name === 'unsafe_volatile_default' ? allowed : ''),
    })
    const [index, check, volatile] = lint.rehearsal.migrations
    expect(checkLockPolicy(index!, policy)[0]!.message).toMatch(
      /takes SHARE on x402_resources, held while itself scans x402_resources/,
    )
    expect(checkLockPolicy(check!, policy)[0]!.message).toMatch(
      /takes ACCESS EXCLUSIVE on x402_resources, held while itself scans x402_resources/,
    )
    expect(checkLockPolicy(volatile!, policy)[0]!.message).toMatch(
      /takes ACCESS EXCLUSIVE on x402_resources, held while itself rewrites x402_resources/,
    )
    expect(lint.violations.map((violation) => violation.migration)).toEqual([
      'unsafe_plain_index',
      'unsafe_validated_check',
    ])
    expect(lint.excused).toEqual([
      {
        migration: 'unsafe_volatile_default',
        table: 'x402_resources',
        reason: 'x402_resources is still empty when this runs',
      },
    ])
  })
})

const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip

postgres('a rehearsal on a copy of the target schema (pg_dump)', () => {
  it("rehearses 005 on the production-shaped schema's own tables, leaving the target alone", async (context) => {
    const dumpSkip = await pgDumpSkipReason(process.env.TEST_DATABASE_URL!)
    if (dumpSkip) context.skip(dumpSkip)
    await withTestDatabase('postgres', async ({ db, location }) => {
      await buildProductionShapedDatabase(db)
      const before = await snapshotSchema(db, 'public')
      const connectionString = serverUrl(location)
      const rehearsal = await rehearse(
        [
          { migration: '005_add_openrouter_integration' },
          // Only the production shape has this column: the step fails on any other schema.
          {
            name: 'touches-production-only-column',
            candidate: {
              up: async (trx) =>
                void (await sql`COMMENT ON COLUMN x402_resources.search_vector IS 'full text'`.execute(
                  trx,
                )),
            },
          },
        ],
        {
          server: connectionString,
          copySchemaFrom: connectionString,
          startingPoint: PRODUCTION_ADOPTION_POINT,
          rows: { x402_resources: ROWS },
        },
      )
      expect(rehearsal.schema).toBe('copied from the target')
      expect(rehearsal.migrations.map((migration) => migration.error)).toEqual([
        undefined,
        undefined,
      ])
      const [m005] = rehearsal.migrations
      expect(checkLockPolicy(m005!, policy)).toEqual([])
      expect(
        find(
          m005!,
          /^ALTER TABLE x402_resources VALIDATE CONSTRAINT x402_resources_resource_type_check/,
        )[0]!.scanned,
      ).toEqual([{ table: 'x402_resources', rowsRead: ROWS }])
      expect(await snapshotSchema(db, 'public')).toEqual(before)
    })
  })
})

describe.each(testTargets)('the lock comments of migrate:sql on %s', (target) => {
  it("writes each statement's measured profile above it", async () => {
    const script = await exportMigrationSql('005', 'up', {
      lockProfile: { server: serverOf(target), rows: ROWS },
    })
    expect(script).toMatch(
      /-- locks: in transaction 1, lock_timeout 2s: ai_models SHARE ROW EXCLUSIVE \(blocks writes\) held [\d.]+ ms, x402_resources ACCESS EXCLUSIVE \(blocks reads and writes\) held [\d.]+ ms; no rewrite, no scan\nALTER TABLE x402_resources\s+ADD COLUMN openrouter_model_id/,
    )
    expect(script).toMatch(
      /-- locks: in transaction 2, lock_timeout 2s: x402_resources SHARE UPDATE EXCLUSIVE held [\d.]+ ms; scans x402_resources \(500 rows\)\nALTER TABLE x402_resources VALIDATE CONSTRAINT x402_resources_resource_type_check;/,
    )
    const build =
      target === 'postgres'
        ? /x402_resources SHARE UPDATE EXCLUSIVE held [\d.]+ ms; scans x402_resources/
        : /locks not measurable here/
    // The comment line alone: a failure then shows what was measured, not the whole script.
    const comment = script.match(/^(-- locks: .*)\nCREATE INDEX CONCURRENTLY/m)?.[1]
    expect(comment).toMatch(
      new RegExp(`^-- locks: on its own \\(no transaction\\), lock_timeout 2s: .*${build.source}`),
    )
  })
})

describe('the lock policy pieces', () => {
  it('refuses a write-blocking lock on a busy table held longer than maxHoldMs, even with nothing scanned', () => {
    const statement = (index: number, heldMs: number): MeasuredStatement => ({
      index,
      sql: 'ALTER TABLE x402_resources ENABLE ROW LEVEL SECURITY',
      transaction: 1,
      lockTimeout: '2s',
      durationMs: 1,
      lockEvidence: 'same-session',
      locks: [{ table: 'x402_resources', mode: 'ACCESS EXCLUSIVE', heldMs }],
      rewrote: [],
      scanned: [],
    })
    const rehearsal = (heldMs: number): MigrationRehearsal => ({
      name: '007_x',
      runnerTransaction: true,
      durationMs: 1,
      statements: [statement(1, heldMs)],
    })
    const limited = { ...policy, maxHoldMs: 1000 }
    expect(checkLockPolicy(rehearsal(999), limited)).toEqual([])
    expect(checkLockPolicy(rehearsal(1001), limited)[0]!.message).toMatch(
      /holds it 1001 ms, longer than the policy's 1000 ms/,
    )
    expect(checkLockPolicy(rehearsal(1001), { ...policy, maxHoldMs: undefined })).toEqual([])
  })

  it('refuses an exception without a reason', () => {
    expect(() => readLockExceptions('// lint:locks allow x402_resources', '007_x')).toThrow(
      /007_x: .* gives no reason/,
    )
  })

  it('splits a script at its statements, not inside quotes, bodies or comments', () => {
    expect(
      splitSqlStatements(
        "BEGIN; -- a; comment\nSELECT ';'; CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; COMMIT;",
      ),
    ).toEqual([
      'BEGIN',
      "SELECT ';'",
      'CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql',
      'COMMIT',
    ])
  })
})

// rev-e1 F1: migrate:sql writes describeStatement as a "-- locks:" comment, and a carriage return
// in a table's name (which a pull keeps byte for byte) ended that comment in psql and the SQL
// Editor, and what followed it ran as SQL.
describe('describeStatement of a table whose name holds line breaks', () => {
  it('is one line that no name can end: control and separator characters are escaped', () => {
    const hostile = 'a\rCREATE TABLE pwned(x int);--\u2028b\nc'
    const line = describeStatement({
      index: 1,
      sql: 'ALTER TABLE x ADD COLUMN y int',
      transaction: 1,
      lockTimeout: '2s',
      durationMs: 1,
      lockEvidence: 'second-session',
      locks: [{ table: hostile, mode: 'ACCESS EXCLUSIVE', heldMs: 1 }],
      rewrote: [hostile],
      scanned: [{ table: hostile, rowsRead: 1 }],
    } as MeasuredStatement)
    expect(line).not.toMatch(/[\r\n\u2028\u2029]/)
    expect(line).toContain('a\\rCREATE TABLE pwned')
  })
})
