import { fileURLToPath } from 'node:url'
import { forkAndAsk, type Child } from './child.js'
import type { PgRelayConfig } from './pg-relay-server.js'

const entry = fileURLToPath(new URL('./pg-relay-server.ts', import.meta.url))

/** Starts the bare Node.js PostgreSQL relay (no parsing, no checks) in its own process. */
export async function startPgRelay (config: PgRelayConfig): Promise<{ port: number, child: Child }> {
  const { child, reply } = await forkAndAsk<{ port: number }>(entry, config, 30_000)
  return { port: reply.port, child }
}
