import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { claimsOf } from '../helpers/broker.js'
import { createTestDatabase, databaseUrl } from '../helpers/db.js'
import { cliPath, run, startLineage } from '../helpers/process.js'
import { getJson } from '../helpers/http.js'

const dir = await mkdtemp(join(tmpdir(), 'lineage-cli-'))
const fresh = databaseUrl === undefined ? undefined : await createTestDatabase()
const adminToken = 'ladm_cli-test-admin-token-0123456789'
const server = await startLineage({
  LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_LOG_LEVEL: 'warn', LINEAGE_ADMIN_TOKEN: adminToken,
  ...(fresh !== undefined ? { DATABASE_URL: fresh.url } : {})
})
t.teardown(async () => {
  await server.stop()
  await fresh?.drop()
  await rm(dir, { recursive: true, force: true })
})
const url = server.listening.broker
const admin = async (path: string, body?: unknown): Promise<any> => await getJson(url + path, {
  method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {})
})
await admin('/v1/principals', { id: 'alice', kind: 'human', grants: ['api:*', 'db:read'] })
await admin('/v1/principals', { id: 'ci-nightly', kind: 'service', sponsor: 'alice', grants: ['api:*', 'db:read'] })
const client = await admin('/v1/principals/ci-nightly/clients')
const root = (await getJson(`${url}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.client_id, client_secret: client.client_secret }) })).access_token

const lineage = async (args: string[], env: Record<string, string> = {}): ReturnType<typeof run> => await run(process.execPath, [cliPath, ...args], { LINEAGE_URL: url, ...env })

t.test('lineage exchange prints a narrower child of LINEAGE_TOKEN and tells the broker who asked', async (t) => {
  const r = await lineage(['exchange', '--scope', 'db:read', '--actor', 'nightly-build'], { LINEAGE_TOKEN: root, GITHUB_RUN_ID: '123' })
  t.equal(r.code, 0, r.stderr)
  const c = claimsOf(r.stdout.trim())
  t.equal(c.scope, 'db:read')
  t.same(c.act, { sub: 'nightly-build' })
  const node = await getJson(`${url}/v1/tokens/${c.jti}`, { headers: { authorization: `Bearer ${adminToken}` } })
  t.match(node.context, { run: 'GITHUB_RUN_ID=123', pid: /^\d+$/, host: String })
})

t.test('lineage exec gives each spawned process its own child token, nesting as processes nest', async (t) => {
  const show = 'process.stdout.write(process.env.LINEAGE_TOKEN)'
  const r = await lineage(['exec', '--actor', 'outer', '--', process.execPath, cliPath, 'exec', '--scope', 'api:read', '--', process.execPath, '-e', show], { LINEAGE_TOKEN: root })
  t.equal(r.code, 0, r.stderr)
  const c = claimsOf(r.stdout)
  t.equal(c.lineage.depth, 2)
  t.same(c.act, { sub: 'node', act: { sub: 'outer' } }, 'the actor defaults to the command name')
  t.equal(c.scope, 'api:read')
  const code = await lineage(['exec', '--', process.execPath, '-e', 'process.exit(7)'], { LINEAGE_TOKEN: root })
  t.equal(code.code, 7, 'exec exits with the command\'s code')
  const env = await lineage(['exec', '--', process.execPath, '-e', 'process.stdout.write(String(process.env.LINEAGE_ADMIN_TOKEN))'], { LINEAGE_TOKEN: root, LINEAGE_ADMIN_TOKEN: 'ladm_not-for-children' })
  t.equal(env.stdout, 'undefined', 'the command does not get the admin token')
  const inputs = ['LINEAGE_SCIM_TOKEN', 'LINEAGE_WEBHOOK_SECRET', 'LINEAGE_OKTA_AUTHORIZATION']
  const secrets = await lineage(['exec', '--', process.execPath, '-e', `process.stdout.write(JSON.stringify(${JSON.stringify(inputs)}.map((n) => process.env[n] ?? null)))`],
    { LINEAGE_TOKEN: root, LINEAGE_SCIM_TOKEN: 'scim-not-for-children', LINEAGE_WEBHOOK_SECRET: 'whsec_not-for-children', LINEAGE_OKTA_AUTHORIZATION: 'okta-not-for-children' })
  t.same(JSON.parse(secrets.stdout), [null, null, null], 'nor the secrets of the offboarding inputs: with the webhook secret it could reinstate its own principal')
  const killed = await lineage(['exec', '--', process.execPath, '-e', "process.kill(process.pid, 'SIGKILL')"], { LINEAGE_TOKEN: root })
  t.equal(killed.code, 137, 'a command ended by a signal: 128 + its number')
})

t.test('lineage exec revokes the token it made for a command that could not start', async (t) => {
  const missing = await lineage(['exec', '--actor', 'ghost', '--', join(dir, 'no-such-command')], { LINEAGE_TOKEN: root })
  t.equal(missing.code, 127)
  t.match(missing.stderr, 'cannot run')
  t.notMatch(missing.stderr, 'could not be revoked')
  const tree = await getJson(`${url}/v1/tokens/${claimsOf(root).jti}/tree`, { headers: { authorization: `Bearer ${adminToken}` } })
  const ghosts = (tree.children as Array<{ actor?: string, act?: { sub: string }, status: string }>).filter((c) => JSON.stringify(c).includes('"ghost"'))
  t.equal(ghosts.length, 1, 'the token was made')
  t.match(ghosts[0], { status: 'revoked' }, 'and revoked, as no process holds it')
})

t.test('lineage exec passes the signals that stop a process on to its command and exits as the command does', async (t) => {
  // The command reports the signal it heard and exits 40; one that never hears it exits 3 by itself.
  const command = "for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2']) process.on(s, () => { process.stdout.write(' heard ' + s); process.exit(40) }); setTimeout(() => process.exit(3), 10_000); process.stdout.write('ready')"
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'] as const) {
    // Its own session, with no terminal whose foreground it might be in (where keys' signals are the terminal's to send).
    const p = spawn(process.execPath, [cliPath, 'exec', '--', process.execPath, '-e', command], { env: { PATH: process.env.PATH ?? '', LINEAGE_URL: url, LINEAGE_TOKEN: root }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let out = ''
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out === 'ready') p.kill(sig)
    })
    const [code, signal] = await once(p, 'close') as [number | null, string | null]
    t.same({ code, signal, out }, { code: 40, signal: null, out: `ready heard ${sig}` }, sig)
  }
})

t.test('lineage exec in a terminal: Ctrl-C reaches the command once', async (t) => {
  // script(1) runs lineage exec on a pseudo-terminal; a ^C written to it is the terminal's
  // SIGINT to its foreground process group, lineage and the command alike. The command counts
  // the SIGINTs it hears for a second after the first. (Before, lineage passed it on as well:
  // two, when they did not coalesce in the kernel.)
  const command = "let n = 0; process.on('SIGINT', () => { if (n++ === 0) setTimeout(() => { process.stdout.write(' heard ' + n); process.exit(0) }, 1000) }); setTimeout(() => process.exit(3), 10_000); process.stdout.write('ready')"
  const line = [process.execPath, cliPath, 'exec', '--', process.execPath, '-e', command].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
  const p = spawn('script', ['-qefc', `exec ${line}`, '/dev/null'], { env: { PATH: process.env.PATH ?? '', LINEAGE_URL: url, LINEAGE_TOKEN: root }, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    if (out.endsWith('ready')) p.stdin.write('\x03')
  })
  const [code] = await once(p, 'close') as [number | null]
  t.equal(code, 0)
  t.match(out, /ready\^C heard 1$/, 'one SIGINT, from the terminal')
})

t.test('lineage refuses clearly when it cannot get a child token', async (t) => {
  const none = await lineage(['exchange'])
  t.equal(none.code, 2)
  t.match(none.stderr, 'LINEAGE_TOKEN is not set')
  const wider = await lineage(['exec', '--scope', 'ssh:exec', '--', 'true'], { LINEAGE_TOKEN: root })
  t.equal(wider.code, 1)
  t.match(wider.stderr, /invalid_scope/)
  const down = await run(process.execPath, [cliPath, 'exchange'], { LINEAGE_URL: 'http://127.0.0.1:1', LINEAGE_TOKEN: root })
  t.equal(down.code, 1)
  t.match(down.stderr, 'cannot reach the broker at http://127.0.0.1:1: bad port', 'names the system\'s reason, not fetch\'s bare "fetch failed"')
  const notUrl = await run(process.execPath, [cliPath, 'exchange'], { LINEAGE_URL: 'broker.internal:7400', LINEAGE_TOKEN: root })
  t.equal(notUrl.code, 2, 'a LINEAGE_URL that is no http(s) URL is a usage error')
  t.match(notUrl.stderr, 'LINEAGE_URL must be')
  for (const withPassword of ['http://ops:BrokerProxyPw9@127.0.0.1:1', 'htp://ops:BrokerProxyPw9@127.0.0.1:1']) {
    const r = await run(process.execPath, [cliPath, 'exchange'], { LINEAGE_URL: withPassword, LINEAGE_TOKEN: root })
    t.equal(r.code, 2, 'a LINEAGE_URL with credentials is a usage error')
    t.match(r.stderr, 'LINEAGE_URL must')
    t.notMatch(r.stdout + r.stderr, /BrokerProxyPw9/, 'and its password is not printed')
  }
  const empty = await run(process.execPath, [cliPath, 'exchange'], { LINEAGE_URL: '', LINEAGE_TOKEN: root })
  t.notMatch(empty.stderr, /Invalid URL|LINEAGE_URL/, 'an empty LINEAGE_URL means the default broker')
  const unknown = await lineage(['frobnicate'])
  t.equal(unknown.code, 2)
  const help = await lineage(['help'])
  t.equal(help.code, 0)
  t.match(help.stdout, 'lineage exec')
})

t.test('a LINEAGE_URL that answers 200 with something other than the broker\'s JSON is an error, not a token "undefined" or a trail reported broken', async (t) => {
  const page = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }).end('<html>an app</html>') })
  await once(page.listen(0, '127.0.0.1'), 'listening')
  t.teardown(() => page.close())
  const env = { LINEAGE_URL: `http://127.0.0.1:${(page.address() as AddressInfo).port}`, LINEAGE_TOKEN: root, LINEAGE_ADMIN_TOKEN: adminToken }
  for (const args of [['exchange'], ['exec', '--', process.execPath, '-e', 'process.stdout.write("ran")'], ['keys', 'rotate'], ['audit', 'verify'], ['tree', 'some-jti']]) {
    const r = await run(process.execPath, [cliPath, ...args], env)
    t.equal(r.code, 1, args.join(' '))
    t.equal(r.stdout, '', `${args.join(' ')}: nothing printed or run`)
    t.match(r.stderr, /^lineage: unexpected_answer: http:\/\/127\.0\.0\.1:\d+ answered HTTP 200 \(text\/html\) without the broker's .*: is LINEAGE_URL the broker\?\n$/, args.join(' '))
  }
})

t.test('--help after any command prints the help and exits 0, but after -- it is the command\'s own', async (t) => {
  for (const args of [['exchange', '--help'], ['exec', '--help'], ['exec', '--scope', 'api:read', '-h', '--', 'true'], ['token', 'inspect', '--help'], ['tree', '--help'], ['audit', 'verify', '-h'], ['keys', '--help']]) {
    const r = await lineage(args)
    t.equal(r.code, 0, args.join(' '))
    t.match(r.stdout, 'lineage exec [--scope S]', args.join(' '))
    t.equal(r.stderr, '', args.join(' '))
  }
  const passed = await lineage(['exec', '--', process.execPath, '-e', "process.stdout.write(process.argv.slice(1).join(' '))", 'x', '--help', '--', '-h'], { LINEAGE_TOKEN: root })
  t.same({ code: passed.code, stdout: passed.stdout }, { code: 0, stdout: 'x --help -- -h' })
})

t.test('lineage token inspect draws the chain from the root to this token', async (t) => {
  const child = (await lineage(['exchange', '--actor', 'step-1'], { LINEAGE_TOKEN: root })).stdout.trim()
  const grandchild = (await lineage(['exchange', '--actor', 'step-2'], { LINEAGE_TOKEN: child })).stdout.trim()
  const r = await lineage(['token', 'inspect', grandchild])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, 'lineage  alice (sponsor) → ci-nightly')
  t.match(r.stdout, `${claimsOf(root).jti}  root`)
  t.match(r.stdout, `└─ ${claimsOf(child).jti}  actor step-1`)
  t.match(r.stdout, `└─ ${claimsOf(grandchild).jti}  actor step-2  ← this token`)
  // Decoded, not verified: a token an actor token acted in lists it, and no sponsor is guessed.
  const [h, , sig] = grandchild.split('.')
  const acted = { ...claimsOf(grandchild), lineage: { ...claimsOf(grandchild).lineage, principals: ['dave', 'helper-bot', 'alice', 'ci-nightly'], actor_tokens: ['a-1', 'a-2'] } }
  const a = await lineage(['token', 'inspect', `${h}.${Buffer.from(JSON.stringify(acted)).toString('base64url')}.${sig}`])
  t.equal(a.code, 0, a.stderr)
  t.match(a.stdout, 'lineage  dave → helper-bot → alice → ci-nightly\nacted in by actor tokens a-1 a-2\n')
  const json = await lineage(['token', 'inspect', '--json'], { LINEAGE_TOKEN: grandchild })
  t.equal(JSON.parse(json.stdout).claims.jti, claimsOf(grandchild).jti)
  const tree = await lineage(['tree', claimsOf(root).jti], { LINEAGE_ADMIN_TOKEN: adminToken })
  t.equal(tree.code, 0, tree.stderr)
  t.match(tree.stdout, /● ci-nightly \(root\)/)
  t.match(tree.stdout, /└─ ● step-2  \[[^\]]+\]  active/)
  const junk = await lineage(['token', 'inspect', 'junk'])
  t.equal(junk.code, 1)
  t.match(junk.stderr, 'not a JWT')
})

