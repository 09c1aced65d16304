import t from 'tap'
import { createAuditLog } from '../../src/audit/audit-log.js'
import { queryAudit, type AuditFilter } from '../../src/audit/query.js'
import { isoTime } from '../../src/audit/record.js'
import { silentLogger } from '../../src/log.js'
import { backends, openTestDb } from '../helpers/db.js'

const start = 1_795_000_000_000
const roots = 6

for (const backend of backends) {
  t.test(`audit queries on ${backend} list what the view shows for the same filters, newest first`, async (t) => {
    const { db, close } = await openTestDb(backend)
    t.teardown(close)
    const log = createAuditLog(db, silentLogger(), { maxBuffer: 10_000 })
    // 2,400 records of tokens under six roots, each root's principals and actors in two shapes,
    // on three targets; the first root's records all come first, so its newest are old ones.
    for (let i = 0; i < 2400; i++) {
      const root = i < 400 ? 0 : 1 + (i % (roots - 1))
      const shape = Math.floor(i / 7) % 2
      log.record({
        at: start + i, kind: 'gateway.http', decision: i % 5 === 0 ? 'deny' : 'allow', status: 200, target: `t${i % 3}`, method: 'GET', path: `/${i}`,
        jti: `j-${root}-${shape}`, root: `r${root}`, principals: [`human${root % 3}`, `svc${shape}`], actors: shape === 0 ? ['a'] : ['a', 'b'], detail: { i }
      })
    }
    await log.stop()
    const filters: AuditFilter[] = [
      {}, { limit: '7' }, { root: 'r0' }, { root: 'r0', limit: '1000' }, { root: 'r3', target: 't1', limit: '50' }, { principal: 'human0' },
      { principal: 'svc1', limit: '1000' }, { principal: 'human1', root: 'r4', jti: 'j-4-1' }, { principal: 'nobody' }, { root: 'r2', since: isoTime(start + 2000) },
      { jti: 'j-0-0', limit: '1000' }, { target: 't2', since: isoTime(start + 2390) }, { principal: 'human0', target: 't0', since: isoTime(start + 100), limit: '1000' }
    ]
    for (const f of filters) {
      const where: string[] = []
      const params: unknown[] = []
      if (f.principal !== undefined) { params.push(f.principal); where.push(`principals @> ARRAY[$${params.length}]::text[]`) }
      if (f.root !== undefined) { params.push(f.root); where.push(`root = $${params.length}`) }
      if (f.jti !== undefined) { params.push(f.jti); where.push(`jti = $${params.length}`) }
      if (f.target !== undefined) { params.push(f.target); where.push(`target = $${params.length}`) }
      if (f.since !== undefined) { params.push(f.since); where.push(`at >= $${params.length}`) }
      params.push(Number(f.limit ?? 100))
      const wanted = (await db.query<{ seq: number }>(`SELECT seq FROM audit ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${params.length}`, params)).rows.map((r) => r.seq)
      const got = (await queryAudit(db, f)).events as Array<{ seq: number, root: string, principals: string[] }>
      t.same(got.map((e) => e.seq), wanted, JSON.stringify(f))
      if (f.root !== undefined) t.ok(got.every((e) => e.root === f.root), 'each with its lineage')
    }
  })
}

t.test('records older than the newest 1000 of a filter are read page by page with before, the last seq of the page before', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  const log = createAuditLog(db, silentLogger(), { maxBuffer: 10_000 })
  for (let i = 0; i < 2500; i++) {
    log.record({ at: start + i, kind: 'gateway.http', decision: 'allow', status: 200, target: 'api', method: 'GET', path: `/${i}`, jti: `j${i % 2}`, root: 'r', principals: ['alice'], actors: [] })
  }
  await log.stop()
  for (const f of [{}, { principal: 'alice' }, { target: 'api', jti: 'j1' }] as AuditFilter[]) {
    const seen: number[] = []
    let before: string | undefined
    // Bounded: a before that were ignored would answer the same page for ever.
    for (let pages = 0; pages < 5; pages++) {
      const page = (await queryAudit(db, { ...f, limit: '1000', ...(before === undefined ? {} : { before }) })).events as Array<{ seq: number }>
      if (page.length === 0) break
      seen.push(...page.map((e) => e.seq))
      before = String(page.at(-1)?.seq)
    }
    const wanted = (await db.query<{ seq: number }>(`SELECT seq FROM audit ${f.jti === undefined ? '' : "WHERE jti = 'j1'"} ORDER BY seq DESC`)).rows.map((r) => r.seq)
    t.same(seen, wanted, `every record once, newest first: ${JSON.stringify(f)}`)
  }
  for (const before of ['0', '-1', '1.5', 'x', '99999999999999999']) {
    await t.rejects(queryAudit(db, { before }), { error: 'invalid_request', message: /before/ }, before)
  }
})
