/**
 * The bare Node.js reverse proxies of `bench:gateway-http`, run as their own process, no checks
 * at all: node:http in, and out either through node:http over a keep-alive Agent or through an
 * undici Pool (the client Lineage's gateway uses, with its options). `/<prefix>/<path>` goes to
 * `<upstream>/<path>`; hop-by-hop headers are dropped and the caller's `Authorization` is
 * replaced with the upstream's credential, as the gateway does. Receives a `BareProxyConfig`
 * over IPC; replies with the URL it listens on.
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'
import { serveForParent } from './forked.js'

export interface BareProxyConfig {
  /** Base URL of the upstream, e.g. `http://127.0.0.1:8080/api`. */
  upstream: string
  /** Path prefix the proxy strips, e.g. `/bench`. */
  prefix: string
  /** Headers set on every upstream request (the upstream credential). */
  headers: Record<string, string>
  /** The HTTP client towards the upstream. */
  client: 'node:http' | 'undici'
}

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host'])

function copy (headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !hopByHop.has(k)) out[k] = v
  return out
}

function viaNodeHttp (up: URL): (req: IncomingMessage, res: ServerResponse, path: string, headers: OutgoingHttpHeaders) => void {
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 })
  return (req, res, path, headers) => {
    const out = request({ host: up.hostname, port: up.port, method: req.method, path, headers, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, copy(ur.headers))
      ur.pipe(res)
    })
    out.on('error', () => {
      if (res.headersSent) res.destroy()
      else res.writeHead(502).end()
    })
    req.pipe(out)
  }
}

function viaUndici (up: URL): (req: IncomingMessage, res: ServerResponse, path: string, headers: OutgoingHttpHeaders) => void {
  const pool = new Pool(up.origin, { connections: 256, bodyTimeout: 0 })
  return (req, res, path, headers) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0'
    pool.dispatch({ origin: up.origin, path, method: req.method ?? 'GET', headers: headers as Record<string, string>, body: hasBody ? req : null }, {
      onRequestStart: () => {},
      onResponseStart: (_c, status, h, message) => { res.writeHead(status, message, copy(h)) },
      onResponseData: (c, chunk) => { if (!res.write(chunk)) { c.pause(); res.once('drain', () => { c.resume() }) } },
      onResponseEnd: () => { res.end() },
      onResponseError: () => {
        if (res.headersSent) res.destroy()
        else res.writeHead(502).end()
      }
    })
  }
}

async function start (c: BareProxyConfig): Promise<string> {
  const up = new URL(c.upstream)
  const base = up.pathname.replace(/\/$/, '')
  const send = c.client === 'undici' ? viaUndici(up) : viaNodeHttp(up)
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const url = req.url ?? '/'
    const headers = copy(req.headers)
    Object.assign(headers, c.headers)
    headers.host = up.host
    send(req, res, base + (url.startsWith(`${c.prefix}/`) ? url.slice(c.prefix.length) : url), headers)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

serveForParent('bare proxy', async (c: BareProxyConfig) => ({ url: await start(c) }))
