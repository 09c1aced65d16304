/**
 * Benchmark: offboarding a principal with 100,000 live descendant tokens takes the same time
 * as offboarding one with 10.
 *
 * What it measures: Lineage (`src/main.ts` in its own process, on a fresh PostgreSQL database)
 * offboarding a human who sponsors a service, for a service whose root token has 10 live
 * descendants and for one with 100,000 (`BENCH_BULK_TOKENS`). For each offboarding it times
 *   - cut-off: from sending `POST /v1/principals/{human}/offboard` until `POST /oauth/introspect`
 *     (admin bearer) on a real depth-2 child token of that service answers `{"active":false}`,
 *     polled back to back on its own connection while the offboard request is in flight;
 *   - response: until the offboard response arrives. The response carries `revoked`, a count
 *     of the live tokens cut off, which Lineage runs after the cut-off is committed; so this
 *     time includes a query over the descendants, and is printed separately and as is.
 *
 * How: the 10 descendants are real exchanges. The 100,000 are bulk-inserted with one
 * `INSERT … SELECT` straight into the `tokens` table of the bench database, under a real root
 * token and its real depth-1 child (both issued by Lineage, so both are rows too), with the
 * same `sub`, `sponsor`, `client_id`, `rooted_at` and `exp` as their root, at depths 1 and 2;
 * the table is then ANALYZEd, as autovacuum would. Each of `BENCH_RUNS` (default 5) runs uses a
 * new pair of humans and services; one unmeasured warm-up pair goes first. Medians are printed.
 *
 * Needs PostgreSQL at `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/postgres);
 * a database with a random name is created and dropped at the end, even on error.
 */
import type { Agent } from 'node:http'
import { performance } from 'node:perf_hooks'
import type pg from 'pg'
import { withCleanup } from './lib/cleanup.js'
import { createBenchDatabase } from './lib/database.js'
import { envInt, profileArgs } from './lib/env.js'
import { decodeJwt, keepAliveAgent } from './lib/http.js'
import { admin, exchange, introspectActive, rootToken, seedService, startLineage, type LineageProcess } from './lib/lineage.js'
import { machineFacts } from './lib/machine.js'
import { median } from './lib/stats.js'
import { fixed, table } from './lib/table.js'
import { connectTo } from './lib/pg-client.js'

const grants = ['api:*', 'db:*']

interface Subject {
  human: string
  /** A real depth-2 child token of the human's service: the one the cut-off is watched on. */
  child: string
  descendants: number
  how: 'exchanged' | 'bulk-inserted'
  setupMs: number
}

interface Timing {
  cutOffMs: number
  responseMs: number
  revoked: number
  polls: number
}

interface Bench {
  l: LineageProcess
  sql: pg.Client
  setup: Agent
  offboard: Agent
  poll: Agent
}

function jtiOf (jwt: string): string {
  return String(decodeJwt(jwt).payload.jti)
}

/** `n` more live tokens below `root` and `child1`, half at depth 1 and half at depth 2, in one statement. */
async function bulkInsert (sql: pg.Client, root: string, child1: string, n: number): Promise<void> {
  await sql.query(
    `INSERT INTO tokens (jti, parent, root, depth, sub, sponsor, client_id, actor, scope, aud, ancestors, iat, exp, rooted_at, context)
     SELECT gen_random_uuid()::text,
            CASE WHEN g % 2 = 0 THEN r.jti ELSE $2 END,
            r.jti,
            CASE WHEN g % 2 = 0 THEN 1 ELSE 2 END,
            r.sub, r.sponsor, r.client_id, 'bulk-' || g, 'api:read', ARRAY['api'],
            CASE WHEN g % 2 = 0 THEN ARRAY[r.jti] ELSE ARRAY[r.jti, $2] END,
            r.iat, r.exp, r.rooted_at, '{"bulk":"true"}'::jsonb
       FROM generate_series(1, $3::integer) AS g, tokens r
      WHERE r.jti = $1`, [root, child1, n])
  await sql.query('ANALYZE tokens')
}

/** A human sponsoring a service with `descendants` live tokens below one root; the depth-2 child is checked live. */
async function prepare (b: Bench, name: string, descendants: number, bulk: boolean): Promise<Subject> {
  const t0 = performance.now()
  const c = await seedService(b.setup, b.l, `human-${name}`, `svc-${name}`, grants)
  const root = await rootToken(b.setup, b.l, c)
  const child1 = await exchange(b.setup, b.l, root, { scope: 'api:* db:read', actor: 'step-1' })
  const child = await exchange(b.setup, b.l, child1, { scope: 'api:read', actor: 'step-2' })
  if (bulk) {
    await bulkInsert(b.sql, jtiOf(root), jtiOf(child1), descendants - 2)
  } else {
    for (let i = 2; i < descendants; i++) await exchange(b.setup, b.l, root, { scope: 'api:read', actor: `worker-${i}` })
  }
  if (!await introspectActive(b.setup, b.l, child)) throw new Error(`${name}: the child token is not active before the offboarding`)
  return { human: c.human, child, descendants, how: bulk ? 'bulk-inserted' : 'exchanged', setupMs: performance.now() - t0 }
}

