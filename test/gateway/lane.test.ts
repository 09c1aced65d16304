import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import type { Lane } from '../../src/gateway/http/lane.js'
import { exchangeToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'
import { createTarget, startTestGateway, startUpstream } from '../helpers/gateway.js'

// The HTTP gateway's bare-socket lane (src/gateway/http/lane.ts) and its hand-off to node:http,
// seen from an agent's socket. http.test.ts covers what is checked, refused and recorded.
const b = await startTestBroker()
const up = await startUpstream()
const gw = await startTestGateway(b)
t.teardown(async () => { await gw.close(); await up.close(); await b.close() })
const client = await seedContractor(b, ['api:*', 'any:*', 'stall:*', 'echo:*'])
await createTarget(b, gw, { name: 'api', kind: 'http', upstream: `${up.url}/base`, headers: { Authorization: 'Bearer upstream-secret-value-42' } })
const token = (await exchangeToken(b, await rootToken(b, client), { actor: 'build', scope: 'api:*' })).body.access_token
const url = new URL(gw.url)

/** A connection to the gateway that reads what comes back as text. */
async function open (): Promise<{ s: Socket, text: () => string, until: (re: RegExp) => Promise<string>, closed: Promise<unknown> }> {
  const s = connect(Number(url.port), url.hostname)
  await once(s, 'connect')
  let text = ''
  s.on('data', (d) => { text += d.toString('latin1') })
  s.on('error', () => {})
  const closed = once(s, 'close')
  return {
    s,
    text: () => text,
    closed,
    until: async (re) => {
      const started = Date.now()
      while (!re.test(text) && Date.now() - started < 3000 && !s.destroyed) await new Promise((resolve) => setTimeout(resolve, 5))
      return text
    }
  }
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\n${extra}\r\n`

t.test('requests on one kept connection each get a whole answer, in the framing they need', async (t) => {
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  c.s.write(get('/api/one'))
  await c.until(/"url":"\/base\/one"/)
  c.s.write(`HEAD /api/two HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\n\r\n`)
  await c.until(/HTTP\/1.1 200 OK[^]*HTTP\/1.1 200 OK[^]*\r\n\r\n/)
  c.s.write(get('/api/three'))
  const text = await c.until(/"url":"\/base\/three"/)
  const answers = text.split(/(?=HTTP\/1.1 )/)
  t.equal(answers.length, 3, 'three answers on one connection')
  t.match(answers[0], /^HTTP\/1.1 200 OK\r\n[^]*\r\nconnection: keep-alive\r\nkeep-alive: timeout=65\r\n/, 'kept, for the server\'s keep-alive time')
  t.match(answers[0], /\r\ndate: [A-Z][a-z]{2}, /)
  t.notMatch(answers[1], /\r\n\r\n./, 'HEAD: no body')
  t.notMatch(text, /upstream-secret/, 'the credential never comes back')
})

t.test('Connection: close gets its answer, then the connection ends', async (t) => {
  const c = await open()
  c.s.write(get('/api/last', 'Connection: close\r\n'))
  await c.closed
  t.match(c.text(), /^HTTP\/1.1 200 OK\r\n[^]*connection: close\r\n[^]*"url":"\/base\/last"/)
})

t.test('pipelined requests are answered in the order sent', async (t) => {
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  c.s.write(get('/api/p1') + get('/api/p2') + get('/api/p3'))
  const text = await c.until(/p3/)
  t.match(text, /\/base\/p1[^]*\/base\/p2[^]*\/base\/p3/)
})

t.test('what the lane does not take goes to node:http with every byte, on the same connection', async (t) => {
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  c.s.write(get('/api/before'))
  await c.until(/\/base\/before/)
  // A head in two writes (the lane waits for the rest), then a POST with a chunked body: node:http serves the connection from here.
  const head = get('/api/split')
  c.s.write(head.slice(0, 20))
  await new Promise((resolve) => setTimeout(resolve, 30))
  c.s.write(head.slice(20))
  await c.until(/\/base\/split/)
  c.s.write(`POST /api/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
  await c.until(/\/base\/upload/)
  c.s.write(get('/api/after'))
  const text = await c.until(/\/base\/after/)
  t.match(text, /"method":"POST","url":"\/base\/upload","bodyBytes":5/, 'the body reached the upstream whole')
  const answers = text.split(/(?=HTTP\/1.1 )/)
  t.equal(answers.length, 4)
  t.match(answers[3], /\r\nConnection: keep-alive\r\n/, 'node:http answers from the hand-off on (its own header case)')
})