t.test('lineage audit verify checks the hash chain, through the broker or straight from PostgreSQL', async (t) => {
  const viaBroker = await lineage(['audit', 'verify'], { LINEAGE_ADMIN_TOKEN: adminToken })
  t.equal(viaBroker.code, 0, viaBroker.stderr)
  t.match(viaBroker.stdout, /^audit trail intact: \d+ records, hash chain verified; head \d+:[0-9a-f]{64}\n$/)
  const head = /head (\d+:[0-9a-f]{64})/.exec(viaBroker.stdout)?.[1] ?? ''
  const anchored = await lineage(['audit', 'verify', '--anchor', head], { LINEAGE_ADMIN_TOKEN: adminToken })
  t.equal(anchored.code, 0, anchored.stderr)
  t.match(anchored.stdout, `hash chain verified through anchored record ${head.split(':')[0]}; head `)
  t.equal((await lineage(['audit', 'verify', `--anchor=${head}`], { LINEAGE_ADMIN_TOKEN: adminToken })).code, 0, '--anchor=SEQ:HASH as well')
  const wrong = await lineage(['audit', 'verify', '--anchor', `1:${'0'.repeat(64)}`], { LINEAGE_ADMIN_TOKEN: adminToken })
  t.equal(wrong.code, 3, 'a broken trail has its own exit code')
  t.match(wrong.stdout, 'audit trail BROKEN after 0 good records: record 1 no longer has the anchored hash')
  const bad = await lineage(['audit', 'verify', '--anchor', 'x'], { LINEAGE_ADMIN_TOKEN: adminToken })
  t.equal(bad.code, 2)
  t.match(bad.stderr, 'an anchor is SEQ:HASH')
  t.equal((await lineage(['audit', 'verify', '--anchor', head, '--anchor', head], { LINEAGE_ADMIN_TOKEN: adminToken })).code, 2, 'one anchor at most')
  const unchecked = await lineage(['audit', 'verify'], { LINEAGE_ADMIN_TOKEN: 'ladm_not-the-admin-token-0123456789' })
  t.equal(unchecked.code, 1, 'a check the broker refused is not a broken trail')
  t.equal(unchecked.stdout, '')
  if (fresh !== undefined) {
    const direct = await lineage(['audit', 'verify'], { DATABASE_URL: fresh.url })
    t.equal(direct.code, 0, direct.stderr)
    const directHead = /head (\d+:[0-9a-f]{64})/.exec(direct.stdout)?.[1] ?? ''
    t.equal((await lineage(['audit', 'verify', '--anchor', directHead], { DATABASE_URL: fresh.url })).code, 0, 'anchored, straight from PostgreSQL')
    const { default: pg } = await import('pg')
    const c = new pg.Client({ connectionString: fresh.url })
    await c.connect()
    await c.query("UPDATE audit_records SET detail = '{\"forged\": true}' WHERE seq = 2")
    await c.end()
    const broken = await lineage(['audit', 'verify'], { DATABASE_URL: fresh.url })
    t.equal(broken.code, 3)
    t.match(broken.stdout, 'record 2 does not match its hash')
  } else {
    t.comment('DATABASE_URL not set: the direct PostgreSQL check is skipped')
  }
})

