import { randomBytes } from 'node:crypto'

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { withRehearsalServer } from '../src/rehearsal/rehearsal-server.js'
import { createDb } from '../src/tooling.js'

// REHEARSAL_DATABASE_URL must never name the target's own server, by any address. A target's
// user may not read the server's system identifier (pg_control_system() revoked, as a hardened
// or hosted server may have it): the server is then told by what any user reads, never assumed
// another because its host is spelled otherwise.

const testServer = process.env.TEST_DATABASE_URL

describe.skipIf(!testServer)(
  'a rehearsal server named by another address of the target’s server',
  () => {
    const name = `x402_same_server_${randomBytes(3).toString('hex')}`
    let target: string

    async function admin(text: string, database = 'postgres'): Promise<void> {
      const url = new URL(testServer!)
      url.pathname = `/${database}`
      const client = new pg.Client({ connectionString: url.toString() })
      await client.connect()
      try {
        await client.query(text)
      } finally {
        await client.end()
      }
    }

    beforeAll(async () => {
      await admin(`CREATE ROLE ${name} LOGIN PASSWORD 'not-secret'`)
      await admin(`CREATE DATABASE ${name} OWNER ${name}`)
      await admin('REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC', name)
      const url = new URL(testServer!)
      url.username = name
      url.password = 'not-secret'
      url.pathname = `/${name}`
      target = url.toString()
    })
    afterAll(async () => {
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin(`DROP ROLE IF EXISTS ${name}`)
    })

    it('is refused where the target cannot read the system identifier', async () => {
      const db = createDb({ connectionString: target })
      const other = new URL(testServer!)
      other.hostname = other.hostname === 'localhost' ? '127.0.0.1' : 'localhost'
      let worked = false
      try {
        const outcome = await withRehearsalServer(db, other.toString(), async () => {
          worked = true
        }).catch((error: unknown) => error)
        expect(outcome).toBeInstanceOf(Error)
        expect(String((outcome as Error).message)).toMatch(/names the target's own server/)
        expect(worked).toBe(false)
      } finally {
        await db.destroy()
      }
    })
  },
)
