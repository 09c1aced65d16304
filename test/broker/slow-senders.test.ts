import { connect } from 'node:net'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { silentLogger } from '../../src/log.js'
import { start } from '../../src/server.js'
import { tempDir } from '../helpers/process.js'

/** Opens a connection to `url`, writes `head`, then `drip` once a second; resolves, when the broker closes it, to its time open and what it answered. */
async function dribble (url: string, head: string, drip: string): Promise<{ ms: number, answer: string }> {
  const { hostname, port } = new URL(url)
  const started = performance.now()
  return await new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => { socket.write(head) })
    let answer = ''
    const timer = setInterval(() => { if (socket.writable) socket.write(drip) }, 1000)
    socket.on('data', (d: Buffer) => { answer += d.toString() })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(timer)
      resolve({ ms: performance.now() - started, answer })
    })
  })
}

/** Sends `request` on a new connection to `url`; resolves to what was answered once the broker closes the connection. */
async function answerTo (url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => { socket.write(request) })
    let answer = ''
    socket.on('data', (d: Buffer) => { answer += d.toString() })
    socket.on('error', () => {})
    socket.on('close', () => { resolve(answer) })
  })
}

/** The status and JSON body of a whole response. */
function parsed (answer: string): { status: number, body: unknown } {
  const [head, ...rest] = answer.split('\r\n\r\n')
  let body: unknown
  try { body = JSON.parse(rest.join('\r\n\r\n')) } catch {}
  return { status: Number(head.split(' ')[1]), body }
}

// One broker for the file: starting one takes seconds on a busy machine.
const dir = await tempDir(t, 'lineage-slow-')
const running = await start(loadConfig({ LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_ROLE: 'broker' }), silentLogger())
t.teardown(running.stop)
const broker = running.listening.broker as string

t.test('a broker client that sends its headers or its body a byte a second is cut off at the broker\'s own time limits (20 s, 30 s), not up to 30 s after them', async (t) => {
  // Node checks for overdue requests every `connectionsCheckingInterval`, 30 s unless set: the
  // first check after the listener starts would find these at 30 s, and the body's past 30 s at 60 s.
  const [headers, body] = await Promise.all([
    dribble(broker, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', 'X-A: a\r\n'),
    dribble(broker, 'POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n', 'a')
  ])
  t.ok(headers.ms < 25_000, `headers: cut after ${Math.round(headers.ms)} ms`)
  t.match(parsed(headers.answer), { status: 408, body: { error: 'invalid_request', error_description: String } })
  t.ok(body.ms < 35_000, `body: cut after ${Math.round(body.ms)} ms`)
  t.match(parsed(body.answer), { status: 408, body: { error: 'invalid_request', error_description: String } })
})

t.test('a request the broker\'s HTTP parser refuses (bad framing, headers over 16 KiB) is answered with the contract\'s JSON error body, not a bare status line', async (t) => {
  const framing = await answerTo(broker, 'POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n')
  t.match(parsed(framing), { status: 400, body: { error: 'invalid_request', error_description: 'malformed HTTP request' } })
  const large = await answerTo(broker, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  t.match(parsed(large), { status: 431, body: { error: 'invalid_request', error_description: 'request headers too large' } })
  t.match(large, /\r\nContent-Type: application\/json\r\n/)
})