t.test('a request with a Content-Length body stays on the lane: the body goes up whole, whatever pieces it comes in, and so do the requests after it', async (t) => {
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  const post = (path: string, body: string, extra = ''): string => `POST ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`
  // The head alone, then the body in two writes, the second carrying the next request.
  const first = post('/api/one', 'hello world')
  c.s.write(first.slice(0, first.indexOf('hello')))
  await new Promise((resolve) => setTimeout(resolve, 30))
  c.s.write('hello')
  await new Promise((resolve) => setTimeout(resolve, 30))
  c.s.write(' world' + post('/api/two', 'x'.repeat(70_000)) + get('/api/three'))
  const text = await c.until(/\/base\/three/)
  const answers = text.split(/(?=HTTP\/1.1 )/)
  t.equal(answers.length, 3, 'three answers on one connection')
  t.match(answers[0], /"method":"POST","url":"\/base\/one","bodyBytes":11/)
  t.match(answers[1], /"method":"POST","url":"\/base\/two","bodyBytes":70000/)
  t.match(answers[2], /"method":"GET","url":"\/base\/three"/)
  for (const a of answers) t.match(a, /\r\nconnection: keep-alive\r\nkeep-alive: timeout=65\r\n/, 'answered by the lane')
})

t.test('a request refused before its body was read: kept when the whole body had come, the request behind it served; closed when part is still to come', async (t) => {
  const before = up.seen.length
  const whole = await open()
  t.teardown(() => { whole.s.destroy() })
  whole.s.write(`POST /api/refused HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello${get('/api/behind')}`)
  const text = await whole.until(/\/base\/behind/)
  t.match(text, /^HTTP\/1.1 401 Unauthorized\r\n[^]*\r\nconnection: keep-alive\r\n[^]*HTTP\/1.1 200 OK\r\n/, 'refused, the connection kept, the next request served')
  t.same(up.seen.slice(before).map((r) => r.url), ['/base/behind'], 'only the allowed request went up')
  const part = await open()
  part.s.write(`POST /api/refused HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\nhello`)
  await part.closed
  t.match(part.text(), /^HTTP\/1.1 401 Unauthorized\r\n[^]*\r\nconnection: close\r\n/, 'refused, and the connection closed: where the next request starts is not known')
})

t.test('an answer that keeps the connection before the whole body came (the gateway\'s own endpoints read none): the rest of the body is dropped and the request after it served, as node:http does', async (t) => {
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  c.s.write('POST /_lineage/healthz HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nhello')
  await c.until(/"ok":true/)
  // The rest of the body, then the next request, once the answer (keep-alive) has come.
  c.s.write(`world${get('/api/after-healthz')}`)
  const text = await c.until(/\/base\/after-healthz/)
  const answers = text.split(/(?=HTTP\/1.1 )/)
  t.equal(answers.length, 2, 'both answered on the one connection')
  t.match(answers[0], /^HTTP\/1.1 200 OK\r\n[^]*\r\nconnection: keep-alive\r\n/)
  t.match(answers[1], /^HTTP\/1.1 200 OK\r\n[^]*"method":"GET","url":"\/base\/after-healthz"/, 'the body\'s bytes were not read as a request')
  t.notOk(c.s.destroyed, 'the connection stays')
})

