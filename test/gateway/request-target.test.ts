import t from 'tap'
import { BadRequest, parseRequestTarget } from '../../src/gateway/http/request-target.js'

t.test('splits the target, the raw path below it and the query', async (t) => {
  t.same(parseRequestTarget('/api'), { target: 'api', path: '/', query: '' })
  t.same(parseRequestTarget('/api/'), { target: 'api', path: '/', query: '' })
  t.same(parseRequestTarget('/api/v1/items?limit=10&q=a%20b'), { target: 'api', path: '/v1/items', query: '?limit=10&q=a%20b' })
  t.same(parseRequestTarget('/api//x'), { target: 'api', path: '//x', query: '' })
  t.same(parseRequestTarget('/api/a%20b/report.csv'), { target: 'api', path: '/a%20b/report.csv', query: '' })
  t.same(parseRequestTarget('/api/x?next=a.b&xaccess_token=1'), { target: 'api', path: '/x', query: '?next=a.b&xaccess_token=1' })
})

t.test('a URL that names no target is undefined', async (t) => {
  for (const url of ['/', '//api/x', '/API/x', '/-api/x', `/${'a'.repeat(64)}/x`]) t.equal(parseRequestTarget(url), undefined, url)
})

t.test('dot segments, encoded slashes, backslashes and query tokens are refused', async (t) => {
  for (const url of ['api/x', '/api/../other/x', '/api/./x', '/api/%2e%2E/x', '/api/.%2e', '/api/a%2fb', '/api/a%5Cb', '/api/a\\b', '/api/x?access_token=abc', '/api/x?a=1&access_token=abc']) {
    t.throws(() => parseRequestTarget(url), BadRequest, url)
  }
})
