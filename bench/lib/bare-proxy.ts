import { fileURLToPath } from 'node:url'
import { forkAndAsk, type Child } from './child.js'
import type { BareProxyConfig } from './bare-proxy-server.js'
import type { RawProxyConfig } from './raw-proxy-server.js'

const entry = fileURLToPath(new URL('./bare-proxy-server.ts', import.meta.url))
const rawEntry = fileURLToPath(new URL('./raw-proxy-server.ts', import.meta.url))

/** Starts the bare Node.js reverse proxy (no checks) in its own process. */
export async function startBareProxy (config: BareProxyConfig): Promise<{ url: string, child: Child }> {
  const { child, reply } = await forkAndAsk<{ url: string }>(entry, config, 30_000)
  return { url: reply.url, child }
}

/** Starts the raw-socket Node.js proxy (no HTTP library, no checks) in its own process. */
export async function startRawProxy (config: RawProxyConfig): Promise<{ url: string, child: Child }> {
  const { child, reply } = await forkAndAsk<{ url: string }>(rawEntry, config, 30_000)
  return { url: reply.url, child }
}
