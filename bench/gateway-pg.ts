/**
 * Benchmark: what Lineage's PostgreSQL gateway costs per transaction, side by side with
 * PgBouncer, and how fast a cut-off ends idle sessions.
 *
 * What it measures, in one run, one case after another (never overlapping: the machine has few
 * cores): pgbench (`-c 16 -j 2 -T 10 -n`, its own process, no TLS anywhere) runs the built-in
 * select-only script (`-S`) and the default TPC-B-like script, each in `-M simple`, `extended`
 * and `prepared`, against the same pgbench database (`pgbench -i -s 10`, created direct):
 *   (a) PostgreSQL directly (user postgres, trust);
 *   (b) Debian's PgBouncer in session mode (its own process, run as postgres, pool of 20);
 *   (c) Lineage's gateway (`node --import tsx src/main.ts`, role all, real PostgreSQL for its
 *       own state in another database) on the postgres target `bench`, whose upstream is that
 *       database, with the password a depth-3 token (root → three exchanges, each naming an
 *       actor) scoped `bench:read bench:write`, and a policy of five rules none of which
 *       matches a pgbench statement. Every statement is classified, checked and audited;
 *   (d) a bare Node.js relay (`lib/pg-relay-server.ts`, its own process): each connection piped
 *       to PostgreSQL, nothing parsed. No target: it is the floor of a proxy on Node's sockets.
 * For each script and mode the four cases run back to back (a → b → c → d), each after
 * `BENCH_WARMUP_S` (default 2) of unmeasured load; `BENCH_ROUNDS` (default 1) passes over all of
 * it, the best run by TPS counting. CPU time is read from /proc: pgbench's own, the proxy's
 * (PgBouncer, the Lineage process with its children, or the relay), PostgreSQL's backends of the pgbench
 * database and of Lineage's database (the audit writes), and what the rest of the machine used;
 * with the proxy's main thread's time on a CPU and time runnable but waiting for one (schedstat).
 * It prints TPS and average latency, the ratios and whether the targets hold: (c) ≥ 0.8 × (b)
 * and (c) ≥ 0.6 × (a) in every script and mode. For (c) it also counts the audit records the
 * run left (statements audited per transaction).
 *
 * Then the cut-off: `BENCH_IDLE_SESSIONS` (default 200) node-postgres sessions through the
 * gateway, each with its own depth-3 token (one service: root → planner → worker → agent-<i>)
 * on the target `idle`, logged in, `SELECT 1` answered, then idle. The upstream of `idle` is
 * the same pgbench database behind the same PgBouncer in transaction mode: PostgreSQL's
 * `max_connections` (100 by default) could not hold 200 upstream sessions, and the gateway
 * opens one per agent session. One admin call cuts them all off; the clock starts just before
 * it is sent and stops, per session, when that client receives its FATAL. The call's 2xx waits
 * until every process applied the cut-off. `BENCH_CUTOFF_ROUNDS` (default 2) rounds, fresh
 * principals each time, alternating `POST /v1/tokens/{root jti}/revoke` and
 * `POST /v1/principals/{human}/offboard`. It prints p50/p99/max (target: p99 ≤ 100 ms) and
 * counts every session that ended other than with FATAL 28000.
 *
 * Needs pgbench and pgbouncer (`apt-get install postgresql-client pgbouncer`) and PostgreSQL at
 * `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/postgres, trust on 127.0.0.1);
 * both databases are created with random names and dropped at the end, even on error. Knobs:
 * `BENCH_SECONDS`, `BENCH_CLIENTS` (16), `BENCH_THREADS` (2), `BENCH_SCALE` (10).
 * `BENCH_CPU_PROF=<dir>` writes a V8 CPU profile of the Lineage process there.
 */
