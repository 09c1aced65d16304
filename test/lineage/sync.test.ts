import t from 'tap'
import { createBroker } from '../../src/broker/broker.js'
import { revokeSubtree } from '../../src/broker/revoke.js'
import { createPrincipal, setStatus } from '../../src/broker/principals.js'
import { silentLogger } from '../../src/log.js'
import { openPostgres } from '../../src/storage/postgres.js'
import { TestClock } from '../helpers/clock.js'
import { createTestDatabase, databaseUrl } from '../helpers/db.js'
import { migrate } from '../../src/storage/migrate.js'

async function until (cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return cond()
}

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the cross-process feed test is skipped')
} else {
  t.test('a cut-off made by one broker reaches another broker on the same database through NOTIFY', async (t) => {
    const fresh = await createTestDatabase()
    const dbA = openPostgres(fresh.url)
    const dbB = openPostgres(fresh.url)
    await migrate(dbA)
    const clock = new TestClock()
    // A long poll interval, so only the notification can deliver the change in time.
    const opts = { clock, log: silentLogger(), issuer: 'http://issuer.test', maxDepth: 8, rootTtl: 3600, adminToken: 'ladm_sync-test-admin-token-000', pollMs: 60_000 }
    const a = await createBroker({ ...opts, db: dbA })
    const b = await createBroker({ ...opts, db: dbB })
    t.teardown(async () => {
      await a.stop(); await b.stop(); await dbA.close(); await dbB.close(); await fresh.drop()
    })
    await createPrincipal(a.ctx, { id: 'alice', kind: 'human', grants: ['db:read'] })
    t.ok(await until(() => b.ctx.view.principal('alice') !== undefined, 3000), 'B hears of the new principal')

    await revokeSubtree(a.ctx, 'some-jti', Math.floor(clock.now() / 1000) + 60, 'admin')
    t.ok(await until(() => b.ctx.view.isRevoked('some-jti'), 3000), 'B applies the revocation')

    await setStatus(a.ctx, 'alice', 'offboarded')
    t.ok(await until(() => b.ctx.view.principal('alice')?.status === 'offboarded', 3000), 'B applies the offboarding')
    t.equal(a.ctx.view.seq, b.ctx.view.seq)
  })
}
