/**
 * The fingerprint of the module's sources: a hash of the paths and contents of every file under
 * src/ and of the tsconfigs (a few hundred kB, hashed in milliseconds), the same in a checkout
 * and in an installed copy, whatever the files' modification times. bin/run.mjs records it in
 * dist/.source-fingerprint when it builds; the cache keys (src/connection/template-cache.ts)
 * compare with it to know whether dist/ was built from src/ as it is.
 *
 * Plain JavaScript on purpose: bin/run.mjs needs it before anything is compiled.
 *
 * @example
 * sourceFingerprint('/app/node_modules/@x402-jobs/db/') // 'e3b0c442…'
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export function sourceFingerprint(root) {
  const hash = createHash('sha256')
  const files = readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort()
  for (const file of [...files, join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json')]) {
    hash.update(`${file.slice(root.length)}\0`).update(readFileSync(file)).update('\0')
  }
  return hash.digest('hex')
}
