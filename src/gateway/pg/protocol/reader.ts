import { isUtf8 } from 'node:buffer'
import { ProtocolError } from './errors.js'

/**
 * A bounds-checked cursor over one message body. Every read past the end, missing string
 * terminator or invalid UTF-8 throws a {@link ProtocolError} naming the message, never a
 * RangeError. `bytes` returns views into the body, not copies.
 */
export class Reader {
  private pos = 0

  /**
   * @param buf the message body (after tag and length)
   * @param what the message's name, for error messages
   */
  constructor (private readonly buf: Buffer, private readonly what = 'message') {}

  /** A ProtocolError for this message. */
  invalid (problem: string): ProtocolError {
    return new ProtocolError('ERR_PG_MESSAGE_INVALID', `${this.what}: ${problem}`)
  }

  private need (n: number): void {
    if (n > this.buf.length - this.pos) throw this.invalid('message is truncated')
  }

  byte (): number {
    this.need(1)
    return this.buf[this.pos++]
  }

  int16 (): number {
    this.need(2)
    const v = this.buf.readInt16BE(this.pos)
    this.pos += 2
    return v
  }

  /** An Int16 count: the server reads these unsigned (pq_getmsgint), so up to 65535. */
  uint16 (): number {
    this.need(2)
    const v = this.buf.readUInt16BE(this.pos)
    this.pos += 2
    return v
  }

  int32 (): number {
    this.need(4)
    const v = this.buf.readInt32BE(this.pos)
    this.pos += 4
    return v
  }

  /** An Int32 that is unsigned by meaning: OIDs, process ids, secret keys, request codes. */
  uint32 (): number {
    this.need(4)
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }

  /**
   * A NUL-terminated string. Invalid UTF-8 is refused rather than replaced, so what the
   * gateway reads is exactly what the peer sent.
   */
  cstring (): string {
    // Short ASCII strings (statement and portal names, most often empty) without a native call.
    const buf = this.buf
    const start = this.pos
    const limit = Math.min(buf.length, start + 64)
    let i = start
    while (i < limit && buf[i] !== 0 && buf[i] < 0x80) i++
    if (i < limit && buf[i] === 0) {
      this.pos = i + 1
      return i === start ? '' : buf.toString('latin1', start, i)
    }
    const end = this.buf.indexOf(0, this.pos)
    if (end < 0) throw this.invalid('string is missing its terminator')
    const raw = this.buf.subarray(this.pos, end)
    if (!isUtf8(raw)) throw this.invalid('string is not valid UTF-8')
    this.pos = end + 1
    return raw.toString('utf8')
  }

  /** The next `n` bytes, as a view. */
  bytes (n: number): Buffer {
    if (!Number.isInteger(n) || n < 0) throw this.invalid(`invalid byte count ${n}`)
    this.need(n)
    const v = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return v
  }

  /** Steps over the next `n` bytes. */
  skip (n: number): void {
    if (!Number.isInteger(n) || n < 0) throw this.invalid(`invalid byte count ${n}`)
    this.need(n)
    this.pos += n
  }

  /** Everything left, as a view. */
  rest (): Buffer {
    return this.bytes(this.remaining())
  }

  remaining (): number {
    return this.buf.length - this.pos
  }

  /** Throws unless the body is used up: trailing bytes are malformed, as the server holds (pq_getmsgend). */
  end (): void {
    if (this.pos !== this.buf.length) throw this.invalid(`${this.remaining()} unexpected trailing bytes`)
  }
}
