/**
 * Benchmark: what Lineage's HTTP gateway costs per request, side by side with the proxies a team
 * would otherwise put in front of an internal API.
 *
 * What it measures, in one run, one case after another (never overlapping: the machine has few
 * cores): wrk (`-t1 -c32 -d10s --latency`, its own process, keep-alive connections) sends the
 * same GET, with the same `Authorization: Bearer <depth-3 token>` header, to
 *   (a) the upstream directly: nginx answering a fixed 108-byte JSON body (`return 200`), in
 *       its own process, the upstream of every case;
 *   (b) nginx `proxy_pass` (Debian's nginx, one worker, upstream `keepalive 64`, HTTP/1.1);
 *   (c) a bare Node.js reverse proxy, node:http with a keep-alive Agent, no checks
 *       (`lib/bare-proxy-server.ts`);
 *   (d) Lineage's gateway (`node --import tsx src/main.ts`, role all, real PostgreSQL) on the
 *       http target `bench`, whose policy has five rules none of which matches the request, with
 *       a depth-3 token (root → three exchanges, each naming an actor) scoped `bench:read`;
 *   (e) the bare proxy of (c) with undici's Pool as its client (Lineage's client for bodies and
 *       https upstreams; requests without a body go on its own bare-socket lane and pool): no
 *       target, the best a proxy built on node:http and undici does here;
 *   (f) a proxy on bare `node:net` sockets, no HTTP library, no checks, only what this request
 *       needs (`lib/raw-proxy-server.ts`): the floor of any Node.js proxy on this machine.
 * (b) to (f) all replace the caller's `Authorization` with the upstream's credential.
 * Every case gets `BENCH_WARMUP_S` (default 3) of unmeasured load before each measured run of
 * `BENCH_SECONDS` (default 10); the measured runs go round-robin `BENCH_ROUNDS` times (default
 * 2) and the best run by req/s counts (its p50 and p99 with it). Then each case runs once more
 * with a single connection (`BENCH_C1_SECONDS`, default 5): the latency one request adds when
 * nothing queues. Then (b) to (e) once more (one run each, `-c32`) with a POST of a 1 KiB JSON
 * body instead, (d) to the http target `upload`, whose five rules (none matching) include one on
 * methods, so the gateway searches every POST body for a method override; the token is scoped
 * `upload:write`. CPU time of each proxy (with its children), of the upstream and of PostgreSQL
 * is read from /proc. It prints req/s, p50 and p99 of each case, the ratios and whether the
 * targets hold: (d) ≥ 0.8 × (c), (d) ≥ 0.5 × (b), p50 of (d) − p50 of (a) ≤ 0.5 ms. The POST
 * runs have no target of their own.
 *
 * Needs nginx and wrk (`apt-get install nginx wrk`) and PostgreSQL at `DATABASE_URL` (default
 * postgres://postgres@127.0.0.1:5432/postgres); a database with a random name is created and
 * dropped at the end, even on error. `BENCH_CPU_PROF=<dir>` writes a V8 CPU profile of the
 * Lineage process there.
 */
import type { Agent } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startBareProxy, startRawProxy } from './lib/bare-proxy.js'
import { withCleanup, type Defer } from './lib/cleanup.js'
import { cpuMsOfCommand, cpuMsOfTree, machineProcessMs } from './lib/cpu.js'
import { createBenchDatabase, withClient } from './lib/database.js'
import { envInt, profileArgs } from './lib/env.js'
import { decodeJwt, keepAliveAgent, send } from './lib/http.js'
import { admin, exchange, rootToken, seedService, startLineage, type ServiceClient } from './lib/lineage.js'
import { machineFacts, serverVersion } from './lib/machine.js'
import { nginxConfig, startNginx } from './lib/nginx.js'
import { fixed, table } from './lib/table.js'
import { freePort, requireTools, toolVersion } from './lib/tools.js'
import { runWrk, type WrkResult } from './lib/wrk.js'

const connections = envInt('BENCH_CONNECTIONS', 32)
const seconds = envInt('BENCH_SECONDS', 10)
const warmupSeconds = envInt('BENCH_WARMUP_S', 3)
const rounds = envInt('BENCH_ROUNDS', 2)
const c1Seconds = envInt('BENCH_C1_SECONDS', 5)
const threads = 1