/** Introspects `token` back to back until it is inactive; resolves with the time the `false` arrived and the number of polls. */
async function pollUntilInactive (b: Bench, token: string, t0: number): Promise<{ at: number, polls: number }> {
  for (let polls = 1; ; polls++) {
    if (!await introspectActive(b.poll, b.l, token)) return { at: performance.now() - t0, polls }
    if (performance.now() - t0 > 60_000) throw new Error('the child token stayed active for 60 s after the offboard was sent')
  }
}

async function offboardTimed (b: Bench, s: Subject): Promise<Timing> {
  const t0 = performance.now()
  const response = admin<{ revoked: number, status: string }>(b.offboard, b.l, 'POST', `/v1/principals/${s.human}/offboard`, { reason: 'bench' }, 200)
    .then((body) => ({ body, at: performance.now() - t0 }))
  const [r, cut] = await Promise.all([response, pollUntilInactive(b, s.child, t0)])
  if (r.body.status !== 'offboarded') throw new Error(`offboard of ${s.human} answered status ${r.body.status}`)
  return { cutOffMs: cut.at, responseMs: r.at, revoked: r.body.revoked, polls: cut.polls }
}

async function run (b: Bench, label: string, sizes: number[], rows: string[][], results: Map<number, Timing[]>): Promise<void> {
  const subjects: Subject[] = []
  for (const n of sizes) subjects.push(await prepare(b, `${label.replace(/\s+/g, '')}-${n}`, n, n > 1000))
  for (const s of subjects) {
    const t = await offboardTimed(b, s)
    rows.push([label, String(s.descendants), s.how, fixed(s.setupMs / 1000, 1), String(t.revoked), fixed(t.cutOffMs, 2), String(t.polls), fixed(t.responseMs, 2)])
    if (!label.startsWith('warm')) results.set(s.descendants, [...(results.get(s.descendants) ?? []), t])
  }
}

function summary (results: Map<number, Timing[]>): string[][] {
  return [...results].map(([n, ts]) => [String(n), String(ts.length), fixed(median(ts.map((t) => t.cutOffMs)), 2),
    fixed(median(ts.map((t) => t.responseMs)), 2), fixed(median(ts.map((t) => t.responseMs - t.cutOffMs)), 2), [...new Set(ts.map((t) => t.revoked))].join(',')])
}

await withCleanup(async (defer) => {
  const runs = envInt('BENCH_RUNS', 5)
  const big = envInt('BENCH_BULK_TOKENS', 100_000)
  console.log(await machineFacts())
  const db = await createBenchDatabase('lineage_offboard')
  defer(`drop database ${db.name}`, db.drop)
  const l = await startLineage(db.url, profileArgs())
  defer('stop Lineage', l.stop)
  const sql = await connectTo(db.url)
  defer('close SQL client', async () => { await sql.end() })
  const b: Bench = { l, sql, setup: keepAliveAgent(1), offboard: keepAliveAgent(1), poll: keepAliveAgent(1) }
  defer('close HTTP agents', async () => { b.setup.destroy(); b.offboard.destroy(); b.poll.destroy() })
  console.log(`offboarding a human whose service holds 10 or ${big} live descendant tokens; ${runs} runs, fresh principals each, order alternating`)

  const rows: string[][] = []
  const results = new Map<number, Timing[]>()
  await run(b, 'warm-up', [10, big], rows, results)
  for (let i = 1; i <= runs; i++) await run(b, `run ${i}`, i % 2 === 1 ? [10, big] : [big, 10], rows, results)
  const total = (await sql.query<{ n: string }>('SELECT count(*) AS n FROM tokens')).rows[0].n
  console.log('')
  console.log(table(['', 'descendants', 'created by', 'setup s', 'revoked', 'cut-off ms', 'polls', 'response ms'], rows))
  console.log('')
  console.log(`medians over ${runs} runs (tokens table at the end: ${total} rows):`)
  console.log(table(['descendants', 'runs', 'cut-off ms', 'response ms', 'response − cut-off ms', 'revoked'], summary(results)))
  console.log('')
  console.log('cut-off: offboard sent → introspection of a real depth-2 child answers {"active":false} (upper bound: includes that poll\'s round trip)')
  console.log('response: offboard sent → its 200 arrives; it includes counting the live tokens cut off (the `revoked` field), run after the cut-off commits')
})
