import t from 'tap'
import { accessTokenType, claimsOf, exchangeToken, rootToken, seedContractor, startTestBroker, tokenExchange } from '../helpers/broker.js'
import { bodyOf, getJson } from '../helpers/http.js'

const b = await startTestBroker({ maxDepth: 4 })
t.teardown(b.close)
const client = await seedContractor(b)

t.test('client_credentials issues a root token with the usable scopes and a lineage rooted in the sponsor', async (t) => {
  const r = await b.form('/oauth/token', { grant_type: 'client_credentials' }, { authorization: 'Basic ' + Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64') })
  t.equal(r.status, 200)
  t.equal(r.headers.get('cache-control'), 'no-store')
  t.match(r.body, { token_type: 'Bearer', issued_token_type: accessTokenType, expires_in: 3600, scope: 'api:* db:read db:write' })
  const c = claimsOf(r.body.access_token)
  t.equal(c.sub, 'ci-nightly')
  t.same(c.aud, ['api', 'db'])
  t.same(c.lineage.principals, ['alice', 'ci-nightly'])
  t.same(c.lineage.chain, [])
  t.equal(c.lineage.depth, 0)
  t.equal(c.client_id, client.clientId)
  t.equal(c.iss, b.url)
  const header = JSON.parse(Buffer.from(r.body.access_token.split('.')[0], 'base64url').toString())
  t.match(header, { alg: 'EdDSA', typ: 'at+jwt', kid: String })
})

t.test('a scope outside the usable scopes is invalid_scope', async (t) => {
  const r = await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, scope: 'ssh:exec' })
  t.equal(r.status, 400)
  t.equal(r.body.error, 'invalid_scope')
})

t.test('a wrong client secret is 401 invalid_client with WWW-Authenticate', async (t) => {
  const r = await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: 'lsec_wrong' })
  t.equal(r.status, 401)
  t.equal(r.body.error, 'invalid_client')
  t.ok(r.headers.get('www-authenticate'))
  const unknown = await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: 'lc_nobody', client_secret: 'x' })
  t.equal(unknown.status, 401)
  t.equal(unknown.body.error_description, r.body.error_description, 'unknown and wrong look the same')
  const nul = await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: 'lc_a\0b', client_secret: 'x' })
  t.equal(nul.status, 401, 'an id no client can have (a NUL) is unknown too')
  t.equal(nul.body.error_description, r.body.error_description)
  const both = await fetch(`${b.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}` }, body: 'grant_type=client_credentials&client_id=lc_someone_else' })
  t.equal(both.status, 400, 'a body client_id that differs from the Basic one')
  const basic = await fetch(`${b.url}/oauth/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('lc_a%00b:x').toString('base64')}` }, body: 'token=x' })
  t.equal(basic.status, 401)
})

t.test('a three-deep exchange nests act with the newest actor outermost and records every hop', async (t) => {
  const root = await rootToken(b, client)
  const one = await exchangeToken(b, root, { actor: 'build', actor_host: 'runner-7', actor_pid: '4242', actor_run: 'GITHUB_RUN_ID=99' })
  t.equal(one.status, 200)
  t.equal(one.headers.get('cache-control'), 'no-store')
  const two = await exchangeToken(b, one.body.access_token, { actor: 'test-step', scope: 'db:read api:read' })
  t.equal(two.status, 200)
  t.equal(two.body.scope, 'db:read api:read')
  const three = await exchangeToken(b, two.body.access_token, { actor: 'psql-helper', audience: 'db' })
  t.equal(three.status, 200)
  const c = claimsOf(three.body.access_token)
  const r = claimsOf(root)
  t.equal(c.sub, 'ci-nightly', 'sub stays the parent\'s')
  t.same(c.act, { sub: 'psql-helper', act: { sub: 'test-step', act: { sub: 'build' } } })
  t.same(c.aud, ['db'])
  t.equal(c.scope, 'db:read')
  t.equal(c.lineage.depth, 3)
  t.same(c.lineage.chain, [r.jti, claimsOf(one.body.access_token).jti, claimsOf(two.body.access_token).jti])
  t.equal(c.lineage.rooted_at, r.lineage.rooted_at)
  t.ok(c.exp <= r.exp)

  const node = await b.admin('GET', `/v1/tokens/${claimsOf(one.body.access_token).jti}`)
  t.match(node.body, { parent: r.jti, root: r.jti, depth: 1, actor: 'build', status: 'active', context: { host: 'runner-7', pid: '4242', run: 'GITHUB_RUN_ID=99' } })
  const tree = await b.admin('GET', `/v1/tokens/${r.jti}/tree`)
  t.equal(tree.status, 200)
  t.equal(tree.body.children[0].children[0].children[0].jti, c.jti)
  t.equal(tree.body.children[0].children[0].children[0].actor, 'psql-helper')
})

