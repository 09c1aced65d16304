import { connect, type Socket } from 'node:net'
import type { HttpResult } from './http.js'

const headerEnd = Buffer.from('\r\n\r\n')

interface Pending {
  resolve: (r: HttpResult) => void
  reject: (e: Error) => void
}

/**
 * One keep-alive HTTP/1.1 connection carrying one request at a time, for the load generator.
 * It does only what measuring needs (write a prepared request, read a `Content-Length` response),
 * so that the client spends as little CPU per request as it can and the machine's cores go to
 * the server under test. Both servers measured here answer with `Content-Length`; anything
 * else (chunked bodies, 1xx) is reported as an error rather than guessed at.
 */
export class RawConnection {
  private socket: Socket | undefined
  private buffer: Buffer = Buffer.alloc(0)
  private pending: Pending | undefined
  private readonly prefix: string

  /** `url` names the host, port and path every request of this connection goes to. */
  constructor (private readonly url: URL, headers: Record<string, string>) {
    const lines = Object.entries({ host: url.host, ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('')
    this.prefix = `POST ${url.pathname}${url.search} HTTP/1.1\r\n${lines}`
  }

  /** POSTs `body` (already encoded) and resolves with the status and body text. */
  async post (body: string): Promise<HttpResult> {
    const socket = this.socket ?? this.open()
    return await new Promise<HttpResult>((resolve, reject) => {
      this.pending = { resolve, reject }
      socket.write(`${this.prefix}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    })
  }

  close (): void {
    this.socket?.destroy()
    this.socket = undefined
  }

  private open (): Socket {
    const socket = connect({ host: this.url.hostname, port: Number(this.url.port), noDelay: true })
    this.socket = socket
    this.buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    const lost = (err?: Error): void => {
      if (this.socket === socket) this.socket = undefined
      this.fail(err ?? new Error('connection closed'))
    }
    socket.on('error', lost)
    socket.on('close', () => lost())
    return socket
  }

  private fail (err: Error): void {
    const p = this.pending
    this.pending = undefined
    p?.reject(err)
  }

  private onData (chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    const end = this.buffer.indexOf(headerEnd)
    if (end < 0) return
    const head = this.buffer.toString('latin1', 0, end)
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head)
    if (length === null) {
      this.close()
      this.fail(new Error(`response without Content-Length: ${head.slice(0, 200)}`))
      return
    }
    const start = end + headerEnd.length
    const stop = start + Number(length[1])
    if (this.buffer.length < stop) return
    const result = { status: Number(head.slice(9, 12)), body: this.buffer.toString('utf8', start, stop) }
    this.buffer = this.buffer.subarray(stop)
    if (/\r\nconnection:[ \t]*close/i.test(head)) this.close()
    const p = this.pending
    this.pending = undefined
    p?.resolve(result)
  }
}