t.test('a body goes up byte for byte, held whole or streamed, and one holding a method override is refused either way', async (t) => {
  // An upstream that answers with a digest of the body it was sent, and the Content-Length it was told.
  const echo = createHttpServer((req, res) => {
    const h = createHash('sha256')
    let n = 0
    req.on('data', (d: Buffer) => { h.update(d); n += d.length })
    req.on('end', () => { res.end(JSON.stringify({ length: req.headers['content-length'], n, sha: h.digest('hex') })) })
  })
  echo.listen(0, '127.0.0.1')
  await once(echo, 'listening')
  t.teardown(() => { echo.close() })
  await createTarget(b, gw, { name: 'echo', kind: 'http', upstream: `http://127.0.0.1:${(echo.address() as AddressInfo).port}`, headers: {}, policy: { rules: [{ effect: 'deny', methods: ['DELETE'], paths: ['/admin/*'] }] } })
  const echoToken = (await exchangeToken(b, await rootToken(b, client), { actor: 'build', scope: 'echo:*' })).body.access_token
  const head = (n: number): string => `POST /echo/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${echoToken}\r\nContent-Length: ${n}\r\n\r\n`
  const bodies = [Buffer.from('{"a":1}'), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.alloc(300_000, 7)]
  for (const body of bodies) {
    for (const whole of [true, false]) {
      const c = await open()
      if (whole) c.s.write(Buffer.concat([Buffer.from(head(body.length)), body]))
      else {
        c.s.write(head(body.length))
        await new Promise((resolve) => setTimeout(resolve, 20))
        c.s.write(body)
      }
      const text = await c.until(/\}$/)
      c.s.destroy()
      t.match(text, new RegExp(`^HTTP/1.1 200 [^]*\r\nconnection: keep-alive\r\n[^]*"length":"${body.length}","n":${body.length},"sha":"${createHash('sha256').update(body).digest('hex')}"`), `${body.length} bytes, ${whole ? 'with the head' : 'after it'}`)
    }
  }
  // Each body whole with the head, then streamed in two pieces split at each of `at`. A line end
  // dropped from inside an ISO 2022 escape sequence leaves one whole, itself dropped: `_method`.
  const split = '--b\r\nContent-Disposition: form-data; name="_\x1b\r\n(Bmethod"\r\n\r\nDELETE\r\n--b--\r\n'
  const overrides: Array<[string, number[]]> = [['name=x&%5Fmethod=DELETE', [0]], [split, [split.indexOf('\n(B'), split.indexOf('(B')]]]
  for (const [body, at] of overrides) {
    for (const cut of [undefined, ...at]) {
      const c = await open()
      if (cut === undefined) c.s.write(head(body.length) + body, 'latin1')
      else {
        c.s.write(head(body.length) + body.slice(0, cut), 'latin1')
        await new Promise((resolve) => setTimeout(resolve, 20))
        c.s.write(body.slice(cut), 'latin1')
      }
      const text = await c.until(/\}$/)
      c.s.destroy()
      t.match(text, /^HTTP\/1.1 400 [^]*_method field in the body is refused/, `${JSON.stringify(body.slice(0, 60))} refused, the body ${cut === undefined ? 'with the head' : `after it, split at ${cut}`}`)
    }
  }
})

t.test('Expect: 100-continue stays on the lane: 100 once the request is allowed, then its body; a refusal instead of 100', async (t) => {
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  c.s.write(`PUT /api/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nExpect: 100-Continue\r\nContent-Length: 11\r\n\r\n`)
  t.match(await c.until(/\r\n\r\n/), /^HTTP\/1.1 100 Continue\r\n\r\n$/, 'invited to send the body')
  c.s.write('hello world')
  const text = await c.until(/bodyBytes/)
  t.match(text, /HTTP\/1.1 200 OK\r\n[^]*\r\nconnection: keep-alive\r\n[^]*"method":"PUT","url":"\/base\/upload","bodyBytes":11/, 'the body went up, answered on the lane')
  const refused = await open()
  refused.s.write('PUT /api/upload HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n')
  await refused.closed
  t.match(refused.text(), /^HTTP\/1.1 401 Unauthorized\r\n[^]*\r\nconnection: close\r\n/, 'no 100: the refusal is the answer, and the unsent body ends the connection')
  t.notMatch(refused.text(), /100 Continue/)
})

t.test('an answer to Expect: 100-continue sent without the 100 ends the connection, as node:http ends it: the body may never come', async (t) => {
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  c.s.write('PUT /_lineage/healthz HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n')
  await c.closed
  t.match(c.text(), /^HTTP\/1.1 \d{3} [^]*\r\nconnection: close\r\n/, 'said so in the answer')
  t.notMatch(c.text(), /100 Continue/)
})

