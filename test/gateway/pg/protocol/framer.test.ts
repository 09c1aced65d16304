import t from 'tap'
import { encodeFrame, Framer, ProtocolError, type Frame } from '../../../../src/gateway/pg/protocol/index.js'
import { bytes, cut } from './bytes.js'

const stream = Buffer.concat([
  bytes().cstring('select 1').frame('Q'),
  bytes().cstring('s1').cstring('select $1::int').int16(1).int32(23).frame('P'),
  bytes().cstring('').cstring('s1').int16(0).int16(1).int32(1).raw('7').int16(0).frame('B'),
  bytes().raw('P').cstring('').frame('D'),
  bytes().cstring('').int32(0).frame('E'),
  bytes().frame('S'),
  bytes().raw(Buffer.alloc(5000, 0xab)).frame('d'),
  bytes().frame('X')
])

function collect (framer: Framer, chunks: Buffer[]): Array<{ tag: number, body: string }> {
  const out: Array<{ tag: number, body: string }> = []
  for (const c of chunks) for (const f of framer.push(c)) out.push({ tag: f.tag, body: f.body.toString('hex') })
  return out
}

const whole = collect(new Framer(), [stream])

t.test('a stream in one chunk yields every frame with its tag and body', async (t) => {
  t.same(whole.map((f) => String.fromCharCode(f.tag)), ['Q', 'P', 'B', 'D', 'E', 'S', 'd', 'X'])
  t.equal(whole[0].body, Buffer.from('select 1\0').toString('hex'))
  t.equal(whole[5].body, '')
  t.equal(whole[6].body.length, 10000)
})

t.test('a stream split at every offset yields the same frames', async (t) => {
  for (let i = 0; i <= stream.length; i++) {
    const got = collect(new Framer(), cut(stream, [i]))
    if (JSON.stringify(got) !== JSON.stringify(whole)) t.fail(`split at ${i}`)
  }
  t.pass('all splits agree')
})

t.test('a stream split at every pair of offsets in its first messages yields the same frames', async (t) => {
  const head = stream.subarray(0, 90)
  const expected = collect(new Framer(), [head])
  t.ok(expected.length >= 3)
  for (let i = 0; i <= head.length; i++) {
    for (let j = i; j <= head.length; j++) {
      const got = collect(new Framer(), cut(head, [i, j]))
      if (JSON.stringify(got) !== JSON.stringify(expected)) t.fail(`split at ${i} and ${j}`)
    }
  }
  t.pass('all split pairs agree')
})

t.test('a stream fed byte by byte yields the same frames and leaves nothing buffered', async (t) => {
  const framer = new Framer()
  const pieces: Buffer[] = []
  for (let i = 0; i < stream.length; i++) pieces.push(stream.subarray(i, i + 1))
  t.same(collect(framer, pieces), whole)
  t.equal(framer.buffered(), 0)
})

t.test('frames coalesced in one chunk are views into it, not copies', async (t) => {
  const framer = new Framer()
  const frames = [...framer.push(stream)]
  t.equal(frames.length, 8)
  for (const f of frames) t.equal(f.body.buffer, stream.buffer, 'shares memory with the chunk')
})

t.test('buffered() counts the bytes of an incomplete frame', async (t) => {
  const framer = new Framer()
  t.same([...framer.push(stream.subarray(0, 17))].length, 1)
  t.equal(framer.buffered(), 3, 'the 14-byte Query is out, 3 bytes of Parse are in')
})

t.test('empty chunks change nothing', async (t) => {
  const framer = new Framer()
  t.same([...framer.push(Buffer.alloc(0))], [])
  t.same([...framer.push(stream.subarray(0, 3))], [])
  t.same([...framer.push(Buffer.alloc(0))], [])
  t.equal(framer.buffered(), 3)
})

t.test('frames are added when pushed, even if the returned iterator is not used', async (t) => {
  const framer = new Framer()
  framer.push(stream.subarray(0, 10))
  const frames = [...framer.push(stream.subarray(10, 14))]
  t.equal(frames.length, 1)
  t.equal(frames[0].body.toString(), 'select 1\0')
})

