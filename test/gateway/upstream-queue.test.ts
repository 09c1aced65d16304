import { createServer as createHttpServer, request } from 'node:http'
import { createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { LineageError } from '../../src/errors.js'
import type { AgentResponse } from '../../src/gateway/http/lane-response.js'
import { Upstreams } from '../../src/gateway/http/upstream.js'
import { silentLogger } from '../../src/log.js'
import type { Target } from '../../src/gateway/targets.js'

/** An upstream that answers each request only when told to. */
async function heldUpstream (): Promise<{ port: number, held: Socket[], answer: () => void, close: () => void }> {
  const held: Socket[] = []
  const all: Socket[] = []
  const server = createServer((s) => {
    all.push(s)
    s.on('error', () => {})
    s.on('data', () => { held.push(s) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    held,
    answer: () => { for (const s of held.splice(0)) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok') },
    close: () => { for (const s of all) s.destroy(); server.close() }
  }
}

t.test('requests past a pool\'s connections wait, up to a bound past which they get 503 at once; the count follows them out', async (t) => {
  const up = await heldUpstream()
  t.teardown(up.close)
  const fail = (res: AgentResponse, err: LineageError): void => { res.writeHead(err.status).end(err.message) }
  const upstreams = new Upstreams(10_000, fail, silentLogger(), { connections: 1, maxQueued: 2 })
  t.teardown(() => { upstreams.close() })
  const target = { name: 'api', kind: 'http', upstream: new URL(`http://127.0.0.1:${up.port}`), headers: {}, policy: { rules: [] }, auditStatements: 'text' } as Target
  const agent = createHttpServer((req, res) => { upstreams.forward(req, res, target, req.url ?? '/', {}) })
  agent.listen(0, '127.0.0.1')
  await once(agent, 'listening')
  t.teardown(() => { agent.close() })
  const port = (agent.address() as AddressInfo).port
  const get = async (): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
    request({ port, host: '127.0.0.1', path: '/x', agent: false }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject).end()
  })
  // One on the pool's connection, two waiting for it.
  const first = [get(), get(), get()]
  for (let i = 0; i < 100 && up.held.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(await get(), { status: 503, body: 'upstream api has 2 requests waiting for a connection' })
  // Each answer frees the connection for the next waiting request.
  for (let answered = 0; answered < 3; answered++) {
    for (let i = 0; i < 100 && up.held.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    up.answer()
  }
  t.same((await Promise.all(first)).map((r) => r.status), [200, 200, 200])
  const again = [get(), get(), get()]
  for (let answered = 0; answered < 3; answered++) {
    for (let i = 0; i < 100 && up.held.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    up.answer()
  }
  t.same((await Promise.all(again)).map((r) => r.status), [200, 200, 200], 'none counts as waiting once answered')
  // Requests that fail before they have a connection leave the count too.
  up.close()
  for (let round = 0; round < 3; round++) t.same((await Promise.all([get(), get()])).map((r) => r.status), [502, 502], `an upstream gone: 502, not 503 (${round})`)
})
