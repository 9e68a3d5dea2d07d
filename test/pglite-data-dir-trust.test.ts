import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'

import { LOCK_FILE_NAME } from '../src/connection/data-dir-lock.js'
import { createDb } from '../src/index.js'

// An embedded database folder is trusted as PostgreSQL trusts a data directory: owned by the user
// the process runs as, and neither writable by its group nor open to others (0700 or 0750). In
// a folder anyone may write, anyone may plant a postgresql.auto.conf (session_replication_role =
// replica turns off every trigger and foreign key) that the module would then open and migrate.

const base = mkdtempSync(join(tmpdir(), 'x402-data-dir-trust-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))

/** What `query` returns (its one column `v`) in the embedded database in `dataDir`. */
async function valueIn(dataDir: string, query: string): Promise<unknown> {
  const db = createDb({ dataDir })
  try {
    const { rows } = await sql.raw<{ v: unknown }>(query).execute(db)
    return rows[0]?.v
  } finally {
    await db.destroy()
  }
}

/** A folder holding a cluster, with a postgresql.auto.conf that disables triggers and keys. */
async function plantedCluster(name: string): Promise<string> {
  const dataDir = join(mkdtempSync(join(base, `${name}-`)), 'pg')
  expect(await valueIn(dataDir, 'SELECT 1 AS v')).toBe(1)
  writeFileSync(join(dataDir, 'postgresql.auto.conf'), "session_replication_role = 'replica'\n")
  return dataDir
}

describe('an embedded database folder that exists already', () => {
  it('is refused where its group may write it or others may use it (0777), saying so, and left as it is', async () => {
    const dataDir = await plantedCluster('open')
    chmodSync(dataDir, 0o777)
    await expect(valueIn(dataDir, 'SHOW session_replication_role')).rejects.toThrow(
      new RegExp(
        `The embedded database folder ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has mode 0777: .*0700 or 0750.*chmod 700`,
      ),
    )
    expect(existsSync(join(dataDir, LOCK_FILE_NAME))).toBe(false)
  })

  it('is refused at 0755 (others may read it), and opened at 0750 and 0700', async () => {
    const dataDir = join(mkdtempSync(join(base, 'modes-')), 'pg')
    mkdirSync(dataDir, { mode: 0o700 })
    chmodSync(dataDir, 0o755)
    await expect(valueIn(dataDir, 'SELECT 1 AS v')).rejects.toThrow(/has mode 0755/)
    chmodSync(dataDir, 0o750)
    expect(await valueIn(dataDir, 'SELECT 1 AS v')).toBe(1)
    chmodSync(dataDir, 0o700)
    expect(await valueIn(dataDir, 'SELECT 1 AS v')).toBe(1)
  })

  it.skipIf(process.getuid?.() !== 0)(
    'is refused where another user owns it, naming the owner',
    async () => {
      const dataDir = await plantedCluster('theirs')
      chownSync(dataDir, 65534, 65534)
      await expect(valueIn(dataDir, 'SHOW session_replication_role')).rejects.toThrow(
        /is owned by user nobody \(uid 65534\), not by .*\(uid 0\).*a folder you created/,
      )
      expect(existsSync(join(dataDir, LOCK_FILE_NAME))).toBe(false)
    },
  )
})
