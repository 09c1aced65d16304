import t from 'tap'
import {
  Framer, parseAuthentication, parseSASLMechanisms, parseRowDescription, parseDataRow,
  parseCommandComplete, commandRows, parseErrorFields, parseBackendKeyData, parseParameterStatus, parseReadyForQuery,
  authenticationOk, authenticationCleartextPassword, parameterStatus, backendKeyData, readyForQuery,
  errorResponse, noticeResponse, rowDescription, dataRow, commandComplete, emptyQueryResponse,
  negotiateProtocolVersion, type Frame, type FieldDescription
} from '../../../../src/gateway/pg/protocol/index.js'
import { bytes, refusesTruncation } from './bytes.js'

function only (buf: Buffer): Frame {
  const framer = new Framer()
  const frames = [...framer.push(buf)]
  if (frames.length !== 1 || framer.buffered() !== 0) throw new Error('expected exactly one message')
  return frames[0]
}

function tagOf (buf: Buffer): string {
  return String.fromCharCode(only(buf).tag)
}

const fields: FieldDescription[] = [
  { name: 'id', tableOid: 16384, column: 1, typeOid: 23, typeSize: 4, typeMod: -1, format: 0 },
  { name: 'email ü', tableOid: 0xfffffff0, column: 2, typeOid: 25, typeSize: -1, typeMod: -1, format: 1 },
  { name: '?column?', tableOid: 0, column: 0, typeOid: 1043, typeSize: -1, typeMod: 68, format: 0 }
]

t.test('AuthenticationOk and AuthenticationCleartextPassword round-trip', async (t) => {
  t.same(authenticationOk(), Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]))
  t.same(parseAuthentication(only(authenticationOk()).body), { type: 0, data: Buffer.alloc(0) })
  t.equal(tagOf(authenticationCleartextPassword()), 'R')
  t.same(parseAuthentication(only(authenticationCleartextPassword()).body), { type: 3, data: Buffer.alloc(0) })
})

