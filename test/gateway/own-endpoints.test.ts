import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { startTestBroker } from '../helpers/broker.js'
import { startTestGateway } from '../helpers/gateway.js'

// The gateway's own endpoints (/_lineage/…) read no body. Its listener has no request timeout
// (uploads to targets stream as long as they take): a body sent to them must not hold the connection.
const b = await startTestBroker()
const gw = await startTestGateway(b)
t.teardown(async () => { await gw.close(); await b.close() })
const url = new URL(gw.url)

/** A connection to the gateway that keeps what comes back as text, and when it closed. */
async function open (): Promise<{ s: Socket, text: () => string, closedAfter: (limitMs: number) => Promise<number | undefined> }> {
  const s = connect(Number(url.port), url.hostname)
  await once(s, 'connect')
  let text = ''
  s.on('data', (d) => { text += d.toString('latin1') })
  s.on('error', () => {})
  const started = performance.now()
  const closed = once(s, 'close').then(() => performance.now() - started)
  return {
    s,
    text: () => text,
    closedAfter: async (limitMs) => await Promise.race([closed, new Promise<undefined>((resolve) => setTimeout(() => { resolve(undefined) }, limitMs))])
  }
}

t.test('a body sent to the gateway\'s own endpoints that never ends (chunked, or a long Content-Length a byte at a time) is cut off after the headers\' time, not held for ever', async (t) => {
  gw.gateway.httpServer.headersTimeout = 1000
  t.teardown(() => { gw.gateway.httpServer.headersTimeout = 20_000 })
  const chunked = await open()
  const long = await open()
  t.teardown(() => { chunked.s.destroy(); long.s.destroy() })
  chunked.s.write('POST /_lineage/healthz HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n')
  long.s.write('POST /_lineage/nothing HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000000\r\n\r\na')
  const drip = setInterval(() => {
    if (chunked.s.writable) chunked.s.write('1\r\na\r\n')
    if (long.s.writable) long.s.write('a')
  }, 100)
  t.teardown(() => { clearInterval(drip) })
  const [a, c] = await Promise.all([chunked.closedAfter(10_000), long.closedAfter(10_000)])
  t.ok(a !== undefined && a < 5000, `chunked: closed after ${String(a)} ms`)
  t.match(chunked.text(), /^HTTP\/1.1 200 OK\r\n/)
  t.ok(c !== undefined && c < 5000, `Content-Length: closed after ${String(c)} ms`)
  t.match(long.text(), /^HTTP\/1.1 404 Not Found\r\n/)
})

t.test('a body of more than 16 KiB sent to them is dropped as it comes, and the request after it is served on the same connection', async (t) => {
  const c = await open()
  t.teardown(() => { c.s.destroy() })
  c.s.write(`POST /_lineage/healthz HTTP/1.1\r\nHost: gw\r\nContent-Length: 200000\r\n\r\n${'a'.repeat(200_000)}GET /_lineage/nothing HTTP/1.1\r\nHost: gw\r\n\r\n`)
  for (let i = 0; i < 300 && !/HTTP\/1.1 404 /.test(c.text()); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.match(c.text(), /^HTTP\/1.1 200 OK\r\n[^]*HTTP\/1.1 404 Not Found\r\n/, 'both answered')
  t.notOk(c.s.destroyed, 'the connection stays')
})
