import { sign } from 'node:crypto'
import { STATUS_CODES, createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { gzipSync } from 'node:zlib'
import { connect, createServer, type AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { accessTokenType, claimsOf, exchangeToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'
import { createTarget, saveTarget, startTestGateway, startUpstream } from '../helpers/gateway.js'

const b = await startTestBroker()
const up = await startUpstream()
const gw = await startTestGateway(b, { upstreamTimeoutMs: 1000 })
t.teardown(async () => { await gw.close(); await up.close(); await b.close() })
const client = await seedContractor(b, ['api:*', 'db:read', 'down:read', 'odd:read', 'early:write', 'busy:read', 'moving:read', 'acting:read', 'mirror:read', 'tls:read', 'smuggle:read', 'plain:write', 'crowded:*', 'hop:*', 'slash:*', 'dav:*', 'globs:*'])
const secret = 'Bearer upstream-secret-value-42'
const created = await createTarget(b, gw, {
  name: 'api', kind: 'http', upstream: `${up.url}/base`, headers: { Authorization: secret, 'X-Team': 'data' },
  policy: { rules: [
    { effect: 'deny', methods: ['DELETE'], paths: ['/admin/*'], reason: 'no deletes under /admin' },
    { effect: 'deny', actions: ['write'], min_depth: 2, reason: 'agents two hops down only read' },
    { effect: 'approve', paths: ['/payroll/*'] },
    { effect: 'deny', actors: ['rogue-*'] },
    { effect: 'deny', principals: ['mallory'] },
    { effect: 'deny', paths: ['/unicode/*'], reason: 'read-only \u2014 ask the owner\u0007' }
  ] }
})
if (created.status !== 201) throw new Error(`target: ${JSON.stringify(created.body)}`)
await createTarget(b, gw, { name: 'down', kind: 'http', upstream: 'http://127.0.0.1:1' })
await createTarget(b, gw, { name: 'db', kind: 'postgres', upstream: 'postgres://app:pw@127.0.0.1:5432/app' })

const root = await rootToken(b, client)
const agent = (await exchangeToken(b, root, { actor: 'build', scope: 'api:* down:read' })).body.access_token
const auth = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const get = async (path: string, token?: string, init: RequestInit = {}): Promise<Response> =>
  await fetch(gw.url + path, { ...init, headers: { ...(token === undefined ? {} : auth(token)), ...(init.headers as Record<string, string> ?? {}) } })

/**
 * Opens server-sent event streams through `target` until all 256 of its upstream connections
 * carry one; returns those that stream. They are opened 32 at a time: on a loaded machine 256
 * at once keep the upstream from answering many within this gateway's 1000 ms, round after round.
 * One that waited past them is opened again. The caller holds on to them until it is done:
 * fetch cancels the body of a response the garbage collector takes, which would end its stream
 * and free its connection.
 */
async function holdEveryConnection (target: string, token: string, signal: AbortSignal): Promise<{ open: Response[], refused: string[] }> {
  const open: Response[] = []
  const refused: string[] = []
  for (let round = 0; open.length < 256 && round < 100; round++) {
    const opened = await Promise.all(Array.from({ length: Math.min(32, 256 - open.length) }, async () => await fetch(`${gw.url}/${target}/sse`, { headers: auth(token), signal })))
    for (const r of opened) {
      if (r.status === 200) open.push(r)
      else refused.push(`${r.status} ${await r.text()}`)
    }
  }
  return { open, refused }
}

t.test('an allowed request reaches the upstream with the target credential and identity headers, not the agent\'s token', async (t) => {
  const r = await get('/api/v1/things?limit=5&q=a%20b', agent, { headers: { 'x-custom': 'kept', 'lineage-subject': 'spoofed' } })
  t.equal(r.status, 200)
  t.same(await r.json(), { method: 'GET', url: '/base/v1/things?limit=5&q=a%20b', bodyBytes: 0 })
  t.equal(r.headers.get('x-upstream'), 'yes')
  const seen = up.seen.at(-1)!
  t.equal(seen.headers.authorization, secret)
  t.equal(seen.headers['x-team'], 'data')
  t.equal(seen.headers['x-custom'], 'kept')
  t.equal(seen.headers['lineage-subject'], 'ci-nightly')
  t.equal(seen.headers['lineage-actor'], 'build')
  t.notMatch(JSON.stringify([...r.headers]), 'upstream-secret-value-42')
})

t.test('agent headers that a server may read as the gateway\'s own, spelled with _ for -, never reach the upstream', async (t) => {
  const r = await get('/api/v1/spelled', agent, {
    headers: { Lineage_Subject: 'spoofed', lineage_actor: 'spoofed', LINEAGE_SUBJECT_: 'kept', X_Team: 'admins', X_Forwarded_For: '10.9.9.9', 'x-forwarded-for': '192.0.2.1', X_Custom: 'kept' }
  })
  t.equal(r.status, 200)
  const seen = up.seen.at(-1)!
  t.equal(seen.url, '/base/v1/spelled')
  for (const name of ['lineage_subject', 'lineage_actor', 'x_team', 'x_forwarded_for']) t.equal(seen.headers[name], undefined, name)
  t.equal(seen.headers['lineage-subject'], 'ci-nightly')
  t.equal(seen.headers['lineage-actor'], 'build')
  t.equal(seen.headers['x-team'], 'data', 'the target\'s own header, alone')
  t.equal(seen.headers['x-forwarded-for'], '192.0.2.1, 127.0.0.1')
  t.equal(seen.headers.x_custom, 'kept')
  t.equal(seen.headers.lineage_subject_, 'kept', 'a name that only starts like one passes')
})

t.test('an upstream behind the gateway is told the scheme and host the agent used, never the agent\'s own claims of them', async (t) => {
  const r = await get('/api/v1/forwarded', agent, {
    headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', X_Forwarded_Host: 'evil.example', 'x-forwarded-port': '443', 'x-real-ip': '10.0.0.1', forwarded: 'for=10.0.0.1;proto=https;host=evil.example' }
  })
  t.equal(r.status, 200)
  const seen = up.seen.at(-1)!
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers['x-forwarded-host'], new URL(gw.url).host)
  for (const name of ['x-forwarded-port', 'x-real-ip', 'forwarded', 'x_forwarded_host']) t.equal(seen.headers[name], undefined, name)
})

t.test('an agent\'s other claims of the scheme (X-Forwarded-Ssl, X-Forwarded-Scheme, Front-End-Https, X-Url-Scheme) never reach the upstream', async (t) => {
  // Rack reads X-Forwarded-Ssl: on as https before it looks at X-Forwarded-Proto, and some versions X-Forwarded-Scheme too.
  const claims = { 'x-forwarded-ssl': 'on', X_Forwarded_Ssl: 'on', 'x-forwarded-scheme': 'https', 'front-end-https': 'on', 'x-url-scheme': 'https' }
  const r = await get('/api/v1/scheme', agent, { headers: claims })
  t.equal(r.status, 200)
  const seen = up.seen.at(-1)!
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  for (const name of Object.keys(claims)) t.equal(seen.headers[name.toLowerCase()], undefined, name)
})

t.test('an agent\'s claim of the path the upstream is served under (X-Forwarded-Prefix) never reaches the upstream', async (t) => {
  // Spring's ForwardedHeaderFilter, Symfony's trusted headers and ASP.NET's UsePathBase put it before every link they build.
  const r = await get('/api/v1/prefix', agent, { headers: { 'x-forwarded-prefix': '//evil.example', X_Forwarded_Prefix: '/evil' } })
  t.equal(r.status, 200)
  const seen = up.seen.at(-1)!
  t.equal(seen.url, '/base/v1/prefix')
  for (const name of ['x-forwarded-prefix', 'x_forwarded_prefix']) t.equal(seen.headers[name], undefined, name)
})

t.test('an agent\'s other claims of its address (Client-IP, X-Client-IP, True-Client-IP and the CDNs\' spellings) never reach the upstream', async (t) => {
  // Rails reads HTTP_CLIENT_IP beside X-Forwarded-For; the request-ip package, which many Node servers use, reads X-Client-IP before it.
  const claims = { 'client-ip': '10.0.0.1', 'x-client-ip': '10.0.0.1', X_Client_IP: '10.0.0.1', 'true-client-ip': '10.0.0.1', 'cf-connecting-ip': '10.0.0.1', 'fastly-client-ip': '10.0.0.1', 'x-cluster-client-ip': '10.0.0.1' }
  const r = await get('/api/v1/address', agent, { headers: claims })
  t.equal(r.status, 200)
  const seen = up.seen.at(-1)!
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  for (const name of Object.keys(claims)) t.equal(seen.headers[name.toLowerCase()], undefined, name)
})

t.test('request and response bodies stream through', async (t) => {
  const big = Buffer.alloc(5 * 1024 * 1024, 7)
  const r = await get('/api/upload', agent, { method: 'POST', body: big })
  t.equal(r.status, 200)
  t.equal((await r.json() as { bodyBytes: number }).bodyBytes, big.length)
})

t.test('a large response arrives whole, multi-valued headers pass and the upstream\'s hop-by-hop headers do not', async (t) => {
  const big = await get('/api/big', agent)
  t.equal(big.status, 200)
  t.equal((await big.arrayBuffer()).byteLength, 32 * 1024 * 1024)
  const c = await get('/api/cookies', agent)
  t.same(c.headers.getSetCookie(), ['a=1', 'b=2'])
  t.equal(c.headers.get('x-hop'), null)
  t.equal(await c.text(), 'ok')
})

t.test('cookies an upstream sets are scoped to its target, so an agent keeping cookies sends them to no other target', async (t) => {
  // Target api's upstream URL is <upstream>/base: its paths below /base are the gateway's below /api.
  const set = async (path: string, cookies: string[]): Promise<string[]> => {
    const r = await get(`${path}?${cookies.map((c) => `c=${encodeURIComponent(c)}`).join('&')}`, agent)
    t.equal(r.status, 200)
    await r.text()
    return r.headers.getSetCookie()
  }
  t.same(await set('/api/set', ['x=1; Path=/', 'y=2; Path=/base/v1; HttpOnly', 'z=3; path=/base', 'w=4; Path=/other; Path=/base/', 'u=5; Path=relative', 'v=6']), [
    'x=1; Path=/api', 'y=2; HttpOnly; Path=/api/v1', 'z=3; Path=/api', 'w=4; Path=/api', 'u=5', 'v=6'
  ], 'each below /api; one with no Path (or one RFC 6265 ignores) keeps its default, /api here')
  t.same(await set('/api', ['v=6', 'x=1; Path=/']), ['v=6; Path=/api', 'x=1; Path=/api'], 'at /api itself the default would be /, so the Path is given')
})

t.test('a redirect to the upstream itself points the agent below its target', async (t) => {
  const redirected = async (location: string): Promise<[string | null, string | null]> => {
    const r = await get(`/api/go?l=${encodeURIComponent(location)}`, agent, { redirect: 'manual' })
    t.equal(r.status, 302)
    return [r.headers.get('location'), r.headers.get('content-location')]
  }
  const cases: Array<[string, string]> = [
    ['/base/login?next=%2F', '/api/login?next=%2F'],
    ['/base', '/api'],
    [`${up.url}/base/x?y=1#f`, '/api/x?y=1#f'],
    // Anywhere else, or relative to where the agent is: as sent.
    ['https://idp.example/authorize?client_id=x', 'https://idp.example/authorize?client_id=x'],
    [`${up.url}/elsewhere`, `${up.url}/elsewhere`],
    ['next/page', 'next/page'],
    ['//cdn.example/x', '//cdn.example/x']
  ]
  for (const [sent, seen] of cases) t.same(await redirected(sent), [seen, seen], sent)
})

t.test('a redirect that would take the agent to another target at the gateway is not passed on', async (t) => {
  // Every target shares the gateway's origin: a client following a 307 there sends the agent's token, method and body
  // to another target, for which an upstream has no business speaking. Location and Content-Location both go.
  const gwHost = new URL(gw.url).host
  for (const sent of ['/other/delete', '/base/../other/delete', '/base/%2e%2e/other/delete', '../other/delete', 'x/../../other', `${gw.url}/other/delete`, `//${gwHost}/other/delete`, `${gw.url}/api/../other`]) {
    const r = await get(`/api/go?l=${encodeURIComponent(sent)}`, agent, { redirect: 'manual' })
    t.equal(r.status, 302, sent)
    t.same([r.headers.get('location'), r.headers.get('content-location')], [null, null], sent)
  }
  for (const kept of [`${gw.url}/api/x`, '/api/x', 'x/../y', '?page=2']) {
    const r = await get(`/api/go?l=${encodeURIComponent(kept)}`, agent, { redirect: 'manual' })
    t.equal(r.headers.get('location'), kept, kept)
  }
  // A relative one sent for the target's root is the upstream's, resolved against its own URL.
  t.equal((await get('/api?l=login', agent, { redirect: 'manual' })).headers.get('location'), '/api/login')
  t.equal((await get('/api?l=../x', agent, { redirect: 'manual' })).headers.get('location'), null, 'one above the upstream URL\'s path')
})

t.test('an agent that goes away ends its upstream exchange', async (t) => {
  const before = up.streamsClosed
  const abort = new AbortController()
  const res = await get('/api/sse', agent, { signal: abort.signal })
  const reader = res.body!.getReader()
  t.match(Buffer.from((await reader.read()).value!).toString(), /^data: 0/)
  abort.abort()
  const started = Date.now()
  while (up.streamsClosed === before && Date.now() - started < 2000) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(up.streamsClosed, before + 1, `the upstream stream was closed ${Date.now() - started} ms after the agent left`)
})

t.test('refusals carry the contract status and WWW-Authenticate', async (t) => {
  const none = await get('/api/x')
  t.equal(none.status, 401)
  t.match(none.headers.get('www-authenticate'), /^Bearer error="invalid_token"/)
  t.match(await none.json(), { error: 'invalid_token' })
  const garbage = await get('/api/x', 'not-a-token')
  t.equal(garbage.status, 401)
  const readOnly = (await exchangeToken(b, root, { scope: 'api:read', actor: 'reader' })).body.access_token
  const write = await get('/api/x', readOnly, { method: 'POST', body: 'x' })
  t.equal(write.status, 403)
  t.match(write.headers.get('www-authenticate'), /^Bearer error="insufficient_scope"/)
  t.match(await write.json(), { error: 'insufficient_scope', error_description: 'scope api:write is required' })
  const dbOnly = (await exchangeToken(b, root, { audience: 'db', actor: 'psql' })).body.access_token
  const aud = await get('/api/x', dbOnly)
  t.equal(aud.status, 403)
  t.match((await aud.json() as { error_description: string }).error_description, /audience does not include api/)
  t.equal((await get('/nope/x', agent)).status, 404)
  t.equal((await get('/db/x', agent)).status, 404, 'a postgres target is not served over HTTP')
  t.equal((await get('/', agent)).status, 404)
})

t.test('a request for a target that does not exist is recorded with the lineage of its token when the token is genuine', async (t) => {
  t.equal((await get('/no-such-db/tables', agent)).status, 404)
  t.equal((await get('/no-such-db/tables', 'not-a-token')).status, 404)
  t.equal((await get('/no-such-db/tables')).status, 404)
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', '/v1/audit?target=no-such-db')).body.events as Array<{ jti: string | null, root: string | null, principals: string[], actors: string[], status: number }>
  t.equal(events.length, 3)
  t.match(events.find((e) => e.jti !== null), { status: 404, jti: claimsOf(agent).jti, root: claimsOf(root).jti, principals: ['alice', 'ci-nightly'], actors: ['build'] }, 'who probed it')
  t.equal(events.filter((e) => e.jti === null && e.root === null && e.principals.length === 0).length, 2, 'a made-up token, or none, names no one')
})

t.test('policy rules take away what scopes grant, with the rule\'s reason', async (t) => {
  const del = await get('/api/admin/users/7', agent, { method: 'DELETE' })
  t.equal(del.status, 403)
  t.match(await del.json(), { error_description: 'denied by policy: no deletes under /admin' })
  t.equal((await get('/api/users/7', agent, { method: 'DELETE' })).status, 200)
  // The same path spelled as an upstream may read it: escaped letters, another letter case (a
  // case-insensitive router), empty segments, ;parameters, a leading //host (`new URL(req.url, base)`).
  const before = up.seen.length
  for (const path of ['/api/%61dmin/users/7', '/api/%41dmin/users/7', '/api/ADMIN/users/7', '/api//admin/users/7', '/api/admin;v=1/users/7', '/api/admin;/users/7', '/api//evil.example/admin/users/7']) {
    const r = await get(path, agent, { method: 'DELETE' })
    t.equal(r.status, 403, path)
    await r.arrayBuffer()
  }
  t.equal(up.seen.length, before, 'none reached the upstream')
  t.equal((await get('/api/%75sers/7', agent, { method: 'DELETE' })).status, 200)
  t.equal(up.seen.at(-1)?.url, '/base/users/7', 'the upstream is sent the path the policy judged')
  const deep = (await exchangeToken(b, agent, { actor: 'helper' })).body.access_token
  t.equal((await get('/api/x', deep)).status, 200, 'depth 2 may read')
  const w = await get('/api/x', deep, { method: 'PUT', body: 'x' })
  t.equal(w.status, 403)
  t.match(await w.json(), { error_description: 'denied by policy: agents two hops down only read' })
  const pay = await get('/api/payroll/2026', agent)
  t.equal(pay.status, 403)
  t.match(await pay.json(), { error_description: 'approval required' })
  const rogue = (await exchangeToken(b, root, { actor: 'rogue-miner' })).body.access_token
  t.equal((await get('/api/x', rogue)).status, 403)
  const bad = await createTarget(b, gw, { name: 'broken', kind: 'http', upstream: up.url, policy: { rules: [{ effect: 'deny' }, { effect: 'explode' }] } })
  t.equal(bad.status, 400)
  t.match(bad.body.error_description, 'policy.rules[1].effect')
  t.equal((await b.admin('GET', '/v1/targets/broken')).status, 404, 'never half-applied')
  const pathless = await createTarget(b, gw, { name: 'pathless', kind: 'http', upstream: up.url, policy: { rules: [{ effect: 'deny', paths: ['admin/*'], reason: 'no admin' }] } })
  t.equal(pathless.status, 400, 'a paths pattern without its leading / would refuse nothing')
  t.match(pathless.body.error_description, 'policy.rules[0].paths')
  const listed = await createTarget(b, gw, { name: 'listed', kind: 'http', upstream: up.url, policy: { rules: [{ effect: 'deny', methods: ['DELETE, PUT'] }] } })
  t.equal(listed.status, 400, 'a methods pattern holding a list would refuse nothing')
  t.match(listed.body.error_description, 'policy.rules[0].methods')
  const tabled = await createTarget(b, gw, { name: 'tabled', kind: 'http', upstream: up.url, policy: { rules: [{ effect: 'deny', tables: ['payroll'], reason: 'no payroll' }] } })
  t.equal(tabled.status, 400, 'a tables condition, which no HTTP request has, would refuse nothing')
  t.match(tabled.body.error_description, 'policy.rules[0].tables is a condition of postgres targets')
})

t.test('a paths rule naming a path whole also refuses it with a trailing slash, which Express and Rails route to the same handler', async (t) => {
  t.equal((await createTarget(b, gw, { name: 'slash', kind: 'http', upstream: up.url, policy: { rules: [{ effect: 'deny', paths: ['/admin', '/users/*/delete'], reason: 'not here' }] } })).status, 201)
  const tk = await rootToken(b, client, { scope: 'slash:*' })
  const before = up.seen.length
  for (const path of ['/slash/admin', '/slash/admin/', '/slash/Admin//', '/slash/users/7/delete/', '/slash//admin/']) {
    const r = await get(path, tk, { method: 'POST' })
    t.equal(r.status, 403, path)
    await r.arrayBuffer()
  }
  t.equal(up.seen.length, before, 'none reached the upstream')
  t.equal((await get('/slash/admin/x', tk)).status, 200, 'a path below it is another path')
})

t.test('a COPY or MOVE whose Destination names a path the policy refuses is refused, however the Destination spells it', async (t) => {
  t.equal((await createTarget(b, gw, { name: 'dav', kind: 'http', upstream: `${up.url}/base`, policy: { rules: [{ effect: 'deny', paths: ['/admin/*'], reason: 'admin is read-only' }] } })).status, 201)
  const tk = await rootToken(b, client, { scope: 'dav:*' })
  const before = up.seen.length
  const upstreamHost = new URL(up.url).host
  for (const destination of [`${gw.url}/dav/admin/x`, '/dav/admin/x', `http://${upstreamHost}/base/admin/x`, '/base/admin/x', '/base/%61dmin/x', '/admin/x', `http://${upstreamHost}/base//ADMIN/x`]) {
    const r = await get('/dav/drafts/x', tk, { method: 'MOVE', headers: { destination } })
    t.equal(r.status, 403, destination)
    t.match(await r.json(), { error_description: /admin is read-only/ }, destination)
  }
  const dots = await get('/dav/drafts/x', tk, { method: 'COPY', headers: { destination: '/base/drafts/../admin/x' } })
  t.equal(dots.status, 400, 'dot segments are refused there as in the request\'s path')
  await dots.arrayBuffer()
  const twice = await rawRequest(`MOVE /dav/drafts/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tk}\r\nDestination: /dav/drafts/y\r\nDestination: /dav/admin/x\r\nConnection: close\r\n\r\n`)
  t.match(twice, /^HTTP\/1.1 400 /, 'two Destinations (node:http joins them), of which an upstream may take either, are refused')
  t.equal(up.seen.length, before, 'none reached the upstream')
  t.equal((await get('/dav/drafts/x', tk, { method: 'COPY', headers: { destination: `${gw.url}/dav/drafts/y` } })).status, 200)
  t.equal(up.seen.at(-1)?.headers.destination, `${gw.url}/dav/drafts/y`, 'a Destination the policy allows goes up as it came')
})

t.test('a path built to make a paths glob backtrack is judged at once, and the gateway keeps serving', async (t) => {
  // A glob with several * against a long path of the separators between them: a backtracking matcher takes time that grows as its length to the power of the stars.
  t.equal((await createTarget(b, gw, { name: 'globs', kind: 'http', upstream: up.url, policy: { rules: [{ effect: 'deny', paths: ['*/a/*/a/*/a/*/zz'], reason: 'no zz' }] } })).status, 201)
  const tk = await rootToken(b, client, { scope: 'globs:*' })
  const started = Date.now()
  const r = await get(`/globs${'/a'.repeat(500)}/`, tk)
  t.equal(r.status, 200)
  await r.arrayBuffer()
  t.ok(Date.now() - started < 1000, `judged in ${Date.now() - started} ms`)
  t.equal((await get('/globs/x/a/y/A/z/a/w/zz', tk)).status, 403, 'the rule still refuses what it names')
})

t.test('an actors rule judges a root token by its subject, the actor the upstream is told of', async (t) => {
  t.equal((await createTarget(b, gw, { name: 'acting', kind: 'http', upstream: up.url, policy: { rules: [{ effect: 'deny', actors: ['ci-*'], reason: 'no CI jobs here' }] } })).status, 201)
  const rootTk = await rootToken(b, client, { scope: 'acting:read' })
  const r = await get('/acting/x', rootTk)
  t.equal(r.status, 403, 'the root token of ci-nightly acts as ci-nightly')
  t.match(r.headers.get('www-authenticate'), /no CI jobs here/)
  const child = (await exchangeToken(b, rootTk, { actor: 'report', scope: 'acting:read' })).body.access_token
  t.equal((await get('/acting/x', child)).status, 200)
  t.equal(up.seen.at(-1)?.headers['lineage-actor'], 'report')
})

t.test('a cut-off chain is refused with the reason an operator needs', async (t) => {
  const mine = (await exchangeToken(b, root, { actor: 'temp' })).body.access_token
  const child = (await exchangeToken(b, mine, { actor: 'temp-child' })).body.access_token
  await b.admin('POST', `/v1/tokens/${claimsOf(mine).jti}/revoke`)
  const r = await get('/api/x', child)
  t.equal(r.status, 401)
  t.match(r.headers.get('www-authenticate'), `ancestor token ${claimsOf(mine).jti} was revoked`)
})

t.test('a refusal whose description holds characters a header cannot carry is still answered, and the gateway serves on', async (t) => {
  // An unknown kid is named in the 401; such a token is verified asynchronously (its key is looked up).
  const forged = (kid: string): string => [{ alg: 'EdDSA', typ: 'at+jwt', kid }, { sub: 'x' }].map((p) => Buffer.from(JSON.stringify(p)).toString('base64url')).join('.') + '.c2ln'
  for (const kid of ['\u0100', 'a\u0001b', 'k\u2014"\\x\r\n', '\u{1F600}', 'x'.repeat(5000)]) {
    const r = await get('/api/x', forged(kid))
    t.equal(r.status, 401, JSON.stringify(kid.slice(0, 10)))
    const challenge = r.headers.get('www-authenticate') ?? ''
    t.match(challenge, /^Bearer error="invalid_token", error_description="unknown signing key [\x20\x21\x23-\x5b\x5d-\x7e]+"$/)
    t.ok(challenge.length < 200, 'the kid is cut short')
    t.match(await r.json(), { error: 'invalid_token', error_description: /^unknown signing key / })
  }
  // A policy reason is the refusal's description; a token already verified is decided synchronously.
  const r = await get('/api/unicode/x', agent)
  t.equal(r.status, 403)
  t.equal(r.headers.get('www-authenticate'), 'Bearer error="insufficient_scope", error_description="denied by policy: read-only ? ask the owner?"')
  t.match(await r.json(), { error_description: 'denied by policy: read-only \u2014 ask the owner\u0007' }, 'the JSON body keeps the reason as written')
  t.equal((await get('/api/still-fine', agent)).status, 200)
})

t.test('the upstream failing is 502, hanging is 504, and the gateway keeps serving', async (t) => {
  const down = await get('/down/x', agent)
  t.equal(down.status, 502)
  t.match(await down.json(), { error: 'bad_gateway' })
  const [hang, reset, ok] = await Promise.all([get('/api/hang', agent), get('/api/reset', agent), get('/api/fine', agent)])
  t.equal(hang.status, 504)
  t.equal(reset.status, 502)
  t.equal(ok.status, 200)
  // The same with a request body the upstream read before failing.
  const body = Buffer.alloc(256 * 1024, 1)
  const [hangPost, resetPost] = await Promise.all([get('/api/hang', agent, { method: 'POST', body }), get('/api/reset', agent, { method: 'POST', body })])
  t.equal(hangPost.status, 504)
  t.match(await hangPost.json(), { error: 'gateway_timeout' })
  t.equal(resetPost.status, 502)
  t.match(await resetPost.json(), { error: 'bad_gateway', error_description: 'upstream api failed: connection closed' })
  t.equal((await get('/api/fine', agent)).status, 200)
})

t.test('an https upstream whose certificate is not trusted, or that speaks no TLS, is 502 naming the TLS failure, and is sent no request', async (t) => {
  const { createServer: createHttpsServer } = await import('node:https')
  const { generate } = await import('selfsigned')
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', algorithm: 'sha256' })
  let reached = 0
  const untrusted = createHttpsServer({ key: pems.private, cert: pems.cert }, (_req, res) => { reached++; res.end('ok') })
  await new Promise<void>((resolve) => untrusted.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { untrusted.close() })
  t.equal((await createTarget(b, gw, { name: 'tls', kind: 'http', upstream: up.url })).status, 201)
  const token = await rootToken(b, client, { scope: 'tls:read' })
  for (const [origin, why] of [[`https://127.0.0.1:${(untrusted.address() as AddressInfo).port}`, 'DEPTH_ZERO_SELF_SIGNED_CERT'], [`https://${new URL(up.url).host}`, 'ERR_SSL_WRONG_VERSION_NUMBER']]) {
    t.equal(await saveTarget(b, gw, 'tls', { kind: 'http', upstream: origin, headers: { Authorization: secret } }), 200)
    const r = await get('/tls/x', token)
    t.equal(r.status, 502, why)
    t.same(await r.json(), { error: 'bad_gateway', error_description: `upstream tls failed: ${why}` }, 'what failed, not an invalid response')
  }
  t.equal(reached, 0, 'no request was sent over the untrusted connection')
})

t.test('an upload that takes longer than the upstream timeout, its bytes still coming, reaches the upstream whole', async (t) => {
  // The timeout is for an upstream that says nothing; the agent's body going up is not that.
  const url = new URL(gw.url)
  const out = await new Promise<string>((resolve) => {
    let text = ''
    const s = connect(Number(url.port), url.hostname, () => {
      s.write(`POST /api/slow-upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nContent-Length: 16\r\nConnection: close\r\n\r\n`)
      let sent = 0
      const timer = setInterval(() => { s.write('ab'); if (++sent === 8) clearInterval(timer) }, 100)
      s.on('close', () => clearInterval(timer))
    })
    s.on('data', (d) => { text += d.toString() })
    s.on('error', () => {})
    s.on('close', () => resolve(text))
  })
  t.match(out, /^HTTP\/1.1 200 OK\r\n/, out.slice(0, 60))
  t.match(up.seen.at(-1), { url: '/base/slow-upload', bodyBytes: 16 })
})

t.test('an upstream\'s interim responses, odd reason phrase, bad headers and failure before the body', async (t) => {
  const answers: Record<string, string> = {
    early: 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    reason: 'HTTP/1.1 200 \xff\xfeOK\r\nContent-Length: 2\r\n\r\nok',
    utf8: Buffer.from('HTTP/1.1 200 OK\r\nX-Price: 5€\r\nContent-Length: 2\r\n\r\nok').toString('latin1'), // bytes past ASCII pass as they are
    partial: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n',
    cut: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab',
    nobody: 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello',
    // RFC 9110 §8.6: a 304's Content-Length is the length a 200 would have had; it has no content.
    unchanged: 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 5\r\n\r\n',
    // RFC 9110 §5.3: a list field may come in several lines; these two name two hop-by-hop headers.
    connections: 'HTTP/1.1 200 OK\r\nConnection: x-a\r\nConnection: x-b\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 2\r\n\r\nok',
    // Framings two parties could read two ways (RFC 9112 §5.2, §6.1, §6.3): refused, never guessed at.
    coded: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    framed: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    lengths: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
    // RFC 9110 §8.6: one length given twice may be read as given once.
    repeated: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok',
    // A service worker's scope may reach past its script's own path only as far as this says.
    worker: 'HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nService-Worker-Allowed: /\r\nContent-Length: 2\r\n\r\nok',
    'worker-below': 'HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nService-Worker-Allowed: /app/\r\nContent-Length: 2\r\n\r\nok',
    'worker-up': 'HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nService-Worker-Allowed: ../..\r\nContent-Length: 2\r\n\r\nok',
    folded: 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\nContent-Length: 2\r\n\r\nok',
    // A head whose lines end in LF alone, on a connection the upstream keeps open: no CRLF CRLF ever ends it.
    'bare-lf': 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok',
    // Another protocol's banner (an SSH server's), the connection kept open: no head will follow.
    banner: 'SSH-2.0-OpenSSH_9.6\r\n',
    // No body: the coding applies to nothing.
    'unchanged-coded': 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nTransfer-Encoding: gzip\r\n\r\n',
    // RFC 9110 §8.6: a server must not send Content-Length in a 204; an upstream's is not passed on.
    empty: 'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n',
    // Location is one URI (RFC 9110 §10.2.2): given twice, fetch reads `/other/x, /other/x`, at another target.
    twice: 'HTTP/1.1 302 Found\r\nLocation: /other/x\r\nLocation: /other/x\r\nContent-Length: 0\r\n\r\n',
    // Many fields, well within the size of a head (a page's cookies, its security headers).
    many: `HTTP/1.1 200 OK\r\n${Array.from({ length: 150 }, (_, i) => `Set-Cookie: c${i}=1\r\n`).join('')}Content-Length: 2\r\n\r\nok`
  }
  const raw = createServer((s) => {
    s.on('error', () => {})
    s.on('data', (d) => {
      const name = d.toString('latin1').split(' ')[1].split('/').pop() ?? ''
      s.write(Buffer.from(answers[name] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', 'latin1'))
      if (name === 'partial' || name === 'cut') setTimeout(() => s.destroy(), 50)
    })
  })
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { raw.close() })
  const made = await createTarget(b, gw, { name: 'odd', kind: 'http', upstream: `http://127.0.0.1:${(raw.address() as AddressInfo).port}` })
  t.equal(made.status, 201)
  const token = (await exchangeToken(b, root, { actor: 'odd', scope: 'odd:read', audience: 'odd' })).body.access_token
  t.ok(token)
  const expect = async (name: string, status: number, body: string | RegExp): Promise<void> => {
    const r = await rawRequest(`GET /odd/${name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`)
    t.match(r, new RegExp(`^HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`), `${name}: ${r.slice(0, 60)}`)
    t.match(r.slice(r.indexOf('\r\n\r\n') + 4), body, name)
  }
  await expect('early', 200, /^ok$/)
  await expect('reason', 200, /^ok$/)
  await expect('utf8', 200, /^ok$/)
  await expect('partial', 502, /upstream odd failed: connection closed/)
  // Failing partway through its body, the upstream cuts the agent's answer short: recorded as its failure, not as the agent leaving (499).
  t.match(await rawRequest(`GET /odd/cut HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`), /^HTTP\/1.1 200 OK\r\n[^]*\r\n\r\nab$/)
  await b.broker.ctx.audit.flush()
  const cut = (await b.admin('GET', '/v1/audit?target=odd&limit=10')).body.events.find((e: { path: string }) => e.path === '/cut')
  t.match(cut, { decision: 'allow', status: 502 }, 'recorded as the upstream\'s failure')
  await expect('nobody', 502, /"error":"bad_gateway"/)
  await expect('unchanged', 304, /^$/)
  await expect('connections', 200, /^ok$/)
  for (const name of ['coded', 'framed', 'lengths', 'folded', 'bare-lf', 'banner']) await expect(name, 502, /upstream odd failed: invalid response/)
  await expect('unchanged-coded', 304, /^$/)
  await expect('many', 200, /^ok$/)
  await expect('empty', 204, /^$/)
  t.notMatch(await rawRequest(`GET /odd/twice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`), /\r\nlocation:/i, 'a Location given twice is not passed on')
  t.notMatch(await rawRequest(`GET /odd/empty HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`), /\r\ncontent-length:/i, 'a 204 carries no Content-Length')
  const repeated = await get('/odd/repeated', token)
  t.equal(await repeated.text(), 'ok', 'a length given twice reaches the agent once: Node\'s clients refuse a second Content-Length')
  // Every target shares the gateway's origin: a worker one upstream's script registered for / would see every other target's requests.
  t.equal((await get('/odd/worker', token)).headers.get('service-worker-allowed'), '/odd', 'a service worker is allowed no scope past its target')
  t.equal((await get('/odd/worker-below', token)).headers.get('service-worker-allowed'), '/odd/app/', 'one below the upstream\'s root, below the target\'s')
  t.equal((await get('/odd/js/worker-up', token)).headers.get('service-worker-allowed'), '/odd', 'a relative one that climbs out of the target, the target')
  t.notMatch(await rawRequest(`GET /odd/connections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`), /\r\nx-[ab]:/i, 'the headers they name are not passed on')
  t.equal((await get('/api/still-fine', agent)).status, 200)
})

t.test('bytes an upstream sends past the end of a response never answer another request', async (t) => {
  // The first answer carries a second, forged one behind it, at once or a moment later while its connection waits for the next request.
  const forged = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged'
  let connections = 0
  const raw = createServer((s) => {
    connections++
    s.on('error', () => {})
    s.on('data', (d) => {
      const name = d.toString('latin1').split(' ')[1].split('/').pop() ?? ''
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${name.length}\r\n\r\n${name}${name === 'at-once' ? forged : ''}`)
      if (name === 'later') setTimeout(() => { s.write(forged) }, 30)
    })
  })
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { raw.close() })
  t.equal((await createTarget(b, gw, { name: 'smuggle', kind: 'http', upstream: `http://127.0.0.1:${(raw.address() as AddressInfo).port}` })).status, 201)
  const token = (await exchangeToken(b, root, { actor: 'smuggle', scope: 'smuggle:read', audience: 'smuggle' })).body.access_token
  for (const first of ['at-once', 'later']) {
    const r = await get(`/smuggle/${first}`, token)
    t.equal(await r.text(), first)
    await new Promise((resolve) => setTimeout(resolve, 80))
    const next = await get('/smuggle/next', token)
    t.equal(next.status, 200)
    t.equal(await next.text(), 'next', `after ${first}: the next request gets its own answer`)
  }
  t.equal(connections, 3, 'each connection that carried extra bytes was closed, not reused')
})

/**
 * The answer an agent reading `/mirror/x` gets from an upstream that answers with `answer`
 * (redirects not followed), the target `mirror` made or saved anew with `headers` and held by
 * the gateway: an earlier test's mirror, with its other credential, may still be what it serves.
 */
async function throughMirror (t: Test, headers: Record<string, string>, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Response> {
  const mirror = createHttpServer(answer)
  await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { mirror.close() })
  const target = { kind: 'http', upstream: `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`, headers }
  const saved = await saveTarget(b, gw, 'mirror', target)
  if (saved === 404) t.equal((await createTarget(b, gw, { name: 'mirror', ...target })).status, 201)
  else t.equal(saved, 200)
  return await get('/mirror/x', await rootToken(b, client, { scope: 'mirror:read' }), { redirect: 'manual' })
}

t.test('an upstream that reflects the request\'s headers never hands the agent the target\'s credential', async (t) => {
  const r = await throughMirror(t, { Authorization: secret, 'X-Team': 'data' }, (req, res) => {
    const credential = String(req.headers.authorization).split(' ')[1]
    res.writeHead(302, [['X-Seen-Authorization', String(req.headers.authorization)], ['Location', `/login?next=%2F&key=${credential}`], ['Set-Cookie', 'a=1'],
      ['Set-Cookie', `k=${credential}`], ['X-Seen-Team', String(req.headers['x-team'])], ['Content-Length', '0']])
    res.end()
  })
  t.equal(r.status, 302)
  t.notMatch(JSON.stringify([...r.headers]), 'upstream-secret-value-42')
  t.same(r.headers.getSetCookie(), ['a=1'], 'the other cookie passes')
  t.equal(r.headers.get('x-seen-team'), 'data', 'a value too short to be a credential passes')
  t.equal(r.headers.get('location'), null)
})

t.test('an upstream that reflects the target\'s credential percent-encoded, as in a redirect\'s query, never hands it to the agent', async (t) => {
  const key = 'k3y/With+Reserved=Chars=='
  const r = await throughMirror(t, { 'X-Api-Key': key }, (req, res) => {
    const encoded = encodeURIComponent(String(req.headers['x-api-key']))
    res.writeHead(302, [['Location', `/login?next=%2F&key=${encoded}`], ['X-Seen-Key', encoded], ['Content-Length', '0']])
    res.end()
  })
  t.equal(r.status, 302)
  t.notMatch(JSON.stringify([...r.headers]), encodeURIComponent(key))
  t.equal(r.headers.get('location'), null)
  t.equal(r.headers.get('x-seen-key'), null)
})

t.test('an upstream that reflects the target\'s credential percent-encoded its own way (Python\'s quote, URLSearchParams, lower-case escapes) never hands it to the agent', async (t) => {
  // A base64 key, as most are: `/`, `+` and `=` are what encoders disagree on.
  const key = 'aB3/dE5+fG7/hI9k!=='
  const escape = (c: string): string => `%${c.charCodeAt(0).toString(16).toUpperCase()}`
  const r = await throughMirror(t, { 'X-Api-Key': key }, (req, res) => {
    const got = String(req.headers['x-api-key'])
    res.writeHead(302, [
      // Python's urllib.parse.quote keeps `/`; URLSearchParams (and Java's URLEncoder) escape `!`; some write hex in lower case.
      ['Location', `/login?key=${got.replace(/[^A-Za-z0-9_.~/-]/g, escape)}`],
      ['X-Seen-Form', new URLSearchParams({ key: got }).toString()],
      ['X-Seen-Lower', encodeURIComponent(got).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())],
      ['X-Other', 'a%20b'], ['Content-Length', '0']])
    res.end()
  })
  t.equal(r.status, 302)
  t.equal(r.headers.get('location'), null)
  t.equal(r.headers.get('x-seen-form'), null)
  t.equal(r.headers.get('x-seen-lower'), null)
  t.equal(r.headers.get('x-other'), 'a%20b', 'an escaped value that holds no credential passes')
})

t.test('an upstream that reflects the value of one of the target\'s cookies on its own never hands it to the agent', async (t) => {
  const r = await throughMirror(t, { Cookie: 'session=s3ss/0n-value-xyz; theme=dark' }, (req, res) => {
    const session = /session=([^;]*)/.exec(String(req.headers.cookie))?.[1] ?? ''
    res.writeHead(200, [['X-Session-Id', session], ['Location', `/x?sid=${encodeURIComponent(session)}`], ['X-Theme', 'dark'], ['Content-Length', '0']])
    res.end()
  })
  t.equal(r.status, 200)
  t.notMatch(JSON.stringify([...r.headers]), /s3ss/)
  t.equal(r.headers.get('x-theme'), 'dark', 'a value too short to be a credential passes')
})

t.test('a keep-alive connection whose request body the upstream left unread is closed after the response', async (t) => {
  // An upstream that refuses at once, or drops the connection, reading no more of the body
  // than came with the headers. A body larger than the sockets' buffers (which the kernel grows
  // to a few MiB) is then left unread.
  const early = createServer((s) => {
    s.on('error', () => {})
    s.once('data', (d) => {
      s.pause()
      if (d.toString('latin1').startsWith('POST /drop ')) s.destroy()
      else s.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n\r\ntoo large')
    })
  })
  await new Promise<void>((resolve) => early.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { early.close() })
  t.equal((await createTarget(b, gw, { name: 'early', kind: 'http', upstream: `http://127.0.0.1:${(early.address() as AddressInfo).port}` })).status, 201)
  const token = (await exchangeToken(b, root, { actor: 'uploader', scope: 'early:write', audience: 'early' })).body.access_token
  const body = Buffer.alloc(16 * 1024 * 1024, 'a')
  const url = new URL(gw.url)
  for (const [path, status] of [['/upload', '413 Payload Too Large'], ['/drop', '502 Bad Gateway']]) {
    // The agent reuses the connection once it has the answer, as a keep-alive client does.
    const { out, closed } = await new Promise<{ out: string, closed: boolean }>((resolve) => {
      let text = ''
      const s = connect(Number(url.port), url.hostname, () => {
        s.write(`POST /early${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\n\r\n`)
        s.write(body)
      })
      const timer = setTimeout(() => { s.destroy(); resolve({ out: text, closed: false }) }, 3000)
      s.on('data', (d) => {
        if (text === '') s.write(`GET /api/fine HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
        text += d.toString()
      })
      s.on('error', () => {})
      s.on('close', () => { clearTimeout(timer); resolve({ out: text, closed: true }) })
    })
    t.match(out, new RegExp(`^HTTP/1.1 ${status}\r\n`), `${path}: the answer arrives`)
    t.ok(closed, `${path}: the connection does not hang`)
    t.match(out.slice(0, out.indexOf('\r\n\r\n') + 2), /\r\nconnection: close\r\n/i, `${path}: the answer says the connection ends`)
  }
  t.equal((await get('/api/still-fine', agent)).status, 200)
})

t.test('a request waiting for one of a target\'s upstream connections, all held by streams, gets 504 in time', async (t) => {
  t.equal((await createTarget(b, gw, { name: 'busy', kind: 'http', upstream: up.url })).status, 201)
  // A root of its own, so that its 256 audit records crowd no other test's out of a query's newest 100.
  const token = (await exchangeToken(b, await rootToken(b, client), { actor: 'streamer', scope: 'busy:read', audience: 'busy' })).body.access_token
  const streams = new AbortController()
  const { open: held, refused } = await holdEveryConnection('busy', token, streams.signal)
  t.teardown(() => { streams.abort(); held.length = 0 })
  t.equal(held.length, 256, 'every upstream connection streams', { refused: refused.slice(0, 3), times: refused.length })
  const started = Date.now()
  const late = await get('/busy/x', token)
  t.equal(late.status, 504)
  t.match(await late.json(), { error: 'gateway_timeout' })
  t.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`)
  streams.abort()
  t.equal((await get('/api/fine', agent)).status, 200, 'other targets are served')
})

t.test('a POST naming another method in its body, waiting for one of the upstream connections all held by streams, is refused with 400 and the gateway runs on', async (t) => {
  t.equal((await createTarget(b, gw, { name: 'crowded', kind: 'http', upstream: up.url, policy: { rules: [{ effect: 'deny', methods: ['DELETE'] }] } })).status, 201)
  const token = (await exchangeToken(b, await rootToken(b, client), { actor: 'crowd', scope: 'crowded:*', audience: 'crowded' })).body.access_token
  const streams = new AbortController()
  const { open: held, refused } = await holdEveryConnection('crowded', token, streams.signal)
  t.teardown(() => { streams.abort(); held.length = 0 })
  t.equal(held.length, 256, 'every upstream connection streams', { refused: refused.slice(0, 3), times: refused.length })
  // Its body is read, and refused, while it waits: nothing of undici's listens to the body yet.
  // Streamed (chunked), as a body sent whole with its head is searched before it waits at all.
  const before = up.seen.length
  const body = new ReadableStream({ start (c) { c.enqueue(new TextEncoder().encode('_method=DELETE')); c.close() } })
  const r = await get('/crowded/users/5', token, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, duplex: 'half' } as RequestInit)
  t.equal(r.status, 400)
  t.match(await r.json(), { error: 'invalid_request', error_description: /_method field in the body is refused/ })
  streams.abort()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(up.seen.filter((s) => s.method === 'POST').length, up.seen.slice(0, before).filter((s) => s.method === 'POST').length, 'the upstream never got it')
  t.equal((await get('/api/fine', agent)).status, 200, 'the gateway still serves')
})

t.test('a POST refused for the method override in its body is counted as a refusal', async (t) => {
  const count = async (decision: string): Promise<number> =>
    Number(new RegExp(`lineage_gateway_requests_total\\{target="api",decision="${decision}"\\} (\\d+)`).exec(await (await fetch(`${gw.url}/_lineage/metrics`)).text())?.[1] ?? 0)
  const [allow, deny] = [await count('allow'), await count('deny')]
  const r = await get('/api/admin/users/7', agent, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=x&_method=DELETE' })
  t.equal(r.status, 400)
  await r.arrayBuffer()
  let counted = [await count('allow'), await count('deny')]
  for (let i = 0; i < 50 && counted[1] === deny; i++) { await new Promise((resolve) => setTimeout(resolve, 10)); counted = [await count('allow'), await count('deny')] }
  t.same(counted, [allow, deny + 1], 'one more refusal, no more allowed requests')
})

t.test('a method or path override (a header, a _method query parameter) is refused before the upstream sees it', async (t) => {
  const before = up.seen.length
  const sneaky = await get('/api/users/7', agent, { headers: { 'x-http-method-override': 'DELETE' } })
  t.equal(sneaky.status, 400)
  t.match(await sneaky.json(), { error: 'invalid_request', error_description: /x-http-method-override is refused/ })
  t.equal((await get('/api/x', agent, { headers: { 'x-original-url': '/admin/users/7' } })).status, 400)
  const query = await get('/api/admin/users/7?_method=DELETE', agent, { method: 'POST', body: 'x' })
  t.equal(query.status, 400)
  t.match(await query.json(), { error: 'invalid_request', error_description: /_method query parameter is refused/ })
  t.equal(up.seen.length, before, 'none reached the upstream')
  t.equal((await get('/api/users/7', agent, { method: 'DELETE', headers: { 'x-http-method-override': 'delete' } })).status, 200, 'an override naming the method itself passes')
})

t.test('a method or path override header spelled with _ for - is refused too: CGI, WSGI and Rack servers read both spellings as one', async (t) => {
  // Rack::MethodOverride reads HTTP_X_HTTP_METHOD_OVERRIDE, which X_HTTP_Method_Override becomes as surely as X-HTTP-Method-Override.
  const before = up.seen.length
  const overrides: Array<Record<string, string>> = [{ X_HTTP_Method_Override: 'DELETE' }, { 'x-http_method': 'DELETE' }, { X_Method_Override: 'PUT' }, { X_Original_URL: '/admin/users/7' }, { 'x-rewrite_url': '/admin' }]
  for (const headers of overrides) {
    const r = await get('/api/users/7', agent, { method: 'POST', body: 'x', headers })
    t.equal(r.status, 400, Object.keys(headers)[0])
    t.match(await r.json(), { error: 'invalid_request', error_description: /is refused: the upstream would/ })
  }
  t.equal(up.seen.length, before, 'none reached the upstream')
  t.equal((await get('/api/users/7', agent, { method: 'POST', body: 'x', headers: { X_HTTP_Method_Override: 'post' } })).status, 200, 'one naming the method itself passes')
})

t.test('a POST whose body names another method (_method, as Rails, Laravel and Symfony read it) is refused where the policy judges methods', async (t) => {
  // The api target denies DELETE below /admin; its upstream would run these POSTs as DELETEs.
  const bodies: Array<[string, string, string | string[]]> = [
    ['a form field', 'application/x-www-form-urlencoded', 'name=x&_method=DELETE'],
    ['a form field, percent-encoded', 'application/x-www-form-urlencoded', 'name=x&%5F%6Dethod=DELETE'],
    ['a JSON member, \\u-escaped', 'application/json', '{"name":"x","\\u005fmethod":"DELETE"}'],
    ['a multipart field', 'multipart/form-data; boundary=b', '--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--\r\n'],
    ['a form field split across writes, inside an escape', 'application/x-www-form-urlencoded', ['name=x&%5', 'F', 'meth', 'od=DELETE']],
    // PHP makes a `.` in a field name `_`: Symfony and Laravel read these as _method.
    ['a form field PHP reads as _method', 'application/x-www-form-urlencoded', 'name=x&.method=DELETE'],
    ['a form field PHP reads as _method, percent-encoded', 'application/x-www-form-urlencoded', 'name=x&%2Emethod=DELETE'],
    ['a multipart field PHP reads as _method', 'multipart/form-data; boundary=b', '--b\r\nContent-Disposition: form-data; name=".method"\r\n\r\nDELETE\r\n--b--\r\n'],
    // PHP appends a part's header line without `:` to the line before it.
    ['a multipart name over two lines', 'multipart/form-data; boundary=b', '--b\r\nContent-Disposition: form-data; name="_met\r\nhod"\r\n\r\nDELETE\r\n--b--\r\n'],
    ['a multipart name over two lines and two writes', 'multipart/form-data; boundary=b', ['--b\r\nContent-Disposition: form-data; name=".met\r', '\nhod"\r\n\r\nDELETE\r\n--b--\r\n']],
    // Rack reads `\m` in a quoted name as `m`.
    ['a multipart name with backslash escapes', 'multipart/form-data; boundary=b', '--b\r\nContent-Disposition: form-data; name="_\\m\\ethod"\r\n\r\nDELETE\r\n--b--\r\n'],
    // Rack decodes a text part's name in ISO-2022-JP, where ESC ( B (to ASCII) is no character.
    ['a multipart name in ISO-2022-JP', 'multipart/form-data; boundary=b', ['--b\r\nContent-Disposition: form-data; name="_me', 't' + '\x1b(B'.repeat(20), '\x1b', '(Bhod"\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\nDELETE\r\n--b--\r\n']]
  ]
  for (const [what, type, body] of bodies) {
    const before = up.seen.length
    const parts = Array.isArray(body) ? body : [body]
    const stream = new ReadableStream({
      async start (c) {
        for (const p of parts) { c.enqueue(new TextEncoder().encode(p)); await new Promise((resolve) => setTimeout(resolve, 20)) }
        c.close()
      }
    })
    const r = await get('/api/admin/users/5', agent, { method: 'POST', headers: { 'content-type': type }, body: stream, duplex: 'half' } as RequestInit)
    t.equal(r.status, 400, what)
    t.match(await r.json(), { error: 'invalid_request', error_description: /_method field in the body is refused/ }, what)
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.equal(up.seen.length, before, `${what}: the upstream never got the whole request`)
  }
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', `/v1/audit?jti=${claimsOf(agent).jti}&limit=1`)).body.events
  t.match(events[0], { decision: 'deny', status: 400, method: 'POST', path: '/admin/users/5', detail: { reason: /_method field/ } }, 'recorded as refused')
  // Without it the same POST passes; so does one to a target whose policy names no methods.
  t.equal((await get('/api/admin/users/5', agent, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=x&method=post' })).status, 200)
  t.equal((await get('/api/admin/users/5', agent, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'script=if%20(req.method%20%3D%3D%3D%20%27GET%27)' })).status, 200, 'a .method that starts no name passes')
  t.equal((await createTarget(b, gw, { name: 'plain', kind: 'http', upstream: up.url })).status, 201)
  const plain = (await exchangeToken(b, root, { actor: 'plain', scope: 'plain:write', audience: 'plain' })).body.access_token
  t.equal((await get('/plain/users/5', plain, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '_method=DELETE' })).status, 200)
})

t.test('a POST whose body the search for _method cannot read (a content coding, a charset other than ASCII\'s) is refused where the policy judges methods', async (t) => {
  // Express's body-parser inflates the body and decodes a JSON body's charset before it reads it.
  const bodies: Array<[string, Record<string, string>, string | Uint8Array]> = [
    ['gzip', { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' }, new Uint8Array(gzipSync('_method=DELETE'))],
    ['UTF-16', { 'content-type': 'application/json; charset=utf-16le' }, new Uint8Array(Buffer.from('{"_method":"DELETE"}', 'utf16le'))],
    ['UTF-7', { 'content-type': 'application/json; charset="UTF-7"' }, '{"+AF8-method":"DELETE"}'],
    ['UTF-7 after UTF-8', { 'content-type': 'application/json; charset=utf-8; charset=utf-7' }, '{"+AF8-method":"DELETE"}']
  ]
  for (const [what, headers, body] of bodies) {
    const before = up.seen.length
    const r = await get('/api/admin/users/5', agent, { method: 'POST', headers, body })
    t.equal(r.status, 400, what)
    t.match(await r.json(), { error: 'invalid_request', error_description: /could not see a _method field/ }, what)
    t.equal(up.seen.length, before, `${what}: the upstream never got it`)
  }
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', `/v1/audit?jti=${claimsOf(agent).jti}&limit=1`)).body.events
  t.match(events[0], { decision: 'deny', status: 400, method: 'POST', path: '/admin/users/5', detail: { reason: /could not see a _method field/ } }, 'recorded as refused')
  t.equal((await get('/api/admin/users/5', agent, { method: 'POST', headers: { 'content-type': 'application/json; charset=UTF-8', 'content-encoding': 'identity' }, body: '{}' })).status, 200, 'UTF-8, not coded, passes')
  t.equal((await get('/api/admin/users/5', agent, { method: 'PUT', headers: { 'content-encoding': 'gzip' }, body: new Uint8Array(gzipSync('x')) })).status, 200, 'another method than POST is not searched')
})

t.test('a refused request without a body leaves its keep-alive connection open for the next', async (t) => {
  const url = new URL(gw.url)
  const out = await new Promise<string>((resolve) => {
    let text = ''
    const s = connect(Number(url.port), url.hostname, () => {
      s.write('GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n')
      s.write(`GET /api/y HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
    })
    s.on('data', (d) => { text += d.toString() })
    s.on('error', () => {})
    s.on('close', () => resolve(text))
  })
  t.match(out, /^HTTP\/1.1 401 Unauthorized\r\n/)
  t.notMatch(out.slice(0, out.indexOf('\r\n\r\n')), /connection: close/i, 'the refusal keeps the connection')
  t.match(out, /HTTP\/1.1 200 OK\r\n/, 'the next request on it is answered')
})

t.test('a request pipelined behind a refusal that closes the connection is not served, as the agent never gets its answer and sends it again', async (t) => {
  // RFC 9112 §9.6: a server that answers "close" must not process the requests after it on
  // that connection. Both come in one packet, so the second is parsed while the first is
  // refused, its body (chunked: node:http reads it) not yet read.
  const before = up.seen.length
  const out = await rawRequest(`POST /api/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nDELETE /api/pipelined-behind-close HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\n\r\n`)
  t.match(out, /^HTTP\/1.1 401 Unauthorized\r\n/)
  t.match(out.slice(0, out.indexOf('\r\n\r\n') + 2), /\r\nconnection: close\r\n/i, 'the refusal closes the connection')
  t.equal(out.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, 'one answer')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(up.seen.length, before, 'the request behind it never reached the upstream')
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', `/v1/audit?jti=${claimsOf(agent).jti}&limit=5`)).body.events
  t.notOk(events.some((e: { path: string }) => e.path === '/pipelined-behind-close'), 'nor was it recorded as served')
})

t.test('an agent that ends its side of the connection partway through an upload is recorded once, as the request cut short, and is written no refusal', async (t) => {
  const url = new URL(gw.url)
  const out = await new Promise<string>((resolve) => {
    let text = ''
    const s = connect(Number(url.port), url.hostname, () => {
      s.write(`POST /api/upload-cut-short HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nContent-Length: 100\r\n\r\nhello`)
      // A client aborting an upload closes its socket: a FIN, not a reset, when it has read all it was sent.
      setTimeout(() => s.end(), 100)
    })
    s.on('data', (d) => { text += d.toString() })
    s.on('error', () => {})
    s.on('close', () => resolve(text))
    setTimeout(() => s.destroy(), 2000)
  })
  t.equal(out, '', 'no answer to a request the agent gave up on')
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', '/v1/audit?limit=3')).body.events.filter((e: { kind: string }) => e.kind === 'gateway.http')
  t.match(events[0], { decision: 'allow', status: 499, path: '/upload-cut-short' }, 'the request, cut short')
  t.notOk(events.some((e: { detail: { error?: string } | null }) => e.detail?.error === 'HPE_INVALID_EOF_STATE'), 'no refusal of a malformed request beside it')
})

/**
 * Sends a stream's request with `headers`, a DELETE of `/api/users/<behind>` pipelined behind it,
 * reads the stream a little and closes the connection; the upstream's requests meanwhile, and
 * the audit records of the agent's token.
 */
async function pipelinedBehindStream (headers: string, behind: string): Promise<{ ran: string[], events: Array<{ path: string, decision: string, status: number }> }> {
  const url = new URL(gw.url)
  const before = up.seen.length
  const s = connect(Number(url.port), url.hostname, () => {
    s.write(`GET /api/sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\n${headers}\r\nDELETE /api/users/${behind} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\n\r\n`)
  })
  s.on('error', () => {})
  let text = ''
  s.on('data', (d) => { text += d.toString() })
  try {
    while (!text.includes('data: 2')) await new Promise((resolve) => setTimeout(resolve, 10))
  } finally {
    s.destroy()
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
  const ran = up.seen.slice(before).map((r) => r.url)
  await b.broker.ctx.audit.flush()
  return { ran, events: (await b.admin('GET', `/v1/audit?jti=${claimsOf(agent).jti}&limit=5`)).body.events }
}

t.test('a request pipelined behind a streaming response waits for it: the connection closing first, the upstream never runs it', async (t) => {
  // Requests on one connection are served one after another (RFC 9112 §9.3.2), as nginx serves
  // them: a write queued behind a stream that never ends is never run, its answer undeliverable.
  const { ran, events } = await pipelinedBehindStream('', 'behind-a-stream')
  t.same(ran, ['/base/sse'], 'the upstream ran the stream only')
  t.match(events[0], { path: '/sse', decision: 'allow', status: 499 }, 'the stream recorded as cut short')
  t.notOk(events.some((e) => e.path === '/users/behind-a-stream'), 'the request never read is not recorded as decided')
})

t.test('on a connection node:http serves, a request pipelined behind a streaming response waits for it too, as on the lane', async (t) => {
  // A header naming another in Connection is not the lane's: node:http serves the connection from its first request on.
  const { ran, events } = await pipelinedBehindStream('Connection: x-hop\r\nX-Hop: 1\r\n', 'behind-a-handed-off-stream')
  t.same(ran, ['/base/sse'], 'the upstream ran the stream only')
  t.notOk(events.some((e) => e.path === '/users/behind-a-handed-off-stream'), 'the request never served is not recorded as decided')
  const both = await rawRequest(`GET /api/first HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: x-hop\r\n\r\nGET /api/second HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
  t.match(both, /"url":"\/base\/first"[^]*"url":"\/base\/second"/, 'behind a response that ends, it is served in its turn')
})

t.test('an agent that leaves while its token is verified starts no upstream exchange, and is audited', async (t) => {
  const { VerifiedTokens } = await import('../../src/lineage/verified-tokens.js')
  // A gateway of its own that has to fetch the signing key, slowly, as a fresh gateway process does.
  const slow = await startTestGateway(b, {
    verified: new VerifiedTokens(),
    keys: async (kid) => { await new Promise((resolve) => setTimeout(resolve, 200)); return b.broker.ctx.keys().verifiers.get(kid) }
  })
  t.teardown(slow.close)
  const token = (await exchangeToken(b, root, { actor: 'quitter' })).body.access_token
  const before = up.seen.length
  const url = new URL(slow.url)
  for (let i = 0; i < 3; i++) {
    const s = connect(Number(url.port), url.hostname, () => {
      s.write(`GET /api/sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`)
      setTimeout(() => s.destroy(), 50)
    })
    s.on('error', () => {})
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(up.seen.length, before, 'no upstream request was made')
  await b.broker.ctx.audit.flush()
  const r = await b.admin('GET', `/v1/audit?jti=${claimsOf(token).jti}`)
  t.same(r.body.events.filter((e: { kind: string }) => e.kind === 'gateway.http').map((e: { status: number }) => e.status), [499, 499, 499])
  t.equal((await fetch(`${slow.url}/api/x`, { headers: auth(token) })).status, 200, 'the gateway serves on')
})

t.test('a view that went stale while the signing key was fetched refuses the request (503), not decides it', async (t) => {
  const { VerifiedTokens } = await import('../../src/lineage/verified-tokens.js')
  let freshAt = b.clock.now()
  let fetching: (() => void) | undefined
  const asked = new Promise<void>((resolve) => { fetching = resolve })
  let answer: (() => void) | undefined
  const answered = new Promise<void>((resolve) => { answer = resolve })
  const slow = await startTestGateway(b, {
    verified: new VerifiedTokens(),
    freshAt: () => freshAt,
    keys: async (kid) => { fetching?.(); await answered; return b.broker.ctx.keys().verifiers.get(kid) }
  })
  t.teardown(slow.close)
  const token = (await exchangeToken(b, root, { actor: 'late-key' })).body.access_token
  const before = up.seen.length
  const pending = fetch(`${slow.url}/api/x`, { headers: auth(token) })
  await asked
  // The database went away while the broker's keys were fetched: the view is past its limit now.
  freshAt = b.clock.now() - 60_000
  answer?.()
  const r = await pending
  t.equal(r.status, 503)
  t.match(await r.json(), { error: 'temporarily_unavailable', error_description: /live-status view is \d+ ms old/ })
  t.equal(up.seen.length, before, 'the upstream never got it')
})

t.test('a request target in absolute form is served as its path, and judged as one', async (t) => {
  // RFC 9112 §3.2.2: a server must accept it, though clients send it only to proxies.
  const r = await rawRequest(`GET http://gateway.example/api/users/7?x=1 HTTP/1.1\r\nHost: gateway.example\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
  t.match(r, /^HTTP\/1.1 200 /)
  t.equal(up.seen.at(-1)?.url, '/base/users/7?x=1')
  const dots = await rawRequest(`GET HTTP://gateway.example/api/../down/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
  t.match(dots, /^HTTP\/1.1 400 /, 'its dot segments are refused as in a path')
  t.match(await rawRequest('GET http://gateway.example/_lineage/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1.1 200 /, 'the gateway\'s own endpoints too')
  t.match(await rawRequest(`GET ftp://gateway.example/api/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`), /^HTTP\/1.1 400 /, 'another scheme is no request target')
})

t.test('hostile paths never reach another target', async (t) => {
  for (const path of ['/api/../down/x', '/api/%2e%2e/down/x', '/api/a%2Fb', '/api/a\\b', '/api/./x']) {
    const r = await rawRequest(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
    t.match(r, /^HTTP\/1.1 400 /, path)
  }
  // A fragment: the policy would judge `/admin/users/7#x`, the upstream read `/admin/users/7`.
  const seenBefore = up.seen.length
  for (const path of ['/api/admin/users/7#x', '/api/x#/admin', '/api/x?a#b']) {
    const r = await rawRequest(`DELETE ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
    t.match(r, /^HTTP\/1.1 400 /, path)
    t.match(r, /"error":"invalid_request","error_description":"a fragment \(#\) is refused in the request target"/, path)
  }
  t.equal(up.seen.length, seenBefore, 'no fragment reached the upstream')
  await b.broker.ctx.audit.flush()
  const audited = (await b.admin('GET', '/v1/audit?limit=20')).body.events.filter((e: { kind: string, status: number, detail: { reason?: string } | null }) =>
    e.kind === 'gateway.http' && e.status === 400 && e.detail?.reason === 'a fragment (#) is refused in the request target')
  t.equal(audited.length, 3, 'each refusal is audited')
  const q = await get('/api/x?access_token=' + agent)
  t.equal(q.status, 400)
  t.match(await q.json(), { error_description: /tokens in the query string are refused/ })
  // The token sent in Authorization and again elsewhere: the upstream would get it and could use it at the gateway.
  const elsewhereBefore = up.seen.length
  const named = await get('/api/x?token=' + agent, agent)
  t.equal(named.status, 400)
  t.match(await named.json(), { error: 'invalid_request', error_description: /tokens in the query string are refused/ })
  for (const headers of [{ cookie: `session=${agent}` }, { 'x-api-key': agent }] as Array<Record<string, string>>) {
    const r = await get('/api/x', agent, { headers })
    t.equal(r.status, 400, Object.keys(headers)[0])
    t.match(await r.json(), { error: 'invalid_request', error_description: `the bearer token is refused in ${Object.keys(headers)[0]}` })
  }
  for (const path of [`/api/sessions/${agent}`, `/api/sessions/${agent.replace('.', '%2E')}/x`]) {
    const r = await get(path, agent)
    t.equal(r.status, 400, 'a token in the path')
    t.match(await r.json(), { error: 'invalid_request', error_description: /the bearer token is refused in the path/ })
  }
  t.equal(up.seen.length, elsewhereBefore, 'none reached the upstream')
  await b.broker.ctx.audit.flush()
  const inPath = (await b.admin('GET', `/v1/audit?jti=${claimsOf(agent).jti}&limit=50`)).body.events.filter((e: { path: string }) => e.path?.startsWith('/sessions/'))
  t.same(inPath.map((e: { path: string, status: number }) => [e.status, e.path]), [[400, '/sessions/[token]/x'], [400, '/sessions/[token]']], 'recorded without the token')
  const readOnly = (await exchangeToken(b, root, { scope: 'api:read', actor: 'reader' })).body.access_token
  t.equal((await get(`/api/sessions/${readOnly}`, readOnly, { method: 'POST', body: 'x' })).status, 403, 'refused for its scope first')
  await b.broker.ctx.audit.flush()
  const denied = (await b.admin('GET', `/v1/audit?jti=${claimsOf(readOnly).jti}&limit=5`)).body.events
  t.match(denied, [{ status: 403, path: '/sessions/[token]' }], 'and recorded without the token too')
  t.equal((await get('/api/x', 'not-a-token', { headers: { 'x-api-key': 'not-a-token' } })).status, 401, 'a made-up token is a 401 wherever else it is')
  const before = up.seen.length
  const smuggle = await rawRequest('POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer ' + agent + '\r\n\r\n0\r\n\r\nGET /down/x HTTP/1.1\r\nHost: x\r\n\r\n')
  t.match(smuggle, /^HTTP\/1.1 400 /)
  // RFC 9112 §6.1: a transfer coding other than chunked (Node reads the chunks and leaves the gzip in the content).
  const coded = await rawRequest('POST /api/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nAuthorization: Bearer ' + agent + '\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
  t.match(coded, /^HTTP\/1.1 501 /)
  t.match(coded, /Transfer-Encoding gzip, chunked is not supported/)
  t.equal(up.seen.length, before, 'nothing reached the upstream')
  const huge = await rawRequest(`GET /api/x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`)
  t.match(huge, /^HTTP\/1.1 431 /)
  const tunnel = await rawRequest(`CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nAuthorization: Bearer ${agent}\r\n\r\n`)
  t.match(tunnel, /^HTTP\/1.1 405 Method Not Allowed\r\n/)
  t.match(tunnel, /CONNECT is not served/)
  t.match(tunnel, /\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i, 'a 405 names the methods served (RFC 9110 §15.5.6)')
  await b.broker.ctx.audit.flush()
  const connects = (await b.admin('GET', '/v1/audit?limit=20')).body.events.filter((e: { kind: string, method: string }) => e.kind === 'gateway.http' && e.method === 'CONNECT')
  t.match(connects, [{ decision: 'deny', status: 405, detail: { reason: /CONNECT is not served/ } }], 'the refusal is audited')
  // TRACE would have the upstream echo the request as it got it: with the target's credential.
  const traced = up.seen.length
  const trace = await rawRequest(`TRACE /api/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
  t.match(trace, /^HTTP\/1.1 405 Method Not Allowed\r\n/)
  t.match(trace, /"error":"invalid_request","error_description":"TRACE is not served/)
  t.match(trace, /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i)
  t.notMatch(trace, 'upstream-secret-value-42')
  const track = await rawRequest(`TRACK /api/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
  t.match(track, /^HTTP\/1.1 (400|405) /, 'TRACK is refused (Node\'s parser knows no such method)')
  t.equal(up.seen.length, traced, 'neither reached the upstream')
  await b.broker.ctx.audit.flush()
  const traces = (await b.admin('GET', '/v1/audit?target=api&limit=20')).body.events.filter((e: { method: string }) => e.method === 'TRACE')
  t.match(traces, [{ kind: 'gateway.http', decision: 'deny', status: 405, target: 'api', path: '/x' }], 'the refusal is audited')
  const junk = await rawRequest('\x00\x01\x02 garbage\r\n\r\n')
  t.match(junk, /^HTTP\/1.1 400 /)
  // Bytes Node's parser lets through (obs-text, a tab, DEL) either pass on or are refused; nothing breaks.
  const odd = await rawRequest(Buffer.from(`GET /api/odd HTTP/1.1\r\nHost: x\r\nX-Odd: caf\xe9\tbar\x7f\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`, 'latin1'))
  t.match(odd, /^HTTP\/1.1 (200|400|502) /)
  t.equal((await get('/api/still-fine', agent)).status, 200)
})

t.test('a token sent in the path with no Authorization, or beside another, is recorded as [token], never as itself', async (t) => {
  const other = (await exchangeToken(b, root, { actor: 'bystander' })).body.access_token
  t.equal((await get(`/api/sessions/${agent}`)).status, 401)
  t.equal((await get(`/no-such-target/${agent.replaceAll('.', '%2E')}/x`)).status, 404)
  t.equal((await get(`/api/verify/${other}`, agent)).status, 200, 'a token not the caller\'s passes on, as any path does')
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', '/v1/audit?limit=3')).body.events
  t.same(events.map((e: { status: number, path: string }) => [e.status, e.path]), [[200, '/verify/[token]'], [404, '/[token]/x'], [401, '/sessions/[token]']])
  t.notMatch(JSON.stringify(events), agent.split('.')[2], 'no token\'s signature is in the trail')
})

t.test('a made-up bearer that is part of the path leaves the path recorded as it was sent', async (t) => {
  // Replacing any bearer in the path let an agent with no token hide what it probed: `Bearer e` recorded /admin/delete as /admin/d[token]l[token]t[token].
  for (const junk of ['e', '/', 'admin']) t.equal((await get('/api/admin/delete', junk)).status, 401, junk)
  t.equal((await get('/no-such-target/admin', 'admin')).status, 404)
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', '/v1/audit?limit=4')).body.events
  t.same(events.map((e: { status: number, path: string }) => [e.status, e.path]), [[404, '/admin'], [401, '/admin/delete'], [401, '/admin/delete'], [401, '/admin/delete']])
})

t.test('a streaming response and a keep-alive connection end within a second of the cut-off', async (t) => {
  const c3 = await seedService(b, 'carol', 'carol-ci')
  const r3 = await rootToken(b, c3)
  const streamer = (await exchangeToken(b, r3, { actor: 'tail', audience: 'api' })).body.access_token
  const ms = await streamEndsAfter(t, streamer, async () => { await b.admin('POST', '/v1/principals/carol/offboard') })
  t.ok(ms < 1000, `stream ended ${ms} ms after the cut-off`)
  t.equal(gw.gateway.targets.get('api')?.name, 'api')
})

t.test('offboarding the person behind an actor token cuts off the tokens it acted in, streams included', async (t) => {
  const subject = await seedService(b, 'erin', 'erin-ci')
  const actor = await seedService(b, 'frank', 'frank-bot')
  const subjectRoot = await rootToken(b, subject)
  const acted = (await exchangeToken(b, subjectRoot, { actor_token: await rootToken(b, actor), actor_token_type: accessTokenType, audience: 'api' })).body.access_token
  t.same(claimsOf(acted).lineage.principals, ['frank', 'frank-bot', 'erin', 'erin-ci'], 'the actor token\'s sponsor and subject join the chain')
  const below = (await exchangeToken(b, acted, { actor: 'helper' })).body.access_token
  const alone = (await exchangeToken(b, subjectRoot, { actor: 'build', audience: 'api' })).body.access_token
  const ms = await streamEndsAfter(t, below, async () => { await b.admin('POST', '/v1/principals/frank/offboard') })
  t.ok(ms < 1000, `the stream of a token below the acted one ended ${ms} ms after the cut-off`)
  for (const token of [acted, below]) {
    const r = await get('/api/x', token)
    t.equal(r.status, 401)
    t.match(await r.json(), { error: 'invalid_token', error_description: /principal frank is offboarded/ })
  }
  t.equal((await get('/api/x', alone)).status, 200, 'the subject\'s chain without the actor goes on')
})

t.test('revoking the actor token that acted in a chain ends its streams and refuses its requests', async (t) => {
  const subject = await seedService(b, 'gina', 'gina-ci')
  const actorRoot = await rootToken(b, await seedService(b, 'hal', 'hal-bot'))
  const acted = (await exchangeToken(b, await rootToken(b, subject), { actor_token: actorRoot, actor_token_type: accessTokenType, audience: 'api' })).body.access_token
  const ms = await streamEndsAfter(t, acted, async () => { t.equal((await b.admin('POST', `/v1/tokens/${claimsOf(actorRoot).jti as string}/revoke`, {})).status, 200) })
  t.ok(ms < 1000, `the stream ended ${ms} ms after the revocation`)
  const r = await get('/api/x', acted)
  t.equal(r.status, 401)
  t.match(await r.json(), { error: 'invalid_token', error_description: /actor token \S+ \(or one it descends from\) was revoked/ })
})

t.test('a genuine token refused as expired is recorded with its lineage', async (t) => {
  // The agent's own claims, expired a minute ago, signed with the broker's key as it would have.
  const key = b.broker.ctx.keys().active
  const claims = { ...claimsOf(agent), jti: 'expired-agent-token', exp: Math.floor(b.clock.now() / 1000) - 60 }
  const signed = `${key.header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  const expired = `${signed}.${sign(null, Buffer.from(signed), key.privateKey).toString('base64url')}`
  const r = await get('/api/late', expired)
  t.equal(r.status, 401)
  t.match(await r.json(), { error: 'invalid_token', error_description: 'token expired' })
  const events = (await b.admin('GET', '/v1/audit?jti=expired-agent-token')).body.events
  t.match(events, [{ kind: 'gateway.http', decision: 'deny', status: 401, path: '/late', root: claimsOf(root).jti, principals: ['alice', 'ci-nightly'], actors: ['build'] }])
})

t.test('a token past its exp but within the clock tolerance is refused as expired, not forwarded and then cut off', async (t) => {
  const own = await startTestGateway(b, { freshAt: () => b.clock.now() })
  t.teardown(own.close)
  const brief = (await exchangeToken(b, root, { actor: 'brief', ttl: '2' })).body.access_token
  // Two seconds past its exp: the signature check still takes it (RFC 9068 §4 leeway).
  b.clock.advance(claimsOf(brief).exp * 1000 + 2000 - b.clock.now())
  const seen = up.seen.length
  const r = await fetch(`${own.url}/api/late-write`, { method: 'POST', headers: auth(brief), body: 'x' })
  t.equal(r.status, 401)
  t.match(await r.json(), { error: 'invalid_token', error_description: 'token expired' })
  t.equal(up.seen.length, seen, 'the upstream never got it')
})

t.test('every decision is in the audit trail with the whole lineage, and the chain verifies', async (t) => {
  const one = claimsOf(agent)
  const allowed = await b.admin('GET', `/v1/audit?jti=${one.jti}&target=api&limit=1000`)
  t.equal(allowed.status, 200)
  const okGet = allowed.body.events.find((e: { path: string }) => e.path === '/v1/things')
  t.match(okGet, { kind: 'gateway.http', decision: 'allow', status: 200, method: 'GET', target: 'api', root: claimsOf(root).jti, principals: ['alice', 'ci-nightly'], actors: ['build'] })
  t.notMatch(JSON.stringify(allowed.body), 'limit=5', 'queries are not recorded')
  const denied = await b.admin('GET', '/v1/audit?target=api&limit=1000')
  t.ok(denied.body.events.some((e: { decision: string, status: number, detail: { reason: string } }) => e.decision === 'deny' && e.status === 403 && e.detail.reason === 'denied by policy: no deletes under /admin'))
  const seqs = denied.body.events.map((e: { seq: number }) => e.seq)
  t.same(seqs, [...seqs].sort((x: number, y: number) => y - x), 'newest first')
  const issued = await b.admin('GET', `/v1/audit?root=${claimsOf(root).jti}&limit=1000`)
  t.ok(issued.body.events.some((e: { kind: string, jti: string }) => e.kind === 'token.issued' && e.jti === one.jti))
  const alice = await b.admin('GET', '/v1/audit?principal=alice&limit=2')
  t.equal(alice.body.events.length, 2)
  const later = await b.admin('GET', `/v1/audit?since=${new Date(Date.now() + 3600_000).toISOString()}`)
  t.same(later.body.events, [])
  t.equal((await b.admin('GET', '/v1/audit?limit=0')).status, 400)
  t.equal((await b.admin('GET', '/v1/audit?since=yesterday')).status, 400)
  const v = await b.admin('POST', '/v1/audit/verify')
  t.match(v.body, { ok: true })
  t.ok(v.body.records > 20)
})

t.test('a keep-alive connection whose chain is revoked is closed', async (t) => {
  const { Agent, request } = await import('node:http')
  const keep = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keep.destroy())
  const mine = (await exchangeToken(b, root, { actor: 'keeper' })).body.access_token
  const once = async (): Promise<{ status: number, socket: import('node:net').Socket }> => await new Promise((resolve, reject) => {
    const req = request(`${gw.url}/api/k`, { agent: keep, headers: auth(mine) }, (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket! })) })
    req.on('error', reject)
    req.end()
  })
  const first = await once()
  t.equal(first.status, 200)
  const closed = new Promise<void>((resolve) => first.socket.once('close', () => resolve()))
  await b.admin('POST', `/v1/tokens/${claimsOf(mine).jti}/revoke`)
  const started = Date.now()
  await closed
  t.ok(Date.now() - started < 1000, 'the idle connection was closed by the gateway')
})

t.test('a stream on a connection node:http serves ends within a second of its chain\'s revocation, as one on the lane does', async (t) => {
  // A header Connection names is not the lane's: node:http serves this connection from its first request on.
  const mine = (await exchangeToken(b, root, { actor: 'handed-off-streamer' })).body.access_token
  const url = new URL(gw.url)
  const s = connect(Number(url.port), url.hostname, () => {
    s.write(`GET /api/sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${mine}\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n`)
  })
  s.on('error', () => {})
  t.teardown(() => { s.destroy() })
  let text = ''
  s.on('data', (d) => { text += d.toString() })
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()))
  while (!text.includes('data: 1')) await new Promise((resolve) => setTimeout(resolve, 10))
  t.match(text, /^HTTP\/1.1 200 OK\r\n[^]*Transfer-Encoding: chunked/, 'written by node:http')
  await b.admin('POST', `/v1/tokens/${claimsOf(mine).jti}/revoke`)
  const started = Date.now()
  await closed
  t.ok(Date.now() - started < 1000, `the stream ended ${Date.now() - started} ms after the revocation`)
})

t.test('a change that leaves the chain live closes nothing; a reload of the view closes what it finds dead', async (t) => {
  const { Agent, request } = await import('node:http')
  const { readSnapshot } = await import('../../src/lineage/changes.js')
  const keep = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keep.destroy())
  const c = await seedService(b, 'dana', 'dana-ci')
  const mine = (await exchangeToken(b, await rootToken(b, c), { actor: 'watcher', audience: 'api' })).body.access_token
  const once = async (): Promise<import('node:net').Socket> => await new Promise((resolve, reject) => {
    const req = request(`${gw.url}/api/k`, { agent: keep, headers: auth(mine) }, (res) => { res.resume(); res.on('end', () => resolve(req.socket!)) })
    req.on('error', reject)
    req.end()
  })
  const socket = await once()
  let closed = false
  socket.once('close', () => { closed = true })
  const view = b.broker.ctx.view
  // A contract end date a day away: the principal changed, its chains are still live.
  const dana = view.principal('dana')!
  view.apply({ seq: view.seq, kind: 'principal', data: { id: 'dana', kind: 'human', status: 'active', sponsor: null, ends_at: b.clock.now() + 86_400_000, cut_off_at: dana.cutOffAt } })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.notOk(closed, 'still open')
  t.equal(await once(), socket, 'and still used')
  // An offboarding this process never saw as a change, only in the snapshot it reloads.
  await b.broker.ctx.db.query("UPDATE principals SET status = 'offboarded' WHERE id = 'dana'")
  view.reset(await readSnapshot(b.broker.ctx.db, 0))
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(closed, 'closed on the reload')
})

t.test('a contract end date brought forward closes a live connection at the new date', async (t) => {
  const c = await seedService(b, 'erin', 'erin-ci')
  const streamer = (await exchangeToken(b, await rootToken(b, c), { actor: 'tail', audience: 'api' })).body.access_token
  const res = await get('/api/sse', streamer)
  const reader = res.body!.getReader()
  await reader.read()
  const view = b.broker.ctx.view
  const erin = view.principal('erin')!
  view.apply({ seq: view.seq, kind: 'principal', data: { id: 'erin', kind: 'human', status: 'active', sponsor: null, ends_at: b.clock.now() + 200, cut_off_at: erin.cutOffAt } })
  const started = Date.now()
  // The test's clock moves by hand: the end date arrives when it has moved past it.
  const moved = setTimeout(() => { b.clock.advance(200) }, 200)
  t.teardown(() => { clearTimeout(moved) })
  let ended = false
  try {
    for (;;) { const r = await reader.read(); if (r.done) break }
    ended = true
  } catch { ended = true }
  t.ok(ended, 'the stream ended')
  t.ok(Date.now() - started >= 150, `not before the end date (${Date.now() - started} ms)`)
})

t.test('a gateway that cannot prove its view is fresh refuses everything, then recovers', async (t) => {
  let freshAt = 0
  const stale = await startTestGateway(b, { freshAt: () => freshAt })
  t.teardown(stale.close)
  const r = await fetch(`${stale.url}/api/x`, { headers: auth(agent) })
  t.equal(r.status, 503)
  t.match(await r.json(), { error: 'temporarily_unavailable', error_description: /live-status view is \d+ ms old/ })
  freshAt = b.clock.now() + 60_000
  const back = await fetch(`${stale.url}/api/x`, { headers: auth(agent) })
  t.equal(back.status, 503, 'a view read "later" than now: the clock went back')
  t.match(await back.json(), { error_description: /the clock went back/ })
  freshAt = b.clock.now()
  t.equal((await fetch(`${stale.url}/api/x`, { headers: auth(agent) })).status, 200)
})

t.test('a response still streaming when the view can no longer be proven fresh is ended within a second; an idle connection waits for its next request', async (t) => {
  let freshAt = b.clock.now()
  const blind = await startTestGateway(b, { freshAt: () => freshAt })
  t.teardown(blind.close)
  const { Agent, request } = await import('node:http')
  const keep = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keep.destroy())
  const idle = await new Promise<import('node:net').Socket>((resolve, reject) => {
    const req = request(`${blind.url}/api/k`, { agent: keep, headers: auth(agent) }, (res) => { res.resume(); res.on('end', () => resolve(req.socket!)) })
    req.on('error', reject)
    req.end()
  })
  const res = await fetch(`${blind.url}/api/sse`, { headers: auth(agent) })
  t.equal(res.status, 200)
  const reader = res.body!.getReader()
  await reader.read()
  // The database stopped answering: a cut-off may be committed that this gateway cannot see.
  freshAt = b.clock.now() - 60_000
  const started = Date.now()
  const ended = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 3000)
    const next = (): void => { reader.read().then((r) => { if (r.done) { clearTimeout(timer); resolve(true) } else next() }, () => { clearTimeout(timer); resolve(true) }) }
    next()
  })
  t.ok(ended, 'the stream ended')
  t.ok(Date.now() - started < 1500, `within a second of the view going stale (${Date.now() - started} ms)`)
  t.notOk(idle.destroyed, 'the idle keep-alive connection stays: its next request is refused')
  freshAt = b.clock.now()
  t.equal((await fetch(`${blind.url}/api/x`, { headers: auth(agent) })).status, 200, 'and the gateway serves again once the view is fresh')
})

t.test('an idle connection answers for the last chain it carried, not for every chain it ever carried', async (t) => {
  const { Agent, request } = await import('node:http')
  const keep = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keep.destroy())
  const first = (await exchangeToken(b, root, { actor: 'first' })).body.access_token
  const second = (await exchangeToken(b, root, { actor: 'second' })).body.access_token
  const once = async (token: string): Promise<import('node:net').Socket> => await new Promise((resolve, reject) => {
    const req = request(`${gw.url}/api/k`, { agent: keep, headers: auth(token) }, (res) => { res.resume(); res.on('end', () => resolve(req.socket!)) })
    req.on('error', reject)
    req.end()
  })
  const s1 = await once(first)
  const s2 = await once(second)
  t.equal(s1, s2, 'one keep-alive connection carried both')
  let closed = false
  s2.once('close', () => { closed = true })
  await b.admin('POST', `/v1/tokens/${claimsOf(first).jti}/revoke`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.notOk(closed, 'revoking the earlier chain leaves it open')
  await b.admin('POST', `/v1/tokens/${claimsOf(second).jti}/revoke`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(closed, 'revoking the chain it carries now closes it')
})

t.test('broker and gateway expose Prometheus metrics', async (t) => {
  const g = await fetch(`${gw.url}/_lineage/metrics`)
  t.equal(g.status, 200)
  const text = await g.text()
  t.match(text, /lineage_gateway_requests_total\{target="api",decision="allow"\} \d+/)
  t.match(text, /lineage_gateway_requests_total\{target="\(none\)",decision="deny"\} \d+/)
  t.match(text, /lineage_gateway_check_seconds_bucket\{le="0.001",target="api"\} \d+/)
  const broker = await (await fetch(`${b.url}/metrics`)).text()
  t.match(broker, /lineage_tokens_issued_total\{grant="token_exchange"\} \d+/)
  t.equal((await fetch(`${gw.url}/_lineage/healthz`)).status, 200)
  t.equal((await fetch(`${gw.url}/_lineage/nothing`)).status, 404)
})

t.test('target credentials never come back from the admin API', async (t) => {
  const r = await b.admin('GET', '/v1/targets/api')
  t.equal(r.status, 200)
  t.same(r.body.header_names, ['authorization', 'x-team'])
  t.notMatch(JSON.stringify(r.body), 'upstream-secret-value-42')
  const pg = await b.admin('GET', '/v1/targets/db')
  t.equal(pg.body.upstream, 'postgres://app@127.0.0.1:5432/app')
  t.equal((await b.admin('DELETE', '/v1/targets/db')).status, 204)
  t.equal((await b.admin('GET', '/v1/targets/db')).status, 404)
})

t.test('an http upstream with a query is refused when saved: requests are sent the agent\'s query, never the upstream\'s', async (t) => {
  const r = await createTarget(b, gw, { name: 'keyed', kind: 'http', upstream: `${up.url}/v1?api_key=upstream-secret-value-42` })
  t.equal(r.status, 400)
  t.match(r.body, { error: 'invalid_request', error_description: /query/ })
  t.notMatch(JSON.stringify(r.body), 'upstream-secret-value-42')
  t.equal((await b.admin('GET', '/v1/targets/keyed')).status, 404)
})

t.test('a target header the upstream client cannot send (Expect) is refused when saved, not with a 502 on every request', async (t) => {
  const r = await createTarget(b, gw, { name: 'expecting', kind: 'http', upstream: up.url, headers: { Expect: '100-continue' } })
  t.equal(r.status, 400)
  t.match(r.body, { error_description: 'header Expect is set by the gateway' })
})

t.test('a target header value the upstream client cannot send (a control character, a character past Latin-1) is refused when saved, not with a 502 on every request', async (t) => {
  for (const value of ['key\u0001x', 'key\u007fx', 'key\r\nX-Injected: 1', '5\u20ac', '\u{1F511}']) {
    const r = await createTarget(b, gw, { name: 'unsendable', kind: 'http', upstream: up.url, headers: { 'X-Key': value } })
    t.equal(r.status, 400, JSON.stringify(value))
    t.match(r.body, { error: 'invalid_request', error_description: /^header X-Key must be a single-line string/ })
  }
  t.equal((await b.admin('GET', '/v1/targets/unsendable')).status, 404)
  const fine = await createTarget(b, gw, { name: 'unsendable', kind: 'http', upstream: up.url, headers: { 'X-Key': 'caf\u00e9\tkey with spaces' } })
  t.equal(fine.status, 201, 'Latin-1, spaces and tabs are sent as they are')
})

t.test('a target moved to another upstream lets go of its connections to the old one', async (t) => {
  // Upstreams of its own: connections of other tests' targets, opening and closing meanwhile, are not counted.
  const old = await startUpstream()
  const other = await startUpstream()
  t.teardown(async () => { await old.close(); await other.close() })
  t.equal((await createTarget(b, gw, { name: 'moving', kind: 'http', upstream: old.url })).status, 201)
  const tk = await rootToken(b, client, { scope: 'moving:read' })
  const count = async (): Promise<number> => await new Promise((resolve) => old.server.getConnections((_e, n) => resolve(n)))
  const before = await count()
  t.equal((await get('/moving/x', tk)).status, 200)
  t.equal(await count(), before + 1, 'a keep-alive connection to the old upstream')
  t.equal(await saveTarget(b, gw, 'moving', { name: 'moving', kind: 'http', upstream: other.url }), 200)
  t.equal((await get('/moving/y', tk)).status, 200)
  t.equal(other.seen.at(-1)?.url, '/y')
  // Its idle connection would otherwise stay open until the pool's keep-alive ran out (4 s).
  for (let i = 0; i < 20 && await count() > before; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await count(), before, 'the old upstream\'s connection is closed')
})

t.test('a request decided after its target moved, on the target as it was, leaves the moved target\'s upstream connections working', async (t) => {
  const { VerifiedTokens } = await import('../../src/lineage/verified-tokens.js')
  const old = await startUpstream()
  const moved = await startUpstream()
  // A gateway that verifies a token it has not seen slowly, as one fetching the broker's keys does.
  let slow = false
  const own = await startTestGateway(b, {
    verified: new VerifiedTokens(),
    keys: async (kid) => { if (slow) await new Promise((resolve) => setTimeout(resolve, 1000)); return b.broker.ctx.keys().verifiers.get(kid) }
  })
  t.teardown(async () => { await own.close(); await old.close(); await moved.close() })
  t.equal((await createTarget(b, own, { name: 'hop', kind: 'http', upstream: old.url })).status, 201)
  const known = await rootToken(b, client, { scope: 'hop:*' })
  t.equal((await fetch(`${own.url}/no-such-target/x`, { headers: auth(known) })).status, 404, 'verified (and kept) without a request to hop')
  slow = true
  const fresh = await rootToken(b, client, { scope: 'hop:*' })
  const first = fetch(`${own.url}/hop/decided-late`, { headers: auth(fresh) })
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await saveTarget(b, own, 'hop', { name: 'hop', kind: 'http', upstream: moved.url }), 200)
  const post = async (path: string): Promise<Response> => await fetch(`${own.url}/hop${path}`, {
    method: 'POST', headers: auth(known), duplex: 'half', body: new ReadableStream({ start (c) { c.enqueue(new TextEncoder().encode('streamed')); c.close() } })
  } as RequestInit)
  t.equal((await post('/before')).status, 200)
  t.equal((await first).status, 200, 'the request decided late is answered')
  const after = await post('/after')
  t.equal(after.status, 200, `the moved target is still served: ${await after.text()}`)
  t.equal(moved.seen.at(-1)?.url, '/after')
})

/**
 * Sends a request's head with `Expect: 100-continue` and its body only once a 100 arrives, as
 * curl does: everything the gateway sent, and whether the body went.
 */
async function expectContinue (head: string, body: string): Promise<{ out: string, sentBody: boolean }> {
  const url = new URL(gw.url)
  return await new Promise((resolve) => {
    let out = ''
    let sentBody = false
    const s = connect(Number(url.port), url.hostname, () => s.write(head))
    s.on('data', (d) => {
      out += d.toString()
      if (!sentBody && out.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) { sentBody = true; s.write(body) }
    })
    s.on('close', () => resolve({ out, sentBody }))
    s.on('error', () => resolve({ out, sentBody }))
    setTimeout(() => s.destroy(), 2000)
  })
}

t.test('Expect: 100-continue is answered 100 only once the request is allowed; a refusal is the final answer, before any body', async (t) => {
  const head = (method: string, path: string, token: string, more = ''): string =>
    `${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 11\r\nExpect: 100-continue\r\n${more}Connection: close\r\n\r\n`
  const before = up.seen.length
  const forged = await expectContinue(head('POST', '/api/upload', 'not-a-token'), 'hello world')
  t.match(forged.out, /^HTTP\/1.1 401 Unauthorized\r\n/, 'a bad token: 401 first')
  t.notOk(forged.sentBody, 'no 100 invited the body')
  const denied = await expectContinue(head('DELETE', '/api/admin/x', agent), 'hello world')
  t.match(denied.out, /^HTTP\/1.1 403 Forbidden\r\n/, 'refused by policy: 403 first')
  t.notOk(denied.sentBody)
  t.equal(up.seen.length, before, 'neither reached the upstream')
  const allowed = await expectContinue(head('POST', '/api/upload', agent), 'hello world')
  t.ok(allowed.sentBody, 'allowed: 100 Continue, and the body went')
  t.match(allowed.out, /\r\n\r\nHTTP\/1.1 200 OK\r\n/)
  t.match(up.seen.at(-1), { method: 'POST', url: '/base/upload', bodyBytes: 11 })
  t.equal(up.seen.at(-1)?.headers.expect, undefined, 'the upstream is not asked to expect anything')

  const odd = await expectContinue(head('POST', '/api/upload', agent).replace('100-continue', 'teapot-mode'), 'hello world')
  t.match(odd.out, /^HTTP\/1.1 417 Expectation Failed\r\n/, 'another expectation: 417')
  t.match(odd.out, /"error_description":"Expect: teapot-mode is not supported; only 100-continue is"/)
  t.equal(up.seen.length, before + 1)
  await b.broker.ctx.audit.flush()
  const audited = (await b.admin('GET', '/v1/audit?target=api&limit=10')).body.events.map((e: { status: number, method: string, path: string }) => `${e.status} ${e.method} ${e.path}`)
  t.match(audited.slice(0, 3), ['417 POST /upload', '200 POST /upload', '403 DELETE /admin/x'], 'each answer is recorded')
})

t.test('requests Node refuses before any handler (malformed, headers too large) are recorded as refusals', async (t) => {
  t.match(await rawRequest('GET /api/x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'), /^HTTP\/1.1 400 /)
  t.match(await rawRequest(`GET /api/x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`), /^HTTP\/1.1 431 /)
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', '/v1/audit?limit=2')).body.events
  t.match(events.map((e: { status: number, decision: string, detail: unknown }) => ({ status: e.status, decision: e.decision, detail: e.detail })), [
    { status: 431, decision: 'deny', detail: { reason: 'request headers too large', error: 'HPE_HEADER_OVERFLOW' } },
    { status: 400, decision: 'deny', detail: { reason: 'malformed HTTP request', error: /^HPE_/ } }
  ])
  t.equal((await get('/api/x', agent)).status, 200, 'the gateway serves on')
})

t.test('headers not finished in time are answered 408 within a second of the limit, and recorded', async (t) => {
  const own = await startTestGateway(b)
  t.teardown(own.close)
  // Node's own property, read at each check: 20 s in production, a fraction of a second here.
  own.gateway.httpServer.headersTimeout = 300
  const url = new URL(own.url)
  const started = Date.now()
  const out = await new Promise<string>((resolve) => {
    let text = ''
    const s = connect(Number(url.port), url.hostname, () => s.write('GET /api/x HTTP/1.1\r\nHost: x\r\n'))
    s.on('data', (d) => { text += d.toString() })
    s.on('close', () => resolve(text))
    s.on('error', () => resolve(text))
    setTimeout(() => s.destroy(), 15_000)
  })
  t.match(out, /^HTTP\/1.1 408 Request Timeout\r\n/)
  t.ok(Date.now() - started < 10_000, 'not left to a check every 30 s')
  await b.broker.ctx.audit.flush()
  t.match((await b.admin('GET', '/v1/audit?limit=1')).body.events[0], { decision: 'deny', status: 408, detail: { error: 'ERR_HTTP_REQUEST_TIMEOUT' } })
})

t.test('a head awaited on the lane, then handed to node:http unfinished, has only what is left of its headers time there', async (t) => {
  const own = await startTestGateway(b)
  t.teardown(own.close)
  own.gateway.httpServer.headersTimeout = 600
  const url = new URL(own.url)
  const started = Date.now()
  const out = await new Promise<string>((resolve) => {
    let text = ''
    const s = connect(Number(url.port), url.hostname, () => {
      s.write('GET /api/x HTTP/1.1\r\nHost: x\r\n')
      // A header value with obs-text, which node:http takes and the lane does not: node:http has the connection from here.
      setTimeout(() => s.write(Buffer.from('X-Name: Jos\xe9', 'latin1')), 400)
    })
    s.on('data', (d) => { text += d.toString() })
    s.on('close', () => resolve(text))
    s.on('error', () => resolve(text))
    setTimeout(() => s.destroy(), 5000)
  })
  const took = Date.now() - started
  t.match(out, /^HTTP\/1.1 408 Request Timeout\r\n/)
  t.ok(took >= 550 && took < 950, `refused ${took} ms after the head began, not the headers time again from the hand-off`)
  await b.broker.ctx.audit.flush()
  t.match((await b.admin('GET', '/v1/audit?limit=1')).body.events[0], { decision: 'deny', status: 408, detail: { error: 'ERR_HTTP_REQUEST_TIMEOUT' } })

  // One finished in time is node:http's to answer, and the connection is not refused after.
  const finished = await new Promise<string>((resolve) => {
    let text = ''
    const s = connect(Number(url.port), url.hostname, () => {
      s.write('GET /api/x HTTP/1.1\r\nHost: x\r\n')
      setTimeout(() => s.write(Buffer.from('X-Name: Jos\xe9', 'latin1')), 200)
      setTimeout(() => s.write('\r\n\r\n'), 300)
    })
    s.on('data', (d) => { text += d.toString() })
    s.on('error', () => resolve(text))
    setTimeout(() => { s.destroy(); resolve(text) }, 1200)
  })
  t.match(finished, /^HTTP\/1.1 401 Unauthorized\r\n/)
  t.notMatch(finished, /408/)
})

t.test('a connection that sends nothing is answered 408 at the headers time and recorded, as node:http answers it', async (t) => {
  const own = await startTestGateway(b)
  t.teardown(own.close)
  own.gateway.httpServer.headersTimeout = 300
  const url = new URL(own.url)
  await b.broker.ctx.audit.flush()
  const before = (await b.admin('GET', '/v1/audit?limit=1')).body.events[0]
  const out = await new Promise<string>((resolve) => {
    let text = ''
    const s = connect(Number(url.port), url.hostname)
    s.on('data', (d) => { text += d.toString() })
    s.on('close', () => resolve(text))
    s.on('error', () => resolve(text))
    setTimeout(() => s.destroy(), 3000)
  })
  t.match(out, /^HTTP\/1.1 408 Request Timeout\r\n/)
  await b.broker.ctx.audit.flush()
  const after = (await b.admin('GET', '/v1/audit?limit=1')).body.events[0]
  t.notSame(after, before, 'a record of its own')
  t.match(after, { decision: 'deny', status: 408, detail: { error: 'ERR_HTTP_REQUEST_TIMEOUT' } })
})

t.test('a head cut short by the agent\'s end is answered 400 and recorded, as node:http answers it', async (t) => {
  const url = new URL(gw.url)
  const out = await new Promise<string>((resolve) => {
    let text = ''
    const s = connect(Number(url.port), url.hostname, () => {
      s.write('GET /api/x HTTP/1.1\r\nHo')
      setTimeout(() => s.end(), 50)
    })
    s.on('data', (d) => { text += d.toString() })
    s.on('close', () => resolve(text))
    s.on('error', () => resolve(text))
    setTimeout(() => s.destroy(), 3000)
  })
  t.match(out, /^HTTP\/1.1 400 Bad Request\r\n[^]*"error_description":"malformed HTTP request"/)
  await b.broker.ctx.audit.flush()
  t.match((await b.admin('GET', '/v1/audit?limit=1')).body.events[0], { decision: 'deny', status: 400, detail: { reason: 'malformed HTTP request', error: 'HPE_INVALID_EOF_STATE' } })
})

t.test('an HTTP/1.1 request without Host is refused with 400 as every refusal is, JSON and recorded; HTTP/1.0 needs none', async (t) => {
  const noHost = await rawRequest(`GET /api/x HTTP/1.1\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`)
  t.match(noHost, /^HTTP\/1.1 400 Bad Request\r\n/)
  t.match(noHost, /\{"error":"invalid_request","error_description":"[^"]*Host[^"]*"\}/)
  const expecting = await rawRequest(`POST /api/x HTTP/1.1\r\nAuthorization: Bearer ${agent}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`)
  t.match(expecting, /^HTTP\/1.1 400 /, 'no 100 first')
  t.match(await rawRequest('GET /_lineage/healthz HTTP/1.1\r\nConnection: close\r\n\r\n'), /^HTTP\/1.1 400 /, 'the gateway\'s own endpoints too')
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', '/v1/audit?limit=3')).body.events
  t.match(events.map((e: { status: number, decision: string, method: string, detail: { reason: string } }) => ({ status: e.status, decision: e.decision, method: e.method, reason: e.detail.reason })), [
    { status: 400, decision: 'deny', method: 'GET', reason: /Host/ },
    { status: 400, decision: 'deny', method: 'POST', reason: /Host/ },
    { status: 400, decision: 'deny', method: 'GET', reason: /Host/ }
  ])
  t.match(await rawRequest(`GET /api/x HTTP/1.0\r\nAuthorization: Bearer ${agent}\r\n\r\n`), /^HTTP\/1.1 200 /)
})

t.test('a request naming Host twice is refused with 400 and recorded, and reaches no upstream (RFC 9112 §3.2)', async (t) => {
  const before = up.seen.length
  for (const [request, what] of [
    [`GET /api/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`, 'two values'],
    [`GET /api/x HTTP/1.1\r\nHost: x\r\nhost: x\r\nAuthorization: Bearer ${agent}\r\nConnection: close\r\n\r\n`, 'the same value twice'],
    [`GET /api/x HTTP/1.0\r\nHost: a.example\r\nHost: b.example\r\nAuthorization: Bearer ${agent}\r\n\r\n`, 'HTTP/1.0'],
    ['GET /_lineage/healthz HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n', 'the gateway\'s own endpoints']
  ]) {
    const r = await rawRequest(request)
    t.match(r, /^HTTP\/1.1 400 Bad Request\r\n/, what)
    t.match(r, /"error_description":"a request with more than one Host header is refused/, what)
  }
  t.equal(up.seen.length, before, 'none reached the upstream')
  await b.broker.ctx.audit.flush()
  const events = (await b.admin('GET', '/v1/audit?limit=4')).body.events
  t.match(events.map((e: { status: number, decision: string, detail: { reason: string } }) => [e.status, e.decision, e.detail.reason]), Array(4).fill([400, 'deny', /more than one Host/]))
  t.equal((await get('/api/x', agent)).status, 200)
})

/** What a connection reads when `request` is written on it once the streaming response before it has begun (for at most 2 s). */
async function behindStream (request: string): Promise<string> {
  const url = new URL(gw.url)
  return await new Promise<string>((resolve) => {
    let text = ''
    let sent = false
    const s = connect(Number(url.port), url.hostname, () => s.write(`GET /api/sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\n\r\n`))
    s.on('data', (d) => {
      text += d.toString()
      if (!sent && text.includes('data: 0')) {
        sent = true
        s.write(request)
      }
    })
    s.on('close', () => resolve(text))
    s.on('error', () => resolve(text))
    setTimeout(() => s.destroy(), 2000)
  })
}

for (const [kind, request, status] of [
  ['a malformed request', 'GET /api/x HTTP/1.1\r\nBad Header\r\n\r\n', 400],
  ['a CONNECT', 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', 405]
] as const) {
  t.test(`${kind} behind a streaming response waits for it, never written into it; behind a whole response it is refused on its own`, async (t) => {
    const out = await behindStream(request)
    t.match(out, /^HTTP\/1.1 200 OK\r\n/)
    t.notMatch(out, `HTTP/1.1 ${status}`, 'no status line inside the streamed body')
    t.notMatch(out, /malformed HTTP request|CONNECT is not served/)
    // The gateway records the stream once it sees the close, which on a loaded machine may come after this side's.
    let newest: unknown
    for (const until = Date.now() + 5000; Date.now() < until; await new Promise((resolve) => setTimeout(resolve, 50))) {
      await b.broker.ctx.audit.flush()
      newest = (await b.admin('GET', '/v1/audit?limit=1')).body.events[0]
      if ((newest as { path?: string }).path === '/sse') break
    }
    t.match(newest, { path: '/sse', decision: 'allow', status: 499 }, 'the stream, cut by the agent, recorded')
    // Pipelined behind a response that ends: that response whole, then the refusal, then the connection closes.
    const both = await rawRequest(`GET /api/users/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent}\r\n\r\n${request}`)
    t.match(both, new RegExp(`^HTTP/1.1 200 OK\\r\\n[^]*"url":"/base/users/1"[^]*\\r\\n0\\r\\n\\r\\nHTTP/1.1 ${status} `), 'the first answered whole, the second refused after it')
    await b.broker.ctx.audit.flush()
    const events = (await b.admin('GET', '/v1/audit?limit=2')).body.events
    t.match(events.map((e: { status: number, decision: string }) => `${e.decision} ${e.status}`).sort(), ['allow 200', `deny ${status}`], 'both recorded')
  })
}

t.test('a connection refused before any handler (CONNECT, a malformed request) is closed once the refusal is sent, though the agent keeps its side open', async (t) => {
  const own = await startTestGateway(b)
  const url = new URL(own.url)
  const sockets: Array<import('node:net').Socket> = []
  t.teardown(async () => { for (const s of sockets) s.destroy(); await own.close() })
  const connections = async (): Promise<number> => await new Promise((resolve) => own.gateway.httpServer.getConnections((_e, n) => resolve(n)))
  for (const request of ['CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', 'GET /api/x HTTP/1.1\r\nBad Header\r\n\r\n']) {
    // The agent reads the refusal and never closes: a held connection, which no timeout of Node's covers any more.
    const s = connect({ port: Number(url.port), host: url.hostname, allowHalfOpen: true }, () => s.write(request))
    sockets.push(s)
    s.on('error', () => {})
    const answer = await new Promise<string>((resolve) => s.once('data', (d) => resolve(d.toString())))
    t.match(answer, /^HTTP\/1.1 (405|400) /)
    const started = Date.now()
    while (await connections() > 0 && Date.now() - started < 2000) await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(await connections(), 0, `${request.split(' ')[0]}: the gateway let go of the connection`)
  }
})

async function rawRequest (text: string | Buffer): Promise<string> {
  const url = new URL(gw.url)
  return await new Promise((resolve) => {
    let out = ''
    const s = connect(Number(url.port), url.hostname, () => s.write(text))
    s.on('data', (d) => { out += d.toString() })
    s.on('close', () => resolve(out))
    s.on('error', () => resolve(out))
    setTimeout(() => s.destroy(), 2000)
  })
}

/**
 * Opens a server-sent event stream through the gateway with `token`, reads its first event, runs
 * `cutOff`, and waits for the stream to end: the milliseconds from the cut-off to its end.
 */
async function streamEndsAfter (t: Test, token: string, cutOff: () => Promise<void>): Promise<number> {
  const res = await get('/api/sse', token)
  t.equal(res.status, 200)
  const reader = res.body!.getReader()
  t.match(Buffer.from((await reader.read()).value!).toString(), /^data: 0/)
  const started = Date.now()
  await cutOff()
  try {
    for (;;) { const r = await reader.read(); if (r.done) break }
  } catch {}
  return Date.now() - started
}

async function seedService (bb: typeof b, human: string, service: string): Promise<{ clientId: string, clientSecret: string }> {
  await bb.admin('POST', '/v1/principals', { id: human, kind: 'human', grants: ['api:*'] })
  await bb.admin('POST', '/v1/principals', { id: service, kind: 'service', sponsor: human, grants: ['api:*'] })
  const c = (await bb.admin('POST', `/v1/principals/${service}/clients`)).body
  return { clientId: c.client_id, clientSecret: c.client_secret }
}
