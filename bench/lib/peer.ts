import { fileURLToPath } from 'node:url'
import { forkAndAsk, type Child } from './child.js'
import type { PeerInfo } from './peer-server.js'

const entry = fileURLToPath(new URL('./peer-server.ts', import.meta.url))

/** Starts the oidc-provider peer in its own process. */
export async function startPeer (): Promise<{ info: PeerInfo, child: Child }> {
  const { child, reply } = await forkAndAsk<PeerInfo>(entry, 'start', 30_000)
  return { info: reply, child }
}

/** `Authorization: Basic` for the peer's client (RFC 6749 §2.3.1: each part form-encoded). */
export function basicAuth (info: PeerInfo): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(info.clientId)}:${encodeURIComponent(info.clientSecret)}`).toString('base64')}`
}
