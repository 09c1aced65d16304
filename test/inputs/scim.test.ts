import t, { type Test } from 'tap'
import { adminToken, rootToken, startTestBroker, type TestBroker } from '../helpers/broker.js'

const scimToken = 'scim_test-token-0123456789abcdef'
const b = await startTestBroker({ inputs: { scimToken } })
const bare = await startTestBroker()
t.teardown(async () => { await b.close(); await bare.close() })

const userSchema = 'urn:ietf:params:scim:schemas:core:2.0:User'
const patchSchema = 'urn:ietf:params:scim:api:messages:2.0:PatchOp'
const errorSchema = 'urn:ietf:params:scim:api:messages:2.0:Error'
const listSchema = 'urn:ietf:params:scim:api:messages:2.0:ListResponse'

interface Reply { status: number, body: any, headers: Headers }
interface Options { token?: string | null, contentType?: string, encoding?: string, raw?: string, target?: TestBroker }

async function scim (method: string, path: string, body?: unknown, o: Options = {}): Promise<Reply> {
  const headers: Record<string, string> = {}
  const token = o.token === undefined ? scimToken : o.token
  if (token !== null) headers.authorization = `Bearer ${token}`
  const payload = o.raw ?? (body === undefined ? undefined : JSON.stringify(body))
  if (payload !== undefined) headers['content-type'] = o.contentType ?? 'application/scim+json'
  if (o.encoding !== undefined) headers['content-encoding'] = o.encoding
  const r = await fetch(`${(o.target ?? b).url}/scim/v2${path}`, { method, headers, body: payload })
  const text = await r.text()
  return { status: r.status, body: text === '' ? undefined : JSON.parse(text), headers: r.headers }
}

const patch = async (id: string, ...ops: unknown[]): Promise<Reply> => await scim('PATCH', `/Users/${encodeURIComponent(id)}`, { schemas: [patchSchema], Operations: ops })
const status = async (id: string): Promise<string> => (await b.admin('GET', `/v1/principals/${encodeURIComponent(id)}`)).body.status
const live = async (token: string): Promise<boolean> => (await b.form('/oauth/introspect', { token }, { authorization: `Bearer ${adminToken}` })).body.active

