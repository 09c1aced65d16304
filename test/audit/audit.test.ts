import t from 'tap'
import pg from 'pg'
import pino from 'pino'
import { createAuditLog } from '../../src/audit/audit-log.js'
import { chainHash, isoTime, type AuditEvent } from '../../src/audit/record.js'
import { parseAnchor, verifyAudit, type Anchor } from '../../src/audit/verify.js'
import { queryAudit } from '../../src/audit/query.js'
import { silentLogger } from '../../src/log.js'
import type { Db } from '../../src/storage/db.js'
import { backends, databaseUrl, openTestDb } from '../helpers/db.js'

const event = (i: number): AuditEvent => ({
  at: 1_795_000_000_000 + i, kind: 'gateway.http', decision: i % 2 === 0 ? 'allow' : 'deny', status: 200, target: 'api', method: 'GET', path: `/x/${i}`,
  jti: `j${i}`, root: 'r', principals: ['alice', 'ci'], actors: ['b', 'a'], detail: { zeta: 1, alpha: { b: 2, a: [1, 'x'] } }
})

t.test('isoTime formats like Date.prototype.toISOString, within a second and across seconds', async (t) => {
  const edges = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 1.7, 999.9, 86_399_999, 951_782_400_000, 1_795_000_000_000, 253_402_300_799_999]
  const random = Array.from({ length: 5000 }, (_, i) => i % 2 === 0 ? Math.floor(Math.random() * 253_402_300_800_000) : 1_795_000_000_000 + Math.random() * 3000)
  for (const ms of [...edges, ...random]) if (isoTime(ms) !== new Date(ms).toISOString()) t.fail(`${ms}: ${isoTime(ms)} ≠ ${new Date(ms).toISOString()}`)
  t.equal(isoTime(-1), '1969-12-31T23:59:59.999Z', 'outside four-digit years it falls back to Date')
  t.throws(() => isoTime(Number.NaN), RangeError, 'and an invalid time throws as Date does')
})

/** SQL naming the lineage of record `seq`. */
const lineageOf = (seq: number): string => `id = (SELECT lineage FROM audit_records WHERE seq = ${seq})`

