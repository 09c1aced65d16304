import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Defer } from './cleanup.js'
import { spawnUntil, type Child } from './child.js'
import { createBenchDatabase, withClient } from './database.js'
import { keepAliveAgent } from './http.js'
import { admin, startLineage, type LineageProcess } from './lineage.js'
import { machineFacts, serverVersion } from './machine.js'
import { freePort, requireTools } from './tools.js'

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function pool<T, R> (items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i], i)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** A private redis-server on a free port, stopped at cleanup; its URL. */
export async function startRedis (redisServer: string, defer: Defer): Promise<string> {
  const port = await freePort()
  const { child } = await spawnUntil(redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    cwd: process.cwd(),
    env: process.env,
    timeoutMs: 10_000,
    match: (line) => line.includes('Ready to accept connections') ? true : undefined
  })
  defer('stop redis-server', async () => { await child.stop() })
  return `redis://127.0.0.1:${port}`
}

/** The upstream: a short JSON answer to anything. */
export async function startUpstream (defer: Defer): Promise<string> {
  const body = '{"ok":true}'
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  defer('stop upstream', async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/**
 * One broker and `gatewayCount` gateway processes on a fresh database and a private Redis,
 * with an http target `api` on a small upstream; all of it stopped at cleanup.
 */
export async function startCluster (defer: Defer, opts: { databasePrefix: string, webhookSecret: string, gatewayCount: number, setupConcurrency: number }): Promise<{
  broker: LineageProcess
  gateways: LineageProcess[]
  gatewayUrls: URL[]
  children: Child[]
  setupAgent: ReturnType<typeof keepAliveAgent>
}> {
  const { 'redis-server': redisServer } = requireTools(['redis-server'], 'apt-get install redis-server')
  console.log(await machineFacts())
  const db = await createBenchDatabase(opts.databasePrefix)
  defer(`drop database ${db.name}`, db.drop)
  console.log(`postgres: ${serverVersion(await withClient(db.url, async (c) => (await c.query<{ version: string }>('SELECT version()')).rows[0]))}, database ${db.name}`)
  const redisUrl = await startRedis(redisServer, defer)
  const upstream = await startUpstream(defer)
  const common = { REDIS_URL: redisUrl, LINEAGE_WEBHOOK_SECRET: opts.webhookSecret }
  const broker = await startLineage(db.url, [], { ...common, LINEAGE_ROLE: 'broker' })
  defer('stop broker', broker.stop)
  const gateways: LineageProcess[] = []
  for (let i = 0; i < opts.gatewayCount; i++) {
    const g = await startLineage(db.url, [], { ...common, LINEAGE_ROLE: 'gateway', LINEAGE_ISSUER: broker.url, LINEAGE_ADMIN_TOKEN: broker.adminToken })
    defer(`stop gateway ${i + 1}`, g.stop)
    gateways.push(g)
  }
  const gatewayUrls = gateways.map((g) => new URL('/api/x', g.listening.gateway_http))
  const children: Child[] = [broker.child, ...gateways.map((g) => g.child)]
  console.log(`processes: broker pid ${broker.child.pid}, gateways pid ${gateways.map((g) => g.child.pid).join(', ')}; redis ${redisUrl}; upstream ${upstream}`)
  const setupAgent = keepAliveAgent(opts.setupConcurrency)
  defer('close setup agent', async () => { setupAgent.destroy() })
  await admin(setupAgent, broker, 'POST', '/v1/targets', { name: 'api', kind: 'http', upstream }, 201)
  return { broker, gateways, gatewayUrls, children, setupAgent }
}
