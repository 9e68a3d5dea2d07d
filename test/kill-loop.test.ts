import { type Kysely, sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'

import {
  checkDrift,
  migrateDown,
  migrateTo,
  migrateToLatest,
  migrationStatus,
} from '../src/tooling.js'
import { createModel, createResource, createUser } from './support/fixtures.js'
import { killRunningScripts, startScript } from './support/script-process.js'
import {
  openSession,
  pollUntil,
  waitUntilGone,
  withApplicationName,
} from './support/server-sessions.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'
import { MIGRATION_005 } from './support/migration-names.js'
import { backupStampsOf005, restore005AsDocumented } from './support/documented-restore.js'

// SIGKILL at random moments of `migrate:down -- --allow-data-loss` and `migrate:latest` on 005,
// at least 20 kills. After each: the same command, run again, completes; `migrate:check` is
// clean; and, once the rows that the rollback moved to x402_backup are copied back (docs/rollback.md's
// way back, run as written), every row of x402_resources and user_openrouter_integrations equals the original,
// column by column. PostgreSQL only: PGlite runs inside the killed process.
//
// `migrate:down` reverts the newest applied migration only, so every down round starts from a
// database whose newest applied migration is 005 (checked before the run): the loop starts at
// 005, and after each `latest` round, which applies 005 and every migration after it as a
// deployment does (a kill may land in any of them), the test goes back to 005 with migrateTo,
// reverting the later migrations, all of them transactional. 006's down drops the catalog's
// columns that 006 added, which hold the defaults of the seeded model: with the opt-in it copies
// the catalog to x402_backup first, a copy of rows that stay, which the test drops.

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'
const KILLED = 'x402-kill-loop'
const KILLS = 20

afterEach(killRunningScripts)

/** A small seeded generator, so that a failing sequence can be replayed (the seed is in the test's failure). */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

async function seed(db: Kysely<any>): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const userId = await createUser(db)
    await db
      .insertInto('user_openrouter_integrations')
      .values({ user_id: userId, encrypted_api_key: `aa:${i}` })
      .execute()
    await sql`INSERT INTO x402_user_claude_configs (user_id, api_key_encrypted) VALUES (${userId}, ${`cc:${i}`})`.execute(
      db,
    )
  }
  const modelId = await createModel(db, undefined, 'ai_models')
  for (let i = 0; i < 3; i++) {
    await createResource(db, {
      resource_type: 'openrouter_instant',
      openrouter_model_id: modelId,
      openrouter_config: { modelId: 'openai/gpt-4o', systemPrompt: `p${i}`, params: {} },
    })
    await createResource(db, {
      resource_type: 'proxy',
      openrouter_config: { modelId: 'x', systemPrompt: `c${i}`, params: {} },
    })
    await createResource(db)
  }
}

async function everyRow(db: Kysely<any>): Promise<unknown> {
  const { rows: resources } =
    await sql`SELECT to_jsonb(r) AS row FROM x402_resources r ORDER BY id`.execute(db)
  const { rows: keys } =
    await sql`SELECT to_jsonb(k) AS row FROM user_openrouter_integrations k ORDER BY user_id`.execute(
      db,
    )
  const { rows: claude } =
    await sql`SELECT to_jsonb(c) AS row FROM x402_user_claude_configs c ORDER BY user_id`.execute(
      db,
    )
  return { resources, keys, claude }
}

/** docs/rollback.md's way back from 005's backups, run as written; then the backups are dropped. */
async function restoreFromBackups(db: Kysely<any>): Promise<void> {
  // From the first backup on: every backup of the rollback (a resumed one leaves several).
  const first = (await backupStampsOf005(db))[0]
  if (first) await restore005AsDocumented(db, first)
  const { rows } = await sql<{ name: string }>`
    SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'x402_backup' ORDER BY table_name
  `.execute(db)
  for (const { name } of rows) {
    // 006's down copies the catalog, whose rows stay in ai_models: nothing to restore.
    if (
      !/^(005_user_openrouter_integrations|005_x402_resources|006_x402_openrouter_models)_/.test(
        name,
      )
    )
      throw new Error(`unexpected backup table ${name}`)
    await sql`DROP TABLE ${sql.id('x402_backup', name)}`.execute(db)
  }
}

