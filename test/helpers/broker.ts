import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createBroker, type Broker } from '../../src/broker/broker.js'
import { createBrokerHandler } from '../../src/broker/http/app.js'
import { silentLogger, type Logger } from '../../src/log.js'
import type { InputSecrets } from '../../src/inputs/routes.js'
import { TestClock } from './clock.js'
import { defaultBackend, openTestDb, type TestDb } from './db.js'

export const adminToken = 'ladm_test-admin-token-0123456789'
export const tokenExchange = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token'

export interface TestBroker {
  url: string
  clock: TestClock
  broker: Broker
  testDb: TestDb
  /** fetch against the broker with the admin token. */
  admin: (method: string, path: string, body?: unknown) => Promise<{ status: number, body: any, headers: Headers }>
  /** POST a form to the broker. */
  form: (path: string, fields: Record<string, string | string[]>, headers?: Record<string, string>) => Promise<{ status: number, body: any, headers: Headers }>
  close: () => Promise<void>
}

/** A broker on a fresh database with a real listener on port 0 and a hand-moved clock. */
export async function startTestBroker (opts: { backend?: 'postgres' | 'pglite', maxDepth?: number, rootTtl?: number, inputs?: InputSecrets, log?: Logger, issuer?: (url: string) => string } = {}): Promise<TestBroker> {
  const testDb = await openTestDb(opts.backend ?? defaultBackend)
  const clock = new TestClock()
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const broker = await createBroker({ db: testDb.db, clock, log: opts.log ?? silentLogger(), issuer: opts.issuer?.(url) ?? url, maxDepth: opts.maxDepth ?? 8, rootTtl: opts.rootTtl ?? 3600, adminToken, pollMs: 200 })
  server.on('request', createBrokerHandler(broker.ctx, { ready: () => ({ ready: true, detail: {} }), inputs: opts.inputs }))

  const parse = async (r: Response): Promise<{ status: number, body: any, headers: Headers }> => {
    const text = await r.text()
    let body: unknown = text
    try { body = text === '' ? undefined : JSON.parse(text) } catch {}
    return { status: r.status, body, headers: r.headers }
  }
  return {
    url,
    clock,
    broker,
    testDb,
    admin: async (method, path, body) => await parse(await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })),
    form: async (path, fields, headers = {}) => {
      const p = new URLSearchParams()
      for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x)
      return await parse(await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: p.toString() }))
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await broker.stop()
      await testDb.close()
    }
  }
}

/** The contractor story's cast: alice (human), ci-nightly (her service) with a client. */
export async function seedContractor (b: TestBroker, grants = ['api:*', 'db:read', 'db:write']): Promise<{ clientId: string, clientSecret: string }> {
  const a = await b.admin('POST', '/v1/principals', { id: 'alice', kind: 'human', email: 'alice@example.com', grants })
  if (a.status !== 201) throw new Error(`seed alice: ${a.status} ${JSON.stringify(a.body)}`)
  const s = await b.admin('POST', '/v1/principals', { id: 'ci-nightly', kind: 'service', sponsor: 'alice', grants })
  if (s.status !== 201) throw new Error(`seed ci-nightly: ${s.status} ${JSON.stringify(s.body)}`)
  const c = await b.admin('POST', '/v1/principals/ci-nightly/clients')
  return { clientId: c.body.client_id, clientSecret: c.body.client_secret }
}

/** A root token by client_credentials. */
export async function rootToken (b: TestBroker, client: { clientId: string, clientSecret: string }, extra: Record<string, string> = {}): Promise<string> {
  const r = await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, ...extra })
  if (r.status !== 200) throw new Error(`root token: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.access_token
}

/** One exchange; returns the raw response. */
export async function exchangeToken (b: TestBroker, subject: string, extra: Record<string, string | string[]> = {}): Promise<{ status: number, body: any, headers: Headers }> {
  return await b.form('/oauth/token', { grant_type: tokenExchange, subject_token: subject, subject_token_type: accessTokenType, ...extra })
}

/** Decodes a JWT's payload without verifying it (tests look at what was issued). */
export function claimsOf (jwt: string): any {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'))
}
