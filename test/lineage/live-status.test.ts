import t from 'tap'
import { LiveStatus, type PrincipalState } from '../../src/lineage/live-status.js'
import type { LineageClaim } from '../../src/lineage/claims.js'

const human = (id: string, extra: Partial<PrincipalState> = {}): PrincipalState => ({ id, kind: 'human', status: 'active', sponsor: null, endsAt: null, cutOffAt: null, ...extra })
const service = (id: string, sponsor: string): PrincipalState => ({ id, kind: 'service', status: 'active', sponsor, endsAt: null, cutOffAt: null })
const lineage = (chain: string[], rootedAt = 1000): LineageClaim => ({ chain, principals: ['alice', 'ci'], depth: chain.length, rooted_at: rootedAt })

function view (): LiveStatus {
  const v = new LiveStatus()
  v.reset({ seq: 1, principals: [human('alice'), service('ci', 'alice'), human('bob')], revoked: [] })
  return v
}

t.test('a chain is live when no ancestor is revoked and every principal is active', async (t) => {
  t.equal(view().check('c', lineage(['r', 'p']), 2000), undefined)
})

t.test('revoking an ancestor cuts off every descendant, naming the ancestor', async (t) => {
  const v = view()
  v.apply({ seq: 2, kind: 'token.revoked', data: { jti: 'r', exp: 9e9 } })
  t.match(v.check('c', lineage(['r', 'p']), 2000), { code: 'ancestor_revoked', subject: 'r' })
  t.match(v.check('r', lineage([]), 2000), { code: 'token_revoked' })
  t.equal(v.check('x', lineage(['other']), 2000), undefined)
  t.equal(v.seq, 2)
})

t.test('an offboarded sponsor cuts off chains of the services it sponsors', async (t) => {
  const v = view()
  v.apply({ seq: 2, kind: 'principal', data: { id: 'alice', kind: 'human', status: 'offboarded', sponsor: null, ends_at: null, cut_off_at: 1500 } })
  t.match(v.check('c', lineage(['r']), 2000), { code: 'principal_inactive', subject: 'alice' })
})

t.test('a reinstated principal does not bring back chains rooted before its cut-off', async (t) => {
  const v = view()
  v.apply({ seq: 2, kind: 'principal', data: { id: 'alice', kind: 'human', status: 'active', sponsor: null, ends_at: null, cut_off_at: 1500 } })
  t.match(v.check('c', lineage(['r'], 1400), 2000), { code: 'principal_cut_off' })
  t.equal(v.check('c', lineage(['r'], 1600), 2000), undefined)
})

t.test('an end date cuts off at that instant with no job running', async (t) => {
  const v = view()
  v.apply({ seq: 2, kind: 'principal', data: { id: 'alice', kind: 'human', status: 'active', sponsor: null, ends_at: 5000, cut_off_at: null } })
  t.equal(v.check('c', lineage([]), 4999), undefined)
  t.match(v.check('c', lineage([]), 5000), { code: 'principal_ended' })
})

t.test('a service whose sponsor changed no longer honours chains naming the old sponsor', async (t) => {
  const v = view()
  v.apply({ seq: 2, kind: 'principal', data: { id: 'ci', kind: 'service', status: 'active', sponsor: 'bob', ends_at: null, cut_off_at: null } })
  t.match(v.check('c', lineage([]), 2000), { code: 'sponsor_changed', subject: 'ci' })
})

t.test('a service whose sponsor was lost to an offboarding honours no chain, and says so', async (t) => {
  const v = view()
  const seen: unknown[] = []
  v.onCutOff((e) => seen.push(e))
  t.equal(v.check('c', lineage([]), 2000), undefined)
  v.apply({ seq: 2, kind: 'principal', data: { id: 'ci', kind: 'service', status: 'active', sponsor: 'alice', ends_at: null, cut_off_at: null, sponsor_lapsed: true } })
  t.match(v.check('c', lineage([]), 2000), { code: 'sponsor_changed', subject: 'ci', message: /lost its sponsor alice to an offboarding/ })
  t.same(seen, [{ kind: 'principal', id: 'ci' }], 'announced, so live connections are re-checked')
})

t.test('an unknown principal fails closed', async (t) => {
  t.match(view().check('c', { chain: [], principals: ['mallory'], depth: 0, rooted_at: 1 }, 2000), { code: 'principal_unknown' })
})

t.test('revocations are forgotten once their token has expired, and cut-offs are announced', async (t) => {
  const v = view()
  const seen: unknown[] = []
  v.onCutOff((e) => seen.push(e))
  v.apply({ seq: 2, kind: 'token.revoked', data: { jti: 'old', exp: 100 } })
  v.apply({ seq: 3, kind: 'token.revoked', data: { jti: 'new', exp: 300 } })
  t.equal(v.forgetExpired(200), 1)
  t.notOk(v.isRevoked('old'))
  t.ok(v.isRevoked('new'))
  t.same(seen, [{ kind: 'token', jti: 'old' }, { kind: 'token', jti: 'new' }])
})