const targetVsBare = 0.8
const targetVsNginx = 0.5
const targetAddedP50Ms = 0.5

/** The upstream's answer: a short JSON document, 108 bytes. */
const upstreamBody = '{"id":4711,"name":"widget","status":"active","tags":["bench","lineage"],"updated_at":"2026-11-25T12:00:00Z"}'
const upstreamCredential = 'Bearer upstream-credential-0f3a9c'
const requestPath = '/v1/items?limit=10'
/** The body of the POST runs: a JSON document of 1 KiB. */
const postBody = JSON.stringify({ items: Array.from({ length: 14 }, (_, i) => ({ id: 4700 + i, name: `widget-${i}`, status: 'active' })) }).padEnd(1024, ' ')
const actors = ['planner', 'worker', 'fetcher']

/** Five realistic rules; a `GET /v1/items` by `fetcher` at depth 3 matches none of them. */
const policy = {
  rules: [
    { effect: 'deny', methods: ['DELETE'], paths: ['/admin/*'], reason: 'no deletes under /admin' },
    { effect: 'deny', actions: ['write'], min_depth: 2, reason: 'agents two hops down only read' },
    { effect: 'approve', paths: ['/payroll/*'], reason: 'payroll needs a human' },
    { effect: 'deny', actors: ['rogue-*'], reason: 'quarantined agents' },
    { effect: 'deny', principals: ['mallory'], reason: 'under investigation' }
  ]
}
/** The POST runs' target: five rules again, writes allowed where a POST /v1/items goes; the first judges methods. */
const writePolicy = {
  rules: [
    policy.rules[0],
    { effect: 'deny', actions: ['write'], paths: ['/ledger/*'], reason: 'the ledger is append-only by its own service' },
    ...policy.rules.slice(2)
  ]
}

type Key = 'a' | 'b' | 'c' | 'd' | 'e' | 'f'

interface Case {
  key: Key
  name: string
  /** The URL wrk loads. */
  url: string
  /** The proxy process measured (its children included); undefined for the direct case. */
  pid: number | undefined
}

interface Run {
  wrk: WrkResult
  /** CPU ms over the measured run. */
  proxyMs: number
  upstreamMs: number
  postgresMs: number
  /** CPU ms of every process on the machine (interrupt time left out). */
  machineMs: number
  wallMs: number
}

function upstreamConfig (dir: string, port: number): string {
  return nginxConfig(dir, 'upstream', `  server {
    listen 127.0.0.1:${port};
    location = /api/_echo {
      default_type application/json;
      return 200 '{"authorization":"$http_authorization","subject":"$http_lineage_subject","actor":"$http_lineage_actor"}';
    }
    location / {
      default_type application/json;
      return 200 '${upstreamBody}';
    }
  }`)
}

function proxyConfig (dir: string, port: number, upstreamPort: number): string {
  return nginxConfig(dir, 'proxy', `  upstream api {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port};
    location /bench/ {
      proxy_pass http://api/api/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "${upstreamCredential}";
    }
  }`)
}

/** A depth-3 token scoped `scope` for `audience`: a root, then one exchange per actor. */
async function depth3Token (agent: Agent, l: Awaited<ReturnType<typeof startLineage>>, client: ServiceClient, scope: string, audience: string): Promise<string> {
  let token = await rootToken(agent, l, client)
  for (const actor of actors) token = await exchange(agent, l, token, { actor, scope, audience })
  const p = decodeJwt(token).payload as { lineage?: { depth?: number }, scope?: string }
  if (p.lineage?.depth !== 3 || p.scope !== scope) throw new Error(`expected a depth-3 ${scope} token, got depth ${String(p.lineage?.depth)} scope ${String(p.scope)}`)
  return token
}

