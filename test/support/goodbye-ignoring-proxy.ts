import net from 'node:net'

/** A proxy started by {@link goodbyeIgnoringProxy}. */
export interface GoodbyeIgnoringProxy {
  /** How many clients said goodbye (Terminate) and got no answer to it. */
  ignored(): number
  /** The URL `server` reached through the proxy. */
  url(server: URL): string
  close(): Promise<void>
}

/** PostgreSQL's Terminate message: 'X', length 4. */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4])

/**
 * A TCP proxy on 127.0.0.1 to `server` that forwards everything, both ways, until a client says
 * goodbye: its Terminate (which node-postgres sends alone, as the last bytes before it closes
 * its side) is not forwarded, and the proxy keeps its own side of the socket open (no FIN back),
 * as a server or pooler process stopped (SIGSTOP, a frozen VM) after its last answer does: its
 * kernel still acknowledges, nothing ever closes. The server's session stays open until
 * `close()`.
 *
 * @example
 * ```ts
 * const proxy = await goodbyeIgnoringProxy(new URL(url))
 * expect(await upToDateAtOnce(proxy.url(new URL(url)), manifest)).toBe(true)
 * ```
 */
export async function goodbyeIgnoringProxy(server: URL): Promise<GoodbyeIgnoringProxy> {
  let ignored = 0
  const sockets = new Set<net.Socket>()
  const proxy = net.createServer({ allowHalfOpen: true }, (client) => {
    let stopped = false
    const upstream = net.connect(Number(server.port || 5432), server.hostname)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
    }
    client.on('data', (data) => {
      if (stopped) return
      if (data.subarray(-TERMINATE.length).equals(TERMINATE)) {
        stopped = true
        ignored++
        data = data.subarray(0, -TERMINATE.length)
      }
      if (data.length > 0) upstream.write(data)
    })
    upstream.on('data', (data) => {
      if (!stopped) client.write(data)
    })
    // Before the goodbye, a connection ends as it would without the proxy; after it, never.
    client.on('end', () => !stopped && upstream.end())
    upstream.on('close', () => !stopped && client.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const { port } = proxy.address() as net.AddressInfo
  return {
    ignored: () => ignored,
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
