import type pg from 'pg'

/** How long, in ms, the module waits for a server to take a client's goodbye (see endClient). */
export const END_CLIENT_TIMEOUT_MS = 3_000

/**
 * Ends `client` and waits for the server to close the connection, at most
 * {@link END_CLIENT_TIMEOUT_MS}; never throws, since the client's work is done.
 *
 * Why: node-postgres' `client.end()` sends Terminate, closes its side of the socket and resolves
 * only once the server closes its side too. A server or pooler process stopped after its last
 * answer (SIGSTOP, a frozen VM, a wedged pooler) never does, and its kernel still acknowledges,
 * so TCP keepalive never fires either: `await client.end()` would wait for ever. After the bound
 * the wait is given up and the socket is left half-closed, until the server closes it or the
 * process exits (the command line exits through process.exit). The timer is unref'd: it never
 * keeps a process alive by itself.
 *
 * @example
 * ```ts
 * try {
 *   await client.query('SELECT 1')
 * } finally {
 *   await endClient(client)
 * }
 * ```
 */
export async function endClient(client: pg.Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const givenUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, END_CLIENT_TIMEOUT_MS)
    timer.unref()
  })
  try {
    await Promise.race([client.end().catch(() => {}), givenUp])
  } finally {
    clearTimeout(timer)
  }
}
