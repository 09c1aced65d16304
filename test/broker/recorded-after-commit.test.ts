import t from 'tap'
import { revokeByJti } from '../../src/broker/revoke.js'
import { cutOffChains } from '../../src/broker/cut-off-chains.js'
import { setStatus } from '../../src/broker/set-status.js'
import type { BrokerContext } from '../../src/broker/context.js'
import type { Db } from '../../src/storage/db.js'
import { claimsOf, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
t.teardown(b.close)
const client = await seedContractor(b)

/**
 * The broker's context on a database whose connection is lost once the next transaction has
 * committed: every later statement fails, as when the answer to a COMMIT is the last thing
 * that gets through.
 */
function lostAfterCommit (): BrokerContext {
  const db = b.broker.ctx.db
  let lost = false
  const flaky: Db = {
    ...db,
    query: async (sql, params) => { if (lost) throw new Error('connection terminated'); return await db.query(sql, params) },
    tx: async (fn) => {
      if (lost) throw new Error('connection terminated')
      const out = await db.tx(fn)
      lost = true
      return out
    }
  }
  return { ...b.broker.ctx, db: flaky }
}

async function recorded (kind: string, where: Record<string, unknown>): Promise<Array<Record<string, unknown>>> {
  await b.broker.ctx.audit.flush()
  const r = await b.admin('GET', '/v1/audit?limit=1000')
  return (r.body.events as Array<Record<string, unknown>>).filter((e) => e.kind === kind && Object.entries(where).every(([k, v]) => JSON.stringify(e[k]) === JSON.stringify(v)))
}

t.test('a revocation that committed is recorded even when counting what it cut off fails', async (t) => {
  const { jti } = claimsOf(await rootToken(b, client))
  await t.rejects(revokeByJti(lostAfterCommit(), jti, 'leaked'), /connection terminated/)
  t.equal((await b.admin('GET', `/v1/tokens/${jti}`)).body.status, 'revoked', 'the revocation took effect')
  const events = await recorded('token.revoked', { jti })
  t.equal(events.length, 1)
  t.match(events[0], { root: jti, principals: ['alice', 'ci-nightly'], detail: { by: 'admin', reason: 'leaked', revoked: null } })
})

t.test('an offboarding that committed is recorded even when counting the tokens it cut off fails', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'frank', kind: 'human' })
  await t.rejects(setStatus(lostAfterCommit(), 'frank', 'offboarded', { reason: 'contract ended' }), /connection terminated/)
  t.equal((await b.admin('GET', '/v1/principals/frank')).body.status, 'offboarded', 'the offboarding took effect')
  const events = await recorded('principal.status', { principals: ['frank'] })
  t.equal(events.length, 1)
  t.match(events[0], { detail: { status: 'offboarded', reason: 'contract ended', revoked: null } })
})

t.test('a cut-off that committed is recorded even when what follows it fails', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'gina', kind: 'human' })
  const ctx = lostAfterCommit()
  // The view's catch-up, which follows the commit, reads through the same lost connection.
  const sync = { ...ctx.sync, afterWrite: async () => { await ctx.db.query('SELECT 1') } }
  await t.rejects(cutOffChains({ ...ctx, sync }, 'gina', { reason: 'session revoked' }), /connection terminated/)
  const events = await recorded('principal.status', { principals: ['gina'] })
  t.equal(events.length, 1)
  t.match(events[0], { detail: { status: 'cut_off', reason: 'session revoked' } })
})
