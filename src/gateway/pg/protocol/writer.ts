import { ProtocolError } from './errors.js'

// Room for the tag and the length, filled in by frame() or untagged().
const HEADER = 5
const MAX_LENGTH = 0x7fffffff
const EMPTY = Buffer.alloc(0)

function checkInt (v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new TypeError(`${what} out of range: ${v}`)
}

/**
 * Builds one message: `new Writer().int16(1).cstring('x').frame(0x51)`. Values out of their
 * field's range and strings containing NUL (which would end the field early and let the rest
 * be read as further fields) are programming errors and throw TypeError.
 */
export class Writer {
  // Allocated on first use, so a writer that is framed once and dropped allocates once.
  private buf = EMPTY
  private pos = HEADER

  /** @param size initial capacity in bytes; the buffer doubles as needed */
  constructor (private readonly size = 256) {
    checkInt(size, 0, MAX_LENGTH, 'size')
  }

  private ensure (n: number): void {
    const needed = this.pos + n
    if (needed <= this.buf.length) return
    // The length field counts itself but not the tag.
    if (needed - 1 > MAX_LENGTH) throw new ProtocolError('ERR_PG_FRAME_TOO_LARGE', `message of ${needed - 1} bytes exceeds the protocol's limit`)
    let cap = Math.max(this.buf.length * 2, this.size, HEADER + 16)
    while (cap < needed) cap *= 2
    const next = Buffer.allocUnsafe(cap)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  /** A Byte1. */
  byte (v: number): this {
    checkInt(v, 0, 0xff, 'Byte1')
    this.ensure(1)
    this.buf[this.pos++] = v
    return this
  }

  /** An Int16, signed (format codes, type sizes) or unsigned (counts, up to 65535). */
  int16 (v: number): this {
    checkInt(v, -0x8000, 0xffff, 'Int16')
    this.ensure(2)
    this.buf.writeUInt16BE(v & 0xffff, this.pos)
    this.pos += 2
    return this
  }

  /** A signed Int32. */
  int32 (v: number): this {
    checkInt(v, -0x80000000, 0x7fffffff, 'Int32')
    this.ensure(4)
    this.buf.writeInt32BE(v, this.pos)
    this.pos += 4
    return this
  }

  /** An Int32 that is unsigned by meaning (OIDs, process ids, secret keys). */
  uint32 (v: number): this {
    checkInt(v, 0, 0xffffffff, 'UInt32')
    this.ensure(4)
    this.buf.writeUInt32BE(v, this.pos)
    this.pos += 4
    return this
  }

  /** A UTF-8 string and its NUL terminator. */
  cstring (s: string): this {
    if (s.includes('\0')) throw new TypeError('a protocol string cannot contain NUL')
    const n = Buffer.byteLength(s, 'utf8')
    this.ensure(n + 1)
    this.buf.write(s, this.pos, 'utf8')
    this.pos += n
    this.buf[this.pos++] = 0
    return this
  }

  /** Raw bytes, copied. */
  bytes (b: Uint8Array): this {
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
    return this
  }

  /**
   * The finished message: `tag`, the Int32 length (counting itself), the body. The writer
   * starts over empty afterwards, and the returned buffer is no longer its own.
   */
  frame (tag: number): Buffer {
    checkInt(tag, 0x01, 0xff, 'tag')
    this.ensure(0)
    this.buf[0] = tag
    this.buf.writeInt32BE(this.pos - 1, 1)
    return this.take(0)
  }

  /** The finished startup-phase message: the Int32 length (counting itself), then the body. */
  untagged (): Buffer {
    this.ensure(0)
    this.buf.writeInt32BE(this.pos - 1, 1)
    return this.take(1)
  }

  private take (start: number): Buffer {
    const out = this.buf.subarray(start, this.pos)
    this.buf = EMPTY
    this.pos = HEADER
    return out
  }
}
