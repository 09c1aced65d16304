import t, { type Test } from 'tap'
import {
  Framer, ProtocolError, parseStartup, parseQuery, parseParse, parseBind, parseDescribe, parseClose,
  parseExecute, parsePassword, parseSASLInitialResponse, parseAuthentication, parseRowDescription,
  parseDataRow, parseCommandComplete, parseErrorFields, parseBackendKeyData, parseParameterStatus,
  parseReadyForQuery, startupMessage, query, dataRow, rowDescription, errorResponse, cancelRequest
} from '../../../../src/gateway/pg/protocol/index.js'
import { bytes, prng } from './bytes.js'

const parsers: Array<[string, (b: Buffer) => unknown]> = [
  ['startup', parseStartup], ['query', parseQuery], ['parse', parseParse], ['bind', parseBind],
  ['describe', parseDescribe], ['close', parseClose], ['execute', parseExecute], ['password', parsePassword],
  ['sasl', parseSASLInitialResponse], ['authentication', parseAuthentication], ['row description', parseRowDescription],
  ['data row', parseDataRow], ['command complete', parseCommandComplete], ['error', parseErrorFields],
  ['backend key data', parseBackendKeyData], ['parameter status', parseParameterStatus], ['ready for query', parseReadyForQuery]
]

// Valid bodies to mutate: random bytes alone rarely get past the first field.
const seeds = [
  startupMessage({ user: 'alice', database: 'app' }).subarray(4),
  cancelRequest(7, 9).subarray(4),
  query('select 1').subarray(5),
  bytes().cstring('s').cstring('select $1').int16(1).int32(23).body(),
  bytes().cstring('').cstring('s').int16(1).int16(0).int16(2).int32(1).raw('1').int32(-1).int16(0).body(),
  bytes().raw('S').cstring('s').body(),
  bytes().cstring('').int32(0).body(),
  bytes().int32(10).cstring('SCRAM-SHA-256').raw([0]).body(),
  rowDescription([{ name: 'a', tableOid: 1, column: 1, typeOid: 23, typeSize: 4, typeMod: -1, format: 0 }]).subarray(5),
  dataRow([Buffer.from('abc'), null]).subarray(5),
  errorResponse({ severity: 'ERROR', code: '42501', message: 'm' }).subarray(5),
  Buffer.from('I')
]

function mutate (rand: () => number, seed: Buffer): Buffer {
  const b = Buffer.from(seed)
  const edits = 1 + Math.floor(rand() * 4)
  for (let i = 0; i < edits && b.length > 0; i++) {
    const at = Math.floor(rand() * b.length)
    const r = rand()
    if (r < 0.5) b[at] = Math.floor(rand() * 256)
    else if (r < 0.7) b[at] = [0, 0xff, 0x7f, 0x80][Math.floor(rand() * 4)]
    else return b.subarray(0, at)
  }
  return b
}

function onlyProtocolErrors (t: Test, what: string, fn: () => unknown): boolean {
  try {
    fn()
    return true
  } catch (err) {
    if (err instanceof ProtocolError) return true
    t.fail(`${what} threw ${String(err)}`)
    return false
  }
}

t.test('random and mutated bodies make every parser throw nothing but ProtocolError', async (t) => {
  const rand = prng(0x5eed)
  let runs = 0
  for (let i = 0; i < 3000; i++) {
    const body = i % 2 === 0
      ? Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)))
      : mutate(rand, seeds[Math.floor(rand() * seeds.length)])
    for (const [name, parse] of parsers) {
      runs++
      if (!onlyProtocolErrors(t, `${name} on ${body.toString('hex')}`, () => parse(body))) return
    }
  }
  t.equal(runs, 3000 * parsers.length)
})

t.test('random streams in random chunks make the framer throw nothing but ProtocolError', async (t) => {
  const rand = prng(0xf4a3e)
  let frames = 0
  for (let i = 0; i < 3000; i++) {
    const framer = new Framer({ mode: rand() < 0.3 ? 'startup' : 'tagged', maxLength: 1 + Math.floor(rand() * 4096) + 3 })
    // Mostly plausible headers (small lengths), sometimes pure noise.
    const parts: Buffer[] = []
    const n = 1 + Math.floor(rand() * 6)
    for (let k = 0; k < n; k++) {
      if (rand() < 0.8) {
        const len = Math.floor(rand() * 40)
        parts.push(bytes().raw([Math.floor(rand() * 256)]).int32(len).raw(Buffer.alloc(Math.max(0, len - 4), 0x61)).body())
      } else {
        parts.push(Buffer.from(Array.from({ length: Math.floor(rand() * 12) }, () => Math.floor(rand() * 256))))
      }
    }
    const stream = Buffer.concat(parts)
    let at = 0
    const ok = onlyProtocolErrors(t, `framer on ${stream.toString('hex')}`, () => {
      while (at < stream.length) {
        const size = 1 + Math.floor(rand() * 16)
        for (const f of framer.push(stream.subarray(at, at + size))) {
          frames++
          for (const [, parse] of parsers) onlyProtocolErrors(t, 'parser on a frame', () => parse(f.body))
          if (rand() < 0.5) framer.mode = 'tagged'
        }
        at += size
      }
    })
    if (!ok) return
  }
  t.ok(frames > 1000, `${frames} frames cut`)
})
