/**
 * The bare Node.js relay of `bench:gateway-pg`, run as its own process: every client
 * connection gets its own connection to PostgreSQL and the bytes are piped both ways, nothing
 * parsed, checked or recorded. The floor of any PostgreSQL proxy written on Node's sockets.
 * Receives a `PgRelayConfig` over IPC; replies with the port it listens on.
 */
import { connect, createServer, type AddressInfo } from 'node:net'
import { serveForParent } from './forked.js'

export interface PgRelayConfig {
  host: string
  port: number
}

async function start (c: PgRelayConfig): Promise<number> {
  const server = createServer({ noDelay: true }, (client) => {
    const up = connect({ host: c.host, port: c.port, noDelay: true })
    const close = (): void => { client.destroy(); up.destroy() }
    client.on('error', close)
    up.on('error', close)
    client.on('close', close)
    up.on('close', close)
    client.pipe(up)
    up.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

serveForParent('pg relay', async (c: PgRelayConfig) => ({ port: await start(c) }))