for (const backend of backends) {
  t.test(`audit chain on ${backend}`, async (t) => {
    const { db, close } = await openTestDb(backend)
    t.teardown(close)

    t.test('records written in batches verify as one intact chain', async (t) => {
      const log = createAuditLog(db, silentLogger(), { maxBatch: 7 })
      for (let i = 0; i < 30; i++) log.record(event(i))
      await log.flush()
      await log.stop()
      t.match(await verifyAudit(db), { ok: true, records: 30 })
    })

    t.test('text the COPY format treats specially arrives exactly as recorded', async (t) => {
      const nasty = 'tab\there, line\nbreak, cr\r, back\\slash, \\N, "quotes", {braces}, a,b, ünïcødé 🚀'
      const e: AuditEvent = {
        at: 1_795_000_000_000, kind: 'gateway.pg', decision: 'deny', status: 403, target: 'db', method: 'SELECT', path: nasty,
        jti: 'NULL', root: '\\N', principals: ['NULL', 'a,b', '{x}', 'q"uote', 'back\\slash', ''], actors: ['tab\t', 'new\nline'], detail: { reason: nasty, n: null }
      }
      const log = createAuditLog(db, silentLogger())
      log.record(e)
      await log.flush()
      await log.stop()
      const row = (await db.query<Record<string, unknown>>('SELECT * FROM audit ORDER BY seq DESC LIMIT 1')).rows[0]
      t.same([row.path, row.jti, row.root, row.principals, row.actors, row.detail], [e.path, e.jti, e.root, e.principals, e.actors, e.detail])
      t.match(await verifyAudit(db), { ok: true, records: 31 })
    })

    t.test('NUL and lone surrogates, which PostgreSQL refuses, are stored as U+FFFD and stop nothing', async (t) => {
      const bad: AuditEvent = {
        at: 1_795_000_000_001, kind: 'principal.status', decision: 'deny', target: 'db', path: 'a\0b',
        principals: ['\ud800x'], actors: ['ok 🚀'], detail: { reason: 'why\0not \udc00', ['k\0']: ['\ud83d'] }
      }
      const log = createAuditLog(db, silentLogger())
      log.record(bad)
      log.record(event(99))
      await log.flush()
      t.same(log.backlog(), { queued: 0, dropped: 0, failing: false })
      await log.stop()
      const rows = (await db.query<Record<string, unknown>>('SELECT * FROM audit ORDER BY seq DESC LIMIT 2')).rows
      t.same([rows[1].path, rows[1].principals, rows[1].actors, rows[1].detail], ['a\ufffdb', ['\ufffdx'], ['ok 🚀'], { reason: 'why\ufffdnot \ufffd', ['k\ufffd']: ['\ufffd'] }])
      t.equal(rows[0].path, '/x/99', 'the record behind it was written too')
      t.match(await verifyAudit(db), { ok: true, records: 33 })
      await db.query('DELETE FROM audit_records WHERE seq > 31')
      await db.query("UPDATE audit_head SET seq = 31, hash = (SELECT hash FROM audit WHERE seq = 31) WHERE id = 1")
    })

    t.test('an edited record is found', async (t) => {
      await db.query("UPDATE audit_records SET path = '/innocent' WHERE seq = 5")
      const r = await verifyAudit(db)
      t.equal(r.ok, false)
      t.match(r.problem, /^record 5 does not match its hash/)
      await db.query("UPDATE audit_records SET path = '/x/4' WHERE seq = 5")
      t.equal((await verifyAudit(db)).ok, true, 'putting it back restores the chain')
    })

    t.test('an edited or removed lineage is found at the first record that names it', async (t) => {
      await db.query(`UPDATE audit_lineages SET principals = '{alice,mallory}' WHERE ${lineageOf(5)}`)
      t.match(await verifyAudit(db), { ok: false, records: 0, problem: /^record 1 does not match its hash/ })
      await db.query(`UPDATE audit_lineages SET principals = '{alice,ci}' WHERE ${lineageOf(5)}`)
      const { rows: [saved] } = await db.query<{ id: string, root: string, principals: string[], actors: string[] }>(`SELECT * FROM audit_lineages WHERE ${lineageOf(5)}`)
      await db.query('DELETE FROM audit_lineages WHERE id = $1', [saved.id])
      t.match(await verifyAudit(db), { ok: false, records: 0, problem: /^record 1 does not match its hash/ })
      await db.query('INSERT INTO audit_lineages (id, root, principals, actors) OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4)', [saved.id, saved.root, saved.principals, saved.actors])
      t.match(await verifyAudit(db), { ok: true, records: 31 }, 'putting it back restores the chain')
    })

    t.test('an edit the read-back values hide (a fraction of a millisecond, an array\'s bounds) is found', async (t) => {
      const edits: Array<[string, string]> = [
        ["UPDATE audit_records SET at = at + interval '900 microseconds' WHERE seq = 6", "UPDATE audit_records SET at = date_trunc('milliseconds', at) WHERE seq = 6"],
        [`UPDATE audit_lineages SET principals = '[0:1]={alice,ci}' WHERE ${lineageOf(6)}`, `UPDATE audit_lineages SET principals = '{alice,ci}' WHERE ${lineageOf(6)}`],
        [`UPDATE audit_lineages SET actors = '[2:3]={b,a}' WHERE ${lineageOf(6)}`, `UPDATE audit_lineages SET actors = '{b,a}' WHERE ${lineageOf(6)}`]
      ]
      for (const [edit, undo] of edits) {
        await db.query(edit)
        // Records 1 to 30 name one lineage: the first of them is reported.
        t.match((await verifyAudit(db)).problem, edit.includes('audit_lineages') ? /^record 1 does not match its hash/ : /^record 6 does not match its hash/, edit)
        await db.query(undo)
      }
      t.match(await verifyAudit(db), { ok: true, records: 31 })
    })

    t.test('a time edited to infinity is reported as an altered record, not thrown', async (t) => {
      for (const time of ['infinity', '-infinity']) {
        await db.query(`UPDATE audit_records SET at = '${time}' WHERE seq = 6`)
        t.match(await verifyAudit(db), { ok: false, records: 5, problem: /^record 6 does not match its hash/ }, time)
        const listed = (await queryAudit(db, { limit: '1000' })).events as Array<{ seq: number, at: string }>
        t.same(listed.find((e) => e.seq === 6)?.at, time, 'and listed as it reads, not a 500')
        await db.query("UPDATE audit_records SET at = (SELECT at FROM audit WHERE seq = 5) + interval '1 millisecond' WHERE seq = 6")
      }
      t.match(await verifyAudit(db), { ok: true, records: 31 })
    })

    t.test('an empty detail or array replaced by a null, which reads back as the empty value the hash covers, is found', async (t) => {
      const log = createAuditLog(db, silentLogger())
      log.record({ ...event(32), actors: [], detail: undefined })
      await log.stop()
      t.match(await verifyAudit(db), { ok: true, records: 32 })
      const edits: Array<[string[], string[]]> = [
        [["UPDATE audit_records SET detail = 'null' WHERE seq = 32"], ["UPDATE audit_records SET detail = '{}' WHERE seq = 32"]],
        [['ALTER TABLE audit_lineages ALTER actors DROP NOT NULL', `UPDATE audit_lineages SET actors = NULL WHERE ${lineageOf(32)}`], [`UPDATE audit_lineages SET actors = '{}' WHERE ${lineageOf(32)}`, 'ALTER TABLE audit_lineages ALTER actors SET NOT NULL']]
      ]
      for (const [edit, undo] of edits) {
        for (const sql of edit) await db.query(sql)
        t.match(await verifyAudit(db), { ok: false, records: 31, problem: /^record 32 does not match its hash/ }, edit.join('; '))
        for (const sql of undo) await db.query(sql)
      }
      t.match(await verifyAudit(db), { ok: true, records: 32 })
      await db.query('DELETE FROM audit_records WHERE seq > 31')
      await db.query('UPDATE audit_head SET seq = 31, hash = (SELECT hash FROM audit WHERE seq = 31) WHERE id = 1')
    })

    t.test('a number in detail edited to one that reads back as the same double (more digits, out of range) is found', async (t) => {
      const log = createAuditLog(db, silentLogger())
      log.record({ ...event(32), kind: 'token.revoked', detail: { by: 'admin', reason: null, revoked: 5, big: 2 ** 60, small: 1e-7, huge: 1e21, f: 0.1 + 0.2 } })
      log.record(event(33))
      await log.stop()
      t.match(await verifyAudit(db), { ok: true, records: 33 }, 'numbers as JavaScript writes them verify')
      const original = (await db.query<{ detail: string }>('SELECT detail::text AS detail FROM audit WHERE seq = 32')).rows[0].detail
      for (const [from, to] of [['"revoked": 5}', '"revoked": 5.0000000000000001}'], ['"reason": null', '"reason": 1e400'], ['"big": 1152921504606847000', '"big": 1152921504606846976']]) {
        t.ok(original.includes(from), from)
        await db.query('UPDATE audit_records SET detail = $1::jsonb WHERE seq = 32', [original.replace(from, to)])
        // With record 33 altered too: the first problem is the one reported.
        await db.query("UPDATE audit_records SET path = '/innocent' WHERE seq = 33")
        t.match(await verifyAudit(db), { ok: false, records: 31, problem: /^record 32 does not match its hash/ }, to)
        await db.query("UPDATE audit_records SET path = '/x/33' WHERE seq = 33")
        await db.query('UPDATE audit_records SET detail = $1::jsonb WHERE seq = 32', [original])
      }
      t.match(await verifyAudit(db), { ok: true, records: 33 })
      await db.query('DELETE FROM audit_records WHERE seq > 31')
      await db.query('UPDATE audit_head SET seq = 31, hash = (SELECT hash FROM audit WHERE seq = 31) WHERE id = 1')
    })

    t.test('a chain rewritten whole, hashes and head recomputed, is found from an anchor kept elsewhere', async (t) => {
      const { head } = await verifyAudit(db)
      t.match(head, { seq: 31, hash: /^[0-9a-f]{64}$/ })
      const anchor = head as Anchor
      t.match(await verifyAudit(db, { anchor }), { ok: true, records: 31, head: anchor })
      t.match(await verifyAudit(db, { anchor: { seq: 12, hash: (await db.query<{ hash: string }>('SELECT hash FROM audit WHERE seq = 12')).rows[0].hash } }), { ok: true, records: 31 }, 'an earlier record anchors too')
      // Whoever can write both tables edits record 9 and recomputes every hash after it.
      const saved = (await db.query<Record<string, unknown>>('SELECT seq, path, hash FROM audit WHERE seq >= 9 ORDER BY seq')).rows
      await db.query("UPDATE audit_records SET path = '/innocent' WHERE seq = 9")
      let prev = (await db.query<{ hash: string }>('SELECT hash FROM audit WHERE seq = 8')).rows[0].hash
      for (const r of (await db.query<Record<string, any>>('SELECT * FROM audit WHERE seq >= 9 ORDER BY seq')).rows) {
        const e = { at: r.at.getTime(), kind: r.kind, decision: r.decision ?? undefined, status: r.status ?? undefined, target: r.target ?? undefined, method: r.method ?? undefined, path: r.path ?? undefined, jti: r.jti ?? undefined, root: r.root ?? undefined, principals: r.principals, actors: r.actors, detail: r.detail }
        prev = chainHash(r.seq, e, prev)
        await db.query('UPDATE audit_records SET hash = $1 WHERE seq = $2', [prev, r.seq])
      }
      await db.query('UPDATE audit_head SET hash = $1 WHERE id = 1', [prev])
      t.match(await verifyAudit(db), { ok: true, records: 31 }, 'the rewritten chain is consistent in itself')
      t.match(await verifyAudit(db, { anchor }), { ok: false, records: 30, problem: 'record 31 no longer has the anchored hash: the chain was rewritten up to it' })
      t.match(await verifyAudit(db, { anchor: { seq: 40, hash: anchor.hash } }), { ok: false, problem: 'the chain ends at record 31, before the anchored record 40' })
      for (const r of saved) await db.query('UPDATE audit_records SET path = $1, hash = $2 WHERE seq = $3', [r.path, r.hash, r.seq])
      await db.query('UPDATE audit_head SET hash = $1 WHERE id = 1', [anchor.hash])
      t.match(await verifyAudit(db, { anchor }), { ok: true, records: 31 })
      t.throws(() => parseAnchor('31:abc'), /an anchor is SEQ:HASH/)
      t.same(parseAnchor(`31:${anchor.hash}`), anchor)
    })

    t.test('a record put before the first is found', async (t) => {
      for (const seq of [0, -7]) {
        await db.query("INSERT INTO audit_records (seq, at, kind, decision, status, target, method, path, jti, lineage, detail, hash) SELECT $1, at, kind, decision, status, target, method, '/forged', jti, lineage, detail, hash FROM audit_records WHERE seq = 1", [seq])
        t.match((await verifyAudit(db)).problem, `record ${seq} lies before the first`)
      }
      await db.query('DELETE FROM audit_records WHERE seq < 1')
      t.match(await verifyAudit(db), { ok: true, records: 31 })
    })

    t.test('a record naming no lineage, which the view audit leaves out, is found before the first, past the head or in place', async (t) => {
      const forge = "INSERT INTO audit_records (seq, at, kind, decision, status, target, method, path, jti, lineage, detail, hash) SELECT $1, at, kind, decision, status, target, method, '/forged', jti, -1, detail, hash FROM audit_records WHERE seq = 1"
      await db.query(forge, [0])
      t.match((await verifyAudit(db)).problem, 'record 0 lies before the first')
      await db.query('DELETE FROM audit_records WHERE seq = 0')
      await db.query(forge, [32])
      t.match((await verifyAudit(db)).problem, /^record 32 does not match its hash/)
      await db.query('DELETE FROM audit_records WHERE seq = 32')
      await db.query('UPDATE audit_records SET lineage = -lineage WHERE seq = 31')
      t.match((await verifyAudit(db)).problem, /^record 31 does not match its hash/)
      await db.query('UPDATE audit_records SET lineage = -lineage WHERE seq = 31')
      t.match(await verifyAudit(db), { ok: true, records: 31 })
    })

    t.test('verification while another writer adds records sees one consistent chain; a record past the head is found', async (t) => {
      const log = createAuditLog(db, silentLogger(), { maxBatch: 3 })
      let writing = true
      const writer = (async () => {
        for (let i = 0; i < 40; i++) { log.record(event(1000 + i)); await log.flush() }
        writing = false
      })()
      const results = []
      while (writing) results.push(await verifyAudit(db))
      await writer
      await log.stop()
      t.ok(results.length > 0)
      t.same(results.filter((r) => !r.ok), [], 'no false alarm')
      // A record with a right hash that the head does not count: written by hand, not by a writer.
      const head = (await db.query<{ seq: number, hash: string }>('SELECT seq, hash FROM audit_head WHERE id = 1')).rows[0]
      const one = createAuditLog(db, silentLogger())
      one.record(event(2000))
      await one.stop()
      await db.query('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [head.seq, head.hash])
      t.match((await verifyAudit(db)).problem, /lie past the head/)
      await db.query('DELETE FROM audit_records WHERE seq > 31')
      await db.query('UPDATE audit_head SET seq = 31, hash = (SELECT hash FROM audit WHERE seq = 31) WHERE id = 1')
      t.match(await verifyAudit(db), { ok: true, records: 31 })
    })

    t.test('a head whose hash no longer is the last record\'s is reported as such, not as records removed', async (t) => {
      await db.query("UPDATE audit_head SET hash = repeat('a', 64) WHERE id = 1")
      t.match(await verifyAudit(db), { ok: false, records: 31, problem: 'the head gives record 31, the last, another hash: the head was altered, or the records up to it were rewritten' })
      await db.query('UPDATE audit_head SET hash = (SELECT hash FROM audit WHERE seq = 31) WHERE id = 1')
      t.match(await verifyAudit(db), { ok: true, records: 31 })
    })

    t.test('a removed record is found, in the middle or at the end', async (t) => {
      const saved = (await db.query('SELECT * FROM audit WHERE seq = 30')).rows[0]
      await db.query('DELETE FROM audit_records WHERE seq = 12')
      t.match((await verifyAudit(db)).problem, 'record 12 is missing')
      await db.query('DELETE FROM audit_records WHERE seq >= 12')
      t.match((await verifyAudit(db)).problem, /records were removed from the end/)
      await db.query('DELETE FROM audit_head')
      t.match(await verifyAudit(db), { ok: false, records: 11, problem: /its head is missing/ }, 'and with the head')
      t.ok(saved)
    })
  })
}

for (const backend of backends) {
  t.test(`a since finer than a millisecond takes no record stamped before it, on ${backend}`, async (t) => {
    const { db, close } = await openTestDb(backend)
    t.teardown(close)
    const log = createAuditLog(db, silentLogger())
    log.record(event(0))
    log.record(event(1))
    await log.stop()
    const paths = async (since: string): Promise<unknown[]> => (await queryAudit(db, { since })).events.map((e) => (e as { path: string }).path)
    const first = isoTime(event(0).at)
    t.same(await paths(first), ['/x/1', '/x/0'])
    t.same(await paths(first.replace('Z', '000Z')), ['/x/1', '/x/0'], 'zeros past the millisecond change nothing')
    t.same(await paths(first.replace('Z', '0005Z')), ['/x/1'], 'half a millisecond after the first record leaves it out')
    t.same(await paths(first.replace('Z', '999999Z')), ['/x/1'])
    t.same(await paths(isoTime(event(1).at).replace('Z', '1Z')), [])
  })
}

t.test('a database outage buffers events, readiness says so, and the retry writes them all', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  let down = true
  const flaky: Db = { ...db, tx: async (fn) => { if (down) throw new Error('connection refused'); return await db.tx(fn) } }
  const log = createAuditLog(flaky, silentLogger(), { intervalMs: 10, maxBuffer: 50 })
  for (let i = 0; i < 60; i++) log.record(event(i))
  await t.rejects(log.flush())
  t.same(log.backlog(), { queued: 50, dropped: 10, failing: true })
  down = false
  await log.flush()
  t.same(log.backlog(), { queued: 0, dropped: 10, failing: false })
  t.match(await verifyAudit(db), { ok: true, records: 51, dropped: { events: 10, gaps: 1 } }, 'the 50 kept and a record of the 10 dropped')
  await log.stop()
})