async function createUser (userName: string, extra: Record<string, unknown> = {}): Promise<any> {
  const r = await scim('POST', '/Users', { schemas: [userSchema], userName, active: true, ...extra })
  if (r.status !== 201) throw new Error(`create ${userName}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

/** A SCIM-provisioned human, a service they sponsor with a client, and a live root token rooted at it. */
async function userWithToken (userName: string): Promise<{ id: string, token: string }> {
  const { id } = await createUser(userName)
  await b.admin('PUT', `/v1/principals/${encodeURIComponent(id)}/grants`, { grants: ['api:read'] })
  const service = `svc-${id.replace(/@.*/, '')}`
  const s = await b.admin('POST', '/v1/principals', { id: service, kind: 'service', sponsor: id, grants: ['api:read'] })
  if (s.status !== 201) throw new Error(`service: ${s.status} ${JSON.stringify(s.body)}`)
  const c = await b.admin('POST', `/v1/principals/${service}/clients`)
  const token = await rootToken(b, { clientId: c.body.client_id, clientSecret: c.body.client_secret })
  return { id, token }
}

function isScimError (t: Test, r: Reply, code: number, scimType: string | undefined, name: string): void {
  t.equal(r.status, code, name)
  t.match(r.headers.get('content-type'), /^application\/scim\+json/, `${name}: content type`)
  t.same(r.body.schemas, [errorSchema], `${name}: error schema`)
  t.equal(r.body.status, String(code), `${name}: status is a string`)
  t.equal(r.body.scimType, scimType, `${name}: scimType`)
  t.type(r.body.detail, 'string', `${name}: detail`)
}

t.test('requests without the SCIM bearer token get a 401 SCIM error, and so does every request while LINEAGE_SCIM_TOKEN is unset', async (t) => {
  const cases: Array<[string, Reply]> = [
    ['no Authorization', await scim('GET', '/Users', undefined, { token: null })],
    ['a wrong token', await scim('GET', '/Users', undefined, { token: 'scim_test-token-0123456789abcdeX' })],
    ['a prefix of the token', await scim('GET', '/Users', undefined, { token: scimToken.slice(0, 10) })],
    ['the admin token', await scim('GET', '/Users', undefined, { token: adminToken })],
    ['an unknown path', await scim('GET', '/Groups', undefined, { token: null })],
    ['a POST before its body is read', await scim('POST', '/Users', { userName: 'mallory@example.com' }, { token: 'nope' })],
    ['an unconfigured broker', await scim('GET', '/Users', undefined, { target: bare })]
  ]
  for (const [name, r] of cases) {
    isScimError(t, r, 401, undefined, name)
    t.match(r.headers.get('www-authenticate'), /^Bearer/, `${name}: challenge`)
  }
  t.equal((await scim('GET', '/Users?filter=userName%20eq%20%22mallory@example.com%22')).body.totalResults, 0, 'nothing was created')
  const basic = await fetch(`${b.url}/scim/v2/Users`, { headers: { authorization: `Basic ${Buffer.from(`x:${scimToken}`).toString('base64')}` } })
  t.equal(basic.status, 401, 'Basic is not Bearer')
})

t.test('POST /Users creates a human principal and answers 201 with the SCIM User', async (t) => {
  const r = await scim('POST', '/Users', {
    schemas: [userSchema, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
    userName: 'Dana.Smith@Example.com',
    externalId: 'entra-object-1',
    active: true,
    name: { givenName: 'Dana', familyName: 'Smith' },
    emails: [{ value: 'Dana.Smith@Example.com', type: 'work', primary: true }],
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { employeeNumber: '42' }
  })
  t.equal(r.status, 201)
  t.match(r.headers.get('content-type'), /^application\/scim\+json/)
  t.match(r.body, {
    schemas: [userSchema],
    id: 'dana.smith@example.com',
    externalId: 'entra-object-1',
    userName: 'Dana.Smith@Example.com',
    active: true,
    name: { formatted: 'dana.smith@example.com' },
    emails: [{ value: 'Dana.Smith@Example.com', primary: true }],
    meta: { resourceType: 'User', location: `${b.url}/scim/v2/Users/dana.smith%40example.com` }
  })
  t.equal(r.headers.get('location'), r.body.meta.location)
  const p = await b.admin('GET', '/v1/principals/dana.smith@example.com')
  t.match(p.body, { kind: 'human', email: 'Dana.Smith@Example.com', status: 'active' })
  const { rows } = await b.testDb.db.query<{ external_id: string }>('SELECT external_id FROM principals WHERE id = $1', ['dana.smith@example.com'])
  t.equal(rows[0].external_id, 'entra-object-1')

  const get = await scim('GET', `/Users/${encodeURIComponent(r.body.id)}`)
  t.equal(get.status, 200)
  t.same(get.body, r.body, 'GET answers the same resource')

  isScimError(t, await scim('POST', '/Users', { userName: 'dana.smith@example.com' }), 409, 'uniqueness', 'the same userName in another case')
  isScimError(t, await scim('POST', '/Users', { userName: 'other@example.com', externalId: 'entra-object-1' }), 409, 'uniqueness', 'the same externalId')

  const json = await scim('POST', '/Users', { userName: 'plain-json@example.com' }, { contentType: 'application/json' })
  t.equal(json.status, 201, 'application/json requests are accepted')
  t.match(json.headers.get('content-type'), /^application\/scim\+json/)
})

t.test('a userName whose id is taken by another principal gets an id of its own', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'erin@example.com', kind: 'human' })
  await b.admin('POST', '/v1/principals', { id: 'svc-erin', kind: 'service', sponsor: 'erin@example.com' })
  isScimError(t, await scim('POST', '/Users', { userName: 'ERIN@example.com' }), 409, 'uniqueness', 'a human with no email is known by its id')
  await b.testDb.db.query("UPDATE principals SET email = 'erin.admin@example.com' WHERE id = 'erin@example.com'")
  const r = await scim('POST', '/Users', { userName: 'erin@example.com' })
  t.equal(r.status, 201)
  t.match(r.body.id, /^erin@example\.com-[0-9a-f]{8}$/)
  const odd = await scim('POST', '/Users', { userName: "..O'Brien/Ops@Example.com" })
  t.equal(odd.status, 201)
  t.equal(odd.body.id, 'o-brien-ops@example.com', 'lower-cased and sanitized to the id alphabet')
  t.equal(odd.body.userName, "..O'Brien/Ops@Example.com")
})

t.test("Entra's test connection filter gets a ListResponse, also for a user that does not exist", async (t) => {
  await createUser('frank@example.com', { externalId: 'okta-00u-frank' })
  for (const filter of ['userName eq "frank@example.com"', 'USERNAME EQ "Frank@Example.com"', 'externalId eq "okta-00u-frank"', 'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "frank@example.com"']) {
    const r = await scim('GET', `/Users?filter=${encodeURIComponent(filter)}`)
    t.equal(r.status, 200, filter)
    t.match(r.headers.get('content-type'), /^application\/scim\+json/)
    t.match(r.body, { schemas: [listSchema], totalResults: 1, itemsPerPage: 1, startIndex: 1, Resources: [{ id: 'frank@example.com', userName: 'frank@example.com' }] }, filter)
  }
  // What Entra sends: a random GUID as the userName, '+' for spaces.
  const ghost = await fetch(`${b.url}/scim/v2/Users?filter=userName+eq+%22b2f9c9a6-1c1a-4d5e-9f51-2b8a0f3e7d11%22`, { headers: { authorization: `Bearer ${scimToken}` } })
  t.equal(ghost.status, 200)
  t.same(await ghost.json(), { schemas: [listSchema], totalResults: 0, itemsPerPage: 0, startIndex: 1, Resources: [] })
  t.equal((await scim('GET', `/Users?filter=${encodeURIComponent('externalId eq "OKTA-00U-FRANK"')}`)).body.totalResults, 0, 'externalId is case-exact')
})

t.test('other filters are refused with 400 invalidFilter', async (t) => {
  for (const filter of ['name.familyName eq "x"', 'userName co "frank"', 'userName eq "a" and active eq true', 'userName eq frank', 'userName eq "unterminated', 'id eq "frank@example.com"', '', 'x'.repeat(2000)]) {
    isScimError(t, await scim('GET', `/Users?filter=${encodeURIComponent(filter)}`), 400, 'invalidFilter', filter.slice(0, 40))
  }
  isScimError(t, await scim('GET', '/Users?filter=userName%20eq%20%22a%22&filter=userName%20eq%20%22b%22'), 400, 'invalidFilter', 'two filters')
})

t.test('listing without a filter pages with startIndex and count, at most 200 a page', async (t) => {
  const all = await scim('GET', '/Users?count=1000')
  t.equal(all.status, 200)
  const total = all.body.totalResults
  t.ok(total >= 4)
  t.equal(all.body.itemsPerPage, total)
  t.notOk(all.body.Resources.some((u: any) => u.id === 'svc-erin'), 'services are not Users')
  const page = await scim('GET', '/Users?startIndex=2&count=2')
  t.match(page.body, { totalResults: total, itemsPerPage: 2, startIndex: 2 })
  t.same(page.body.Resources.map((u: any) => u.id), all.body.Resources.slice(1, 3).map((u: any) => u.id))
  t.match((await scim('GET', '/Users?startIndex=0&count=-5')).body, { totalResults: total, itemsPerPage: 0, startIndex: 1, Resources: [] }, 'startIndex < 1 means 1, count < 0 means 0')
  t.match((await scim('GET', `/Users?startIndex=${total + 1}`)).body, { totalResults: total, itemsPerPage: 0, Resources: [] })
  isScimError(t, await scim('GET', '/Users?startIndex=abc'), 400, 'invalidValue', 'a startIndex that is not a number')
  // RFC 7644 §3.4.2.4 gives every integer a meaning, however many digits it has.
  t.match((await scim('GET', '/Users?startIndex=-99999999999999999999&count=-10000000000')).body, { totalResults: total, itemsPerPage: 0, startIndex: 1, Resources: [] }, 'a far negative startIndex means 1, a far negative count 0')
  t.match((await scim('GET', '/Users?count=10000000000')).body, { totalResults: total, itemsPerPage: total }, 'a count past any page means the largest page')
  const far = await scim('GET', '/Users?startIndex=99999999999999999999999&count=5')
  t.equal(far.status, 200, 'a startIndex past any page')
  t.match(far.body, { totalResults: total, itemsPerPage: 0, Resources: [] })
  await b.testDb.db.query("INSERT INTO principals (id, kind, email) SELECT 'bulk-' || g, 'human', 'bulk-' || g || '@example.com' FROM generate_series(1, 205) g")
  const capped = await scim('GET', '/Users?count=1000')
  t.equal(capped.body.totalResults, total + 205)
  t.equal(capped.body.itemsPerPage, 200, 'capped at 200')
  await b.testDb.db.query("DELETE FROM principals WHERE id LIKE 'bulk-%'")
})

t.test('every deactivation form offboards the user and cuts off a live token rooted at their service', async (t) => {
  const forms: Array<[string, (id: string) => Promise<Reply>]> = [
    ['standard PATCH', async (id) => await patch(id, { op: 'replace', path: 'active', value: false })],
    ["Entra's PATCH", async (id) => await patch(id, { op: 'Replace', path: 'active', value: 'False' })],
    ["Okta's path-less PATCH", async (id) => await patch(id, { op: 'replace', value: { active: false } })],
    ["Entra's PATCH among profile changes", async (id) => await patch(id,
      { op: 'Add', path: 'displayName', value: 'Someone' },
      { op: 'Replace', path: 'name.givenName', value: 'Some' },
      { op: 'Replace', path: 'emails[type eq "work"].value', value: 'x@example.com' },
      { op: 'Replace', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department', value: 'Ops' },
      { op: 'Replace', path: 'active', value: 'false' })],
    ['PUT with active:false', async (id) => await scim('PUT', `/Users/${encodeURIComponent(id)}`, { schemas: [userSchema], id, userName: `${id}`, active: false })]
  ]
  let i = 0
  for (const [name, deactivate] of forms) {
    const { id, token } = await userWithToken(`deact${i++}@example.com`)
    t.ok(await live(token), `${name}: live before`)
    const r = await deactivate(id)
    t.equal(r.status, 200, name)
    t.match(r.headers.get('content-type'), /^application\/scim\+json/)
    t.match(r.body, { schemas: [userSchema], id, active: false }, `${name}: answers the resource`)
    t.equal(await status(id), 'offboarded', name)
    t.notOk(await live(token), `${name}: the service's token is cut off`)
    t.equal((await deactivate(id)).status, 200, `${name}: a repeat is harmless`)
  }
  await b.broker.ctx.audit.flush()
  const { rows } = await b.testDb.db.query<{ reason: string }>("SELECT detail->>'reason' AS reason FROM audit WHERE kind = 'principal.status' AND detail->>'status' = 'offboarded' AND principals[1] LIKE 'deact%'")
  t.same(rows.map((r) => r.reason).sort(), ['SCIM PATCH active:false', 'SCIM PATCH active:false', 'SCIM PATCH active:false', 'SCIM PATCH active:false', 'SCIM PUT active:false'], 'each offboarding is audited once, with a SCIM reason')
})

