// `node --import ./test/support/forbid-kysely.mjs …`: a process in which importing kysely or
// PGlite fails, to show that a command answered without them.
import { register } from 'node:module'

const hooks = `
export async function resolve(specifier, context, next) {
  if (/^(kysely|@electric-sql\\/pglite)(\\/|$)/.test(specifier)) {
    throw new Error('forbidden-module: ' + specifier + ' was imported')
  }
  return next(specifier, context)
}
`
register(`data:text/javascript,${encodeURIComponent(hooks)}`)
