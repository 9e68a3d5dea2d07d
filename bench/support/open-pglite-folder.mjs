// The embedded floor of `npm run bench -- cli`: opens a PGlite folder, runs one query, closes it.
// With --as-commands it opens it with the module's PGlite options (src/connection/open-pglite.ts);
// run it with `node --liftoff-only`, as the bin runs, to open it as the commands do.
const asCommands = process.argv.includes('--as-commands')
const { PGlite } = await import('@electric-sql/pglite')
const { pgliteOptions } = asCommands
  ? await import('../../dist/connection/open-pglite.js')
  : { pgliteOptions: () => ({}) }

const pglite = new PGlite(process.argv[2], pgliteOptions(PGlite.defaultStartParams))
await pglite.query('SELECT 1')
await pglite.close()