/** One request through each case must answer 200 with the upstream's body before anything is measured. */
async function verify (agent: Agent, cases: Case[], token: string, posts: Case[], postToken: string): Promise<void> {
  for (const c of posts) {
    const r = await send(agent, 'POST', new URL(c.url), postBody, { authorization: `Bearer ${postToken}`, 'content-type': 'application/json' })
    if (r.status !== 200 || r.body !== upstreamBody) throw new Error(`(${c.key}) POST ${c.url}: HTTP ${r.status} ${r.body.slice(0, 300)}`)
  }
  const auth = { authorization: `Bearer ${token}` }
  for (const c of cases) {
    const r = await send(agent, 'GET', new URL(c.url), undefined, auth)
    if (r.status !== 200 || r.body !== upstreamBody) throw new Error(`(${c.key}) ${c.url}: HTTP ${r.status} ${r.body.slice(0, 300)}`)
    if (c.key === 'a') continue
    // What the upstream was sent: its credential in place of the agent's token.
    const echo = await send(agent, 'GET', new URL(c.url.replace(requestPath, '/_echo')), undefined, auth)
    const seen = JSON.parse(echo.body) as { authorization: string, actor: string }
    if (echo.status !== 200 || seen.authorization !== upstreamCredential) throw new Error(`(${c.key}) the upstream was sent Authorization ${seen.authorization.slice(0, 40)}`)
    if (c.key === 'd' && seen.actor !== actors[actors.length - 1]) throw new Error(`(d) the upstream was sent Lineage-Actor ${seen.actor}`)
  }
  const d = cases.find((c) => c.key === 'd')
  if (d !== undefined) {
    // The policy is live: its third rule refuses /payroll/*.
    const r = await send(agent, 'GET', new URL(d.url.replace(requestPath, '/payroll/march')), undefined, auth)
    if (r.status !== 403 || !r.body.includes('approval required')) throw new Error(`(d) /payroll/march should be refused by the policy: HTTP ${r.status} ${r.body}`)
  }
}

async function measure (wrk: string, c: Case, upstreamPid: number, token: string, conns: number, secs: number, script?: string): Promise<Run> {
  const cpu = async (): Promise<number[]> => [c.pid === undefined ? 0 : await cpuMsOfTree(c.pid), await cpuMsOfTree(upstreamPid), await cpuMsOfCommand('postgres'), await machineProcessMs()]
  const before = await cpu()
  const t0 = Date.now()
  const result = await runWrk(wrk, c.url, { threads, connections: conns, seconds: secs, headers: { Authorization: `Bearer ${token}` }, script })
  const wallMs = Date.now() - t0
  const after = await cpu()
  const d = after.map((x, i) => x - before[i])
  return { wrk: result, proxyMs: d[0], upstreamMs: d[1], postgresMs: d[2], machineMs: d[3], wallMs }
}

/** Process CPU time on the machine that is none of ours (proxy, upstream, PostgreSQL, wrk), in % of all CPUs. */
function otherShare (r: Run): number {
  const other = r.machineMs - r.proxyMs - r.upstreamMs - r.postgresMs - r.wrk.cpuMs
  return Math.max(0, 100 * other / (r.wallMs * availableParallelism()))
}

function errorsOf (r: Run): number {
  return r.wrk.non2xx + r.wrk.socketErrors
}

function best (runs: Run[]): Run {
  return runs.reduce((a, b) => (b.wrk.rate > a.wrk.rate ? b : a))
}

function verdict (ok: boolean): string {
  return ok ? 'met' : 'NOT met'
}

