/**
 * `npm run demo`: the offboarded contractor, told end to end on embedded defaults.
 *
 * Alice, a contractor, sponsors the nightly CI service. Its job gets a root token and spawns
 * nested agents, each with its own narrower child token. Alice leaves; one offboarding cuts
 * off the whole cascade, and the lineage tree shows it before and after.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { loadConfig } from '../src/config.js'
import { silentLogger } from '../src/log.js'
import { start } from '../src/server.js'
import { renderTree, type TreeNode } from '../src/cli/tree.js'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const say = (text = ''): void => { process.stdout.write(text + '\n') }
const bold = (text: string): string => process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text
const step = (n: number, title: string): void => { say(); say(bold(`${n}. ${title}`)) }

const dir = await mkdtemp(join(tmpdir(), 'lineage-demo-'))
const adminToken = `ladm_${randomBytes(24).toString('base64url')}`
const running = await start(loadConfig({ LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_ADMIN_TOKEN: adminToken }), silentLogger())
const url = running.listening.broker
const gatewayUrl = running.listening.gateway_http

// The warehouse API the agents work with: it sees the gateway's credential, never their tokens.
const warehouse = createServer((req, res) => {
  if (req.url === '/stream') {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const timer = setInterval(() => res.write('data: row\n\n'), 100)
    res.on('close', () => clearInterval(timer))
    return
  }
  req.resume()
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ ok: true, credential: req.headers.authorization === 'Bearer warehouse-service-credential', subject: req.headers['lineage-subject'], actor: req.headers['lineage-actor'] }))
})
await new Promise<void>((resolve) => warehouse.listen(0, '127.0.0.1', resolve))
const warehouseUrl = `http://127.0.0.1:${(warehouse.address() as AddressInfo).port}`

async function through (name: string, method: string, path: string, token: string): Promise<void> {
  const res = await fetch(gatewayUrl + path, { method, headers: { authorization: `Bearer ${token}` }, body: method === 'GET' ? undefined : '{}' })
  const body = await res.json() as { actor?: string, credential?: boolean, error_description?: string }
  const what = res.status === 200 ? `200, the warehouse saw actor ${body.actor ?? '?'} and ${body.credential === true ? 'the gateway\'s own credential' : 'no credential'}` : `${res.status} ${body.error_description ?? ''}`
  say(`   ${name.padEnd(14)} ${method.padEnd(4)} ${path.padEnd(22)} → ${what}`)
}

async function call (method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return await res.json()
}
async function form (path: string, fields: Record<string, string>, auth?: string): Promise<{ status: number, body: any }> {
  const res = await fetch(url + path, { method: 'POST', headers: auth === undefined ? {} : { authorization: auth }, body: new URLSearchParams(fields) })
  return { status: res.status, body: await res.json().catch(() => ({})) }
}
async function spawnAgent (parent: string, actor: string, extra: Record<string, string> = {}): Promise<string> {
  const r = await form('/oauth/token', {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: parent,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    actor,
    actor_host: 'ci-runner-7',
    actor_run: 'GITHUB_RUN_ID=8812',
    ...extra
  })
  if (r.status !== 200) throw new Error(`${actor}: ${r.body.error_description}`)
  say(`   ${actor.padEnd(14)} gets a child token: scope "${r.body.scope}", expires in ${r.body.expires_in}s`)
  return r.body.access_token
}
const jtiOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).jti

try {
  say('Lineage demo: the contractor who left, and the CI job that did not')
  say(`(broker on ${url}, embedded PGlite in ${dir})`)

  step(1, 'People and machines')
  await call('POST', '/v1/principals', { id: 'alice', kind: 'human', email: 'alice@contractor.example', grants: ['api:*', 'warehouse:read', 'warehouse:write'] })
  say('   alice          human, contractor; grants api:*, warehouse:read, warehouse:write')
  const svc = await call('POST', '/v1/principals', { id: 'ci-nightly', kind: 'service', sponsor: 'alice', grants: ['api:read', 'warehouse:*', 'ssh:exec'] })
  say(`   ci-nightly     service sponsored by alice; grants api:read, warehouse:*, ssh:exec`)
  say(`                  usable = its grants ∩ alice's = ${svc.usable_scopes.join(', ')}`)
  const client = await call('POST', '/v1/principals/ci-nightly/clients')
  await call('POST', '/v1/targets', {
    name: 'warehouse',
    kind: 'http',
    upstream: warehouseUrl,
    headers: { Authorization: 'Bearer warehouse-service-credential' },
    policy: { rules: [{ effect: 'deny', actions: ['write'], min_depth: 2, reason: 'agents two hops down only read' }] }
  })
  say('   warehouse      an HTTP target behind the gateway; policy: agents two hops down only read')

  step(2, 'The nightly job starts and spawns nested agents')
  const root = await form('/oauth/token', { grant_type: 'client_credentials', client_id: client.client_id, client_secret: client.client_secret })
  say(`   ci-nightly     gets a root token (client_credentials): scope "${root.body.scope}"`)
  const build = await spawnAgent(root.body.access_token, 'build', { scope: 'api:read warehouse:read' })
  const loader = await spawnAgent(root.body.access_token, 'data-loader', { scope: 'warehouse:read warehouse:write', ttl: '900' })
  const tests = await spawnAgent(build, 'test-runner', { scope: 'warehouse:read' })
  const query = await spawnAgent(tests, 'psql-helper', { audience: 'warehouse' })
  const writer = await spawnAgent(loader, 'bulk-writer', { scope: 'warehouse:write' })
  say('   Each child has the parent\'s sub (ci-nightly), a narrower scope, an act chain naming')
  say('   every process above it, and a lineage claim the gateway checks without a database.')
  const wider = await form('/oauth/token', { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: tests, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'warehouse:write', actor: 'sneaky' })
  say(`   A child asking for more than its parent: ${wider.status} ${wider.body.error} (${wider.body.error_description})`)

  step(3, 'The agents at work, through the gateway')
  await through('data-loader', 'POST', '/warehouse/rows', loader)
  await through('psql-helper', 'GET', '/warehouse/rows?day=1', query)
  await through('test-runner', 'POST', '/warehouse/rows', tests)
  await through('bulk-writer', 'POST', '/warehouse/rows', writer)
  const stream = await fetch(`${gatewayUrl}/warehouse/stream`, { headers: { authorization: `Bearer ${loader}` } })
  const reader = stream.body!.getReader()
  await reader.read()
  say('   data-loader    GET  /warehouse/stream       → streaming rows…')
  const streamEnded = (async () => {
    try { while (!(await reader.read()).done); } catch {}
    return Date.now()
  })()

  step(4, 'The lineage tree, before')
  say(renderTree(await call('GET', `/v1/tokens/${jtiOf(root.body.access_token)}/tree`) as TreeNode).replace(/^/gm, '   '))

  step(5, 'HR: alice\'s contract is over')
  const offAt = Date.now()
  const off = await call('POST', '/v1/principals/alice/offboard', { reason: 'contract ended' })
  say(`   POST /v1/principals/alice/offboard → status ${off.status}, ${off.revoked} live tokens cut off`)
  say('   One row changed. No tree walk: every chain that names alice now fails its check.')

  step(6, 'Every agent is cut off')
  say(`   data-loader's open stream was closed ${(await streamEnded) - offAt} ms after the offboarding`)
  await through('data-loader', 'POST', '/warehouse/rows', loader)
  await through('psql-helper', 'GET', '/warehouse/rows?day=1', query)
  for (const [name, token] of [['ci-nightly', root.body.access_token], ['build', build], ['data-loader', loader], ['test-runner', tests], ['psql-helper', query], ['bulk-writer', writer]] as const) {
    const intro = await form('/oauth/introspect', { token }, `Bearer ${adminToken}`)
    const again = await form('/oauth/token', { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', actor: 'respawn' })
    say(`   ${name.padEnd(14)} introspection active:${String(intro.body.active)}; spawning a child: ${again.body.error} (${again.body.error_description})`)
  }
  const fresh = await form('/oauth/token', { grant_type: 'client_credentials', client_id: client.client_id, client_secret: client.client_secret })
  say(`   ci-nightly     asks for a new root token: ${fresh.status} ${fresh.body.error} (${fresh.body.error_description})`)

  step(7, 'The lineage tree, after')
  say(renderTree(await call('GET', `/v1/tokens/${jtiOf(root.body.access_token)}/tree`) as TreeNode).replace(/^/gm, '   '))
  say()
  const audit = await call('GET', '/v1/audit?principal=alice&limit=1000')
  const verdict = await call('POST', '/v1/audit/verify')
  say()
  say(`Audit: ${audit.events.length} records name alice (every token, every gateway decision, the offboarding); hash chain ${verdict.ok === true ? 'intact' : 'BROKEN'}.`)
  say('The job keeps running, but nothing it spawned can act for anyone any more.')
} finally {
  warehouse.closeAllConnections()
  warehouse.close()
  await running.stop()
  await rm(dir, { recursive: true, force: true })
}
