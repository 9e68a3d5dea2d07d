// The embedded floor of `npm run bench -- cli`: opens a PGlite folder, runs one query, closes it.
// With --as-commands it opens it as the module's commands do: WebAssembly compiled by Liftoff
// only (bin/run.mjs) and the module's PGlite options (src/connection/open-pglite.ts).
import { setFlagsFromString } from 'node:v8'

const asCommands = process.argv.includes('--as-commands')
if (asCommands) setFlagsFromString('--liftoff-only')
const { PGlite } = await import('@electric-sql/pglite')
const { pgliteOptions } = asCommands ? await import('../../dist/connection/open-pglite.js') : { pgliteOptions: () => ({}) }

const pglite = new PGlite(process.argv[2], pgliteOptions(PGlite.defaultStartParams))
await pglite.query('SELECT 1')
await pglite.close()