t.test('in startup mode an SSLRequest and a StartupMessage in one chunk are two untagged frames', async (t) => {
  const ssl = bytes().int32(80877103).untagged()
  const startup = bytes().int32(196608).cstring('user').cstring('alice').raw([0]).untagged()
  const frames = [...new Framer({ mode: 'startup' }).push(Buffer.concat([ssl, startup]))]
  t.same(frames.map((f) => f.tag), [0, 0])
  t.same(frames[0].body, Buffer.from([0x04, 0xd2, 0x16, 0x2f]), 'body is everything after the length')
  t.same(frames[1].body, startup.subarray(4))
})

t.test('switching to tagged mode inside the loop reads the rest of the chunk as tagged messages', async (t) => {
  const startup = bytes().int32(196608).cstring('user').cstring('alice').raw([0]).untagged()
  const framer = new Framer({ mode: 'startup' })
  const seen: Frame[] = []
  for (const f of framer.push(Buffer.concat([startup, stream]))) {
    seen.push(f)
    framer.mode = 'tagged'
  }
  t.equal(seen.length, 9)
  t.equal(seen[0].tag, 0)
  t.same(seen.slice(1).map((f) => ({ tag: f.tag, body: f.body.toString('hex') })), whole)
})

t.test('bytes sent after an SSLRequest, before the answer, show in buffered()', async (t) => {
  const framer = new Framer({ mode: 'startup' })
  const chunk = Buffer.concat([bytes().int32(80877103).untagged(), Buffer.from('\x16\x03\x01')])
  const frames = [...framer.push(chunk)]
  t.equal(frames.length, 1, 'three bytes are not a frame yet')
  t.equal(framer.buffered(), 3)
})

t.test('a declared length above the cap is refused as soon as the header is in, before any allocation', async (t) => {
  const framer = new Framer({ maxLength: 1024 * 1024 })
  const header = bytes().raw('Q').int32(0x7fffffff).body()
  for (let i = 0; i < 4; i++) t.same([...framer.push(header.subarray(i, i + 1))], [], `no decision at byte ${i + 1}`)
  const before = process.memoryUsage().arrayBuffers
  t.throws(() => [...framer.push(header.subarray(4))], { code: 'ERR_PG_FRAME_TOO_LARGE' })
  t.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024, 'memory did not grow')
  t.equal(framer.buffered(), 5)
  t.throws(() => [...framer.push(Buffer.from('select'))], { code: 'ERR_PG_FRAME_TOO_LARGE' }, 'and refuses again if used')
})

t.test('the cap is inclusive: a frame of exactly maxLength passes, one byte more does not', async (t) => {
  const ok = bytes().raw(Buffer.alloc(96)).frame('d')
  t.equal([...new Framer({ maxLength: 100 }).push(ok)].length, 1)
  const tooBig = bytes().raw(Buffer.alloc(97)).frame('d')
  t.throws(() => [...new Framer({ maxLength: 100 }).push(tooBig)], ProtocolError)
})

t.test('a large declared length within the cap allocates nothing until its bytes arrive', async (t) => {
  const framer = new Framer({ maxLength: 0x7fffffff })
  const before = process.memoryUsage().arrayBuffers
  t.same([...framer.push(bytes().raw('d').int32(0x7fffffff).raw('abc').body())], [])
  t.equal(framer.buffered(), 8)
  t.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024, 'nothing allocated for the declared size')
})

t.test('declared lengths below 4 are refused in tagged mode', async (t) => {
  for (let len = 0; len < 4; len++) {
    t.throws(() => [...new Framer().push(bytes().raw('Q').int32(len).body())], { code: 'ERR_PG_FRAME_INVALID' }, `length ${len}`)
  }
  t.same([...new Framer().push(bytes().raw('S').int32(4).body())].map((f) => f.body.length), [0], 'length 4 is an empty body')
})

t.test('lengths with the top bit set are too large, not negative', async (t) => {
  t.throws(() => [...new Framer().push(bytes().raw('Q').int32(-1).body())], { code: 'ERR_PG_FRAME_TOO_LARGE' })
  t.throws(() => [...new Framer({ mode: 'startup' }).push(bytes().int32(0x80000008).body())], { code: 'ERR_PG_FRAME_TOO_LARGE' })
})

t.test('declared lengths below 8 are refused in startup mode, and above the startup cap', async (t) => {
  for (let len = 0; len < 8; len++) {
    t.throws(() => [...new Framer({ mode: 'startup' }).push(bytes().int32(len).body())], { code: 'ERR_PG_FRAME_INVALID' }, `length ${len}`)
  }
  t.throws(() => [...new Framer({ mode: 'startup' }).push(bytes().int32(10001).body())], { code: 'ERR_PG_FRAME_TOO_LARGE' })
  t.throws(() => [...new Framer({ mode: 'startup', maxStartupLength: 100 }).push(bytes().int32(101).body())], { code: 'ERR_PG_FRAME_TOO_LARGE' })
})

