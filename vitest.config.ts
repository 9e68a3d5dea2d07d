import { availableParallelism } from 'node:os'

import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The commands run compiled, as the npm scripts run them: dist/ is brought up to date once.
    globalSetup: ['test/support/build-dist.ts'],
    // vitest's default is one worker fewer than the cores: on two cores, one, and the files run
    // one after the other while the other core idles. The main process only collects results,
    // so two workers at least.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // A worker runs file after file in one process: PGlite's WebAssembly is compiled and
    // optimised once per worker instead of once per file (a third less CPU on the PGlite
    // files). The files leave nothing behind: databases, folders, environment and
    // listeners are undone in their after hooks.
    isolate: false,
    // Each file opens its own PGlite instance (a few seconds to boot) or server database; the
    // drift and adoption tests rebuild a reference schema on a scratch database, which on two
    // busy cores takes over a minute. A bound on a hung test, not a measure of speed.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // CI also writes a JSON summary, from which .ci/run prints the counts.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.vitest-results.json' },
  },
})
