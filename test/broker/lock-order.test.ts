import t from 'tap'
import { startTestBroker, type TestBroker } from '../helpers/broker.js'

// Writes that meet on a principal's row and the change log's head take them in one order:
// a human's offboarding locks its services before the head, as their own changes do.
// (PGlite runs one transaction at a time; these races need PostgreSQL.)

/** Humans h<i>-0..4, each sponsoring services s<i>-0..4, and bob, a human to sponsor them anew. */
async function cast (b: TestBroker, prefix: string): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const h = await b.admin('POST', '/v1/principals', { id: `${prefix}h${i}`, kind: 'human', grants: ['api:*'] })
    if (h.status !== 201) throw new Error(`seed: ${h.status}`)
    for (let j = 0; j < 5; j++) await b.admin('POST', '/v1/principals', { id: `${prefix}s${i}-${j}`, kind: 'service', sponsor: `${prefix}h${i}`, grants: ['api:*'] })
  }
}
const each = (fn: (i: number, j: number) => Promise<{ status: number }>): Array<Promise<{ status: number }>> =>
  [0, 1, 2, 3, 4].flatMap((i) => [0, 1, 2, 3, 4].map(async (j) => await fn(i, j)))

const b = await startTestBroker()
t.teardown(b.close)
await b.admin('POST', '/v1/principals', { id: 'bob', kind: 'human', grants: ['api:*'] })

t.test('humans offboarded while their services are offboarded: every request answers 200, none deadlocks into a 500', async (t) => {
  await cast(b, 'a')
  const rs = await Promise.all([
    ...[0, 1, 2, 3, 4].map(async (i) => await b.admin('POST', `/v1/principals/ah${i}/offboard`, {})),
    ...each(async (i, j) => await b.admin('POST', `/v1/principals/as${i}-${j}/offboard`, {}))
  ])
  t.same(rs.map((r) => r.status).filter((s) => s !== 200), [])
  for (let i = 0; i < 5; i++) t.equal((await b.admin('GET', `/v1/principals/as${i}-0`)).body.status, 'offboarded')
})

t.test('humans offboarded while their services are given a new sponsor: every request answers 200, none deadlocks into a 500', async (t) => {
  await cast(b, 'b')
  const rs = await Promise.all([
    ...[0, 1, 2, 3, 4].map(async (i) => await b.admin('POST', `/v1/principals/bh${i}/offboard`, {})),
    ...each(async (i, j) => await b.admin('PUT', `/v1/principals/bs${i}-${j}/sponsor`, { sponsor: 'bob' }))
  ])
  t.same(rs.map((r) => r.status).filter((s) => s !== 200), [])
  // Each service ends with bob as its sponsor, usable, whichever of the two committed first.
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 5; j++) {
      const s = (await b.admin('GET', `/v1/principals/bs${i}-${j}`)).body
      t.same([s.sponsor, s.usable_scopes], ['bob', ['api:*']], `bs${i}-${j}`)
    }
  }
})
