import { rmSync } from 'node:fs'

import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { migrationNames } from '../src/migrations/index.js'
import { baselineMigrations, migrateToLatest, syncMigrationChecksums } from '../src/tooling.js'
import { cliEnv } from './support/cli.js'
import { createScriptableDatabase, type ScriptableDatabase } from './support/hand-built-database.js'
import { commandIn, copyOfTheRepository } from './support/repository-copy.js'
import { createTestDatabase, type TestDatabase } from './support/test-database.js'

// migrate:pull of tables that are more than a plain table: a partitioned table and its
// partition, an UNLOGGED table, a table that inherits another and has a rule, and a
// materialized view with an index. A fresh database migrated to the pulled migration has each of them as the live one has.

const LATEST = migrationNames.at(-1)!

const PRODUCTION_EXTRAS = `
CREATE TABLE public.events (id int NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_at ON public.events (at);
CREATE UNLOGGED TABLE public.scratch_cache (k text PRIMARY KEY, v text);
CREATE TABLE public.notes (id int, body text);
CREATE TABLE public.pinned_notes (pinned_at timestamptz) INHERITS (public.notes);
CREATE MATERIALIZED VIEW public.note_counts AS SELECT count(*) AS n FROM public.notes;
CREATE UNIQUE INDEX note_counts_n ON public.note_counts (n);
CREATE RULE notes_read_only AS ON DELETE TO public.notes DO INSTEAD NOTHING;
`

/** What makes each extra relation more than a plain table: kind, persistence, parents, bounds, indexes. */
async function shapes(db: Kysely<any>): Promise<Record<string, unknown>> {
  const { rows } = await sql<{ name: string; shape: unknown }>`
    SELECT c.relname::text AS name, jsonb_build_object(
      'kind', c.relkind::text,
      'persistence', c.relpersistence::text,
      'partition key', pg_catalog.pg_get_partkeydef(c.oid),
      'partition of', CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END,
      'parents', (SELECT array_agg(p.inhparent::regclass::text ORDER BY p.inhseqno)
                  FROM pg_catalog.pg_inherits p WHERE p.inhrelid = c.oid),
      'indexes', (SELECT array_agg(pg_catalog.pg_get_indexdef(x.indexrelid) ORDER BY 1)
                  FROM pg_catalog.pg_index x WHERE x.indrelid = c.oid),
      'rules', (SELECT array_agg(pg_catalog.pg_get_ruledef(w.oid) ORDER BY 1)
                FROM pg_catalog.pg_rewrite w WHERE w.ev_class = c.oid AND w.rulename <> '_RETURN')
    ) AS shape
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'public'::regnamespace
      AND c.relname IN ('events', 'events_2026', 'scratch_cache', 'notes', 'pinned_notes', 'note_counts')
    ORDER BY 1
  `.execute(db)
  return Object.fromEntries(rows.map(({ name, shape }) => [name, shape]))
}

describe.skipIf(!process.env.TEST_DATABASE_URL)(
  'migrate:pull of partitioned, unlogged and inheriting tables and a materialized view',
  () => {
    let database: ScriptableDatabase
    let fresh: TestDatabase | undefined
    let copy: string

    beforeAll(async () => {
      database = await createScriptableDatabase('postgres', 'latest')
      const db = database.db as Kysely<any>
      await migrateToLatest(db)
      await syncMigrationChecksums(db)
      await database.runScript(PRODUCTION_EXTRAS)
      await baselineMigrations(db, LATEST, { decisions: [] })
      copy = copyOfTheRepository()
    }, 300_000)
    afterAll(async () => {
      await database?.destroy()
      await fresh?.destroy()
      if (copy) rmSync(copy, { recursive: true, force: true })
    })

    it('writes them so that a fresh database has each as the live one has it', async () => {
      const pulled = await commandIn(copy, ['migrate', 'pull', 'kinds'], cliEnv(database.location))
      expect(pulled.stderr).not.toMatch(/not pulled/)
      expect(pulled.code).toBe(0)

      fresh = await createTestDatabase('postgres')
      const latest = await commandIn(copy, ['migrate', 'latest'], cliEnv(fresh.location))
      expect(latest.stderr).toMatch(/applied +\d{3}_pulled_kinds/)
      expect(latest.code).toBe(0)
      const live = await shapes(database.db as Kysely<any>)
      expect(Object.keys(live)).toHaveLength(6)
      expect(await shapes(fresh.db as Kysely<any>)).toEqual(live)

      const checked = await commandIn(copy, ['migrate', 'check'], cliEnv(database.location))
      expect(checked.stdout).toMatch(/^OK: /m)
      expect(checked.code).toBe(0)
    }, 600_000)
  },
)
