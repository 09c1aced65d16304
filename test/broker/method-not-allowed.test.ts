import t from 'tap'
import { adminToken, startTestBroker } from '../helpers/broker.js'
import { bodyOf } from '../helpers/http.js'

const b = await startTestBroker()
t.teardown(b.close)

const allowOf = (r: Response): string[] => (r.headers.get('allow') ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '').sort()

t.test('a known path with the wrong method is 405 with Allow and the contract error body', async (t) => {
  const cases: Array<[string, string, string[], Record<string, string>?]> = [
    ['GET', '/oauth/token', ['POST']],
    ['PUT', '/oauth/token', ['POST']],
    ['GET', '/oauth/introspect', ['POST']],
    ['PUT', '/oauth/introspect', ['POST']],
    ['DELETE', '/oauth/introspect', ['POST']],
    ['GET', '/oauth/revoke', ['POST']],
    ['DELETE', '/oauth/revoke', ['POST']],
    ['POST', '/.well-known/jwks.json', ['GET', 'HEAD']],
    ['POST', '/.well-known/oauth-authorization-server', ['GET', 'HEAD']],
    ['POST', '/healthz', ['GET', 'HEAD']],
    ['DELETE', '/readyz', ['GET', 'HEAD']],
    ['GET', '/hooks/hr', ['POST']],
    ['DELETE', '/hooks/okta', ['GET', 'HEAD', 'POST']],
    ['GET', '/ssf/events', ['POST']],
    ['DELETE', '/v1/principals/alice', ['GET', 'HEAD'], { authorization: `Bearer ${adminToken}` }],
    ['GET', '/v1/principals', ['POST'], { authorization: `Bearer ${adminToken}` }],
    ['POST', '/v1/targets/x', ['DELETE', 'GET', 'HEAD', 'PUT'], { authorization: `Bearer ${adminToken}` }],
    ['GET', '/v1/tokens/j/revoke', ['POST'], { authorization: `Bearer ${adminToken}` }]
  ]
  for (const [method, path, allow, headers] of cases) {
    const r = await fetch(b.url + path, { method, headers })
    t.equal(r.status, 405, `${method} ${path}`)
    t.same(allowOf(r), allow, `${method} ${path}: Allow`)
    const body = await bodyOf(r)
    t.equal(body.error, 'invalid_request', `${method} ${path}: error`)
    t.type(body.error_description, 'string')
    t.same(Object.keys(body).sort(), ['error', 'error_description'])
    if (path.startsWith('/oauth/')) t.equal(r.headers.get('cache-control'), 'no-store', `${method} ${path}: no-store`)
  }
})

t.test('the admin API still asks for its token before it says anything about methods', async (t) => {
  const r = await fetch(`${b.url}/v1/principals/alice`, { method: 'DELETE' })
  t.equal(r.status, 401)
})

t.test('unknown paths stay 404, and OPTIONS and HEAD keep working', async (t) => {
  const unknown = await fetch(`${b.url}/oauth/nothing`)
  t.equal(unknown.status, 404)
  t.equal((await bodyOf(unknown)).error, 'not_found')
  const options = await fetch(`${b.url}/oauth/token`, { method: 'OPTIONS' })
  t.equal(options.status, 200)
  t.same(allowOf(options), ['POST'])
  await options.arrayBuffer()
  const head = await fetch(`${b.url}/healthz`, { method: 'HEAD' })
  t.equal(head.status, 200)
})

t.test('OPTIONS on a path the app itself routes (/healthz, /readyz, /metrics) is 200 with Allow, as on every other known path', async (t) => {
  for (const path of ['/healthz', '/readyz', '/metrics', '/oauth/token', '/.well-known/jwks.json', '/hooks/okta']) {
    const r = await fetch(b.url + path, { method: 'OPTIONS' })
    t.equal(r.status, 200, `OPTIONS ${path}`)
    t.ok(allowOf(r).length > 0, `OPTIONS ${path}: Allow`)
    await r.arrayBuffer()
  }
  const r = await fetch(`${b.url}/healthz`, { method: 'OPTIONS' })
  t.same(allowOf(r), ['GET', 'HEAD'])
  await r.arrayBuffer()
})

t.test('an OAuth endpoint spelled in another case (the router ignores case) still answers with no-store', async (t) => {
  for (const [method, path] of [['GET', '/OAUTH/TOKEN'], ['PUT', '/OAuth/Introspect'], ['GET', '/oauth/Nothing']]) {
    const r = await fetch(b.url + path, { method })
    t.equal(r.headers.get('cache-control'), 'no-store', `${method} ${path}`)
    await r.arrayBuffer()
  }
})