t.test('a tagged message read in startup mode is refused by its length, not misread', async (t) => {
  t.throws(() => [...new Framer({ mode: 'startup' }).push(bytes().cstring('select 1').frame('Q'))], { code: 'ERR_PG_FRAME_TOO_LARGE' })
})

t.test('a frame trickled in one byte at a time is held in few buffers', async (t) => {
  const big = bytes().raw(Buffer.alloc(200_000, 7)).frame('d')
  const framer = new Framer()
  const internal = framer as unknown as { chunks: Buffer[] }
  let frames: Frame[] = []
  let most = 0
  for (let i = 0; i < big.length; i++) {
    frames = [...framer.push(big.subarray(i, i + 1))]
    most = Math.max(most, internal.chunks.length)
  }
  t.equal(frames.length, 1)
  t.ok(frames[0].body.equals(big.subarray(5)))
  t.ok(most <= 20, `at most ${most} buffers held`)
  t.equal(framer.buffered(), 0)
})

t.test('large chunks are kept as they are, and a frame spanning them is copied once into a new buffer', async (t) => {
  const big = bytes().raw(Buffer.alloc(100_000, 9)).frame('d')
  const framer = new Framer()
  t.same([...framer.push(big.subarray(0, 50_000))], [])
  const frames = [...framer.push(big.subarray(50_000))]
  t.equal(frames.length, 1)
  t.ok(frames[0].body.equals(big.subarray(5)))
  t.not(frames[0].body.buffer, big.buffer)
})

t.test('bad limits are a programming error and throw TypeError', async (t) => {
  t.throws(() => new Framer({ maxLength: 3 }), TypeError)
  t.throws(() => new Framer({ maxLength: 2 ** 31 }), TypeError)
  t.throws(() => new Framer({ maxLength: 1.5 }), TypeError)
  t.throws(() => new Framer({ maxStartupLength: 7 }), TypeError)
})

t.test("head() tells the next frame's tag and size once its header is in, split anywhere, and drain() hands back what is buffered as it arrived", async (t) => {
  const before = Buffer.concat([bytes().cstring('select 1').frame('Q'), bytes().frame('S')])
  const big = bytes().raw(Buffer.alloc(3000, 0xcd)).frame('D')
  const all = Buffer.concat([before, big, bytes().cstring('SELECT 1').frame('C')])
  let streamed = 0
  for (let i = before.length; i < before.length + big.length; i += 13) {
    for (const j of [1, 2, 3, 4, 5, 200]) {
      const framer = new Framer()
      // `big` passed on from wherever its header is complete and its body is not, as the PostgreSQL session does.
      const out: Buffer[] = []
      let left = 0
      let head: { tag: number, total: number } | undefined
      const tags: string[] = []
      for (const piece of cut(all, [i, i + j])) {
        let c = piece
        if (left > 0) {
          const n = Math.min(left, c.length)
          out.push(c.subarray(0, n))
          left -= n
          c = c.subarray(n)
        }
        framer.add(c)
        for (let f = framer.next(); f !== undefined; f = framer.next()) {
          tags.push(String.fromCharCode(f.tag))
          if (f.tag === 0x44) out.push(...encodeFrame(f))
        }
        const h = framer.head()
        if (h?.tag === 0x44 && left === 0) {
          head = h
          left = h.total - framer.buffered()
          out.push(...framer.drain())
        }
      }
      if (head !== undefined) {
        streamed++
        t.same(head, { tag: 0x44, total: big.length })
        tags.splice(2, 0, 'D')
      }
      if (!Buffer.concat(out).equals(big)) t.fail(`cut at ${i}, ${i + j}: the frame passed on as it arrived`)
      if (tags.join('') !== 'QSDC') t.fail(`cut at ${i}, ${i + j}: ${tags.join('')}`)
    }
  }
  t.ok(streamed > 1000, `${streamed} cuts passed the frame on as it arrived`)
  const capped = new Framer({ maxLength: 100 })
  capped.add(big.subarray(0, 5))
  t.throws(() => capped.head(), { code: 'ERR_PG_FRAME_TOO_LARGE' })
  t.equal(new Framer().head(), undefined)
})
