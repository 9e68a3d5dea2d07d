import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { migrateToLatest, planRepair } from '../src/tooling.js'
import { isSuperuser, withLesserRole } from './support/lesser-role.js'
import { ALL_MIGRATIONS } from './support/migration-names.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// Review reva F1: the repair plan (migrate:baseline -- <name> --plan) lists each conflict it
// cannot fix in its comments, with the catalog's text: a trigger's name and definition, which
// whoever may create a trigger on the table chose (Supabase's grants give TRIGGER to the API
// roles). A line feed or carriage return there ended the `--` comment, and the operator who ran
// the plan with psql -f, as its header says, ran the rest as SQL: the login became a superuser.
// PostgreSQL only: the plan is run with psql.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

describe.skipIf(skipReason)('the repair plan with catalog text that holds line breaks', () => {
  it('keeps every name and definition inside its comment: psql -f runs only the plan’s statements', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateToLatest(db, { env: {} })
      await withLesserRole(
        db,
        'plan_text',
        async (role) => {
          const injected = `ALTER ROLE ${role} SUPERUSER; -- `
          await sql
            .raw(
              `CREATE TRIGGER "audit\r${injected}\n" BEFORE UPDATE ON public.x402_user_openrouter_integrations
             FOR EACH ROW EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger('\n${injected}', '\r${injected}', '\u2028${injected}')`,
            )
            .execute(db)
          const plan = await planRepair(db, ALL_MIGRATIONS.at(-1)!, { decisions: [] })
          expect(plan.unresolved.map(({ line }) => line).join('\n')).toMatch(/trigger/)
          const folder = mkdtempSync(join(tmpdir(), 'x402-plan-'))
          try {
            const file = join(folder, 'plan.sql')
            writeFileSync(file, plan.script)
            execFileSync(
              'psql',
              [serverUrl(location), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file],
              {
                encoding: 'utf8',
              },
            )
          } finally {
            rmSync(folder, { recursive: true, force: true })
          }
          expect(await isSuperuser(db, role)).toBe(false)
          // Each line of the plan is a comment, a statement of the plan, or empty.
          const outside = plan.script
            .split(/\r\n|\n|\r/)
            .filter(
              (line) =>
                line !== '' && !line.startsWith('--') && !line.startsWith('SET lock_timeout'),
            )
          for (const line of outside) expect(plan.statements.join('\n')).toContain(line)
        },
        { login: true },
      )
    })
  })
})
