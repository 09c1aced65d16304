import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { Pool, type Dispatcher } from 'undici'
import { LineageError } from '../../errors.js'
import type { Logger } from '../../log.js'
import type { Target } from '../targets.js'
import { answerHeaders, secretsOf } from './headers.js'
import { judgesMethods, methodOverrideIn, methodOverrideScanner, unscannable } from './method-override.js'
import type { AgentRequest, AgentResponse } from './lane-response.js'
import { RawPool } from './raw-pool.js'
import type { TargetPaths } from './target-paths.js'
import { BadGateway, GatewayTimeout, ServiceUnavailable, upstreamError, UpstreamHealth } from './upstream-failures.js'

/**
 * One request's way back: the upstream's response is written to the agent's as it arrives,
 * pausing the upstream while the agent's socket is full. A failure before any of the response
 * was written is answered with `fail`; after, the agent's connection is cut (its response is
 * incomplete). The upstream's reason phrase is not passed on: the agent gets the standard one.
 * A response that starts before the agent's request body was all read closes the connection.
 * A response header holding the target's credential is not passed on.
 */
class Relay implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined
  private finished = false
  /** Still waiting for one of the pool's connections (counted in `queue.waiting`). */
  private queued = true
  /** The gateway answered the agent itself (a 502, a 504), or the agent left: the upstream's own failure is moot. */
  private answered = false
  /** Why the gateway refused the request partway (its body), when it did. */
  refusal: LineageError | undefined
  /** How the upstream failed once the agent's answer had begun, cutting it short, when it did. */
  brokeOff: LineageError | undefined
  /** Status and headers of a sized response, written with its first bytes. */
  private head: { status: number, headers: OutgoingHttpHeaders } | undefined

  /**
   * Runs while the request waits for one of the pool's connections, which has no other timeout.
   * Once it is on a connection, undici's `headersTimeout` takes over: that one does not run out
   * while the agent's body is still going up, however long a large upload takes.
   */
  private readonly waiting: NodeJS.Timeout

  constructor (
    private readonly res: AgentResponse,
    private readonly target: string,
    private readonly paths: TargetPaths,
    private readonly timeoutMs: number,
    private readonly fail: (res: AgentResponse, err: LineageError) => void,
    private readonly secrets: string[],
    private readonly queue: Queue,
    private readonly health: UpstreamHealth
  ) {
    this.waiting = setTimeout(() => { this.timedOut() }, timeoutMs)
    queue.waiting++
  }

  /** The request left the pool's queue: it has a connection, or failed before it had one. */
  private dequeued (): void {
    if (!this.queued) return
    this.queued = false
    this.queue.waiting--
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.dequeued()
    this.controller = controller
    // Answered already (it waited too long for a connection): it goes no further.
    if (this.answered) controller.abort(new Error('the agent was answered while the request waited'))
    else clearTimeout(this.waiting)
  }

  onResponseStart (controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    // Interim responses (100, 103 Early Hints) are the upstream's business, not the agent's.
    if (status < 200) return
    clearTimeout(this.waiting)
    // RFC 9112 §6.1: the gateway drops Transfer-Encoding (hop-by-hop), so a coding other than
    // chunked (gzip, chunked) would reach the agent still applied, with nothing naming it. A
    // response without a body (to HEAD, a 204, a 304: §6.3) has nothing it applies to.
    const te = headers['transfer-encoding']
    const bodiless = status === 204 || status === 304 || this.res.req.method === 'HEAD'
    if (te !== undefined && !bodiless && (Array.isArray(te) || te.trim().toLowerCase() !== 'chunked')) {
      this.unfit('its transfer coding is not chunked')
      return
    }
    this.health.answered(this.target)
    this.head = { status, headers: answerHeaders(headers, this.secrets, this.paths, this.res.req.url ?? '', this.res.req.headers.host) }
    // RFC 9110 §8.6: a server must not send Content-Length in a 204 (one of 0 gets here).
    if (status === 204) delete this.head.headers['content-length']
    // RFC 9110 §15.4.5: a 304 is whole at its header section; its Content-Length, if any, is the
    // length a 200 would have had (§8.6). undici waits for that many bytes and fails the exchange
    // when none come, so the agent is answered now and the upstream's ending is moot.
    if (status === 304) {
      this.answered = true
      if (this.writeHead()) this.res.end()
      return
    }
    // A stream (no length: chunked, server-sent events) gets its headers at once; a sized
    // body carries them in its first write, so an upstream failing before then is a 502.
    if (headers['content-length'] === undefined && this.writeHead()) this.res.flushHeaders()
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.head !== undefined && !this.writeHead()) return
    if (this.res.write(chunk)) return
    if (this.res.destroyed) {
      // Found here before the response's close runs `abandon`: the abort that follows is the agent's doing, not the upstream's failure.
      this.abandon()
      return
    }
    controller.pause()
    this.res.once('drain', () => { controller.resume() })
  }

  onResponseEnd (): void {
    this.finished = true
    if (this.res.writableEnded) return
    if (this.head !== undefined && !this.writeHead()) return
    this.res.end()
  }

  onResponseError (_c: Dispatcher.DispatchController, err: Error): void {
    this.dequeued()
    clearTimeout(this.waiting)
    this.finished = true
    if (this.answered) return
    if (err instanceof LineageError) {
      this.refuse(err)
      return
    }
    const failure = upstreamError(this.target, err, this.timeoutMs)
    this.health.failed(this.target, failure)
    if (this.res.headersSent) {
      this.brokeOff = failure
      this.res.destroy()
    } else if (!this.res.destroyed) this.fail(this.res, failure)
  }

  /**
   * The gateway refused the request's body on its way up (a method override in it): the upstream
   * is not to blame. Still waiting for a connection, the request is answered now, and goes no
   * further once it has one (`onRequestStart`).
   */
  refuse (err: LineageError): void {
    // Answered whole already (the upstream answered before it took the body): the rest of the body goes nowhere.
    if (this.answered || this.res.writableEnded) return
    this.answered = true
    this.refusal = err
    clearTimeout(this.waiting)
    if (this.res.headersSent) this.res.destroy()
    else if (!this.res.destroyed) this.fail(this.res, err)
  }

  /** The agent went away: stop the upstream exchange too (or, still waiting for a connection, never start it). */
  abandon (): void {
    clearTimeout(this.waiting)
    this.answered = true
    if (!this.finished) this.controller?.abort(new Error('the agent closed the connection'))
  }

  /** No connection within the timeout, counted from when the request was queued: 504. */
  private timedOut (): void {
    if (this.head !== undefined || this.res.headersSent || this.finished || this.answered) return
    this.answered = true
    const failure = new GatewayTimeout(`upstream ${this.target} sent no response within ${this.timeoutMs} ms`)
    this.health.failed(this.target, failure)
    this.fail(this.res, failure)
    this.controller?.abort(new Error('no response in time'))
  }

  /** Writes the held status and headers; false (and the exchange ended with a 502) when Node refuses them. */
  private writeHead (): boolean {
    const head = this.head as NonNullable<typeof this.head>
    this.head = undefined
    // The upstream answered before it took the agent's whole body (a 413 at once, say). Node's
    // server leaves a partly read body unread, so a request pipelined after it would never be
    // answered: the agent's connection ends with this response instead.
    if (endsConnection(this.res.req)) head.headers.connection = 'close'
    try {
      this.res.writeHead(head.status, head.headers)
      return true
    } catch {
      // A header value Node will not send (a control character, a character past Latin-1).
      this.unfit('its headers cannot be passed on')
      return false
    }
  }

  /** The upstream's response is one the agent is not to get: 502, and the exchange ends. */
  private unfit (why: string): void {
    this.answered = true
    const failure = new BadGateway(`upstream ${this.target} failed: invalid response`)
    this.health.failed(this.target, failure)
    this.fail(this.res, failure)
    if (!this.finished) this.controller?.abort(new Error(`the upstream's response is unfit: ${why}`))
    this.finished = true
  }
}