t.test('an exchange needs no client, but client credentials that are sent must be right', async (t) => {
  const root = await rootToken(b, client)
  const wrong = await exchangeToken(b, root, { client_id: client.clientId, client_secret: 'lsec_wrong' })
  t.equal(wrong.status, 401)
  t.equal(wrong.body.error, 'invalid_client')
  const right = await exchangeToken(b, root, { client_id: client.clientId, client_secret: client.clientSecret })
  t.equal(right.status, 200)
})

t.test('a child never holds more than its parent', async (t) => {
  const root = await rootToken(b, client, { scope: 'db:read' })
  const wider = await exchangeToken(b, root, { scope: 'db:write' })
  t.equal(wider.status, 400)
  t.equal(wider.body.error, 'invalid_scope')
  const aud = await exchangeToken(b, root, { audience: 'api' })
  t.equal(aud.status, 400)
  t.equal(aud.body.error, 'invalid_target')
  const resource = await exchangeToken(b, root, { resource: 'https://gateway.example/api/v1/things' })
  t.equal(resource.body.error, 'invalid_target')
  const fragment = await exchangeToken(b, root, { resource: 'https://gateway.example/db#part' })
  t.equal(fragment.body.error, 'invalid_target', 'RFC 8707: a resource has no fragment')
  const ok = await exchangeToken(b, root, { resource: 'urn:lineage:target:db' })
  t.equal(ok.status, 200)
  const wildcard = await exchangeToken(b, ok.body.access_token, { scope: 'db:*' })
  t.equal(wildcard.body.error, 'invalid_scope', 'db:read does not cover db:*')
})

t.test('a refused exchange whose subject token is genuine is recorded with its lineage; one with a made-up token is not', async (t) => {
  const refusals = async (jti: string): Promise<any[]> => {
    await b.broker.ctx.audit.flush()
    return (await b.admin('GET', `/v1/audit?jti=${jti}`)).body.events.filter((e: { kind: string }) => e.kind === 'token.refused')
  }
  const root = await rootToken(b, client, { scope: 'db:read' })
  const child = (await exchangeToken(b, root, { actor: 'build', scope: 'db:read' })).body.access_token
  const c = claimsOf(child)
  t.equal((await exchangeToken(b, child, { actor: 'helper', scope: 'db:write' })).body.error, 'invalid_scope')
  t.match(await refusals(c.jti), [{
    kind: 'token.refused', decision: 'deny', status: 400, jti: c.jti, root: claimsOf(root).jti, principals: ['alice', 'ci-nightly'], actors: ['build'],
    detail: { error: 'invalid_scope', reason: /not held by the subject token: db:write/, scope: 'db:write', actor: 'helper' }
  }])
  // Cut off: the contractor's job, still trying after its chain was revoked.
  t.equal((await b.admin('POST', `/v1/tokens/${claimsOf(root).jti}/revoke`)).status, 200)
  const late = await exchangeToken(b, child, { actor: 'helper' })
  t.equal(late.body.error, 'invalid_request')
  t.match((await refusals(c.jti))[0], { kind: 'token.refused', status: 400, actors: ['build'], detail: { error: 'invalid_request', reason: /chain cut off/, scope: null, actor: 'helper' } })
  // A token that is no token of this broker's: refused, and not recorded.
  const [h, p] = child.split('.')
  const forged = `${h}.${p}.${Buffer.alloc(64).toString('base64url')}`
  t.equal((await exchangeToken(b, forged, { actor: 'helper' })).body.error, 'invalid_request')
  t.equal((await refusals(c.jti)).length, 2, 'the forged token, naming the same jti, added nothing')
})

