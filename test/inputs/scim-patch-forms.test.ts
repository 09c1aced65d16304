import t from 'tap'
import { adminToken, rootToken, startTestBroker } from '../helpers/broker.js'

const scimToken = 'scim_test-token-0123456789abcdef'
const b = await startTestBroker({ inputs: { scimToken } })
t.teardown(b.close)

const userSchema = 'urn:ietf:params:scim:schemas:core:2.0:User'
const patchSchema = 'urn:ietf:params:scim:api:messages:2.0:PatchOp'

async function scim (method: string, path: string, body: unknown): Promise<{ status: number, body: any }> {
  const r = await fetch(`${b.url}/scim/v2${path}`, { method, headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' }, body: JSON.stringify(body) })
  return { status: r.status, body: await r.json() }
}
const live = async (token: string): Promise<boolean> => (await b.form('/oauth/introspect', { token }, { authorization: `Bearer ${adminToken}` })).body.active
const status = async (id: string): Promise<string> => (await b.admin('GET', `/v1/principals/${encodeURIComponent(id)}`)).body.status

/** A SCIM-provisioned human with a live root token of their own. */
async function userWithToken (userName: string): Promise<{ id: string, token: string }> {
  const { body: { id } } = await scim('POST', '/Users', { schemas: [userSchema], userName, active: true })
  await b.admin('PUT', `/v1/principals/${encodeURIComponent(id as string)}/grants`, { grants: ['api:read'] })
  const c = await b.admin('POST', `/v1/principals/${encodeURIComponent(id as string)}/clients`)
  return { id, token: await rootToken(b, { clientId: c.body.client_id, clientSecret: c.body.client_secret }) }
}

t.test('a path-less PATCH whose value is the whole User, schemas and all, deactivates (RFC 7643 §3: schemas is an attribute of every resource)', async (t) => {
  const { id, token } = await userWithToken('whole@example.com')
  const r = await scim('PATCH', `/Users/${encodeURIComponent(id)}`, {
    schemas: [patchSchema],
    Operations: [{ op: 'replace', value: { schemas: [userSchema], id, userName: 'whole@example.com', active: false, meta: { resourceType: 'User' } } }]
  })
  t.equal(r.status, 200, JSON.stringify(r.body))
  t.equal(r.body.active, false)
  t.equal(await status(id), 'offboarded')
  t.notOk(await live(token))
  const named = await scim('PATCH', `/Users/${encodeURIComponent(id)}`, { schemas: [patchSchema], Operations: [{ op: 'replace', path: 'schemas', value: [userSchema] }] })
  t.same([named.status, named.body.scimType], [400, 'mutability'], 'a path that names schemas changes nothing')
})

t.test('an operation\'s members are read whatever their case, as the PatchOp\'s own are (RFC 7643 §2.1): "Op", "Path" and "Value" deactivate', async (t) => {
  const { id, token } = await userWithToken('capital@example.com')
  const r = await scim('PATCH', `/Users/${encodeURIComponent(id)}`, { schemas: [patchSchema], Operations: [{ Op: 'Replace', Path: 'active', Value: 'False' }] })
  t.equal(r.status, 200, JSON.stringify(r.body))
  t.equal(r.body.active, false)
  t.equal(await status(id), 'offboarded')
  t.notOk(await live(token))
  const twice = await scim('PATCH', `/Users/${encodeURIComponent(id)}`, { schemas: [patchSchema], Operations: [{ op: 'replace', path: 'active', value: true, VALUE: false }] })
  t.same([twice.status, twice.body.scimType], [400, 'invalidSyntax'], 'a member given twice in two cases is refused, not one of them picked')
})
