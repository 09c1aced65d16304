import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { InvalidToken, LineageError, NotFound, toErrorBody } from '../../errors.js'
import type { Logger } from '../../log.js'
import { currentActor, type AccessClaims } from '../../lineage/claims.js'
import { bearerOf } from '../../broker/caller.js'
import { authorize, checkAccess, genuineClaims, InsufficientScope, staleness, type CheckDeps, type Decision } from '../check.js'
import type { PolicyRequest } from '../policy.js'
import { destinationPaths } from './destination.js'
import type { Target, TargetDirectory } from '../targets.js'
import type { AuditLog } from '../../audit/audit-log.js'
import { auditLineage } from '../../audit/record.js'
import type { Metrics } from '../../metrics.js'
import { ConnectionIndex } from './connections.js'
import { allowedMethods, checkHost, checkMethod, checkOverrides, checkTokenElsewhere, checkTransferCoding, ExpectationFailed, parseRequestTarget, recordedPath } from './request-target.js'
import { forwardable } from './headers.js'
import type { AgentRequest, AgentResponse } from './lane-response.js'
import { endsConnection, pipelinedAfterClose, Upstreams, type Exchange } from './upstream.js'

export interface HttpGatewayOptions extends CheckDeps {
  targets: TargetDirectory
  log: Logger
  audit: AuditLog
  metrics: Metrics
  /** How long to wait for the upstream's response headers. */
  upstreamTimeoutMs?: number
}

