import t from 'tap'
import {
  Framer, parseStartup, parseQuery, parseParse, parseBind, parseDescribe, parseClose,
  parseExecute, parseFunctionCall, parsePassword, parseSASLInitialResponse, parseEmpty, startupMessage, sslRequest,
  gssencRequest, cancelRequest, passwordMessage, saslInitialResponse, saslResponse, query, terminate,
  type Frame
} from '../../../../src/gateway/pg/protocol/index.js'
import { bytes, refusesTruncation } from './bytes.js'

/** The one frame in `buf`, which must hold exactly one message. */
function only (buf: Buffer, mode: 'startup' | 'tagged' = 'tagged'): Frame {
  const framer = new Framer({ mode })
  const frames = [...framer.push(buf)]
  if (frames.length !== 1 || framer.buffered() !== 0) throw new Error('expected exactly one message')
  return frames[0]
}

function tagOf (buf: Buffer): string {
  return String.fromCharCode(only(buf).tag)
}

t.test('a StartupMessage round-trips its version and parameters', async (t) => {
  const params = { user: 'alice', database: 'app', application_name: 'psql ü', options: '-c search_path=x' }
  const msg = startupMessage(params)
  const parsed = parseStartup(only(msg, 'startup').body)
  t.same(parsed, { kind: 'startup', version: 196608, params })
  t.same(msg, bytes().int32(196608).cstring('user').cstring('alice').cstring('database').cstring('app')
    .cstring('application_name').cstring('psql ü').cstring('options').cstring('-c search_path=x').raw([0]).untagged())
})

t.test('a StartupMessage with no parameters is just the version and the terminator', async (t) => {
  t.same(parseStartup(bytes().int32(196608).raw([0]).body()), { kind: 'startup', version: 196608, params: {} })
})

t.test('startup parameters have no prototype, so __proto__ is an ordinary name', async (t) => {
  const parsed = parseStartup(bytes().int32(196608).cstring('__proto__').cstring('x').cstring('user').cstring('u').raw([0]).body())
  if (parsed.kind !== 'startup') throw new Error('not a startup message')
  t.equal(Object.getPrototypeOf(parsed.params), null)
  t.equal(parsed.params.__proto__, 'x')
  t.same(Object.keys(parsed.params), ['__proto__', 'user'])
})

t.test('protocol 3.x minor versions are returned for the caller to negotiate', async (t) => {
  t.match(parseStartup(startupMessage({ user: 'u' }, (3 << 16) | 2).subarray(4)), { kind: 'startup', version: 196610 })
})

t.test('SSLRequest, GSSENCRequest and CancelRequest round-trip', async (t) => {
  t.same(parseStartup(only(sslRequest(), 'startup').body), { kind: 'ssl' })
  t.same(sslRequest(), Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]))
  t.same(parseStartup(only(gssencRequest(), 'startup').body), { kind: 'gssenc' })
  t.same(parseStartup(only(cancelRequest(4242, 0xdeadbeef), 'startup').body), { kind: 'cancel', pid: 4242, secret: 0xdeadbeef })
  t.equal(cancelRequest(1, 2).length, 16)
})

t.test('unknown request codes and protocol versions are unsupported', async (t) => {
  for (const code of [0, 1, 2 << 16, 4 << 16, (1234 << 16) | 5677, (1234 << 16) | 5681, 0xffffffff]) {
    t.throws(() => parseStartup(bytes().int32(code).raw([0]).body()), { code: 'ERR_PG_PROTOCOL_UNSUPPORTED', sqlstate: '0A000' }, `code ${code}`)
  }
})

t.test('special requests with extra or missing bytes are malformed', async (t) => {
  t.throws(() => parseStartup(bytes().int32(80877103).raw([0]).body()), { code: 'ERR_PG_MESSAGE_INVALID' })
  t.throws(() => parseStartup(bytes().int32(80877102).int32(1).body()), { code: 'ERR_PG_MESSAGE_INVALID' })
  t.throws(() => parseStartup(bytes().int32(80877102).int32(1).int32(2).int32(3).body()), { code: 'ERR_PG_MESSAGE_INVALID' })
})

t.test('a StartupMessage without its terminator, with bytes after it, or with a name and no value is malformed', async (t) => {
  const bad = [
    bytes().int32(196608).cstring('user').cstring('u').body(),
    bytes().int32(196608).cstring('user').cstring('u').raw([0, 0]).body(),
    bytes().int32(196608).cstring('user').raw([0]).body(),
    bytes().int32(196608).cstring('user').body(),
    bytes().int32(196608).body()
  ]
  for (const b of bad) t.throws(() => parseStartup(b), { code: 'ERR_PG_MESSAGE_INVALID', sqlstate: '08P01' })
})

t.test('a startup parameter given twice is refused', async (t) => {
  t.throws(() => parseStartup(bytes().int32(196608).cstring('user').cstring('a').cstring('user').cstring('b').raw([0]).body()),
    { code: 'ERR_PG_MESSAGE_INVALID', message: /given twice/ })
})

