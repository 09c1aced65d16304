import { ProtocolError } from './errors.js'

/**
 * `startup`: untagged messages (Int32 length counting itself, then an Int32 code), the first
 * message(s) of a client connection. `tagged`: Byte1 tag, Int32 length counting itself.
 */
export type FramerMode = 'startup' | 'tagged'

/** One complete message. `tag` is 0 for an untagged message, whose body starts with its code. */
export interface Frame {
  tag: number
  body: Buffer
}

export interface FramerOptions {
  /** Mode of the first frame; default `tagged` (the upstream side). */
  mode?: FramerMode
  /** Largest accepted declared length of a tagged message (counting the length itself); default 1 MiB. */
  maxLength?: number
  /** Largest accepted declared length of a startup-phase message; default 10000, the server's own limit (MAX_STARTUP_PACKET_LENGTH). */
  maxStartupLength?: number
}

const MiB = 1024 * 1024
// Chunks below this size that continue a pending frame are copied into an accumulator
// instead of being kept as views: a peer trickling one byte per packet would otherwise make
// the framer hold a Buffer object (a hundred bytes or more) per byte received.
const SMALL_CHUNK = 4096

function checkLimit (v: number, min: number, name: string): number {
  if (!Number.isInteger(v) || v < min || v > 0x7fffffff) throw new TypeError(`${name} must be an integer from ${min} to 2^31-1`)
  return v
}

/**
 * Cuts a byte stream into protocol messages. It knows nothing of sockets: `push` each chunk
 * as it arrives and iterate over the frames it yields. Frames may be split anywhere across
 * chunks and many may arrive in one chunk.
 *
 * A frame that lies within one chunk is a view into that chunk (no copy); only a frame that
 * spans chunks is copied, once, when its last byte arrives. A declared length is checked as
 * soon as the header is in, before anything is allocated for the body, so a peer cannot make
 * the framer hold more than the cap plus one chunk.
 */
export class Framer {
  /**
   * Read before each frame, so a caller may switch it (to `tagged` after the StartupMessage)
   * between two frames of the same chunk, inside its loop over `push`.
   */
  mode: FramerMode
  /** Read before each frame too, so a caller may raise it once a client has logged in. */
  maxLength: number
  readonly maxStartupLength: number
  private chunks: Buffer[] = []
  // Bytes of chunks[0] already consumed.
  private offset = 0
  private size = 0
  // The accumulator for small chunks, and the view of it that is the last entry of chunks.
  private acc: Buffer | undefined
  private accView: Buffer | undefined

  /** @throws TypeError on a limit that is not an integer in range */
  constructor (options: FramerOptions = {}) {
    this.mode = options.mode ?? 'tagged'
    this.maxLength = checkLimit(options.maxLength ?? MiB, 4, 'maxLength')
    this.maxStartupLength = checkLimit(options.maxStartupLength ?? 10000, 8, 'maxStartupLength')
  }

  /**
   * Adds `chunk` (at once, whether or not the result is iterated) and returns an iterator over
   * the frames complete so far. A frame's body may share memory with `chunk`.
   * @throws ProtocolError (while iterating) `ERR_PG_FRAME_TOO_LARGE` or `ERR_PG_FRAME_INVALID`:
   *   the stream cannot be resynchronized and the connection should be closed; the framer
   *   keeps the bad header and throws again if used.
   */
  push (chunk: Buffer): IterableIterator<Frame> {
    this.add(chunk)
    return this.frames()
  }

  /** Adds `chunk`; `next` then returns the frames it completed. The loop-free form of `push`, for hot paths. */
  add (chunk: Buffer): void {
    if (chunk.length >= SMALL_CHUNK || (chunk.length > 0 && this.size === 0)) {
      this.chunks.push(chunk)
    } else if (chunk.length > 0) {
      this.accumulate(chunk)
    }
    this.size += chunk.length
  }

  /**
   * Bytes received but not yet returned as frames. After an SSLRequest or GSSENCRequest this
   * must be 0: bytes sent before the answer were not protected by the TLS/GSS layer about to
   * start, and must not be read as if they were (CVE-2021-23214).
   */
  buffered (): number {
    return this.size
  }

  /** Copies a small chunk after the pending bytes, into spare room or a new, larger accumulator. */
  private accumulate (chunk: Buffer): void {
    const last = this.chunks.length - 1
    const acc = this.acc
    const view = this.accView
    if (acc !== undefined && view !== undefined && this.chunks[last] === view && acc.length - view.length >= chunk.length) {
      chunk.copy(acc, view.length)
      this.accView = this.chunks[last] = acc.subarray(0, view.length + chunk.length)
      return
    }
    // Each full accumulator still pending is followed by one twice its size, so a trickled
    // frame needs logarithmically many, each byte is copied once, and the memory held stays
    // within about twice the bytes received (plus one 4 KiB accumulator).
    const previous = acc !== undefined && this.chunks[last] === view ? acc.length : 0
    const next = Buffer.allocUnsafe(Math.max(SMALL_CHUNK, 2 * previous, chunk.length))
    chunk.copy(next, 0)
    this.acc = next
    this.accView = next.subarray(0, chunk.length)
    this.chunks.push(this.accView)
  }

