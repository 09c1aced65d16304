import t from 'tap'
import { createConfirmations } from '../../src/lineage/confirmations.js'

const peerA = '00000000-0000-4000-8000-00000000000a'
const peerB = '00000000-0000-4000-8000-00000000000b'

function setup (boundMs = 200): { c: ReturnType<typeof createConfirmations>, sent: string[], clock: { t: number } } {
  const sent: string[] = []
  const clock = { t: 0 }
  const c = createConfirmations({ send: (m) => sent.push(m), boundMs, silentMs: boundMs * 2, now: () => clock.t })
  return { c, sent, clock }
}

t.test('with no other process a write is confirmed at once', async (t) => {
  const { c } = setup()
  t.same(await c.waitFor(5), [])
})

t.test('a wait ends when every live process has reported the sequence number', async (t) => {
  const { c } = setup(10_000)
  c.receive(`${peerA} 4`)
  c.receive(`${peerB} 4`)
  let done: string[] | undefined
  const wait = c.waitFor(5).then((m) => { done = m })
  await new Promise((resolve) => setTimeout(resolve, 20))
  c.receive(`${peerA} 5`)
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(done, undefined, 'one process still lags')
  c.receive(`${peerB} 7`)
  await wait
  t.same(done, [], 'both confirmed')
})

t.test('a process that never confirms holds a wait for the bound, then is named', async (t) => {
  const { c } = setup(100)
  c.receive(`${peerA} 1`)
  const started = Date.now()
  t.same(await c.waitFor(2), [peerA])
  t.ok(Date.now() - started >= 95, 'waited for the bound')
})

t.test('a process silent for longer than silentMs counts as gone', async (t) => {
  const { c, clock } = setup(100)
  c.receive(`${peerA} 1`)
  clock.t = 150
  t.same([...c.peers()], [[peerA, 1]], 'not yet')
  clock.t = 201
  t.same(await c.waitFor(2), [])
  t.same([...c.peers()], [])
})

t.test('a process that leaves releases the waits on it', async (t) => {
  const { c } = setup(10_000)
  c.receive(`${peerA} 1`)
  const wait = c.waitFor(2)
  c.receive(`${peerA} bye`)
  t.same(await wait, [])
})

t.test('leaving tells the others and releases this process\'s own waits', async (t) => {
  const { c, sent } = setup(10_000)
  c.receive(`${peerA} 1`)
  const wait = c.waitFor(2)
  c.leave()
  t.same(await wait, [peerA])
  t.same(sent, [`${c.id} bye`])
})

t.test('reports carry this process\'s id; its own messages and malformed ones are ignored', async (t) => {
  const { c, sent } = setup()
  c.report(9)
  t.same(sent, [`${c.id} 9`])
  for (const m of [`${c.id} 3`, '', 'x 3', `${peerA}`, `${peerA} -1`, `${peerA} 1.5`, `${peerA} 1e400`, `${peerA} NaN`, `not-a-uuid-at-all-but-thirty-six-ch 3`]) c.receive(m)
  t.same([...c.peers()], [])
  c.receive(`${peerA} 3`)
  c.receive(`${peerA} 2`)
  t.same([...c.peers()], [[peerA, 3]], 'a late, older report never lowers what a process confirmed')
})
