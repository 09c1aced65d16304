import { connect, type Socket } from 'node:net'
import type { Dispatcher } from 'undici'
import type { RawPool, RawPoolOptions } from './raw-pool.js'
import { neverResponseHead, ChunkedReader, contentLength, headLength, readResponseHead, type ResponseHead } from './wire.js'

// One exchange of `RawPool` and the connection that carries it: writing the request, reading
// its answer (RFC 9112 §6.3 framing), keep-alive, the timers and what a failure is called.

/** An error with one of undici's codes, so that the gateway tells the agent the same whatever client failed. */
export function failure (code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

// A request that may be sent again when a reused connection turns out closed before any of its answer came (RFC 9110 §9.2.2).
const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])
// Methods whose requests are meant to carry content (undici's list). A body on another (a GET's)
// has no defined meaning (RFC 9110 §9.3.1): an upstream may take the request to end at its head
// and read the body as a request of its own, whose answer the next request on the connection
// would be given. That connection is not kept, as undici keeps none.
const carriesContent = new Set(['PUT', 'POST', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH'])

// A body up to this size goes out in one buffer with its head: one plain write, not a gathered one.
const joinBelow = 16 * 1024

/** Connections whose request goes out at the end of this turn of the event loop. */
const outbox: RawConnection[] = []
function flush (): void {
  for (const c of outbox) c.write()
  outbox.length = 0
}

/** One request through the pool: the controller its handler is given. */
export class Exchange implements Dispatcher.DispatchController {
  aborted = false
  paused = false
  reason: Error | null = null
  /** Ended: answered whole, failed or aborted. */
  done = false
  /** Some of the response has come. */
  started = false
  retried = false
  conn: RawConnection | undefined

  constructor (readonly head: string, readonly body: Buffer | undefined, readonly method: string, readonly handler: Dispatcher.DispatchHandler, private readonly pool: RawPool) {}

  abort (reason: Error): void {
    if (this.done) return
    this.aborted = true
    this.reason = reason
    const conn = this.conn
    if (conn === undefined) this.pool.unqueue(this)
    else conn.drop()
    this.fail(reason)
  }

  pause (): void {
    this.paused = true
    this.conn?.socket.pause()
  }

  resume (): void {
    if (!this.paused) return
    this.paused = false
    this.conn?.resume()
  }

  fail (err: Error): void {
    if (this.done) return
    this.done = true
    this.conn = undefined
    this.handler.onResponseError?.(this, err)
  }
}

type Phase = 'head' | 'fixed' | 'chunked' | 'close'

/** A keep-alive connection to the upstream, carrying one request at a time. */
export class RawConnection {
  readonly socket: Socket
  exchange: Exchange | undefined
  /** Responses read whole on it: a request written to a reused connection may find it closed. */
  served = 0
  private phase: Phase = 'head'
  private pending: Buffer | undefined
  private held: Buffer | undefined
  private remaining = 0
  private chunks: ChunkedReader | undefined
  private keepAlive = true
  private idleMs: number
  private error: Error | undefined
  // Re-armed with refresh() on each use; each checks on firing that it is the one wanted.
  private readonly headersTimer: NodeJS.Timeout
  private idleTimer: NodeJS.Timeout | undefined
  private idleTimerMs = 0
  private waiting: 'headers' | 'idle' | 'none' = 'none'
  /** The request under way has been written: what came before answers something else. */
  private written = false

  constructor (host: string, port: number, private readonly pool: RawPool, private readonly opts: Required<RawPoolOptions>) {
    this.idleMs = opts.keepAliveMs
    this.socket = connect({ host, port, noDelay: true })
    this.socket.on('data', (chunk: Buffer) => { this.data(chunk) })
    this.socket.on('error', (err) => { this.error ??= err })
    this.socket.on('close', () => { this.closed() })
    this.headersTimer = setTimeout(() => { this.timedOut('headers') }, opts.headersTimeout).unref()
  }

  /** Sends `ex` on this connection. */
  start (ex: Exchange): void {
    ex.handler.onRequestStart?.(ex, {})
    // Given up before anything was sent (its agent left, or was answered, while it waited): the
    // connection is as good as before, and goes to the next request. A new one starts its idle time.
    if (ex.done) {
      if (this.waiting !== 'idle') this.idle()
      this.pool.release(this)
      return
    }
    this.exchange = ex
    ex.conn = this
    this.phase = 'head'
    this.waiting = 'headers'
    this.headersTimer.refresh()
    this.written = false
    if (outbox.push(this) === 1) setImmediate(flush)
  }

  /** Writes the request `start` queued, unless it ended first. */
  write (): void {
    const ex = this.exchange
    if (ex === undefined || this.socket.destroyed) return
    // The upstream closed the connection as it was given the request: not written, it goes on another (`closed`).
    if (this.socket.readableEnded) {
      this.socket.destroy()
      return
    }
    const body = ex.body
    if (body === undefined) this.socket.write(ex.head, 'latin1')
    else if (body.length <= joinBelow) {
      const out = Buffer.allocUnsafe(ex.head.length + body.length)
      body.copy(out, out.write(ex.head, 0, 'latin1'))
      this.socket.write(out)
    } else {
      this.socket.cork()
      this.socket.write(ex.head, 'latin1')
      this.socket.write(body)
      this.socket.uncork()
    }
    this.written = true
  }

  /** Ends the connection under its exchange, which is failed or aborted by its caller. */
  drop (): void {
    this.exchange = undefined
    this.socket.destroy()
  }

  resume (): void {
    const held = this.held
    this.held = undefined
    if (held !== undefined) this.read(held)
    if (this.exchange?.paused !== true) this.socket.resume()
  }

  private idle (): void {
    this.waiting = 'idle'
    if (this.idleTimer === undefined || this.idleTimerMs !== this.idleMs) {
      clearTimeout(this.idleTimer)
      this.idleTimerMs = this.idleMs
      this.idleTimer = setTimeout(() => { this.timedOut('idle') }, this.idleMs).unref()
    } else this.idleTimer.refresh()
  }

  private timedOut (what: 'headers' | 'idle'): void {
    if (this.waiting !== what) return
    if (what === 'idle') {
      this.socket.destroy()
      return
    }
    const ex = this.exchange
    this.drop()
    ex?.fail(this.socket.connecting
      ? failure('UND_ERR_CONNECT_TIMEOUT', 'connect timeout')
      : failure('UND_ERR_HEADERS_TIMEOUT', 'headers timeout'))
  }

  private data (chunk: Buffer): void {
    const ex = this.exchange
    if (ex === undefined || !this.written) {
      // Bytes no request asked for (none is under way, or its request is not out yet): the
      // connection cannot be trusted with it, or with the next one.
      this.socket.destroy()
      return
    }
    if (ex.paused) {
      this.held = this.held === undefined ? chunk : Buffer.concat([this.held, chunk])
      this.socket.pause()
      return
    }
    this.read(chunk)
  }

  private read (chunk: Buffer): void {
    const ex = this.exchange as Exchange
    let buf = chunk
    if (this.phase === 'head') {
      buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
      this.pending = undefined
      let at = 0
      for (;;) {
        const rest = buf.subarray(at)
        const n = headLength(rest)
        // Not whole yet, unless what came can never start one (`neverResponseHead`).
        if (n === -1 && !neverResponseHead(rest)) {
          this.pending = rest
          return
        }
        const head = n < 0 ? undefined : readResponseHead(rest, n)
        if (head === undefined || head.status === 101) {
          this.invalid('invalid response head')
          return
        }
        at += n
        ex.started = true
        // Interim responses (100, 103) are not passed on; the final one follows.
        if (head.status >= 200) {
          if (!this.begin(ex, head)) return
          break
        }
      }
      buf = buf.subarray(at)
      if (this.phase === 'head') {
        this.complete(ex, buf.length > 0)
        return
      }
    }
    if (buf.length === 0) return
    if (this.phase === 'fixed') {
      const n = Math.min(this.remaining, buf.length)
      this.remaining -= n
      ex.handler.onResponseData?.(ex, buf.subarray(0, n))
      if (this.remaining === 0 && !ex.done) this.complete(ex, n < buf.length)
    } else if (this.phase === 'chunked') {
      const chunks = this.chunks as ChunkedReader
      let end: number
      try {
        // A buffer holds many chunks: paused on one, the reader stops there, as undici's parser does.
        end = chunks.read(buf, 0, (piece) => {
          ex.handler.onResponseData?.(ex, piece)
          return !ex.paused && !ex.done
        })
      } catch (err) {
        this.invalid((err as Error).message)
        return
      }
      if (ex.done) return
      if (end >= 0) this.complete(ex, end < buf.length)
      // The rest waits for the resume, ahead of what arrives meanwhile.
      else if (chunks.stoppedAt >= 0) this.held = buf.subarray(chunks.stoppedAt)
    } else {
      ex.handler.onResponseData?.(ex, buf)
    }
  }

  /** The final head has come: its framing (RFC 9112 §6.3) is set and the handler told. False when the exchange ended there. */
  private begin (ex: Exchange, head: ResponseHead): boolean {
    this.waiting = 'none'
    const h = head.headers
    const te = h['transfer-encoding']
    const length = contentLength(h['content-length'])
    const bodiless = ex.method === 'HEAD' || head.status === 204 || head.status === 304
    // RFC 9110 §8.6, RFC 9112 §6.1: a 204 sends neither; one that says it has content is not to be guessed at.
    const framingOf204 = head.status === 204 && (te !== undefined || length > 0)
    if (framingOf204 || (!bodiless && (Number.isNaN(length) || (te !== undefined && length >= 0)))) {
      this.invalid('invalid response framing')
      return false
    }
    const connection = String(h.connection ?? '').toLowerCase()
    this.keepAlive = (head.http10 ? connection.includes('keep-alive') : !connection.includes('close')) && (ex.body === undefined || carriesContent.has(ex.method))
    const hint = /timeout=(\d+)/.exec(String(h['keep-alive'] ?? ''))
    if (hint !== null) this.idleMs = Math.min(this.opts.keepAliveMs, Number(hint[1]) * 1000 - 1000)
    if (bodiless) this.phase = 'head'
    else if (te !== undefined) {
      const codings = String(te).toLowerCase().split(',')
      if (codings[codings.length - 1]?.trim() === 'chunked') {
        this.phase = 'chunked'
        this.chunks = new ChunkedReader()
      } else {
        this.phase = 'close'
        this.keepAlive = false
      }
    } else if (length >= 0) {
      this.phase = length === 0 ? 'head' : 'fixed'
      this.remaining = length
    } else {
      this.phase = 'close'
      this.keepAlive = false
    }
    ex.handler.onResponseStart?.(ex, head.status, h, '')
    return !ex.done
  }

  /** The response is whole; `extra`: bytes came after it (now or while it was paused), which no request asked for. */
  private complete (ex: Exchange, extra: boolean): void {
    ex.done = true
    ex.conn = undefined
    this.exchange = undefined
    this.served++
    this.phase = 'head'
    // Its handler may have paused it on the last bytes: the next request's answer must be read.
    this.socket.resume()
    const stray = extra || this.held !== undefined
    this.held = undefined
    if (!this.keepAlive || stray || this.idleMs <= 0) this.socket.destroy()
    ex.handler.onResponseEnd?.(ex, {})
    if (!this.socket.destroyed) {
      this.idle()
      this.pool.release(this)
    }
  }

  private invalid (why: string): void {
    this.fail(failure('UND_ERR_INVALID_RESPONSE', why))
  }

  /** Ends the connection, failing its exchange with `err`: not even a response read to the close is whole. */
  fail (err: Error): void {
    const ex = this.exchange
    this.drop()
    ex?.fail(err)
  }

  private closed (): void {
    clearTimeout(this.headersTimer)
    clearTimeout(this.idleTimer)
    this.pool.forget(this)
    const ex = this.exchange
    this.exchange = undefined
    if (ex === undefined || ex.done) return
    if (this.phase === 'close' && this.error === undefined) {
      this.exchange = ex
      this.complete(ex, false)
      return
    }
    ex.conn = undefined
    // A kept connection the upstream had closed as the request went out: once more, on a new one.
    // One not written yet goes whatever its method: the upstream has not seen it.
    if (!ex.started && this.served > 0 && !ex.retried && (!this.written || idempotent.has(ex.method))) {
      ex.retried = true
      this.pool.send(ex)
      return
    }
    const code = (this.error as NodeJS.ErrnoException | undefined)?.code
    ex.fail(this.error !== undefined && code !== undefined ? this.error : failure('UND_ERR_SOCKET', 'other side closed'))
  }
}
