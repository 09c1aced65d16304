import t from 'tap'
import { maskRules, parsePolicy, policyRefusal, type PolicyRequest } from '../../src/gateway/policy.js'

const request = (q: Partial<PolicyRequest>): PolicyRequest => ({ action: 'read', depth: 1, principals: ['alice'], actor: 'agent', ...q })

t.test('a paths rule matches the path as sent and as servers read it: // collapsed, ;parameters dropped, escapes decoded, any letter case', async (t) => {
  const policy = parsePolicy({ rules: [{ effect: 'deny', methods: ['DELETE'], paths: ['/admin/*', '/v1/*:batchDelete', '/files/my report*', '/caf%c3%a9/*', '/naïve/*'], reason: 'no' }] })
  for (const path of ['/admin/x', '//admin/x', '/admin//x', '/admin;v=1/x', '/admin/;/x', '/Admin/x', '/ADMIN/x', '/v1/users%3AbatchDelete', '/v1/users%3abatchdelete',
    '/files/my%20report.pdf', '/caf%C3%A9/x', '/na%C3%AFve/x']) {
    t.equal(policyRefusal(policy, request({ action: 'write', method: 'DELETE', path })), 'denied by policy: no', path)
  }
  for (const path of ['/administrator', '/x/admin', '/admin', '/v1/users:batchGet', '/files/other', '/caf%E9/x']) {
    t.equal(policyRefusal(policy, request({ action: 'write', method: 'DELETE', path })), undefined, path)
  }
})

t.test('a paths rule matches the path without its trailing slash, as Express and Rails route it', async (t) => {
  const policy = parsePolicy({ rules: [{ effect: 'deny', paths: ['/admin', '/users/*/delete'], reason: 'no' }] })
  for (const path of ['/admin', '/admin/', '/admin//', '/ADMIN/', '/admin;x/', '/users/7/delete/', '//h/admin/']) {
    t.equal(policyRefusal(policy, request({ path })), 'denied by policy: no', path)
  }
  for (const path of ['/admin/x', '/administrator/', '/users/7/deleted/', '/']) t.equal(policyRefusal(policy, request({ path })), undefined, path)
  t.equal(policyRefusal(parsePolicy({ rules: [{ effect: 'deny', paths: ['/'] }] }), request({ path: '//' })), 'denied by policy', 'the root is still the root')
})

t.test('a paths rule matches a path starting with // as a WHATWG URL parser reads it: its first segment a host, dropped', async (t) => {
  // `new URL('//x/admin/users/7', base).pathname` is `/admin/users/7`, the way a server that follows Node's documentation reads `req.url`.
  const policy = parsePolicy({ rules: [{ effect: 'deny', methods: ['DELETE'], paths: ['/admin/*', '/'], reason: 'no' }] })
  for (const path of ['//evil.example/admin/users/7', '///evil/admin/users/7', '//x/admin;v=1/users/7', '//x/%61dmin/users/7', '//x/ADMIN/x', '//x', '//x/']) {
    t.equal(policyRefusal(policy, request({ action: 'write', method: 'DELETE', path })), 'denied by policy: no', path)
  }
  for (const path of ['/x/admin/users/7', '//x/y/admin/users/7']) {
    t.equal(policyRefusal(policy, request({ action: 'write', method: 'DELETE', path })), undefined, path)
  }
})

t.test('a glob is matched in time proportional to the pattern and value, however many * it has', async (t) => {
  const policy = parsePolicy({ rules: [{ effect: 'deny', paths: ['*/a/*/a/*/a/*/zz'], reason: 'path' }, { effect: 'deny', actors: ['*-*-*-*-*-x'], reason: 'actor' }] })
  const started = performance.now()
  t.equal(policyRefusal(policy, request({ path: `${'/a'.repeat(400)}/`, actor: `${'-'.repeat(128)}y` })), undefined)
  t.ok(performance.now() - started < 200, `${Math.round(performance.now() - started)} ms`)
  t.equal(policyRefusal(policy, request({ path: '/q/a/b/a/c/A/x/zz' })), 'denied by policy: path', 'a match is still one, in any letter case')
  t.equal(policyRefusal(policy, request({ path: '/x', actor: 'a-b-c-d--x' })), 'denied by policy: actor')
})

t.test('a methods rule is a glob compared upper-cased, and a rule naming GET also refuses HEAD', async (t) => {
  const policy = parsePolicy({ rules: [{ effect: 'deny', methods: ['P*', 'get', 'DEL?TE'], reason: 'no' }] })
  for (const method of ['POST', 'PUT', 'PATCH', 'PROPFIND', 'GET', 'get', 'HEAD', 'DELETE']) {
    t.equal(policyRefusal(policy, request({ method, path: '/x' })), 'denied by policy: no', method)
  }
  for (const method of ['OPTIONS', 'MKCOL', 'DELETES']) t.equal(policyRefusal(policy, request({ method, path: '/x' })), undefined, method)
  const heads = parsePolicy({ rules: [{ effect: 'deny', methods: ['HEAD'] }] })
  t.equal(policyRefusal(heads, request({ method: 'GET' })), undefined, 'a rule naming HEAD leaves GET alone')
  t.equal(policyRefusal(parsePolicy({ rules: [{ effect: 'deny', methods: ['G*'] }] }), request({ method: 'HEAD' })), 'denied by policy', 'HEAD is judged as GET too')
})

