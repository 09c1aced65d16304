import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { headLength, maxHeadBytes, readRequestHead, type RequestHead } from './wire.js'

/** What the gateway reads of a request: node:http's `IncomingMessage`, or a lane's. */
export interface AgentRequest {
  method?: string
  url?: string
  headers: IncomingHttpHeaders
  httpVersionMajor: number
  httpVersionMinor: number
  /** The body has been read whole (a lane's requests have none). */
  complete: boolean
  socket: Socket
}

/** What the gateway writes of a response: node:http's `ServerResponse`, or a lane's. */
export interface AgentResponse {
  readonly req: AgentRequest
  statusCode: number
  readonly headersSent: boolean
  readonly writableEnded: boolean
  readonly writableFinished: boolean
  readonly destroyed: boolean
  writeHead (status: number, reason?: string | OutgoingHttpHeaders, headers?: OutgoingHttpHeaders): this
  flushHeaders (): void
  writeContinue (): void
  write (chunk: Buffer | string): boolean
  end (chunk?: Buffer | string): this
  destroy (): this
  once (event: 'close' | 'drain', listener: () => void): this
}

const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const invalidValue = /[^\t\x20-\x7e\x80-\xff]/

/** Throws as node:http's `writeHead` does for a header it will not send. */
function invalidHeader (what: string): never {
  throw Object.assign(new TypeError(`Invalid character in header ${what}`), { code: 'ERR_INVALID_CHAR' })
}

let dateSecond = 0
let dateLine = ''
/** RFC 9110 §6.6.1: `Date`, made once a second. */
function date (): string {
  const now = Date.now()
  if (now - dateSecond >= 1000) {
    dateSecond = now - (now % 1000)
    dateLine = `date: ${new Date(dateSecond).toUTCString()}\r\n`
  }
  return dateLine
}

class LaneRequest implements AgentRequest {
  readonly httpVersionMajor = 1
  readonly httpVersionMinor = 1
  readonly complete = true
  method: string
  url: string
  headers: IncomingHttpHeaders
  constructor (head: RequestHead, readonly socket: Socket) {
    this.method = head.method
    this.url = head.url
    this.headers = head.headers
  }
}

/**
 * A response written straight to the agent's socket: its head in the same write as its first
 * bytes, a body of unknown length chunked, none where RFC 9110 allows none (HEAD, 204, 304).
 * 'close' comes once, when it is whole on the socket or the socket closed first.
 */
class LaneResponse implements AgentResponse {
  statusCode = 200
  headersSent = false
  writableEnded = false
  writableFinished = false
  private head: string | undefined
  private chunked = false
  private bodiless: boolean
  private closed = false
  private out: Array<string | Buffer> = []
  private queued = false

  // The listeners `once` took: each response has one for 'close' and, while its agent reads slowly, one for 'drain'.
  private listeners: Array<{ event: 'close' | 'drain', listener: () => void }> = []

  constructor (readonly req: LaneRequest, private readonly conn: LaneConnection) {
    this.bodiless = req.method === 'HEAD'
  }

  get destroyed (): boolean {
    return this.req.socket.destroyed
  }

  writeHead (status: number, reason?: string | OutgoingHttpHeaders, headers?: OutgoingHttpHeaders): this {
    const fields = typeof reason === 'object' ? reason : headers ?? {}
    const phrase = typeof reason === 'string' ? reason : STATUS_CODES[status] ?? 'unknown'
    if (typeof reason === 'string' && invalidValue.test(reason)) invalidHeader('reason phrase')
    let head = `HTTP/1.1 ${status} ${phrase}\r\n`
    let sized = false
    let closes = this.conn.closing
    for (const name in fields) {
      const v = fields[name]
      if (v === undefined) continue
      if (!token.test(name)) invalidHeader(name)
      const lower = name.toLowerCase()
      if (lower === 'content-length') sized = true
      else if (lower === 'connection') closes ||= String(v).toLowerCase() === 'close'
      else if (lower === 'transfer-encoding') continue
      for (const one of Array.isArray(v) ? v : [String(v)]) {
        if (invalidValue.test(one)) invalidHeader(name)
        if (lower !== 'connection') head += `${name}: ${one}\r\n`
      }
    }
    if (fields.date === undefined) head += date()
    this.bodiless ||= status === 204 || status === 304
    this.chunked = !sized && !this.bodiless
    if (this.chunked) head += 'transfer-encoding: chunked\r\n'
    if (closes) this.conn.closing = true
    head += closes ? 'connection: close\r\n\r\n' : 'connection: keep-alive\r\nkeep-alive: timeout=65\r\n\r\n'
    this.statusCode = status
    this.head = head
    return this
  }