t.test('during an outage the buffer is bounded in size too: events with 16 KiB paths are dropped long before 100,000 of them (gigabytes) wait', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  let down = true
  const flaky: Db = { ...db, tx: async (fn) => { if (down) throw new Error('connection refused'); return await db.tx(fn) } }
  const log = createAuditLog(flaky, silentLogger(), { intervalMs: 60_000 })
  // One string for every event, so the test itself holds 16 KiB, not what a gateway would.
  const path = `/${'a'.repeat(16 * 1024)}`
  for (let i = 0; i < 20_000; i++) log.record({ ...event(i), path, target: 'api' })
  const { queued, dropped } = log.backlog()
  t.ok(queued * path.length <= 160 * 1024 * 1024, `${queued} events of 16 KiB queued`)
  t.equal(queued + dropped, 20_000)
  t.ok(dropped > 0, `${dropped} dropped`)
  down = false
  await log.flush()
  t.same(log.backlog(), { queued: 0, dropped, failing: false })
  for (let i = 0; i < 3; i++) log.record({ ...event(i), path, target: 'api' })
  t.same(log.backlog(), { queued: 3, dropped, failing: false }, 'written, the buffer takes events again')
  await log.stop()
  t.match(await verifyAudit(db), { ok: true, records: queued + 1 + 3, dropped: { events: dropped, gaps: 1 } })
})

