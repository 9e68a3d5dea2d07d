import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'

import { createDb } from '../src/index.js'

// The embedded database keeps its data in a folder, which one process at a time may open:
// PGlite has no locking of its own, and a second opener would overwrite the first one's writes.

const root = fileURLToPath(new URL('..', import.meta.url))

describe('the embedded database folder', () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'x402-embedded-')), 'pglite')
  afterAll(() => rmSync(join(dataDir, '..'), { recursive: true, force: true }))

  it('keeps its data across openings', async () => {
    const first = createDb({ dataDir })
    await sql`CREATE TABLE kept (value text)`.execute(first)
    await sql`INSERT INTO kept VALUES ('still here')`.execute(first)
    await first.destroy()

    const second = createDb({ dataDir })
    try {
      expect((await sql<{ value: string }>`SELECT value FROM kept`.execute(second)).rows).toEqual([
        { value: 'still here' },
      ])
    } finally {
      await second.destroy()
    }
  })

  it('refuses a second opener while the folder is open, and lets it in once it is closed', async () => {
    const holder = createDb({ dataDir })
    await sql`SELECT 1`.execute(holder)

    const intruder = createDb({ dataDir })
    await expect(sql`SELECT 1`.execute(intruder)).rejects.toThrow(
      `The embedded database at ${dataDir} is open already in this process, through another createDb() instance. ` +
        'A PGlite folder takes one instance at a time: share that instance, or await its destroy() before creating the next.',
    )
    await intruder.destroy()
    await holder.destroy()

    const next = createDb({ dataDir })
    try {
      expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(next)).rows).toEqual([{ one: 1 }])
    } finally {
      await next.destroy()
    }
  })
})

// An app or a script that ends without destroy() must still end. PGlite arms a timer of its own
// (its 10 s statistics timeout), which it re-arms for ever on a cluster it loaded from a dump
// (the module's template for a new folder) and after the crash recovery of a folder such a
// process left open. The test's timeout is the bound.
describe('a process that never calls destroy()', () => {
  const parent = mkdtempSync(join(tmpdir(), 'x402-no-destroy-'))
  afterAll(() => rmSync(parent, { recursive: true, force: true }))

  // The second run opens a folder the first left without a clean shutdown (no close()).
  it.each(['a new', 'the same'])(
    'exits by itself after a query on %s embedded database',
    async () => {
      const dataDir = join(parent, 'pglite')
      const index = pathToFileURL(join(root, 'dist', 'index.js')).href
      const child = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { createDb } = await import(${JSON.stringify(index)})
         const rows = await createDb({ dataDir: ${JSON.stringify(dataDir)} }).selectNoFrom((eb) => eb.lit(1).as('one')).execute()
         process.stdout.write(JSON.stringify(rows))`,
        ],
        { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
      )
      try {
        let out = ''
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
        const code = await new Promise((resolve) => child.once('exit', resolve))
        expect({ code, out }).toEqual({ code: 0, out: '[{"one":1}]' })
      } finally {
        child.kill('SIGKILL')
      }
    },
  )
})
