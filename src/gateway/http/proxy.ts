import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type RequestListener, type ServerResponse } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import { InvalidToken, LineageError, NotFound, toErrorBody } from '../../errors.js'
import type { Logger } from '../../log.js'
import { actorsOf, type AccessClaims } from '../../lineage/claims.js'
import { bearerOf } from '../../broker/caller.js'
import { checkAccess, InsufficientScope, type CheckDeps } from '../check.js'
import type { Target, TargetDirectory } from '../targets.js'
import type { AuditLog } from '../../audit/audit-log.js'
import type { Metrics } from '../../metrics.js'
import { ConnectionIndex } from './connections.js'
import { parseRequestTarget } from './request-target.js'

export class BadGateway extends LineageError {
  constructor (description: string) { super('ERR_BAD_GATEWAY', 'bad_gateway', 502, description) }
}
export class GatewayTimeout extends LineageError {
  constructor (description: string) { super('ERR_GATEWAY_TIMEOUT', 'gateway_timeout', 504, description) }
}

export interface HttpGatewayOptions extends CheckDeps {
  targets: TargetDirectory
  log: Logger
  audit: AuditLog
  metrics: Metrics
  /** How long to wait for the upstream's response headers. */
  upstreamTimeoutMs?: number
}

// RFC 9110 §7.6.1: connection-specific headers never cross a proxy.
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

function forwardable (headers: IncomingHttpHeaders, drop: Set<string>): OutgoingHttpHeaders {
  // Headers the Connection header names are hop-by-hop too; it usually names none.
  const connection = headers.connection
  const listed = connection === undefined || connection === 'keep-alive' || connection === 'close'
    ? undefined
    : new Set(connection.toLowerCase().split(',').map((s) => s.trim()))
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || hopByHop.has(name) || drop.has(name) || listed?.has(name) === true) continue
    out[name] = value
  }
  return out
}

// Request headers the agent may not pass on: its own credential, the identity headers the
// gateway sets, and `expect` (the gateway has already answered 100-continue itself).
const fromAgent = new Set(['authorization', 'host', 'lineage-subject', 'lineage-actor', 'expect'])
const none = new Set<string>()

/** The request's target and path for the audit record, or undefined when the URL was refused. */
function safeTarget (url: string): { target: string, path: string } | undefined {
  try {
    return parseRequestTarget(url)
  } catch {
    return undefined
  }
}

function challenge (err: LineageError): Record<string, string> {
  const description = err.message.replace(/["\\\r\n]/g, ' ')
  if (err.status === 401) return { 'www-authenticate': `Bearer error="invalid_token", error_description="${description}"` }
  if (err.status === 403) return { 'www-authenticate': `Bearer error="insufficient_scope", error_description="${description}"` }
  return {}
}

function refuse (res: ServerResponse, err: unknown): void {
  const { status, body } = toErrorBody(err)
  if (res.headersSent) {
    res.destroy()
    return
  }
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...(err instanceof LineageError ? challenge(err) : {}) })
  res.end(text)
}

/**
 * The HTTP gateway: `/<target>/<path>` → the target's upstream, after `checkAccess` passes.
 * Bodies stream both ways; upstream connections are kept alive per target. Every connection
 * that carried a request is indexed by its chain, so a cut-off closes it at once.
 */
