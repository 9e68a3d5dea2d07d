import { describe, expect, it } from 'vitest'

import { cli } from './support/cli.js'

// db:codegen --check, run as the npm script runs it (compiled, through bin/x402-db.mjs). Its modules are
// loaded lazily, and kysely-codegen require()s kysely: loaded in the same Promise.all as kysely's
// import, Node refuses the half-loaded module ("Cannot require() ES Module … because it is not
// yet fully loaded"). --help and refusals alone would not find that.
describe('db:codegen --check', () => {
  it('finds the committed src/types/database.ts up to date, and exits 0', async () => {
    const run = await cli(['--check'], {}, 'src/cli/codegen.ts')
    expect({ code: run.code, failed: /failed/.test(run.stderr) ? run.stderr : '' }).toEqual({
      code: 0,
      failed: '',
    })
  })
})
