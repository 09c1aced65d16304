import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { RequestHead } from './wire.js'

/** What the gateway reads of a request: node:http's `IncomingMessage`, or a lane's. */
export interface AgentRequest {
  method?: string
  url?: string
  headers: IncomingHttpHeaders
  httpVersionMajor: number
  httpVersionMinor: number
  /** The body has been read whole (from the start, for a request without one). */
  complete: boolean
  /** The whole body, where it came with the head (the lane's requests); otherwise the request streams it, if it has one. */
  readonly body?: Buffer
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

/** The lane's connection, as a response sees it. */
export interface ResponseOwner {
  /** The connection ends after this response (`Connection: close`, asked or answered). */
  closing: boolean
  /** The response is whole on the socket. */
  done: () => void
  /** The end of a head that keeps the connection: `Connection` and `Keep-Alive` (its idle time, as node:http says it). */
  readonly keepAlive: string
}

export class LaneRequest implements AgentRequest {
  readonly httpVersionMajor = 1
  readonly httpVersionMinor = 1
  readonly complete = true
  method: string
  url: string
  headers: IncomingHttpHeaders
  constructor (head: RequestHead, readonly socket: Socket, readonly body?: Buffer) {
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
export class LaneResponse implements AgentResponse {
  statusCode = 200
  headersSent = false
  writableEnded = false
  writableFinished = false
  private head: string | undefined
  private chunked = false
  private bodiless: boolean
  /** A 100 Continue was sent. */
  private continued = false
  private closed = false
  private out: Array<string | Buffer> = []
  /** Bytes in `out`: the socket does not count them until the turn's flush. */
  private outBytes = 0
  private queued = false
  /** A write said the agent is slow: 'drain' is owed once the turn's flush has gone out. */
  private drainOwed = false

  // The listeners `once` took: each response has one for 'close' and, while its agent reads slowly, one for 'drain'.
  private listeners: Array<{ event: 'close' | 'drain', listener: () => void }> = []

  constructor (readonly req: AgentRequest, private readonly conn: ResponseOwner) {
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
    // An answer to `Expect: 100-continue` without the 100 leaves it unknown whether the body
    // will come: the connection ends after it, as node:http ends it (RFC 9110 §10.1.1).
    let closes = this.conn.closing || (this.req.headers.expect !== undefined && !this.continued)
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
    head += closes ? 'connection: close\r\n\r\n' : this.conn.keepAlive
    this.statusCode = status
    this.head = head
    return this
  }

  flushHeaders (): void {
    this.send(undefined)
  }

  writeContinue (): void {
    this.continued = true
    this.req.socket.write('HTTP/1.1 100 Continue\r\n\r\n')
  }

  write (chunk: Buffer | string): boolean {
    if (this.writableEnded) return false
    this.send(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
    const socket = this.req.socket
    if (socket.destroyed) return false
    // What this turn queued counts too: reads of the upstream one after another in a turn would
    // otherwise each find the socket empty, and megabytes wait for an agent that reads slowly.
    if (!socket.writableNeedDrain && this.outBytes < socket.writableHighWaterMark) return true
    this.drainOwed = true
    this.queue(undefined)
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
    this.outBytes = 0
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
    if (this.writableEnded) {
      if (this.closed) return
      if (socket.writableLength === 0) this.finished()
      else socket.write('', () => { this.finished() })
    } else if (this.drainOwed) {
      this.drainOwed = false
      // A write the socket took whole at once leaves it wanting no drain, and it says none.
      if (socket.writableNeedDrain) socket.once('drain', () => this.emit('drain'))
      else this.emit('drain')
    }
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
    if (piece !== undefined) {
      this.out.push(piece)
      this.outBytes += piece.length
    }
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
