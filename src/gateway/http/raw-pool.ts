import type { Dispatcher } from 'undici'
import { RawConnection, Exchange, failure } from './raw-connection.js'

/** A request, as `RawPool.dispatch` takes it (undici's `dispatch` options, the part the gateway uses). */
export interface RawRequest {
  method: string
  /** Origin-form path and query. */
  path: string
  headers: Record<string, string | string[] | number | undefined>
  /** The whole body, if there is one: sent with a Content-Length of its size. */
  body?: Buffer
}

export interface RawPoolOptions {
  /** Connections the pool may open at once; requests beyond them wait in order. */
  connections: number
  /** From a request's connection (or its wait to connect) to the response's head. */
  headersTimeout: number
  /** How long a connection may stay idle between requests (the upstream's `Keep-Alive: timeout` shortens it). */
  keepAliveMs?: number
}

const name = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const value = /^[\t\x20-\x7e\x80-\xff]*$/
const path = /^\/[\x21-\x7e]*$/

/** The request's head as sent, or an error naming what cannot be sent (a header value with a line break, say). */
function requestHead (r: RawRequest): string | Error {
  if (!name.test(r.method) || !path.test(r.path)) return failure('UND_ERR_INVALID_ARG', 'invalid method or path')
  let head = `${r.method} ${r.path} HTTP/1.1\r\n`
  for (const key in r.headers) {
    const v = r.headers[key]
    if (v === undefined || (r.body !== undefined && key.toLowerCase() === 'content-length')) continue
    if (!name.test(key)) return failure('UND_ERR_INVALID_ARG', `invalid header name ${key}`)
    for (const one of Array.isArray(v) ? v : [String(v)]) {
      if (!value.test(one)) return failure('UND_ERR_INVALID_ARG', `invalid value of header ${key}`)
      head += `${key}: ${one}\r\n`
    }
  }
  // RFC 9110 §8.6: a method that usually has content says it has none.
  if (r.body !== undefined) head += `content-length: ${r.body.length}\r\n`
  else if ((r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH') && r.headers['content-length'] === undefined) head += 'content-length: 0\r\n'
  return `${head}\r\n`
}

/**
 * Keep-alive HTTP/1.1 connections to one `http:` upstream, for requests without a body or with
 * one held whole: the gateway's most common exchanges, on a path shorter than undici's (no
 * request objects, no WebAssembly parser, one write per request). It drives the same handler
 * interface as undici's `dispatch`, so the gateway's relay serves both, and fails with
 * undici's error codes.
 * Responses are read strictly (`wire.ts`); what it cannot read fails the exchange.
 */
export class RawPool {
  private readonly idle: RawConnection[] = []
  private readonly all = new Set<RawConnection>()
  private readonly queue: Exchange[] = []
  private readonly opts: Required<RawPoolOptions>
  private closing: (() => void) | undefined

  constructor (private readonly host: string, private readonly port: number, opts: RawPoolOptions) {
    this.opts = { keepAliveMs: 4000, ...opts }
  }

  dispatch (r: RawRequest, handler: Dispatcher.DispatchHandler): void {
    const head = requestHead(r)
    const ex = new Exchange(typeof head === 'string' ? head : '', r.body, r.method, handler, this)
    if (head instanceof Error) ex.fail(head)
    else this.send(ex)
  }

  /** Finishes what is under way, then closes every connection. */
  async close (): Promise<void> {
    await new Promise<void>((resolve) => {
      this.closing = resolve
      this.settle()
    })
  }

  /** Ends every connection now; requests under way or waiting fail. */
  destroy (): void {
    this.closing ??= () => {}
    const err = failure('UND_ERR_DESTROYED', 'the pool was destroyed')
    for (const ex of this.queue.splice(0)) ex.fail(err)
    // Failed here, not left to the close: that would end a response read to it as whole, or send a request again.
    for (const c of [...this.all]) c.fail(err)
  }

  send (ex: Exchange): void {
    // One destroyed while idle (its idle time ran out) is listed until its close is seen: not to be used.
    let conn = this.idle.pop()
    while (conn?.socket.destroyed === true) conn = this.idle.pop()
    if (conn !== undefined) conn.start(ex)
    else if (this.all.size < this.opts.connections) {
      const c = new RawConnection(this.host, this.port, this, this.opts)
      this.all.add(c)
      c.start(ex)
    } else {
      this.queue.push(ex)
    }
  }

  unqueue (ex: Exchange): void {
    const i = this.queue.indexOf(ex)
    if (i >= 0) this.queue.splice(i, 1)
  }

  release (conn: RawConnection): void {
    const next = this.queue.shift()
    if (next !== undefined) conn.start(next)
    else this.idle.push(conn)
    this.settle()
  }

  forget (conn: RawConnection): void {
    this.all.delete(conn)
    const i = this.idle.indexOf(conn)
    if (i >= 0) this.idle.splice(i, 1)
    // A connection lost with requests waiting: another takes its place.
    const next = this.queue.shift()
    if (next !== undefined) this.send(next)
    this.settle()
  }

  private settle (): void {
    if (this.closing === undefined || this.queue.length > 0 || this.idle.length < this.all.size) return
    for (const c of this.idle) c.socket.destroy()
    this.closing()
  }
}