t.test('a ttl shortens the child but never extends it past the parent', async (t) => {
  const root = await rootToken(b, client, { ttl: '600' })
  const short = await exchangeToken(b, root, { ttl: '60' })
  t.equal(short.body.expires_in, 60)
  const long = await exchangeToken(b, short.body.access_token, { ttl: '86400' })
  t.equal(claimsOf(long.body.access_token).exp, claimsOf(short.body.access_token).exp)
  const bad = await exchangeToken(b, root, { ttl: '-5' })
  t.equal(bad.body.error, 'invalid_request')
})

t.test('an exchange deeper than LINEAGE_MAX_DEPTH is invalid_request', async (t) => {
  let token = await rootToken(b, client)
  for (let d = 1; d <= 4; d++) {
    const r = await exchangeToken(b, token, { actor: `level-${d}` })
    t.equal(r.status, 200, `depth ${d}`)
    token = r.body.access_token
  }
  const r = await exchangeToken(b, token)
  t.equal(r.status, 400)
  t.equal(r.body.error, 'invalid_request')
  t.match(r.body.error_description, /depth 5 exceeds the maximum of 4/)
})

t.test('an actor token names the actor and must itself be live', async (t) => {
  const root = await rootToken(b, client)
  const actor = await rootToken(b, client, { scope: 'api:read' })
  const r = await exchangeToken(b, root, { actor_token: actor, actor_token_type: accessTokenType })
  t.equal(r.status, 200)
  t.same(claimsOf(r.body.access_token).act, { sub: 'ci-nightly' })
  const noType = await exchangeToken(b, root, { actor_token: actor })
  t.equal(noType.body.error, 'invalid_request')
  const typeOnly = await exchangeToken(b, root, { actor_token_type: accessTokenType })
  t.equal(typeOnly.body.error, 'invalid_request')
  const garbage = await exchangeToken(b, root, { actor_token: 'x.y.z', actor_token_type: accessTokenType })
  t.equal(garbage.body.error, 'invalid_request')
  t.match(garbage.body.error_description, /^actor_token:/)

  // The broker judges its own tokens by its own clock, as it does the subject token: the
  // verifiers' clock tolerance is no extra life for an expired actor token.
  const shortLived = await rootToken(b, client, { ttl: '60' })
  b.clock.advance(61_000)
  const fresh = await rootToken(b, client)
  const late = await exchangeToken(b, fresh, { actor_token: shortLived, actor_token_type: accessTokenType })
  t.same([late.status, late.body.error], [400, 'invalid_request'], 'an actor token a second past its exp')
  t.match(late.body.error_description, /^actor_token: token expired/)
})

/** A principal of kind `kind` (a service sponsored by `sponsor`) with a client. */
async function clientOf (id: string, kind: 'human' | 'service', sponsor?: string): Promise<{ clientId: string, clientSecret: string }> {
  const p = await b.admin('POST', '/v1/principals', { id, kind, sponsor, grants: ['api:*', 'db:read'] })
  if (p.status !== 201) throw new Error(`seed ${id}: ${JSON.stringify(p.body)}`)
  const c = (await b.admin('POST', `/v1/principals/${id}/clients`)).body
  return { clientId: c.client_id, clientSecret: c.client_secret }
}

t.test('an actor token\'s principals join the child\'s lineage, and offboarding them cuts off what it acted in', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'bob', kind: 'human', grants: ['api:*', 'db:read'] })
  const bot = await clientOf('deploy-bot', 'service', 'bob')
  const root = await rootToken(b, client)
  const actor = await rootToken(b, bot, { ttl: '600' })
  const child = await exchangeToken(b, root, { actor_token: actor, actor_token_type: accessTokenType })
  t.equal(child.status, 200)
  const c = claimsOf(child.body.access_token)
  t.same(c.lineage.principals, ['bob', 'deploy-bot', 'alice', 'ci-nightly'], 'the actor\'s sponsor and subject first, each service after its sponsor')
  t.same(c.act, { sub: 'deploy-bot' })
  t.equal(c.exp, claimsOf(actor).exp, 'acting lasts no longer than the actor token')
  const below = await exchangeToken(b, child.body.access_token, { actor: 'helper' })
  t.same(claimsOf(below.body.access_token).lineage.principals, c.lineage.principals, 'descendants inherit them')
  const again = await exchangeToken(b, child.body.access_token, { actor_token: actor, actor_token_type: accessTokenType })
  t.same(claimsOf(again.body.access_token).lineage.principals, c.lineage.principals, 'the same actor twice adds nothing')
  const self = await exchangeToken(b, root, { actor_token: await rootToken(b, client), actor_token_type: accessTokenType })
  t.same(claimsOf(self.body.access_token).lineage.principals, ['alice', 'ci-nightly'], 'a chain acting for itself adds nothing')
  t.match((await b.admin('GET', `/v1/tokens/${c.jti}`)).body, { status: 'active' })

  const off = await b.admin('POST', '/v1/principals/bob/offboard')
  t.equal(off.status, 200)
  t.equal(off.body.revoked, 4, 'the actor\'s own token and the three it acted in')
  for (const token of [child.body.access_token, below.body.access_token]) {
    const r = await exchangeToken(b, token)
    t.same([r.status, r.body.error], [400, 'invalid_request'])
    t.match(r.body.error_description, /^subject_token: chain cut off: principal bob is offboarded/)
    t.same((await b.form('/oauth/introspect', { token }, { authorization: 'Bearer ladm_test-admin-token-0123456789' })).body, { active: false })
  }
  t.match((await b.admin('GET', `/v1/tokens/${c.jti}`)).body, { status: 'revoked', status_reason: /bob/ })
  t.equal((await exchangeToken(b, root)).status, 200, 'the subject\'s chain without the actor goes on')
})

