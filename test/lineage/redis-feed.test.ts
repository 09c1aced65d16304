import { once } from 'node:events'
import t from 'tap'
import { freePort, startRedis } from '../helpers/redis.js'
import { startProxy } from '../helpers/proxy.js'
import { createBroker } from '../../src/broker/broker.js'
import { revokeSubtree } from '../../src/broker/revoke.js'
import { createPrincipal } from '../../src/broker/principals.js'
import { createRedisFeed } from '../../src/lineage/feed.js'
import { silentLogger } from '../../src/log.js'
import { migrate } from '../../src/storage/migrate.js'
import { openPostgres } from '../../src/storage/postgres.js'
import { TestClock } from '../helpers/clock.js'
import { createTestDatabase, databaseUrl } from '../helpers/db.js'

async function until (cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end && !cond()) await new Promise((resolve) => setTimeout(resolve, 5))
  return cond()
}

if (databaseUrl === undefined || process.env.REDIS_URL === undefined) {
  t.comment('DATABASE_URL or REDIS_URL not set: the Redis feed test is skipped')
} else {
  t.test('with REDIS_URL, cut-offs reach another process through Redis, and after Redis comes back a process catches up on what it missed', async (t) => {
    const port = await freePort()
    let redis = await startRedis(port)
    const fresh = await createTestDatabase()
    const dbA = openPostgres(fresh.url)
    const dbB = openPostgres(fresh.url)
    await migrate(dbA)
    const clock = new TestClock()
    const url = `redis://127.0.0.1:${port}`
    // A long poll, so only the feed (or its reconnection) can deliver changes in time.
    const opts = { clock, log: silentLogger(), issuer: 'http://issuer.test', maxDepth: 8, rootTtl: 3600, adminToken: 'ladm_redis-feed-test-admin-token-0', pollMs: 60_000 }
    const a = await createBroker({ ...opts, db: dbA, feed: createRedisFeed(url, silentLogger()) })
    const b = await createBroker({ ...opts, db: dbB, feed: createRedisFeed(url, silentLogger()) })
    t.teardown(async () => {
      await a.stop(); await b.stop(); await dbA.close(); await dbB.close(); await fresh.drop()
      redis.kill('SIGKILL')
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await createPrincipal(a.ctx, { id: 'alice', kind: 'human' })
    t.ok(await until(() => b.ctx.view.principal('alice') !== undefined, 3000), 'B hears of the new principal through Redis')
    await revokeSubtree(a.ctx, 'jti-1', Math.floor(clock.now() / 1000) + 60, 'admin')
    t.ok(await until(() => b.ctx.view.isRevoked('jti-1'), 3000), 'and of a revocation')

    redis.kill('SIGKILL')
    await once(redis, 'exit')
    await revokeSubtree(a.ctx, 'jti-2', Math.floor(clock.now() / 1000) + 60, 'admin')
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.notOk(b.ctx.view.isRevoked('jti-2'), 'with Redis down the announcement is lost')
    redis = await startRedis(port)
    t.ok(await until(() => b.ctx.view.isRevoked('jti-2'), 5000), 'once Redis is back, B reads what it missed from the change log')
    await revokeSubtree(a.ctx, 'jti-3', Math.floor(clock.now() / 1000) + 60, 'admin')
    t.ok(await until(() => b.ctx.view.isRevoked('jti-3'), 3000), 'and later cut-offs arrive through Redis again')
    t.equal(b.ctx.view.seq, a.ctx.view.seq)
  })

  t.test('a feed whose Redis stops answering (a hung path, not a closed one) still closes, so the process can stop', async (t) => {
    const port = await freePort()
    const redis = await startRedis(port)
    const proxy = await startProxy('127.0.0.1', port)
    t.teardown(async () => { await proxy.close(); redis.kill('SIGKILL') })
    const feed = createRedisFeed(`redis://127.0.0.1:${proxy.port}`, silentLogger())
    let connected = 0
    await feed.subscribe('hung', { onChange: () => {}, onConnected: () => { connected++ }, onConfirm: () => {} })
    t.ok(await until(() => connected > 0, 5000), 'connected')
    proxy.freeze()
    const started = Date.now()
    const closed = await Promise.race([feed.close().then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000))])
    t.ok(closed, 'close returned')
    t.ok(Date.now() - started < 3000, `within a few seconds (${Date.now() - started} ms)`)
  })

  t.test('a process whose Redis accepts the connection and then says nothing starts on the change log, and hears the feed once Redis answers', async (t) => {
    const port = await freePort()
    const redis = await startRedis(port)
    const proxy = await startProxy('127.0.0.1', port)
    proxy.freeze()
    const feed = createRedisFeed(`redis://127.0.0.1:${proxy.port}`, silentLogger())
    const publisher = createRedisFeed(`redis://127.0.0.1:${port}`, silentLogger())
    t.teardown(async () => { await feed.close(); await publisher.close(); await proxy.close(); redis.kill('SIGKILL') })
    let changes = 0
    let connected = 0
    const started = Date.now()
    const subscribed = await Promise.race([
      feed.subscribe('hung-at-start', { onChange: () => { changes++ }, onConnected: () => { connected++ }, onConfirm: () => {} }).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 8000))
    ])
    t.ok(subscribed, `the subscription does not hold the start (${Date.now() - started} ms)`)
    await publisher.subscribe('hung-at-start', { onChange: () => {}, onConnected: () => {}, onConfirm: () => {} })
    proxy.thaw()
    t.ok(await until(() => connected > 0, 5000), 'it connects once Redis answers')
    for (let i = 0; i < 100 && changes === 0; i++) {
      publisher.announce(i)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.ok(changes > 0, 'and hears what is announced')
  })

  t.test('a process that subscribed while Redis was down hears changes once Redis is up', async (t) => {
    const port = await freePort()
    const feed = createRedisFeed(`redis://127.0.0.1:${port}`, silentLogger())
    let changes = 0
    let connected = 0
    await feed.subscribe('late', { onChange: () => { changes++ }, onConnected: () => { connected++ }, onConfirm: () => {} })
    const redis = await startRedis(port)
    const publisher = createRedisFeed(`redis://127.0.0.1:${port}`, silentLogger())
    t.teardown(async () => { await feed.close(); await publisher.close(); redis.kill('SIGKILL') })
    await publisher.subscribe('late', { onChange: () => {}, onConnected: () => {}, onConfirm: () => {} })
    t.ok(await until(() => connected > 0, 10_000), 'the feed connected once Redis came up')
    for (let i = 0; i < 100 && changes === 0; i++) {
      publisher.announce(i)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.ok(changes > 0, 'and hears what is announced')
  })
}