import { availableParallelism } from 'node:os'
import type { Agent } from 'node:http'
import pg from 'pg'
import { withCleanup, type Defer } from './lib/cleanup.js'
import { pool } from './lib/cluster.js'
import { cpuMsOfTree, machineProcessMs, mainThreadSchedMs } from './lib/cpu.js'
import { createBenchDatabase, serverUrl, withClient } from './lib/database.js'
import { envInt, profileArgs } from './lib/env.js'
import { decodeJwt, keepAliveAgent, send } from './lib/http.js'
import { admin, exchange, rootToken, seedService, startLineage, type LineageProcess } from './lib/lineage.js'
import { machineFacts, serverVersion } from './lib/machine.js'
import { runMeasured } from './lib/measured-run.js'
import { pgbenchArgs, runPgbench, type PgbenchMode, type PgbenchResult } from './lib/pgbench.js'
import { startPgBouncer } from './lib/pgbouncer.js'
import { startPgRelay } from './lib/pg-relay.js'
import { closeSessions, endsOf, openIdleSessions } from './lib/pg-idle-sessions.js'
import { PostgresCpu } from './lib/postgres-cpu.js'
import { summarize } from './lib/stats.js'
import { fixed, table } from './lib/table.js'
import { freePort, requireTools, toolVersion } from './lib/tools.js'

const seconds = envInt('BENCH_SECONDS', 10)
const clients = envInt('BENCH_CLIENTS', 16)
const threads = envInt('BENCH_THREADS', 2)
const scale = envInt('BENCH_SCALE', 10)
const warmupSeconds = envInt('BENCH_WARMUP_S', 2)
const rounds = envInt('BENCH_ROUNDS', 1)
const idleCount = envInt('BENCH_IDLE_SESSIONS', 200)
const cutoffRounds = envInt('BENCH_CUTOFF_ROUNDS', 2)
const setupConcurrency = 16

const targetVsBouncer = 0.8
const targetVsDirect = 0.6
const targetCutoffP99Ms = 100

const modes: PgbenchMode[] = ['simple', 'extended', 'prepared']
const scripts = [{ name: 'select-only (-S)', selectOnly: true }, { name: 'TPC-B-like (default)', selectOnly: false }]
const actors = ['planner', 'worker', 'fetcher']

/** Five realistic rules; no pgbench statement (read/write on pgbench_*, by `fetcher`, depth 3) matches any. */
const policy = {
  rules: [
    { effect: 'deny', actions: ['ddl', 'admin'], min_depth: 2, reason: 'agents two hops down change no schema' },
    { effect: 'deny', statements: ['delete_without_where', 'update_without_where', 'truncate', 'drop'], reason: 'no unbounded changes' },
    { effect: 'deny', tables: ['secrets*', 'payroll'], reason: 'not for agents' },
    { effect: 'deny', actors: ['never-*'], reason: 'quarantined agents' },
    { effect: 'mask', tables: ['customers'], columns: ['customers.ssn'], with: 'redact', reason: 'PII' }
  ]
}

type Key = 'a' | 'b' | 'c' | 'd'

interface Case {
  key: Key
  name: string
  host: string
  port: number
  user: string
  database: string
  password?: string
}

interface Run {
  key: Key
  script: string
  mode: PgbenchMode
  pgbench: PgbenchResult
  /** CPU ms over the measured run. */
  lineageMs: number
  bouncerMs: number
  relayMs: number
  dataPgMs: number
  lineagePgMs: number
  otherMs: number
  /** The proxy's main thread (PgBouncer's only one, Lineage's event loop): time it ran, and time it waited for a CPU. */
  proxyRunMs: number
  proxyWaitMs: number
  wallMs: number
  /** Audit records of allowed statements on `bench` the run left, for (c). */
  audited?: number
}

/** The depth-3 token of the pgbench clients: a root, then one exchange per actor. */
async function depth3Token (agent: Agent, l: LineageProcess): Promise<string> {
  const client = await seedService(agent, l, 'alice', 'report-svc', ['bench:read', 'bench:write'])
  let token = await rootToken(agent, l, client)
  for (const actor of actors) token = await exchange(agent, l, token, { actor, scope: 'bench:read bench:write', audience: 'bench' })
  const p = decodeJwt(token).payload as { lineage?: { depth?: number }, scope?: string }
  if (p.lineage?.depth !== 3 || p.scope !== 'bench:read bench:write') throw new Error(`expected a depth-3 token, got depth ${String(p.lineage?.depth)} scope ${String(p.scope)}`)
  return token
}

