import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { describe, expect, it } from 'vitest'

// Issue 14 (memory of the commands): a closed embedded database must not keep its memory. The
// first PGlite instance of a process used to stay reachable for the life of the process (170 MB
// of WebAssembly memory), held by the async stack of errors that PGlite's bundle creates when it
// loads; a command that closed one scratch database and opened another held both. Run in a child
// process on the compiled module, with V8's collector exposed to the test's script alone: the
// module never calls it, so what the collector frees here V8 frees by itself when it needs room.

const root = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)

/** The external memory (MB) of a process that opened `databases` in turn and closed each, after a full collection. */
async function externalMbAfterClosing(databases: number): Promise<number> {
  const script = `
    import { createDb, IN_MEMORY } from './dist/connection/create-db.js'
    // In a function, so that nothing of this script keeps the instances.
    async function openAndClose() {
      const db = createDb({ dataDir: IN_MEMORY })
      await db.selectNoFrom((eb) => eb.val(1).as('one')).execute()
      await db.destroy()
    }
    for (let i = 0; i < ${databases}; i++) await openAndClose()
    // What a closed instance leaves to timers must have run: on a busy machine they run late.
    for (let i = 0; i < 10; i++) { await new Promise((resolve) => setTimeout(resolve, 100)); globalThis.gc() }
    console.log(JSON.stringify({ externalMb: process.memoryUsage().external / 1048576 }))
  `
  const { stdout } = await run(
    process.execPath,
    ['--expose-gc', '--input-type=module', '-e', script],
    { cwd: root, timeout: 60_000 },
  )
  return JSON.parse(stdout.trim().split('\n').at(-1)!).externalMb
}

describe('memory of closed embedded databases', () => {
  it('is freed once the database is closed and out of reach, the first instance of the process included', async () => {
    // One open instance holds about 250 MB of external memory (its WebAssembly memory and files);
    // a freed one leaves a few MB.
    expect(await externalMbAfterClosing(1)).toBeLessThan(50)
    expect(await externalMbAfterClosing(2)).toBeLessThan(50)
  })
})
