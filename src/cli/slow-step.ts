/**
 * What a person at a terminal sees while a migration step takes long: which migration, the
 * statement its server process runs, the lock it waits for and who holds it (pg_locks,
 * pg_blocking_pids, pg_stat_activity: its pid, and its statement's first keyword alone, see
 * shownStatement), and for an index build how far it is (pg_stat_progress_create_index).
 * Read-only, from another connection of the pool, one bounded sample at a time, and only while
 * the step runs. Never on PGlite: its one connection is the
 * migration's, and no other session can hold a lock there.
 */
import { type Kysely, PGliteAdapter, sql } from 'kysely'

import { shownStatement } from '../connection/shown-argument.js'
import type { MigrationEvent } from '../migrator/settings.js'

/** How long a step runs before it is shown; a short step stays quiet. */
export const SLOW_STEP_AFTER_MS = 3000
const SAMPLE_EVERY_MS = 1000
/** The longest a sample may take: a server that does not answer it leaves the line as it was. */
const SAMPLE_TIMEOUT_MS = 2000

/** Follows a run's migrations (`onMigration`), and stops with the run (`stop`). */
export interface SlowStepWatch {
  onMigration(event: MigrationEvent): void
  stop(): Promise<void>
}

/**
 * Shows, on stderr, each migration step of a run on `db` that runs longer than
 * {@link SLOW_STEP_AFTER_MS}: on a terminal one line rewritten in place every second, cleared
 * when the step ends. X402_DB_PROGRESS=always shows it where stderr is no terminal too, a
 * line per sample (for logs and tests); X402_DB_PROGRESS=never turns it off.
 *
 * @example
 * ```ts
 * const watch = watchSlowSteps(db)
 * try {
 *   await migrateToLatest(db, { onMigration: (event) => watch.onMigration(event) })
 * } finally {
 *   await watch.stop()
 * }
 * ```
 */
export function watchSlowSteps(
  db: Kysely<any>,
  env: NodeJS.ProcessEnv = process.env,
): SlowStepWatch {
  const setting = env.X402_DB_PROGRESS?.trim().toLowerCase()
  const inPlace = process.stderr.isTTY === true && setting !== 'always'
  const enabled = setting === 'always' || (setting !== 'never' && inPlace)
  if (!enabled || db.getExecutor().adapter instanceof PGliteAdapter)
    return { onMigration: () => {}, stop: async () => {} }

  let timer: NodeJS.Timeout | undefined
  let sampling: Promise<void> = Promise.resolve()
  let shown = false
  const end = async () => {
    clearTimeout(timer)
    clearInterval(timer)
    timer = undefined
    await sampling
    if (shown && inPlace) process.stderr.write('\r\x1b[2K')
    shown = false
  }
  return {
    onMigration(event) {
      if (event.phase === 'end') {
        void end()
        return
      }
      if (event.backendPid === undefined) return
      const { name, direction, backendPid } = event
      const started = Date.now()
      let busy = false
      const tick = () => {
        if (busy) return
        busy = true
        sampling = describeStep(db, backendPid)
          .then((state) => {
            if (timer === undefined || state === undefined) return
            const line = `[db] ${name} (${direction}) running for ${Math.round((Date.now() - started) / 1000)} s: ${state}`
            process.stderr.write(
              inPlace
                ? `\r\x1b[2K${line.slice(0, (process.stderr.columns || 100) - 1)}`
                : `${line}\n`,
            )
            shown = true
          })
          .finally(() => {
            busy = false
          })
      }
      timer = setTimeout(() => {
        timer = setInterval(tick, SAMPLE_EVERY_MS)
        tick()
      }, SLOW_STEP_AFTER_MS)
    },
    stop: end,
  }
}

interface StepState {
  query: string | null
  waiting_for: string | null
  blockers: Array<{ pid: number; state: string; xact_age: string; query: string }> | null
  index_progress: string | null
}

/** One sample of server process `pid`, described; undefined when it did not come in time. */
async function describeStep(db: Kysely<any>, pid: number): Promise<string | undefined> {
  let timeout: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => {
    timeout = setTimeout(() => resolve(undefined), SAMPLE_TIMEOUT_MS)
  })
  const sample = sql<StepState>`
    SELECT left(regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 120) AS query,
           (SELECT format('%s on %s', l.mode, coalesce(l.relation::regclass::text, l.locktype))
            FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) AS waiting_for,
           (SELECT json_agg(json_build_object('pid', b.pid, 'state', b.state,
                                              'xact_age', date_trunc('second', now() - b.xact_start)::text,
                                              'query', left(b.query, 1000)))
            FROM unnest(pg_blocking_pids(a.pid)) AS x(pid) JOIN pg_stat_activity b ON b.pid = x.pid) AS blockers,
           (SELECT format('%s, %s', p.phase,
                          CASE WHEN p.blocks_total > 0 THEN format('%s%% of blocks', 100 * p.blocks_done / p.blocks_total)
                               WHEN p.tuples_total > 0 THEN format('%s%% of rows', 100 * p.tuples_done / p.tuples_total)
                               ELSE 'starting' END)
            FROM pg_stat_progress_create_index p WHERE p.pid = a.pid) AS index_progress
    FROM pg_stat_activity a WHERE a.pid = ${pid}
  `
    .execute(db)
    .then(({ rows }) => rows[0])
    // A sample that fails leaves the line as it was: the run reports its own errors.
    .catch(() => undefined)
  try {
    const state = await Promise.race([sample, late])
    if (!state) return undefined
    const parts = [state.query ?? 'between statements']
    if (state.waiting_for) {
      // Another session's statement is shown by its keyword alone (see shownStatement).
      const blockers = (state.blockers ?? [])
        .map(
          (b) =>
            `pid ${b.pid} (${b.state}, transaction open for ${b.xact_age}: ${shownStatement(b.query)})`,
        )
        .join('; ')
      parts.push(`waits for ${state.waiting_for}${blockers ? `, held by ${blockers}` : ''}`)
    }
    if (state.index_progress) parts.push(`index build: ${state.index_progress}`)
    return parts.join('; ')
  } finally {
    clearTimeout(timeout)
  }
}