t.test('active:true by PATCH or PUT reinstates, and tokens cut off before stay cut off', async (t) => {
  const { id, token } = await userWithToken('gina@example.com')
  t.equal((await patch(id, { op: 'replace', path: 'active', value: false })).status, 200)
  const back = await patch(id, { op: 'Replace', path: 'active', value: 'True' })
  t.equal(back.status, 200)
  t.equal(back.body.active, true)
  t.equal(await status(id), 'active')
  t.notOk(await live(token), 'the old token stays cut off')
  t.equal((await scim('PUT', `/Users/${encodeURIComponent(id)}`, { userName: 'gina@example.com', active: false })).body.active, false)
  t.equal((await patch(id, { op: 'replace', value: { active: true } })).body.active, true)
  t.equal((await scim('PUT', `/Users/${encodeURIComponent(id)}`, { userName: 'gina@example.com', active: false })).body.active, false)
  t.equal((await scim('PUT', `/Users/${encodeURIComponent(id)}`, { userName: 'gina@example.com', active: true })).body.active, true)
  t.equal(await status(id), 'active')
})

t.test('active:true undoes only what SCIM did: an offboarding by an admin or HR stands, and a later suspension does not soften it', async (t) => {
  const { id } = await userWithToken('pat@example.com')
  t.equal((await b.admin('POST', `/v1/principals/${encodeURIComponent(id)}/offboard`, { reason: 'left' })).status, 200)
  // The identity provider's next profile push, unrelated to the offboarding.
  const push = await scim('PUT', `/Users/${encodeURIComponent(id)}`, { userName: 'pat@example.com', active: true, title: 'Engineer' })
  t.equal(push.status, 200)
  t.equal(push.body.active, false)
  t.equal(await status(id), 'offboarded')
  t.equal((await patch(id, { op: 'replace', path: 'active', value: true })).body.active, false)
  await b.broker.ctx.db.query("UPDATE principals SET status_source = 'hr' WHERE id = $1", [id])
  const { setStatus } = await import('../../src/broker/set-status.js')
  await setStatus(b.broker.ctx, id, 'suspended', { source: 'okta' })
  t.equal(await status(id), 'offboarded', 'a suspension after an offboarding leaves it offboarded')
  t.equal((await b.admin('POST', `/v1/principals/${encodeURIComponent(id)}/reinstate`)).status, 200)
  t.equal(await status(id), 'active', 'an admin may reinstate')
})