t.test('a body the upstream does not read holds the agent back: the gateway does not take the whole upload in', async (t) => {
  // An upstream that takes the request head and then reads nothing more.
  const stalled = createServer((s) => { s.on('error', () => {}); s.once('data', () => { s.pause() }) })
  stalled.listen(0, '127.0.0.1')
  await once(stalled, 'listening')
  t.teardown(() => { stalled.close() })
  await createTarget(b, gw, { name: 'stall', kind: 'http', upstream: `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`, headers: {} })
  const stallToken = (await exchangeToken(b, await rootToken(b, client), { actor: 'build', scope: 'stall:*' })).body.access_token
  const size = 64 * 1024 * 1024
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  c.s.write(`PUT /stall/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${stallToken}\r\nContent-Length: ${size}\r\n\r\n`)
  // In pieces: a write counts as waiting until all of it is out.
  const piece = Buffer.alloc(1024 * 1024, 1)
  for (let i = 0; i < size / piece.length; i++) c.s.write(piece)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.ok(c.s.writableLength > size / 2, `${c.s.writableLength} of ${size} bytes still wait at the agent`)
})

t.test('an agent that sends its request and closes its side is owed nothing; the gateway closes too', async (t) => {
  const c = await open()
  c.s.end(get('/api/half'))
  await c.closed
  t.pass('closed')
})

t.test('a stop ends idle lane connections at once and waits for a response under way', async (t) => {
  const own = await startTestGateway(b)
  const ownUrl = new URL(own.url)
  const idle = connect(Number(ownUrl.port), ownUrl.hostname)
  idle.on('error', () => {})
  idle.write(get('/api/idle'))
  await once(idle, 'data')
  const idleClosed = once(idle, 'close')
  const started = Date.now()
  await new Promise<void>((resolve) => {
    own.gateway.httpServer.close(() => resolve())
    own.gateway.httpServer.closeIdleConnections()
  })
  await idleClosed
  t.ok(Date.now() - started < 2000, 'the server closed without waiting for the idle connection')
  await own.gateway.stop()
})

