import net from 'node:net'

import { describe, expect, it } from 'vitest'

import { migrateTo } from '../src/tooling.js'
import { cli } from './support/cli.js'
import { withTestDatabase } from './support/test-database.js'

// Issue 13 #5: "the pg client gets a query timeout above the statement timeout, so that a dead
// peer cannot hang a command". A proxy that stops forwarding (and keeps every socket open) while
// 005's CREATE INDEX CONCURRENTLY is in flight, a statement that runs with statement_timeout
// lifted: the heartbeat finds the lock session unanswered, the run cuts its connections, and the
// command exits with an error instead of waiting for ever. (It used to log that the lock was
// lost and hang.)

const skipReason = process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'

/**
 * A TCP proxy on 127.0.0.1 to the test server that forwards until a client sends a statement
 * containing `stallAt`, then forwards nothing more, in either direction, on any connection.
 */
async function stallingProxy(server: URL, stallAt: string): Promise<{ port: number; stalled: () => boolean; close(): Promise<void> }> {
  let stalled = false
  const sockets = new Set<net.Socket>()
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(server.port || 5432), server.hostname)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
    }
    client.on('data', (data) => {
      if (stalled) return
      upstream.write(data)
      if (data.includes(stallAt)) stalled = true
    })
    upstream.on('data', (data) => {
      if (!stalled) client.write(data)
    })
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  return {
    port: (proxy.address() as net.AddressInfo).port,
    stalled: () => stalled,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => proxy.close(resolve))
    },
  }
}

describe.skipIf(skipReason)('a peer that stops answering in the middle of a migration', () => {
  it('ends the command with an error naming the lost lock, instead of hanging', async () => {
    await withTestDatabase('postgres', async ({ db, location }) => {
      await migrateTo(db, '002_add_claude_integration')
      const url = new URL((location as { connectionString: string }).connectionString)
      const proxy = await stallingProxy(url, 'CREATE INDEX CONCURRENTLY')
      try {
        const proxied = new URL(url)
        proxied.host = `127.0.0.1:${proxy.port}`
        // cli() kills the command after 60 s: a hang shows as a null exit code.
        const { code, stdout, stderr } = await cli(['up'], {
          DATABASE_URL: proxied.toString(),
          MIGRATION_IDLE_TIMEOUT_MS: '2000',
        })
        expect(proxy.stalled()).toBe(true)
        expect({ code, lost: /migration lock was lost/.test(`${stdout}\n${stderr}`) }).toEqual({ code: 1, lost: true })
      } finally {
        await proxy.close()
      }
    })
  }, 90_000)
})