t.test('revoking an actor token, or a token it descends from, cuts off the tokens it acted in', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'dave', kind: 'human', grants: ['api:*', 'db:read'] })
  const helper = await clientOf('helper-bot', 'service', 'dave')
  const actorRoot = await rootToken(b, helper)
  const actor = (await exchangeToken(b, actorRoot, { actor: 'relay' })).body.access_token
  const other = await rootToken(b, await clientOf('other-bot', 'service', 'dave'))
  const root = await rootToken(b, client)
  const child = (await exchangeToken(b, root, { actor_token: actor, actor_token_type: accessTokenType })).body.access_token
  const c = claimsOf(child)
  t.same(c.lineage.actor_tokens, [claimsOf(actorRoot).jti, claimsOf(actor).jti], 'the actor token and its ancestors')
  t.same(c.lineage.principals, ['dave', 'helper-bot', 'alice', 'ci-nightly'])
  const below = (await exchangeToken(b, child, { actor: 'step' })).body.access_token
  t.same(claimsOf(below).lineage.actor_tokens, c.lineage.actor_tokens, 'descendants inherit them')
  const twice = (await exchangeToken(b, below, { actor_token: other, actor_token_type: accessTokenType })).body.access_token
  t.same(claimsOf(twice).lineage.actor_tokens, [...c.lineage.actor_tokens, claimsOf(other).jti], 'a second actor token adds its own')
  t.same(claimsOf(twice).lineage.principals, ['dave', 'helper-bot', 'dave', 'other-bot', 'alice', 'ci-nightly'], 'each service right after its sponsor')
  t.equal((await exchangeToken(b, twice)).status, 200)
  const within = (await exchangeToken(b, root, { actor_token: child, actor_token_type: accessTokenType })).body.access_token
  t.same(claimsOf(within).lineage.actor_tokens, [c.jti, ...c.lineage.actor_tokens], 'an actor token from the same chain adds itself and its actor tokens, not the ancestors the child has anyway')

  const r = await b.admin('POST', `/v1/tokens/${claimsOf(actorRoot).jti as string}/revoke`, {})
  t.equal(r.status, 200)
  t.equal(r.body.revoked, 7, 'the actor root, the actor token, and the five tokens they acted in (one below twice, one the child acted in)')
  for (const token of [child, below, twice, within]) {
    const x = await exchangeToken(b, token)
    t.same([x.status, x.body.error], [400, 'invalid_request'])
    t.match(x.body.error_description, new RegExp(`^subject_token: chain cut off: actor token ${claimsOf(actorRoot).jti as string} \\(or one it descends from\\) was revoked`))
  }
  t.match((await b.admin('GET', `/v1/tokens/${c.jti as string}`)).body, { status: 'revoked' })
  t.equal((await exchangeToken(b, root)).status, 200, 'the subject\'s chain without the actor goes on')
  t.equal((await exchangeToken(b, other)).status, 200, 'so does the other actor')
})