function report (cases: Case[], runs: Map<Key, Run[]>, single: Map<Key, Run>): boolean {
  const perReq = (ms: number, r: Run): string => fixed(ms * 1000 / r.wrk.requests, 0)
  const rows = cases.map((c) => {
    const all = runs.get(c.key) ?? []
    const r = best(all)
    return [`(${c.key}) ${c.name}`, fixed(r.wrk.rate, 0), fixed(r.wrk.p50, 3), fixed(r.wrk.p99, 3),
      c.pid === undefined ? '-' : perReq(r.proxyMs, r), perReq(r.upstreamMs, r), c.key === 'd' ? perReq(r.postgresMs, r) : '-', perReq(r.wrk.cpuMs, r),
      `${fixed(otherShare(r), 0)}%`, String(all.reduce((n, x) => n + errorsOf(x), 0)), all.map((x) => fixed(x.wrk.rate, 0)).join(' / ')]
  })
  console.log('')
  console.log(`${connections} connections, best of ${rounds} runs of ${seconds} s by req/s:`)
  console.log(table(['case', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'upstream µs/req', 'postgres µs/req', 'wrk µs/req', 'other load', 'errors', 'req/s of each run'], rows))
  console.log('')
  console.log(`1 connection, ${c1Seconds} s (latency with no queueing):`)
  console.log(table(['case', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req'], cases.map((c) => {
    const r = single.get(c.key) as Run
    return [`(${c.key}) ${c.name}`, fixed(r.wrk.rate, 0), fixed(r.wrk.p50, 3), fixed(r.wrk.p99, 3), c.pid === undefined ? '-' : perReq(r.proxyMs, r)]
  })))
  const b = (k: Key): Run => best(runs.get(k) ?? [])
  const vsBare = b('d').wrk.rate / b('c').wrk.rate
  const vsNginx = b('d').wrk.rate / b('b').wrk.rate
  const added = b('d').wrk.p50 - b('a').wrk.p50
  const added1 = (single.get('d') as Run).wrk.p50 - (single.get('a') as Run).wrk.p50
  console.log('')
  console.log(`(d)/(c) Lineage / bare Node proxy req/s: ${fixed(vsBare, 2)} (target ≥ ${targetVsBare}): ${verdict(vsBare >= targetVsBare)}`)
  console.log(`(d)/(b) Lineage / nginx proxy_pass req/s: ${fixed(vsNginx, 2)} (target ≥ ${targetVsNginx}): ${verdict(vsNginx >= targetVsNginx)}`)
  console.log(`added p50 (d) − (a) at ${connections} connections: ${fixed(added, 3)} ms (target ≤ ${targetAddedP50Ms} ms): ${verdict(added <= targetAddedP50Ms)}`)
  console.log(`  (at ${connections} connections p50 is mostly queueing, about ${connections} / rate: ${fixed(1000 * connections / b('d').wrk.rate, 1)} ms for (d))`)
  console.log(`added p50 (d) − (a) at 1 connection: ${fixed(added1, 3)} ms (target ≤ ${targetAddedP50Ms} ms): ${verdict(added1 <= targetAddedP50Ms)}`)
  console.log(`(d)/(e) Lineage / bare proxy on node:http and undici req/s: ${fixed(b('d').wrk.rate / b('e').wrk.rate, 2)} (no target)`)
  console.log(`(f)/(b) raw-socket Node.js proxy / nginx proxy_pass req/s: ${fixed(b('f').wrk.rate / b('b').wrk.rate, 2)} (no target: how near nginx Node.js itself gets here)`)
  const errors = [...runs.values()].flat().concat([...single.values()]).reduce((n, r) => n + errorsOf(r), 0)
  if (errors > 0) console.log(`errors: ${errors} non-2xx responses or socket errors in total`)
  console.log('(µs/req: CPU time over the measured run / requests completed; other load: CPU time of processes that are none of these, as a share of all the machine\'s CPUs)')
  const disturbed = [...runs.values()].flat().some((r) => otherShare(r) > 5)
  if (disturbed) console.log('WARNING: other processes took more than 5 % of the machine during a measured run: the numbers are disturbed')
  return vsBare >= targetVsBare && vsNginx >= targetVsNginx && added <= targetAddedP50Ms && errors === 0
}

/** The POST runs: no target, side by side with the GET runs' figures. Returns their errors. */
function reportPosts (posts: Case[], runs: Map<Key, Run>): number {
  const perReq = (ms: number, r: Run): string => fixed(ms * 1000 / r.wrk.requests, 0)
  console.log('')
  console.log(`POST of a ${postBody.length}-byte JSON body, ${connections} connections, one run of ${seconds} s ((d): target upload, every body searched for a method override):`)
  console.log(table(['case', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'upstream µs/req', 'postgres µs/req', 'other load', 'errors'], posts.map((c) => {
    const r = runs.get(c.key) as Run
    return [`(${c.key}) ${c.name}`, fixed(r.wrk.rate, 0), fixed(r.wrk.p50, 3), fixed(r.wrk.p99, 3), perReq(r.proxyMs, r), perReq(r.upstreamMs, r), c.key === 'd' ? perReq(r.postgresMs, r) : '-', `${fixed(otherShare(r), 0)}%`, String(errorsOf(r))]
  })))
  const rate = (k: Key): number => (runs.get(k) as Run).wrk.rate
  console.log(`POST (d)/(b) ${fixed(rate('d') / rate('b'), 2)}, (d)/(c) ${fixed(rate('d') / rate('c'), 2)}, (d)/(e) ${fixed(rate('d') / rate('e'), 2)} (no target)`)
  return [...runs.values()].reduce((n, r) => n + errorsOf(r), 0)
}

