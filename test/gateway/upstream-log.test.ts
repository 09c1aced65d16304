import { createServer, request } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import t from 'tap'
import type { LineageError } from '../../src/errors.js'
import type { AgentResponse } from '../../src/gateway/http/lane-response.js'
import { Upstreams } from '../../src/gateway/http/upstream.js'
import type { Target } from '../../src/gateway/targets.js'
import { createLogger } from '../../src/log.js'

t.test('an upstream that fails is logged once when it starts failing and once when it answers again, not at every request', async (t) => {
  const lines: Array<{ level: number, msg: string, target?: string, reason?: string }> = []
  const sink = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const up = createServer((_req, res) => { res.end('ok') })
  up.listen(0, '127.0.0.1')
  await once(up, 'listening')
  const upPort = (up.address() as AddressInfo).port
  up.close()
  const fail = (res: AgentResponse, err: LineageError): void => { res.writeHead(err.status).end(err.message) }
  const upstreams = new Upstreams(10_000, fail, createLogger('info', sink))
  t.teardown(() => { upstreams.close() })
  const target = { name: 'api', kind: 'http', upstream: new URL(`http://127.0.0.1:${upPort}`), headers: {}, policy: { rules: [] }, auditStatements: 'text' } as Target
  const agent = createServer((req, res) => { upstreams.forward(req, res, target, req.url ?? '/', {}) })
  agent.listen(0, '127.0.0.1')
  await once(agent, 'listening')
  t.teardown(() => { agent.close(); up.close() })
  const get = async (): Promise<number> => await new Promise((resolve, reject) => {
    request({ port: (agent.address() as AddressInfo).port, host: '127.0.0.1', path: '/x', agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    }).on('error', reject).end()
  })
  for (let i = 0; i < 3; i++) t.equal(await get(), 502)
  up.listen(upPort, '127.0.0.1')
  await once(up, 'listening')
  t.equal(await get(), 200)
  t.equal(await get(), 200)
  t.match(lines.map((l) => [l.level, l.msg, l.target]), [[40, 'upstream failing', 'api'], [30, 'upstream answering again', 'api']])
  t.equal(lines.length, 2)
  t.match(lines[0].reason, /ECONNREFUSED/, 'the first failure says why')
})

t.test('an agent that leaves while its answer streams is not taken for an upstream failing', async (t) => {
  const lines: Array<{ msg: string }> = []
  const sink = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const up = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const timer = setInterval(() => res.write('data: x\n\n'), 2)
    res.on('close', () => clearInterval(timer))
  })
  up.listen(0, '127.0.0.1')
  await once(up, 'listening')
  const fail = (res: AgentResponse, err: LineageError): void => { res.writeHead(err.status).end(err.message) }
  const upstreams = new Upstreams(10_000, fail, createLogger('info', sink))
  const target = { name: 'api', kind: 'http', upstream: new URL(`http://127.0.0.1:${(up.address() as AddressInfo).port}`), headers: {}, policy: { rules: [] }, auditStatements: 'text' } as Target
  const ended: Array<Promise<LineageError | undefined>> = []
  const agent = createServer((req, res) => {
    const exchange = upstreams.forward(req, res, target, req.url ?? '/', {})
    // What the proxy records once the response has closed, given the upstream's events a moment to come.
    ended.push(new Promise((resolve) => res.on('close', () => setTimeout(() => resolve(exchange.brokeOff), 50))))
  })
  agent.listen(0, '127.0.0.1')
  await once(agent, 'listening')
  t.teardown(() => { upstreams.close(); agent.close(); up.close() })
  for (let i = 0; i < 5; i++) {
    await new Promise<void>((resolve) => {
      const r = request({ port: (agent.address() as AddressInfo).port, host: '127.0.0.1', path: '/sse', agent: false }, (res) => {
        res.once('data', () => { r.destroy(); resolve() })
      })
      r.on('error', () => {})
      r.end()
    })
  }
  const brokeOff = await Promise.all(ended)
  t.same(brokeOff.map((e) => e?.message), [undefined, undefined, undefined, undefined, undefined], 'no stream broken off by its upstream: the agent left (499)')
  t.same(lines.filter((l) => l.msg === 'upstream failing'), [], 'and the upstream is not logged failing')
})
