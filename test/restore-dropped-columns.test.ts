import { readFileSync } from 'node:fs'

import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateDown, migrateTo } from '../src/tooling.js'
import { createResource } from './support/fixtures.js'
import { testTargets, withTestDatabase } from './support/test-database.js'
import { MIGRATION_001 } from './support/migration-names.js'

// After `down --allow-data-loss` and `migrate:up`, `INSERT … SELECT *` cannot restore 001's
// backup: 001 drops columns and no rows, so the rows are still there (a duplicate key).
// docs/rollback.md gives an UPDATE … FROM; this runs it as written.

/** docs/rollback.md's statement that restores 001's backup, up to its semicolon. */
function documentedRestoreOf001(): string {
  const page = readFileSync(new URL('../docs/rollback.md', import.meta.url), 'utf8')
  const statement =
    /UPDATE x402_resources r SET pt_[^;]*x402_backup\."001_x402_resources_<time>"[^;]*;/.exec(
      page,
    )?.[0]
  if (!statement)
    throw new Error(
      'docs/rollback.md has no UPDATE that restores x402_backup."001_x402_resources_<time>".',
    )
  return statement
}

describe.each(testTargets)('restoring 001 as docs/rollback.md says, on %s', (target) => {
  it('puts every dropped value back, NULLs and defaults included', async () => {
    const restore = documentedRestoreOf001()
    await withTestDatabase(target, async ({ db }) => {
      await migrateTo(db, MIGRATION_001, { env: {} })
      await createResource(db, {
        pt_system_prompt: 'You are terse.',
        pt_parameters: JSON.stringify([{ name: 'topic' }]),
        pt_model: 'claude-opus-4',
        pt_max_tokens: 1234,
        pt_allows_user_message: true,
      } as never)
      // NULLs where migrate:up would write defaults: only an exact restore brings them back.
      await createResource(db, {
        pt_parameters: null,
        pt_model: null,
        pt_max_tokens: null,
        pt_allows_user_message: null,
      } as never)
      await createResource(db)
      const rows = () =>
        sql`SELECT * FROM x402_resources ORDER BY id`.execute(db).then((result) => result.rows)
      const before = await rows()

      await migrateDown(db, { env: {}, allowDataLoss: true })
      await migrateTo(db, MIGRATION_001, { env: {} })
      expect(await rows()).not.toEqual(before)
      const { rows: backups } = await sql<{ name: string }>`
        SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'x402_backup' AND c.relname LIKE '001\\_x402\\_resources\\_%'`.execute(db)
      expect(backups).toHaveLength(1)
      await sql.raw(restore.replace('001_x402_resources_<time>', backups[0]!.name)).execute(db)

      expect(await rows()).toEqual(before)
    })
  })
})