t.test('lineage audit verify with a DATABASE_URL that is not Lineage\'s says so and how to ask the broker instead', async (t) => {
  if (databaseUrl === undefined) {
    t.comment('DATABASE_URL not set: the direct PostgreSQL check is skipped')
    return
  }
  const other = await createTestDatabase()
  t.teardown(async () => { await other.drop() })
  const r = await lineage(['audit', 'verify'], { DATABASE_URL: other.url })
  t.equal(r.code, 1, 'the check could not be made')
  t.match(r.stderr, /^lineage: DATABASE_URL names a database with no Lineage audit trail \(relation "audit_records" does not exist\); point it at Lineage's database, or unset it to ask the broker at LINEAGE_URL\n$/)
})

t.test('lineage audit verify with a DATABASE_URL that is no postgres:// URL is a usage error naming it, not a host name looked up', async (t) => {
  for (const value of ['lineage', 'postgress://u:pw@127.0.0.1/x', 'mysql://u:pw@127.0.0.1/x']) {
    const r = await lineage(['audit', 'verify'], { DATABASE_URL: value })
    t.equal(r.code, 2, value)
    t.match(r.stderr, /^lineage: DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL .*unset it to ask the broker at LINEAGE_URL\n$/, value)
    t.notMatch(r.stderr, /pw/, 'the value, which may hold a password, is not printed')
  }
})

t.test('lineage audit verify says how many records the broker holds that its database did not take', async (t) => {
  const { createServer } = await import('node:http')
  const broker = createServer((_req, res) => { res.setHeader('content-type', 'application/json').end(JSON.stringify({ ok: true, records: 7, unwritten: 3 })) })
  await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { broker.close() })
  const r = await lineage(['audit', 'verify'], { LINEAGE_ADMIN_TOKEN: adminToken, LINEAGE_URL: `http://127.0.0.1:${(broker.address() as { port: number }).port}` })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^the broker holds 3 records its database did not take: they are not in the chain checked\naudit trail intact: 7 records/)
})