// Request headers the agent may not pass on: its own credential, the headers the gateway sets
// (`x-forwarded-for` is set again with the agent's value and address, `x-forwarded-proto` and
// `-host` to what the agent used), those an upstream behind a proxy takes from it as facts
// about the request (`forwarded`, `x-forwarded-port`, `x-real-ip`: a spoofed host or scheme
// ends up in the links it builds and the checks it makes; the other spellings of the scheme
// too, which some read before `x-forwarded-proto`: Rack takes `x-forwarded-ssl: on` as https;
// `x-forwarded-prefix`, which Spring, Symfony and ASP.NET put before every link they build; the
// other spellings of the agent's address: Rails reads `client-ip`, the request-ip package `x-client-ip` first),
// and `expect` (the gateway answers 100-continue itself, once the request is allowed). The target's own
// headers are added to these per target; all are dropped in their `_` spellings too.
const fromAgent = ['authorization', 'host', 'lineage-subject', 'lineage-actor', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'forwarded',
  'x-forwarded-ssl', 'x-forwarded-scheme', 'front-end-https', 'x-url-scheme', 'x-forwarded-prefix',
  'client-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'fastly-client-ip', 'x-cluster-client-ip', 'expect']

/** The request's target and path for the audit record, or undefined when the URL was refused. */
function safeTarget (url: string): { target: string, path: string } | undefined {
  try {
    return parseRequestTarget(url)
  } catch {
    return undefined
  }
}

/**
 * The refusal's description as an `error_description` may carry it (RFC 6750 §3: %x20-21 /
 * %x23-5B / %x5D-7E): quotes and backslashes become spaces, every other character outside
 * printable ASCII (a control character, `—`, a character an attacker put in a token's `kid`)
 * becomes `?`. Node refuses to send a header holding such a character. The JSON body keeps
 * the description as it was.
 */
function headerDescription (message: string): string {
  return message.replace(/["\\]/g, ' ').replace(/[^\x20-\x7e]/gu, '?')
}

function challenge (err: LineageError): Record<string, string> {
  const description = headerDescription(err.message)
  if (err.status === 401) return { 'www-authenticate': `Bearer error="invalid_token", error_description="${description}"` }
  if (err.status === 403) return { 'www-authenticate': `Bearer error="insufficient_scope", error_description="${description}"` }
  if (err.status === 405) return { allow: allowedMethods }
  return {}
}

function refuse (res: AgentResponse, err: unknown): void {
  const { status, body } = toErrorBody(err)
  if (res.headersSent) {
    res.destroy()
    return
  }
  const text = JSON.stringify(body)
  // A request body not read to its end (refused before it was, or the upstream failed while
  // taking it) would hold up the next request on this connection: the connection ends instead.
  const ending = endsConnection(res.req) ? { connection: 'close' } : {}
  try {
    // The standard reason phrase: an upstream's may have been set on `res` before it failed.
    res.writeHead(status, STATUS_CODES[status], { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...ending, ...(err instanceof LineageError ? challenge(err) : {}) })
  } catch {
    // A refusal runs outside any handler that could catch its failure (a promise's, or the
    // request listener's own): whatever Node refuses to send, the agent's connection is cut
    // rather than the process brought down.
    res.destroy()
    return
  }
  res.end(text)
}

/** What handles a request, from node:http or from the bare-socket lane. */
export type AgentListener = (req: AgentRequest, res: AgentResponse) => void

/**
 * The HTTP gateway: `/<target>/<path>` → the target's upstream, after `checkAccess` passes.
 * Bodies stream both ways; upstream connections are kept alive per target. Every connection
 * that carried a request is indexed by its chain, so a cut-off closes it at once.
 */
export function createHttpGateway (opts: HttpGatewayOptions): {
  handler: AgentListener
  /** The request sent `Expect: 100-continue`: its 100 is sent once it is allowed. */
  owesContinue: (req: AgentRequest) => void
  /** Refuses, with 417, a request whose `Expect` is not 100-continue. */
  refuseExpectation: AgentListener
  connections: ConnectionIndex
  settled: (limitMs: number) => Promise<void>
  close: () => void
} {
  const connections = new ConnectionIndex(opts.view, opts.clock, 1000, () => staleness(opts, opts.clock.now()))
  const continueOwed = new WeakSet<AgentRequest>()
  // Allowed requests whose response has not closed, hence whose audit record is not written yet.
  let inFlight = 0
  // Their ends, by connection: see `whenClosed`.
  const underway = new WeakMap<Socket, Set<() => void>>()
  let onSettled: (() => void) | undefined
  const upstreams = new Upstreams(opts.upstreamTimeoutMs ?? 30_000, refuse, opts.log)
  // The agent's headers dropped for each target, worked out once per target.
  const dropped = new WeakMap<Target, Set<string>>()
  function droppedFor (t: Target): Set<string> {
    let set = dropped.get(t)
    if (set === undefined) dropped.set(t, set = new Set([...fromAgent, ...Object.keys(t.headers).map((n) => n.toLowerCase().replace(/_/g, '-'))]))
    return set
  }
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

  /** Sends an allowed request on to the target's upstream with its credential and the identity headers. */
  function forward (req: AgentRequest, res: AgentResponse, t: Target, path: string, claims: AccessClaims): Exchange {
    const headers = forwardable(req.headers, droppedFor(t))
    Object.assign(headers, t.headers)
    const peer = req.socket.remoteAddress ?? ''
    const xff = req.headers['x-forwarded-for']
    headers['x-forwarded-for'] = xff === undefined ? peer : `${String(xff)}, ${peer}`
    headers['x-forwarded-proto'] = 'encrypted' in req.socket ? 'https' : 'http'
    if (req.headers.host !== undefined) headers['x-forwarded-host'] = req.headers.host
    headers['lineage-subject'] = claims.sub
    headers['lineage-actor'] = currentActor(claims)
    return upstreams.forward(req, res, t, path, headers)
  }

  /** Routes a request to its target and checks it; the decision is synchronous unless the token must be verified. */
  function handle (req: AgentRequest, res: AgentResponse): void {
    const method = req.method ?? 'GET'
    checkHost(req)
    checkMethod(method)
    checkTransferCoding(req.headers)
    const where = parseRequestTarget(req.url ?? '')
    checkOverrides(method, req.headers, where?.query)
    const t = where === undefined ? undefined : opts.targets.get(where.target)
    if (where === undefined || t === undefined || t.kind !== 'http') throw new NotFound('no such target')
    const started = performance.now()
    const token = bearerOf(req.headers.authorization)
    const action = method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? 'read' : 'write'
    const destinations = req.headers.destination === undefined ? [] : destinationPaths(req.headers, t.name, t.upstream.pathname.replace(/\/$/, '')).map((path) => ({ action, method, path }))
    const decision = checkAccess(opts, token, t, { action, method, path: where.path })
    if (decision instanceof Promise) {
      decision.then((d) => { decided(req, res, t, method, where, started, token, judged(d, t, destinations)) }).catch((err: unknown) => { failed(req, res, err) })
    } else {
      decided(req, res, t, method, where, started, token, judged(decision, t, destinations))
    }
  }

  /** An allowed decision, refused when the policy refuses a path the request's `Destination` writes to. */
  function judged (d: Decision, t: Target, destinations: Array<Omit<PolicyRequest, 'depth' | 'principals' | 'actor'>>): Decision {
    if (!d.allowed || destinations.length === 0) return d
    for (const r of destinations) {
      const refusal = authorize(d.claims, t, r)
      if (refusal !== undefined) return { allowed: false, refusal: new InsufficientScope(`Destination ${recordedPath(r.path ?? '')}: ${refusal.message}`), claims: d.claims }
    }
    return d
  }

  /** Records the decision; forwards an allowed request, throws the refusal of another. */
  function decided (req: AgentRequest, res: AgentResponse, t: Target, method: string, where: { path: string, query: string }, started: number, token: string | undefined, decision: Decision): void {
    // Once the token is known genuine: a made-up one is a 401 wherever else it appears.
    if (decision.allowed) checkTokenElsewhere(token as string, where.query, req.headers, where.path)
    const m = metricsFor(t.name)
    m.check.observe((performance.now() - started) / 1000)
    if (!decision.allowed) {
      m.deny.inc()
      const l = decision.claims === undefined ? undefined : auditLineage(decision.claims)
      opts.audit.record({
        at: opts.clock.now(), kind: 'gateway.http', decision: 'deny', status: decision.refusal.status, target: t.name, method, path: recordedPath(where.path),
        jti: l?.jti, root: l?.root, principals: l?.principals, actors: l?.actors, detail: { reason: decision.refusal.message }
      })
      throw decision.refusal
    }
    const l = auditLineage(decision.claims)
    const path = recordedPath(where.path)
    // A request refused partway, its body holding what the check could not see in its head, is counted and recorded as refused.
    const record = (status: number, refusal?: LineageError): void => {
      ;(refusal === undefined ? m.allow : m.deny).inc()
      opts.audit.record({
        at: opts.clock.now(), kind: 'gateway.http', decision: refusal === undefined ? 'allow' : 'deny', status, target: t.name, method, path,
        jti: l.jti, root: l.root, principals: l.principals, actors: l.actors, detail: refusal === undefined ? undefined : { reason: refusal.message }
      })
    }
    // The agent left while its token was verified: its connection has closed already, so
    // nothing would end an upstream exchange or untrack the connection.
    if (req.socket.destroyed) {
      record(499)
      return
    }
    if (continueOwed.has(req)) res.writeContinue()
    const use = connections.track(req.socket as Socket, decision.claims)
    const exchange = forward(req, res, t, where.path + where.query, decision.claims)
    inFlight++
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      underway.get(req.socket)?.delete(close)
      connections.release(use)
      if (!res.writableFinished) exchange.abandon()
      // Cut short: by the agent leaving (499), or by the upstream failing partway through its answer.
      record(res.writableFinished ? res.statusCode : exchange.brokeOff?.status ?? 499, exchange.refusal)
      if (--inFlight === 0) onSettled?.()
    }
    res.once('close', close)
    whenClosed(req.socket, close)
  }

  /**
   * Runs `close` when `socket` closes. A response queued behind another on a pipelined
   * connection (behind a stream, say) gets no 'close' of its own when the connection closes
   * first: its exchange would run on unended and its request go unrecorded.
   */
  function whenClosed (socket: Socket, close: () => void): void {
    let set = underway.get(socket)
    if (set === undefined) {
      const closes = set = new Set()
      underway.set(socket, closes)
      socket.once('close', () => { for (const f of [...closes]) f() })
    }
    set.add(close)
  }

  // Refusals decided by checkAccess are recorded in `decided`, with their lineage.
  function failed (req: AgentRequest, res: AgentResponse, err: unknown): void {
    if (!(err instanceof LineageError)) opts.log.error({ err, method: req.method }, 'gateway request failed')
    if (!(err instanceof InvalidToken || err instanceof InsufficientScope)) {
      // Refused before any token was looked at: a bad method or URL, or an unknown target. Unknown
      // targets share one label, so a scan of made-up names cannot grow the metrics.
      const token = bearerOf(req.headers.authorization)
      const where = safeTarget(req.url ?? '')
      // A token in the path (refused for it) is not written to the trail either.
      const path = where === undefined ? undefined : recordedPath(where.path)
      metricsFor('(none)').deny.inc()
      const at = opts.clock.now()
      const record = (claims: AccessClaims | undefined): void => {
        const l = claims === undefined ? undefined : auditLineage(claims)
        opts.audit.record({
          at, kind: 'gateway.http', decision: 'deny', status: toErrorBody(err).status, target: where?.target, method: req.method, path,
          jti: l?.jti, root: l?.root, principals: l?.principals, actors: l?.actors, detail: { reason: err instanceof LineageError ? err.message : 'internal error' }
        })
      }
      // Still, the record names who sent it when the token is genuine: a probe of targets that
      // do not exist is worth tracing to its chain. A stop waits for it like a response.
      if (token === undefined) record(undefined)
      else {
        inFlight++
        genuineClaims(opts, token).catch(() => undefined).then(record).finally(() => { if (--inFlight === 0) onSettled?.() })
      }
    }
    refuse(res, err)
  }

  const handler: AgentListener = (req, res) => {
    // Never answered: the connection closes once the response before it is sent.
    if (pipelinedAfterClose(req)) return
    try {
      handle(req, res)
    } catch (err) {
      failed(req, res, err)
    }
  }
  return {
    handler,
    owesContinue: (req) => { continueOwed.add(req) },
    refuseExpectation: (req, res) => { if (!pipelinedAfterClose(req)) failed(req, res, new ExpectationFailed(`Expect: ${String(req.headers.expect).slice(0, 100)} is not supported; only 100-continue is`)) },
    connections,
    // A response's close can come a little after its server has closed: a stop waits for its record.
    settled: async (limitMs) => {
      if (inFlight === 0) return
      await new Promise<void>((resolve) => {
        onSettled = resolve
        setTimeout(resolve, limitMs).unref()
      })
    },
    close: () => {
      connections.close()
      upstreams.close()
    }
  }
}

