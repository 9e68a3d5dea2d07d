/**
 * `npm run lint:locks`: rehearses the migrations that lock-policy.json checks (from its
 * `checkedFrom` on) and fails if a statement holds a lock that blocks writes (SHARE or stronger)
 * on a busy table while any statement in that time rewrites or scans a table: longer than a
 * catalog-only change. A migration allows it for a table with a comment that gives the reason,
 * `// lint:locks allow <table>: <reason>`.
 *
 * The rehearsal runs on a scratch database (and its role) created on a server named for
 * rehearsals, LINT_LOCKS_DATABASE_URL, else REHEARSAL_DATABASE_URL (both dropped afterwards),
 * never DATABASE_URL, which is an app's; else on an in-memory PGlite, which cannot see the locks
 * of statements outside a transaction: they are listed, and the last line says the check was
 * partial (the exit code stays 0; CI runs it on PostgreSQL).
 */
import { fileURLToPath } from 'node:url'

import { type CommandSpec, runCommandLine, serverFromEnv } from './run-command.js'

const spec = {
  script: 'lint:locks',
  summary:
    'fails if a migration holds a write-blocking lock on a busy table (lock-policy.json) while it rewrites or scans, or too long.',
  options: { report: { type: 'boolean', description: 'also prints every measured statement' } },
  notes: [
    "Rehearses on a scratch database on a server for rehearsals (a superuser's): LINT_LOCKS_DATABASE_URL, else REHEARSAL_DATABASE_URL,",
    'never DATABASE_URL; without one, on an in-memory PGlite (a partial check).',
    'Exit code: 0 no violation; 1 a violation, or the command failed.',
  ],
} as const satisfies CommandSpec

/** From src/cli and from dist/cli alike, two folders up is the repository. */
const POLICY = fileURLToPath(new URL('../../lock-policy.json', import.meta.url))

async function main(report: boolean): Promise<number> {
  // Loaded once the arguments are checked: --help and a refused argument do not wait for them.
  const [{ formatRehearsal }, { lintMigrationLocks }, { readLockPolicy }] = await Promise.all([
    import('../rehearsal/format-rehearsal.js'),
    import('../rehearsal/lint-locks.js'),
    import('../rehearsal/lock-policy.js'),
  ])
  const policy = readLockPolicy(POLICY)
  const named = ['LINT_LOCKS_DATABASE_URL', 'REHEARSAL_DATABASE_URL']
  const server = serverFromEnv(named)
  let lint: Awaited<ReturnType<typeof lintMigrationLocks>>
  if (server !== undefined) {
    const [{ refuseAppServer }, { reachedThrough }] = await Promise.all([
      import('../rehearsal/rehearsal-server.js'),
      import('../connection/unreachable.js'),
    ])
    const variable = named.find((name) => process.env[name]?.trim())!
    await refuseAppServer(server, variable, 'an in-memory PGlite (a partial check)')
    lint = await reachedThrough(variable, () => lintMigrationLocks(policy, { server }))
  } else {
    lint = await lintMigrationLocks(policy, { server })
  }
  if (report) process.stdout.write(formatRehearsal(lint.rehearsal))
  const checked = lint.rehearsal.migrations.map((migration) => migration.name)
  console.error(
    `lint:locks: ${checked.length} migrations rehearsed (${checked.join(', ')}), busy tables: ${policy.busyTables.join(', ')}`,
  )
  for (const { migration, table, reason } of lint.excused)
    console.error(`allowed by ${migration} on ${table}: ${reason}`)
  for (const { migration, statement, sql } of lint.unmeasured)
    console.error(`not measured: ${migration} statement ${statement} (${sql})`)
  for (const violation of lint.violations)
    console.log(`${violation.migration}: ${violation.message}`)
  if (lint.violations.length > 0) {
    console.error(
      `lint:locks: ${lint.violations.length} lock${lint.violations.length === 1 ? '' : 's'} against ${POLICY}`,
    )
    return 1
  }
  const limit = policy.maxHoldMs === undefined ? '' : `, or longer than ${policy.maxHoldMs} ms`
  if (lint.unmeasured.length > 0) {
    // A partial check still passes (a laptop without PostgreSQL can run it; CI measures all),
    // but its last line must not read as a full pass.
    const count = lint.unmeasured.length
    console.error(
      `lint:locks: PARTIAL CHECK: ${count} statement${count === 1 ? '' : 's'} could not be measured (listed above: they run outside a transaction, ` +
        'and PGlite cannot show their locks); the others hold no write-blocking lock on a busy table while they rewrite or scan' +
        `${limit}. Set LINT_LOCKS_DATABASE_URL to a PostgreSQL server for rehearsals to check them all, as CI does.`,
    )
    return 0
  }
  console.error(
    `lint:locks: no migration holds a write-blocking lock on a busy table while it rewrites or scans${limit}`,
  )
  return 0
}

runCommandLine(spec, ({ values }) => main(values.report))
