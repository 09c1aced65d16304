/**
 * Load generator, run as its own process (forked by `runLoad`) so that it never shares an event
 * loop with the server it measures. It receives a `LoadSpec` over IPC, runs `concurrency`
 * workers on keep-alive connections, first for `warmupMs` unmeasured, then for exactly
 * `requests` measured requests, and replies with a `LoadResult`. Each client has its own
 * keep-alive connection (`RawConnection`, a deliberately minimal HTTP/1.1 client: node:http's
 * client cost ~250 µs of CPU per request here, which on a 2-core machine is taken from the
 * server under test).
 */
import { performance } from 'node:perf_hooks'
import { decodeJwt, formBody, type HttpResult } from './http.js'
import { RawConnection } from './raw-http.js'
import type { ExchangeLoad, LoadResult, LoadSpec, RepeatLoad } from './load-spec.js'
import { summarize } from './stats.js'

const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange'
const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token'

/** One simulated client: what to send next, and what to make of the answer. */
interface Client {
  next: () => string
  /** Returns the issued access token on success, undefined on failure. */
  settle: (r: HttpResult) => string | undefined
}

/**
 * Per depth, two variants of the narrowing a pipeline step asks for. Every variant at depth d
 * is covered by both variants at depth d-1, so any mix is a valid chain under a root holding
 * `api:* db:* ssh:*`.
 */
const narrowing: Array<Array<Record<string, string | string[]>>> = [
  [{ scope: 'api:* db:read db:write' }, { scope: 'api:* db:* ssh:exec', ttl: '900' }],
  [{ scope: 'api:read api:write db:read' }, { scope: 'api:read db:read db:write' }],
  [{ scope: 'api:read db:read', audience: ['api', 'db'] }, { scope: 'api:read db:read' }],
  [{ scope: 'api:read', audience: 'api' }, { audience: 'api' }]
]

function exchangeClient (s: ExchangeLoad, index: number): Client {
  let chain = index
  let depth = 0
  let token = ''
  const restart = (): void => { depth = 0; chain++ }
  return {
    next: () => {
      if (depth === 0) token = s.roots[chain % s.roots.length]
      const variant = narrowing[depth % narrowing.length][(chain + depth) % 2]
      return formBody({
        grant_type: tokenExchangeGrant,
        subject_token: token,
        subject_token_type: accessTokenType,
        actor: `step-${depth + 1}`,
        ...variant
      })
    },
    settle: (r) => {
      if (r.status !== 200) { restart(); return undefined }
      token = (JSON.parse(r.body) as { access_token: string }).access_token
      if (++depth >= s.maxDepth) restart()
      return token
    }
  }
}

function repeatClient (s: RepeatLoad): Client {
  const body = formBody(s.form)
  return {
    next: () => body,
    settle: (r) => r.status === 200 ? (JSON.parse(r.body) as { access_token: string }).access_token : undefined
  }
}

function clientsFor (spec: LoadSpec): Client[] {
  return Array.from({ length: spec.concurrency }, (_, i) =>
    spec.scenario.kind === 'exchange' ? exchangeClient(spec.scenario, i) : repeatClient(spec.scenario))
}

/** Each client keeps its own connection, so `concurrency` requests are in flight at once. */
function requester (spec: LoadSpec): { call: (client: number, body: string) => Promise<HttpResult>, close: () => void } {
  const url = new URL(spec.scenario.tokenUrl)
  const headers = { 'content-type': 'application/x-www-form-urlencoded', ...(spec.scenario.kind === 'repeat' ? spec.scenario.headers : {}) }
  const connections = Array.from({ length: spec.concurrency }, () => new RawConnection(url, headers))
  return {
    call: async (client, body) => {
      try {
        return await connections[client].post(body)
      } catch (err) {
        // A refused or reset connection is an error to count, not a reason to stop measuring.
        return { status: 0, body: (err as Error).message }
      }
    },
    close: () => { for (const c of connections) c.close() }
  }
}

type Call = (client: number, body: string) => Promise<HttpResult>

async function warmUp (spec: LoadSpec, call: Call): Promise<number> {
  const end = performance.now() + spec.warmupMs
  let n = 0
  await Promise.all(clientsFor(spec).map(async (c, i) => {
    while (performance.now() < end) {
      c.settle(await call(i, c.next()))
      n++
    }
  }))
  return n
}

async function measure (spec: LoadSpec, call: Call): Promise<Omit<LoadResult, 'warmupRequests' | 'generatorCpuUsPerRequest'>> {
  const latencies = new Float64Array(spec.requests)
  const tokens: string[] = []
  const errorSamples: string[] = []
  let issued = 0
  let ok = 0
  const started = performance.now()
  await Promise.all(clientsFor(spec).map(async (c, i) => {
    while (issued < spec.requests) {
      const slot = issued++
      const body = c.next()
      const t0 = performance.now()
      const r = await call(i, body)
      latencies[slot] = performance.now() - t0
      const token = c.settle(r)
      if (token === undefined) {
        if (errorSamples.length < 5) errorSamples.push(`${r.status} ${r.body.slice(0, 200)}`)
        continue
      }
      ok++
      if (spec.collectJtis) tokens.push(token)
    }
  }))
  const elapsedMs = performance.now() - started
  return {
    requests: spec.requests,
    ok,
    errors: spec.requests - ok,
    errorSamples,
    elapsedMs,
    rate: ok / (elapsedMs / 1000),
    latency: summarize(latencies, spec.requests),
    jtis: tokens.map((t) => String(decodeJwt(t).payload.jti))
  }
}

async function run (spec: LoadSpec): Promise<LoadResult> {
  const { call, close } = requester(spec)
  const cpu0 = process.cpuUsage()
  const warmupRequests = await warmUp(spec, call)
  const result = await measure(spec, call)
  const cpu = process.cpuUsage(cpu0)
  close()
  return { ...result, warmupRequests, generatorCpuUsPerRequest: (cpu.user + cpu.system) / (warmupRequests + spec.requests) }
}

process.once('message', (spec) => {
  run(spec as LoadSpec).then(
    (result) => { process.send?.(result, () => process.exit(0)) },
    (err) => { process.stderr.write(`load generator: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) }
  )
})
