/**
 * The bare Node.js reverse proxy of `bench:gateway-http`, run as its own process: node:http in,
 * node:http out over a keep-alive Agent (the same Agent options as Lineage's gateway), no checks
 * at all. `/<prefix>/<path>` goes to `<upstream>/<path>`; hop-by-hop headers are dropped and the
 * caller's `Authorization` is replaced with the upstream's credential, as the gateway does.
 * Receives a `BareProxyConfig` over IPC; replies with the URL it listens on.
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface BareProxyConfig {
  /** Base URL of the upstream, e.g. `http://127.0.0.1:8080/api`. */
  upstream: string
  /** Path prefix the proxy strips, e.g. `/bench`. */
  prefix: string
  /** Headers set on every upstream request (the upstream credential). */
  headers: Record<string, string>
}

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host'])

function copy (headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !hopByHop.has(k)) out[k] = v
  return out
}

async function start (c: BareProxyConfig): Promise<string> {
  const up = new URL(c.upstream)
  const base = up.pathname.replace(/\/$/, '')
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 })
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const url = req.url ?? '/'
    const path = base + (url.startsWith(`${c.prefix}/`) ? url.slice(c.prefix.length) : url)
    const headers = copy(req.headers)
    Object.assign(headers, c.headers)
    headers.host = up.host
    const out = request({ host: up.hostname, port: up.port, method: req.method, path, headers, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, copy(ur.headers))
      ur.pipe(res)
    })
    out.on('error', () => {
      if (res.headersSent) res.destroy()
      else res.writeHead(502).end()
    })
    req.pipe(out)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

process.once('message', (m) => {
  start(m as BareProxyConfig).then(
    (url) => { process.send?.({ url }) },
    (err) => { process.stderr.write(`bare proxy: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) }
  )
})
process.once('SIGTERM', () => process.exit(0))
