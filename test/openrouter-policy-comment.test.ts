import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { baselineMigrations, migrateTo, planRepair } from '../src/tooling.js'
import { MIGRATION_006, MIGRATION_007 } from './support/migration-names.js'
import {
  createProductionTodayTestDatabase,
  PRODUCTION_TODAY_ADOPTION_POINT,
} from './support/production-today.js'
import { type TestDatabase, testTargets } from './support/test-database.js'

// 007 rewrites production's OpenRouter user policy as Supabase advises. A comment production
// wrote on that policy is production's documentation: 007 keeps it, and so does its down.

const POLICY = 'Users can manage their own OpenRouter config'
const COMMENT = "Each user reads and writes only their own key; it's checked by auth.uid()"

describe.each(testTargets)(
  '007 on production today with a comment on the OpenRouter policy, on %s',
  (target) => {
    let database: TestDatabase
    beforeAll(async () => {
      database = await createProductionTodayTestDatabase(target)
      const { db } = database
      await sql`COMMENT ON POLICY ${sql.id(POLICY)} ON x402_user_openrouter_integrations IS ${sql.lit(COMMENT)}`.execute(
        db,
      )
      const plan = await planRepair(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
      expect(plan.unresolved).toEqual([])
      for (const statement of plan.statements) await sql.raw(statement).execute(db)
      await baselineMigrations(db, PRODUCTION_TODAY_ADOPTION_POINT, { decisions: [] })
    })
    afterAll(async () => {
      await database?.destroy()
    })

    async function policy(): Promise<{ roles: string[]; comment: string | null } | undefined> {
      const { rows } = await sql<{ roles: string[]; comment: string | null }>`
      SELECT polroles::regrole[]::text[] AS roles, obj_description(oid, 'pg_policy') AS comment
      FROM pg_policy
      WHERE polrelid = 'public.x402_user_openrouter_integrations'::regclass AND polname = ${POLICY}
    `.execute(database.db)
      return rows[0]
    }

    it('keeps the comment when 007 goes up, and when it goes down', async () => {
      const { db } = database
      expect(await policy()).toEqual({ roles: ['-'], comment: COMMENT })

      await migrateTo(db, MIGRATION_007)
      expect(await policy()).toEqual({ roles: ['authenticated'], comment: COMMENT })

      await migrateTo(db, MIGRATION_006)
      expect(await policy()).toEqual({ roles: ['-'], comment: COMMENT })
    })
  },
)