t.test('events dropped while the buffer is full leave an audit.dropped record where they would have been, one per gap', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  let down = true
  const flaky: Db = { ...db, tx: async (fn) => { if (down) throw new Error('connection refused'); return await db.tx(fn) } }
  let now = 1_796_000_000_000
  const lines: string[] = []
  const log = createAuditLog(flaky, pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } }), { intervalMs: 60_000, maxBuffer: 5, maxBatch: 2, clock: { now: () => now } })
  t.teardown(() => log.stop())
  const at = (i: number): AuditEvent => ({ ...event(i), kind: i % 3 === 0 ? 'gateway.pg' : 'gateway.http' })
  for (let i = 0; i < 9; i++) log.record(at(i))
  t.same(log.backlog(), { queued: 5, dropped: 4, failing: false }, 'events 5 to 8 dropped')
  await t.rejects(log.flush())
  down = false
  now += 1000
  await log.flush()
  for (let i = 9; i < 11; i++) log.record(at(i))
  down = true
  for (let i = 11; i < 18; i++) log.record(at(i))
  await t.rejects(log.flush())
  down = false
  now += 1000
  await log.flush()
  log.record(at(18))
  await log.flush()

  const { rows } = await db.query<{ seq: number, kind: string, path: string | null, at: Date, detail: Record<string, unknown> }>('SELECT seq, kind, path, at, detail FROM audit ORDER BY seq')
  t.same(rows.map((r) => r.kind === 'audit.dropped' ? `dropped ${String(r.detail.dropped)}` : r.path),
    ['/x/0', '/x/1', '/x/2', '/x/3', '/x/4', 'dropped 4', '/x/9', '/x/10', '/x/11', '/x/12', '/x/13', 'dropped 4', '/x/18'],
    'each gap is marked after what was kept before it and before what came after it')
  t.same(rows[5].detail, { dropped: 4, first_at: isoTime(1_795_000_000_005), last_at: isoTime(1_795_000_000_008), kinds: { 'gateway.http': 3, 'gateway.pg': 1 } })
  t.equal(rows[5].at.getTime(), 1_796_000_001_000, 'stamped when the gap was marked')
  t.same(rows[11].detail, { dropped: 4, first_at: isoTime(1_795_000_000_014), last_at: isoTime(1_795_000_000_017), kinds: { 'gateway.http': 3, 'gateway.pg': 1 } })
  t.same(log.backlog(), { queued: 0, dropped: 8, failing: false })
  t.match(await verifyAudit(db), { ok: true, records: 13, dropped: { events: 8, gaps: 2 } })
  t.equal(lines.filter((l) => l.includes('audit buffer full')).length, 1, 'two gaps 2 s apart: one warning, not one per gap')
})

