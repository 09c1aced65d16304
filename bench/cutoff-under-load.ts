/**
 * Benchmark: offboarding cut-offs while 500 agents hammer the gateways.
 *
 * What it measures: the same processes as `bench/propagation.ts`: one broker
 * (`LINEAGE_ROLE=broker`) and three gateway processes (`LINEAGE_ROLE=gateway`, `LINEAGE_ISSUER` =
 * the broker), each `node --import tsx src/main.ts` in its own process, on one fresh PostgreSQL
 * database and one private `redis-server` (started here on a free port, no persistence). An http
 * target `api` points at a tiny upstream in this process. Setup: `BENCH_ROOTS` (default 50)
 * humans, each sponsoring a service granted `api:read`, a client per service and one root token
 * by `client_credentials`; from each root, `BENCH_AGENTS_PER_ROOT` (default 10) agent tokens by
 * RFC 8693 token exchange, each naming its own actor (`agent-<root>-<n>`), scope `api:read`.
 * Every agent token must get 200 for `GET /api/x` through each of the three gateways first.
 *
 * Then the load: the agents, round-robin, send `GET /api/x` with their own token to the three
 * gateways in turn, `BENCH_CONCURRENCY` (default 64) requests in flight, over keep-alive agents
 * (one per gateway). For every request the send time, its root and the status are recorded.
 * After `warmupMs` of load the humans are offboarded one by one, one signed HR webhook
 * (`POST /hooks/hr`, `principal.offboarded`) every `BENCH_CUTOFF_INTERVAL_MS` (default 150);
 * a cut-off is *acknowledged* when the webhook's 2xx arrives here. The load continues for
 * `tailMs` after the last acknowledgement, then stops.
 *
 * Afterwards: a violation is a 200 for a request sent after its root's cut-off was acknowledged
 * (target: 0). Requests sent before the acknowledgement and answered after it are in flight
 * across it, and may be answered either way. Per cut-off: the time from the acknowledgement to
 * the first 401 received for that root's agents, and to the last 200 received for them.
 *
 * Needs PostgreSQL at `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/postgres) and
 * `redis-server` on PATH; the database is dropped at the end and every process is stopped, even
 * on error.
 */
import { createHmac } from 'node:crypto'
import { withCleanup } from './lib/cleanup.js'
import { envInt } from './lib/env.js'
import { keepAliveAgent, send } from './lib/http.js'
import { exchange, rootToken, seedService } from './lib/lineage.js'
import { pool, startCluster } from './lib/cluster.js'
import { summarize } from './lib/stats.js'
import { fixed, table } from './lib/table.js'

const roots = envInt('BENCH_ROOTS', 50)
const agentsPerRoot = envInt('BENCH_AGENTS_PER_ROOT', 10)
const concurrency = envInt('BENCH_CONCURRENCY', 64)
const cutoffIntervalMs = envInt('BENCH_CUTOFF_INTERVAL_MS', 150)
const warmupMs = 3000
const tailMs = 2000
const setupConcurrency = 16
const gatewayCount = 3
const webhookSecret = 'whsec_cutoff_under_load_0123456789abcdef'

function signedWebhook (body: string): Record<string, string> {
  const t = Math.floor(Date.now() / 1000)
  const v1 = createHmac('sha256', webhookSecret).update(`${t}.${body}`).digest('hex')
  return { 'content-type': 'application/json', 'lineage-signature': `t=${t},v1=${v1}` }
}

interface AgentToken { root: number, actor: string, token: string }

/** Growable columns of per-request records: send time, receive time, root, status (0 = socket error), gateway. */
class Records {
  n = 0
  sent = new Float64Array(1 << 16)
  recv = new Float64Array(1 << 16)
  root = new Int32Array(1 << 16)
  status = new Int32Array(1 << 16)
  gateway = new Int32Array(1 << 16)
  push (sent: number, recv: number, root: number, status: number, gateway: number): void {
    if (this.n === this.sent.length) {
      const grow = <A extends Float64Array | Int32Array>(a: A, make: (n: number) => A): A => { const b = make(a.length * 2); b.set(a); return b }
      this.sent = grow(this.sent, (k) => new Float64Array(k))
      this.recv = grow(this.recv, (k) => new Float64Array(k))
      this.root = grow(this.root, (k) => new Int32Array(k))
      this.status = grow(this.status, (k) => new Int32Array(k))
      this.gateway = grow(this.gateway, (k) => new Int32Array(k))
    }
    this.sent[this.n] = sent
    this.recv[this.n] = recv
    this.root[this.n] = root
    this.status[this.n] = status
    this.gateway[this.n] = gateway
    this.n++
  }
}

