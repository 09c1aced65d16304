import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { InvalidRequest } from '../../src/errors.js'
import { appendChange, readChanges, headSeq } from '../../src/lineage/changes.js'
import { createTokenLedger, type TokenRecord } from '../../src/lineage/ledger.js'
import { copyRow } from '../../src/storage/copy-text.js'
import { migrate } from '../../src/storage/migrate.js'
import { openPostgres } from '../../src/storage/postgres.js'
import { backends, createTestDatabase, databaseUrl, openTestDb } from '../helpers/db.js'

if (databaseUrl === undefined) t.comment('DATABASE_URL not set: the PostgreSQL half of this suite is skipped')

const record = (i: number): TokenRecord => ({
  jti: `jti-${i}`, parent: null, root: `jti-${i}`, depth: 0, sub: 'svc', sponsor: 'alice', acting: i === 8 ? ['bob', 'deploy-bot'] : null, actor_tokens: i === 8 ? ['jti-3'] : null, client_id: 'lc_x', actor: null,
  scope: 'db:read', aud: ['db'], ancestors: [], iat: 1_700_000_000, exp: 1_700_003_600, rooted_at: 1_700_000_000_000, context: { host: "h'o\"st" }
})

for (const backend of backends) {
  t.test(`storage contract on ${backend}`, async (t) => {
    const { db, close } = await openTestDb(backend)
    t.teardown(close)

    t.test('queries take $n parameters and return bigints as numbers', async (t) => {
      const r = await db.query<{ n: number, s: string }>('SELECT $1::bigint AS n, $2::text AS s', [1_795_000_000_123, 'x'])
      t.same(r.rows, [{ n: 1_795_000_000_123, s: 'x' }])
      t.equal(r.rowCount, 1)
      const u = await db.query('UPDATE change_head SET seq = seq WHERE id = 1')
      t.equal(u.rowCount, 1, 'rowCount counts rows an UPDATE touched')
    })

    t.test('a parameter holding NUL, which PostgreSQL cannot store, is refused as bad input before the query', async (t) => {
      for (const p of ['a\0b', ['x', 'a\0b'], { k: 'a\0b' }]) {
        await t.rejects(db.query('SELECT $1::text', [p]), InvalidRequest, JSON.stringify(p))
        await t.rejects(db.tx(async (q) => await q.query('SELECT $1::text', [p])), InvalidRequest, `${JSON.stringify(p)} in a transaction`)
      }
      t.same((await db.query('SELECT $1::text AS s', ['a\\0b'])).rows, [{ s: 'a\\0b' }], 'a backslash and a zero are text')
    })

    t.test('a parameter holding an unpaired surrogate, which would reach PostgreSQL as U+FFFD, is refused as bad input before the query', async (t) => {
      for (const p of ['a\ud800', '\udc00b', ['x', 'a\udbff'], { k: 'a\udfff' }, { 'k\ud800': 1 }]) {
        await t.rejects(db.query('SELECT $1::text', [p]), InvalidRequest, JSON.stringify(p))
        await t.rejects(db.tx(async (q) => await q.query('SELECT $1::text', [p])), InvalidRequest, `${JSON.stringify(p)} in a transaction`)
      }
      t.same((await db.query('SELECT $1::text AS s', ['\ud83d\ude00'])).rows, [{ s: '\ud83d\ude00' }], 'a pair is one character')
      t.same((await db.query('SELECT $1::jsonb AS j', [{ k: '\\ud800 \\u0000' }])).rows, [{ j: { k: '\\ud800 \\u0000' } }], 'a backslash before the letters is text')
    })

    t.test('a transaction commits when its function resolves and rolls back when it throws', async (t) => {
      await db.tx(async (q) => { await q.query("INSERT INTO settings (key, value) VALUES ('a', '1')") })
      await t.rejects(db.tx(async (q) => {
        await q.query("INSERT INTO settings (key, value) VALUES ('b', '2')")
        throw new Error('boom')
      }), /boom/)
      const { rows } = await db.query<{ key: string }>("SELECT key FROM settings WHERE key IN ('a', 'b') ORDER BY key")
      t.same(rows.map((r) => r.key), ['a'])
    })

    t.test('COPY text rows arrive exactly, on their own or inside a transaction that can roll them back', async (t) => {
      await db.query('CREATE TABLE copy_probe (n bigint, s text, j jsonb)')
      t.teardown(async () => { await db.query('DROP TABLE copy_probe') })
      const nasty = 'tab\t nl\n cr\r back\\ \\N "q" {b} a,b ü 🚀'
      await db.copyIn('copy_probe', 'n, s, j', copyRow([1, nasty, JSON.stringify({ k: nasty })]) + copyRow([2, null, '{}']))
      await t.rejects(db.tx(async (q) => {
        await q.copyIn('copy_probe', 'n, s, j', copyRow([3, 'gone', '{}']))
        throw new Error('roll back')
      }))
      await t.rejects(db.copyIn('copy_probe', 'n, s, j', 'not-a-number\tx\t{}\n'), 'a malformed row is an error')
      const rows = (await db.query('SELECT n, s, j FROM copy_probe ORDER BY n')).rows
      t.same(rows, [{ n: 1, s: nasty, j: { k: nasty } }, { n: 2, s: null, j: {} }])
    })

    t.test('migrations are applied once and recorded', async (t) => {
      t.same(await migrate(db), [], 'a second run applies nothing')
      const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_migrations')
      t.ok(rows.some((r) => r.version === '001_init'))
    })

    t.test('a migration changed after it was applied stops the start', async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'lineage-mig-'))
      await writeFile(join(dir, '001_init.sql'), 'SELECT 1;')
      await t.rejects(migrate(db, dir), /was changed after it was applied/)
    })

    t.test('change-log sequence numbers are gap-free and in commit order under concurrency', async (t) => {
      const start = await headSeq(db)
      await Promise.all(Array.from({ length: 20 }, async (_, i) => await db.tx(async (q) => await appendChange(q, { kind: 'token.revoked', data: { jti: `r${i}`, exp: 1 } }))))
      const rows = await readChanges(db, start, 100)
      t.same(rows.map((r) => r.seq), Array.from({ length: 20 }, (_, i) => start + i + 1))
      t.equal(await headSeq(db), start + 20)
      await t.rejects(db.tx(async (q) => {
        await appendChange(q, { kind: 'keys', data: {} })
        throw new Error('rolled back')
      }))
      t.equal(await headSeq(db), start + 20, 'a rolled-back change leaves no gap')
    })

    t.test('the ledger commits every record of concurrent callers, batched', async (t) => {
      const ledger = createTokenLedger(db)
      await Promise.all(Array.from({ length: 300 }, async (_, i) => await ledger.record(record(i))))
      const { rows } = await db.query<{ n: number }>("SELECT count(*) AS n FROM tokens WHERE jti LIKE 'jti-%'")
      t.equal(rows[0].n, 300)
      const one = await db.query<{ aud: string[], context: Record<string, string> }>("SELECT aud, context FROM tokens WHERE jti = 'jti-7'")
      t.same(one.rows[0], { aud: ['db'], context: { host: "h'o\"st" } })
      const acting = await db.query<{ jti: string, acting: string[] | null, actor_tokens: string[] | null }>("SELECT jti, acting, actor_tokens FROM tokens WHERE jti IN ('jti-7', 'jti-8') ORDER BY jti")
      t.same(acting.rows, [{ jti: 'jti-7', acting: null, actor_tokens: null }, { jti: 'jti-8', acting: ['bob', 'deploy-bot'], actor_tokens: ['jti-3'] }], 'the principals and tokens of actor tokens, or none')
      t.equal(ledger.backlog(), 0)
      await t.rejects(ledger.record(record(7)), 'a duplicate jti is refused, not swallowed')
    })
  })
}