t.test('verify reports no dropped events when the chain marks no gap', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  const log = createAuditLog(db, silentLogger())
  log.record(event(0))
  await log.stop()
  t.notOk('dropped' in await verifyAudit(db))
})

t.test('a detail JSON cannot hold is recorded as such, failing neither its caller nor the records behind it', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  const log = createAuditLog(db, silentLogger(), { intervalMs: 60_000 })
  const cyclic: Record<string, unknown> = { rows: 1n }
  t.doesNotThrow(() => { log.record({ ...event(0), detail: { rows: 1n } }) })
  cyclic.self = cyclic
  t.doesNotThrow(() => { log.record({ ...event(1), detail: cyclic }) })
  log.record(event(2))
  await log.stop()
  t.same(log.backlog(), { queued: 0, dropped: 0, failing: false })
  const { rows } = await db.query<{ path: string, detail: Record<string, unknown> }>('SELECT path, detail FROM audit ORDER BY seq')
  t.same(rows, [
    { path: '/x/0', detail: { error: 'detail not representable as JSON' } },
    { path: '/x/1', detail: { error: 'detail not representable as JSON' } },
    { path: '/x/2', detail: event(2).detail }
  ])
  t.match(await verifyAudit(db), { ok: true, records: 3 })
})

t.test('a long backlog is written in order, every event once, however many batches it takes', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  const log = createAuditLog(db, silentLogger(), { intervalMs: 60_000, maxBuffer: 12_000, maxBatch: 100 })
  for (let i = 0; i < 12_000; i++) log.record(event(i))
  await log.stop()
  t.same(log.backlog(), { queued: 0, dropped: 0, failing: false })
  const { rows } = await db.query<{ n: number, ordered: boolean }>("SELECT count(*) AS n, bool_and(path = '/x/' || (seq - 1)) AS ordered FROM audit")
  t.same(rows[0], { n: 12_000, ordered: true })
  t.match(await verifyAudit(db), { ok: true, records: 12_000 })
})

