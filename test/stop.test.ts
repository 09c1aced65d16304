import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { silentLogger } from '../src/log.js'
import { start } from '../src/server.js'
import { createTestDatabase, databaseUrl } from './helpers/db.js'
import { repoRoot, startLineage, tempDir } from './helpers/process.js'
import { startProxy } from './helpers/proxy.js'

// How a running Lineage stops: through npm, with its log lines, and with its database hung.
// (Starting is test/start.test.ts; the two are apart so that each file stays well inside the
// runner's time for one file on a busy machine.)

t.test('under npm start, a SIGTERM sent to npm alone stops Lineage too, gracefully', async (t) => {
  const dir = await tempDir(t, 'lineage-npm-')
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_LOG_LEVEL: 'warn' }
  const npm = spawn('npm', ['start', '--silent'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { npm.kill('SIGKILL') })
  let out = ''
  const broker = await new Promise<string>((resolve, reject) => {
    npm.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith('{"listening"'))
      if (line !== undefined) resolve(JSON.parse(line).listening.broker)
    })
    npm.on('exit', (code) => { reject(new Error(`npm start exited ${String(code)}`)) })
  })
  t.equal((await fetch(`${broker}/healthz`)).status, 200)
  npm.kill('SIGTERM')
  let refused = false
  for (let i = 0; i < 40 && !refused; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    refused = await fetch(`${broker}/healthz`).then(() => false, () => true)
  }
  t.ok(refused, 'the broker stops listening within 10 s')
  // The pid file goes last, once the records are written and the database closed.
  let held = true
  for (let i = 0; i < 80 && held; i++) {
    held = existsSync(join(dir, 'lineage.pid'))
    if (held) await new Promise((resolve) => setTimeout(resolve, 250))
  }
  t.notOk(held, 'having let go of its data directory, as a graceful stop does')
})

t.test('a start and a stop are each logged once, as JSON lines at info, and LINEAGE_LOG_LEVEL=warn leaves them out', async (t) => {
  const dir = await tempDir(t, 'lineage-log-')
  const env = { LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_LOG_LEVEL: 'info' }
  const p = await startLineage(env)
  t.equal(await p.stop(), 0)
  const lines = p.stderr().trim().split('\n').map((l) => JSON.parse(l))
  t.match(lines.filter((l) => l.msg === 'started'), [{ level: 30, service: 'lineage', role: 'all', listening: p.listening }], 'one start line naming what listens')
  t.match(lines.filter((l) => l.msg === 'stopping'), [{ level: 30, signal: 'SIGTERM' }], 'one stop line')
  const quiet = await startLineage({ ...env, LINEAGE_LOG_LEVEL: 'warn' })
  t.equal(await quiet.stop(), 0)
  t.equal(quiet.stderr(), '', 'nothing below warn')
})

t.test('a SIGHUP (the terminal closing) stops it as gracefully as a SIGTERM', async (t) => {
  const dir = await tempDir(t, 'lineage-hup-')
  const p = await startLineage({ LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_LOG_LEVEL: 'info', LINEAGE_ADMIN_TOKEN: 'ladm_hangup-stop-0123456789abcdef' })
  t.teardown(() => { p.proc.kill('SIGKILL') })
  const made = await fetch(`${p.listening.broker}/v1/principals`, { method: 'POST', headers: { authorization: 'Bearer ladm_hangup-stop-0123456789abcdef', 'content-type': 'application/json' }, body: JSON.stringify({ id: 'hana', kind: 'human' }) })
  t.equal(made.status, 201)
  const exited = once(p.proc, 'exit')
  p.proc.kill('SIGHUP')
  const [code, signal] = await exited as [number | null, string | null]
  t.same([code, signal], [0, null], 'exits 0 on its own, not killed by the signal')
  t.match(p.stderr().trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.msg === 'stopping'), [{ signal: 'SIGHUP' }])
  t.notOk(existsSync(join(dir, 'lineage.pid')), 'its data directory let go')
})

t.test('a stop while the database hangs (a network path that answers nothing) ends the process within seconds', { skip: databaseUrl === undefined ? 'DATABASE_URL is not set' : false }, async (t) => {
  const fresh = await createTestDatabase()
  t.teardown(fresh.drop)
  const url = new URL(fresh.url)
  const proxy = await startProxy(url.hostname, Number(url.port))
  t.teardown(proxy.close)
  url.host = `127.0.0.1:${proxy.port}`
  const lineage = await startLineage({ DATABASE_URL: url.toString(), LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_ADMIN_TOKEN: 'ladm_hung-database-stop-0123456789', LINEAGE_LOG_LEVEL: 'error' })
  t.teardown(() => { lineage.proc.kill('SIGKILL') })
  proxy.freeze()
  // The once-a-second poll of the change log is now under way and never answered.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const started = performance.now()
  const exited = once(lineage.proc, 'exit')
  lineage.proc.kill('SIGTERM')
  const [code] = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve(['still running']), 30_000))]) as [number | string | null]
  t.ok(performance.now() - started < 20_000, `stopped in ${Math.round(performance.now() - started)} ms`)
  t.not(code, 'still running')
})

t.test('a stop that cuts an admin request still running (an offboarding waiting on a lock) writes its audit record before closing', { skip: databaseUrl === undefined ? 'DATABASE_URL is not set' : false }, async (t) => {
  const fresh = await createTestDatabase()
  t.teardown(fresh.drop)
  const dir = await tempDir(t, 'lineage-stop-')
  const admin = 'ladm_stop-cuts-a-request-0123456789'
  const running = await start(loadConfig({ DATABASE_URL: fresh.url, LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_ADMIN_TOKEN: admin }), silentLogger())
  const call = async (path: string, body: unknown): Promise<Response> => await fetch(running.listening.broker + path, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  t.equal((await call('/v1/principals', { id: 'frank', kind: 'human' })).status, 201)
  const holder = new pg.Client({ connectionString: fresh.url })
  await holder.connect()
  t.teardown(async () => { await holder.end() })
  await holder.query('BEGIN')
  await holder.query("SELECT * FROM principals WHERE id = 'frank' FOR UPDATE")
  const offboard = call('/v1/principals/frank/offboard', { reason: 'contract ended' }).then(() => 'answered', () => 'cut')
  while ((await holder.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 20))
  const stopped = running.stop()
  t.equal(await offboard, 'cut', 'the grace ends and the connection is cut, the offboarding still waiting')
  // Well before the handler's own wait ends; by now a stop that did not wait for it has written its last records.
  await new Promise((resolve) => setTimeout(resolve, 500))
  await holder.query('COMMIT')
  await stopped
  const { rows } = await holder.query("SELECT detail FROM audit WHERE kind = 'principal.status' AND principals = '{frank}'")
  t.match(rows, [{ detail: { status: 'offboarded', reason: 'contract ended' } }], 'the offboarding is in the trail')
})