t.test('startup parameters beyond the limits are refused', async (t) => {
  const limits = { maxParams: 2, maxNameBytes: 8, maxValueBytes: 8 }
  const params = (p: Record<string, string>): Buffer => startupMessage(p).subarray(4)
  t.ok(parseStartup(params({ a: '1', b: '2' }), limits))
  t.throws(() => parseStartup(params({ a: '1', b: '2', c: '3' }), limits), { message: /more than 2 parameters/ })
  t.ok(parseStartup(params({ abcdefgh: '12345678' }), limits))
  t.throws(() => parseStartup(params({ abcdefghi: '1' }), limits), { message: /name is longer/ })
  t.throws(() => parseStartup(params({ a: '123456789' }), limits), { message: /longer than 8 bytes/ })
  t.throws(() => parseStartup(params({ a: 'éééé€' }), limits), { message: /longer than 8 bytes/ }, 'bytes, not characters')
  const many: Record<string, string> = {}
  for (let i = 0; i < 65; i++) many[`p${i}`] = 'v'
  t.throws(() => parseStartup(params(many)), { message: /more than 64 parameters/ }, 'the default limit')
})

t.test('startupMessage refuses an empty parameter name, which would end the list', async (t) => {
  t.throws(() => startupMessage({ '': 'x' }), TypeError)
  t.throws(() => startupMessage({ user: 'a\0b' }), TypeError)
})

t.test('a Query round-trips its SQL text', async (t) => {
  for (const sql of ['select 1', '', 'select \'ü\'; delete from t', 'x'.repeat(70_000)]) {
    const msg = query(sql)
    t.equal(tagOf(msg), 'Q')
    t.equal(parseQuery(only(msg).body), sql)
  }
})

t.test('a Query with a NUL inside, or invalid UTF-8, is malformed', async (t) => {
  t.throws(() => parseQuery(bytes().cstring('select 1').cstring('drop table t').body()), { code: 'ERR_PG_MESSAGE_INVALID' })
  t.throws(() => parseQuery(bytes().raw([0x73, 0xff, 0xfe, 0]).body()), { code: 'ERR_PG_MESSAGE_INVALID', message: /UTF-8/ })
  t.throws(() => query('select 1\0drop table t'), TypeError, 'and cannot be built')
})

t.test('Parse is read with its name, text and parameter types', async (t) => {
  const body = bytes().cstring('s1').cstring('select $1, $2').int16(2).int32(23).int32(0xfffffffe).body()
  t.same(parseParse(body), { name: 's1', sql: 'select $1, $2', paramTypes: [23, 0xfffffffe] })
  t.same(parseParse(bytes().cstring('').cstring('select 1').int16(0).body()), { name: '', sql: 'select 1', paramTypes: [] })
})

t.test('Bind is read with formats, parameters (null included) and result formats', async (t) => {
  const body = bytes().cstring('p1').cstring('s1')
    .int16(2).int16(0).int16(1)
    .int16(2).int32(3).raw('abc').int32(-1)
    .int16(1).int16(1).body()
  const bind = parseBind(body)
  t.same(bind, { portal: 'p1', statement: 's1', paramFormats: [0, 1], params: [Buffer.from('abc'), null], resultFormats: [1] })
  t.equal(bind.params[0]?.buffer, body.buffer, 'parameter values are views')
  t.same(parseBind(bytes().cstring('').cstring('').int16(0).int16(1).int32(0).int16(0).body()).params, [Buffer.alloc(0)], 'an empty value is not null')
})

t.test('Bind refuses bad format codes, mismatched format counts and negative lengths', async (t) => {
  const base = (formats: number[], n: number, len = 1): Buffer => {
    const b = bytes().cstring('').cstring('').int16(formats.length)
    for (const f of formats) b.int16(f)
    b.int16(n)
    for (let i = 0; i < n; i++) b.int32(len).raw(len > 0 ? 'x'.repeat(len) : '')
    return b.int16(0).body()
  }
  t.ok(parseBind(base([1], 3)), 'one format applies to all')
  t.ok(parseBind(base([0, 1, 0], 3)))
  t.throws(() => parseBind(base([0, 1], 3)), { code: 'ERR_PG_MESSAGE_INVALID', message: /2 parameter formats for 3/ })
  t.throws(() => parseBind(base([2], 1)), { message: /unsupported format code 2/ })
  t.throws(() => parseBind(base([-1], 1)), { message: /unsupported format code -1/ })
  t.throws(() => parseBind(base([], 1, -2)), { message: /invalid parameter length -2/ })
  t.throws(() => parseBind(bytes().cstring('').cstring('').int16(0).int16(0).int16(1).int16(7).body()), { message: /unsupported format code 7/ }, 'result formats too')
})

