import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { LaneBody } from './lane-body.js'
import { LaneRequest, LaneResponse, type AgentRequest, type AgentResponse, type ResponseOwner } from './lane-response.js'
import { contentLength, headLength, maxHeadBytes, readRequestHead } from './wire.js'

/** Where a lane's requests go: the gateway's request listener, or node:http for what the lane does not take. */
export interface LaneTarget {
  request: (req: AgentRequest, res: AgentResponse) => void
  /** A request that sent `Expect: 100-continue`: its 100 is owed once it is allowed (node:http's 'checkContinue'). */
  continueExpected: (req: AgentRequest, res: AgentResponse) => void
  /**
   * Gives node:http the connection, with the bytes not yet read (node:http's own 'connection'
   * listener). `headLeftMs`: they hold a head the lane has awaited, not whole yet, with this much
   * left of its headers time, which node:http would count again from its start.
   */
  handOff: (socket: Socket, headLeftMs?: number) => void
  /**
   * A connection refused before a request came of it, with the error node:http's 'clientError'
   * gives for the same: no head, or not all of one, in the headers time (`ERR_HTTP_REQUEST_TIMEOUT`,
   * 408), or the agent's end partway through a head (`HPE_INVALID_EOF_STATE`, 400).
   */
  clientError: (socket: Socket, err: NodeJS.ErrnoException) => void
}

/** An error as node:http reports it to 'clientError'. */
export function clientErrorOf (message: string, code: 'ERR_HTTP_REQUEST_TIMEOUT' | 'HPE_INVALID_EOF_STATE'): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code })
}

/** An agent's connection while its requests go through the lane, one at a time. */
class LaneConnection implements ResponseOwner {
  closing = false
  private ended = false
  private served = false
  private pending: Buffer | undefined
  private current: LaneResponse | undefined
  /** The body of the request under way, while part of it is still to come. */
  private body: LaneBody | undefined
  /** When the head in `pending` began to arrive, while it is not whole (0: none waits). */
  private headStarted = 0
  /** Bytes of that head read already, found to hold no end and nothing that is no head's: a head trickling in is read once, not again at each byte. */
  private headRead = 0
  private readonly onData = (chunk: Buffer): void => { this.data(chunk) }
  private readonly onTimeout = (): void => {
    if (this.current !== undefined || this.ended) return
    // node:http answers a connection that sent no head, or not all of one, in the headers time
    // (408, recorded); one idle after an answer just closes.
    if (this.served && this.pending === undefined) {
      this.socket.destroy()
      return
    }
    this.ended = true
    this.target.clientError(this.socket, clientErrorOf('Request timeout', 'ERR_HTTP_REQUEST_TIMEOUT'))
  }
  // The agent closed its side: a response under way is abandoned, as node:http abandons it; one
  // whole already, still going out to an agent that reads slowly, goes out, and the connection ends after it.
  private readonly onEnd = (): void => {
    if (this.current === undefined) {
      // Between requests the connection just ends; partway through a head, node:http refuses it (400, recorded).
      if (this.pending === undefined || this.ended) this.end()
      else {
        this.ended = true
        this.target.clientError(this.socket, clientErrorOf('Parse Error: Invalid EOF state', 'HPE_INVALID_EOF_STATE'))
      }
    } else if (this.current.writableEnded) this.closing = true
    else this.socket.destroy()
  }

  constructor (readonly socket: Socket, private readonly lane: Lane, private readonly target: LaneTarget) {
    socket.on('data', this.onData)
    socket.on('error', () => {})
    socket.on('close', () => {
      this.lane.forget(this)
      this.body?.cutShort()
      this.current?.socketClosed()
    })
    // A connection that has sent nothing yet has as long as node:http gives a head; then, between requests, its keep-alive time.
    socket.setTimeout(lane.timeouts.firstRequestMs)
    socket.on('timeout', this.onTimeout)
    socket.on('end', this.onEnd)
  }

  get keepAlive (): string {
    return this.lane.keepAliveHead
  }

  /** No request under way and none begun: node:http's idle connections, which a stop closes at once. */
  get idle (): boolean {
    return this.current === undefined && this.pending === undefined
  }

