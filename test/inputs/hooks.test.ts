import { createHmac } from 'node:crypto'
import t from 'tap'
import { adminToken, rootToken, seedContractor, startTestBroker, type TestBroker } from '../helpers/broker.js'

const webhookSecret = 'whsec_test-secret-0123456789abcdef'
const oktaAuthorization = 'okta-hook-shared-secret-000111'
const b = await startTestBroker({ inputs: { webhookSecret, oktaAuthorization } })
const bare = await startTestBroker()
t.teardown(async () => { await b.close(); await bare.close() })
const client = await seedContractor(b)
await b.admin('POST', '/v1/principals', { id: 'bob', kind: 'human', email: 'Bob@Example.com', grants: ['api:read'] })

const sign = (body: string, t0 = Math.floor(b.clock.now() / 1000), secret = webhookSecret): string =>
  `t=${t0},v1=${createHmac('sha256', secret).update(`${t0}.${body}`).digest('hex')}`
async function hr (body: string, signature?: string, target: TestBroker = b): Promise<{ status: number, body: any, challenge: string | null }> {
  const r = await fetch(`${target.url}/hooks/hr`, { method: 'POST', headers: { 'content-type': 'application/json', ...(signature === undefined ? {} : { 'lineage-signature': signature }) }, body })
  return { status: r.status, body: await r.json(), challenge: r.headers.get('www-authenticate') }
}
const active = async (token: string): Promise<boolean> => (await b.form('/oauth/introspect', { token }, { authorization: `Bearer ${adminToken}` })).body.active
const status = async (id: string): Promise<string> => (await b.admin('GET', `/v1/principals/${id}`)).body.status

t.test('a signed HR offboarding cuts off the cascade; a replay acts once', async (t) => {
  const root = await rootToken(b, client)
  t.ok(await active(root))
  const body = JSON.stringify({ id: 'evt-1', type: 'principal.offboarded', principal: 'alice@example.com' })
  const r = await hr(body, sign(body))
  t.equal(r.status, 200)
  t.match(r.body, { id: 'evt-1', principal: 'alice', status: 'offboarded', duplicate: false })
  t.notOk(await active(root))
  const back = JSON.stringify({ id: 'evt-2', type: 'principal.reinstated', principal: 'alice' })
  t.equal((await hr(back, sign(back))).status, 200)
  t.equal(await status('alice'), 'active')
  const replay = await hr(body, sign(body))
  t.equal(replay.status, 200)
  t.equal(replay.body.duplicate, true)
  t.equal(await status('alice'), 'active', 'the replayed offboarding changed nothing')
  const { rows } = await b.testDb.db.query<{ n: number }>("SELECT count(*) AS n FROM inbound_events WHERE source = 'hr'")
  t.equal(rows[0].n, 2, 'event ids are committed with the change')
})

t.test('an HR event may number its id and its principal', async (t) => {
  await b.admin('POST', '/v1/principals', { id: '4711', kind: 'human', email: 'emp4711@example.com' })
  const body = '{"id": 90210, "type": "principal.suspended", "principal": 4711}'
  const r = await hr(body, sign(body))
  t.equal(r.status, 200)
  t.match(r.body, { id: '90210', principal: '4711', status: 'suspended', duplicate: false })
  const again = '{"id": "90210", "type": "principal.suspended", "principal": "4711"}'
  t.match((await hr(again, sign(again))).body, { duplicate: true }, 'the number and its digits are one event')
  for (const odd of ['{"id": 1.5, "type": "principal.suspended", "principal": "4711"}', '{"id": 9007199254740993, "type": "principal.suspended", "principal": "4711"}', '{"id": "x", "type": "principal.suspended", "principal": -0.5}', '[1]']) {
    t.equal((await hr(odd, sign(odd))).status, 400, odd)
  }
})

t.test('an HR event acts on the principal its reference names exactly, and on nobody when two match alike', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'dup-a', kind: 'human', email: 'dup@example.com' })
  await b.admin('POST', '/v1/principals', { id: 'dup-b', kind: 'human' })
  // Two emails that differ only in case (the API refuses that now; older rows may hold it).
  await b.broker.ctx.db.query("UPDATE principals SET email = 'DUP@example.com' WHERE id = 'dup-b'")
  const ambiguous = JSON.stringify({ id: 'amb-1', type: 'principal.suspended', principal: 'Dup@Example.com' })
  const r = await hr(ambiguous, sign(ambiguous))
  t.equal(r.status, 409)
  t.match(r.body.error_description, /matches more than one principal/)
  t.equal(await status('dup-a'), 'active')
  t.equal(await status('dup-b'), 'active')
  const exact = JSON.stringify({ id: 'amb-2', type: 'principal.suspended', principal: 'DUP@example.com' })
  t.equal((await hr(exact, sign(exact))).status, 200)
  t.equal(await status('dup-b'), 'suspended', 'the exact email')
  t.equal(await status('dup-a'), 'active')
})

