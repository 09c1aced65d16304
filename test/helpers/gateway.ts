import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { SecureContext } from 'node:tls'
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway.js'
import type { VerifiedTokens } from '../../src/lineage/verified-tokens.js'
import { silentLogger } from '../../src/log.js'
import type { TestBroker } from './broker.js'

export interface Upstream {
  url: string
  server: Server
  /** Requests seen, newest last. */
  seen: Array<{ method: string, url: string, headers: IncomingMessage['headers'], bodyBytes: number }>
  /** Event streams the gateway closed before the upstream ended them. */
  streamsClosed: number
  close: () => Promise<void>
}

/**
 * A small upstream: echoes what it got as JSON; `/sse` streams an event every 50 ms;
 * `/hang` never answers; `/reset` drops the connection; `/cookies` sets two cookies and a
 * header its `Connection` names; a query's `c` parameters are set as cookies, its `l` is redirected to; `/big` sends 32 MiB.
 */
export async function startUpstream (): Promise<Upstream> {
  const seen: Upstream['seen'] = []
  let streamsClosed = 0
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let bodyBytes = 0
    req.on('data', (c: Buffer) => { bodyBytes += c.length })
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes })
      if (req.url?.endsWith('/hang')) return
      if (req.url?.endsWith('/reset')) { req.socket.destroy(); return }
      if (req.url?.endsWith('/sse')) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'x-upstream-secret': 'none' })
        let n = 0
        const timer = setInterval(() => res.write(`data: ${n++}\n\n`), 50)
        res.on('close', () => { clearInterval(timer); streamsClosed++ })
        return
      }
      // Set-Cookie values as the query's `c` parameters give them; a redirect to its `l`.
      const query = new URL(req.url ?? '/', 'http://upstream').searchParams
      const set = query.getAll('c')
      if (set.length > 0) {
        res.writeHead(200, [...set.map((c) => ['Set-Cookie', c]), ['Content-Length', '2']].flat())
        res.end('ok')
        return
      }
      if (query.has('l')) {
        res.writeHead(302, { location: query.get('l') as string, 'content-location': query.get('l') as string, 'content-length': '0' })
        res.end()
        return
      }
      if (req.url?.endsWith('/cookies')) {
        res.writeHead(200, [['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['Connection', 'x-hop'], ['X-Hop', 'private'], ['Content-Length', '2']])
        res.end('ok')
        return
      }
      if (req.url?.endsWith('/big')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(32 * 1024 * 1024) })
        const chunk = Buffer.alloc(1024 * 1024, 1)
        let sent = 0
        const more = (): void => {
          while (sent < 32) { sent++; if (!res.write(chunk)) { res.once('drain', more); return } }
          res.end()
        }
        more()
        return
      }
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive', 'x-upstream': 'yes' })
      res.end(JSON.stringify({ method: req.method, url: req.url, bodyBytes }))
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    seen,
    get streamsClosed () { return streamsClosed },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

export interface TestGatewayOptions {
  upstreamTimeoutMs?: number
  freshAt?: () => number
  tls?: SecureContext
  pgLoginTimeoutMs?: number
  pgCatalogTtlMs?: number
  /** Verification keys by kid (default: the broker's own, at once), as a gateway process fetching the JWKS has them. */
  keys?: GatewayOptions['keys']
  /** Its own cache of verified tokens (default: the broker's, so no token needs verifying again). */
  verified?: VerifiedTokens
  /** The database the gateway reads (default: the broker's). */
  db?: GatewayOptions['db']
}

/** A gateway sharing the test broker's view, keys and cache, listening on port 0. */
export async function startTestGateway (b: TestBroker, opts: TestGatewayOptions = {}): Promise<{ url: string, pgPort: number, gateway: Gateway, close: () => Promise<void> }> {
  const ctx = b.broker.ctx
  const gateway = await createGateway({
    db: opts.db ?? ctx.db, log: silentLogger(), view: ctx.view, verified: opts.verified ?? ctx.verified, issuer: ctx.issuer, clock: ctx.clock, maxDepth: ctx.maxDepth,
    keys: opts.keys ?? ((kid) => ctx.keys().verifiers.get(kid)), upstreamTimeoutMs: opts.upstreamTimeoutMs,
    freshness: { freshAt: opts.freshAt ?? (() => ctx.sync.freshAt()), maxStalenessMs: 5000 }, audit: ctx.audit, metrics: ctx.metrics, ready: () => ({ ready: true, detail: {} }), tls: opts.tls, pgLoginTimeoutMs: opts.pgLoginTimeoutMs, pgCatalogTtlMs: opts.pgCatalogTtlMs
  })
  await new Promise<void>((resolve) => gateway.httpServer.listen(0, '127.0.0.1', resolve))
  await new Promise<void>((resolve) => gateway.pgServer.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(gateway.httpServer.address() as AddressInfo).port}`,
    pgPort: (gateway.pgServer.address() as AddressInfo).port,
    gateway,
    close: async () => {
      gateway.httpServer.closeAllConnections()
      await new Promise<void>((resolve) => gateway.httpServer.close(() => resolve()))
      await gateway.stop()
    }
  }
}

/** Waits until the gateway holds target `name` as the API answered it (`saved`): it learns of a save from the change feed, a moment after the API has answered. */
async function heldAsSaved (gw: { gateway: Gateway }, name: string, saved: { kind: string, upstream: string, policy: unknown }): Promise<void> {
  const want = JSON.stringify([saved.kind, saved.upstream, saved.policy])
  const held = (): string | undefined => {
    const t = gw.gateway.targets.get(name)
    if (t === undefined) return undefined
    // As the API shows it: no password in the upstream.
    const upstream = new URL(t.upstream)
    upstream.password = ''
    return JSON.stringify([t.kind, upstream.toString(), t.policy])
  }
  for (let i = 0; i < 250 && held() !== want; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  if (held() !== want) throw new Error(`the gateway did not take target ${name} as saved`)
}

/**
 * Saves target `name` with `body` (PUT) and waits until the gateway holds what was saved.
 * @returns the API's status
 */
export async function saveTarget (b: TestBroker, gw: { gateway: Gateway }, name: string, body: Record<string, unknown>): Promise<number> {
  const r = await b.admin('PUT', `/v1/targets/${name}`, body)
  if (r.status === 200) await heldAsSaved(gw, name, r.body)
  return r.status
}

/**
 * Creates a target (POST) and, when it was created, waits until the gateway holds it.
 * @returns the API's answer
 */
export async function createTarget (b: TestBroker, gw: { gateway: Gateway }, body: Record<string, unknown>): Promise<{ status: number, body: any }> {
  const r = await b.admin('POST', '/v1/targets', body)
  if (r.status === 201) await heldAsSaved(gw, body.name as string, r.body)
  return r
}