t.test('a mask rule limited to tables applies to statements that name no table, which may return any', async (t) => {
  const policy = parsePolicy({ rules: [{ effect: 'mask', columns: ['*.ssn'], with: 'last4', tables: ['customers'] }] })
  t.equal(maskRules(policy, request({ tables: ['customers'] })).length, 1)
  t.equal(maskRules(policy, request({ tables: ['orders'] })).length, 0, 'a statement on other tables only')
  t.equal(maskRules(policy, request({ tables: [] })).length, 1, 'FETCH, EXECUTE')
})

t.test('a mask rule for reads covers every statement that returns rows, a write\'s RETURNING included', async (t) => {
  const policy = parsePolicy({ rules: [{ effect: 'mask', columns: ['*.ssn'], with: 'redact', actions: ['read'], tables: ['customers'] }] })
  for (const action of ['read', 'write', 'ddl', 'admin'] as const) {
    t.equal(maskRules(policy, request({ action, tables: ['customers'] })).length, 1, action)
  }
  t.equal(maskRules(policy, request({ action: 'write', tables: ['orders'] })).length, 0, 'its other conditions still count')
  const writes = parsePolicy({ rules: [{ effect: 'mask', columns: ['*.ssn'], with: 'redact', actions: ['write'] }] })
  t.equal(maskRules(writes, request({ action: 'write' })).length, 1)
  t.equal(maskRules(writes, request({ action: 'read' })).length, 0, 'a rule for writes only masks what writes return')
})

t.test('a tables rule on a schema\'s table matches the name unqualified, which the search path may resolve there', async (t) => {
  const policy = parsePolicy({ rules: [{ effect: 'deny', tables: ['app.secret*'], reason: 'no' }, { effect: 'deny', tables: ['vault.*'], reason: 'vault' }] })
  const refusal = (tables: string[]): string | undefined => policyRefusal(policy, request({ tables }))
  t.equal(refusal(['secret2']), 'denied by policy: no')
  t.equal(refusal(['app.secret2']), 'denied by policy: no')
  t.equal(refusal(['other.secret2']), undefined, 'qualified with another schema')
  t.equal(refusal(['vault.keys']), 'denied by policy: vault')
  t.equal(refusal(['keys']), undefined, 'a whole schema matches only names qualified with it')
})

t.test('a rule naming an action that does not exist is refused, as a grant naming one is, rather than saved to match nothing', async (t) => {
  for (const actions of [['delete'], ['Write'], ['read', 'writes'], ['*']]) {
    t.throws(() => parsePolicy({ rules: [{ effect: 'deny', actions }] }), { code: 'ERR_INVALID_INPUT', message: /policy\.rules\[0\]\.actions/ }, actions.join(' '))
  }
  t.same(parsePolicy({ rules: [{ effect: 'deny', actions: ['read', 'write', 'ddl', 'admin', 'exec', 'shell', 'tunnel'] }] }).rules[0].actions, ['read', 'write', 'ddl', 'admin', 'exec', 'shell', 'tunnel'])
})

t.test('a paths pattern no request path can match (one not starting with / or a wildcard) is refused rather than saved to refuse nothing', async (t) => {
  for (const paths of [['admin/*'], ['/ok', 'v1/users']]) {
    t.throws(() => parsePolicy({ rules: [{ effect: 'deny', paths }] }), { code: 'ERR_INVALID_INPUT', message: /policy\.rules\[0\]\.paths/ }, paths.join(' '))
  }
  t.same(parsePolicy({ rules: [{ effect: 'deny', paths: ['/admin/*', '*.php', '?admin'] }] }).rules[0].paths, ['/admin/*', '*.php', '?admin'])
})

t.test('a methods pattern no method can match (a list in one string, a space) is refused rather than saved to refuse nothing', async (t) => {
  for (const methods of [['GET, POST'], ['DELETE', 'PUT,PATCH'], ['DELETE ']]) {
    t.throws(() => parsePolicy({ rules: [{ effect: 'deny', methods }] }), { code: 'ERR_INVALID_INPUT', message: /policy\.rules\[0\]\.methods/ }, methods.join('|'))
  }
  t.same(parsePolicy({ rules: [{ effect: 'deny', methods: ['delete', 'P*', 'M-SEARCH', 'GE?'] }] }).rules[0].methods, ['delete', 'P*', 'M-SEARCH', 'GE?'])
})