async function main (defer: Defer): Promise<void> {
  const tools = requireTools(['nginx', 'wrk'], 'apt-get install nginx wrk   (Debian/Ubuntu, as root)')
  console.log(await machineFacts())
  console.log(`${toolVersion(tools.nginx)}; ${toolVersion(tools.wrk).replace(/ Copyright.*/, '')}`)
  const dir = await mkdtemp(join(tmpdir(), 'lineage-bench-gw-'))
  defer('remove temp dir', async () => { await rm(dir, { recursive: true, force: true }) })

  const upstreamPort = await freePort()
  const upstream = await startNginx(tools.nginx, dir, 'upstream', upstreamConfig(dir, upstreamPort), upstreamPort)
  defer('stop upstream nginx', upstream.stop)
  const upstreamBase = `http://127.0.0.1:${upstreamPort}/api`

  const proxyPort = await freePort()
  const nginxProxy = await startNginx(tools.nginx, dir, 'proxy', proxyConfig(dir, proxyPort, upstreamPort), proxyPort)
  defer('stop nginx proxy', nginxProxy.stop)

  const bare = await startBareProxy({ upstream: upstreamBase, prefix: '/bench', headers: { authorization: upstreamCredential }, client: 'node:http' })
  defer('stop bare proxy', async () => { await bare.child.stop() })
  const bareUndici = await startBareProxy({ upstream: upstreamBase, prefix: '/bench', headers: { authorization: upstreamCredential }, client: 'undici' })
  defer('stop bare undici proxy', async () => { await bareUndici.child.stop() })
  const raw = await startRawProxy({ upstream: upstreamBase, prefix: '/bench', headers: { authorization: upstreamCredential } })
  defer('stop raw proxy', async () => { await raw.child.stop() })

  const db = await createBenchDatabase('lineage_bench')
  defer(`drop database ${db.name}`, db.drop)
  console.log(`postgres: ${serverVersion(await withClient(db.url, async (c) => (await c.query<{ version: string }>('SELECT version()')).rows[0]))}, database ${db.name}`)
  const lineage = await startLineage(db.url, profileArgs())
  defer('stop Lineage', lineage.stop)
  const gateway = lineage.listening.gateway_http
  if (gateway === undefined) throw new Error(`Lineage announced no gateway_http listener: ${JSON.stringify(lineage.listening)}`)

  const agent = keepAliveAgent(2)
  defer('close agent', async () => { agent.destroy() })
  await admin(agent, lineage, 'POST', '/v1/targets', { name: 'bench', kind: 'http', upstream: upstreamBase, headers: { Authorization: upstreamCredential }, policy }, 201)
  await admin(agent, lineage, 'POST', '/v1/targets', { name: 'upload', kind: 'http', upstream: upstreamBase, headers: { Authorization: upstreamCredential }, policy: writePolicy }, 201)
  for (const name of ['bench', 'upload']) {
    const saved = await admin<{ policy: { rules: unknown[] } }>(agent, lineage, 'GET', `/v1/targets/${name}`, undefined, 200)
    if (saved.policy.rules.length !== 5) throw new Error(`target ${name} has ${saved.policy.rules.length} rules, not 5`)
  }
  const client = await seedService(agent, lineage, 'alice', 'report-svc', ['bench:*', 'upload:*'])
  const token = await depth3Token(agent, lineage, client, 'bench:read', 'bench')
  const postToken = await depth3Token(agent, lineage, client, 'upload:write', 'upload')
  const postScript = join(dir, 'post.lua')
  await writeFile(postScript, `wrk.method = "POST"\nwrk.body = '${postBody}'\nwrk.headers["Content-Type"] = "application/json"\n`)

  const cases: Case[] = [
    { key: 'a', name: 'direct to upstream', url: `${upstreamBase}${requestPath}`, pid: undefined },
    { key: 'b', name: 'nginx proxy_pass', url: `http://127.0.0.1:${proxyPort}/bench${requestPath}`, pid: nginxProxy.pid },
    { key: 'c', name: 'bare Node.js proxy', url: `${bare.url}/bench${requestPath}`, pid: bare.child.pid },
    { key: 'd', name: 'Lineage gateway', url: `${gateway}/bench${requestPath}`, pid: lineage.child.pid },
    { key: 'e', name: 'bare proxy, undici client', url: `${bareUndici.url}/bench${requestPath}`, pid: bareUndici.child.pid },
    { key: 'f', name: 'raw-socket Node.js proxy', url: `${raw.url}/bench${requestPath}`, pid: raw.child.pid }
  ]
  const posts: Case[] = cases.filter((c) => 'bcde'.includes(c.key)).map((c) => c.key === 'd' ? { ...c, url: `${gateway}/upload/v1/items` } : { ...c, url: c.url.replace(requestPath, '/v1/items') })
  await verify(agent, cases, token, posts, postToken)
  agent.destroy()
  console.log(`upstream: nginx return 200, ${upstreamBody.length}-byte JSON body, for every case; request GET /bench${requestPath} with a ${token.length}-byte depth-3 token (actors ${actors.join(' → ')}, scope bench:read), target policy of ${policy.rules.length} rules, none matching`)
  console.log(`load: wrk -t${threads} -c${connections} -d${seconds}s --latency, ${warmupSeconds} s warm-up before each run, ${rounds} rounds round-robin a→b→c→d→e→f, then -c1 -d${c1Seconds}s each`)

  const idle0 = await machineProcessMs()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const idleShare = 100 * (await machineProcessMs() - idle0) / (2000 * availableParallelism())
  console.log(`machine before the load: ${fixed(idleShare, 0)}% busy over 2 s${idleShare > 5 ? '  ← something else is running: the numbers will be disturbed' : ''}`)

  const runs = new Map<Key, Run[]>()
  for (let round = 1; round <= rounds; round++) {
    for (const c of cases) {
      await runWrk(tools.wrk, c.url, { threads, connections, seconds: warmupSeconds, headers: { Authorization: `Bearer ${token}` } })
      const r = await measure(tools.wrk, c, upstream.pid, token, connections, seconds)
      runs.set(c.key, [...(runs.get(c.key) ?? []), r])
      console.log(`  round ${round} (${c.key}) ${c.name}: ${fixed(r.wrk.rate, 0)} req/s, p50 ${fixed(r.wrk.p50, 3)} ms, p99 ${fixed(r.wrk.p99, 3)} ms, other load ${fixed(otherShare(r), 0)}%${errorsOf(r) > 0 ? `, ${errorsOf(r)} errors` : ''}`)
    }
  }
  const single = new Map<Key, Run>()
  for (const c of cases) single.set(c.key, await measure(tools.wrk, c, upstream.pid, token, 1, c1Seconds))
  const postRuns = new Map<Key, Run>()
  for (const c of posts) {
    await runWrk(tools.wrk, c.url, { threads, connections, seconds: warmupSeconds, headers: { Authorization: `Bearer ${postToken}` }, script: postScript })
    const r = await measure(tools.wrk, c, upstream.pid, postToken, connections, seconds, postScript)
    postRuns.set(c.key, r)
    console.log(`  POST (${c.key}) ${c.name}: ${fixed(r.wrk.rate, 0)} req/s, p50 ${fixed(r.wrk.p50, 3)} ms, p99 ${fixed(r.wrk.p99, 3)} ms, other load ${fixed(otherShare(r), 0)}%${errorsOf(r) > 0 ? `, ${errorsOf(r)} errors` : ''}`)
  }
  const met = report(cases, runs, single)
  const postErrors = reportPosts(posts, postRuns)
  process.exitCode = met && postErrors === 0 ? 0 : 1
}

await withCleanup(main)
