import t from 'tap'
import { VerifiedTokens } from '../../src/lineage/verified-tokens.js'
import type { KeyLookup } from '../../src/lineage/verify.js'
import { adminToken, exchangeToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
t.teardown(b.close)
const client = await seedContractor(b)
const adminAuth = { authorization: `Bearer ${adminToken}` }

t.test('a broker whose view stops being provably current while it verifies a token (reading its keys) refuses, rather than judging the chain on that view', async (t) => {
  const root = await rootToken(b, client)
  const ctx = b.broker.ctx
  const { sync, verifier, verified } = ctx
  let down = false
  // The database stops answering while the keys are read: a cut-off committed since would be unknown here.
  ctx.sync = { ...sync, freshAt: () => down ? b.clock.now() - 60_000 : sync.freshAt(), catchUp: async () => { if (down) throw new Error('the database does not answer'); await sync.catchUp() } }
  const slowKeys: KeyLookup = async (kid) => { down = true; return await verifier(kid) }
  ctx.verifier = slowKeys
  t.teardown(() => { ctx.sync = sync; ctx.verifier = verifier; ctx.verified = verified })
  const unverified = (): void => {
    down = false
    // Not verified before in this process: its signature is checked, and the keys looked up.
    ctx.verified = new VerifiedTokens()
  }
  unverified()
  const exchanged = await exchangeToken(b, root)
  t.equal(exchanged.status, 503)
  t.match(exchanged.body.error_description, /live-status view is \d+ ms old/)
  unverified()
  t.same((await b.form('/oauth/introspect', { token: root }, adminAuth)).body, { active: false })
})

t.test('a chain naming a principal this broker has not seen, when the log cannot be read to find it, is refused 503, never a 500', async (t) => {
  const root = await rootToken(b, client)
  const ctx = b.broker.ctx
  const { sync, view } = ctx
  // As on a broker that has not yet read the principal another process just created, while its database stops answering.
  ctx.view = Object.assign(Object.create(view) as typeof view, { check: () => ({ code: 'principal_unknown', message: 'principal not known here' }) })
  ctx.sync = { ...sync, catchUp: async () => { throw new Error('the database does not answer') } }
  t.teardown(() => { ctx.sync = sync; ctx.view = view })
  const exchanged = await exchangeToken(b, root)
  t.equal(exchanged.status, 503)
  t.match(exchanged.body, { error: 'temporarily_unavailable', error_description: /could not be read to find a principal/ })
  t.same((await b.form('/oauth/introspect', { token: root }, adminAuth)).body, { active: false })
})

t.test('a broker whose view is stale and whose database does not answer the catch-up (every pooled connection held) refuses 503 within the staleness limit, rather than holding the request', async (t) => {
  const root = await rootToken(b, client)
  const ctx = b.broker.ctx
  const { sync, maxStalenessMs } = ctx
  // A read queued behind connections that wait on a lock someone holds: it never ends while they do.
  ctx.sync = { ...sync, freshAt: () => b.clock.now() - 60_000, catchUp: async () => await new Promise<void>(() => {}) }
  ctx.maxStalenessMs = 300
  t.teardown(() => { ctx.sync = sync; ctx.maxStalenessMs = maxStalenessMs })
  const within = async <T>(p: Promise<T>): Promise<T | 'held'> => await Promise.race([p, new Promise<'held'>((resolve) => setTimeout(() => resolve('held'), 5000))])
  const exchanged = await within(exchangeToken(b, root))
  t.match(exchanged, { status: 503, body: { error: 'temporarily_unavailable' } })
  const introspected = await within(b.form('/oauth/introspect', { token: root }, adminAuth))
  t.match(introspected, { status: 200, body: { active: false } })
})
