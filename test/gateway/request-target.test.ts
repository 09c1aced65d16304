import t from 'tap'
import { BadRequest, checkMethod, checkOverrides, checkTokenElsewhere, parseRequestTarget, recordedPath } from '../../src/gateway/http/request-target.js'

t.test('splits the target, the raw path below it and the query', async (t) => {
  t.same(parseRequestTarget('/api'), { target: 'api', path: '/', query: '' })
  t.same(parseRequestTarget('/api/'), { target: 'api', path: '/', query: '' })
  t.same(parseRequestTarget('/api/v1/items?limit=10&q=a%20b'), { target: 'api', path: '/v1/items', query: '?limit=10&q=a%20b' })
  t.same(parseRequestTarget('/api//x'), { target: 'api', path: '//x', query: '' })
  t.same(parseRequestTarget('/api/a%20b/report.csv'), { target: 'api', path: '/a%20b/report.csv', query: '' })
  t.same(parseRequestTarget('/api/x?next=a.b&xaccess_token=1'), { target: 'api', path: '/x', query: '?next=a.b&xaccess_token=1' })
})

t.test('escapes of unreserved characters are decoded and other escapes upper-cased, so the policy and the upstream read one path', async (t) => {
  t.same(parseRequestTarget('/api/%61dmin/x'), { target: 'api', path: '/admin/x', query: '' })
  t.same(parseRequestTarget('/api/a%2db%5F%7e%2E'), { target: 'api', path: '/a-b_~.', query: '' })
  t.same(parseRequestTarget('/api/caf%c3%a9%20x'), { target: 'api', path: '/caf%C3%A9%20x', query: '' })
  t.same(parseRequestTarget('/%61pi/x'), { target: 'api', path: '/x', query: '' })
  t.same(parseRequestTarget('/api/x?q=%zz'), { target: 'api', path: '/x', query: '?q=%zz' }, 'the query is passed on as it came')
  for (const url of ['/api/%zz', '/api/a%4', '/api/a%', '/api/%%41', '/api/%4/x']) t.throws(() => parseRequestTarget(url), { message: /malformed percent-encoding/ }, url)
})

t.test('a URL that names no target is undefined', async (t) => {
  for (const url of ['/', '//api/x', '/API/x', '/-api/x', `/${'a'.repeat(64)}/x`]) t.equal(parseRequestTarget(url), undefined, url)
})

t.test('dot segments, encoded slashes, backslashes and query tokens are refused', async (t) => {
  for (const url of ['api/x', '/api/../other/x', '/api/./x', '/api/%2e%2E/x', '/api/.%2e', '/api/a%2fb', '/api/a%5Cb', '/api/a\\b', '/api/x/..;/admin', '/api/%2e%2e;x/y', '/api/.;a/y',
    '/api/x?access_token=abc', '/api/x?a=1&access_token=abc', '/api/x?ACCESS_TOKEN=abc', '/api/x?access%5Ftoken=abc', '/api/x?a=1;access_token=abc', '/api/x?%61ccess_token=abc']) {
    t.throws(() => parseRequestTarget(url), BadRequest, url)
  }
})

t.test('a # anywhere in the request target is refused: origin-form has no fragment', async (t) => {
  for (const url of ['/api/x#bypass', '/api/admin#', '/api#/admin', '/api/x?a=1#frag', '/api/x?#']) {
    t.throws(() => parseRequestTarget(url), { code: 'ERR_BAD_REQUEST', status: 400, message: /fragment/ }, url)
  }
  t.same(parseRequestTarget('/api/x%23y'), { target: 'api', path: '/x%23y', query: '' }, 'an escaped # is part of the path')
})

t.test('TRACE and TRACK are refused with 405, other methods pass', async (t) => {
  for (const m of ['TRACE', 'TRACK', 'trace']) t.throws(() => { checkMethod(m) }, { code: 'ERR_METHOD_NOT_ALLOWED', status: 405 }, m)
  for (const m of ['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS', 'PROPFIND', 'TRACER']) t.doesNotThrow(() => { checkMethod(m) }, m)
})

