import { randomBytes, randomInt } from 'node:crypto'
import t from 'tap'
import { Framer, type Frame } from '../../../../src/gateway/pg/protocol/index.js'
import { encodeFrame } from '../../../../src/gateway/pg/protocol/framer.js'
import { Passthrough } from '../../../../src/gateway/pg/protocol/passthrough.js'
import { bytes } from './bytes.js'

/** A stream of `n` tagged frames of random sizes (empty up to 9 KiB, across the framer's 4 KiB copy threshold). */
function frames (n: number): Buffer[] {
  return Array.from({ length: n }, () => bytes().raw(randomBytes(randomInt(0, 3) === 0 ? 0 : randomInt(1, 9000))).frame(String.fromCharCode(randomInt(0x41, 0x5b))))
}

/** Cuts `b` at random places, sometimes into single bytes. */
function chunks (b: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < b.length;) {
    const n = randomInt(0, 4) === 0 ? 1 : randomInt(1, 12000)
    out.push(b.subarray(at, at + n))
    at += n
  }
  return out
}

/** Frames through a framer and a Passthrough per chunk, replacing each frame `replace` picks; what would go on the wire. */
function relay (input: Buffer, replace: (f: Frame, i: number) => Buffer[] | undefined): Buffer {
  const framer = new Framer({ maxLength: 1 << 20 })
  const out: Buffer[] = []
  let i = 0
  for (const c of chunks(input)) {
    const pass = new Passthrough(c, framer.buffered())
    framer.add(c)
    for (let f = framer.next(); f !== undefined; f = framer.next()) {
      const r = replace(f, i++)
      if (r === undefined) pass.keep(f)
      else pass.replace(f, r)
    }
    out.push(...pass.take())
  }
  return Buffer.concat(out)
}

t.test('frames kept go on byte for byte, however the stream is cut', async (t) => {
  for (let round = 0; round < 30; round++) {
    const input = Buffer.concat(frames(randomInt(1, 40)))
    t.ok(relay(input, () => undefined).equals(input), `round ${round}`)
  }
})

t.test('replaced and dropped frames take their place in order, the rest go on unchanged', async (t) => {
  for (let round = 0; round < 30; round++) {
    const parts = frames(randomInt(1, 40))
    const choice = parts.map(() => randomInt(0, 4))
    const by = (i: number): Buffer[] => choice[i] === 0 ? [] : choice[i] === 1 ? [Buffer.from(`<${i}>`), Buffer.from('!')] : []
    const expected = Buffer.concat(parts.flatMap((p, i) => choice[i] <= 1 ? by(i) : [p]))
    t.ok(relay(Buffer.concat(parts), (_f, i) => choice[i] <= 1 ? by(i) : undefined).equals(expected), `round ${round}`)
  }
})

t.test('without a chunk every frame is encoded again', async (t) => {
  const framer = new Framer()
  const input = Buffer.concat(frames(5))
  framer.add(input)
  const pass = new Passthrough(undefined)
  for (let f = framer.next(); f !== undefined; f = framer.next()) pass.keep(f)
  t.ok(Buffer.concat(pass.take()).equals(input))
  t.same(pass.take(), [], 'take starts over')
  const one: Frame = { tag: 0x51, body: Buffer.from('x\0') }
  t.same(Buffer.concat(encodeFrame(one)), bytes().raw('x\0').frame('Q'))
})