t.test('a stop waits for a slow backlog as long as its writes go on succeeding: stopRetryMs counts from the last one', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  // Each batch takes 100 ms, twenty of them 2 s: far past the stop's 300 ms, which a batch never takes.
  const slow: Db = { ...db, tx: async (fn) => { await new Promise((resolve) => setTimeout(resolve, 100)); return await db.tx(fn) } }
  const log = createAuditLog(slow, silentLogger(), { intervalMs: 60_000, maxBatch: 50, stopRetryMs: 300 })
  for (let i = 0; i < 1000; i++) log.record(event(i))
  await log.stop()
  t.same(log.backlog(), { queued: 0, dropped: 0, failing: false }, 'nothing lost')
  t.match(await verifyAudit(db), { ok: true, records: 1000 })
})

t.test('a stop whose first write fails tries again, and writes everything once the fault passes', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  let failures = 2
  const flaky: Db = { ...db, tx: async (fn) => { if (failures > 0) { failures--; throw new Error('connection reset') } return await db.tx(fn) } }
  const log = createAuditLog(flaky, silentLogger(), { intervalMs: 60_000 })
  for (let i = 0; i < 5; i++) log.record(event(i))
  await log.stop()
  t.equal(failures, 0)
  t.same(log.backlog(), { queued: 0, dropped: 0, failing: false })
  t.match(await verifyAudit(db), { ok: true, records: 5 })
})

