import net from 'node:net'

/** A proxy started by {@link stallingProxy}. */
export interface StallingProxy {
  /** The port on 127.0.0.1 that forwards to the server. */
  port: number
  /** Whether a client has sent the statement, and the stall began. */
  stalled(): boolean
  /** The URL `server` reached through the proxy. */
  url(server: URL): string
  close(): Promise<void>
}

/**
 * A TCP proxy on 127.0.0.1 to `server` that forwards until a client sends a statement containing
 * `stallAt`, then forwards nothing more, in either direction, and keeps every socket open: a peer
 * that stopped answering. `scope: 'all'` stalls every connection, `'connection'` only the one
 * that sent the statement, while the others go on. With `armedBy`, only a connection that sent
 * a statement containing it before stalls at `stallAt` (a COMMIT of one transaction among many).
 *
 * @example
 * ```ts
 * const proxy = await stallingProxy(url, 'CREATE INDEX CONCURRENTLY', 'connection')
 * await cli(['up'], { DATABASE_URL: proxy.url(url) })
 * ```
 */
export async function stallingProxy(
  server: URL,
  stallAt: string,
  scope: 'all' | 'connection',
  armedBy?: string,
): Promise<StallingProxy> {
  let stalledAll = false
  let stalledAny = false
  const sockets = new Set<net.Socket>()
  const proxy = net.createServer((client) => {
    let stalledHere = false
    let armed = armedBy === undefined
    const stalled = () => stalledHere || stalledAll
    const upstream = net.connect(Number(server.port || 5432), server.hostname)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
    }
    client.on('data', (data) => {
      if (stalled()) return
      upstream.write(data)
      if (!armed) {
        armed = data.includes(armedBy!)
        return
      }
      if (data.includes(stallAt)) {
        stalledAny = true
        if (scope === 'all') stalledAll = true
        else stalledHere = true
      }
    })
    upstream.on('data', (data) => {
      if (!stalled()) client.write(data)
    })
    // A connection that is not stalled ends as it would without the proxy; a stalled one never
    // tells the other side.
    client.on('close', () => !stalled() && upstream.destroy())
    upstream.on('close', () => !stalled() && client.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const port = (proxy.address() as net.AddressInfo).port
  return {
    port,
    stalled: () => stalledAny,
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