t.test('lineage audit verify says how many events the chain records as dropped', async (t) => {
  const { createServer } = await import('node:http')
  const broker = createServer((_req, res) => { res.setHeader('content-type', 'application/json').end(JSON.stringify({ ok: true, records: 7, head: { seq: 7, hash: 'a'.repeat(64) }, dropped: { events: 12, gaps: 2 } })) })
  await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { broker.close() })
  const r = await lineage(['audit', 'verify'], { LINEAGE_ADMIN_TOKEN: adminToken, LINEAGE_URL: `http://127.0.0.1:${(broker.address() as { port: number }).port}` })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^audit trail intact: 7 records, hash chain verified; head 7:a{64}\nbut 12 events were dropped unrecorded, in 2 gaps marked by audit.dropped records/)
})

t.test('lineage keys rotate adds a key and old tokens keep working', async (t) => {
  const r = await lineage(['keys', 'rotate'], { LINEAGE_ADMIN_TOKEN: adminToken })
  t.equal(r.code, 0, r.stderr)
  const kid = /new signing key (\S+);/.exec(r.stdout)?.[1]
  const jwks = await getJson(`${url}/.well-known/jwks.json`)
  t.equal(jwks.keys.length, 2)
  t.ok(jwks.keys.some((k: { kid: string }) => k.kid === kid))
  const after = await lineage(['exchange'], { LINEAGE_TOKEN: root })
  t.equal(after.code, 0, 'a token signed before the rotation still exchanges')
  const noAdmin = await lineage(['keys', 'rotate'])
  t.equal(noAdmin.code, 2)
})

t.test('a broker URL with a path prefix keeps it', async (t) => {
  const { endpoint } = await import('../../src/cli/broker-client.js')
  t.equal(endpoint('https://h.example/lineage/', '/oauth/token').href, 'https://h.example/lineage/oauth/token')
  t.equal(endpoint('https://h.example/lineage', '/v1/tokens/a b/tree').href, 'https://h.example/lineage/v1/tokens/a%20b/tree')
  t.equal(endpoint('http://127.0.0.1:7400', '/v1/audit?limit=5').href, 'http://127.0.0.1:7400/v1/audit?limit=5')
})
