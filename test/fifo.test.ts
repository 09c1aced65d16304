import t from 'tap'
import { Fifo } from '../src/fifo.js'

t.test('a queue gives items back in the order they came, however it is taken from', async (t) => {
  const q = new Fifo<number>()
  for (let i = 0; i < 5000; i++) q.push(i)
  t.equal(q.shift(), 0)
  t.same(q.first(3), [1, 2, 3], 'first leaves them in place')
  t.equal(q.length, 4999)
  q.drop(2000)
  t.equal(q.peek(), 2001)
  t.equal(q.at(2), 2003)
  const taken: Array<number | undefined> = []
  for (let i = 2001; i < 4000; i++) taken.push(q.shift())
  t.same(taken, Array.from({ length: 1999 }, (_, i) => 2001 + i), 'each shift the next')
  t.equal(q.length, 1000, 'past half taken, the rest is kept')
  t.ok(q.includes(4500))
  t.notOk(q.includes(3999), 'taken items are gone')
  q.removeAt(1)
  t.same(q.first(3), [4000, 4002, 4003])
  q.drop(10_000)
  t.equal(q.length, 0, 'dropping more than it holds empties it')
  t.equal(q.shift(), undefined)
  q.push(7)
  t.same(q.clear(), [7])
  t.equal(q.length, 0)
})