/** The ids of the resources and the users of the keys, live or in x402_backup. */
async function movedOrKept(db: Kysely<any>): Promise<{ resources: string[]; keys: string[] }> {
  const { rows: backups } = await sql<{ name: string }>`
    SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'x402_backup'
  `.execute(db)
  const resources = new Set(
    (await sql<{ id: string }>`SELECT id FROM x402_resources`.execute(db)).rows.map(
      (row) => row.id,
    ),
  )
  const keys = new Set<string>()
  if (
    (
      await sql<{
        t: string | null
      }>`SELECT to_regclass('public.user_openrouter_integrations')::text AS t`.execute(db)
    ).rows[0]!.t
  ) {
    for (const row of (
      await sql<{ user_id: string }>`SELECT user_id FROM user_openrouter_integrations`.execute(db)
    ).rows)
      keys.add(row.user_id)
  }
  for (const { name } of backups) {
    const backup = sql.id('x402_backup', name)
    if (name.startsWith('005_user_openrouter_integrations_')) {
      for (const row of (await sql<{ user_id: string }>`SELECT user_id FROM ${backup}`.execute(db))
        .rows)
        keys.add(row.user_id)
    } else if (name.startsWith('005_x402_resources_')) {
      for (const row of (await sql<{ id: string }>`SELECT id FROM ${backup}`.execute(db)).rows)
        resources.add(row.id)
    }
  }
  return { resources: [...resources].sort(), keys: [...keys].sort() }
}

async function movedOrKeptOf(original: any): Promise<{ resources: string[]; keys: string[] }> {
  return {
    resources: original.resources.map((row: any) => row.row.id).sort(),
    keys: original.keys.map((row: any) => row.row.user_id).sort(),
  }
}

async function recorded(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{
    n: number
  }>`SELECT count(*)::int AS n FROM x402_migrations.kysely_migration WHERE name = ${MIGRATION_005}`.execute(
    db,
  )
  return rows[0]!.n === 1
}

describe.skipIf(skipReason)('killed at random moments on postgres', () => {
  it(
    `survives at least ${KILLS} SIGKILLs of down --allow-data-loss and latest on 005 without losing a row`,
    { timeout: 600_000 },
    async () => {
      const seedValue = Number(process.env.KILL_LOOP_SEED ?? Date.now() % 1_000_000)
      const next = random(seedValue)
      await withTestDatabase('postgres', async ({ db, location }) => {
        const connectionString = serverUrl(location)
        await migrateTo(db, MIGRATION_005)
        await seed(db)
        const original = await everyRow(db)
        const observer = await openSession(connectionString, 'x402-kill-observer')
        try {
          let kills = 0
          // The span the random moment is drawn from follows how long a run takes on this machine:
          // it shrinks when a run finished before its kill, and grows back after each kill.
          let spanMs = 600
          for (let round = 0; kills < KILLS && round < KILLS * 5; round++) {
            const down = await recorded(db)
            const context = `seed ${seedValue}, round ${round}, ${down ? 'down' : 'latest'}`
            if (down)
              expect(
                (await migrationStatus(db)).filter((m) => m.appliedAt).at(-1)?.name,
                context,
              ).toBe(MIGRATION_005)
            const run = startScript(
              'src/cli/migrate.ts',
              down ? ['down', '--allow-data-loss'] : ['latest'],
              {
                DATABASE_URL: withApplicationName(connectionString, KILLED),
              },
            )
            // A random moment once the run is connected: its work takes a few hundred ms.
            await pollUntil(observer, 'the run to connect', async () => {
              const { rows } = await observer.query(
                'SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
                [KILLED],
              )
              return rows.length > 0 || run.child.exitCode !== null
            })
            await new Promise((resolve) => setTimeout(resolve, Math.floor(next() * spanMs)))
            const result = await run.kill()
            if (result.signal === 'SIGKILL') {
              kills++
              spanMs = Math.min(spanMs * 1.1, 2000)
            } else {
              spanMs = Math.max(spanMs * 0.7, 50)
            }
            await waitUntilGone(observer, KILLED)

            // The same command again completes, from wherever the kill stopped it.
            if (down) {
              if (await recorded(db)) await migrateDown(db, { allowDataLoss: true, env: {} })
              expect(await recorded(db), context).toBe(false)
              expect((await checkDrift(db)).ok, context).toBe(true)
              // Every row that is no longer in place is in x402_backup.
              expect(await movedOrKept(db), context).toEqual(await movedOrKeptOf(original))
            } else {
              await migrateToLatest(db, { env: {} })
              expect((await checkDrift(db)).ok, context).toBe(true)
              await migrateTo(db, MIGRATION_005, { env: {}, allowDataLoss: true }) // back to 005 for the next rollback
              await restoreFromBackups(db)
              expect(await everyRow(db), context).toEqual(original)
            }
          }
          expect(kills).toBeGreaterThanOrEqual(KILLS)
        } finally {
          await observer.end()
        }
      })
    },
  )
})
