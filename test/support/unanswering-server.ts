import net from 'node:net'

/** A server started by {@link unansweringServer}. */
export interface UnansweringServer {
  /** A PostgreSQL URL of this server, with the user `app` and no password. */
  url: string
  /** How many connections it has accepted so far. */
  connections(): number
  close(): Promise<void>
}

/**
 * A TCP server on 127.0.0.1 that accepts connections and keeps them open without ever finishing
 * PostgreSQL's start-up: `'silent'` answers nothing at all (a server that hangs, a proxy in front
 * of a dead one); `'password'` asks for a cleartext password, as a server with password
 * authentication does, then waits for ever (PostgreSQL itself gives up after its
 * authentication_timeout, 60 s); `'starting-up'` refuses the start-up with SQLSTATE 57P03, as a
 * server that is starting does (an answer with a SQLSTATE that is no statement's); `'no-tls'`
 * answers a client's request for TLS with no, as a server without TLS does, then nothing; `'after-login'` lets the client in (no password), then answers
 * no query (a server or proxy that stalls once connected).
 *
 * @example
 * ```ts
 * const server = await unansweringServer('silent')
 * const { code } = await cli(['list'], { DATABASE_URL: server.url })
 * await server.close()
 * ```
 */
export async function unansweringServer(
  mode: 'silent' | 'password' | 'after-login' | 'starting-up' | 'no-tls',
): Promise<UnansweringServer> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer((socket) => {
    accepted += 1
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    if (mode === 'password') {
      // AuthenticationCleartextPassword: 'R', length 8, code 3.
      socket.once('data', () => socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])))
    }
    if (mode === 'no-tls') socket.once('data', () => socket.write('N'))
    if (mode === 'starting-up') {
      const fields = Buffer.from('SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0')
      const head = Buffer.alloc(5)
      head[0] = 0x45
      head.writeInt32BE(fields.length + 4, 1)
      socket.once('data', () => socket.end(Buffer.concat([head, fields])))
    }
    if (mode === 'after-login') {
      // pg sends no SSLRequest without ssl in the URL: its first packet is the start-up one.
      // AuthenticationOk, the parameters pg reads, ReadyForQuery; then nothing more.
      const parameter = (name: string, value: string) => {
        const body = Buffer.from(`${name}\0${value}\0`)
        const head = Buffer.alloc(5)
        head[0] = 0x53
        head.writeInt32BE(body.length + 4, 1)
        return Buffer.concat([head, body])
      }
      socket.once('data', () =>
        socket.write(
          Buffer.concat([
            Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]),
            parameter('server_version', '15.8'),
            parameter('client_encoding', 'UTF8'),
            parameter('integer_datetimes', 'on'),
            Buffer.from([0x5a, 0, 0, 0, 5, 0x49]),
          ]),
        ),
      )
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `postgres://app@127.0.0.1:${port}/app`,
    connections: () => accepted,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
