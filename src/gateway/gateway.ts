import { createServer, ServerResponse, STATUS_CODES, type Server } from 'node:http'
import { Readable, type Duplex } from 'node:stream'
import type { Server as NetServer, Socket } from 'node:net'
import type { SecureContext } from 'node:tls'
import type { Logger } from '../log.js'
import type { Db } from '../storage/db.js'
import type { AuditLog } from '../audit/audit-log.js'
import type { Metrics } from '../metrics.js'
import type { CheckDeps } from './check.js'
import { clientErrorOf, Lane } from './http/lane.js'
import type { AgentRequest } from './http/lane-response.js'
import { createHttpGateway, type AgentListener } from './http/proxy.js'
import { allowedMethods, lacksHost, originForm } from './http/request-target.js'
import { TargetDirectory } from './targets.js'
import { loadMaskKey } from './pg/mask-key.js'
import { createPgGateway, type PgGateway } from './pg/server.js'
import { bodyUnread } from './http/upstream.js'

export interface GatewayOptions extends CheckDeps {
  db: Db
  log: Logger
  upstreamTimeoutMs?: number
  audit: AuditLog
  metrics: Metrics
  /** What `/_lineage/readyz` reports. */
  ready: () => { ready: boolean, detail: Record<string, unknown> }
  /** TLS for the PostgreSQL listener's SSLRequest. */
  tls?: SecureContext
  /** How long a PostgreSQL client has to finish TLS, startup and login. */
  pgLoginTimeoutMs?: number
  /** How long the PostgreSQL gateway keeps what an upstream's catalog tells (default 30 s). */
  pgCatalogTtlMs?: number
}

export interface Gateway {
  httpServer: Server
  pgServer: NetServer
  pg: PgGateway
  targets: TargetDirectory
  stop: () => Promise<void>
}

