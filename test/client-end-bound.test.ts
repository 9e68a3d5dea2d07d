import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { migrationChecksum } from '../src/migrator/checksums.js'
import { upToDateAtOnce } from '../src/migrator/up-to-date-at-once.js'
import { migrationNames } from '../src/migrations/index.js'
import { LockSampler } from '../src/rehearsal/lock-sampler.js'
import { refuseAppServer } from '../src/rehearsal/rehearsal-server.js'
import { sweepScratchDatabases } from '../src/rehearsal/scratch-database.js'
import { migrateToLatest } from '../src/tooling.js'
import { cli } from './support/cli.js'
import {
  type GoodbyeIgnoringProxy,
  goodbyeIgnoringProxy,
} from './support/goodbye-ignoring-proxy.js'
import { serverUrl, withTestDatabase } from './support/test-database.js'

// A server or pooler process stopped (SIGSTOP, a frozen VM) after its last answer never answers
// the client's goodbye, and never closes the socket: node-postgres' client.end() then waits for
// ever. The module's own connections stop waiting for it after a short bound (endClient), so each
// step below returns. Before, each hung: the test's timeout (not a measure of speed) ends it.

const testServer = process.env.TEST_DATABASE_URL
/** Far above endClient's bound, far below a hang. */
const HUNG = 30_000

describe.skipIf(!testServer)('a server that stalls after its last answer', () => {
  let proxy: GoodbyeIgnoringProxy
  let server: URL
  let stalled: string
  beforeAll(async () => {
    server = new URL(testServer!)
    proxy = await goodbyeIgnoringProxy(server)
    stalled = proxy.url(server)
  })
  afterAll(() => proxy.close())

  it(
    "does not hang migrate:latest's no-op (up-to-date-at-once)",
    async () => {
      const folder = mkdtempSync(join(tmpdir(), 'x402-ends-'))
      try {
        const manifest = join(folder, 'migration-manifest.json')
        const migrations = await Promise.all(
          migrationNames.map(async (name) => ({ name, sha256: await migrationChecksum(name) })),
        )
        writeFileSync(manifest, JSON.stringify({ migrations }))
        await withTestDatabase('postgres', async ({ db, location }) => {
          await migrateToLatest(db)
          const before = proxy.ignored()
          const url = proxy.url(new URL(serverUrl(location)))
          expect(await upToDateAtOnce(url, pathToFileURL(manifest))).toBe(true)
          expect(proxy.ignored()).toBe(before + 1)
        })
      } finally {
        rmSync(folder, { recursive: true, force: true })
      }
    },
    HUNG,
  )

  it(
    'does not hang the check that the app server is not the rehearsal server, on either side',
    async () => {
      const same = /names DATABASE_URL's server, the app's/
      // The rehearsal server stalls (sameServer's client), then the app's (refuseAppServer's own).
      for (const [named, app] of [
        [stalled, testServer!],
        [testServer!, stalled],
      ]) {
        const before = proxy.ignored()
        await expect(
          refuseAppServer(named!, 'LINT_LOCKS_DATABASE_URL', 'PGlite', { DATABASE_URL: app }),
        ).rejects.toThrow(same)
        expect(proxy.ignored()).toBe(before + 1)
      }
    },
    HUNG,
  )

  it(
    'does not hang the lock sampler or the scratch databases',
    async () => {
      const before = proxy.ignored()
      const sampler = await LockSampler.open(stalled)
      await sampler.close()
      await sweepScratchDatabases(stalled, Number.MAX_SAFE_INTEGER)
      expect(proxy.ignored()).toBe(before + 2)
    },
    HUNG,
  )

  it(
    'does not hang lint:locks, which refuses the app server it is given as the rehearsal server',
    async () => {
      const { code, stderr } = await cli(
        [],
        { LINT_LOCKS_DATABASE_URL: stalled, DATABASE_URL: testServer },
        'src/cli/lint-locks.ts',
        HUNG - 5_000,
      )
      expect({ code, stderr }).toEqual({
        code: 1,
        stderr: expect.stringMatching(/LINT_LOCKS_DATABASE_URL names DATABASE_URL's server/),
      })
    },
    HUNG,
  )
})
