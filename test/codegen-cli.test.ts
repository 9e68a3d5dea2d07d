import { describe, expect, it } from 'vitest'

import { cli } from './support/cli.js'

// db:codegen --check, run as the npm script runs it (compiled, through bin/x402-db.mjs). Loading its
// modules lazily once broke it: kysely-codegen require()s kysely while the command imported kysely
// in the same Promise.all, and Node refused the half-loaded module ("Cannot require() ES Module
// … because it is not yet fully loaded"). Only --help and refusals were run by the tests then.
describe('db:codegen --check', () => {
  it('finds the committed src/types/database.ts up to date, and exits 0', async () => {
    const run = await cli(['--check'], {}, 'src/cli/codegen.ts')
    expect({ code: run.code, failed: /failed/.test(run.stderr) ? run.stderr : '' }).toEqual({ code: 0, failed: '' })
  })
})
