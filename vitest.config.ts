import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The commands run compiled, as the npm scripts run them: dist/ is brought up to date once.
    globalSetup: ['test/support/build-dist.ts'],
    // Each file opens its own PGlite instance (a few seconds to boot) or server database.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // CI also writes a JSON summary, from which .ci/run prints the counts.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.vitest-results.json' },
  },
})