t.test('an address names a person by email before an id that looks like one (a SCIM id keeps a user\'s first userName)', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'old@corp.example', kind: 'human', email: 'robert@corp.example' })
  await b.admin('POST', '/v1/principals', { id: 'new-hire', kind: 'human', email: 'old@corp.example' })
  const e = JSON.stringify({ id: 'addr-1', type: 'principal.suspended', principal: 'old@corp.example' })
  t.equal((await hr(e, sign(e))).status, 200)
  t.equal(await status('new-hire'), 'suspended', 'the person whose email it is')
  t.equal(await status('old@corp.example'), 'active', 'not the one whose id it once was')
})

t.test('unsigned, tampered, stale or wrongly keyed HR events get 401 and change nothing', async (t) => {
  const body = JSON.stringify({ id: 'evt-bad', type: 'principal.suspended', principal: 'bob' })
  const now = Math.floor(b.clock.now() / 1000)
  const cases: Array<[string, string | undefined, string]> = [
    ['unsigned', undefined, body],
    ['tampered body', sign(body), body.replace('suspended', 'offboarded')],
    ['older than 300 s', sign(body, now - 301), body],
    ['from the future', sign(body, now + 301), body],
    ['another secret', sign(body, now, 'whsec_other-secret-0123456789ab'), body],
    ['malformed header', 'v1=zz', body],
    ['short signature', `t=${now},v1=abcd`, body]
  ]
  for (const [name, sig, sent] of cases) {
    const r = await hr(sent, sig)
    t.equal(r.status, 401, name)
    t.equal(r.body.error, 'invalid_signature', name)
    // RFC 9110 §15.5.2: a 401 carries a challenge.
    t.match(r.challenge, /^Lineage-Signature realm=/, `${name}: challenge`)
  }
  t.equal(await status('bob'), 'active')
  const ok = await hr(body, sign(body, now - 299))
  t.equal(ok.status, 200, 'within the tolerance')
  t.equal(await status('bob'), 'suspended')
})

t.test('well-signed but bad HR events get 400 or 404, never a 500', async (t) => {
  const named = ['constructor', 'toString', '__proto__', 'hasOwnProperty'].map((type) => JSON.stringify({ id: `p-${type}`, type, principal: 'bob' }))
  named.push(JSON.stringify({ id: 'nul', type: 'principal.offboarded', principal: 'bob\u0000' }))
  const unknown = JSON.stringify({ id: 'x1', type: 'principal.exploded', principal: 'bob' })
  t.match((await hr(unknown, sign(unknown))).body.error_description, /type must be one of principal\.offboarded, principal\.suspended, principal\.reinstated/)
  for (const body of ['not json', '[]', '{"id":"x","type":"principal.exploded","principal":"bob"}', '{"type":"principal.offboarded","principal":"bob"}', '{"id":"y","type":"principal.offboarded"}', ...named]) {
    const r = await hr(body, sign(body))
    t.equal(r.status, 400, body)
  }
  const ghost = JSON.stringify({ id: 'z', type: 'principal.offboarded', principal: 'nobody@example.com' })
  t.equal((await hr(ghost, sign(ghost))).status, 404)
  const big = JSON.stringify({ id: 'big', type: 'principal.offboarded', principal: 'bob', pad: 'x'.repeat(100_000) })
  t.equal((await hr(big, sign(big))).status, 413)
  // A body declared compressed that does not inflate: the parser's 400, before the signature is even read.
  const squashed = await fetch(`${b.url}/hooks/hr`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'lineage-signature': sign('{}') }, body: 'not gzip' })
  t.equal(squashed.status, 400, 'a body that does not inflate')
  t.equal(((await squashed.json()) as { error: string }).error, 'invalid_request')
  t.equal((await hr('{}', sign('{}'), bare)).status, 401, 'without LINEAGE_WEBHOOK_SECRET the hook answers 401')
})

t.test('an HR or Okta reference holding an unpaired surrogate, which the database reads as U+FFFD, acts on nobody and is no other event\'s id', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'fffd', kind: 'human', email: 'fffd@example.com' })
  await b.testDb.db.query("UPDATE principals SET external_id = '\ufffd' WHERE id = 'fffd'")
  const lone = JSON.stringify({ id: 'lone-1', type: 'principal.offboarded', principal: '\ud800' })
  t.equal((await hr(lone, sign(lone))).status, 400, 'a principal that is no one')
  t.equal(await status('fffd'), 'active', 'not the principal whose external id is U+FFFD')
  const first = JSON.stringify({ id: 'ev-\ufffd', type: 'principal.suspended', principal: 'bob' })
  t.equal((await hr(first, sign(first))).status, 200)
  await b.admin('POST', '/v1/principals/bob/reinstate')
  const other = JSON.stringify({ id: 'ev-\udc00', type: 'principal.suspended', principal: 'bob' })
  t.equal((await hr(other, sign(other))).status, 400, 'an event id that is not the one before it is not taken for its replay')
  const r = await fetch(`${b.url}/hooks/okta`, {
    method: 'POST',
    headers: { authorization: oktaAuthorization, 'content-type': 'application/json' },
    body: JSON.stringify({ data: { events: [{ uuid: 'u-lone-1', eventType: 'user.lifecycle.deactivate', target: [{ type: 'User', alternateId: '\udbff', id: '\udfff' }] }] } })
  })
  t.same([r.status, await r.json()], [200, { applied: 0, skipped: 1 }], 'the Okta event skipped')
  t.equal(await status('fffd'), 'active')
})