  private * frames (): IterableIterator<Frame> {
    for (;;) {
      const frame = this.next()
      if (frame === undefined) return
      yield frame
    }
  }

  /**
   * The next complete frame, or undefined until more bytes are added.
   * @throws ProtocolError as `push` does
   */
  next (): Frame | undefined {
    const tagged = this.mode === 'tagged'
    const lengthAt = tagged ? 1 : 0
    if (this.size < lengthAt + 4) return undefined
    const first = this.chunks[0]
    const at = this.offset + lengthAt
    const length = first.length >= at + 4
      ? first.readUInt32BE(at)
      : ((this.peek(lengthAt) << 24) | (this.peek(lengthAt + 1) << 16) | (this.peek(lengthAt + 2) << 8) | this.peek(lengthAt + 3)) >>> 0
    const min = tagged ? 4 : 8
    const max = tagged ? this.maxLength : this.maxStartupLength
    if (length < min) throw new ProtocolError('ERR_PG_FRAME_INVALID', `declared message length ${length} is below ${min}`)
    if (length > max) throw new ProtocolError('ERR_PG_FRAME_TOO_LARGE', `declared message length ${length} exceeds the limit of ${max}`)
    const total = lengthAt + length
    if (this.size < total) return undefined
    const tag = tagged ? first[this.offset] : 0
    return { tag, body: this.take(total, lengthAt + 4) }
  }

  /**
   * The next tagged frame's tag and total size (tag and length included) once its header is
   * in, whether or not the rest is; undefined before. Checks the length as `next` does.
   * @throws ProtocolError as `push` does
   */
  head (): { tag: number, total: number } | undefined {
    if (this.mode !== 'tagged' || this.size < 5) return undefined
    const first = this.chunks[0]
    const length = first.length >= this.offset + 5
      ? first.readUInt32BE(this.offset + 1)
      : ((this.peek(1) << 24) | (this.peek(2) << 16) | (this.peek(3) << 8) | this.peek(4)) >>> 0
    if (length < 4) throw new ProtocolError('ERR_PG_FRAME_INVALID', `declared message length ${length} is below 4`)
    if (length > this.maxLength) throw new ProtocolError('ERR_PG_FRAME_TOO_LARGE', `declared message length ${length} exceeds the limit of ${this.maxLength}`)
    return { tag: first[this.offset], total: 1 + length }
  }

  /**
   * Removes and returns every byte buffered, as it arrived: for a caller that passes on the
   * start of a frame too large to hold whole (see `head`), and the rest as it comes.
   */
  drain (): Buffer[] {
    const out = this.chunks
    if (out.length > 0 && this.offset > 0) out[0] = out[0].subarray(this.offset)
    this.chunks = []
    this.offset = 0
    this.size = 0
    this.acc = this.accView = undefined
    return out
  }

  /** The byte `i` bytes past the read position; the caller knows it is buffered. */
  private peek (i: number): number {
    let at = this.offset + i
    for (let k = 0; k < this.chunks.length; k++) {
      const c = this.chunks[k]
      if (at < c.length) return c[at]
      at -= c.length
    }
    throw new Error('unreachable: peek past the buffered bytes')
  }

  /** Removes the next `n` buffered bytes (n ≤ size) and returns them past their first `skip`: a view if they lie in one chunk. */
  private take (n: number, skip: number): Buffer {
    this.size -= n
    const first = this.chunks[0]
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset + skip, this.offset + n)
      this.offset += n
      if (this.offset === first.length) {
        this.chunks.shift()
        this.offset = 0
      }
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    let used = 0
    while (filled < n) {
      const c = this.chunks[used]
      const from = used === 0 ? this.offset : 0
      const count = Math.min(c.length - from, n - filled)
      c.copy(out, filled, from, from + count)
      filled += count
      if (from + count === c.length) {
        used++
        this.offset = 0
      } else {
        this.offset = from + count
      }
    }
    this.chunks = used === this.chunks.length ? [] : this.chunks.slice(used)
    return out.subarray(skip)
  }
}

/** A frame's bytes again, header and body, as two buffers for a corked (vectored) write. */
export function encodeFrame (f: Frame): Buffer[] {
  const head = Buffer.allocUnsafe(5)
  head[0] = f.tag
  head.writeInt32BE(f.body.length + 4, 1)
  return [head, f.body]
}