t.test('active:true does not undo an offboarding or suspension that HR or another provider made too, before or after SCIM\'s own', async (t) => {
  const { setStatus } = await import('../../src/broker/set-status.js')
  const { id } = await userWithToken('quinn@example.com')
  t.equal((await patch(id, { op: 'replace', path: 'active', value: false })).body.active, false)
  // HR's offboarding arrives when the principal is offboarded already.
  await setStatus(b.broker.ctx, id, 'offboarded', { event: { source: 'hr', id: 'quinn-left' } })
  const push = await scim('PUT', `/Users/${encodeURIComponent(id)}`, { userName: 'quinn@example.com', active: true })
  t.equal(push.body.active, false, 'the profile push leaves HR\'s offboarding standing')
  t.equal(await status(id), 'offboarded')

  const other = await userWithToken('rowan@example.com')
  await setStatus(b.broker.ctx, other.id, 'suspended', { event: { source: 'okta', id: 'rowan-suspended' } })
  t.equal((await patch(other.id, { op: 'replace', path: 'active', value: false })).body.active, false)
  t.equal((await patch(other.id, { op: 'replace', path: 'active', value: true })).body.active, false, 'SCIM made it offboarded, but Okta had put it out first')
  t.equal(await status(other.id), 'offboarded')
})