t.test('a token an actor token acted in counts once as cut off: by the first revocation that ends it, never by a later one or an offboarding', async (t) => {
  const erin = await clientOf('erin', 'human')
  const frank = await clientOf('frank', 'human')
  const first = await rootToken(b, erin)
  const kept = await rootToken(b, erin)
  const second = await rootToken(b, frank)
  const root = await rootToken(b, client)
  const once = (await exchangeToken(b, root, { actor_token: first, actor_token_type: accessTokenType })).body.access_token
  const both = (await exchangeToken(b, once, { actor_token: second, actor_token_type: accessTokenType })).body.access_token
  t.same(claimsOf(both).lineage.principals, ['erin', 'frank', 'alice', 'ci-nightly'])
  const byFirst = await b.admin('POST', `/v1/tokens/${claimsOf(first).jti as string}/revoke`, {})
  t.equal(byFirst.body.revoked, 3, 'the actor token and the two it acted in')
  const bySecond = await b.admin('POST', `/v1/tokens/${claimsOf(second).jti as string}/revoke`, {})
  t.equal(bySecond.body.revoked, 1, 'the second actor token alone: what it acted in was cut off already')
  const mid = (await exchangeToken(b, root, { actor_token: kept, actor_token_type: accessTokenType })).body.access_token
  const underMid = (await exchangeToken(b, mid, { actor: 'step' })).body.access_token
  const byKept = await b.admin('POST', `/v1/tokens/${claimsOf(kept).jti as string}/revoke`, {})
  t.equal(byKept.body.revoked, 3)
  const fresh = await rootToken(b, erin)
  const other = await rootToken(b, client)
  const gone = (await exchangeToken(b, other, { actor_token: fresh, actor_token_type: accessTokenType })).body.access_token
  t.equal((await b.admin('POST', `/v1/tokens/${claimsOf(other).jti as string}/revoke`, {})).body.revoked, 2)
  const off = await b.admin('POST', '/v1/principals/erin/offboard')
  t.equal(off.body.revoked, 1, 'only her token still live: those her revoked tokens acted in were cut off already')
  const subtree = await b.admin('POST', `/v1/tokens/${claimsOf(root).jti as string}/revoke`, {})
  t.equal(subtree.body.revoked, 1, 'the subject root alone: its children were cut off through their actor tokens')
  for (const token of [once, both, mid, underMid, fresh, gone]) t.equal((await exchangeToken(b, token)).status, 400)
})

t.test('an actor cut off after the subject\'s chain began cannot act in it, even once reinstated', async (t) => {
  const carol = await clientOf('carol', 'human')
  const root = await rootToken(b, client)
  b.clock.advance(1000)
  t.equal((await b.admin('POST', '/v1/principals/carol/offboard')).status, 200)
  b.clock.advance(1000)
  t.equal((await b.admin('POST', '/v1/principals/carol/reinstate')).status, 200)
  const actor = await rootToken(b, carol)
  const r = await exchangeToken(b, root, { actor_token: actor, actor_token_type: accessTokenType })
  t.same([r.status, r.body.error], [400, 'invalid_request'], 'the child would be dead on arrival')
  t.match(r.body.error_description, /^actor_token: chain cut off: principal carol was cut off at/)
  const fresh = await exchangeToken(b, await rootToken(b, client), { actor_token: actor, actor_token_type: accessTokenType })
  t.equal(fresh.status, 200, 'a chain rooted after the cut-off may have her act')
  t.same(claimsOf(fresh.body.access_token).lineage.principals, ['carol', 'alice', 'ci-nightly'])
})