t.test('Describe and Close name a statement or a portal', async (t) => {
  t.same(parseDescribe(bytes().raw('S').cstring('s1').body()), { kind: 'S', name: 's1' })
  t.same(parseDescribe(bytes().raw('P').cstring('').body()), { kind: 'P', name: '' })
  t.same(parseClose(bytes().raw('S').cstring('s1').body()), { kind: 'S', name: 's1' })
  t.throws(() => parseDescribe(bytes().raw('X').cstring('s1').body()), { code: 'ERR_PG_MESSAGE_INVALID', message: /^Describe: / })
  t.throws(() => parseClose(bytes().raw('p').cstring('s1').body()), { message: /^Close: / })
})

t.test('Execute is read with its portal and row limit', async (t) => {
  t.same(parseExecute(bytes().cstring('').int32(0).body()), { portal: '', maxRows: 0 })
  t.same(parseExecute(bytes().cstring('p').int32(100).body()), { portal: 'p', maxRows: 100 })
  t.same(parseFunctionCall(bytes().int32(-1).int16(0).int16(0).int16(0).body()), { oid: 4294967295, args: [] }, 'an OID is unsigned')
})

t.test('a FunctionCall\'s arguments come with their format: one code for all, one each, or none for text', async (t) => {
  const two = (b: ReturnType<typeof bytes>): ReturnType<typeof bytes> => b.int16(2).int32(4).int32(16400).int32(-1).int16(0)
  t.same(parseFunctionCall(two(bytes().int32(952).int16(1).int16(1)).body()).args, [{ value: Buffer.from([0, 0, 0x40, 0x10]), binary: true }, { value: null, binary: true }])
  t.same(parseFunctionCall(two(bytes().int32(952).int16(2).int16(0).int16(1)).body()).args.map((a) => a.binary), [false, true])
  t.same(parseFunctionCall(bytes().int32(952).int16(0).int16(1).int32(6).raw('262144').int16(0).body()).args, [{ value: Buffer.from('262144'), binary: false }])
  t.throws(() => parseFunctionCall(bytes().int32(952).int16(0).int16(1).int32(6).raw('26').int16(0).body()), { code: 'ERR_PG_MESSAGE_INVALID' }, 'an argument cut short')
})

t.test('a PasswordMessage round-trips', async (t) => {
  const msg = passwordMessage('s3cret ü')
  t.equal(tagOf(msg), 'p')
  t.equal(parsePassword(only(msg).body), 's3cret ü')
})

t.test('SASLInitialResponse and SASLResponse round-trip', async (t) => {
  const first = Buffer.from('n,,n=,r=abc')
  const msg = saslInitialResponse('SCRAM-SHA-256', first)
  t.equal(tagOf(msg), 'p')
  t.same(parseSASLInitialResponse(only(msg).body), { mechanism: 'SCRAM-SHA-256', data: first })
  t.same(parseSASLInitialResponse(bytes().cstring('X').int32(-1).body()), { mechanism: 'X', data: null })
  t.same(only(saslResponse(Buffer.from('c=biws'))).body, Buffer.from('c=biws'))
  t.throws(() => parseSASLInitialResponse(bytes().cstring('X').int32(-2).body()), { code: 'ERR_PG_MESSAGE_INVALID' })
})

t.test('Terminate is an empty message, and parseEmpty refuses a body', async (t) => {
  t.same(terminate(), Buffer.from([0x58, 0, 0, 0, 4]))
  t.doesNotThrow(() => parseEmpty(only(terminate()).body))
  t.throws(() => parseEmpty(Buffer.from([1]), 'Sync'), { code: 'ERR_PG_MESSAGE_INVALID', message: /^Sync: / })
})

t.test('every truncation of every frontend message is a ProtocolError, never a RangeError', async (t) => {
  const cases: Array<[string, (b: Buffer) => unknown, Buffer]> = [
    ['startup', parseStartup, startupMessage({ user: 'alice', database: 'app' }).subarray(4)],
    ['cancel', parseStartup, cancelRequest(1, 2).subarray(4)],
    ['ssl', parseStartup, sslRequest().subarray(4)],
    ['query', parseQuery, only(query('select 1')).body],
    ['parse', parseParse, bytes().cstring('s').cstring('select $1').int16(2).int32(23).int32(25).body()],
    ['bind', parseBind, bytes().cstring('p').cstring('s').int16(1).int16(1).int16(2).int32(3).raw('abc').int32(-1).int16(1).int16(0).body()],
    ['describe', parseDescribe, bytes().raw('S').cstring('s').body()],
    ['close', parseClose, bytes().raw('P').cstring('p').body()],
    ['execute', parseExecute, bytes().cstring('p').int32(5).body()],
    ['function call', parseFunctionCall, bytes().int32(2026).int16(0).int16(0).int16(0).body()],
    ['password', parsePassword, only(passwordMessage('pw')).body],
    ['sasl', parseSASLInitialResponse, only(saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,'))).body]
  ]
  for (const [name, parse, body] of cases) refusesTruncation(t, name, parse, body)
})