t.test('an HR offboarding that commits while a SCIM active:true is in flight stands', async (t) => {
  const { setStatus } = await import('../../src/broker/set-status.js')
  const { id } = await userWithToken('sage@example.com')
  t.equal((await patch(id, { op: 'replace', path: 'active', value: false })).body.active, false)
  // The PATCH read the User while SCIM alone held it out; HR's offboarding commits before the PATCH writes.
  await setStatus(b.broker.ctx, id, 'offboarded', { event: { source: 'hr', id: 'sage-left' } })
  await setStatus(b.broker.ctx, id, 'active', { reason: 'SCIM PATCH active:true', source: 'scim', count: false })
  t.equal(await status(id), 'offboarded', 'the reinstatement SCIM decided on a stale read is not applied')
  t.equal((await scim('GET', `/Users/${encodeURIComponent(id)}`)).body.active, false)
})

t.test('a path-less deactivation nested under the core schema URN deactivates', async (t) => {
  const { id } = await userWithToken('nest@example.com')
  const r = await patch(id, { op: 'replace', value: { [userSchema]: { active: false } } })
  t.equal(r.status, 200)
  t.equal(r.body.active, false)
  t.equal(await status(id), 'offboarded')
})

t.test('a PatchOp\'s attribute names are read whatever their case (RFC 7643 §2.1): "operations" and "Schemas" deactivate too', async (t) => {
  const { id, token } = await userWithToken('otto@example.com')
  const r = await scim('PATCH', `/Users/${encodeURIComponent(id)}`, { Schemas: [patchSchema], operations: [{ op: 'replace', path: 'active', value: false }] })
  t.equal(r.status, 200)
  t.equal(r.body.active, false)
  t.equal(await status(id), 'offboarded')
  t.notOk(await live(token))
  isScimError(t, await scim('PATCH', `/Users/${encodeURIComponent(id)}`, { schemas: [patchSchema], Operations: [{ op: 'replace', path: 'active', value: true }], operations: [{ op: 'replace', path: 'active', value: false }] }), 400, 'invalidSyntax', 'Operations given twice, in two cases')
})