t.test('headers that would have the upstream run another method or path than the one checked are refused', async (t) => {
  t.throws(() => { checkOverrides('GET', { 'x-http-method-override': 'DELETE' }) }, { code: 'ERR_BAD_REQUEST', status: 400, message: /x-http-method-override is refused/ })
  t.throws(() => { checkOverrides('POST', { 'x-http-method': 'put' }) }, { code: 'ERR_BAD_REQUEST', status: 400 })
  t.throws(() => { checkOverrides('POST', { 'x-method-override': 'DELETE, GET' }) }, { code: 'ERR_BAD_REQUEST', status: 400 })
  t.throws(() => { checkOverrides('GET', { 'x-original-url': '/admin/x' }) }, { status: 400, message: /x-original-url is refused/ })
  t.throws(() => { checkOverrides('GET', { 'x-rewrite-url': '/admin/x' }) }, { code: 'ERR_BAD_REQUEST', status: 400 })
  t.doesNotThrow(() => { checkOverrides('PATCH', { 'x-http-method-override': ' patch ' }) }, 'naming the request\'s own method')
  t.doesNotThrow(() => { checkOverrides('GET', { accept: '*/*' }) })
})

t.test('a _method query parameter naming another method is refused: Laravel and Express\'s method-override run a POST as it says', async (t) => {
  // PHP makes a `.` in a name `_`: Laravel reads `.method` as `_method`.
  for (const query of ['?_method=DELETE', '?a=1&_method=delete', '?a=1;_METHOD=PUT', '?%5Fmethod=DELETE', '?_method=%44ELETE', '?_method=GET', '?_method', '?.method=DELETE', '?a=1&%2Emethod=PUT']) {
    t.throws(() => { checkOverrides('POST', {}, query) }, { code: 'ERR_BAD_REQUEST', status: 400, message: /_method query parameter is refused/ }, query)
  }
  for (const query of ['', '?', '?_method=post', '?x_method=DELETE', '?method=DELETE', '?q=_method%3DDELETE', '?x.method=DELETE']) t.doesNotThrow(() => { checkOverrides('POST', {}, query) }, query)
})

t.test('a bearer token also sent in the query or another header is refused: the upstream would get it', async (t) => {
  const token = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln'
  t.throws(() => { checkTokenElsewhere(token, `?token=${token}`, { authorization: `Bearer ${token}` }) }, { code: 'ERR_BAD_REQUEST', message: /tokens in the query string are refused/ })
  t.throws(() => { checkTokenElsewhere(token, '', { authorization: `Bearer ${token}`, cookie: `a=1; t=${token}` }) }, { code: 'ERR_BAD_REQUEST', message: /refused in cookie/ })
  t.throws(() => { checkTokenElsewhere(token, '', { 'x-api-key': token }) }, { code: 'ERR_BAD_REQUEST', message: /refused in x-api-key/ })
  t.doesNotThrow(() => { checkTokenElsewhere(token, '?a=1', { authorization: `Bearer ${token}`, cookie: 'a=1' }) })
})

t.test('anything shaped like a token is recorded as [token], in time proportional to the path however many eyJ it holds', async (t) => {
  const shaped = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln'
  t.equal(recordedPath(`/a/${shaped}/b/eyJx.y./eyJ-only/eyJa.b`), '/a/[token]/b/[token]/eyJ-only/eyJa.b')
  t.equal(recordedPath(`/eyJeyJ${shaped}x`), '/[token]', 'from the first eyJ of its run')
  t.equal(recordedPath('/eyJa.eyJb.c'), '/[token]')
  t.equal(recordedPath('/eyJa..eyJb.c.d'), '/eyJa..[token]', 'a header with no payload starts none; one after it may')
  // Text shaped like a token's start, put before one, would have the token's header read as its signature: the rest of the token recorded.
  t.equal(recordedPath(`/eyJa.b.${shaped}`), '/[token]', 'a token after text that reads as one\'s start')
  t.equal(recordedPath(`/xeyJ.${shaped}/y`), '/x[token]/y')
  const started = performance.now()
  t.equal(recordedPath(`/${'eyJ'.repeat(20_000)}`), `/${'eyJ'.repeat(20_000)}`)
  t.ok(performance.now() - started < 100, `${Math.round(performance.now() - started)} ms`)
})
