import { type Kysely, sql } from 'kysely'

import type { DatabaseTarget } from '../connection/create-db.js'
import { readMigrationHistory } from '../migrator/history.js'
import { migrationNames } from '../migrations/index.js'
import { type Rehearsal, rehearse } from './rehearse.js'
import { withRehearsalServer } from './rehearsal-server.js'
import { SEEDED_TABLES } from './seed-rows.js'

/** Bounds of the rows the rehearsal puts in a table, whatever the target holds. */
export interface RowBounds {
  /** At least this many, so that a scan shows on an empty development database. Default 1000. */
  minRows?: number
  /** At most this many, so that the rehearsal stays quick. Default 100000. */
  maxRows?: number
}

/**
 * Rehearses every migration `target` has not applied (see {@link rehearse}) on a scratch
 * database: for a PostgreSQL target, on a server that is not the target's (`rehearsalServer`,
 * else a scratch cluster started for it; see withRehearsalServer), for an embedded target, on an
 * in-memory PGlite. The scratch schema is the module's migrations up to the last one the target
 * recorded, where objects added to the target by hand are missing (`migrate:check` lists them);
 * with `copySchema`, the target's own schema, copied with pg_dump and run only as the scratch
 * database's unprivileged role. Each table the rehearsal can fill gets the target's row estimate
 * (pg_class.reltuples), within `bounds`. The target is only read, and its server is never written
 * to. A null `db` is a target that does not exist yet (an embedded folder not created): every
 * migration is pending, from no schema, with `bounds.minRows` rows.
 *
 * @example
 * ```ts
 * const plan = await planPendingMigrations(db, resolveDatabaseTarget())
 * ```
 */
export async function planPendingMigrations(
  db: Kysely<any> | null,
  target: DatabaseTarget,
  bounds: RowBounds = {},
  options: { copySchema?: boolean; rehearsalServer?: string } = {},
): Promise<Rehearsal> {
  if (options.copySchema && target.kind !== 'postgres') {
    throw new Error(
      "--copy-schema copies a PostgreSQL database's schema with pg_dump; the embedded database is rehearsed from its migrations.",
    )
  }
  const applied = new Set(
    db ? (await readMigrationHistory(db, { times: false })).map((entry) => entry.name) : [],
  )
  const pending = migrationNames.filter((name) => !applied.has(name))
  const startingPoint = migrationNames.filter((name) => applied.has(name)).at(-1) ?? null
  const rows = await representativeRows(db, bounds)
  const steps = pending.map((migration) => ({ migration }))
  if (target.kind !== 'postgres' || !db) return rehearse(steps, { startingPoint, rows })
  const copySchemaFrom = options.copySchema ? target.connectionString : undefined
  return withRehearsalServer(db, options.rehearsalServer, (server) =>
    rehearse(steps, { server, startingPoint, rows, copySchemaFrom }),
  )
}

async function representativeRows(
  db: Kysely<any> | null,
  { minRows = 1000, maxRows = 100_000 }: RowBounds,
): Promise<Record<string, number>> {
  const rows: Record<string, number> = {}
  for (const table of SEEDED_TABLES) {
    if (!db) {
      rows[table] = Math.min(maxRows, minRows)
      continue
    }
    const { rows: found } = await sql<{ estimate: number | null }>`
      SELECT reltuples::float8 AS estimate FROM pg_class WHERE oid = to_regclass(${`public.${table}`})
    `.execute(db)
    const estimate = Math.max(0, Number(found[0]?.estimate ?? 0))
    rows[table] = Math.min(maxRows, Math.max(minRows, Math.round(estimate)))
  }
  return rows
}
