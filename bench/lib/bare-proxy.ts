import { fileURLToPath } from 'node:url'
import { forkAndAsk, type Child } from './child.js'
import type { BareProxyConfig } from './bare-proxy-server.js'

const entry = fileURLToPath(new URL('./bare-proxy-server.ts', import.meta.url))

/** Starts the bare Node.js reverse proxy (no checks) in its own process. */
export async function startBareProxy (config: BareProxyConfig): Promise<{ url: string, child: Child }> {
  const { child, reply } = await forkAndAsk<{ url: string }>(entry, config, 30_000)
  return { url: reply.url, child }
}
