import { connect, createServer, type AddressInfo, type Socket } from 'node:net'

/** A TCP proxy a test can freeze: connections stay open but nothing passes, as with a hung network path. */
export interface FreezableProxy {
  port: number
  /** Stops passing bytes both ways on every connection, present and future; what arrives is held. */
  freeze: () => void
  /** Passes what was held, and everything after it. */
  thaw: () => void
  close: () => Promise<void>
}

/** A proxy on loopback port 0 to `host`:`port`. */
export async function startProxy (host: string, port: number): Promise<FreezableProxy> {
  let frozen = false
  const held: Array<{ to: Socket, data: Buffer }> = []
  const pairs = new Set<[Socket, Socket]>()
  const relay = (from: Socket, to: Socket): void => {
    from.on('data', (data: Buffer) => { if (frozen) held.push({ to, data }); else to.write(data) })
  }
  const server = createServer((client) => {
    const up = connect(port, host)
    const pair: [Socket, Socket] = [client, up]
    pairs.add(pair)
    relay(client, up)
    relay(up, client)
    const end = (): void => { client.destroy(); up.destroy(); pairs.delete(pair) }
    for (const s of pair) { s.on('close', end); s.on('error', end) }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    freeze: () => { frozen = true },
    thaw: () => {
      frozen = false
      for (const { to, data } of held.splice(0)) if (!to.destroyed) to.write(data)
    },
    close: async () => {
      for (const [a, b] of pairs) { a.destroy(); b.destroy() }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