t.test('an operation whose path is null is path-less (RFC 7643 §2.5: null is unassigned), so its object value deactivates', async (t) => {
  const { id, token } = await userWithToken('pia@example.com')
  const r = await patch(id, { op: 'replace', path: null, value: { active: false } })
  t.equal(r.status, 200)
  t.equal(r.body.active, false)
  t.equal(await status(id), 'offboarded')
  t.notOk(await live(token))
  isScimError(t, await patch(id, { op: 'remove', path: null }), 400, 'noTarget', 'remove with a null path')
})

t.test('two principals whose emails differ only in case cannot be created at once', async (t) => {
  const made = await Promise.all(['Tie@example.com', 'tie@example.com', 'TIE@example.com'].map(async (email, i) => (await b.admin('POST', '/v1/principals', { id: `tie-${i}`, kind: 'human', email })).status))
  t.same([...made].sort(), [201, 409, 409])
})

t.test('PATCH and PUT change externalId and userName', async (t) => {
  const { id } = await createUser('hank@example.com')
  const r = await patch(id, { op: 'Add', path: 'externalId', value: 'ext-hank' }, { op: 'replace', path: 'userName', value: 'henry@example.com' })
  t.equal(r.status, 200)
  t.match(r.body, { id, userName: 'henry@example.com', externalId: 'ext-hank', active: true })
  t.equal((await b.admin('GET', `/v1/principals/${id}`)).body.email, 'henry@example.com')
  const removed = await patch(id, { op: 'remove', path: 'externalId' })
  t.equal(removed.body.externalId, undefined)
  const put = await scim('PUT', `/Users/${encodeURIComponent(id)}`, { userName: 'henry@example.com', externalId: 'ext-2' })
  t.match(put.body, { userName: 'henry@example.com', externalId: 'ext-2', active: true })
  isScimError(t, await patch(id, { op: 'replace', path: 'userName', value: 'frank@example.com' }), 409, 'uniqueness', 'a userName another user holds')
  isScimError(t, await patch(id, { op: 'replace', path: 'userName', value: 'not-an-email' }), 400, 'invalidValue', 'a userName that is not an address')
})

t.test('DELETE offboards the user, cuts off their tokens, answers 204, and the user is gone', async (t) => {
  const { id, token } = await userWithToken('ivan@example.com')
  const del = await scim('DELETE', `/Users/${encodeURIComponent(id)}`)
  t.equal(del.status, 204)
  t.equal(del.body, undefined)
  t.equal(await status(id), 'offboarded')
  t.notOk(await live(token))
  isScimError(t, await scim('GET', `/Users/${encodeURIComponent(id)}`), 404, undefined, 'GET after DELETE')
  isScimError(t, await patch(id, { op: 'replace', path: 'active', value: true }), 404, undefined, 'PATCH after DELETE')
  isScimError(t, await scim('PUT', `/Users/${encodeURIComponent(id)}`, { userName: 'ivan@example.com', active: true }), 404, undefined, 'PUT after DELETE')
  isScimError(t, await scim('DELETE', `/Users/${encodeURIComponent(id)}`), 404, undefined, 'DELETE again')
  t.equal(await status(id), 'offboarded', 'nothing after DELETE brought the user back')
  t.equal((await scim('GET', '/Users?filter=userName%20eq%20%22ivan@example.com%22')).body.totalResults, 0)
  isScimError(t, await scim('POST', '/Users', { userName: 'ivan@example.com' }), 409, 'uniqueness', 'the deleted user keeps its email')
  await b.admin('POST', `/v1/principals/${encodeURIComponent(id)}/reinstate`)
  t.equal((await scim('GET', `/Users/${encodeURIComponent(id)}`)).body.active, true, 'an admin reinstatement makes the user visible again')
  t.equal((await scim('DELETE', `/Users/${encodeURIComponent(id)}`)).status, 204, 'and deletable again')
  t.equal(await status(id), 'offboarded')
})