  private data (chunk: Buffer): void {
    // RFC 9112 §9.6: after a response that closes the connection, nothing more is served on it.
    if (this.ended) return
    if (this.body !== undefined) {
      const rest = this.body.feed(chunk)
      if (this.body.complete) this.body = undefined
      if (rest === undefined) return
      chunk = rest
    }
    this.pending = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
    // Pipelined requests wait their turn; past a head's worth, the agent waits too.
    if (this.current !== undefined) {
      if (this.pending.length > maxHeadBytes) this.socket.pause()
      return
    }
    this.next()
  }

  /** The response under way is whole: on to the next request, or the connection ends. */
  done (): void {
    this.current = undefined
    if (!this.served) {
      this.served = true
      this.socket.setTimeout(this.lane.timeouts.keepAliveMs)
    }
    // A refusal or an upstream's answer before the whole body came said the connection closes
    // (`endsConnection`): no request behind the body is served.
    if (this.closing || this.lane.stopping) {
      this.end()
      return
    }
    // An answer that kept the connection before the whole body came (the gateway's own endpoints
    // read none): the rest is read and dropped, as node:http dumps it, and the next request follows it.
    this.body?.resume()
    this.socket.resume()
    // Not from inside the response's last write: its upstream connection is not free yet.
    if (this.pending !== undefined) process.nextTick(() => { if (this.current === undefined && !this.socket.destroyed) this.next() })
  }

  /** Ends the connection once what was written is out; an agent that keeps its side open does not hold it. */
  end (): void {
    this.ended = true
    this.body?.cutShort()
    this.socket.end(() => this.socket.destroy())
  }

  private next (): void {
    let buf = this.pending
    if (buf === undefined) return
    // RFC 9112 §2.2: empty lines before a request line (some agents send one after a body) are
    // skipped, as node:http skips them: no head has begun, and no headers time runs.
    let start = 0
    while (start < buf.length && (buf[start] === 13 || buf[start] === 10)) start++
    if (start > 0) {
      buf = this.pending = start < buf.length ? buf.subarray(start) : undefined
      if (buf === undefined) return
    }
    const n = headLength(buf, this.headRead)
    if (n === -1 && mayBeHead(buf, this.headRead)) {
      this.headRead = buf.length
      this.awaitHead()
      return
    }
    const waited = this.headStarted
    if (waited !== 0) {
      this.headStarted = 0
      this.headRead = 0
      this.socket.setTimeout(this.served ? this.lane.timeouts.keepAliveMs : this.lane.timeouts.firstRequestMs)
    }
    const head = n > 0 ? readRequestHead(buf, n) : undefined
    const length = head === undefined ? Number.NaN : laneTakes(head.headers)
    if (head === undefined || Number.isNaN(length)) {
      // A whole head node:http reads at once; one still coming (past 16 KiB, or with bytes the
      // lane does not read) only in what is left of the time it has had here.
      this.handOff(n < 0 && waited !== 0 ? Math.max(1, this.lane.timeouts.firstRequestMs - (performance.now() - waited)) : undefined)
      return
    }
    let rest = n < buf.length ? buf.subarray(n) : undefined
    if (head.headers.connection !== undefined && head.headers.connection.toLowerCase() === 'close') this.closing = true
    let req: AgentRequest
    if (length > 0 && rest !== undefined && rest.length >= length) {
      // The whole body came with the head (most small ones do): handed on as one buffer, no stream.
      req = new LaneRequest(head, this.socket, rest.subarray(0, length))
      rest = rest.length > length ? rest.subarray(length) : undefined
    } else if (length > 0) {
      const body = new LaneBody(head, this.socket, length)
      if (rest !== undefined) rest = body.feed(rest)
      if (!body.complete) this.body = body
      req = body
    } else req = new LaneRequest(head, this.socket)
    this.pending = rest
    const res = new LaneResponse(req, this)
    this.current = res
    if (head.headers.expect !== undefined) this.target.continueExpected(req, res)
    else this.target.request(req, res)
  }

  /**
   * Part of a head has come (a long one split over TCP segments, say): the rest is awaited, for
   * as long as node:http gives a whole head (its `headersTimeout`, from the head's first byte, the
   * first request's too: node:http starts it again when a message begins), however slowly the
   * bytes trickle in. Each arrival sets the socket's idle timeout to what is left.
   */
  private awaitHead (): void {
    const now = performance.now()
    if (this.headStarted === 0) this.headStarted = now
    this.socket.setTimeout(Math.max(1, this.lane.timeouts.firstRequestMs - (now - this.headStarted)))
  }

