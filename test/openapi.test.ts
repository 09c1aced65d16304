import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { compileErrors, validate } from '@readme/openapi-parser'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import { createBrokerApp } from '../src/broker/http/app.js'
import { accessTokenType, adminToken, claimsOf, exchangeToken, rootToken, seedContractor, startTestBroker, tokenExchange } from './helpers/broker.js'
import { OpenApi, routesOf, specPath, type Seen } from './helpers/openapi.js'

const spec = new OpenApi()
const b = await startTestBroker()
t.teardown(async () => { await b.close() })

const jtiOf = (jwt: string): string => claimsOf(jwt).jti
const basic = (id: string, secret: string): string => 'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const adminAuth = bearer(adminToken)

/** Holds one real response against openapi.yaml; the route and status must be documented. */
function conforms (t: Test, method: string, path: string, res: Seen): Seen {
  t.equal(spec.check(method, path, res), undefined, `${method} ${path.slice(0, 80)} → ${res.status} is documented and matches its schema`)
  return res
}

async function parsed (r: Response): Promise<Seen> {
  const text = await r.text()
  let body: unknown = text === '' ? undefined : text
  try { body = text === '' ? undefined : JSON.parse(text) } catch {}
  return { status: r.status, body, headers: r.headers }
}

/** Any request through fetch, checked against the spec. */
async function call (t: Test, method: string, path: string, init: { headers?: Record<string, string>, body?: string } = {}, base = b.url): Promise<Seen & { body: any }> {
  return conforms(t, method, path, await parsed(await fetch(base + path, { method, headers: init.headers, body: init.body }))) as Seen & { body: any }
}

/** An admin API call with the admin token, checked against the spec. */
async function admin (t: Test, method: string, path: string, body?: unknown): Promise<Seen & { body: any }> {
  return conforms(t, method, path, await b.admin(method, path, body)) as Seen & { body: any }
}