/** RFC 9112 §6.3: a request has a body when it says so; an empty one counts as none. */
function hasBody (req: AgentRequest): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * Whether part of a request's body is still unread. A request without one is whole from its
 * headers on, though Node marks it complete only once its (empty) body has been read.
 */
export function bodyUnread (req: AgentRequest): boolean {
  return !req.complete && hasBody(req)
}

// Agent connections a response has ended (`Connection: close`).
const closing = new WeakSet<object>()

/**
 * Whether the response to `req` must end its connection, part of its body being unread; if so,
 * the requests pipelined behind it on that connection are not to be served (`pipelinedAfterClose`).
 */
export function endsConnection (req: AgentRequest): boolean {
  if (!bodyUnread(req)) return false
  closing.add(req.socket)
  return true
}

/**
 * Whether `req` came on a connection an earlier response ended. RFC 9112 §9.6: a server that
 * sends "close" must not process further requests on it. Node still parses and hands over the
 * requests that came with the unread body; served, their answers would never reach the agent,
 * which would send them again (RFC 9112 §9.3.2), and a write would run twice.
 */
export function pipelinedAfterClose (req: AgentRequest): boolean {
  return closing.has(req.socket)
}

/**
 * An upstream exchange under way: `abandon` ends it; `refusal` says why the gateway cut it short,
 * if it did, and `brokeOff` how the upstream failed partway through the answer, if it did.
 */
