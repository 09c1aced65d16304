/**
 * Benchmark: RFC 8693 token exchange throughput and latency, Lineage against the token
 * endpoint a Node team would otherwise deploy.
 *
 * What it measures: Lineage (`src/main.ts` in its own process, on a fresh PostgreSQL database)
 * answering `BENCH_EXCHANGES` (default 20,000) token exchanges from 32 concurrent clients, each
 * client building chains of depth 1 to 4 under root tokens (narrowing scope and audience,
 * naming an actor per step); then, as the peer, oidc-provider 9's `client_credentials` grant
 * issuing EdDSA JWT access tokens under the same load. It prints each side's rate (successful
 * requests per second), p50 and p99 latency, the ratio of the rates, and whether the targets
 * hold: Lineage ≥ 4 × the peer's rate, Lineage p99 ≤ 25 ms.
 *
 * How: the load comes from a separate process (`lib/load-generator.ts`) over keep-alive HTTP/1.1
 * connections, so it never shares the server's event loop. Each side gets `BENCH_WARMUP_MS`
 * (default 2,000) of unmeasured load first. Latency is per request, send to last body byte;
 * only 200s count as successes and any other answer is counted and shown. Durability: after
 * the run, every `jti` Lineage returned must be a row of `tokens`, and the count of rows with
 * `depth > 0` must be at least the number of successful exchanges. Root tokens come from
 * `client_credentials` in setup and are not counted. Server and PostgreSQL CPU time are read
 * from /proc. `BENCH_CPU_PROF=<dir>` writes a V8 CPU profile of the Lineage process there.
 *
 * Needs PostgreSQL at `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/postgres);
 * a database with a random name is created and dropped at the end, even on error.
 */
import type { Agent } from 'node:http'
import { availableParallelism } from 'node:os'
import { withCleanup } from './lib/cleanup.js'
import { cpuDuring, type CpuSpent } from './lib/cpu.js'
import { createBenchDatabase, withClient, type BenchDatabase } from './lib/database.js'
import { envInt, profileArgs } from './lib/env.js'
import { decodeJwt, jsonOf, keepAliveAgent, postForm } from './lib/http.js'
import { rootToken, seedService, startLineage, type LineageProcess } from './lib/lineage.js'
import { runLoad } from './lib/load.js'
import type { LoadResult, LoadSpec } from './lib/load-spec.js'
import { machineFacts, serverVersion } from './lib/machine.js'
import { basicAuth, startPeer } from './lib/peer.js'
import { fixed, table } from './lib/table.js'

const concurrency = 32
const maxDepth = 4
const rootPool = 64
const targetRatio = 4
const targetP99Ms = 25

interface Side { name: string, result: LoadResult, cpu: CpuSpent<LoadResult> }

function loadSpec (scenario: LoadSpec['scenario'], collectJtis: boolean): LoadSpec {
  return { scenario, concurrency, warmupMs: envInt('BENCH_WARMUP_MS', 2000), requests: envInt('BENCH_EXCHANGES', 20_000), collectJtis }
}

function headerLine (who: string, jwt: string): string {
  const { header, payload } = decodeJwt(jwt)
  return `${who} token header ${JSON.stringify(header)}, ${jwt.length} bytes, claims: ${Object.keys(payload).join(' ')}`
}

async function rootTokens (agent: Agent, lineage: LineageProcess): Promise<string[]> {
  const client = await seedService(agent, lineage, 'alice', 'ci-bench', ['api:*', 'db:*', 'ssh:*'])
  const roots: string[] = []
  for (let i = 0; i < rootPool; i++) roots.push(await rootToken(agent, lineage, client))
  return roots
}

/** Every returned token is a row of `tokens`; rows below the roots cover every success. */
async function durability (db: BenchDatabase, r: LoadResult): Promise<{ lines: string[], ok: boolean }> {
  return await withClient(db.url, async (c) => {
    const children = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM tokens WHERE depth > 0')).rows[0].n)
    const found = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM tokens WHERE jti = ANY ($1::text[])', [r.jtis])).rows[0].n)
    const byDepth = (await c.query<{ depth: number, n: string }>('SELECT depth, count(*) AS n FROM tokens GROUP BY depth ORDER BY depth')).rows
    const ok = children >= r.ok && found === r.jtis.length
    return {
      ok,
      lines: [
        `durability: SELECT count(*) FROM tokens WHERE depth > 0 → ${children} (successful measured exchanges: ${r.ok}, plus warm-up: ${r.warmupRequests} sent)`,
        `durability: measured tokens whose jti is in tokens: ${found} of ${r.jtis.length} → ${ok ? 'every exchange recorded' : 'MISSING ROWS'}`,
        `tokens by depth: ${byDepth.map((d) => `${d.depth}:${d.n}`).join(' ')}`
      ]
    }
  })
}

/** Transactions committed on the bench database, per exchange: how well the ledger batches its inserts. */
async function commitsLine (db: BenchDatabase, exchanges: number): Promise<string> {
  // A backend reports its counters when it exits; Lineage has just stopped, give it a moment.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const commits = await withClient(db.url, async (c) => Number((await c.query<{ n: string }>(
    'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0].n))
  return `postgres: ${commits} transactions committed on the bench database over the whole run (setup included), ${fixed(commits / exchanges, 2)} per exchange sent`
}