/** A form POST, checked against the spec. */
async function form (t: Test, path: string, fields: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Seen & { body: any }> {
  return conforms(t, 'POST', path, await b.form(path, fields, headers)) as Seen & { body: any }
}

/** A token exchange through the shared helper, checked against the spec. */
async function exchange (t: Test, subject: string, extra: Record<string, string | string[]> = {}): Promise<Seen & { body: any }> {
  return conforms(t, 'POST', '/oauth/token', await exchangeToken(b, subject, extra)) as Seen & { body: any }
}

// State the story below builds up, in order.
let client: { clientId: string, clientSecret: string }
let root: string
let child: string
let grandchild: string

t.test('openapi.yaml is a valid OpenAPI 3.1 document', async (t) => {
  t.equal(spec.doc.openapi, '3.1.0')
  const result = await validate(fileURLToPath(specPath))
  t.ok(result.valid, result.valid ? 'valid' : compileErrors(result))
  t.same(result.warnings, [], 'no warnings')
})

t.test('every schema in openapi.yaml compiles under strict JSON Schema 2020-12', async (t) => {
  t.same(spec.compileAll(), [])
})

t.test('every route the broker app serves is documented, and every documented operation is routed', async (t) => {
  const routes = routesOf(createBrokerApp(b.broker.ctx, { ready: () => ({ ready: true, detail: {} }) }) as never)
  t.same(routes.filter((r) => !spec.operations().includes(r)), [], 'routes missing from openapi.yaml')
  t.same(spec.operations().filter((op) => !routes.includes(op)), [], 'documented operations the app does not route')
})

t.test('the checker refuses undocumented routes, methods and statuses', async (t) => {
  const empty = { body: undefined, headers: new Headers() }
  t.match(spec.check('GET', '/nope', { status: 404, ...empty }), /undocumented path/)
  t.match(spec.check('DELETE', '/healthz', { status: 200, ...empty }), /undocumented operation/)
  t.match(spec.check('GET', '/healthz', { status: 418, ...empty }), /status 418 is not documented/)
  t.match(spec.check('GET', '/healthz', { status: 200, body: { ok: false }, headers: new Headers({ 'content-type': 'application/json' }) }), /body/)
  t.equal(spec.template('/v1/principals/alice/grants'), '/v1/principals/{id}/grants')
})

t.test('discovery publishes the RFC 8414 metadata and the Ed25519 signing keys', async (t) => {
  const meta = await call(t, 'GET', '/.well-known/oauth-authorization-server')
  t.equal(meta.status, 200)
  t.equal(meta.body.issuer, b.url)
  t.equal(meta.body.jwks_uri, `${b.url}/.well-known/jwks.json`)
  const jwks = await call(t, 'GET', '/.well-known/jwks.json')
  t.equal(jwks.status, 200)
  t.equal(jwks.body.keys.length, 1)
})

t.test('health is always ok and readiness follows the freshness of the view', async (t) => {
  t.equal((await call(t, 'GET', '/healthz')).status, 200)
  t.equal((await call(t, 'GET', '/readyz')).status, 200)
  // The same broker core behind an app whose view is stale: readiness must say 503.
  // The detail `start()` reports (src/server.ts); the test broker's own readiness has none.
  const detail = { view_seq: 3, view_age_ms: 9000, audit_backlog: 12, audit_dropped: 0, audit_failing: true }
  t.equal(spec.validateSchema('Readiness', { ready: true, ...detail, audit_failing: false }), undefined, 'a ready server with its detail matches Readiness')
  const stale: Server = createServer(createBrokerApp(b.broker.ctx, { ready: () => ({ ready: false, detail }) }))
  await new Promise<void>((resolve) => stale.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { stale.closeAllConnections(); await new Promise<void>((resolve) => stale.close(() => resolve())) })
  const r = await call(t, 'GET', '/readyz', {}, `http://127.0.0.1:${(stale.address() as AddressInfo).port}`)
  t.equal(r.status, 503)
  t.same(r.body, { ready: false, ...detail })
})

t.test('the admin API answers 401 without the admin token', async (t) => {
  const none = await call(t, 'GET', '/v1/principals/alice')
  t.equal(none.status, 401)
  t.equal(none.body.error, 'unauthorized')
  const wrong = await call(t, 'POST', '/v1/principals', { headers: { ...bearer('ladm_wrong'), 'content-type': 'application/json' }, body: '{"id":"x","kind":"human"}' })
  t.equal(wrong.status, 401)
})

t.test('creating principals answers 201, 400 for what the model forbids and 409 for an existing id', async (t) => {
  client = await seedContractor(b)
  const bob = await admin(t, 'POST', '/v1/principals', { id: 'bob', kind: 'human', email: 'bob@example.com', grants: ['api:read', 'db:*'] })
  t.equal(bob.status, 201)
  t.equal(bob.body.status, 'active')
  const bot = await admin(t, 'POST', '/v1/principals', { id: 'helper-bot', kind: 'service', sponsor: 'alice', grants: ['api:read'], ends_at: null })
  t.equal(bot.status, 201)
  t.same(bot.body.usable_scopes, ['api:read'])

  t.equal((await admin(t, 'POST', '/v1/principals', { id: 'bob', kind: 'human' })).status, 409, 'an existing id')
  t.equal((await admin(t, 'POST', '/v1/principals', { id: 'bob2', kind: 'human', email: 'bob@example.com' })).status, 409, 'an existing email')
  t.equal((await admin(t, 'POST', '/v1/principals', { id: 'orphan', kind: 'service' })).status, 400, 'a service without a sponsor')
  t.equal((await admin(t, 'POST', '/v1/principals', { id: 'orphan', kind: 'service', sponsor: 'ci-nightly' })).status, 400, 'a service sponsored by a service')
  t.equal((await admin(t, 'POST', '/v1/principals', { id: 'carol', kind: 'human', grants: ['nope'] })).status, 400, 'a malformed grant')
  t.equal((await admin(t, 'POST', '/v1/principals', [1, 2])).status, 400, 'a body that is not an object')
  const badJson = await call(t, 'POST', '/v1/principals', { headers: { ...adminAuth, 'content-type': 'application/json' }, body: '{' })
  t.equal(badJson.status, 400, 'malformed JSON')
  const big = await admin(t, 'POST', '/v1/principals', { id: 'big', kind: 'human', email: 'x'.repeat(300_000) })
  t.equal(big.status, 413, 'a body above 256 KiB')
})

t.test('a human sent with "sponsor": null is created', async (t) => {
  const r = await admin(t, 'POST', '/v1/principals', { id: 'dave', kind: 'human', sponsor: null })
  t.equal(r.status, 201)
})

t.test('principals can be read, regranted and re-sponsored, and unknown ones are 404', async (t) => {
  const alice = await admin(t, 'GET', '/v1/principals/alice')
  t.equal(alice.status, 200)
  t.equal(alice.body.sponsor, null)
  t.equal((await admin(t, 'GET', '/v1/principals/nobody')).status, 404)

  const grants = await admin(t, 'PUT', '/v1/principals/bob/grants', { grants: ['db:read', 'api:*', 'api:*'] })
  t.equal(grants.status, 200)
  t.same(grants.body.grants, ['api:*', 'db:read'], 'de-duplicated and sorted')
  t.equal((await admin(t, 'PUT', '/v1/principals/bob/grants', { grants: 'api:read' })).status, 400)
  t.equal((await admin(t, 'PUT', '/v1/principals/nobody/grants', { grants: [] })).status, 404)

  const moved = await admin(t, 'PUT', '/v1/principals/helper-bot/sponsor', { sponsor: 'bob' })
  t.equal(moved.status, 200)
  t.equal(moved.body.sponsor, 'bob')
  t.equal((await admin(t, 'PUT', '/v1/principals/bob/sponsor', { sponsor: 'alice' })).status, 400, 'a human has no sponsor')
  t.equal((await admin(t, 'PUT', '/v1/principals/helper-bot/sponsor', { sponsor: 'nobody' })).status, 400, 'the sponsor must exist')
  t.equal((await admin(t, 'PUT', '/v1/principals/nobody/sponsor', { sponsor: 'bob' })).status, 404)
})

t.test('a client is created for an existing principal only, its secret shown once', async (t) => {
  const c = await admin(t, 'POST', '/v1/principals/bob/clients')
  t.equal(c.status, 201)
  t.equal(c.headers.get('cache-control'), 'no-store')
  t.equal((await admin(t, 'POST', '/v1/principals/nobody/clients')).status, 404)
})

t.test('client_credentials issues a root token in the documented token format', async (t) => {
  const post = await form(t, '/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, actor_run: 'nightly-42' })
  t.equal(post.status, 200)
  const viaBasic = await form(t, '/oauth/token', { grant_type: 'client_credentials', scope: 'db:read', ttl: '600' }, { authorization: basic(client.clientId, client.clientSecret) })
  t.equal(viaBasic.status, 200)
  t.equal(viaBasic.body.scope, 'db:read')
  t.equal(viaBasic.body.expires_in, 600)

  root = await rootToken(b, client)
  const [header] = root.split('.').map((p, i) => i === 0 ? JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) : p)
  t.match(header, { alg: 'EdDSA', typ: 'at+jwt', kid: String })
  const claims = claimsOf(root)
  t.equal(spec.validateSchema('AccessTokenClaims', claims), undefined, 'the claims match AccessTokenClaims')
  t.same(claims.lineage, { chain: [], principals: ['alice', 'ci-nightly'], depth: 0, rooted_at: claims.lineage.rooted_at })
  t.notOk('act' in claims, 'a root token has no act')
})

t.test('the token endpoint refuses bad clients with 401 and bad requests with 400 or 413', async (t) => {
  const wrong = await form(t, '/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: 'wrong' })
  t.equal(wrong.status, 401)
  t.equal(wrong.body.error, 'invalid_client')
  t.equal((await form(t, '/oauth/token', { grant_type: 'client_credentials' })).status, 401, 'no credentials')
  t.equal((await form(t, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('lc_nobody', 'x') })).status, 401, 'unknown client by Basic')
  const both = await form(t, '/oauth/token', { grant_type: 'client_credentials', client_secret: client.clientSecret }, { authorization: basic(client.clientId, client.clientSecret) })
  t.same([both.status, both.body.error], [400, 'invalid_request'], 'two authentication methods')
  const scope = await form(t, '/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, scope: 'vault:read' })
  t.same([scope.status, scope.body.error], [400, 'invalid_scope'])
  const grant = await form(t, '/oauth/token', { grant_type: 'password', username: 'a', password: 'b' })
  t.same([grant.status, grant.body.error], [400, 'unsupported_grant_type'])
  t.equal((await form(t, '/oauth/token', {})).body.error, 'invalid_request', 'no grant_type')
  t.equal((await form(t, '/oauth/token', { grant_type: ['client_credentials', 'client_credentials'] })).body.error, 'invalid_request', 'a repeated parameter')
  const json = await call(t, 'POST', '/oauth/token', { headers: { 'content-type': 'application/json' }, body: '{"grant_type":"client_credentials"}' })
  t.same([json.status, json.body.error], [400, 'invalid_request'], 'not a form')
  t.equal((await form(t, '/oauth/token', { grant_type: 'client_credentials', pad: 'x'.repeat(300_000) })).status, 413, 'a form above 256 KiB')
})

t.test('token exchange mints a child one level deeper with the new actor outermost', async (t) => {
  const r = await exchange(t, root, { actor: 'agent-1', scope: 'db:read', audience: 'db', ttl: '900', actor_host: 'build-7', actor_pid: '4242', actor_run: 'run-1' })
  t.equal(r.status, 200)
  t.equal(r.headers.get('cache-control'), 'no-store')
  child = r.body.access_token
  const c = claimsOf(child)
  t.equal(spec.validateSchema('AccessTokenClaims', c), undefined, 'the claims match AccessTokenClaims')
  t.same(c.act, { sub: 'agent-1' })
  t.same(c.lineage.chain, [jtiOf(root)])
  t.equal(c.lineage.depth, 1)

  const g = await exchange(t, child, { actor_token: root, actor_token_type: accessTokenType, resource: 'urn:lineage:target:db', requested_token_type: 'urn:ietf:params:oauth:token-type:jwt' })
  t.equal(g.status, 200)
  t.equal(g.body.issued_token_type, 'urn:ietf:params:oauth:token-type:jwt')
  grandchild = g.body.access_token
  t.same(claimsOf(grandchild).act, { sub: 'ci-nightly', act: { sub: 'agent-1' } }, 'the actor token names the current actor, earlier actors nest inside')
})

t.test('token exchange refuses what the parent does not hold and unusable subject tokens with 400', async (t) => {
  const cases: Array<[string, Record<string, string | string[]>, string]> = [
    ['a scope the parent lacks', { scope: 'db:write' }, 'invalid_scope'],
    ['an audience the parent lacks', { audience: 'api' }, 'invalid_target'],
    ['a resource that names no target', { resource: 'https://gw.example/' }, 'invalid_target'],
    ['an unknown subject token type', { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }, 'invalid_request'],
    ['an actor_token_type without actor_token', { actor_token_type: accessTokenType }, 'invalid_request'],
    ['an empty subject_token, which counts as none', { subject_token: '' }, 'invalid_request']
  ]
  for (const [name, extra, error] of cases) {
    const r = await exchange(t, child, extra)
    t.same([r.status, r.body.error], [400, error], name)
  }
  const garbage = await exchange(t, 'not-a-jwt')
  t.same([garbage.status, garbage.body.error], [400, 'invalid_request'], 'a malformed subject token')
  const missing = await form(t, '/oauth/token', { grant_type: tokenExchange, subject_token_type: accessTokenType })
  t.same([missing.status, missing.body.error], [400, 'invalid_request'], 'no subject_token')
})

t.test('introspection shows a live token with its lineage and anything else as exactly {active:false}', async (t) => {
  const live = await form(t, '/oauth/introspect', { token: child }, adminAuth)
  t.equal(live.status, 200)
  t.match(live.body, { active: true, sub: 'ci-nightly', act: { sub: 'agent-1' }, lineage: { depth: 1 } })
  const byClient = await form(t, '/oauth/introspect', { token: root, client_id: client.clientId, client_secret: client.clientSecret })
  t.match(byClient.body, { active: true, jti: jtiOf(root) })
  t.notOk('act' in byClient.body, 'a root token has no act')
  const unknown = await form(t, '/oauth/introspect', { token: 'not-a-jwt' }, { authorization: basic(client.clientId, client.clientSecret) })
  t.same(unknown.body, { active: false })

  t.equal((await form(t, '/oauth/introspect', { token: child })).status, 401, 'no caller')
  t.equal((await form(t, '/oauth/introspect', { token: child }, bearer(child))).status, 401, 'an access token is not an introspection caller')
  const badClient = await form(t, '/oauth/introspect', { token: child }, { authorization: basic(client.clientId, 'wrong') })
  t.same([badClient.status, badClient.body.error, badClient.headers.get('www-authenticate')], [401, 'invalid_client', 'Basic realm="lineage"'])
  t.equal((await form(t, '/oauth/introspect', {}, adminAuth)).status, 400, 'no token')
  t.equal((await form(t, '/oauth/introspect', { token: 'x'.repeat(300_000) }, adminAuth)).status, 413)
})

t.test('the admin API shows a token, its subtree, and unknown tokens are 404', async (t) => {
  const node = await admin(t, 'GET', `/v1/tokens/${jtiOf(child)}`)
  t.equal(node.status, 200)
  t.match(node.body, { parent: jtiOf(root), root: jtiOf(root), depth: 1, actor: 'agent-1', status: 'active', context: { host: 'build-7', pid: '4242', run: 'run-1' } })
  const tree = await admin(t, 'GET', `/v1/tokens/${jtiOf(root)}/tree`)
  t.equal(tree.status, 200)
  t.ok(tree.body.children.some((c: any) => c.jti === jtiOf(child) && c.children.some((g: any) => g.jti === jtiOf(grandchild))), 'the grandchild nests under the child')
  t.equal((await admin(t, 'GET', '/v1/tokens/unknown')).status, 404)
  t.equal((await admin(t, 'GET', '/v1/tokens/unknown/tree')).status, 404)
})

t.test('RFC 7009 revocation: allowed to the token, its ancestors, its root client and the admin', async (t) => {
  const other = await admin(t, 'POST', '/v1/principals/bob/clients')
  const stranger = await form(t, '/oauth/revoke', { token: grandchild, client_id: other.body.client_id, client_secret: other.body.client_secret })
  t.same([stranger.status, stranger.body.error], [400, 'unauthorized_client'], 'a client that does not own the root')
  t.equal((await form(t, '/oauth/revoke', { token: grandchild })).status, 401, 'no caller')
  t.equal((await form(t, '/oauth/revoke', { token: grandchild }, bearer('not-a-jwt'))).status, 401, 'a bearer that is not a live token')
  t.equal((await form(t, '/oauth/revoke', {}, adminAuth)).status, 400, 'no token')
  t.equal((await form(t, '/oauth/revoke', { token: 'x'.repeat(300_000) }, adminAuth)).status, 413)
  t.equal((await form(t, '/oauth/revoke', { token: 'not-a-jwt' }, adminAuth)).status, 200, 'an unknown token')

  const byAncestor = await form(t, '/oauth/revoke', { token: grandchild, token_type_hint: 'access_token' }, bearer(child))
  t.equal(byAncestor.status, 200)
  t.equal(byAncestor.body, undefined, 'empty body')
  t.same((await form(t, '/oauth/introspect', { token: grandchild }, adminAuth)).body, { active: false })
  const fromRevoked = await exchange(t, grandchild)
  t.same([fromRevoked.status, fromRevoked.body.error], [400, 'invalid_request'], 'a revoked subject token')
  const sibling = await exchange(t, root, { actor: 'agent-2' })
  t.equal((await form(t, '/oauth/revoke', { token: sibling.body.access_token, client_id: client.clientId, client_secret: client.clientSecret })).status, 200, 'by the client that owns the root')
  const shown = await admin(t, 'GET', `/v1/tokens/${jtiOf(grandchild)}`)
  t.match(shown.body, { status: 'revoked', status_reason: String })
})

t.test('admin revocation by jti cuts off the subtree once and counts it', async (t) => {
  const leaf = (await exchange(t, child, { actor: 'agent-3' })).body.access_token
  const first = await admin(t, 'POST', `/v1/tokens/${jtiOf(child)}/revoke`, { reason: 'agent-1 misbehaved' })
  t.same([first.status, first.body], [200, { revoked: 2 }], 'the child and its live leaf')
  t.same((await admin(t, 'POST', `/v1/tokens/${jtiOf(child)}/revoke`)).body, { revoked: 0 }, 'idempotent')
  t.equal((await admin(t, 'POST', `/v1/tokens/${jtiOf(child)}/revoke`, { reason: 'x'.repeat(501) })).status, 400)
  t.equal((await admin(t, 'POST', '/v1/tokens/unknown/revoke')).status, 404)
  t.same((await form(t, '/oauth/introspect', { token: leaf }, adminAuth)).body, { active: false })
})

t.test('offboarding a sponsor cuts off every chain resting on it, and reinstating revives none', async (t) => {
  const off = await admin(t, 'POST', '/v1/principals/alice/offboard', { reason: 'contract ended' })
  // Live then: the three root tokens of ci-nightly (every child was revoked above).
  t.same([off.status, off.body], [200, { id: 'alice', status: 'offboarded', revoked: 3 }])
  t.equal((await admin(t, 'POST', '/v1/principals/alice/offboard', { reason: 42 })).status, 400, 'a reason that is not a string')
  t.equal((await admin(t, 'POST', '/v1/principals/nobody/offboard')).status, 404)
  t.same((await form(t, '/oauth/introspect', { token: root }, adminAuth)).body, { active: false })
  t.match((await admin(t, 'GET', `/v1/tokens/${jtiOf(root)}`)).body, { status: 'revoked', status_reason: /alice/ })
  const cc = await form(t, '/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret })
  t.same([cc.status, cc.body.error], [401, 'invalid_client'], 'the service cannot get a root token')

  const back = await admin(t, 'POST', '/v1/principals/alice/reinstate')
  t.same([back.status, back.body.status], [200, 'active'])
  t.equal((await admin(t, 'POST', '/v1/principals/nobody/reinstate')).status, 404)
  t.equal((await call(t, 'POST', '/v1/principals/alice/reinstate', { headers: { ...adminAuth, 'content-type': 'application/json' }, body: '[' })).status, 400)
  t.same((await form(t, '/oauth/introspect', { token: root }, adminAuth)).body, { active: false }, 'still cut off')
  const lapsed = await form(t, '/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret })
  t.same([lapsed.status, lapsed.body.error], [401, 'invalid_client'], 'the service waits for an admin to assign it a sponsor')
  t.equal((await admin(t, 'PUT', '/v1/principals/ci-nightly/sponsor', { sponsor: 'alice' })).status, 200)
})

t.test('an exchange deeper than LINEAGE_MAX_DEPTH is refused with invalid_request', async (t) => {
  b.clock.advance(1000) // a new root must begin after alice's cut-off instant
  let token = await rootToken(b, client)
  for (let depth = 1; depth <= 8; depth++) {
    const r = await exchange(t, token, { actor: `hop-${depth}` })
    t.equal(r.status, 200, `depth ${depth}`)
    token = r.body.access_token
  }
  t.equal(spec.validateSchema('AccessTokenClaims', claimsOf(token)), undefined, 'eight nested acts still match AccessTokenClaims')
  const tooDeep = await exchange(t, token)
  t.same([tooDeep.status, tooDeep.body.error], [400, 'invalid_request'])
})

t.test('rotating the signing key publishes both keys and live tokens keep working', async (t) => {
  const kids = (r: Seen & { body: any }): string[] => r.body.keys.map((k: { kid: string }) => k.kid).sort()
  const before = kids(await call(t, 'GET', '/.well-known/jwks.json'))
  const live = await rootToken(b, client)
  const r = await admin(t, 'POST', '/v1/keys/rotate')
  t.equal(r.status, 201)
  t.notOk(before.includes(r.body.kid), 'a new kid')
  t.same(kids(await call(t, 'GET', '/.well-known/jwks.json')), [...before, r.body.kid].sort())
  t.match((await form(t, '/oauth/introspect', { token: live }, adminAuth)).body, { active: true }, 'a token signed by the retired key')
  const fresh = await rootToken(b, client)
  t.equal(JSON.parse(Buffer.from(fresh.split('.')[0], 'base64url').toString('utf8')).kid, r.body.kid, 'new tokens use the new key')
  t.equal((await call(t, 'POST', '/v1/keys/rotate')).status, 401, 'only the admin rotates')
})

const apiPolicy = {
  rules: [
    { effect: 'deny', actions: ['write'], min_depth: 2, reason: 'agents two hops down only read' },
    { effect: 'deny', methods: ['DELETE'], paths: ['/admin/*'], actors: ['agent-*'] },
    { effect: 'approve', principals: ['bob'], max_depth: 0 }
  ]
}
const dbPolicy = {
  rules: [
    { effect: 'deny', statements: ['delete_without_where', 'update_without_where', 'truncate', 'drop'], tables: ['public.*'] },
    { effect: 'mask', columns: ['customers.email', '*.ssn'], with: 'redact' }
  ]
}

t.test('targets are created with 201, never show upstream credentials, and an existing name is 409', async (t) => {
  const api = await admin(t, 'POST', '/v1/targets', {
    name: 'api', kind: 'http', upstream: 'https://api.internal.example/v2', headers: { Authorization: 'Bearer upstream-secret-1', 'X-Api-Key': 'key-secret-2' }, policy: apiPolicy
  })
  t.equal(api.status, 201)
  t.match(api.body, { name: 'api', kind: 'http', upstream: 'https://api.internal.example/v2', header_names: ['authorization', 'x-api-key'] })
  t.same(api.body.policy, apiPolicy)
  t.notMatch(JSON.stringify(api.body), /secret/, 'no header value is returned')

  const db = await admin(t, 'POST', '/v1/targets', { name: 'db', kind: 'postgres', upstream: 'postgres://app:pg-secret-3@db.internal:5432/shop', policy: dbPolicy })
  t.equal(db.status, 201)
  t.equal(db.body.upstream, 'postgres://app@db.internal:5432/shop', 'the upstream without its password')
  t.notMatch(JSON.stringify(db.body), /secret/, 'no password is returned')
  t.same([db.body.header_names, db.body.policy, db.body.audit_statements], [[], dbPolicy, 'text'])

  const ssh = await admin(t, 'POST', '/v1/targets', { name: 'build-host', kind: 'ssh', upstream: 'ssh://deploy@build.internal:22', headers: null, policy: null })
  t.equal(ssh.status, 201)
  t.same(ssh.body.policy, { rules: [] }, 'a null policy is no rules')

  const dup = await admin(t, 'POST', '/v1/targets', { name: 'api', kind: 'http', upstream: 'https://other.example' })
  t.same([dup.status, dup.body.error], [409, 'conflict'], 'an existing name')
  t.equal((await admin(t, 'GET', '/v1/targets/api')).body.upstream, 'https://api.internal.example/v2', 'the existing target is untouched')
})

t.test('a bad target or a bad policy is 400 and nothing is saved', async (t) => {
  const ok = { kind: 'http', upstream: 'https://x.example' }
  const cases: Array<[string, Record<string, unknown>]> = [
    ['an unknown effect', { ...ok, policy: { rules: [{ effect: 'allow' }] } }],
    ['a bad rule after a good one', { ...ok, policy: { rules: [{ effect: 'deny', methods: ['DELETE'] }, { effect: 'deny', min_depth: 65 }] } }],
    ['a mask without columns', { kind: 'postgres', upstream: 'postgres://db.internal/shop', policy: { rules: [{ effect: 'mask', with: 'redact' }] } }],
    ['an unknown mask kind', { kind: 'postgres', upstream: 'postgres://db.internal/shop', policy: { rules: [{ effect: 'mask', columns: ['a.b'], with: 'blur' }] } }],
    ['a mask column without its table', { kind: 'postgres', upstream: 'postgres://db.internal/shop', policy: { rules: [{ effect: 'mask', columns: ['email'], with: 'redact' }] } }],
    ['columns on a deny rule', { ...ok, policy: { rules: [{ effect: 'deny', columns: ['a.b'] }] } }],
    ['an unknown action', { ...ok, policy: { rules: [{ effect: 'deny', actions: ['delete'] }] } }],
    ['an sslmode libpq does not know', { kind: 'postgres', upstream: 'postgres://db.internal/shop?sslmode=requir' }],
    ['a password in the query, which would be shown', { kind: 'postgres', upstream: 'postgres://app@db.internal/shop?password=secret' }],
    ['an unknown statement shape', { kind: 'postgres', upstream: 'postgres://db.internal/shop', policy: { rules: [{ effect: 'deny', statements: ['grant'] }] } }],
    ['an empty condition list', { ...ok, policy: { rules: [{ effect: 'deny', paths: [] }] } }],
    ['an unknown rule member', { ...ok, policy: { rules: [{ effect: 'deny', hosts: ['x'] }] } }],
    ['an unknown policy member', { ...ok, policy: { rules: [], default: 'deny' } }],
    ['a policy that is an array', { ...ok, policy: [] }],
    ['an unknown kind', { kind: 'ftp', upstream: 'ftp://x.example' }],
    ['an upstream that does not suit the kind', { kind: 'postgres', upstream: 'https://x.example' }],
    ['credentials in an http upstream', { kind: 'http', upstream: 'https://u:p@x.example' }],
    ['headers on a postgres target', { kind: 'postgres', upstream: 'postgres://db.internal/shop', headers: { 'x-a': 'b' } }],
    ['a header the gateway owns', { ...ok, headers: { 'Lineage-Subject': 'mallory' } }],
    ['a multi-line header value', { ...ok, headers: { 'x-a': 'b\r\nx-b: c' } }],
    ['an unknown audit_statements', { kind: 'postgres', upstream: 'postgres://db.internal/shop', audit_statements: 'none' }],
    ['fingerprints on an http target', { ...ok, audit_statements: 'fingerprint' }]
  ]
  for (const [name, body] of cases) {
    const r = await admin(t, 'POST', '/v1/targets', { name: 'bad', ...body })
    t.same([r.status, r.body.error], [400, 'invalid_request'], name)
  }
  t.equal((await admin(t, 'POST', '/v1/targets', ok)).status, 400, 'no name')
  t.equal((await admin(t, 'POST', '/v1/targets', { name: 'Bad Name', ...ok })).status, 400, 'a malformed name')
  t.equal((await admin(t, 'POST', '/v1/targets', [ok])).status, 400, 'a body that is not an object')
  t.equal((await admin(t, 'GET', '/v1/targets/bad')).status, 404, 'nothing was saved')
  const big = await admin(t, 'POST', '/v1/targets', { name: 'big', ...ok, headers: { 'x-pad': 'x'.repeat(300_000) } })
  t.equal(big.status, 413, 'a body above 256 KiB')
})

t.test('targets are read, replaced as a whole, deleted with 204, and unknown ones are 404', async (t) => {
  const got = await admin(t, 'GET', '/v1/targets/api')
  t.equal(got.status, 200)
  t.same(got.body.header_names, ['authorization', 'x-api-key'])
  t.notMatch(JSON.stringify(got.body), /secret/, 'no header value is returned')
  t.equal((await admin(t, 'GET', '/v1/targets/nothing')).status, 404)

  const newPolicy = { rules: [{ effect: 'deny', methods: ['POST', 'PUT'], reason: 'read-only for now' }] }
  const put = await admin(t, 'PUT', '/v1/targets/api', { name: 'api', kind: 'http', upstream: 'https://api2.internal.example', headers: { authorization: 'Bearer upstream-secret-4' }, policy: newPolicy })
  t.equal(put.status, 200)
  t.match(put.body, { name: 'api', upstream: 'https://api2.internal.example/', header_names: ['authorization'], created_at: got.body.created_at })
  t.same(put.body.policy, newPolicy)
  t.notMatch(JSON.stringify(put.body), /secret/, 'no header value is returned')

  const half = await admin(t, 'PUT', '/v1/targets/api', { kind: 'http', upstream: 'https://api3.internal.example', policy: { rules: [{ effect: 'deny' }, { effect: 'mask', columns: ['a.b'] }] } })
  t.same([half.status, half.body.error], [400, 'invalid_request'], 'a bad policy')
  const after = await admin(t, 'GET', '/v1/targets/api')
  t.same([after.body.upstream, after.body.policy, after.body.updated_at], [put.body.upstream, newPolicy, put.body.updated_at], 'the target is exactly as before: never half-applied')
  t.equal((await admin(t, 'PUT', '/v1/targets/api', { name: 'api2', kind: 'http', upstream: 'https://x.example' })).status, 400, 'a rename')
  t.equal((await admin(t, 'PUT', '/v1/targets/nothing', { kind: 'http', upstream: 'https://x.example' })).status, 404)

  const del = await admin(t, 'DELETE', '/v1/targets/build-host')
  t.equal(del.status, 204)
  t.equal(del.body, undefined, 'empty body')
  t.equal((await admin(t, 'GET', '/v1/targets/build-host')).status, 404, 'gone')
  t.equal((await admin(t, 'DELETE', '/v1/targets/build-host')).status, 404, 'a second delete')
})

t.test('the targets API answers 401 without the admin token', async (t) => {
  const json = { 'content-type': 'application/json' }
  const none = await call(t, 'POST', '/v1/targets', { headers: json, body: '{"name":"x","kind":"http","upstream":"https://x.example"}' })
  t.same([none.status, none.body.error], [401, 'unauthorized'])
  t.equal((await call(t, 'POST', '/v1/targets', { headers: { ...bearer('ladm_wrong'), ...json }, body: '{"name":"x","kind":"http","upstream":"https://x.example"}' })).status, 401, 'a wrong token')
  t.equal((await call(t, 'GET', '/v1/targets/api')).status, 401)
  t.equal((await call(t, 'PUT', '/v1/targets/api', { headers: json, body: '{"kind":"http","upstream":"https://x.example"}' })).status, 401)
  t.equal((await call(t, 'DELETE', '/v1/targets/api', { headers: bearer(root) })).status, 401, 'an access token is not the admin token')
  t.equal((await admin(t, 'GET', '/v1/targets/api')).status, 200, 'still there')
  t.equal((await admin(t, 'GET', '/v1/targets/x')).status, 404, 'nothing was created')
})

t.test('the audit trail shows, newest first, what the broker alone recorded: issuance, revocation, status changes', async (t) => {
  const all = await admin(t, 'GET', '/v1/audit?limit=1000')
  t.equal(all.status, 200)
  const events: any[] = all.body.events
  t.ok(events.length > 20 && events.length < 1000, `every record (${events.length})`)
  const seqs = events.map((e) => e.seq)
  t.same(seqs, Array.from({ length: seqs.length }, (_, i) => seqs.length - i), 'seq from the newest down to 1, without gaps')
  t.same([...new Set(events.map((e) => e.kind))].sort(), ['admin.change', 'principal.status', 'token.issued', 'token.refused', 'token.revoked'], 'no gateway here: only what the broker records')
  t.same((await admin(t, 'GET', '/v1/audit')).body.events.map((e: any) => e.seq), seqs.slice(0, 100), 'limit defaults to 100')

  // The exchanges refused to the child (malformed requests above) are recorded too; the issuance and revocation are what is checked here.
  const ofChildAll = await admin(t, 'GET', `/v1/audit?jti=${jtiOf(child)}`)
  t.ok(ofChildAll.body.events.some((e: any) => e.kind === 'token.refused' && e.decision === 'deny' && e.status === 400), 'the exchanges refused to it')
  const ofChild = { body: { events: ofChildAll.body.events.filter((e: any) => e.kind !== 'token.refused') } }
  t.same(ofChild.body.events.map((e: any) => e.kind), ['token.revoked', 'token.issued'])
  t.match(ofChild.body.events[0], { jti: jtiOf(child), root: jtiOf(root), principals: ['alice', 'ci-nightly'], actors: ['agent-1'], detail: { by: 'admin', reason: 'agent-1 misbehaved', revoked: 2 } })
  t.match(ofChild.body.events[1], { actors: ['agent-1'], detail: { parent: jtiOf(root), depth: 1, scope: 'db:read', aud: ['db'], host: 'build-7', pid: '4242', run: 'run-1' } })
  const ofGrandchild = await admin(t, 'GET', `/v1/audit?jti=${jtiOf(grandchild)}`)
  t.same(ofGrandchild.body.events.filter((e: any) => e.kind !== 'token.refused').map((e: any) => [e.kind, e.actors, e.detail.by ?? null]), [
    ['token.revoked', ['ci-nightly', 'agent-1'], `token:${jtiOf(child)}`],
    ['token.issued', ['ci-nightly', 'agent-1'], null]
  ], 'revoked by its parent; every actor of the revoked token, the current one first, in both records')

  const tree = await admin(t, 'GET', `/v1/audit?root=${jtiOf(root)}&limit=1000`)
  t.ok(tree.body.events.length >= 4 && tree.body.events.every((e: any) => e.root === jtiOf(root)), 'only the records of that tree')
  t.ok(tree.body.events.some((e: any) => e.kind === 'token.issued' && e.jti === jtiOf(root) && e.actors.length === 0), 'the root itself, without actors')

  const alice = await admin(t, 'GET', '/v1/audit?principal=alice&limit=1000')
  t.ok(alice.body.events.every((e: any) => e.principals.includes('alice')), 'only records naming alice')
  t.same(alice.body.events.filter((e: any) => e.kind === 'principal.status').map((e: any) => [e.principals, e.jti, e.root, e.detail]), [
    [['alice'], null, null, { status: 'active', reason: null, revoked: 0 }],
    [['alice'], null, null, { status: 'offboarded', reason: 'contract ended', revoked: 3 }]
  ], 'offboarded, then reinstated; refused calls left no record')

  t.same((await admin(t, 'GET', '/v1/audit?target=api')).body.events.map((e: any) => [e.kind, e.detail.action]), [['admin.change', 'target.replaced'], ['admin.change', 'target.created']], 'no gateway record for a target: only its making and changing')
  t.same((await admin(t, 'GET', `/v1/audit?principal=alice&jti=${jtiOf(child)}&root=${jtiOf(root)}`)).body.events.map((e: any) => e.seq), ofChildAll.body.events.map((e: any) => e.seq), 'filters combine')
  t.same((await admin(t, 'GET', '/v1/audit?limit=3')).body.events.map((e: any) => e.seq), seqs.slice(0, 3), 'limit keeps the newest')
  const middle = events[Math.floor(events.length / 2)].at
  const since = await admin(t, 'GET', `/v1/audit?limit=1000&since=${encodeURIComponent(middle)}`)
  t.same(since.body.events.map((e: any) => e.seq), events.filter((e) => e.at >= middle).map((e) => e.seq), 'since keeps records at or after it')
  t.same((await admin(t, 'GET', `/v1/audit?since=${encodeURIComponent(new Date(b.clock.now() + 60_000).toISOString())}`)).body.events, [])
})

t.test('the audit query refuses bad filters with 400 and callers without the admin token with 401', async (t) => {
  const bad: Array<[string, string]> = [
    ['since=yesterday', 'a since that is not a date-time'],
    ['since=2026-02-30T00:00:00Z', 'a since on a day its month does not have'],
    ['since=2025-02-29T00:00:00Z', 'a since on February 29th of a common year'],
    ['limit=0', 'a limit below 1'],
    ['limit=1001', 'a limit above 1000'],
    ['limit=ten', 'a limit that is not a number'],
    ['limit=2.5', 'a limit that is not an integer'],
    ['principal=alice&principal=bob', 'a filter given twice'],
    ['limit=5&limit=5', 'the same value twice']
  ]
  for (const [query, name] of bad) {
    const r = await admin(t, 'GET', `/v1/audit?${query}`)
    t.same([r.status, r.body.error], [400, 'invalid_request'], name)
  }
  const none = await call(t, 'GET', '/v1/audit')
  t.same([none.status, none.body.error], [401, 'unauthorized'])
  t.equal((await call(t, 'GET', '/v1/audit', { headers: bearer('ladm_wrong') })).status, 401, 'a wrong token')
  t.equal((await call(t, 'GET', '/v1/audit', { headers: bearer(root) })).status, 401, 'an access token is not the admin token')
})

t.test('verifying the audit chain finds it intact, and finds an edited record', async (t) => {
  const newest = (await admin(t, 'GET', '/v1/audit?limit=1')).body.events[0]
  const ok = await admin(t, 'POST', '/v1/audit/verify')
  t.same([ok.status, ok.body], [200, { ok: true, records: newest.seq, head: { seq: newest.seq, hash: newest.hash } }])
  const anchor = `${newest.seq as number}:${newest.hash as string}`

  // Tamper with one record behind the broker's back, then put it back.
  const db = b.testDb.db
  const seq = Math.ceil(newest.seq / 2)
  const { rows: [saved] } = await db.query<{ detail: unknown }>('SELECT detail FROM audit WHERE seq = $1', [seq])
  await db.query('UPDATE audit_records SET detail = $2::jsonb WHERE seq = $1', [seq, JSON.stringify({ note: 'nothing happened' })])
  const broken = await admin(t, 'POST', '/v1/audit/verify')
  t.equal(broken.status, 200)
  t.match(broken.body, { ok: false, records: seq - 1, problem: new RegExp(`^record ${seq} does not match its hash`) })
  await db.query('UPDATE audit_records SET detail = $2::jsonb WHERE seq = $1', [seq, JSON.stringify(saved.detail)])
  t.match((await admin(t, 'POST', '/v1/audit/verify')).body, { ok: true, records: newest.seq }, 'intact again')
  t.match((await admin(t, 'POST', '/v1/audit/verify', { anchor })).body, { ok: true, records: newest.seq }, 'and where the anchor says')
  const moved = await admin(t, 'POST', '/v1/audit/verify', { anchor: `${newest.seq as number}:${'0'.repeat(64)}` })
  t.match(moved.body, { ok: false, problem: `record ${newest.seq as number} no longer has the anchored hash` })
  for (const anchor of ['1:abc', 7, `0:${'0'.repeat(64)}`]) t.equal((await admin(t, 'POST', '/v1/audit/verify', { anchor })).status, 400, `anchor ${String(anchor)}`)

  const json = { 'content-type': 'application/json' }
  t.equal((await call(t, 'POST', '/v1/audit/verify', { headers: { ...adminAuth, ...json }, body: '{' })).status, 400, 'malformed JSON')
  const none = await call(t, 'POST', '/v1/audit/verify')
  t.same([none.status, none.body.error], [401, 'unauthorized'])
  t.equal((await call(t, 'POST', '/v1/audit/verify', { headers: bearer('ladm_wrong') })).status, 401, 'a wrong token')
})

t.test('metrics are served without authentication in the Prometheus text format', async (t) => {
  const r = await call(t, 'GET', '/metrics')
  t.equal(r.status, 200)
  t.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  t.type(r.body, 'string')
  t.match(r.body, /^# TYPE lineage_tokens_issued_total counter$/m)
  t.match(r.body, /^lineage_tokens_issued_total\{grant="client_credentials"\} [1-9]\d*$/m, 'root tokens counted')
  t.match(r.body, /^lineage_tokens_issued_total\{grant="token_exchange"\} [1-9]\d*$/m, 'exchanges counted')
  const before = Number(/^lineage_token_refusals_total\{error="invalid_client"\} (\d+)$/m.exec(r.body)?.[1] ?? 0)
  t.equal((await form(t, '/oauth/token', { grant_type: 'client_credentials', client_id: 'lc_nobody', client_secret: 'wrong' })).status, 401)
  const after = (await call(t, 'GET', '/metrics')).body as string
  t.match(after, new RegExp(`^lineage_token_refusals_total\\{error="invalid_client"\\} ${before + 1}$`, 'm'), 'a refused token request is counted by its error code')
})

t.test('the HR webhook and Okta event hooks answer as documented', async (t) => {
  const { createHmac } = await import('node:crypto')
  const webhookSecret = 'whsec_openapi-test-secret-000000'
  const oktaAuthorization = 'okta-openapi-test-authorization'
  const h = await startTestBroker({ inputs: { webhookSecret, oktaAuthorization } })
  t.teardown(h.close)
  await h.admin('POST', '/v1/principals', { id: 'henry', kind: 'human', email: 'henry@example.com' })
  const signed = (body: string): Record<string, string> => {
    const ts = Math.floor(h.clock.now() / 1000)
    return { 'content-type': 'application/json', 'lineage-signature': `t=${ts},v1=${createHmac('sha256', webhookSecret).update(`${ts}.${body}`).digest('hex')}` }
  }
  const event = JSON.stringify({ id: 'e1', type: 'principal.suspended', principal: 'henry@example.com' })
  t.match((await call(t, 'POST', '/hooks/hr', { headers: signed(event), body: event }, h.url)).body, { principal: 'henry', status: 'suspended', duplicate: false })
  t.equal((await call(t, 'POST', '/hooks/hr', { headers: signed(event), body: event }, h.url)).body.duplicate, true)
  t.equal((await call(t, 'POST', '/hooks/hr', { headers: signed('[]'), body: '[]' }, h.url)).status, 400)
  const ghost = JSON.stringify({ id: 'e2', type: 'principal.offboarded', principal: 'nobody' })
  t.equal((await call(t, 'POST', '/hooks/hr', { headers: signed(ghost), body: ghost }, h.url)).status, 404)
  t.equal((await call(t, 'POST', '/hooks/hr', { headers: { 'content-type': 'application/json' }, body: event }, h.url)).status, 401)
  const big = JSON.stringify({ pad: 'x'.repeat(70_000) })
  t.equal((await call(t, 'POST', '/hooks/hr', { headers: signed(big), body: big }, h.url)).status, 413)
  t.equal((await call(t, 'POST', '/hooks/hr', { headers: { 'content-type': 'application/json' }, body: event })).status, 401, 'not configured')
  const auth = { authorization: oktaAuthorization }
  t.same((await call(t, 'GET', '/hooks/okta', { headers: { ...auth, 'x-okta-verification-challenge': 'c-1' } }, h.url)).body, { verification: 'c-1' })
  t.equal((await call(t, 'GET', '/hooks/okta', { headers: auth }, h.url)).status, 400)
  t.equal((await call(t, 'GET', '/hooks/okta', { headers: { 'x-okta-verification-challenge': 'c-1' } }, h.url)).status, 401)
  const delivery = JSON.stringify({ data: { events: [{ uuid: 'u1', eventType: 'user.lifecycle.deactivate', target: [{ type: 'User', alternateId: 'henry@example.com' }] }] } })
  t.same((await call(t, 'POST', '/hooks/okta', { headers: { ...auth, 'content-type': 'application/json' }, body: delivery }, h.url)).body, { applied: 1, skipped: 0 })
  t.equal((await call(t, 'POST', '/hooks/okta', { headers: { ...auth, 'content-type': 'application/json' }, body: '{}' }, h.url)).status, 400)
  t.equal((await call(t, 'POST', '/hooks/okta', { headers: { 'content-type': 'application/json' }, body: delivery }, h.url)).status, 401)
  const huge = JSON.stringify({ data: { events: [], pad: 'x'.repeat(1_100_000) } })
  t.equal((await call(t, 'POST', '/hooks/okta', { headers: { ...auth, 'content-type': 'application/json' }, body: huge }, h.url)).status, 413)
})

t.test('SCIM Users are provisioned, listed, read, replaced, patched and deleted as documented', async (t) => {
  const scimToken = 'scim_openapi-test-token-00000000'
  const s = await startTestBroker({ inputs: { scimToken } })
  t.teardown(s.close)
  const sc = { ...bearer(scimToken), 'content-type': 'application/scim+json' }
  const scim = async (method: string, path: string, body?: unknown, headers: Record<string, string> = sc): Promise<Seen & { body: any }> =>
    await call(t, method, `/scim/v2${path}`, { headers, body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body) }, s.url)
  const patchOp = (...ops: unknown[]): unknown => ({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: ops })

  t.match((await scim('GET', '/ServiceProviderConfig')).body, { patch: { supported: true }, filter: { maxResults: 200 } })
  const created = await scim('POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'Sam@Example.com', externalId: 'idp-sam', active: true, name: { givenName: 'Sam' } })
  t.equal(created.status, 201)
  t.equal(created.headers.get('location'), created.body.meta.location)
  const user = `/Users/${encodeURIComponent(created.body.id as string)}`
  t.match((await scim('POST', '/Users', { userName: 'sam@example.com' })).body, { status: '409', scimType: 'uniqueness' })
  t.match((await scim('POST', '/Users', { active: true })).body, { status: '400', scimType: 'invalidValue' })
  t.equal((await scim('POST', '/Users', { userName: 'x@example.com' }, { ...sc, 'content-type': 'application/json; charset=latin1' })).status, 415)

  t.match((await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "sam@example.com"')}`)).body, { totalResults: 1, Resources: [{ id: created.body.id }] })
  t.match((await scim('GET', '/Users?startIndex=1&count=0')).body, { totalResults: 1, itemsPerPage: 0, Resources: [] })
  t.match((await scim('GET', `/Users?filter=${encodeURIComponent('displayName co "Sam"')}`)).body, { status: '400', scimType: 'invalidFilter' })
  t.same((await scim('GET', user)).body, created.body)
  t.match((await scim('GET', '/Users/nobody')).body, { status: '404' })

  t.equal((await scim('PUT', user, { userName: 'Sam@Example.com', active: false })).body.active, false)
  t.match((await scim('PUT', user, '"active"')).body, { status: '400', scimType: 'invalidSyntax' })
  t.equal((await scim('PUT', '/Users/nobody', { userName: 'nobody@example.com' })).status, 404)
  await scim('POST', '/Users', { userName: 'pat@example.com' })
  t.match((await scim('PUT', user, { userName: 'pat@example.com' })).body, { status: '409', scimType: 'uniqueness' })

  t.equal((await scim('PATCH', user, patchOp({ op: 'Replace', path: 'active', value: 'True' }))).body.active, true)
  t.match((await scim('PATCH', user, patchOp({ op: 'replace', path: 'nickName2', value: 'x' }))).body, { status: '400', scimType: 'invalidPath' })
  t.match((await scim('PATCH', user, patchOp({ op: 'replace', path: 'id', value: 'x' }))).body, { status: '400', scimType: 'mutability' })
  t.match((await scim('PATCH', user, patchOp({ op: 'remove' }))).body, { status: '400', scimType: 'noTarget' })
  t.match((await scim('PATCH', user, '{"schemas":[')).body, { status: '400', scimType: 'invalidSyntax' })
  t.match((await scim('PATCH', user, patchOp({ op: 'replace', path: 'userName', value: 'pat@example.com' }))).body, { status: '409', scimType: 'uniqueness' })
  t.match((await scim('PATCH', user, patchOp({ op: 'add', path: 'displayName', value: 'x'.repeat(70_000) }))).body, { status: '413' })
  t.equal((await scim('PATCH', '/Users/nobody', patchOp({ op: 'replace', path: 'active', value: false }))).status, 404)

  t.equal((await scim('DELETE', user)).status, 204)
  t.equal((await scim('DELETE', user)).status, 404)
  t.equal((await scim('GET', user)).status, 404, 'a deleted User is gone')
})

t.test('every SCIM operation answers 401 without the SCIM token, and every SCIM request is 401 while it is unset', async (t) => {
  const scimToken = 'scim_openapi-test-token-11111111'
  const s = await startTestBroker({ inputs: { scimToken } })
  t.teardown(s.close)
  const wrong = { ...bearer('scim_wrong'), 'content-type': 'application/scim+json' }
  const ops: Array<[string, string, string?]> = [
    ['GET', '/ServiceProviderConfig'], ['GET', '/Users'], ['POST', '/Users', '{"userName":"eve@example.com"}'],
    ['GET', '/Users/eve'], ['PUT', '/Users/eve', '{"userName":"eve@example.com"}'],
    ['PATCH', '/Users/eve', '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"externalId"}]}'], ['DELETE', '/Users/eve']
  ]
  for (const [method, path, body] of ops) {
    const r = await call(t, method, `/scim/v2${path}`, { headers: wrong, body }, s.url)
    t.match(r.body, { status: '401' }, `${method} ${path} with a wrong token`)
  }
  const none = await call(t, 'GET', '/scim/v2/Users', {}, s.url)
  t.equal(none.status, 401, 'no token')
  const unset = await call(t, 'GET', '/scim/v2/Users', { headers: bearer(scimToken) })
  t.equal(unset.status, 401, 'LINEAGE_SCIM_TOKEN unset')
})

t.test('Shared Signals transmitters are configured, and pushed SETs are accepted or refused as documented', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: 'oa-1', alg: 'ES256' }
  const issuer = 'https://idp.openapi.example.com'
  const audience = 'https://lineage.example.com/ssf'
  const created = await admin(t, 'POST', '/v1/transmitters', { issuer, audience, jwks: { keys: [jwk] } })
  t.equal(created.status, 201)
  t.match(created.body, { id: /^tx_/, issuer, audience, jwks_uri: null, authorization: false })
  const path = `/v1/transmitters/${created.body.id as string}`
  t.equal((await admin(t, 'GET', path)).status, 200)
  t.equal((await admin(t, 'POST', '/v1/transmitters', { issuer, audience, jwks: { keys: [jwk] } })).status, 409, 'an existing issuer')
  t.equal((await admin(t, 'POST', '/v1/transmitters', { issuer: 'https://other.example.com', audience })).status, 400, 'no keys')
  t.equal((await admin(t, 'GET', '/v1/transmitters/tx_nope')).status, 404)
  t.equal((await call(t, 'GET', path)).status, 401, 'no admin token')
  t.equal((await call(t, 'DELETE', path)).status, 401, 'no admin token')
  t.equal((await call(t, 'POST', '/v1/transmitters', { headers: { 'content-type': 'application/json' }, body: '{}' })).status, 401, 'no admin token')

  const set = async (iss: string, jti: string): Promise<string> =>
    await new SignJWT({ iss, aud: audience, iat: Math.floor(b.clock.now() / 1000), jti, events: { 'https://schemas.openid.net/secevent/ssf/event-type/verification': { state: 'openapi' } } })
      .setProtectedHeader({ alg: 'ES256', kid: 'oa-1', typ: 'secevent+jwt' }).sign(privateKey)
  const push = async (token: string): Promise<Seen & { body: any }> =>
    await call(t, 'POST', '/ssf/events', { headers: { 'content-type': 'application/secevent+jwt' }, body: token })
  const accepted = await push(await set(issuer, 'oa-set-1'))
  t.equal(accepted.status, 202, 'a verification event')
  t.equal(accepted.body, undefined, 'with an empty body')
  t.match((await push(await set('https://unknown.example.com', 'oa-set-2'))).body, { err: 'invalid_issuer' }, 'an unknown issuer')
  t.match((await push('x'.repeat(70_000))).body, { err: 'invalid_request' }, 'a body above 64 KiB')

  // A key server that fails is no verdict on the SET: 503, so that the transmitter pushes again.
  const down = createServer((_req, res) => { res.statusCode = 503; res.end() })
  await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { down.close() })
  const flaky = 'https://flaky.openapi.example.com'
  t.equal((await admin(t, 'POST', '/v1/transmitters', { issuer: flaky, audience, jwks_uri: `http://127.0.0.1:${(down.address() as AddressInfo).port}/jwks` })).status, 201)
  const unfetchable = await push(await set(flaky, 'oa-set-4'))
  t.equal(unfetchable.status, 503, 'keys that cannot be fetched')
  t.match(unfetchable.body, { err: 'temporarily_unavailable' })

  t.equal((await admin(t, 'DELETE', path)).status, 204)
  t.equal((await admin(t, 'DELETE', path)).status, 404)
  t.match((await push(await set(issuer, 'oa-set-3'))).body, { err: 'invalid_issuer' }, 'a deleted transmitter is unknown')
})

t.test('every operation in openapi.yaml was exercised by this file', async (t) => {
  t.same(spec.operations().filter((op) => !spec.exercised.has(op)), [], 'operations never called')
})