export interface Exchange {
  abandon: () => void
  readonly refusal: LineageError | undefined
  readonly brokeOff?: LineageError
}

/**
 * `req`'s body as it streams, failing once it holds a method override (`methodOverrideScanner`),
 * which `relay` answers. The body is read as it comes, before undici takes it: while the request
 * waits for one of the pool's connections nothing of undici's listens to it, and a failure no one
 * listens to would be thrown, bringing the process down.
 */
function scanned (req: Readable & AgentRequest, relay: Relay): Readable {
  const scanner = methodOverrideScanner()
  scanner.on('error', (err) => { if (err instanceof LineageError) relay.refuse(err) })
  req.pipe(scanner)
  // An agent that leaves partway: the upstream must not take the part for the whole.
  req.once('close', () => { if (!req.complete) scanner.destroy(new Error('the request body ended early')) })
  return scanner
}

/**
 * Requests waiting for one of a pool's connections, counted as they come and go: undici's
 * `pool.stats` would visit each of the pool's clients (256) several times on every request.
 */
interface Queue { waiting: number }

/** Where a target's requests go, worked out once per target. */
interface Route {
  /** Its pools' key in `Upstreams.pools`: the route holds only while they are there. */
  key: string
  pool: Pool
  /** For an `http:` upstream, the pool that carries requests without a body or with one held whole. */
  raw: RawPool | undefined
  queue: Queue
  origin: string
  host: string
  /** The upstream URL's path without its trailing slash; request paths are appended to it. */
  base: string
  /** What the upstream's own paths, in its answers, map to. */
  paths: TargetPaths
  /** The target's credentials, as `withoutSecrets` looks for them. */
  secrets: string[]
  /** Its policy judges methods: a POST's body is searched for a method override. */
  scanPosts: boolean
}

/**
 * Connection pools to the targets' upstreams (keep-alive, per target and origin): requests
 * without a body, or with one held whole, to an `http:` upstream go on a pool of plain sockets
 * (`RawPool`), the others (streamed bodies, `https:`) on undici's; and the streaming of one
 * request through them.
 */
export class Upstreams {
  private readonly pools = new Map<string, { pool: Pool, raw: RawPool | undefined, queue: Queue }>()
  private readonly routes = new WeakMap<Target, Route>()
  private readonly health: UpstreamHealth

  /**
   * @param log where an upstream starting to fail, and answering again, is logged
   * @param limits connections per pool, and requests that may wait for one before more are refused with 503
   */
  constructor (
    private readonly timeoutMs: number,
    private readonly fail: (res: AgentResponse, err: LineageError) => void,
    log: Logger,
    private readonly limits = { connections: 256, maxQueued: 1024 }
  ) {
    this.health = new UpstreamHealth(log)
  }

