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
  // What arrived while frozen, in order: bytes, or `null` for the sender's end (FIN), which a hung
  // path holds back as well: a peer that ends its side then waits for the other's end in vain.
  const held: Array<{ to: Socket, data: Buffer | null }> = []
  const pairs = new Set<[Socket, Socket]>()
  const pass = (to: Socket, data: Buffer | null): void => { if (data === null) to.end(); else to.write(data) }
  const relay = (from: Socket, to: Socket): void => {
    from.on('data', (data: Buffer) => { if (frozen) held.push({ to, data }); else pass(to, data) })
    from.on('end', () => { if (frozen) held.push({ to, data: null }); else pass(to, null) })
  }
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const up = connect({ port, host, allowHalfOpen: true })
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
      for (const { to, data } of held.splice(0)) if (!to.destroyed) pass(to, data)
    },
    close: async () => {
      for (const [a, b] of pairs) { a.destroy(); b.destroy() }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