t.test('a stop gives up on a database that stays down after stopRetryMs, saying how much is lost', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  const down: Db = { ...db, tx: async () => { throw new Error('connection refused') } }
  const lines: string[] = []
  const log = createAuditLog(down, pino({ level: 'error' }, { write: (line: string) => { lines.push(line) } }), { intervalMs: 60_000, stopRetryMs: 300 })
  for (let i = 0; i < 3; i++) log.record(event(i))
  await log.stop()
  t.match(JSON.parse(lines.at(-1) ?? '{}'), { msg: 'audit records could not be written before stopping', lost: 3 })
})

t.test('a stop gives up on a write that hangs (a database the network no longer reaches) after stopRetryMs, saying how much is lost', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  const silent: Db = { ...db, tx: async () => await new Promise<never>(() => {}) }
  const lines: string[] = []
  const log = createAuditLog(silent, pino({ level: 'error' }, { write: (line: string) => { lines.push(line) } }), { intervalMs: 60_000, stopRetryMs: 300 })
  for (let i = 0; i < 3; i++) log.record(event(i))
  const outcome = await Promise.race([log.stop().then(() => 'stopped'), new Promise((resolve) => setTimeout(() => resolve('still stopping'), 3000))])
  t.equal(outcome, 'stopped')
  t.match(JSON.parse(lines.at(-1) ?? '{}'), { msg: 'audit records could not be written before stopping', lost: 3 })
})