t.test('a condition or mask no request to the target\'s kind has (tables on http, paths on postgres) is refused rather than saved to match nothing', async (t) => {
  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    ['http', { effect: 'deny', tables: ['payroll'] }, /policy\.rules\[0\]\.tables is a condition of postgres targets/],
    ['http', { effect: 'deny', statements: ['drop'] }, /policy\.rules\[0\]\.statements/],
    ['http', { effect: 'deny', commands: ['rm *'] }, /policy\.rules\[0\]\.commands is a condition of ssh targets/],
    ['http', { effect: 'mask', columns: ['*.ssn'], with: 'redact' }, /policy\.rules\[0\]: mask rules are for postgres targets/],
    ['postgres', { effect: 'deny', methods: ['DELETE'] }, /policy\.rules\[0\]\.methods is a condition of http targets/],
    ['postgres', { effect: 'deny', actions: ['write'], paths: ['/admin/*'] }, /policy\.rules\[0\]\.paths/],
    ['ssh', { effect: 'deny', tables: ['payroll'] }, /policy\.rules\[0\]\.tables/]
  ]
  for (const [kind, rule, message] of refused) {
    t.throws(() => parsePolicy({ rules: [rule] }, kind as 'http' | 'postgres' | 'ssh'), { code: 'ERR_INVALID_INPUT', message }, `${kind}: ${JSON.stringify(rule)}`)
  }
  const common = { effect: 'deny', min_depth: 1, max_depth: 4, principals: ['mallory'], actors: ['rogue-*'] }
  for (const kind of ['http', 'postgres', 'ssh'] as const) t.equal(parsePolicy({ rules: [common] }, kind).rules.length, 1, `conditions every request has pass on ${kind}`)
  t.equal(parsePolicy({ rules: [{ effect: 'deny', methods: ['DELETE'], paths: ['/admin/*'] }] }, 'http').rules.length, 1)
  t.equal(parsePolicy({ rules: [{ effect: 'deny', tables: ['payroll'], statements: ['drop'] }, { effect: 'mask', columns: ['*.ssn'], with: 'redact' }] }, 'postgres').rules.length, 2)
  t.equal(parsePolicy({ rules: [{ effect: 'deny', commands: ['rm *'] }] }, 'ssh').rules.length, 1)
})

t.test('a rule whose actions no request to the target\'s kind has (ddl on http, write on ssh) is refused rather than saved to match nothing', async (t) => {
  const refused: Array<[string, string[]]> = [['http', ['ddl']], ['http', ['admin', 'exec']], ['postgres', ['exec']], ['ssh', ['write', 'admin']]]
  for (const [kind, actions] of refused) {
    t.throws(() => parsePolicy({ rules: [{ effect: 'deny', actions }] }, kind as 'http' | 'postgres' | 'ssh'), { code: 'ERR_INVALID_INPUT', message: /policy\.rules\[0\]\.actions/ }, `${kind}: ${actions.join(' ')}`)
  }
  t.equal(parsePolicy({ rules: [{ effect: 'deny', actions: ['write', 'ddl'], min_depth: 2 }] }, 'http').rules.length, 1, 'a rule one of whose actions the kind has still matches those requests')
  t.equal(parsePolicy({ rules: [{ effect: 'deny', actions: ['ddl'] }] }, 'postgres').rules.length, 1)
  t.equal(parsePolicy({ rules: [{ effect: 'deny', actions: ['shell'] }] }, 'ssh').rules.length, 1)
})

t.test('a mask column written without its table (email), which no column can match, is refused rather than saved to mask nothing', async (t) => {
  for (const columns of [['email'], ['customers.email', 'ssn']]) {
    t.throws(() => parsePolicy({ rules: [{ effect: 'mask', columns, with: 'redact' }] }), { code: 'ERR_INVALID_INPUT', message: /policy\.rules\[0\]\.columns/ }, columns.join(' '))
  }
  const policy = parsePolicy({ rules: [{ effect: 'mask', columns: ['customers.email', '*.ssn', 'app.customers.phone', '*card'], with: 'redact' }] })
  t.same(maskRules(policy, request({})).map((r) => r.columns), [['customers.email', '*.ssn', 'app.customers.phone', '*card']], 'table.column, schema.table.column, and globs that may span the dot')
})

t.test('a rule whose min_depth is above its max_depth is refused rather than saved to match no token', async (t) => {
  t.throws(() => parsePolicy({ rules: [{ effect: 'deny', min_depth: 3, max_depth: 1 }] }), { code: 'ERR_INVALID_INPUT', message: /policy\.rules\[0\]: min_depth 3 is above max_depth 1/ })
  t.equal(parsePolicy({ rules: [{ effect: 'deny', min_depth: 2, max_depth: 2 }] }).rules.length, 1, 'one depth only')
})