export function createHttpGateway (opts: HttpGatewayOptions): { handler: RequestListener, connections: ConnectionIndex, close: () => void } {
  const connections = new ConnectionIndex(opts.view)
  const agents = new Map<string, HttpAgent>()
  const timeout = opts.upstreamTimeoutMs ?? 30_000
  // Labelled metric children per target, looked up once instead of on every request.
  const perTarget = new Map<string, { check: { observe: (v: number) => void }, allow: { inc: () => void }, deny: { inc: () => void } }>()
  function metricsFor (target: string): NonNullable<ReturnType<typeof perTarget.get>> {
    let m = perTarget.get(target)
    if (m === undefined) {
      m = { check: opts.metrics.checkSeconds.labels(target), allow: opts.metrics.gatewayRequests.labels(target, 'allow'), deny: opts.metrics.gatewayRequests.labels(target, 'deny') }
      perTarget.set(target, m)
    }
    return m
  }

  function agentFor (t: Target): HttpAgent {
    const key = `${t.name} ${t.upstream.origin}`
    let a = agents.get(key)
    if (a === undefined) {
      const o = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64 }
      a = t.upstream.protocol === 'https:' ? new HttpsAgent(o) : new HttpAgent(o)
      agents.set(key, a)
    }
    return a
  }

  function forward (req: IncomingMessage, res: ServerResponse, t: Target, path: string, claims: AccessClaims): void {
    const base = t.upstream.pathname.replace(/\/$/, '')
    const headers = forwardable(req.headers, fromAgent)
    Object.assign(headers, t.headers)
    headers.host = t.upstream.host
    const peer = req.socket.remoteAddress ?? ''
    headers['x-forwarded-for'] = req.headers['x-forwarded-for'] === undefined ? peer : `${String(req.headers['x-forwarded-for'])}, ${peer}`
    headers['lineage-subject'] = claims.sub
    headers['lineage-actor'] = actorsOf(claims.act)[0] ?? claims.sub
    const send = t.upstream.protocol === 'https:' ? httpsRequest : httpRequest
    const up = send({ host: t.upstream.hostname, port: t.upstream.port, method: req.method, path: base + path, headers, agent: agentFor(t) })
    const timer = setTimeout(() => up.destroy(new GatewayTimeout(`upstream ${t.name} sent no response within ${timeout} ms`)), timeout)
    up.on('response', (ur) => {
      clearTimeout(timer)
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, forwardable(ur.headers, none))
      // A stream (no length: chunked, server-sent events) gets its headers at once; a sized
      // body carries them in its first write.
      if (ur.headers['content-length'] === undefined) res.flushHeaders()
      ur.pipe(res)
      ur.on('error', () => res.destroy())
      ur.on('aborted', () => res.destroy())
    })
    up.on('error', (err) => {
      clearTimeout(timer)
      if (err instanceof GatewayTimeout) refuse(res, err)
      else refuse(res, new BadGateway(`upstream ${t.name} failed: ${(err as NodeJS.ErrnoException).code ?? 'connection error'}`))
    })
    res.on('close', () => { if (!res.writableFinished) up.destroy() })
    req.pipe(up)
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const where = parseRequestTarget(req.url ?? '')
    const t = where === undefined ? undefined : opts.targets.get(where.target)
    if (where === undefined || t === undefined || t.kind !== 'http') throw new NotFound('no such target')
    const method = req.method ?? 'GET'
    const started = performance.now()
    const decision = await checkAccess(opts, bearerOf(req.headers.authorization), t, {
      action: method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? 'read' : 'write',
      method,
      path: where.path
    })
    const m = metricsFor(t.name)
    m.check.observe((performance.now() - started) / 1000)
    ;(decision.allowed ? m.allow : m.deny).inc()
    const claims = decision.claims
    const lineage = claims === undefined ? {} : { jti: claims.jti, root: claims.lineage.chain[0] ?? claims.jti, principals: claims.lineage.principals, actors: actorsOf(claims.act) }
    if (!decision.allowed) {
      opts.audit.record({ at: opts.clock.now(), kind: 'gateway.http', decision: 'deny', status: decision.refusal.status, target: t.name, method, path: where.path, ...lineage, detail: { reason: decision.refusal.message } })
      throw decision.refusal
    }
    connections.track(req.socket as Socket, decision.claims, res)
    res.once('close', () => opts.audit.record({
      at: opts.clock.now(), kind: 'gateway.http', decision: 'allow', status: res.writableFinished ? res.statusCode : 499, target: t.name, method, path: where.path, ...lineage
    }))
    forward(req, res, t, where.path + where.query, decision.claims)
  }

  // Refusals decided by checkAccess are recorded in `handle`, with their lineage.
  const handler: RequestListener = (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!(err instanceof LineageError)) opts.log.error({ err, method: req.method }, 'gateway request failed')
      if (!(err instanceof InvalidToken || err instanceof InsufficientScope)) {
        // Refused before any token was looked at: a bad URL or an unknown target. Unknown
        // targets share one label, so a scan of made-up names cannot grow the metrics.
        const where = safeTarget(req.url ?? '')
        metricsFor('(none)').deny.inc()
        opts.audit.record({
          at: opts.clock.now(), kind: 'gateway.http', decision: 'deny', status: toErrorBody(err).status, target: where?.target, method: req.method, path: where?.path,
          detail: { reason: err instanceof LineageError ? err.message : 'internal error' }
        })
      }
      // An unread request body must not be parsed as the next request on this connection.
      if (!req.complete) res.setHeader('connection', 'close')
      refuse(res, err)
    })
  }
  return {
    handler,
    connections,
    close: () => {
      connections.close()
      for (const a of agents.values()) a.destroy()
    }
  }
}

