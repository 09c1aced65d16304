/**
 * Benchmark: how fast an offboarding reaches every gateway.
 *
 * What it measures: one broker (`LINEAGE_ROLE=broker`) and three gateway processes
 * (`LINEAGE_ROLE=gateway`, `LINEAGE_ISSUER` = the broker), each `node --import tsx src/main.ts`
 * in its own process, on one fresh PostgreSQL database and one private `redis-server` (started
 * here on a free port, no persistence). An http target `api` points at a tiny upstream in this
 * process. Setup (16 at a time): `BENCH_OFFBOARDINGS` (default 1,000) humans, each sponsoring a
 * service granted `api:read`, a client for each service and a root token by
 * `client_credentials`; every token must get 200 for `GET /api/x` through each of the three
 * gateways before anything is measured. Then, one human after another: the signed HR webhook
 * `POST /hooks/hr` (`principal.offboarded`, `Lineage-Signature: t=…,v1=<HMAC-SHA256>`) goes to
 * the broker; the clock starts when its 2xx arrives, and the three gateways are polled
 * concurrently, back to back, with that human's service token until each answers 401 (a
 * request lost because the gateway closed the connection counts as not yet refused and is
 * sent again); the clock stops when the last of the three has answered 401. Every request uses
 * a keep-alive agent per gateway. It prints p50, p99 and max of those times and whether the
 * target holds: p99 ≤ 50 ms. The broker holds the 2xx until every gateway confirms it applied
 * the cut-off, so it also prints the webhook's own round trip (sent → 2xx), the whole span
 * (sent → refused by all three), and how many requests got 200 after the 2xx (must be 0).
 *
 * Needs PostgreSQL at `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/postgres) and
 * `redis-server` on PATH (`apt-get install redis-server`); the database is created with a
 * random name and dropped at the end, and every process is stopped, even on error.
 */
import { createHmac } from 'node:crypto'
import type { Agent } from 'node:http'
import { withCleanup } from './lib/cleanup.js'
import { envInt } from './lib/env.js'
import { keepAliveAgent, send } from './lib/http.js'
import { rootToken, seedService } from './lib/lineage.js'
import { pool, startCluster } from './lib/cluster.js'
import { summarize } from './lib/stats.js'
import { fixed, table } from './lib/table.js'

const offboardings = envInt('BENCH_OFFBOARDINGS', 1000)
const setupConcurrency = 16
const gatewayCount = 3
const targetP99Ms = 50
const webhookSecret = 'whsec_propagation_bench_0123456789abcdef'

/** The status one gateway answers for `token`; a request lost at the socket level is sent again. */
async function statusOf (agent: Agent, url: URL, token: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await send(agent, 'GET', url, undefined, { authorization: `Bearer ${token}` })).status
    } catch (err) {
      if (attempt > 1000) throw new Error(`${url.toString()}: ${(err as Error).message}`)
    }
  }
}

/**
 * Polls one gateway back to back until it answers 401 and returns how many 200s came first;
 * any status other than 200 or 401 is an error.
 */
async function until401 (agent: Agent, url: URL, token: string, deadline: number): Promise<number> {
  for (let accepted = 0; ; accepted++) {
    const s = await statusOf(agent, url, token)
    if (s === 401) return accepted
    if (s !== 200) throw new Error(`${url.toString()}: HTTP ${s} while waiting for 401`)
    if (performance.now() > deadline) throw new Error(`${url.toString()}: still 200 ten seconds after the webhook`)
  }
}

function signedWebhook (body: string): Record<string, string> {
  const t = Math.floor(Date.now() / 1000)
  const v1 = createHmac('sha256', webhookSecret).update(`${t}.${body}`).digest('hex')
  return { 'content-type': 'application/json', 'lineage-signature': `t=${t},v1=${v1}` }
}

interface Subject { human: string, token: string }