await withCleanup(async (defer) => {
  const { broker, gateways, gatewayUrls, children, setupAgent } = await startCluster(defer, { databasePrefix: 'lineage_cut', webhookSecret, gatewayCount, setupConcurrency })
  const started = performance.now()
  const humans = await pool(Array.from({ length: roots }, (_, i) => i), setupConcurrency, async (i) => {
    const client = await seedService(setupAgent, broker, `human-${i}`, `svc-${i}`, ['api:read'])
    return { human: client.human, token: await rootToken(setupAgent, broker, client) }
  })
  const agentTokens = await pool(Array.from({ length: roots * agentsPerRoot }, (_, i) => i), setupConcurrency, async (i): Promise<AgentToken> => {
    const root = i % roots
    const actor = `agent-${root}-${Math.floor(i / roots)}`
    return { root, actor, token: await exchange(setupAgent, broker, humans[root].token, { actor, scope: 'api:read' }) }
  })
  console.log(`setup: ${roots} humans, services, clients and root tokens, ${agentTokens.length} agent tokens by token exchange, in ${fixed((performance.now() - started) / 1000, 1)} s`)

  const agents = gateways.map(() => keepAliveAgent(Math.ceil(concurrency / gatewayCount) + 2))
  defer('close gateway agents', async () => { for (const a of agents) a.destroy() })
  const before = await pool(agentTokens, setupConcurrency, async (a) => await Promise.all(gatewayUrls.map(async (u, g) =>
    (await send(agents[g], 'GET', u, undefined, { authorization: `Bearer ${a.token}` })).status)))
  const not200 = before.flat().filter((x) => x !== 200).length
  if (not200 > 0) throw new Error(`before the load, ${not200} of ${before.length * gatewayCount} gateway requests did not answer 200`)
  console.log(`verified: all ${agentTokens.length} agent tokens get 200 through each of the ${gatewayCount} gateways`)

  // Load, with the cut-offs in the middle of it.
  const rec = new Records()
  const ackAt = new Float64Array(roots).fill(Number.POSITIVE_INFINITY)
  let stop = false
  let next = 0
  const worker = async (): Promise<void> => {
    while (!stop) {
      const k = next++
      const a = agentTokens[k % agentTokens.length]
      const g = k % gatewayCount
      const t0 = performance.now()
      let status = 0
      try {
        status = (await send(agents[g], 'GET', gatewayUrls[g], undefined, { authorization: `Bearer ${a.token}` })).status
      } catch {}
      rec.push(t0, performance.now(), a.root, status, g)
    }
  }
  const loadStart = performance.now()
  const load = Promise.all(Array.from({ length: concurrency }, worker))
  defer('stop the load', async () => { stop = true; await load })

  const hookUrl = new URL('/hooks/hr', broker.url)
  const hookAgent = keepAliveAgent(1)
  defer('close webhook agent', async () => { hookAgent.destroy() })
  const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
  await sleep(warmupMs)
  const cutStart = performance.now()
  for (let i = 0; i < roots; i++) {
    const due = cutStart + i * cutoffIntervalMs
    if (due > performance.now()) await sleep(due - performance.now())
    const body = JSON.stringify({ id: `evt-${i}`, type: 'principal.offboarded', principal: humans[i].human })
    const r = await send(hookAgent, 'POST', hookUrl, body, signedWebhook(body))
    if (r.status < 200 || r.status > 299) throw new Error(`POST /hooks/hr for ${humans[i].human}: HTTP ${r.status} ${r.body.slice(0, 300)}`)
    ackAt[i] = performance.now()
  }
  await sleep(tailMs)
  stop = true
  await load
  const loadS = (performance.now() - loadStart) / 1000
  for (const c of children) if (c.proc.exitCode !== null) throw new Error(`a Lineage process (pid ${c.pid}) exited during the run:\n${c.stderrTail()}`)

  // Count.
  const byStatus = new Map<number, number>()
  let violations = 0
  const violating: string[] = []
  let after401 = 0
  let afterOther = 0
  let crossing = 0
  let crossing200 = 0
  let crossing401 = 0
  const first401 = new Float64Array(roots).fill(Number.POSITIVE_INFINITY)
  const last200 = new Float64Array(roots).fill(Number.NEGATIVE_INFINITY)
  for (let j = 0; j < rec.n; j++) {
    const s = rec.status[j]
    const root = rec.root[j]
    const ack = ackAt[root]
    byStatus.set(s, (byStatus.get(s) ?? 0) + 1)
    if (rec.sent[j] > ack) {
      if (s === 200) {
        violations++
        if (violating.length < 10) violating.push(`root ${root} via gateway ${rec.gateway[j] + 1}: sent ${fixed(rec.sent[j] - ack, 2)} ms after the ack, answered 200 ${fixed(rec.recv[j] - ack, 2)} ms after it`)
      }
      else if (s === 401) after401++
      else afterOther++
    } else if (rec.recv[j] > ack) {
      crossing++
      if (s === 200) crossing200++
      else if (s === 401) crossing401++
    }
    if (s === 401 && rec.recv[j] > ack) first401[root] = Math.min(first401[root], rec.recv[j] - ack)
    if (s === 200 && rec.recv[j] > ack) last200[root] = Math.max(last200[root], rec.recv[j] - ack)
  }
  const ok = violations === 0
  const toFirst401 = summarize(first401, roots)
  const lastAfter = Float64Array.from(last200, (x) => Math.max(0, x))
  const toLast200 = summarize(lastAfter, roots)
  const cutS = (ackAt[roots - 1] - cutStart) / 1000

  console.log('')
  console.log(`${agentTokens.length} agents (${roots} roots × ${agentsPerRoot}), ${concurrency} requests in flight across ${gatewayCount} gateways, for ${fixed(loadS, 1)} s; ` +
    `${roots} cut-offs, one every ${cutoffIntervalMs} ms, over ${fixed(cutS, 1)} s (after ${warmupMs / 1000} s of load, then ${tailMs / 1000} s more)`)
  console.log(`load sustained: ${rec.n} requests, ${fixed(rec.n / loadS, 0)} req/s; by status: ${[...byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([s, c]) => `${s === 0 ? 'socket error' : s} ${c}`).join(', ')}`)
  console.log(table(['requests, by when sent and answered vs their root\'s cut-off ack', 'count'], [
    ['sent after the ack, answered 200 (violations)', String(violations)],
    ['sent after the ack, answered 401', String(after401)],
    ['sent after the ack, other status or socket error', String(afterOther)],
    ['in flight across the ack (sent before, answered after)', String(crossing)],
    ['  of which 200', String(crossing200)],
    ['  of which 401', String(crossing401)]
  ]))
  console.log('')
  console.log(table(['per cut-off, from the webhook\'s 2xx', 'cut-offs', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mean ms'], [
    ['to the first 401 for that root\'s agents', String(roots), fixed(toFirst401.p50, 2), fixed(toFirst401.p90, 2), fixed(toFirst401.p99, 2), fixed(toFirst401.max, 2), fixed(toFirst401.mean, 2)],
    ['to the last 200 for them (in flight; 0 = none)', String(roots), fixed(toLast200.p50, 2), fixed(toLast200.p90, 2), fixed(toLast200.p99, 2), fixed(toLast200.max, 2), fixed(toLast200.mean, 2)]
  ]))
  console.log('')
  for (const v of violating) console.log(`violation: ${v}`)
  console.log(`violations: ${violations} (target 0): ${ok ? 'met' : 'NOT met'}`)
  process.exitCode = ok ? 0 : 1
})