  flushHeaders (): void {
    this.send(undefined)
  }

  writeContinue (): void {
    this.req.socket.write('HTTP/1.1 100 Continue\r\n\r\n')
  }

  write (chunk: Buffer | string): boolean {
    if (this.writableEnded) return false
    this.send(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
    const socket = this.req.socket
    if (socket.destroyed) return false
    if (!socket.writableNeedDrain) return true
    socket.once('drain', () => this.emit('drain'))
    return false
  }

  end (chunk?: Buffer | string): this {
    if (this.writableEnded) return this
    if (this.head === undefined && !this.headersSent) this.writeHead(this.statusCode, chunk === undefined ? { 'content-length': 0 } : { 'content-length': Buffer.byteLength(chunk) })
    this.send(chunk === undefined ? undefined : typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
    if (this.chunked) this.queue('0\r\n\r\n')
    this.writableEnded = true
    this.queue(undefined)
    return this
  }

  destroy (): this {
    this.req.socket.destroy()
    return this
  }

  /** The socket closed: a response not whole by then never will be. */
  socketClosed (): void {
    this.close()
  }

  once (event: 'close' | 'drain', listener: () => void): this {
    this.listeners.push({ event, listener })
    return this
  }

  private emit (event: 'close' | 'drain'): void {
    const now = this.listeners.filter((l) => l.event === event)
    if (now.length === 0) return
    this.listeners = this.listeners.filter((l) => l.event !== event)
    for (const l of now) l.listener()
  }

  /** Writes what was queued in this turn of the event loop, in one system call. */
  flush (): void {
    this.queued = false
    const out = this.out
    this.out = []
    const socket = this.req.socket
    if (socket.destroyed) return
    if (out.length === 1) socket.write(out[0] as string | Buffer, 'latin1')
    else if (out.length > 1) {
      const length = out.reduce((n, p) => n + p.length, 0)
      if (length <= joinBelow) socket.write(joined(out, length))
      else {
        socket.cork()
        for (const piece of out) socket.write(piece, 'latin1')
        socket.uncork()
      }
    }
    if (!this.writableEnded || this.closed) return
    if (socket.writableLength === 0) this.finished()
    else socket.write('', () => { this.finished() })
  }

  private finished (): void {
    if (this.closed) return
    this.writableFinished = true
    this.close()
    this.conn.done()
  }

  private close (): void {
    if (this.closed) return
    this.closed = true
    process.nextTick(() => this.emit('close'))
  }

  /**
   * Queues `piece` (`undefined`: nothing, only the turn's flush) for the end of this turn of the
   * event loop: the answers to requests that arrived together go out together, so that the
   * agent, woken once, reads them all.
   */
  private queue (piece: string | Buffer | undefined): void {
    if (piece !== undefined) this.out.push(piece)
    if (this.queued) return
    this.queued = true
    if (unflushed.push(this) === 1) setImmediate(flushAll)
  }

  /** Queues the head if it is not out yet, then `body` in the response's framing. */
  private send (body: Buffer | undefined): void {
    if (!this.headersSent) {
      if (this.head === undefined) this.writeHead(this.statusCode)
      this.headersSent = true
      this.queue(this.head)
      this.head = undefined
    }
    if (body === undefined || body.length === 0 || this.bodiless) return
    if (this.chunked) this.queue(`${body.length.toString(16)}\r\n`)
    this.queue(body)
    if (this.chunked) this.queue('\r\n')
  }
}

// Pieces that add up to less are copied into one buffer for one plain write, cheaper than a
// gathered write for the small answers most are; larger ones are gathered, not copied.
const joinBelow = 16 * 1024

/** `pieces` (strings in latin1: heads, chunk sizes) as one buffer of `length` bytes. */
function joined (pieces: Array<string | Buffer>, length: number): Buffer {
  const out = Buffer.allocUnsafe(length)
  let at = 0
  for (const p of pieces) at += typeof p === 'string' ? out.write(p, at, 'latin1') : p.copy(out, at)
  return out
}

/** Responses with writes queued in this turn of the event loop. */
const unflushed: LaneResponse[] = []
function flushAll (): void {
  for (const res of unflushed.splice(0)) res.flush()
}

/** Where a lane's requests go: the gateway's request listener, or node:http for what the lane does not take. */
export interface LaneTarget {
  request: (req: AgentRequest, res: AgentResponse) => void
  /** Gives node:http the connection, with the bytes not yet read (node:http's own 'connection' listener). */
  handOff: (socket: Socket) => void
}

/** An agent's connection while its requests go through the lane, one at a time. */
class LaneConnection {
  closing = false
  private served = false
  private pending: Buffer | undefined
  private current: LaneResponse | undefined
  private readonly onData = (chunk: Buffer): void => { this.data(chunk) }
  private readonly onTimeout = (): void => { if (this.current === undefined) this.socket.destroy() }
  // The agent closed its side: a response under way is abandoned, as node:http abandons it.
  private readonly onEnd = (): void => { if (this.current === undefined) this.end(); else this.socket.destroy() }

  constructor (readonly socket: Socket, private readonly lane: Lane, private readonly target: LaneTarget) {
    socket.on('data', this.onData)
    socket.on('error', () => {})
    socket.on('close', () => {
      this.lane.forget(this)
      this.current?.socketClosed()
    })
    // A connection that has sent nothing yet has as long as node:http gives a head; then, between requests, its keep-alive time.
    socket.setTimeout(lane.timeouts.firstRequestMs)
    socket.on('timeout', this.onTimeout)
    socket.on('end', this.onEnd)
  }

  get idle (): boolean {
    return this.current === undefined
  }

  private data (chunk: Buffer): void {
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
    if (this.closing || this.lane.stopping) {
      this.end()
      return
    }
    this.socket.resume()
    // Not from inside the response's last write: its upstream connection is not free yet.
    if (this.pending !== undefined) process.nextTick(() => { if (this.current === undefined && !this.socket.destroyed) this.next() })
  }

  /** Ends the connection once what was written is out; an agent that keeps its side open does not hold it. */
  end (): void {
    this.socket.end(() => this.socket.destroy())
  }

  private next (): void {
    const buf = this.pending
    if (buf === undefined) return
    const n = headLength(buf)
    const head = n > 0 ? readRequestHead(buf, n) : undefined
    if (head === undefined || !laneTakes(head.headers)) {
      this.handOff()
      return
    }
    this.pending = n < buf.length ? buf.subarray(n) : undefined
    if (head.headers.connection !== undefined && head.headers.connection.toLowerCase() === 'close') this.closing = true
    const req = new LaneRequest(head, this.socket)
    const res = new LaneResponse(req, this)
    this.current = res
    this.target.request(req, res)
  }

  /** Node:http takes the connection from here, the bytes not yet read included. */
  private handOff (): void {
    this.socket.removeListener('data', this.onData)
    this.lane.forget(this)
    this.socket.setTimeout(0)
    this.socket.removeListener('timeout', this.onTimeout)
    this.socket.removeListener('end', this.onEnd)
    if (this.pending !== undefined) this.socket.unshift(this.pending)
    this.pending = undefined
    this.target.handOff(this.socket)
  }
}

/**
 * Whether the lane serves a request with these headers: one without a body, that changes
 * nothing about how the connection is used. A body, an `Expect`, an `Upgrade`, a `Connection`
 * naming other headers: node:http serves the connection from there on.
 */
function laneTakes (h: IncomingHttpHeaders): boolean {
  if (h['transfer-encoding'] !== undefined || h.expect !== undefined || h.upgrade !== undefined) return false
  const length = h['content-length']
  if (length !== undefined && length !== '0') return false
  const c = h.connection
  return c === undefined || c.toLowerCase() === 'keep-alive' || c.toLowerCase() === 'close'
}

/**
 * The HTTP gateway's bare-socket lane: the requests most agents send (an origin-form HTTP/1.1
 * request without a body, its head whole in what has arrived) are read by `wire.ts` and
 * answered by writing to the socket, without node:http's request and response streams. The
 * first request the lane does not take, malformed or merely unusual, hands the connection to
 * node:http with every byte not yet read, so that every refusal and limit node:http enforces
 * (431, 400, header timeouts, bodies, `Expect`) holds as before.
 */
export class Lane {
  stopping = false
  private readonly connections = new Set<LaneConnection>()

  constructor (private readonly target: LaneTarget, readonly timeouts: { firstRequestMs: number, keepAliveMs: number }) {}

  accept (socket: Socket): void {
    this.connections.add(new LaneConnection(socket, this, this.target))
  }

  forget (c: LaneConnection): void {
    this.connections.delete(c)
  }

  /** A stop: idle connections end now, the others once their response is whole. */
  closeIdle (): void {
    this.stopping = true
    for (const c of this.connections) if (c.idle) c.socket.destroy()
  }

  closeAll (): void {
    this.stopping = true
    for (const c of this.connections) c.socket.destroy()
  }
}
