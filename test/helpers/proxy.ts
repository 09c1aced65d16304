import { connect, createServer, type AddressInfo, type Socket } from 'node:net'

/** A TCP proxy a test can freeze: connections stay open but nothing passes, as with a hung network path. */
export interface FreezableProxy {
  port: number
  /** Stops passing bytes both ways on every connection, present and future. */
  freeze: () => void
  close: () => Promise<void>
}

/** A proxy on loopback port 0 to `host`:`port`. */
export async function startProxy (host: string, port: number): Promise<FreezableProxy> {
  let frozen = false
  const pairs = new Set<[Socket, Socket]>()
  const server = createServer((client) => {
    const up = connect(port, host)
    const pair: [Socket, Socket] = [client, up]
    pairs.add(pair)
    client.pipe(up)
    up.pipe(client)
    const end = (): void => { client.destroy(); up.destroy(); pairs.delete(pair) }
    for (const s of pair) { s.on('close', end); s.on('error', end) }
    if (frozen) { client.pause(); up.pause() }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    freeze: () => {
      frozen = true
      for (const [a, b] of pairs) { a.unpipe(); b.unpipe(); a.pause(); b.pause() }
    },
    close: async () => {
      for (const [a, b] of pairs) { a.destroy(); b.destroy() }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
