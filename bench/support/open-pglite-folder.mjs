// The embedded floor of `npm run bench -- cli`: opens a PGlite folder, runs one query, closes it.
import { PGlite } from '@electric-sql/pglite'

const pglite = new PGlite(process.argv[2])
await pglite.query('SELECT 1')
await pglite.close()