t.test('methods node:http does not serve as requests go to it: CONNECT to its connect listener, unknown ones refused', async (t) => {
  // An upstream that answers whatever request line it is sent, as node:http would not.
  const lines: string[] = []
  const any = createServer((s) => {
    s.on('error', () => {})
    s.on('data', (d) => {
      lines.push(d.toString('latin1').split('\r\n')[0] as string)
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
  })
  any.listen(0, '127.0.0.1')
  await once(any, 'listening')
  t.teardown(() => { any.close() })
  await createTarget(b, gw, { name: 'any', kind: 'http', upstream: `http://127.0.0.1:${(any.address() as AddressInfo).port}`, headers: {} })
  const anyToken = (await exchangeToken(b, await rootToken(b, client), { actor: 'build', scope: 'any:*' })).body.access_token
  const send = async (method: string): Promise<string> => {
    const c = await open()
    t.teardown(() => { c.s.destroy() })
    c.s.write(`${method} /any/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${anyToken}\r\n\r\n`)
    return await c.until(/\r\n\r\n/)
  }
  t.match(await send('PURGE'), /^HTTP\/1.1 200 /, 'a method node:http knows is forwarded')
  t.match(await send('CONNECT'), /^HTTP\/1.1 405 /, 'CONNECT in origin form is refused, as node:http refuses it')
  t.match(await send('FROB'), /^HTTP\/1.1 400 /, 'a method node:http does not know is a malformed request')
  t.same(lines, ['PURGE /x HTTP/1.1'], 'neither reached the upstream')
})

t.test('a connection that sends nothing is closed at the first-request time; one idle after an answer at the keep-alive time', async (t) => {
  const { Lane } = await import('../../src/gateway/http/lane.js')
  const lane = new Lane({
    request: (_req, res) => { res.writeHead(200, { 'content-length': '2' }).end('ok') },
    continueExpected: (_req, res) => { res.writeHead(417, { 'content-length': '0' }).end() },
    handOff: (socket) => { socket.destroy() },
    clientError: (socket) => { socket.destroy() }
  }, { firstRequestMs: 150, keepAliveMs: 400 })
  const server = createServer((s) => { lane.accept(s) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { lane.closeAll(); server.close() })
  const port = (server.address() as AddressInfo).port
  const timed = async (send?: string): Promise<number> => {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    await once(s, 'connect')
    const started = Date.now()
    if (send !== undefined) {
      s.write(send)
      await once(s, 'data')
    }
    await once(s, 'close')
    return Date.now() - started
  }
  const silent = await timed()
  t.ok(silent >= 100 && silent < 380, `silent: closed after ${silent} ms`)
  const idle = await timed('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.ok(idle >= 380 && idle < 2000, `idle after an answer: closed after ${idle} ms`)
})

t.test('a head that comes in pieces is awaited on the lane, for the headers time at most however it trickles; bytes no head holds go to node:http at once', async (t) => {
  const { events, connection } = await bareLane(t, { firstRequestMs: 400, keepAliveMs: 5000 })
  const pause = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

  // Three pieces, the name of a header split between them.
  const pieces = await connection()
  for (const p of ['GET /one HTTP/1.1\r\nHo', 'st: x\r\nX-Long: ' + 'y'.repeat(2000), '\r\n\r\n']) { pieces.s.write(p); await pause(60) }
  await pause(50)
  t.match(pieces.text(), /^HTTP\/1.1 200 OK\r\n[^]*ok$/, 'answered by the lane')
  // The next request's head, in pieces too, after an answer: its own headers time from its first byte.
  await pause(300)
  pieces.s.write('GET /two HTTP/1.1\r\n')
  await pause(200)
  pieces.s.write('Host: x\r\n\r\n')
  await pause(50)
  pieces.s.destroy()
  t.same(events.splice(0), ['request /one', 'request /two'])

  // A byte every 100 ms: refused (408) at the headers time from its first byte, not kept alive by each byte.
  const trickle = await connection()
  const started = Date.now()
  const head = 'GET /slow HTTP/1.1\r\nHost: x\r\n'
  for (let i = 0; i < head.length && !trickle.s.destroyed; i++) { trickle.s.write(head[i] as string); await pause(100) }
  await trickle.closed
  const took = Date.now() - started
  t.same(events.splice(0), ['timedOut'], 'refused as node:http refuses a head not finished in time')
  t.ok(took >= 350 && took < 1500, `after ${took} ms`)

  // A stalled head after an answer: its own headers time, not the keep-alive time.
  const stalled = await connection()
  stalled.s.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n')
  await pause(50)
  const second = Date.now()
  stalled.s.write('GET /second HTTP/1.1\r\n')
  await stalled.closed
  t.same(events.splice(0), ['request /first', 'timedOut'])
  t.ok(Date.now() - second < 1500, `${Date.now() - second} ms after the stalled head began`)

  // A TLS handshake sent to the plain port is no head: node:http has it at once.
  const tls = await connection()
  tls.s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00]))
  await tls.closed
  t.same(events.splice(0), ['handOff'])
})

/** A lane alone, its requests answered 200 `ok`, with what it did with each connection in `events`; `allowHalfOpen` as node:http's server. */
async function bareLane (t: Test, timeouts: { firstRequestMs: number, keepAliveMs: number }): Promise<{ lane: Lane, events: string[], connection: () => Promise<{ s: Socket, text: () => string, closed: Promise<unknown> }> }> {
  const { Lane } = await import('../../src/gateway/http/lane.js')
  const events: string[] = []
  const lane: Lane = new Lane({
    request: (req, res) => { res.writeHead(200, { 'content-length': '2' }).end('ok'); events.push(`request ${req.url ?? ''}`) },
    continueExpected: (_req, res) => { res.writeHead(417, { 'content-length': '0' }).end() },
    handOff: (socket) => { events.push('handOff'); socket.destroy() },
    clientError: (socket, err) => { events.push(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'timedOut' : 'headCutShort'); socket.destroy() }
  }, timeouts)
  const server = createServer({ allowHalfOpen: true }, (s) => { lane.accept(s) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { lane.closeAll(); server.close() })
  const port = (server.address() as AddressInfo).port
  const connection = async (): Promise<{ s: Socket, text: () => string, closed: Promise<unknown> }> => {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    await once(s, 'connect')
    let text = ''
    s.on('data', (d: Buffer) => { text += d.toString('latin1') })
    return { s, text: () => text, closed: once(s, 'close') }
  }
  return { lane, events, connection }
}

const pause = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

t.test('a first head begun late in the first-request time has the whole headers time from its first byte, as on node:http', async (t) => {
  const { events, connection } = await bareLane(t, { firstRequestMs: 400, keepAliveMs: 5000 })
  const c = await connection()
  t.teardown(() => { c.s.destroy() })
  await pause(300)
  c.s.write('GET /late HTTP/1.1\r\n')
  await pause(250)
  c.s.write('Host: x\r\n\r\n')
  await pause(50)
  t.same(events, ['request /late'], 'served, not refused 100 ms after its first byte')
  t.match(c.text(), /^HTTP\/1.1 200 OK\r\n/)
})

t.test('a stop does not cut a head partway in: the request is served, then the connection ends, as node:http keeps a connection whose head has begun', async (t) => {
  const { lane, events, connection } = await bareLane(t, { firstRequestMs: 5000, keepAliveMs: 5000 })
  const c = await connection()
  t.teardown(() => { c.s.destroy() })
  c.s.write('GET /stopping HTTP/1.1\r\nHo')
  await pause(50)
  lane.closeIdle()
  await pause(50)
  c.s.write('st: x\r\n\r\n')
  await c.closed
  t.same(events, ['request /stopping'])
  t.match(c.text(), /^HTTP\/1.1 200 OK\r\n[^]*ok$/, 'answered before the connection ended')
})

t.test('a bare LF or a CR alone goes to node:http at once, which refuses it at once; a CRLF split between reads is awaited', async (t) => {
  const { events, connection } = await bareLane(t, { firstRequestMs: 400, keepAliveMs: 5000 })
  for (const head of ['GET /lf HTTP/1.1\nHost: x\n\n', 'GET /cr HTTP/1.1\rHost: x', 'GET /lf-late HTTP/1.1\r\nHost: x\n']) {
    const c = await connection()
    c.s.write(head)
    await Promise.race([c.closed, pause(200)])
    c.s.destroy()
    t.same(events.splice(0), ['handOff'], JSON.stringify(head))
  }
  const c = await connection()
  t.teardown(() => { c.s.destroy() })
  for (const p of ['GET /crlf HTTP/1.1\r', '\nHost: x\r', '\n\r', '\n']) { c.s.write(p); await pause(30) }
  await pause(30)
  t.same(events.splice(0), ['request /crlf'])
})

t.test('empty lines between requests begin no head: the connection stays for its keep-alive time, as on node:http', async (t) => {
  const { events, connection } = await bareLane(t, { firstRequestMs: 400, keepAliveMs: 5000 })
  const c = await connection()
  t.teardown(() => { c.s.destroy() })
  // A request, then the CRLF some agents send after a body (RFC 9112 §2.2).
  c.s.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n')
  await pause(50)
  c.s.write('\r\n')
  await pause(550)
  t.same(events.splice(0), ['request /a'], 'not refused at the headers time')
  c.s.write('\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n')
  await pause(50)
  t.same(events.splice(0), ['request /b'], 'the next request, served on the lane')
})

t.test('a head sent a byte at a time is read once as it comes: served when whole, handed to node:http at the first byte no head holds', async (t) => {
  const { events, connection } = await bareLane(t, { firstRequestMs: 5000, keepAliveMs: 5000 })
  const byteByByte = async (text: string): Promise<void> => {
    const { s, closed } = await connection()
    s.setNoDelay(true)
    for (let i = 0; i < text.length && !s.destroyed; i++) {
      s.write(text[i] as string)
      await new Promise((resolve) => setTimeout(resolve, i % 16 === 0 ? 1 : 0))
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 300))])
    s.destroy()
  }
  await byteByByte(`GET /whole HTTP/1.1\r\nHost: x\r\nX-Long: ${'y'.repeat(600)}\r\n\r\n`)
  await byteByByte('GET /bare-lf HTTP/1.1\r\nHost: x\r\nX-A: 1\nX-B: 2\r\n\r\n')
  await byteByByte('GET /lone-cr HTTP/1.1\r\nHost: x\r\nX-A: 1\rX-B: 2\r\n\r\n')
  await byteByByte('GET /binary HTTP/1.1\r\nHost: x\r\nX-A: \u0001\r\n\r\n')
  t.same(events, ['request /whole', 'handOff', 'handOff', 'handOff'])
})