t.test('a write that hangs (a database the network no longer reaches) fails readiness once it has taken stallMs', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  let now = 1_795_000_000_000
  const silent: Db = { ...db, tx: async () => await new Promise<never>(() => {}) }
  const log = createAuditLog(silent, silentLogger(), { intervalMs: 60_000, stallMs: 10_000, clock: { now: () => now } })
  for (let i = 0; i < 5; i++) log.record(event(i))
  void log.flush()
  await new Promise((resolve) => setImmediate(resolve))
  now += 10_000
  t.same(log.backlog(), { queued: 5, dropped: 0, failing: false }, 'not yet')
  now += 1
  t.same(log.backlog(), { queued: 5, dropped: 0, failing: true })
})

t.test('a batch committed though its answer was lost is not written again by the retry', async (t) => {
  const { db, close } = await openTestDb(backends[0])
  t.teardown(close)
  let lose = true
  const lossy: Db = { ...db, tx: async (fn) => { const out = await db.tx(fn); if (lose) { lose = false; throw new Error('connection reset') } return out } }
  const log = createAuditLog(lossy, silentLogger(), { intervalMs: 60_000 })
  for (let i = 0; i < 5; i++) log.record(event(i))
  await t.rejects(log.flush())
  t.same(log.backlog(), { queued: 5, dropped: 0, failing: true })
  log.record(event(5))
  await log.flush()
  t.same(log.backlog(), { queued: 0, dropped: 0, failing: false })
  t.same((await db.query('SELECT path FROM audit ORDER BY seq')).rows.map((r) => r.path), ['/x/0', '/x/1', '/x/2', '/x/3', '/x/4', '/x/5'])
  t.match(await verifyAudit(db), { ok: true, records: 6 })
  await log.stop()
})

t.test('a connection dropped while a batch is written leaves the batch queued, and the retry writes it once', { skip: databaseUrl === undefined && 'needs DATABASE_URL' }, async (t) => {
  const { db, url, close } = await openTestDb('postgres')
  t.teardown(close)
  const other = new pg.Client({ connectionString: url })
  await other.connect()
  t.teardown(async () => { await other.end() })
  const log = createAuditLog(db, silentLogger(), { intervalMs: 60_000 })
  // The writer waits for the head's lock, so its connection can be cut in the middle of the batch.
  await other.query('BEGIN')
  await other.query('SELECT * FROM audit_head FOR UPDATE')
  for (let i = 0; i < 5; i++) log.record(event(i))
  // Settled at once: the rejection may come before anything awaits it.
  const flushed = log.flush().then(() => undefined, (err: Error) => err)
  let waiting: Array<{ pid: number }> = []
  while (waiting.length === 0) {
    waiting = (await other.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows
  }
  await other.query('SELECT pg_terminate_backend($1)', [waiting[0].pid])
  t.match(await flushed, { message: /terminating connection/ })
  t.same(log.backlog(), { queued: 5, dropped: 0, failing: true })
  await other.query('COMMIT')
  await log.flush()
  t.same(log.backlog(), { queued: 0, dropped: 0, failing: false })
  t.match(await verifyAudit(db), { ok: true, records: 5 })
  await log.stop()
})

t.test('a writer kept from the chain\'s head by a lock fails, readiness says so, and the retry writes the batch', { skip: databaseUrl === undefined && 'needs DATABASE_URL' }, async (t) => {
  const { db, url, close } = await openTestDb('postgres')
  t.teardown(close)
  const other = new pg.Client({ connectionString: url })
  await other.connect()
  t.teardown(async () => { await other.end() })
  const log = createAuditLog(db, silentLogger(), { intervalMs: 60_000, lockTimeoutMs: 200 })
  await other.query('BEGIN')
  await other.query('LOCK TABLE audit_head IN EXCLUSIVE MODE')
  for (let i = 0; i < 5; i++) log.record(event(i))
  const flushed = log.flush().then(() => 'written', (err: Error) => err.message)
  const outcome = await Promise.race([flushed, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3000))])
  t.match(outcome, /lock timeout/)
  t.same(log.backlog(), { queued: 5, dropped: 0, failing: true })
  await other.query('COMMIT')
  await flushed
  await log.flush()
  t.same(log.backlog(), { queued: 0, dropped: 0, failing: false })
  t.match(await verifyAudit(db), { ok: true, records: 5 })
  await log.stop()
})