t.test('Okta event hooks: verification, then deactivate/suspend on target users, once per uuid', async (t) => {
  const okta = async (method: string, body?: unknown, auth = oktaAuthorization, headers: Record<string, string> = {}): Promise<{ status: number, body: any }> => {
    const r = await fetch(`${b.url}/hooks/okta`, { method, headers: { authorization: auth, 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) })
    return { status: r.status, body: await r.json() }
  }
  const v = await okta('GET', undefined, oktaAuthorization, { 'x-okta-verification-challenge': 'abc123' })
  t.same(v, { status: 200, body: { verification: 'abc123' } })
  t.equal((await okta('GET', undefined, 'wrong', { 'x-okta-verification-challenge': 'abc123' })).status, 401)
  await b.admin('POST', '/v1/principals/bob/reinstate')
  await b.admin('POST', '/v1/principals', { id: 'carol', kind: 'human', email: 'carol@example.com' })
  const delivery = {
    data: {
      events: [
        { uuid: 'u-1', eventType: 'user.lifecycle.suspend', actor: { type: 'User', alternateId: 'carol@example.com' }, target: [{ type: 'User', alternateId: 'bob@example.com', id: '00u1' }] },
        { uuid: 'u-2', eventType: 'user.session.start', target: [{ type: 'User', alternateId: 'carol@example.com' }] },
        { uuid: 'u-3', eventType: 'user.lifecycle.deactivate', target: [{ type: 'User', alternateId: 'ghost@example.com' }] }
      ]
    }
  }
  const r = await okta('POST', delivery)
  t.same(r.body, { applied: 1, skipped: 2 })
  t.equal(await status('bob'), 'suspended', 'the target, matched by email case-insensitively')
  t.equal(await status('carol'), 'active', 'never the actor')
  await b.admin('POST', '/v1/principals/bob/reinstate')
  t.same((await okta('POST', delivery)).body, { applied: 0, skipped: 3 }, 'a redelivery acts once')
  t.equal(await status('bob'), 'active')
  const del = await okta('POST', { data: { events: [{ uuid: 'u-4', eventType: 'user.lifecycle.delete.initiated', target: [{ type: 'User', alternateId: 'carol@example.com' }] }] } })
  t.same(del.body, { applied: 1, skipped: 0 })
  t.equal(await status('carol'), 'offboarded')
  // Event types named like Object.prototype members, and an id far longer than a UUID: skipped, not a 500.
  const odd = await okta('POST', { data: { events: ['constructor', 'toString', '__proto__'].map((eventType, i) => ({ uuid: `u-odd-${i}`, eventType, target: [{ type: 'User', alternateId: 'bob@example.com' }] })) } })
  t.same(odd, { status: 200, body: { applied: 0, skipped: 3 } })
  const long = await okta('POST', { data: { events: [{ uuid: 'u'.repeat(16_000), eventType: 'user.lifecycle.suspend', target: [{ type: 'User', alternateId: 'bob@example.com' }] }] } })
  t.same(long, { status: 200, body: { applied: 0, skipped: 1 } })
  t.equal(await status('bob'), 'active')
  // A NUL, which the database cannot hold, in one event's user or id: that event skipped, the rest of the delivery acted on.
  const nul = await okta('POST', {
    data: {
      events: [
        { uuid: 'u-nul-1', eventType: 'user.lifecycle.suspend', target: [{ type: 'User', alternateId: 'bob\u0000@example.com', id: '00u\u00001' }] },
        { uuid: 'u-nul-2\u0000', eventType: 'user.lifecycle.suspend', target: [{ type: 'User', alternateId: 'bob@example.com' }] },
        { uuid: 'u-nul-3', eventType: 'user.lifecycle.suspend', target: [{ type: 'User', alternateId: 'bob@example.com' }] }
      ]
    }
  })
  t.same(nul, { status: 200, body: { applied: 1, skipped: 2 } })
  t.equal(await status('bob'), 'suspended', 'the good event in it acted on')
  await b.admin('POST', '/v1/principals/bob/reinstate')
  t.equal((await okta('POST', delivery, 'nope')).status, 401)
  t.equal((await okta('POST', { nothing: true })).status, 400)
  const junk = await fetch(`${b.url}/hooks/okta`, { method: 'POST', headers: { authorization: oktaAuthorization, 'content-type': 'application/json' }, body: '{"data":' })
  t.equal(junk.status, 400)
  const squashed = await fetch(`${b.url}/hooks/okta`, { method: 'POST', headers: { authorization: oktaAuthorization, 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: '{"data":{"events":[]}}' })
  t.equal(squashed.status, 400, 'a body declared gzip that does not inflate')
  t.equal((await fetch(`${bare.url}/hooks/okta`, { headers: { 'x-okta-verification-challenge': 'x' } })).status, 401, 'unconfigured')
})