t.test('a request sent after an answer that closed the connection is never served', async (t) => {
  const c = await open()
  const before = up.seen.length
  c.s.write(get('/api/closing', 'Connection: close\r\n'))
  await c.until(/"url":"\/base\/closing"/)
  // At once, before the gateway's close has reached this side.
  c.s.write(get('/api/after-close'))
  await c.closed
  t.same(up.seen.slice(before).map((r) => r.url), ['/base/closing'], 'the upstream never saw the second')
  t.notMatch(c.text(), /after-close/)
})

t.test('an agent that reads slowly holds the upstream back: no more of its answer waits in the gateway than node:http would hold', async (t) => {
  // The gateway's end of the agent's connection, to see what waits in it.
  let theirs: Socket | undefined
  const seen = (s: Socket): void => { theirs = s }
  gw.gateway.httpServer.once('connection', seen)
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  c.s.pause()
  c.s.write(get('/api/big'))
  // Long enough for the kernel's buffers to fill and the upstream to be paused.
  let most = 0
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    most = Math.max(most, theirs?.writableLength ?? 0)
  }
  t.ok(theirs !== undefined && theirs.bytesWritten > 0, 'the answer started')
  // node:http holds one socket's high-water mark and a read of the upstream's (64 KiB here).
  t.ok(most <= 256 * 1024, `${most} bytes waited in the gateway (${theirs?.bytesWritten ?? 0} written)`)
  // And read now, it all comes.
  c.s.resume()
  const text = await c.until(/\r\n\r\n/)
  const body = Buffer.byteLength(text, 'latin1') - text.indexOf('\r\n\r\n') - 4
  let got = body
  while (got < 32 * 1024 * 1024) {
    const before = c.text().length
    await new Promise((resolve) => setTimeout(resolve, 50))
    if (c.text().length === before) break
    got = c.text().length - text.indexOf('\r\n\r\n') - 4
  }
  t.equal(got, 32 * 1024 * 1024, `the whole body, once the agent reads (${theirs?.bytesWritten ?? 0} written, ${theirs?.writableLength ?? 0} waiting)`)
})