t.test('requested_token_type jwt is honoured; other types are refused', async (t) => {
  const root = await rootToken(b, client)
  const jwt = await exchangeToken(b, root, { requested_token_type: 'urn:ietf:params:oauth:token-type:jwt' })
  t.equal(jwt.body.issued_token_type, 'urn:ietf:params:oauth:token-type:jwt')
  const saml = await exchangeToken(b, root, { requested_token_type: 'urn:ietf:params:oauth:token-type:saml2' })
  t.equal(saml.body.error, 'invalid_request')
  const subjectType = await exchangeToken(b, root, { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' })
  t.equal(subjectType.body.error, 'invalid_request')
})

t.test('a parameter sent without a value counts as not sent (RFC 6749 §3.1)', async (t) => {
  const root = await rootToken(b, client, { scope: '', ttl: '', actor_host: '' })
  t.equal(claimsOf(root).scope, 'api:* db:read db:write', 'an empty scope is the usable scopes, as none would be')
  const r = await exchangeToken(b, root, { scope: '', audience: ['', 'db'], resource: '', ttl: '', actor: '', requested_token_type: '', actor_token: '', actor_token_type: '' })
  t.equal(r.status, 200, JSON.stringify(r.body))
  t.same(claimsOf(r.body.access_token).aud, ['db'])
  t.equal(claimsOf(r.body.access_token).exp, claimsOf(root).exp)
  t.same(claimsOf(r.body.access_token).act, { sub: 'unnamed' })
  const none = await exchangeToken(b, '')
  t.same([none.status, none.body.error, none.body.error_description], [400, 'invalid_request', 'missing parameter subject_token'], 'an empty required one is missing')
})

t.test('malformed forms get the contract error and never a 500', async (t) => {
  const cases: Array<[Record<string, string | string[]>, number, string]> = [
    [{}, 400, 'invalid_request'],
    [{ grant_type: 'password' }, 400, 'unsupported_grant_type'],
    [{ grant_type: ['client_credentials', 'client_credentials'] }, 400, 'invalid_request'],
    [{ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' }, 400, 'invalid_request'],
    [{ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'abc' }, 400, 'invalid_request'],
    [{ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'abc', subject_token_type: accessTokenType }, 400, 'invalid_request'],
    [{ grant_type: 'client_credentials' }, 401, 'invalid_client'],
    [{ grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, scope: 'bad"scope' }, 400, 'invalid_scope'],
    [{ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'abc', subject_token_type: accessTokenType, scope: 'db:réad' }, 400, 'invalid_scope'],
    [{ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'abc', subject_token_type: accessTokenType, scope: 'db:read\u200b' }, 400, 'invalid_scope'],
    [{ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'abc', subject_token_type: accessTokenType, scope: 'db:read  db:write' }, 400, 'invalid_scope']
  ]
  for (const [fields, status, error] of cases) {
    const r = await b.form('/oauth/token', fields)
    t.equal(r.status, status, JSON.stringify(fields))
    t.equal(r.body.error, error, JSON.stringify(fields))
  }
  const json = await fetch(`${b.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"client_credentials"}' })
  t.equal(json.status, 400)
  t.equal((await bodyOf(json)).error, 'invalid_request')
  const huge = await fetch(`${b.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=' + 'x'.repeat(300_000) })
  t.equal(huge.status, 413)
  t.equal((await bodyOf(huge)).error, 'invalid_request')
  const badEncoding = await fetch(`${b.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=koi8-r' }, body: 'grant_type=x' })
  t.ok(badEncoding.status >= 400 && badEncoding.status < 500)
})

t.test('an issuer configured with a trailing slash is every token\'s iss exactly, and endpoints are joined without a double slash', async (t) => {
  const slashed = await startTestBroker({ issuer: (url) => `${url}/` })
  t.teardown(slashed.close)
  const m = await getJson(`${slashed.url}/.well-known/oauth-authorization-server`)
  t.match(m, { issuer: `${slashed.url}/`, token_endpoint: `${slashed.url}/oauth/token`, jwks_uri: `${slashed.url}/.well-known/jwks.json`, revocation_endpoint: `${slashed.url}/oauth/revoke` })
  const c = await seedContractor(slashed)
  const root = await rootToken(slashed, c)
  t.equal(claimsOf(root).iss, `${slashed.url}/`)
  const child = await slashed.form('/oauth/token', { grant_type: tokenExchange, subject_token: root, subject_token_type: accessTokenType, scope: 'db:read' })
  t.equal(child.status, 200, 'the broker accepts the tokens it issued')
  t.equal(claimsOf(child.body.access_token).iss, `${slashed.url}/`)
})

t.test('metadata and JWKS describe the issuer and its keys', async (t) => {
  const m = await getJson(`${b.url}/.well-known/oauth-authorization-server`)
  t.match(m, { issuer: b.url, token_endpoint: `${b.url}/oauth/token`, jwks_uri: `${b.url}/.well-known/jwks.json` })
  t.ok(m.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:token-exchange'))
  t.notOk('scopes_supported' in m, 'no empty scope list that would read as "no scope is supported"')
  const jwks = await getJson(`${b.url}/.well-known/jwks.json`)
  t.equal(jwks.keys.length, 1)
  t.match(jwks.keys[0], { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: String })
  t.notOk('d' in jwks.keys[0], 'no private part')
})