/** A whole response written straight to a socket that is then closed: for requests no handler sees. */
const plainResponse = (status: number, message: string): string => {
  const body = JSON.stringify({ error: 'invalid_request', error_description: message })
  const allow = status === 405 ? `Allow: ${allowedMethods}\r\n` : ''
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${allow}Connection: close\r\n\r\n${body}`
}

/**
 * Sends `response` on a connection no handler has, and closes it once the response is written:
 * Node's server lets the agent keep its side open (half-open), and one that never closes it
 * would hold the connection, under no timeout of Node's, and a stop would wait for it. A
 * response already under way on the connection (to a request before this one, a stream say)
 * would carry `response` inside its body: the connection is cut instead, as Node itself does.
 * `_httpMessage` is the response writing now.
 */
function refuseAndClose (socket: Duplex, response: string): void {
  if ((socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent === true) socket.destroy()
  else socket.end(response, () => socket.destroy())
}

/**
 * Gives the body of a request the gateway's own endpoints answer without reading it (dropped
 * as it comes, so that the next request on the connection can be read) `limitMs` to end: an
 * agent still sending it then (a chunked body that never ends) is cut off. The listener has no
 * `requestTimeout`, so that uploads to targets stream as long as they take; without this, one
 * agent, with no token, could hold any number of connections for ever.
 */
function limitUnreadBody (req: AgentRequest, limitMs: number): void {
  if (!bodyUnread(req) || !(req instanceof Readable)) return
  const timer = setTimeout(() => { if (!req.complete) req.socket.destroy() }, limitMs)
  timer.unref()
  req.once('end', () => { clearTimeout(timer) })
  req.once('close', () => { clearTimeout(timer) })
}

/**
 * Builds the gateway's listeners on a live-status view (its own, or the broker's in the same
 * process). Targets are loaded once and kept current from the change log.
 */
export async function createGateway (opts: GatewayOptions): Promise<Gateway> {
  const targets = new TargetDirectory(opts.db)
  // A read that fails (the database blinked) is read again until one succeeds: the change that
  // asked for it is not heard again, and the old definition (a deleted target, a looser policy)
  // would stay until the next one. A newer read's ticket keeps a late retry from undoing it.
  let stopped = false
  const retryMs = 1000
  const keepReading = (read: () => Promise<void>, what: string, logged = false): void => {
    read().catch((err) => {
      if (!logged) opts.log.error({ err }, `${what} failed; reading again every ${retryMs} ms`)
      if (!stopped) setTimeout(() => { if (!stopped) keepReading(read, what, true) }, retryMs).unref()
    })
  }
  // Listening before the load: a target saved while it reads is reloaded, and the tickets keep
  // whichever read is newer; a change heard only after the load would be lost.
  const offChange = opts.view.onChange((c) => {
    if (c.kind === 'target') { const name = c.data.name; keepReading(async () => { await targets.reload(name) }, 'reloading a target') }
  })
  const offReset = opts.view.onReset(() => { keepReading(async () => { await targets.load() }, 'reloading targets') })
  try {
    await targets.load()
  } catch (err) {
    stopped = true
    offChange()
    offReset()
    throw err
  }
  const http = createHttpGateway({ ...opts, targets })
  // Read once: the key is made once per deployment and never changes.
  const maskKey = await loadMaskKey(opts.db)
  const pg = await createPgGateway({ ...opts, targets, loginTimeoutMs: opts.pgLoginTimeoutMs, catalogTtlMs: opts.pgCatalogTtlMs, maskKey })
  // The gateway's own endpoints live under `/_lineage/`: no target name starts with `_`.
  const own: AgentListener = (req, res) => {
    limitUnreadBody(req, httpServer.headersTimeout)
    const send = (status: number, type: string, body: string): void => { res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body) }
    if (req.url === '/_lineage/healthz') return send(200, 'application/json', '{"ok":true}')
    if (req.url === '/_lineage/readyz') {
      const r = opts.ready()
      return send(r.ready ? 200 : 503, 'application/json', JSON.stringify({ ready: r.ready, ...r.detail }))
    }
    if (req.url === '/_lineage/metrics') {
      opts.metrics.registry.metrics().then((text) => send(200, opts.metrics.registry.contentType, text), () => send(500, 'text/plain', 'metrics failed'))
      return
    }
    send(404, 'application/json', JSON.stringify({ error: 'not_found', error_description: 'no such gateway endpoint' }))
  }
  // The request each connection carries now, whose body the parser may still be reading.
  const current = new WeakMap<Duplex, AgentRequest>()
  const onRequest: AgentListener = (req, res) => {
    current.set(req.socket, req)
    // node:http hands on a request pipelined behind a response still under way at once, its
    // response given the connection only when that one is whole; the lane reads no request
    // before then. Served at once, a DELETE behind a stream that never ends would run at the
    // upstream with its answer never delivered (RFC 9112 §9.3.2 lets only safe requests run
    // side by side), and be judged on a chain that may be cut off before its turn.
    if (res instanceof ServerResponse && res.socket === null) {
      res.once('socket', () => { serve(req, res) })
      return
    }
    serve(req, res)
  }
  const serve: AgentListener = (req, res) => {
    if (req.url !== undefined && !req.url.startsWith('/')) req.url = originForm(req.url)
    // A request without Host is the HTTP gateway's to refuse and record, wherever it was sent.
    if (req.url?.startsWith('/_lineage/') === true && !lacksHost(req)) own(req, res)
    else http.handler(req, res)
  }
  // Node would answer an HTTP/1.1 request without Host itself, with no record and no JSON body.
  // It checks for headers past `headersTimeout` only every `connectionsCheckingInterval` (30 s
  // by default, which would let a slow sender hold a connection for up to 50 s): every second.
  const httpServer = createServer({
    maxHeaderSize: 16 * 1024, requestTimeout: 0, headersTimeout: 20_000, connectionsCheckingInterval: 1000, keepAliveTimeout: 65_000, requireHostHeader: false
  }, onRequest)
  // Connections start on the bare-socket lane; the first request it does not take gives the
  // connection to node:http's own listener, which serves it from there on.
  const nodeListeners = httpServer.listeners('connection') as Array<(socket: Socket) => void>
  const lane = new Lane({
    request: onRequest,
    continueExpected: (req, res) => {
      http.owesContinue(req)
      onRequest(req, res)
    },
    handOff: (socket, headLeftMs) => {
      for (const l of nodeListeners) l.call(httpServer, socket)
      if (headLeftMs === undefined) return
      // node:http counts a head's time from when it has the connection: one it has not finished
      // (no request from it yet) when the lane's time is up is refused then, not that long again.
      const before = current.get(socket)
      const timer = setTimeout(() => {
        if (!socket.destroyed && current.get(socket) === before) httpServer.emit('clientError', clientErrorOf('Request timeout', 'ERR_HTTP_REQUEST_TIMEOUT'), socket)
      }, headLeftMs)
      socket.once('close', () => { clearTimeout(timer) })
    },
    // Refused and recorded as node:http's own are (the 'clientError' listener below).
    clientError: (socket, err) => { httpServer.emit('clientError', err, socket) }
  }, {
    get firstRequestMs () { return httpServer.headersTimeout },
    get keepAliveMs () { return httpServer.keepAliveTimeout }
  })
  httpServer.removeAllListeners('connection')
  httpServer.on('connection', (socket: Socket) => { lane.accept(socket) })
  // A stop closes node:http's idle connections and, past its grace, all of them: the lane's too.
  const closeIdle = httpServer.closeIdleConnections.bind(httpServer)
  const closeAll = httpServer.closeAllConnections.bind(httpServer)
  httpServer.closeIdleConnections = () => { closeIdle(); lane.closeIdle() }
  httpServer.closeAllConnections = () => { closeAll(); lane.closeAll() }
  // `Expect: 100-continue`: Node would answer 100 at once and invite the body before the token
  // is looked at. The gateway answers it only once the request is allowed, and a refusal
  // instead, as the final answer the agent waits for (RFC 9110 §10.1.1).
  httpServer.on('checkContinue', (req, res) => {
    http.owesContinue(req)
    onRequest(req, res)
  })
  // Any other expectation is one the gateway cannot meet: 417, recorded as any refusal is.
  httpServer.on('checkExpectation', (req, res) => {
    current.set(req.socket, req)
    http.refuseExpectation(req, res)
  })
  // Malformed requests (bad framing, conflicting Content-Length and Transfer-Encoding, oversized
  // headers, headers never finished) never reach the handler: answered plainly, the connection
  // dropped, and recorded as a refusal made before a token was looked at. A connection reset
  // mid-request is owed nothing.
  httpServer.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') return socket.destroy()
    // The agent ended its side partway through the body of a request already handed on (a client
    // aborting an upload): that request's own record says how it ended (499, or its refusal).
    // Anything written to the connection goes out before it closes; nothing more is.
    if (err.code === 'HPE_INVALID_EOF_STATE' && current.get(socket)?.complete === false) return socket.end()
    const [status, reason] = err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'request headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request headers not received in time'] : [400, 'malformed HTTP request']
    // A response may be under way on this connection (to the request before a malformed one, or
    // to the one whose body turned out malformed): refuseAndClose then cuts it.
    refuseAndClose(socket, plainResponse(status, reason))
    opts.metrics.gatewayRequests.labels('(none)', 'deny').inc()
    opts.audit.record({ at: opts.clock.now(), kind: 'gateway.http', decision: 'deny', status, detail: { reason, error: err.code ?? 'unknown' } })
  })
  // The gateway is no tunnel: CONNECT gets an answer, not a dropped connection, and is recorded
  // as any other refusal made before a token is looked at.
  httpServer.on('connect', (_req, socket: Duplex) => {
    const reason = 'CONNECT is not served: send requests to /<target>/<path>'
    socket.on('error', () => {})
    // Pipelined behind a response under way: cut, as for a malformed request.
    refuseAndClose(socket, plainResponse(405, reason))
    opts.metrics.gatewayRequests.labels('(none)', 'deny').inc()
    opts.audit.record({ at: opts.clock.now(), kind: 'gateway.http', decision: 'deny', status: 405, method: 'CONNECT', detail: { reason } })
  })
  return {
    httpServer,
    pgServer: pg.server,
    pg,
    targets,
    stop: async () => {
      stopped = true
      offChange()
      offReset()
      await http.settled(2000)
      http.close()
      await pg.stop()
    }
  }
}