/** Each case must answer pgbench's own first query before anything is measured; the gateway must refuse what the policy denies. */
async function verify (cases: Case[]): Promise<void> {
  for (const c of cases) {
    const client = new pg.Client({ host: c.host, port: c.port, user: c.user, password: c.password, database: c.database, ssl: false })
    await client.connect().catch((err: Error) => { throw new Error(`(${c.key}) ${c.name}: ${err.message}`) })
    try {
      const n = (await client.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_branches')).rows[0].n
      if (Number(n) !== scale) throw new Error(`(${c.key}) ${c.name}: ${n} branches, expected ${scale}`)
      if (c.key !== 'c') continue
      const refused = await client.query('SELECT * FROM secrets_vault').then(() => undefined, (err: Error & { code?: string }) => err)
      if (refused?.code !== '42501' || !refused.message.includes('denied by policy')) throw new Error(`(c) the policy should refuse SELECT * FROM secrets_vault: ${refused?.code ?? 'no error'} ${refused?.message ?? ''}`)
    } finally {
      await client.end()
    }
  }
}

/** Waits until the Lineage process has written every audit event it queued. */
async function auditFlushed (l: LineageProcess, agent: Agent): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const m = await send(agent, 'GET', new URL('/metrics', l.url), undefined, {})
    if (/^lineage_audit_backlog 0$/m.test(m.body)) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Audit records of allowed statements on `bench` so far. */
async function auditedStatements (l: LineageProcess, agent: Agent, lineageDb: string): Promise<number> {
  await auditFlushed(l, agent)
  return await withClient(lineageDb, async (c) => Number((await c.query<{ n: string }>("SELECT count(*) AS n FROM audit WHERE kind = 'gateway.pg' AND target = 'bench' AND decision = 'allow'")).rows[0].n))
}

/** When the gateway ended the sessions of the chain rooted at `root`, by its audit records (ms since the epoch). */
async function sessionsEndedAt (l: LineageProcess, agent: Agent, lineageDb: string, root: string): Promise<{ first: number, last: number }> {
  await auditFlushed(l, agent)
  const row = await withClient(lineageDb, async (c) => (await c.query<{ first: Date, last: Date }>(
    "SELECT min(at) AS first, max(at) AS last FROM audit WHERE kind = 'gateway.pg' AND root = $1 AND detail->>'event' = 'session_ended'", [root])).rows[0])
  return { first: row.first?.getTime() ?? Number.NaN, last: row.last?.getTime() ?? Number.NaN }
}

async function measure (pgbench: string, c: Case, script: typeof scripts[number], mode: PgbenchMode, pids: { lineage: number, bouncer: number, relay: number }, dbs: { data: string, lineage: string }, audit: () => Promise<number>): Promise<Run> {
  const opts = { ...c, clients, threads, seconds, mode, selectOnly: script.selectOnly }
  await runPgbench(pgbench, { ...opts, seconds: warmupSeconds })
  const auditBefore = c.key === 'c' ? await audit() : 0
  const pgCpu = await PostgresCpu.start([dbs.data, dbs.lineage])
  const cpu = async (): Promise<number[]> => [await cpuMsOfTree(pids.lineage), await cpuMsOfTree(pids.bouncer), await machineProcessMs(), process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000, await cpuMsOfTree(pids.relay)]
  const proxyPid = c.key === 'b' ? pids.bouncer : c.key === 'd' ? pids.relay : pids.lineage
  const before = await cpu()
  const s0 = await mainThreadSchedMs(proxyPid)
  const t0 = Date.now()
  const r = await runPgbench(pgbench, opts)
  const wallMs = Date.now() - t0
  const s1 = await mainThreadSchedMs(proxyPid)
  const after = await cpu()
  const pgMs = await pgCpu.stop()
  const d = after.map((x, i) => x - before[i])
  const ours = d[0] + d[1] + d[3] + d[4] + r.cpuMs + [...pgMs.values()].reduce((a, b) => a + b, 0)
  const run: Run = { key: c.key, script: script.name, mode, pgbench: r, lineageMs: d[0], bouncerMs: d[1], relayMs: d[4], dataPgMs: pgMs.get(dbs.data) ?? 0, lineagePgMs: pgMs.get(dbs.lineage) ?? 0, otherMs: d[2] - ours, proxyRunMs: s1.runMs - s0.runMs, proxyWaitMs: s1.waitMs - s0.waitMs, wallMs }
  if (c.key === 'c') run.audited = await audit() - auditBefore
  return run
}

function otherShare (r: Run): number {
  return Math.max(0, 100 * r.otherMs / (r.wallMs * availableParallelism()))
}

function best (runs: Run[]): Run {
  return runs.reduce((a, b) => (b.pgbench.tps > a.pgbench.tps ? b : a))
}

const verdict = (ok: boolean): string => ok ? 'met' : 'NOT met'

/** One table per script; returns whether every ratio meets its target. */
function report (cases: Case[], runs: Run[]): boolean {
  let ok = true
  const summary: string[][] = []
  for (const script of scripts) {
    const rows: string[][] = []
    for (const mode of modes) {
      const of = (k: Key): Run => best(runs.filter((r) => r.key === k && r.script === script.name && r.mode === mode))
      const c = of('c')
      for (const k of ['a', 'b', 'c', 'd'] as Key[]) {
        const r = of(k)
        const n = r.pgbench.transactions
        const perTx = (ms: number): string => fixed(ms * 1000 / n, 0)
        const proxy = k === 'a' ? '-' : perTx(k === 'b' ? r.bouncerMs : k === 'd' ? r.relayMs : r.lineageMs)
        const share = (ms: number): string => k === 'a' ? '-' : `${fixed(100 * ms / r.wallMs, 0)}%`
        const all = runs.filter((x) => x.key === k && x.script === script.name && x.mode === mode)
        const ratios = k === 'c' || k === 'd'
        rows.push([k === 'a' ? mode : '', `(${k}) ${cases.find((x) => x.key === k)?.name ?? k}`, fixed(r.pgbench.tps, 0), fixed(r.pgbench.latencyMs, 3),
          ratios ? fixed(r.pgbench.tps / of('b').pgbench.tps, 2) : '', ratios ? fixed(r.pgbench.tps / of('a').pgbench.tps, 2) : '',
          proxy, share(r.proxyRunMs), share(r.proxyWaitMs), perTx(r.dataPgMs), k === 'c' ? perTx(r.lineagePgMs) : '-', perTx(r.pgbench.cpuMs),
          k === 'c' ? fixed((r.audited ?? 0) / n, 2) : '-', `${fixed(otherShare(r), 0)}%`, String(r.pgbench.failed + r.pgbench.aborted), all.map((x) => fixed(x.pgbench.tps, 0)).join(' / ')])
      }
      const vsB = c.pgbench.tps / of('b').pgbench.tps
      const vsA = c.pgbench.tps / of('a').pgbench.tps
      ok &&= vsB >= targetVsBouncer && vsA >= targetVsDirect
      summary.push([script.name, mode, fixed(vsB, 2), verdict(vsB >= targetVsBouncer), fixed(vsA, 2), verdict(vsA >= targetVsDirect)])
    }
    console.log('')
    console.log(`${script.name}: pgbench ${pgbenchArgs({ clients, threads, seconds, mode: 'simple', selectOnly: script.selectOnly }).join(' ').replace('-M simple', '-M <mode>')}, best of ${rounds} by TPS`)
    console.log(table(['mode', 'case', 'TPS', 'lat avg ms', '/(b)', '/(a)', 'proxy µs/tx', 'proxy ran', 'proxy waited', 'pg data µs/tx', 'pg lineage µs/tx', 'pgbench µs/tx', 'audited/tx', 'other load', 'failed', 'TPS of each run'], rows))
  }
  console.log('')
  console.log(`targets: (c)/(b) ≥ ${targetVsBouncer}, (c)/(a) ≥ ${targetVsDirect}`)
  console.log(table(['script', 'mode', '(c)/(b)', `≥ ${targetVsBouncer}`, '(c)/(a)', `≥ ${targetVsDirect}`], summary))
  console.log('µs/tx: CPU time over the measured run / transactions. proxy: PgBouncer for (b), the Lineage process (with its children) for (c), the relay for (d).')
  console.log('/(b), /(a): TPS of (c), or of (d) (no target), over (b) and (a).')
  console.log('proxy ran / waited: its main thread (PgBouncer\'s only one, Lineage\'s event loop) on a CPU / runnable but waiting for one, in % of the run\'s wall time.')
  console.log('pg data / pg lineage: PostgreSQL backends of the pgbench database / of Lineage\'s own database (audit writes). audited/tx: audit records of allowed statements / transactions.')
  console.log('other load: CPU time of every other process, as a share of all the machine\'s CPUs.')
  const failed = runs.reduce((n, r) => n + r.pgbench.failed + r.pgbench.aborted, 0)
  if (failed > 0) console.log(`errors: ${failed} failed transactions or aborted clients in total`)
  if (runs.some((r) => otherShare(r) > 5)) console.log('WARNING: other processes took more than 5 % of the machine during a measured run: the numbers are disturbed')
  return ok && failed === 0
}

/** One cut-off of `idleCount` idle sessions. */
interface CutoffRound {
  kind: string
  /** Per session that got FATAL 28000: ms from just before the admin call to the client's FATAL. */
  ms: number[]
  /** How the other sessions ended. */
  other: string[]
  /** The admin call's round trip. */
  callMs: number
  /** From just before the admin call to the first and the last `session_ended` audit record (the gateway's clock, ms). */
  gatewayFirstMs: number
  gatewayLastMs: number
  refusedAtLogin: boolean
}

/**
 * Opens idle sessions through the gateway (fresh principals: round 1 revokes the root token,
 * round 2 offboards the human, and so on), cuts them all off with one admin call, and returns
 * when each client received its FATAL and when the gateway recorded ending each session.
 */
async function cutoffRound (agent: Agent, l: LineageProcess, lineageDb: string, gateway: { host: string, port: number }, round: number): Promise<CutoffRound> {
  const svc = await seedService(agent, l, `idle-human-${round}`, `idle-svc-${round}`, ['idle:read'])
  const root = await rootToken(agent, l, svc)
  let mid = root
  for (const actor of ['planner', 'worker']) mid = await exchange(agent, l, mid, { actor, scope: 'idle:read', audience: 'idle' })
  const tokens = await pool(Array.from({ length: idleCount }, (_, i) => i), setupConcurrency, async (i) => await exchange(agent, l, mid, { actor: `agent-${i}`, scope: 'idle:read', audience: 'idle' }))
  const sessions = await openIdleSessions(gateway.host, gateway.port, 'idle', tokens, setupConcurrency)
  try {
    await new Promise((resolve) => setTimeout(resolve, 500))
    const revoke = round % 2 === 1
    const rootJti = String(decodeJwt(root).payload.jti)
    const wall0 = Date.now()
    const t0 = performance.now()
    if (revoke) await admin(agent, l, 'POST', `/v1/tokens/${rootJti}/revoke`, { reason: 'bench' }, 200)
    else await admin(agent, l, 'POST', `/v1/principals/${svc.human}/offboard`, { reason: 'bench' }, 200)
    const callMs = performance.now() - t0
    const ends = await endsOf(sessions, t0 + 10_000)
    const ms: number[] = []
    const other: string[] = []
    for (const e of ends) {
      if (e === undefined) other.push('still open 10 s after the cut-off')
      else if (e.code !== '28000' || !e.message.startsWith('lineage:')) other.push(`${e.code ?? 'no SQLSTATE'}: ${e.message}`)
      else ms.push(e.at - t0)
    }
    // A new login with a cut-off token is refused too.
    const late = await openIdleSessions(gateway.host, gateway.port, 'idle', [tokens[0]], 1).then(async (s) => { await closeSessions(s); return undefined }, (err: Error & { code?: string }) => err)
    const ended = await sessionsEndedAt(l, agent, lineageDb, rootJti)
    return { kind: revoke ? 'revoke the root token' : 'offboard the human', ms, other, callMs, gatewayFirstMs: ended.first - wall0, gatewayLastMs: ended.last - wall0, refusedAtLogin: late?.code === '28000' }
  } finally {
    await closeSessions(sessions)
  }
}

function reportCutoff (results: CutoffRound[]): boolean {
  const row = (name: string, rs: CutoffRound[]): string[] => {
    const ms = rs.flatMap((r) => r.ms)
    const s = summarize(Float64Array.from(ms), ms.length)
    const one = rs.length === 1 ? rs[0] : undefined
    return [name, String(rs.length * idleCount), String(ms.length), String(rs.reduce((n, r) => n + r.other.length, 0)),
      one === undefined ? '' : fixed(one.callMs, 1), one === undefined ? '' : `${fixed(one.gatewayFirstMs, 0)} – ${fixed(one.gatewayLastMs, 0)}`,
      fixed(Math.min(...ms), 1), fixed(s.p50, 1), fixed(s.p90, 1), fixed(s.p99, 1), fixed(s.max, 1)]
  }
  const all = results.flatMap((r) => r.ms)
  const p99 = summarize(Float64Array.from(all), all.length).p99
  const other = results.flatMap((r) => r.other)
  console.log('')
  console.log(`cut-off of ${idleCount} idle sessions through the gateway, ${results.length} round(s); ms from just before the admin call:`)
  console.log(table(['round: cut-off', 'sessions', 'FATAL 28000', 'other', 'admin 2xx', 'gateway ended them', 'first FATAL', 'p50', 'p90', 'p99', 'max'],
    [...results.map((r, i) => row(`${i + 1}: ${r.kind}`, [r])), row('all', results)]))
  console.log('(gateway ended them: first and last `session_ended` audit record, by the gateway\'s clock, ms resolution; FATAL columns: when each client received its FATAL)')
  for (const o of [...new Set(other)].slice(0, 5)) console.log(`  other: ${o} (×${other.filter((x) => x === o).length})`)
  const refused = results.every((r) => r.refusedAtLogin)
  console.log(`a new login with a cut-off token is refused with FATAL 28000: ${refused ? 'yes' : 'NO'}`)
  const ok = p99 <= targetCutoffP99Ms && other.length === 0 && refused
  console.log(`cut-off p99: ${fixed(p99, 1)} ms (target ≤ ${targetCutoffP99Ms} ms), every session FATAL 28000: ${verdict(ok)}`)
  return ok
}

async function main (defer: Defer): Promise<void> {
  const tools = requireTools(['pgbench', 'pgbouncer'], 'apt-get install postgresql-client pgbouncer   (Debian/Ubuntu, as root)', '-V')
  console.log(await machineFacts())
  console.log(`${toolVersion(tools.pgbench, '-V')}; ${toolVersion(tools.pgbouncer, '-V')}`)
  const server = new URL(serverUrl)
  const direct = { host: server.hostname, port: Number(server.port || '5432'), user: decodeURIComponent(server.username || 'postgres') }

  const data = await createBenchDatabase('pgbench_bench')
  defer(`drop database ${data.name}`, data.drop)
  const init = await runMeasured(tools.pgbench, ['-i', '-q', '-s', String(scale), '-h', direct.host, '-p', String(direct.port), '-U', direct.user, data.name], { ...process.env, PGSSLMODE: 'disable' })
  if (init.code !== 0) throw new Error(`pgbench -i failed (${init.code}):\n${init.stderr}`)
  const db = await createBenchDatabase('lineage_bench')
  defer(`drop database ${db.name}`, db.drop)
  console.log(`postgres: ${serverVersion(await withClient(db.url, async (c) => (await c.query<{ version: string }>('SELECT version()')).rows[0]))}; pgbench data: database ${data.name}, scale ${scale}; Lineage's state: database ${db.name}`)

  const bouncer = await startPgBouncer(tools.pgbouncer, await freePort(), [
    { name: 'bench', url: data.url, poolMode: 'session', poolSize: Math.max(20, clients) },
    { name: 'bench_tx', url: data.url, poolMode: 'transaction', poolSize: 10 }
  ], [direct.user])
  defer('stop pgbouncer', bouncer.stop)

  const relay = await startPgRelay({ host: direct.host, port: direct.port })
  defer('stop relay', async () => { await relay.child.stop() })

  const lineage = await startLineage(db.url, profileArgs(), { LINEAGE_GATEWAY_PG_PORT: '0' })
  defer('stop Lineage', lineage.stop)
  const pgListener = lineage.listening.gateway_pg
  if (pgListener === undefined) throw new Error(`Lineage announced no gateway_pg listener: ${JSON.stringify(lineage.listening)}`)
  const gw = new URL(`postgres://${pgListener}`)
  const gateway = { host: gw.hostname, port: Number(gw.port) }

  const agent = keepAliveAgent(setupConcurrency)
  defer('close agent', async () => { agent.destroy() })
  await admin(agent, lineage, 'POST', '/v1/targets', { name: 'bench', kind: 'postgres', upstream: data.url, policy }, 201)
  await admin(agent, lineage, 'POST', '/v1/targets', { name: 'idle', kind: 'postgres', upstream: `postgres://${direct.user}@127.0.0.1:${bouncer.port}/bench_tx`, policy }, 201)
  const saved = await admin<{ policy: { rules: unknown[] } }>(agent, lineage, 'GET', '/v1/targets/bench', undefined, 200)
  if (saved.policy.rules.length !== 5) throw new Error(`target bench has ${saved.policy.rules.length} rules, not 5`)
  const token = await depth3Token(agent, lineage)

  const cases: Case[] = [
    { key: 'a', name: 'direct to PostgreSQL', ...direct, database: data.name },
    { key: 'b', name: 'PgBouncer session mode', host: '127.0.0.1', port: bouncer.port, user: direct.user, database: 'bench' },
    { key: 'c', name: 'Lineage gateway', ...gateway, user: 'agent', database: 'bench', password: token },
    { key: 'd', name: 'bare Node.js relay', host: '127.0.0.1', port: relay.port, user: direct.user, database: data.name }
  ]
  await verify(cases)
  console.log(`cases: (a) ${direct.host}:${direct.port}/${data.name}; (b) pgbouncer 127.0.0.1:${bouncer.port}/bench, pool_mode session, pool_size ${Math.max(20, clients)}; (c) gateway ${pgListener}/bench with a ${token.length}-byte depth-3 token (actors ${actors.join(' → ')}, scope bench:read bench:write), target policy of ${policy.rules.length} rules, none matching; (d) relay 127.0.0.1:${relay.port}/${data.name}`)
  console.log(`load: pgbench -c ${clients} -j ${threads} -T ${seconds} -n, ${warmupSeconds} s warm-up before each run, ${rounds} round(s), a → b → c → d for each script and mode; no TLS`)

  const idle0 = await machineProcessMs()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const idleShare = 100 * (await machineProcessMs() - idle0) / (2000 * availableParallelism())
  console.log(`machine before the load: ${fixed(idleShare, 0)}% busy over 2 s${idleShare > 5 ? '  ← something else is running: the numbers will be disturbed' : ''}`)

  const audit = async (): Promise<number> => await auditedStatements(lineage, agent, db.url)
  const runs: Run[] = []
  for (let round = 1; round <= rounds; round++) {
    for (const script of scripts) {
      for (const mode of modes) {
        for (const c of cases) {
          const r = await measure(tools.pgbench, c, script, mode, { lineage: lineage.child.pid, bouncer: bouncer.pid, relay: relay.child.pid }, { data: data.name, lineage: db.name }, audit)
          runs.push(r)
          const bad = r.pgbench.failed + r.pgbench.aborted
          console.log(`  round ${round} ${script.name} -M ${mode} (${c.key}) ${c.name}: ${fixed(r.pgbench.tps, 0)} TPS, latency ${fixed(r.pgbench.latencyMs, 3)} ms, other load ${fixed(otherShare(r), 0)}%${bad > 0 ? `, ${bad} failed: ${r.pgbench.stderr.trim().split('\n').slice(0, 2).join(' | ')}` : ''}`)
        }
      }
    }
  }
  if (lineage.child.proc.exitCode !== null) throw new Error(`the Lineage process exited during the run:\n${lineage.child.stderrTail()}`)
  const loadOk = report(cases, runs)

  const results = []
  for (let round = 1; round <= cutoffRounds; round++) results.push(await cutoffRound(agent, lineage, db.url, gateway, round))
  const cutoffOk = reportCutoff(results)
  process.exitCode = loadOk && cutoffOk ? 0 : 1
}

await withCleanup(main)
