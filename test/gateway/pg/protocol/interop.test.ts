import { createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import pg from 'pg'
import { PGlite } from '@electric-sql/pglite'
import {
  Framer, Writer, parseStartup, parsePassword, parseQuery, parseRowDescription, parseDataRow,
  parseCommandComplete, parseErrorFields, parseReadyForQuery, authenticationCleartextPassword,
  authenticationOk, parameterStatus, backendKeyData, readyForQuery, rowDescription, dataRow,
  commandComplete, errorResponse, noticeResponse, emptyQueryResponse, query, type Frame
} from '../../../../src/gateway/pg/protocol/index.js'

// The codec against real peers: node-postgres as a client of a tiny server built from the
// serializers, and PostgreSQL itself (PGlite) answering the frontend serializers.

function frames (buf: Uint8Array): Frame[] {
  return [...new Framer({ maxLength: 16 * 1024 * 1024 }).push(Buffer.from(buf))]
}

function tags (fs: Frame[]): string {
  return fs.map((f) => String.fromCharCode(f.tag)).join('')
}

t.test('node-postgres connects to, queries and is refused by a server written with the codec', async (t) => {
  const seen: { params?: Record<string, string>, password?: string, sql: string[] } = { sql: [] }
  const serve = (socket: Socket): void => {
    const framer = new Framer({ mode: 'startup' })
    socket.on('error', () => {})
    socket.on('data', (chunk) => {
      for (const f of framer.push(chunk)) {
        if (f.tag === 0) {
          const req = parseStartup(f.body)
          if (req.kind === 'ssl') { socket.write('N'); continue }
          if (req.kind !== 'startup') { socket.destroy(); return }
          seen.params = { ...req.params }
          framer.mode = 'tagged'
          socket.write(authenticationCleartextPassword())
        } else if (f.tag === 0x70) {
          seen.password = parsePassword(f.body)
          socket.write(Buffer.concat([
            authenticationOk(), parameterStatus('server_version', '17.0'), parameterStatus('client_encoding', 'UTF8'),
            parameterStatus('standard_conforming_strings', 'on'), backendKeyData(4242, 0x9abcdef0), readyForQuery('I')
          ]))
        } else if (f.tag === 0x51) {
          const sql = parseQuery(f.body)
          seen.sql.push(sql)
          if (sql === '') {
            socket.write(Buffer.concat([emptyQueryResponse(), readyForQuery('I')]))
          } else if (sql.startsWith('deny')) {
            socket.write(Buffer.concat([errorResponse({ severity: 'ERROR', code: '42501', message: 'denied by policy', detail: 'd', hint: 'h' }), readyForQuery('I')]))
          } else {
            socket.write(Buffer.concat([
              noticeResponse({ severity: 'NOTICE', code: '00000', message: 'rows are masked' }),
              rowDescription([
                { name: 'id', tableOid: 0, column: 0, typeOid: 23, typeSize: 4, typeMod: -1, format: 0 },
                { name: 'email', tableOid: 0, column: 0, typeOid: 25, typeSize: -1, typeMod: -1, format: 0 }
              ]),
              dataRow([Buffer.from('1'), Buffer.from('a***@example.com')]),
              dataRow([Buffer.from('2'), null]),
              commandComplete('SELECT 2'),
              readyForQuery('I')
            ]))
          }
        } else if (f.tag === 0x58) {
          socket.end()
        }
      }
    })
  }
  const server = createServer(serve)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const client = new pg.Client({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, user: 'alice', database: 'app', password: 'pw ü', application_name: 'interop' })
  const notices: string[] = []
  client.on('notice', (n) => notices.push(n.message ?? ''))
  await client.connect()
  t.match(seen.params, { user: 'alice', database: 'app', application_name: 'interop', client_encoding: 'UTF8' })
  t.equal(seen.password, 'pw ü')
  const res = await client.query('select id, email from users')
  t.same(res.rows, [{ id: 1, email: 'a***@example.com' }, { id: 2, email: null }])
  t.equal(res.command, 'SELECT')
  t.equal(res.rowCount, 2)
  t.same(notices, ['rows are masked'])
  const err = await client.query('deny me').then(() => undefined, (e: unknown) => e)
  t.match(err, { severity: 'ERROR', code: '42501', message: 'denied by policy', detail: 'd', hint: 'h' })
  t.equal((await client.query('')).rowCount, null, 'an empty query is answered')
  await client.end()
})

t.test('PostgreSQL (PGlite) answers the serialized messages, and its answers parse', async (t) => {
  const db = await PGlite.create()
  t.teardown(() => db.close())

  const simple = frames(await db.execProtocolRaw(query("select 1 as n, null::text as t, 'ü'::text as u; select 1/0")))
  t.equal(tags(simple), 'TDCEZ')
  t.same(parseRowDescription(simple[0].body).map((f) => [f.name, f.typeOid, f.typeSize, f.format]), [['n', 23, 4, 0], ['t', 25, -1, 0], ['u', 25, -1, 0]])
  t.same(parseDataRow(simple[1].body), [Buffer.from('1'), null, Buffer.from('ü')])
  t.equal(parseCommandComplete(simple[2].body), 'SELECT 1')
  t.match(parseErrorFields(simple[3].body), { S: 'ERROR', V: 'ERROR', C: '22012', M: 'division by zero' })
  t.equal(parseReadyForQuery(simple[4].body), 'I')

  await db.exec('create table people (id int primary key, email text)')
  const extended = frames(await db.execProtocolRaw(Buffer.concat([
    new Writer().cstring('ins').cstring('insert into people values ($1, $2) returning *').int16(2).uint32(23).uint32(25).frame(0x50),
    new Writer().cstring('').cstring('ins').int16(1).int16(0).int16(2).int32(1).bytes(Buffer.from('7')).int32(-1).int16(1).int16(0).frame(0x42),
    new Writer().byte(0x50).cstring('').frame(0x44),
    new Writer().cstring('').int32(0).frame(0x45),
    new Writer().frame(0x53)
  ])))
  t.equal(tags(extended), '12TDCZ')
  t.same(parseDataRow(extended[3].body), [Buffer.from('7'), null])
  t.equal(parseCommandComplete(extended[4].body), 'INSERT 0 1')

  const rows = frames(await db.execProtocolRaw(query('select id, email from people')))
  const rewritten = dataRow(parseDataRow(rows[1].body).map((v, i) => i === 1 ? Buffer.from('masked') : v))
  t.same(parseDataRow(frames(rewritten)[0].body), [Buffer.from('7'), Buffer.from('masked')])
})
