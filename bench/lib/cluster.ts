import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Defer } from './cleanup.js'
import { spawnUntil } from './child.js'
import { freePort } from './tools.js'

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
