import t from 'tap'
import { ProtocolError, Reader, Writer } from '../../../../src/gateway/pg/protocol/index.js'
import { bytes } from './bytes.js'

t.test('the reader reads integers big-endian, signed and unsigned', async (t) => {
  const r = new Reader(bytes().int8(0xfe).int16(-2).int16(0xfffe).int32(-2).int32(0xfffffffe).body())
  t.equal(r.byte(), 0xfe)
  t.equal(r.int16(), -2)
  t.equal(r.uint16(), 0xfffe)
  t.equal(r.int32(), -2)
  t.equal(r.uint32(), 0xfffffffe)
  t.equal(r.remaining(), 0)
  t.doesNotThrow(() => r.end())
})

t.test('the reader reads strings up to their NUL and bytes as views', async (t) => {
  const buf = bytes().cstring('héllo').cstring('').raw('abcdef').body()
  const r = new Reader(buf)
  t.equal(r.cstring(), 'héllo')
  t.equal(r.cstring(), '')
  const b = r.bytes(2)
  t.same(b, Buffer.from('ab'))
  t.equal(b.buffer, buf.buffer, 'a view, not a copy')
  t.same(r.bytes(0), Buffer.alloc(0))
  t.equal(r.remaining(), 4)
  t.same(r.rest(), Buffer.from('cdef'))
  t.equal(r.remaining(), 0)
})

t.test('reading past the end throws ProtocolError naming the message', async (t) => {
  const reads: Array<[string, (r: Reader) => unknown]> = [
    ['byte', (r) => r.byte()], ['int16', (r) => r.int16()], ['uint16', (r) => r.uint16()],
    ['int32', (r) => r.int32()], ['uint32', (r) => r.uint32()], ['bytes', (r) => r.bytes(4)]
  ]
  for (const [name, read] of reads) {
    t.throws(() => read(new Reader(Buffer.from([1]).subarray(1), 'Bind')), { code: 'ERR_PG_MESSAGE_INVALID', message: 'Bind: message is truncated' }, name)
  }
  t.throws(() => new Reader(Buffer.from([0, 0, 0])).int32(), ProtocolError)
})

t.test('the reader refuses a missing terminator, invalid UTF-8 and bad byte counts', async (t) => {
  t.throws(() => new Reader(Buffer.from('abc')).cstring(), { code: 'ERR_PG_MESSAGE_INVALID', message: /terminator/ })
  t.throws(() => new Reader(Buffer.from([0xc3, 0x28, 0])).cstring(), { message: /UTF-8/ })
  t.throws(() => new Reader(Buffer.from([0xed, 0xa0, 0x80, 0])).cstring(), { message: /UTF-8/ }, 'an encoded surrogate')
  t.throws(() => new Reader(Buffer.from('abc')).bytes(-1), ProtocolError)
  t.throws(() => new Reader(Buffer.from('abc')).bytes(1.5), ProtocolError)
  t.throws(() => new Reader(Buffer.from('abc')).bytes(4), ProtocolError)
})

t.test('a reader that fails leaves its position where it was', async (t) => {
  const r = new Reader(Buffer.from([1, 2, 3]))
  t.throws(() => r.int32())
  t.equal(r.remaining(), 3)
  t.throws(() => r.cstring())
  t.equal(r.remaining(), 3)
})

t.test('end() refuses trailing bytes', async (t) => {
  const r = new Reader(Buffer.from([1, 2]), 'Sync')
  r.byte()
  t.throws(() => r.end(), { code: 'ERR_PG_MESSAGE_INVALID', message: 'Sync: 1 unexpected trailing bytes' })
})

t.test('the writer frames a message with its tag and a length that counts itself', async (t) => {
  const msg = new Writer().int16(-1).int16(65535).int32(-2).uint32(0xffffffff).byte(7).cstring('é').bytes(Buffer.from('xy')).frame(0x51)
  t.same(msg, bytes().int16(-1).int16(65535).int32(-2).int32(0xffffffff).int8(7).cstring('é').raw('xy').frame('Q'))
  t.same(new Writer().frame(0x53), Buffer.from([0x53, 0, 0, 0, 4]))
})

t.test('the writer builds untagged startup-phase messages', async (t) => {
  t.same(new Writer().int32(80877103).untagged(), bytes().int32(80877103).untagged())
})

t.test('the writer grows past its initial size and starts over after each message', async (t) => {
  const w = new Writer(4)
  const big = Buffer.alloc(100_000, 3)
  const first = w.bytes(big).frame(0x64)
  t.same(first, bytes().raw(big).frame('d'))
  const second = w.cstring('next').frame(0x51)
  t.same(second, bytes().cstring('next').frame('Q'))
  t.same(first, bytes().raw(big).frame('d'), 'the first message is untouched by the second')
})

t.test('the writer refuses out-of-range values and NUL in strings as programming errors', async (t) => {
  t.throws(() => new Writer().byte(256), TypeError)
  t.throws(() => new Writer().int16(65536), TypeError)
  t.throws(() => new Writer().int16(-32769), TypeError)
  t.throws(() => new Writer().int32(2 ** 31), TypeError)
  t.throws(() => new Writer().uint32(-1), TypeError)
  t.throws(() => new Writer().int32(1.5), TypeError)
  t.throws(() => new Writer().cstring('a\0b'), TypeError)
  t.throws(() => new Writer().frame(0), TypeError)
  t.throws(() => new Writer().frame(256), TypeError)
})