if (databaseUrl !== undefined) t.test('processes that start together on one PostgreSQL database migrate it exactly once', async (t) => {
  const fresh = await createTestDatabase()
  const dbs = [openPostgres(fresh.url), openPostgres(fresh.url), openPostgres(fresh.url)]
  t.teardown(async () => {
    for (const d of dbs) await d.close()
    await fresh.drop()
  })
  const applied = await Promise.all(dbs.map(async (d) => await migrate(d)))
  t.equal(applied.flat().filter((v) => v === '001_init').length, 1)
  const { rows } = await dbs[0].query<{ n: number }>('SELECT count(*) AS n FROM schema_migrations')
  t.ok(rows[0].n >= 1)
})

t.test('a server that accepts the connection and never answers fails the query after the connect timeout, for queries and LISTEN alike', async (t) => {
  const { createServer } = await import('node:net')
  const held: Array<import('node:net').Socket> = []
  const silent = createServer((s) => { held.push(s) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of held) s.destroy(); silent.close() })
  const db = openPostgres(`postgres://lineage@127.0.0.1:${(silent.address() as { port: number }).port}/lineage`, { connectTimeoutMs: 300 })
  t.teardown(() => db.close())
  const started = Date.now()
  await t.rejects(db.query('SELECT 1'), /timeout/i)
  const listen = db.listen
  if (listen === undefined) throw new Error('a PostgreSQL Db listens')
  await t.rejects(listen(['x'], () => {}, () => {}), /timeout/i)
  t.ok(Date.now() - started < 20_000, 'in the time given, not the operating system\'s')
})

if (databaseUrl !== undefined) t.test('a query waiting for the pool\'s one client waits as long as it is busy, the connect timeout bounding only a connection\'s setup', async (t) => {
  const db = openPostgres(databaseUrl as string, { max: 1, connectTimeoutMs: 300 })
  t.teardown(() => db.close())
  const busy = db.tx(async (q) => { await q.query('SELECT pg_sleep(1)') })
  await new Promise((resolve) => setTimeout(resolve, 50))
  const r = await db.query<{ n: number }>('SELECT 1 AS n')
  t.same(r.rows, [{ n: 1 }])
  await busy
})
