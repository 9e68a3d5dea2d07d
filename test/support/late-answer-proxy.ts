import net from 'node:net'

/** A proxy started by {@link lateAnswerProxy}. */
export interface LateAnswerProxy {
  /** Whether the held answer has been delivered. */
  delivered(): boolean
  /** The URL `server` reached through the proxy. */
  url(server: URL): string
  close(): Promise<void>
}

/** Options of {@link lateAnswerProxy}. */
export interface LateAnswerOptions {
  /** Called once the server's answer to the held statement has reached the proxy. */
  onHeld?: () => void
  /** Ends the hold before `holdMs` when it settles. */
  release?: Promise<unknown>
}

/**
 * A TCP proxy on 127.0.0.1 to `server` for a run's migration lock session whose network path
 * stalls and then heals. Once any client has sent a statement containing `armedBy`, the next
 * statement reading pg_locks on the lock session (the connection that sent
 * pg_try_advisory_xact_lock) gets its answer held back for `holdMs`; then everything the server
 * sent meanwhile (the answer, and the server's termination of the session if it came) is
 * delivered, one segment at a time 100 ms apart, as TCP delivers once a path heals. Every other
 * connection, and the lock session's requests, go through at once. `options.release` ends the
 * hold earlier; `options.onHeld` hears when the held answer has arrived from the server.
 *
 * @example
 * ```ts
 * const proxy = await lateAnswerProxy(url, 'AS present', 3_000)
 * await migrateDown(createDb({ connectionString: proxy.url(url) }))
 * ```
 */
export async function lateAnswerProxy(
  server: URL,
  armedBy: string,
  holdMs: number,
  options: LateAnswerOptions = {},
): Promise<LateAnswerProxy> {
  let armed = false
  let held = false
  let delivered = false
  const sockets = new Set<net.Socket>()
  const proxy = net.createServer((client) => {
    let lockSession = false
    let holdUntil: number | undefined
    const pending: Buffer[] = []
    const upstream = net.connect(Number(server.port || 5432), server.hostname)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
    }
    const deliver = async () => {
      let timer: NodeJS.Timeout | undefined
      await Promise.race(
        [
          new Promise((resolve) => {
            timer = setTimeout(resolve, holdMs)
          }),
          options.release?.catch(() => {}),
        ].filter(Boolean),
      )
      clearTimeout(timer)
      delivered = true
      for (const data of pending.splice(0)) {
        client.write(data)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      holdUntil = undefined
      if (upstream.destroyed) client.end()
    }
    client.on('data', (data) => {
      if (data.includes('pg_try_advisory_xact_lock')) lockSession = true
      if (!armed && data.includes(armedBy)) armed = true
      else if (armed && !held && lockSession && data.includes('pg_locks')) {
        held = true
        holdUntil = Date.now() + holdMs
        void deliver()
      }
      upstream.write(data)
    })
    upstream.on('data', (data) => {
      if (holdUntil !== undefined) {
        if (pending.length === 0) options.onHeld?.()
        pending.push(data)
      } else client.write(data)
    })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => {
      if (holdUntil === undefined) client.destroy()
    })
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const port = (proxy.address() as net.AddressInfo).port
  return {
    delivered: () => delivered,
    url(serverUrl) {
      const proxied = new URL(serverUrl)
      proxied.host = `127.0.0.1:${port}`
      return proxied.toString()
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => proxy.close(resolve))
    },
  }
}