  /** Node:http takes the connection from here, the bytes not yet read included. */
  private handOff (headLeftMs: number | undefined): void {
    this.socket.removeListener('data', this.onData)
    this.lane.forget(this)
    this.socket.setTimeout(0)
    this.socket.removeListener('timeout', this.onTimeout)
    this.socket.removeListener('end', this.onEnd)
    if (this.pending !== undefined) this.socket.unshift(this.pending)
    this.pending = undefined
    this.target.handOff(this.socket, headLeftMs)
  }
}

/**
 * Whether `buf`, the start of a head, may still become one the lane takes, its first `read`
 * bytes found so already: it holds no byte a head does not (outside visible ASCII and HT) and no
 * line end but CRLF (a bare LF, a CR before anything but LF). What holds one (a TLS handshake, a
 * head written with LFs) goes to node:http at once, which refuses it at once; awaited, it would
 * be refused only at the headers time. A CR that ends what has come may be half a CRLF: it is
 * read again with what follows.
 */
function mayBeHead (buf: Buffer, read: number): boolean {
  for (let i = Math.max(0, read - 1); i < buf.length; i++) {
    const c = buf[i] as number
    if (c === 13) {
      if (i + 1 < buf.length && buf[i + 1] !== 10) return false
    } else if (c === 10) {
      if (i === 0 || buf[i - 1] !== 13) return false
    } else if ((c < 32 && c !== 9) || c > 126) return false
  }
  return true
}

/**
 * Whether the lane serves a request with these headers, and the length of its body (0: none):
 * one without a body or with one of a plain `Content-Length` (digits only), that changes
 * nothing about how the connection is used, expecting nothing but `100-continue` (curl asks it
 * for larger uploads). `Transfer-Encoding`, another `Expect`, an `Upgrade`, a `Connection`
 * naming other headers: NaN, and node:http serves the connection from there on.
 */
function laneTakes (h: IncomingHttpHeaders): number {
  if (h['transfer-encoding'] !== undefined || h.upgrade !== undefined) return Number.NaN
  if (h.expect !== undefined && h.expect.toLowerCase() !== '100-continue') return Number.NaN
  const c = h.connection
  if (c !== undefined && c.toLowerCase() !== 'keep-alive' && c.toLowerCase() !== 'close') return Number.NaN
  const length = contentLength(h['content-length'])
  return length < 0 ? 0 : length
}

/**
 * The HTTP gateway's bare-socket lane: the requests most agents send (an origin-form HTTP/1.1
 * request without a body or with a `Content-Length` one, its head whole within the headers time)
 * are read by `wire.ts` and answered by writing to the socket, without node:http's request and
 * response streams; a body streams on as it arrives (`LaneBody`). The first request the lane
 * does not take, malformed or merely unusual, hands the connection to node:http with every byte
 * not yet read, so that every refusal and limit node:http enforces (431, 400, header timeouts,
 * chunked bodies, other expectations) holds as before.
 */
export class Lane {
  stopping = false
  private readonly connections = new Set<LaneConnection>()

  private head = ''
  private headMs = -1

  /** `timeouts` are read as each connection needs them: node:http reads its server's properties at each use too. */
  constructor (private readonly target: LaneTarget, readonly timeouts: { readonly firstRequestMs: number, readonly keepAliveMs: number }) {}

  get keepAliveHead (): string {
    const ms = this.timeouts.keepAliveMs
    if (ms !== this.headMs) {
      this.headMs = ms
      this.head = `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(ms / 1000)}\r\n\r\n`
    }
    return this.head
  }

  accept (socket: Socket): void {
    this.connections.add(new LaneConnection(socket, this, this.target))
  }

  forget (c: LaneConnection): void {
    this.connections.delete(c)
  }

  /** A stop: idle connections end now, the others once their response (to the head begun, for one arriving) is whole. */
  closeIdle (): void {
    this.stopping = true
    for (const c of this.connections) if (c.idle) c.socket.destroy()
  }

  closeAll (): void {
    this.stopping = true
    for (const c of this.connections) c.socket.destroy()
  }
}