  /**
   * Sends `req` (its body streamed, not buffered) to `path` below the target's upstream URL
   * with `headers` (and the upstream's `Host`), and streams the answer to `res`. Returns a
   * handle whose `abandon` ends the upstream exchange when the agent's connection closes first.
   */
  forward (req: AgentRequest, res: AgentResponse, t: Target, path: string, headers: OutgoingHttpHeaders): Exchange {
    const route = this.routeFor(t)
    // Every connection busy (long streams, a slow upstream) and this many more waiting: refused at once, not queued without bound.
    if (route.queue.waiting >= this.limits.maxQueued) {
      this.fail(res, new ServiceUnavailable(`upstream ${t.name} has ${this.limits.maxQueued} requests waiting for a connection`))
      return { abandon: () => {}, refusal: undefined }
    }
    // A POST's body is searched for a method override where the policy judges methods; one the search could not read is refused.
    const scan = route.scanPosts && req.method === 'POST' && hasBody(req)
    // A body held whole is searched at once: refused, it never goes up.
    const refused = scan ? unscannable(req.headers) ?? (req.body === undefined ? undefined : methodOverrideIn(req.body)) : undefined
    if (refused !== undefined) {
      this.fail(res, refused)
      return { abandon: () => {}, refusal: refused }
    }
    const relay = new Relay(res, t.name, route.paths, this.timeoutMs, this.fail, route.secrets, route.queue, this.health)
    headers.host = route.host
    // An empty body is sent as none. A body is held whole (the lane's, when it came with the head)
    // or streamed: node:http's IncomingMessage, the lane's LaneBody.
    const body = !hasBody(req) ? null : req.body ?? (!(req instanceof Readable) ? null : scan ? scanned(req, relay) : req)
    if (body === null && req.headers['content-length'] !== undefined) headers['content-length'] = undefined
    const method = req.method ?? 'GET'
    if (route.raw !== undefined && (body === null || body instanceof Buffer)) route.raw.dispatch({ method, path: route.base + path, headers, body: body ?? undefined }, relay)
    else route.pool.dispatch({ origin: route.origin, path: route.base + path, method, headers: headers as Record<string, string | string[]>, body }, relay)
    return relay
  }

  close (): void {
    for (const { pool, raw } of this.pools.values()) {
      pool.destroy().catch(() => {})
      raw?.destroy()
    }
    this.pools.clear()
  }

  private routeFor (t: Target): Route {
    let route = this.routes.get(t)
    // A request decided on the target as it was before it moved (its token verified meanwhile)
    // let go of the pools of the target as it is now: its route is made again, not left on pools closed for good.
    if (route !== undefined && this.pools.get(route.key)?.pool === route.pool) return route
    const origin = t.upstream.origin
    const key = `${t.name} ${origin}`
    let kept = this.pools.get(key)
    if (kept === undefined) {
      // The target's upstream moved: its old pool finishes what it carries (streams included), then closes.
      for (const [k, old] of this.pools) {
        if (k.startsWith(`${t.name} `)) {
          this.pools.delete(k)
          old.pool.close().catch(() => {})
          old.raw?.close().catch(() => {})
        }
      }
      // No body timeout: server-sent events may stay quiet for as long as they like.
      const u = t.upstream
      kept = {
        pool: new Pool(origin, { connections: this.limits.connections, headersTimeout: this.timeoutMs, connectTimeout: this.timeoutMs, bodyTimeout: 0 }),
        raw: u.protocol === 'http:' ? new RawPool(u.hostname.replace(/^\[(.*)\]$/, '$1'), Number(u.port === '' ? 80 : u.port), { connections: this.limits.connections, headersTimeout: this.timeoutMs }) : undefined,
        queue: { waiting: 0 }
      }
      this.pools.set(key, kept)
    }
    const base = t.upstream.pathname.replace(/\/$/, '')
    route = { key, pool: kept.pool, raw: kept.raw, queue: kept.queue, origin, host: t.upstream.host, base, paths: { prefix: `/${t.name}`, origin, base }, secrets: secretsOf(t), scanPosts: judgesMethods(t.policy) }
    this.routes.set(t, route)
    return route
  }
}
