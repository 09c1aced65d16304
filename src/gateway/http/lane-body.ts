import { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import type { IncomingHttpHeaders } from 'node:http'
import type { AgentRequest } from './lane-response.js'
import type { RequestHead } from './wire.js'

/**
 * A lane request with a body of known length (`Content-Length`), read from the agent's socket
 * as it arrives and handed on as a stream, as node:http hands on an `IncomingMessage`: the
 * socket pauses while what was read waits unconsumed past the stream's high-water mark, and
 * `complete` says the body was read whole. An agent that leaves before the whole body came
 * ends the stream without its 'end' (and with an error only when someone listens for one,
 * as node:http does), so the upstream never takes the part for the whole.
 */
export class LaneBody extends Readable implements AgentRequest {
  readonly httpVersionMajor = 1
  readonly httpVersionMinor = 1
  complete = false
  method: string
  url: string
  headers: IncomingHttpHeaders
  private remaining: number

  constructor (head: RequestHead, readonly socket: Socket, length: number) {
    super()
    this.method = head.method
    this.url = head.url
    this.headers = head.headers
    this.remaining = length
  }

  /** Takes the body's part of `chunk`; returns what follows the body in it (the next request's bytes), if anything. */
  feed (chunk: Buffer): Buffer | undefined {
    if (this.complete) return chunk
    const n = Math.min(this.remaining, chunk.length)
    this.remaining -= n
    const wanted = this.destroyed || this.push(n === chunk.length ? chunk : chunk.subarray(0, n))
    if (this.remaining === 0) {
      this.complete = true
      if (!this.destroyed) this.push(null)
    } else if (!wanted) this.socket.pause()
    return n < chunk.length ? chunk.subarray(n) : undefined
  }

  override _read (): void {
    if (!this.complete && !this.socket.destroyed) this.socket.resume()
  }

  /** The connection ended before the whole body came. */
  cutShort (): void {
    if (this.complete || this.destroyed) return
    this.destroy(this.listenerCount('error') > 0 ? Object.assign(new Error('aborted'), { code: 'ECONNRESET' }) : undefined)
  }
}
