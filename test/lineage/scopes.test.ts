import t from 'tap'
import { covers, intersect, scopeProblem, targetsOf, uncovered } from '../../src/lineage/scopes.js'

t.test('a wildcard covers every action on its own target and nothing else', async (t) => {
  t.ok(covers(['db:*'], 'db:write'))
  t.ok(covers(['db:read'], 'db:read'))
  t.notOk(covers(['db:read'], 'db:write'))
  t.notOk(covers(['db:*'], 'api:read'))
  t.notOk(covers(['db:*'], 'dbx:read'))
  t.same(uncovered(['api:read', 'db:*'], ['api:write', 'db:ddl', 'ssh:exec']), ['api:write', 'ssh:exec'])
})

t.test("a service's usable scopes are its grants intersected with its sponsor's", async (t) => {
  t.same(intersect(['db:*', 'api:read'], ['db:read', 'api:*']), ['api:read', 'db:read'])
  t.same(intersect(['db:*'], ['db:*']), ['db:*'])
  t.same(intersect(['ssh:exec'], ['db:*']), [])
})

t.test('malformed scopes and unknown actions are named', async (t) => {
  t.equal(scopeProblem('db:read'), undefined)
  t.equal(scopeProblem('db:*'), undefined)
  t.match(scopeProblem('db'), /not <target>:<action>/)
  t.match(scopeProblem('db:drop'), /unknown action/)
  t.match(scopeProblem('DB:read'), /not <target>:<action>/)
  t.same(targetsOf(['api:read', 'db:read', 'api:write']), ['api', 'db'])
})