t.test('an agent that closes its side while a whole answer is still being written to it gets all of it, as from node:http', async (t) => {
  const size = 16 * 1024 * 1024
  const { Lane } = await import('../../src/gateway/http/lane.js')
  const lane = new Lane({
    request: (_req, res) => { res.writeHead(200, { 'content-length': String(size) }).end(Buffer.alloc(size, 1)) },
    continueExpected: (_req, res) => { res.writeHead(417, { 'content-length': '0' }).end() },
    handOff: (socket) => { socket.destroy() },
    clientError: (socket) => { socket.destroy() }
  }, { firstRequestMs: 5000, keepAliveMs: 5000 })
  // As node:http's server: the agent's end does not end the gateway's side.
  const server = createServer({ allowHalfOpen: true }, (s) => { lane.accept(s) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { lane.closeAll(); server.close() })
  const s = connect((server.address() as AddressInfo).port, '127.0.0.1')
  s.on('error', () => {})
  await once(s, 'connect')
  s.pause()
  s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  // The answer is all written by the gateway, much of it still waiting for the agent to read.
  await new Promise((resolve) => setTimeout(resolve, 200))
  s.end()
  let n = 0
  s.on('data', (d: Buffer) => { n += d.length })
  s.resume()
  await once(s, 'close')
  t.ok(n > size, `${n} bytes read, the head and the whole body`)
})