t.test('a user reinstated after DELETE stays a User: a later deactivation answers the resource, active:false, and the user is still there', async (t) => {
  const { id, token } = await userWithToken('lou@example.com')
  t.equal((await scim('DELETE', `/Users/${encodeURIComponent(id)}`)).status, 204)
  t.equal((await b.admin('POST', `/v1/principals/${encodeURIComponent(id)}/reinstate`)).status, 200)
  t.notOk(await live(token))
  const off = await patch(id, { op: 'replace', path: 'active', value: false })
  t.equal(off.status, 200, 'the deactivation that took effect is answered as such')
  t.match(off.body, { id, active: false })
  t.equal(await status(id), 'offboarded')
  const get = await scim('GET', `/Users/${encodeURIComponent(id)}`)
  t.equal(get.status, 200, 'deactivated, not deleted')
  t.equal(get.body.active, false)
  t.equal((await scim('GET', '/Users?filter=userName%20eq%20%22lou@example.com%22')).body.totalResults, 1)
  // Another source's offboarding does not delete it from SCIM either; a new DELETE does.
  t.equal((await patch(id, { op: 'replace', path: 'active', value: true })).body.active, true)
  t.equal((await b.admin('POST', `/v1/principals/${encodeURIComponent(id)}/offboard`)).status, 200)
  t.equal((await scim('GET', `/Users/${encodeURIComponent(id)}`)).status, 200)
  t.equal((await scim('DELETE', `/Users/${encodeURIComponent(id)}`)).status, 204)
  isScimError(t, await scim('GET', `/Users/${encodeURIComponent(id)}`), 404, undefined, 'GET after the new DELETE')
})

