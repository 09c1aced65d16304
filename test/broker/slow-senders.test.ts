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

t.test('a broker client that sends its headers or its body a byte a second is cut off at the broker\'s own time limits (20 s, 30 s), not up to 30 s after them', async (t) => {
  const dir = await tempDir(t, 'lineage-slow-')
  const running = await start(loadConfig({ LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_ROLE: 'broker' }), silentLogger())
  t.teardown(running.stop)
  const broker = running.listening.broker
  // Node checks for overdue requests every `connectionsCheckingInterval`, 30 s unless set: the
  // first check after the listener starts would find these at 30 s, and the body's past 30 s at 60 s.
  const [headers, body] = await Promise.all([
    dribble(broker, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', 'X-A: a\r\n'),
    dribble(broker, 'POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n', 'a')
  ])
  t.ok(headers.ms < 25_000, `headers: cut after ${Math.round(headers.ms)} ms`)
  t.match(headers.answer, /^HTTP\/1\.1 408 /)
  t.ok(body.ms < 35_000, `body: cut after ${Math.round(body.ms)} ms`)
  t.match(body.answer, /^HTTP\/1\.1 408 /)
})
