import { createServer, type AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { run, startLineage, tempDir } from './helpers/process.js'
import { getJson } from './helpers/http.js'

t.test('npm start on a fresh data directory runs on embedded PGlite, prints the admin token once and the listening line', async (t) => {
  const dir = await tempDir(t, 'lineage-start-')
  const env = { LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_LOG_LEVEL: 'warn' }
  const first = await startLineage(env)
  t.match(first.listening, { broker: /^http:\/\/127\.0\.0\.1:\d+$/, gateway_http: /^http:\/\/127\.0\.0\.1:\d+$/, gateway_pg: /^127\.0\.0\.1:\d+$/ })
  t.equal((await fetch(`${first.listening.gateway_http}/_lineage/readyz`)).status, 200)
  t.match(first.adminToken, /^ladm_/)
  const meta = await getJson(`${first.listening.broker}/.well-known/oauth-authorization-server`)
  t.equal(meta.issuer, first.listening.broker)
  const me = await fetch(`${first.listening.broker}/v1/principals/nobody`, { headers: { authorization: `Bearer ${first.adminToken}` } })
  t.equal(me.status, 404, 'the printed admin token works')
  const ready = await fetch(`${first.listening.broker}/readyz`)
  t.equal(ready.status, 200)
  const metrics = await (await fetch(`${first.listening.broker}/metrics`)).text()
  for (const gauge of ['lineage_audit_backlog 0', 'lineage_view_seq', 'lineage_pg_parser_replacements_total 0', 'lineage_audit_dropped_total 0']) t.match(metrics, `\n${gauge}`, gauge)
  // Counts that only grow are counters, so that rate() and increase() read them right across restarts.
  for (const counter of ['lineage_audit_dropped_total', 'lineage_pg_parser_replacements_total']) t.match(metrics, `\n# TYPE ${counter} counter\n`, counter)
  t.equal(await first.stop(), 0, 'a graceful stop exits 0')

  const second = await startLineage(env)
  t.equal(second.adminToken, undefined, 'the admin token is printed on the first start only')
  const again = await fetch(`${second.listening.broker}/v1/principals/nobody`, { headers: { authorization: `Bearer ${first.adminToken}` } })
  t.equal(again.status, 404, 'and keeps working after a restart')
  await second.stop()
})

/** A port some other listener holds until `t` ends. */
async function takenPort (t: Test): Promise<string> {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  return String((taken.address() as AddressInfo).port)
}

/** Starts Lineage with `env` and checks it stops at once, exit code 2, with one line naming `name`. */
async function stopsNaming (t: Test, env: Record<string, string>, name: string): Promise<void> {
  const r = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], env)
  t.equal(r.code, 2, name)
  const lines = r.stderr.trim().split('\n')
  t.equal(lines.length, 1, `${name}: one line`)
  t.match(lines[0], name)
}

t.test('bad configuration stops the process at start with one line naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ LINEAGE_BROKER_PORT: 'abc' }, 'LINEAGE_BROKER_PORT'],
    [{ LINEAGE_ROLE: 'everything' }, 'LINEAGE_ROLE'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ LINEAGE_MAX_DEPTH: '0' }, 'LINEAGE_MAX_DEPTH'],
    [{ LINEAGE_ADMIN_TOKEN: 'short' }, 'LINEAGE_ADMIN_TOKEN']
  ]
  for (const [env, name] of cases) await stopsNaming(t, env, name)
})

t.test('a listener that cannot bind stops the process at start with one line naming the variable', async (t) => {
  const dir = await tempDir(t, 'lineage-bind-')
  const port = await takenPort(t)
  const free = { LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_LOG_LEVEL: 'warn' }
  const cases: Array<[Record<string, string>, string]> = [
    [{ LINEAGE_BROKER_PORT: port }, 'LINEAGE_BROKER_PORT'],
    [{ LINEAGE_GATEWAY_HTTP_PORT: port }, 'LINEAGE_GATEWAY_HTTP_PORT'],
    [{ LINEAGE_GATEWAY_PG_PORT: port }, 'LINEAGE_GATEWAY_PG_PORT'],
    [{ LINEAGE_HOST: 'no-such-host.invalid' }, 'LINEAGE_HOST']
  ]
  for (const [env, name] of cases) await stopsNaming(t, { ...free, ...env }, name)
})

t.test('a second process on the same data directory stops at start naming LINEAGE_DATA_DIR, and the first keeps its database', async (t) => {
  const dir = await tempDir(t, 'lineage-start-')
  const env = { LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_LOG_LEVEL: 'warn' }
  const first = await startLineage(env)
  t.teardown(async () => { await first.stop() })
  const second = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], env, { timeoutMs: 30_000 })
  t.equal(second.code, 2, 'the second process stops by itself, as for any bad configuration')
  t.notMatch(second.stdout, /listening/, 'having opened no listener')
  const lines = second.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'with one line')
  t.match(lines[0], `LINEAGE_DATA_DIR: ${dir} is in use by process ${first.proc.pid}`)
  const me = await fetch(`${first.listening.broker}/v1/principals/nobody`, { headers: { authorization: `Bearer ${first.adminToken ?? ''}` } })
  t.equal(me.status, 404, 'the first process still serves')
  t.equal(await first.stop(), 0)

  const third = await startLineage(env)
  t.equal(third.adminToken, undefined, 'once the first has stopped, the next process opens the same database')
  t.equal(await third.stop(), 0)
})

t.test('a first start that fails after making the admin token (a gateway port in use) keeps none that nobody was shown: the next start prints one that works', async (t) => {
  const dir = await tempDir(t, 'lineage-start-')
  const port = await takenPort(t)
  const env = { LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: port, LINEAGE_LOG_LEVEL: 'warn' }
  const failed = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], env, { timeoutMs: 60_000 })
  t.equal(failed.code, 2, 'the first start fails')
  t.notMatch(failed.stdout, 'Admin token', 'without showing a token')

  const next = await startLineage({ ...env, LINEAGE_GATEWAY_PG_PORT: '0' })
  t.match(next.adminToken, /^ladm_/, 'the next start shows one')
  const me = await fetch(`${next.listening.broker}/v1/principals/nobody`, { headers: { authorization: `Bearer ${next.adminToken ?? ''}` } })
  t.equal(me.status, 404, 'and it works')
  t.equal(await next.stop(), 0)
})
