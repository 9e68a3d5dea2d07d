/**
 * The manifest of the registered migrations: each one's name and checksum, in order, written
 * as JSON into dist/ when dist/ is built, by the same code that the runner records checksums
 * with. The command line's no-op check (up-to-date-at-once.ts) compares the history with it
 * without loading kysely or the migrations.
 */
import { writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

import { migrationNames } from '../migrations/index.js'
import { migrationChecksum } from './checksums.js'
import { MIGRATION_MANIFEST_URL, type MigrationManifest } from './up-to-date-at-once.js'

/**
 * Computes the manifest and writes it to {@link MIGRATION_MANIFEST_URL}; bin/x402-db.mjs calls it
 * after each build.
 *
 * @example
 * ```ts
 * await writeMigrationManifest()
 * ```
 */
export async function writeMigrationManifest(): Promise<void> {
  const migrations = await Promise.all(
    migrationNames.map(async (name) => ({ name, sha256: await migrationChecksum(name) })),
  )
  const manifest: MigrationManifest = { migrations }
  await writeFile(fileURLToPath(MIGRATION_MANIFEST_URL), `${JSON.stringify(manifest, null, 2)}\n`)
}