t.test('bad input gets a SCIM 400, 404 or 413 and never changes a status', async (t) => {
  const { id, token } = await userWithToken('judy@example.com')
  const path = `/Users/${encodeURIComponent(id)}`
  const cases: Array<[string, Reply, number, string | undefined]> = [
    ['an unknown op', await patch(id, { op: 'move', path: 'active', value: false }), 400, 'invalidValue'],
    ['a missing op', await patch(id, { path: 'active', value: false }), 400, 'invalidValue'],
    ['an unknown path', await patch(id, { op: 'replace', path: 'bogus', value: false }), 400, 'invalidPath'],
    ['a sub-attribute of active', await patch(id, { op: 'replace', path: 'active.value', value: false }), 400, 'invalidPath'],
    ['a path that is not a string', await patch(id, { op: 'replace', path: 7, value: false }), 400, 'invalidPath'],
    ['active as a word', await patch(id, { op: 'replace', path: 'active', value: 'nope' }), 400, 'invalidValue'],
    ['active as a number', await patch(id, { op: 'replace', path: 'active', value: 0 }), 400, 'invalidValue'],
    ['active as null', await patch(id, { op: 'replace', path: 'active', value: null }), 400, 'invalidValue'],
    ['a path-less value that is not an object', await patch(id, { op: 'replace', value: false }), 400, 'invalidValue'],
    ['a path-less unknown attribute', await patch(id, { op: 'replace', value: { active: false, bogus: 1 } }), 400, 'invalidPath'],
    ['a path-less active that is not a boolean', await patch(id, { op: 'replace', value: { active: 'maybe' } }), 400, 'invalidValue'],
    ['a valid deactivation followed by a bad op', await patch(id, { op: 'replace', path: 'active', value: false }, { op: 'replace', path: 'bogus', value: 1 }), 400, 'invalidPath'],
    ['remove without a path', await patch(id, { op: 'remove' }), 400, 'noTarget'],
    ['remove active', await patch(id, { op: 'remove', path: 'active' }), 400, 'invalidValue'],
    ['replace the id', await patch(id, { op: 'replace', path: 'id', value: 'x' }), 400, 'mutability'],
    ['externalId as a number', await patch(id, { op: 'add', path: 'externalId', value: 5 }), 400, 'invalidValue'],
    ['a PatchOp without schemas', await scim('PATCH', path, { Operations: [{ op: 'replace', path: 'active', value: false }] }), 400, 'invalidSyntax'],
    ['Operations that are not an array', await scim('PATCH', path, { schemas: [patchSchema], Operations: { op: 'replace' } }), 400, 'invalidSyntax'],
    ['no Operations', await scim('PATCH', path, { schemas: [patchSchema], Operations: [] }), 400, 'invalidSyntax'],
    ['an operation that is not an object', await scim('PATCH', path, { schemas: [patchSchema], Operations: ['replace'] }), 400, 'invalidSyntax'],
    ['malformed JSON', await scim('PATCH', path, undefined, { raw: '{"schemas":[' }), 400, 'invalidSyntax'],
    ['a JSON array', await scim('PATCH', path, undefined, { raw: '[1,2]' }), 400, 'invalidSyntax'],
    ['a JSON string', await scim('PUT', path, undefined, { raw: '"active"' }), 400, 'invalidSyntax'],
    ['a body declared gzip that does not inflate', await scim('PATCH', path, undefined, { raw: '{"schemas":[]}', encoding: 'gzip' }), 400, 'invalidSyntax'],
    ['a body over 64 kB', await patch(id, { op: 'replace', path: 'active', value: false }, { op: 'add', path: 'displayName', value: 'x'.repeat(70_000) }), 413, undefined],
    ['a PUT without userName', await scim('PUT', path, { active: false }), 400, 'invalidValue'],
    ['a PUT with active as a word', await scim('PUT', path, { userName: 'judy@example.com', active: 'no' }), 400, 'invalidValue'],
    ['a PUT renaming to a taken userName', await scim('PUT', path, { userName: 'frank@example.com', active: false }), 409, 'uniqueness'],
    ['a POST without userName', await scim('POST', '/Users', { active: true }), 400, 'invalidValue'],
    ['a POST with a userName that is not an address', await scim('POST', '/Users', { userName: 'judy' }), 400, 'invalidValue'],
    ['a POST with a numeric userName', await scim('POST', '/Users', { userName: 42 }), 400, 'invalidValue'],
    ['a POST with an empty body', await scim('POST', '/Users'), 400, 'invalidValue'],
    ['PATCH of an unknown user', await patch('nobody@example.com', { op: 'replace', path: 'active', value: false }), 404, undefined],
    ['PUT of an unknown user', await scim('PUT', '/Users/nobody', { userName: 'nobody@example.com', active: false }), 404, undefined],
    ['GET of an unknown user', await scim('GET', '/Users/nobody'), 404, undefined],
    ['DELETE of an unknown user', await scim('DELETE', '/Users/nobody'), 404, undefined],
    ['a service is not a User', await patch('svc-judy', { op: 'replace', path: 'active', value: false }), 404, undefined],
    ['an unknown endpoint', await scim('GET', '/Groups'), 404, undefined],
    ['a path named like an Object member', await patch(id, { op: 'replace', path: 'constructor', value: false }), 400, 'invalidPath'],
    ['a NUL in a filter', await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "judy\u0000@example.com"')}`), 400, 'invalidFilter'],
    ['a NUL in a filter, escaped', await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "judy\\u0000@example.com"')}`), 400, 'invalidValue'],
    ['a NUL in a userName', await scim('POST', '/Users', { userName: 'ju\u0000dy@example.com' }), 400, 'invalidValue'],
    ['an unpaired surrogate in a userName, which would be stored as U+FFFD', await scim('POST', '/Users', { userName: 'ju\ud800dy@example.com' }), 400, 'invalidValue'],
    ['an unpaired surrogate in an externalId', await patch(id, { op: 'replace', path: 'externalId', value: 'x\udc00' }, { op: 'replace', path: 'active', value: false }), 400, 'invalidValue'],
    ['a NUL in an id', await scim('GET', '/Users/a%00b'), 400, 'invalidValue'],
    ['an id that is not valid percent-encoding', await scim('GET', '/Users/%C0'), 400, 'invalidValue'],
    ['an id that is not valid percent-encoding, in a PATCH', await scim('PATCH', '/Users/%E0%A4', { schemas: [patchSchema], Operations: [{ op: 'replace', path: 'active', value: false }] }), 400, 'invalidValue']
  ]
  for (const [name, r, code, scimType] of cases) isScimError(t, r, code, scimType, name)
  t.equal(await status(id), 'active', 'the user is untouched')
  t.equal(await status('svc-judy'), 'active', 'the service is untouched')
  t.ok(await live(token), 'the token still works')
  t.equal((await scim('GET', path)).body.userName, 'judy@example.com')
})

t.test('ServiceProviderConfig says what is supported', async (t) => {
  const r = await scim('GET', '/ServiceProviderConfig')
  t.equal(r.status, 200)
  t.match(r.body, { patch: { supported: true }, filter: { supported: true, maxResults: 200 }, bulk: { supported: false } })
})
