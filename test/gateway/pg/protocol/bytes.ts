import type { Test } from 'tap'
import { ProtocolError } from '../../../../src/gateway/pg/protocol/errors.js'
/**
 * A fluent byte builder for protocol tests, independent of the Writer under test:
 * `bytes().cstring('select 1').frame('Q')`.
 */
export class Bytes {
  private readonly parts: Buffer[] = []

  int8 (v: number): this {
    const b = Buffer.alloc(1)
    b.writeUInt8(v & 0xff)
    this.parts.push(b)
    return this
  }

  int16 (v: number): this {
    const b = Buffer.alloc(2)
    b.writeUInt16BE(v & 0xffff)
    this.parts.push(b)
    return this
  }

  int32 (v: number): this {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(v >>> 0)
    this.parts.push(b)
    return this
  }

  /** A string and its NUL terminator. */
  cstring (s: string): this {
    this.parts.push(Buffer.from(s, 'utf8'), Buffer.from([0]))
    return this
  }

  /** Bytes as given: a buffer, byte values, or a latin1 string. */
  raw (b: Buffer | number[] | string): this {
    this.parts.push(typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.from(b))
    return this
  }

  /** The bytes so far, with no header: a message body. */
  body (): Buffer {
    return Buffer.concat(this.parts)
  }

  /** A tagged message: tag, Int32 length counting itself, body. */
  frame (tag: string | number): Buffer {
    const body = this.body()
    const head = Buffer.alloc(5)
    head[0] = typeof tag === 'string' ? tag.charCodeAt(0) : tag
    head.writeUInt32BE(body.length + 4, 1)
    return Buffer.concat([head, body])
  }

  /** An untagged (startup-phase) message: Int32 length counting itself, body. */
  untagged (): Buffer {
    const body = this.body()
    const head = Buffer.alloc(4)
    head.writeUInt32BE(body.length + 4)
    return Buffer.concat([head, body])
  }
}

export function bytes (): Bytes {
  return new Bytes()
}

/** A seeded PRNG (mulberry32), so a fuzz run is the same every time. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `buf` cut into consecutive pieces at the given offsets. */
export function cut (buf: Buffer, at: number[]): Buffer[] {
  const pieces: Buffer[] = []
  let from = 0
  for (const i of at) {
    pieces.push(buf.subarray(from, i))
    from = i
  }
  pieces.push(buf.subarray(from))
  return pieces
}

/** Every strict prefix of `buf`, each copied so no parser can read past it into the rest. */
export function prefixes (buf: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < buf.length; i++) out.push(Buffer.from(buf.subarray(0, i)))
  return out
}

/**
 * Asserts that `parse` reads `body` whole, refuses every strict prefix of it and `body` with
 * one byte more, each time with a ProtocolError (never a RangeError or another error).
 */
export function refusesTruncation (t: Test, name: string, parse: (b: Buffer) => unknown, body: Buffer): void {
  t.doesNotThrow(() => parse(body), `${name} parses whole`)
  for (const p of prefixes(body)) {
    try {
      parse(p)
      t.fail(`${name} accepted a ${p.length}-byte prefix`)
    } catch (err) {
      if (!(err instanceof ProtocolError)) t.fail(`${name} threw ${String(err)} on a ${p.length}-byte prefix`)
    }
  }
  t.throws(() => parse(Buffer.concat([body, Buffer.from([1])])), ProtocolError, `${name} with a trailing byte`)
}
