import { readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'

import { cliEnv } from './support/cli.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { commandIn, copyOfTheRepository } from './support/repository-copy.js'
import { testTargets, withTestDatabase } from './support/test-database.js'

// Review revt F1: the command line runs dist/, built when it started; a migration file edited
// after that (while the run waited for its lock, say) is not the text that runs. The run recorded
// the file's checksum as applied, and migrate:check then said OK for a text that never ran.

/** A time in whole seconds, which the file system and the build's stamp keep exactly. */
const WHOLE_SECONDS = 1_700_000_000

describe.each(testTargets)(
  'a migration file that differs from what dist/ was built from, on %s',
  (target) => {
    it('stops the run before that migration, naming the file, and records nothing of it', async () => {
      const copy = copyOfTheRepository()
      try {
        const file = join(copy, 'src', 'migrations', `${MIGRATION_005}.ts`)
        utimesSync(file, WHOLE_SECONDS, WHOLE_SECONDS)
        // dist/ is built (or its stamp takes the copy's times): from here, a file of the same size
        // and time is taken as unchanged, and dist/ runs as it was built.
        const built = await commandIn(copy, ['--build'], {})
        expect(built.code, built.stderr).toBe(0)
        const text = readFileSync(file, 'utf8')
        const edited = text.replace('OpenRouter', 'OPENROUTER')
        expect(edited).not.toBe(text)
        writeFileSync(file, edited)
        utimesSync(file, WHOLE_SECONDS, WHOLE_SECONDS)

        await withTestDatabase(target, async ({ db, location }) => {
          const run = await commandIn(copy, ['migrate', 'latest'], cliEnv(location))
          expect(run.code).not.toBe(0)
          expect(run.stderr).toContain(`src/migrations/${MIGRATION_005}.ts`)
          expect(run.stderr).toContain('since dist/ was built')
          const { rows } = await sql<{ name: string }>`
          SELECT name FROM x402_migrations.kysely_migration WHERE name >= ${MIGRATION_005}`.execute(
            db,
          )
          expect(rows).toEqual([])
        })
      } finally {
        rmSync(copy, { recursive: true, force: true })
      }
    })
  },
)