async function benchLineage (defer: (what: string, fn: () => Promise<void>) => void): Promise<{ side: Side, durable: boolean }> {
  const db = await createBenchDatabase('lineage_bench')
  defer(`drop database ${db.name}`, db.drop)
  console.log(`postgres: ${serverVersion(await withClient(db.url, async (c) => (await c.query<{ version: string }>('SELECT version()')).rows[0]))}, database ${db.name}`)
  const lineage = await startLineage(db.url, profileArgs())
  defer('stop Lineage', lineage.stop)
  const agent = keepAliveAgent(4)
  const roots = await rootTokens(agent, lineage)
  agent.destroy()
  console.log(headerLine('Lineage root', roots[0]))
  const spec = loadSpec({ kind: 'exchange', tokenUrl: new URL('/oauth/token', lineage.url).toString(), roots, maxDepth }, true)
  const cpu = await cpuDuring(lineage.child.pid, 'postgres', async () => await runLoad(spec))
  const check = await durability(db, cpu.result)
  for (const line of check.lines) console.log(line)
  await lineage.stop()
  console.log(await commitsLine(db, cpu.result.requests + cpu.result.warmupRequests))
  return { side: { name: 'Lineage token exchange', result: cpu.result, cpu }, durable: check.ok }
}

async function benchPeer (defer: (what: string, fn: () => Promise<void>) => void): Promise<Side> {
  const peer = await startPeer()
  defer('stop peer', async () => { await peer.child.stop() })
  const agent = keepAliveAgent(1)
  const form = { grant_type: 'client_credentials', resource: peer.info.resource, scope: peer.info.scope }
  const headers = { authorization: basicAuth(peer.info) }
  const first = jsonOf<{ access_token: string }>(await postForm(agent, new URL(peer.info.tokenUrl), form, headers), 200, 'peer client_credentials')
  agent.destroy()
  const alg = decodeJwt(first.access_token).header.alg
  if (alg !== 'EdDSA') throw new Error(`the peer issued alg ${String(alg)}, not EdDSA`)
  console.log(headerLine('peer (oidc-provider 9)', first.access_token))
  const spec = loadSpec({ kind: 'repeat', tokenUrl: peer.info.tokenUrl, headers, form }, false)
  const cpu = await cpuDuring(peer.child.pid, 'postgres', async () => await runLoad(spec))
  await peer.child.stop()
  return { name: 'peer: oidc-provider client_credentials', result: cpu.result, cpu }
}

/** How busy the machine was during a side's load, and how much of that was none of ours. */
function machineLine (s: Side, usesPostgres: boolean): string {
  const { cpu, result: r } = s
  const generatorMs = r.generatorCpuUsPerRequest * (r.requests + r.warmupRequests) / 1000
  const other = cpu.machineMs - cpu.processMs - (usesPostgres ? cpu.commMs : 0) - generatorMs
  const share = (ms: number): string => `${fixed(100 * ms / (cpu.wallMs * availableParallelism()), 0)}%`
  const warn = other / cpu.machineMs > 0.05 ? '  ← other load on the machine: numbers are disturbed' : ''
  return `  ${s.name}: machine ${share(cpu.machineMs)} busy over ${fixed(cpu.wallMs / 1000, 1)} s; server ${share(cpu.processMs)}, ` +
    `${usesPostgres ? `postgres ${share(cpu.commMs)}, ` : ''}load generator ${share(generatorMs)}, everything else ${share(other)}${warn}`
}

function report (lineage: Side, peer: Side, durable: boolean): boolean {
  const row = (s: Side, usesPostgres: boolean): string[] => {
    const r = s.result
    const sent = r.requests + r.warmupRequests
    return [s.name, String(r.requests), String(r.errors), fixed(r.rate, 0), fixed(r.latency.p50, 2), fixed(r.latency.p90, 2), fixed(r.latency.p99, 2), fixed(r.latency.max, 1),
      fixed(s.cpu.processMs * 1000 / sent, 0), usesPostgres ? fixed(s.cpu.commMs * 1000 / sent, 0) : '-', fixed(r.generatorCpuUsPerRequest, 0)]
  }
  console.log('')
  console.log(table(['', 'requests', 'errors', 'rate req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'server CPU µs/req', 'postgres CPU µs/req', 'load-gen CPU µs/req'], [row(lineage, true), row(peer, false)]))
  for (const s of [lineage, peer]) {
    for (const e of s.result.errorSamples) console.log(`  ${s.name} error: ${e}`)
  }
  const ratio = lineage.result.rate / peer.result.rate
  const ratioOk = ratio >= targetRatio
  const p99Ok = lineage.result.latency.p99 <= targetP99Ms
  console.log('')
  console.log(`ratio Lineage / peer rate: ${fixed(ratio, 2)} × (target ≥ ${targetRatio}): ${ratioOk ? 'met' : 'NOT met'}`)
  console.log(`Lineage p99: ${fixed(lineage.result.latency.p99, 2)} ms (target ≤ ${targetP99Ms} ms): ${p99Ok ? 'met' : 'NOT met'}`)
  console.log(`every exchange durably recorded: ${durable ? 'yes' : 'NO'}`)
  console.log('(CPU µs/req: CPU time of the server process, of all PostgreSQL processes and of the load generator, over warm-up + measured requests)')
  console.log('CPU share of the machine during each side\'s load (warm-up included):')
  console.log(machineLine(lineage, true))
  console.log(machineLine(peer, false))
  return ratioOk && p99Ok && durable && lineage.result.errors === 0
}

await withCleanup(async (defer) => {
  console.log(await machineFacts())
  console.log(`load: ${concurrency} concurrent clients, ${envInt('BENCH_EXCHANGES', 20_000)} measured requests per side after ${envInt('BENCH_WARMUP_MS', 2000)} ms warm-up; Lineage chains of depth 1-${maxDepth} under ${rootPool} root tokens`)
  const { side: lineage, durable } = await benchLineage(defer)
  const peer = await benchPeer(defer)
  process.exitCode = report(lineage, peer, durable) ? 0 : 1
})