t.test('Authentication requests are read with the data each type carries', async (t) => {
  t.same(parseAuthentication(bytes().int32(5).raw([1, 2, 3, 4]).body()), { type: 5, data: Buffer.from([1, 2, 3, 4]) })
  const sasl = parseAuthentication(bytes().int32(10).cstring('SCRAM-SHA-256-PLUS').cstring('SCRAM-SHA-256').raw([0]).body())
  t.equal(sasl.type, 10)
  t.same(parseSASLMechanisms(sasl.data), ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'])
  t.same(parseAuthentication(bytes().int32(11).raw('r=abc,s=xyz,i=4096').body()), { type: 11, data: Buffer.from('r=abc,s=xyz,i=4096') })
  t.same(parseAuthentication(bytes().int32(12).raw('v=proof').body()), { type: 12, data: Buffer.from('v=proof') })
  t.same(parseAuthentication(bytes().int32(7).body()), { type: 7, data: Buffer.alloc(0) })
})

t.test('malformed or unknown Authentication requests are refused', async (t) => {
  const bad = [
    bytes().int32(0).raw([0]).body(),
    bytes().int32(3).raw('x').body(),
    bytes().int32(5).raw([1, 2, 3]).body(),
    bytes().int32(5).raw([1, 2, 3, 4, 5]).body(),
    bytes().int32(10).raw([0]).body(),
    bytes().int32(10).cstring('SCRAM-SHA-256').body(),
    bytes().int32(10).cstring('SCRAM-SHA-256').raw([0, 1]).body(),
    bytes().int32(2).body(),
    bytes().int32(6).body(),
    bytes().int32(-1).body(),
    bytes().raw([0, 0]).body()
  ]
  for (const b of bad) t.throws(() => parseAuthentication(b), { code: 'ERR_PG_MESSAGE_INVALID' }, b.toString('hex'))
})

t.test('ParameterStatus round-trips', async (t) => {
  const msg = parameterStatus('server_version', '17.2')
  t.equal(tagOf(msg), 'S')
  t.same(parseParameterStatus(only(msg).body), { name: 'server_version', value: '17.2' })
})

t.test('BackendKeyData round-trips 32-bit unsigned values', async (t) => {
  const msg = backendKeyData(123456, 0xfedcba98)
  t.equal(tagOf(msg), 'K')
  t.same(parseBackendKeyData(only(msg).body), { pid: 123456, secret: 0xfedcba98 })
  t.throws(() => backendKeyData(-1, 0), TypeError)
  t.throws(() => parseBackendKeyData(bytes().int32(1).int32(2).int32(3).body()), { code: 'ERR_PG_MESSAGE_INVALID' }, 'a protocol 3.2 long key is not 3.0')
})

t.test('ReadyForQuery round-trips each transaction status and refuses others', async (t) => {
  for (const s of ['I', 'T', 'E'] as const) {
    t.equal(tagOf(readyForQuery(s)), 'Z')
    t.equal(parseReadyForQuery(only(readyForQuery(s)).body), s)
  }
  t.throws(() => parseReadyForQuery(Buffer.from('X')), { code: 'ERR_PG_MESSAGE_INVALID' })
  t.throws(() => readyForQuery('X' as 'I'), TypeError)
})

t.test('ErrorResponse carries S, V, C, M and the optional D and H, ending with a zero byte', async (t) => {
  const msg = errorResponse({ severity: 'FATAL', code: '28000', message: 'access denied', detail: 'token revoked', hint: 'ask again' })
  t.equal(tagOf(msg), 'E')
  t.same(only(msg).body, bytes().raw('S').cstring('FATAL').raw('V').cstring('FATAL').raw('C').cstring('28000')
    .raw('M').cstring('access denied').raw('D').cstring('token revoked').raw('H').cstring('ask again').raw([0]).body())
  t.same(parseErrorFields(only(msg).body), { S: 'FATAL', V: 'FATAL', C: '28000', M: 'access denied', D: 'token revoked', H: 'ask again' })
  t.same(parseErrorFields(only(errorResponse({ severity: 'ERROR', code: '42501', message: 'no' })).body), { S: 'ERROR', V: 'ERROR', C: '42501', M: 'no' })
})

t.test('NoticeResponse is an ErrorResponse with another tag', async (t) => {
  const msg = noticeResponse({ severity: 'WARNING', code: '01000', message: 'careful' })
  t.equal(tagOf(msg), 'N')
  t.same(parseErrorFields(only(msg).body), { S: 'WARNING', V: 'WARNING', C: '01000', M: 'careful' })
})

t.test('a NUL in an error message cannot inject further fields', async (t) => {
  const msg = errorResponse({ severity: 'ERROR', code: '42501', message: 'denied: x\0Sinjected', detail: 'a\0b' })
  const f = parseErrorFields(only(msg).body)
  t.equal(f.M, 'denied: x\uFFFDSinjected')
  t.equal(f.D, 'a\uFFFDb')
  t.equal(f.S, 'ERROR')
})

t.test('an invalid SQLSTATE is a programming error', async (t) => {
  for (const code of ['2800', '280000', '28p01', '']) t.throws(() => errorResponse({ severity: 'ERROR', code, message: 'm' }), TypeError)
})

t.test('error fields from the upstream are read by letter; unknown letters kept, repeats keep the last', async (t) => {
  const body = bytes().raw('S').cstring('ERROR').raw('C').cstring('23505').raw('P').cstring('12').raw('n').cstring('users_pkey').raw('C').cstring('XX000').raw([0]).body()
  t.same(parseErrorFields(body), { S: 'ERROR', C: 'XX000', P: '12', n: 'users_pkey' })
  t.same(parseErrorFields(Buffer.from([0])), {})
  t.throws(() => parseErrorFields(bytes().raw('S').cstring('ERROR').body()), { code: 'ERR_PG_MESSAGE_INVALID' }, 'missing final zero')
  t.throws(() => parseErrorFields(bytes().raw('S').cstring('ERROR').raw([0, 0]).body()), { code: 'ERR_PG_MESSAGE_INVALID' }, 'bytes after it')
})

t.test('RowDescription round-trips every field attribute', async (t) => {
  const msg = rowDescription(fields)
  t.equal(tagOf(msg), 'T')
  t.same(parseRowDescription(only(msg).body), fields)
  t.same(parseRowDescription(only(rowDescription([])).body), [])
})

t.test('RowDescription from the wire is read field by field', async (t) => {
  const body = bytes().int16(1).cstring('n').int32(0).int16(0).int32(20).int16(8).int32(-1).int16(1).body()
  t.same(parseRowDescription(body), [{ name: 'n', tableOid: 0, column: 0, typeOid: 20, typeSize: 8, typeMod: -1, format: 1 }])
})

t.test('DataRow round-trips values, empty values and nulls', async (t) => {
  const values = [Buffer.from('42'), Buffer.alloc(0), null, Buffer.from([0, 1, 2, 255]), Buffer.alloc(70_000, 1)]
  const msg = dataRow(values)
  t.equal(tagOf(msg), 'D')
  t.same(parseDataRow(only(msg).body), values)
  t.same(parseDataRow(only(dataRow([])).body), [])
  t.same(dataRow([Buffer.from('a'), null]), bytes().int16(2).int32(1).raw('a').int32(-1).frame('D'))
})

t.test('a DataRow rewritten with longer, shorter and null values has every length recomputed', async (t) => {
  const original = dataRow([Buffer.from('alice@example.com'), Buffer.from('1'), null, Buffer.from('secret')])
  const values = parseDataRow(only(original).body)
  values[0] = Buffer.from('a***@example.com — masked, and longer than before')
  values[1] = null
  values[2] = Buffer.from('was null')
  values[3] = Buffer.alloc(0)
  const rewritten = dataRow(values)
  t.equal(rewritten.readInt32BE(1), rewritten.length - 1, 'message length')
  const again = parseDataRow(only(rewritten).body)
  t.same(again, values)
  t.equal(again[0]?.toString(), 'a***@example.com — masked, and longer than before')
  const shrunk = dataRow(again.map((v) => v === null ? null : v.subarray(0, 1)))
  t.same(parseDataRow(only(shrunk).body), [Buffer.from('a'), null, Buffer.from('w'), Buffer.alloc(0)])
})

t.test('a DataRow rewrite leaves the frames around it intact', async (t) => {
  const stream = Buffer.concat([rowDescription(fields.slice(0, 2)), dataRow([Buffer.from('1'), Buffer.from('x')]), commandComplete('SELECT 1'), readyForQuery('I')])
  const out: Buffer[] = []
  for (const f of new Framer().push(stream)) {
    if (f.tag === 0x44) {
      const v = parseDataRow(f.body)
      v[1] = Buffer.from('masked value')
      out.push(dataRow(v))
    } else {
      out.push(bytes().raw(f.body).frame(f.tag))
    }
  }
  const frames = [...new Framer().push(Buffer.concat(out))]
  t.same(frames.map((f) => String.fromCharCode(f.tag)), ['T', 'D', 'C', 'Z'])
  t.same(parseDataRow(frames[1].body), [Buffer.from('1'), Buffer.from('masked value')])
  t.equal(parseCommandComplete(frames[2].body), 'SELECT 1')
})

t.test('DataRow lengths below -1 or past the end are refused', async (t) => {
  t.throws(() => parseDataRow(bytes().int16(1).int32(-2).body()), { code: 'ERR_PG_MESSAGE_INVALID' })
  t.throws(() => parseDataRow(bytes().int16(1).int32(5).raw('abc').body()), { code: 'ERR_PG_MESSAGE_INVALID', message: /truncated/ })
  t.throws(() => parseDataRow(bytes().int16(2).int32(1).raw('a').body()), { code: 'ERR_PG_MESSAGE_INVALID' }, 'fewer columns than counted')
  t.throws(() => parseDataRow(bytes().int16(1).int32(1).raw('ab').body()), { code: 'ERR_PG_MESSAGE_INVALID' }, 'more bytes than counted')
})

t.test('commandRows reads the count a CommandComplete tag ends with, as the tag would parse', async (t) => {
  const tags = ['SELECT 1', 'INSERT 0 5', 'UPDATE 0', 'DELETE 1234567', 'COPY 007', 'BEGIN', 'COMMIT', '', '1', 'SELECT', 'FETCH 9007199254740991',
    'FETCH 9007199254740993', 'MOVE 123456789012345678', 'SELECT 12a', 'SELECT -1', 'A 1 2']
  for (const tag of tags) {
    const n = Number(tag.slice(tag.lastIndexOf(' ') + 1))
    t.equal(commandRows(only(commandComplete(tag)).body), Number.isSafeInteger(n) && n >= 0 ? n : 0, tag)
  }
  t.throws(() => commandRows(Buffer.from('SELECT 1')), { code: 'ERR_PG_MESSAGE_INVALID', message: /terminator/ })
  t.throws(() => commandRows(Buffer.alloc(0)), { code: 'ERR_PG_MESSAGE_INVALID' })
})

t.test('CommandComplete and EmptyQueryResponse round-trip', async (t) => {
  t.equal(tagOf(commandComplete('INSERT 0 1')), 'C')
  t.equal(parseCommandComplete(only(commandComplete('INSERT 0 1')).body), 'INSERT 0 1')
  t.same(emptyQueryResponse(), Buffer.from([0x49, 0, 0, 0, 4]))
})

t.test('NegotiateProtocolVersion names the newest minor version and the unrecognized options', async (t) => {
  t.same(negotiateProtocolVersion(0, ['_pq_.foo']), bytes().int32(196608).int32(1).cstring('_pq_.foo').frame('v'))
  t.throws(() => negotiateProtocolVersion(65536, []), TypeError)
})

t.test('every truncation of every backend message is a ProtocolError, never a RangeError', async (t) => {
  const cases: Array<[string, (b: Buffer) => unknown, Buffer]> = [
    ['authentication ok', parseAuthentication, only(authenticationOk()).body],
    ['authentication md5', parseAuthentication, bytes().int32(5).raw('salt').body()],
    ['authentication sasl', parseAuthentication, bytes().int32(10).cstring('SCRAM-SHA-256').raw([0]).body()],
    ['row description', parseRowDescription, only(rowDescription(fields)).body],
    ['data row', parseDataRow, only(dataRow([Buffer.from('abc'), null, Buffer.alloc(0)])).body],
    ['command complete', parseCommandComplete, only(commandComplete('SELECT 1')).body],
    ['error', parseErrorFields, only(errorResponse({ severity: 'ERROR', code: '42501', message: 'm', detail: 'd' })).body],
    ['backend key data', parseBackendKeyData, only(backendKeyData(1, 2)).body],
    ['parameter status', parseParameterStatus, only(parameterStatus('a', 'b')).body],
    ['ready for query', parseReadyForQuery, only(readyForQuery('T')).body]
  ]
  for (const [name, parse, body] of cases) refusesTruncation(t, name, parse, body)
})