await withCleanup(async (defer) => {
  const { broker, gateways, gatewayUrls, children, setupAgent } = await startCluster(defer, { databasePrefix: 'lineage_prop', webhookSecret, gatewayCount, setupConcurrency })
  const started = performance.now()
  const subjects = await pool(Array.from({ length: offboardings }, (_, i) => i), setupConcurrency, async (i): Promise<Subject> => {
    const client = await seedService(setupAgent, broker, `human-${i}`, `svc-${i}`, ['api:read'])
    return { human: client.human, token: await rootToken(setupAgent, broker, client) }
  })
  console.log(`setup: ${offboardings} humans, services, clients and root tokens in ${fixed((performance.now() - started) / 1000, 1)} s`)

  const agents = gateways.map(() => keepAliveAgent(setupConcurrency))
  defer('close gateway agents', async () => { for (const a of agents) a.destroy() })
  const before = await pool(subjects, setupConcurrency, async (s) => await Promise.all(gatewayUrls.map(async (u, g) => await statusOf(agents[g], u, s.token))))
  const not200 = before.flat().filter((x) => x !== 200).length
  if (not200 > 0) throw new Error(`before offboarding, ${not200} of ${before.length * gatewayCount} gateway requests did not answer 200`)
  console.log(`verified: all ${offboardings} tokens get 200 through each of the ${gatewayCount} gateways (${offboardings * gatewayCount} requests)`)

  // Measure.
  const samples = new Float64Array(offboardings)
  const roundTrips = new Float64Array(offboardings)
  const spans = new Float64Array(offboardings)
  let acceptedAfter = 0
  const hookUrl = new URL('/hooks/hr', broker.url)
  const hookAgent = keepAliveAgent(1)
  defer('close webhook agent', async () => { hookAgent.destroy() })
  const runStart = performance.now()
  for (let i = 0; i < offboardings; i++) {
    const s = subjects[i]
    const body = JSON.stringify({ id: `evt-${i}`, type: 'principal.offboarded', principal: s.human })
    const sent = performance.now()
    const r = await send(hookAgent, 'POST', hookUrl, body, signedWebhook(body))
    if (r.status < 200 || r.status > 299) throw new Error(`POST /hooks/hr for ${s.human}: HTTP ${r.status} ${r.body.slice(0, 300)}`)
    const t0 = performance.now()
    const accepted = await Promise.all(gatewayUrls.map(async (u, g) => await until401(agents[g], u, s.token, t0 + 10_000)))
    const t1 = performance.now()
    samples[i] = t1 - t0
    roundTrips[i] = t0 - sent
    spans[i] = t1 - sent
    acceptedAfter += accepted.reduce((a, b) => a + b, 0)
  }
  const runS = (performance.now() - runStart) / 1000
  for (const c of children) if (c.proc.exitCode !== null) throw new Error(`a Lineage process (pid ${c.pid}) exited during the run:\n${c.stderrTail()}`)

  const l = summarize(samples, offboardings)
  const row = (name: string, x: ReturnType<typeof summarize>): string[] => [name, String(offboardings), fixed(x.p50, 2), fixed(x.p90, 2), fixed(x.p99, 2), fixed(x.max, 2), fixed(x.mean, 2)]
  const ok = l.p99 <= targetP99Ms && acceptedAfter === 0
  console.log('')
  console.log(`${offboardings} offboardings, one after another, in ${fixed(runS, 1)} s`)
  console.log(table(['', 'offboardings', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mean ms'], [
    row('webhook 2xx → refused by all 3 gateways', l),
    row('webhook sent → 2xx (gateways confirmed)', summarize(roundTrips, offboardings)),
    row('webhook sent → refused by all 3 gateways', summarize(spans, offboardings))
  ]))
  console.log('')
  console.log(`requests answered 200 after the webhook's 2xx: ${acceptedAfter} (must be 0)`)
  console.log(`p99: ${fixed(l.p99, 2)} ms (target ≤ ${targetP99Ms} ms): ${ok ? 'met' : 'NOT met'}`)
  process.exitCode = ok ? 0 : 1
})
