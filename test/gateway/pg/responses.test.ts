import t from 'tap'
import { OutOfStep } from '../../../src/gateway/pg/out-of-step.js'
import type { Execution } from '../../../src/gateway/pg/pending.js'
import { Responses } from '../../../src/gateway/pg/responses.js'
import { Refusals } from '../../../src/gateway/pg/refusals.js'
import { Writer } from '../../../src/gateway/pg/protocol/writer.js'
import { bareResponses } from '../../helpers/pg-responses.js'

const frame = (tag: number, body: Buffer = Buffer.alloc(0)): { tag: number, body: Buffer } => ({ tag, body })
const dataRow = frame(0x44, new Writer().int16(1).int32(3).bytes(Buffer.from('ann')).frame(0x44).subarray(5))
const ready = frame(0x5a, Buffer.from('I'))
const error = (code: string): { tag: number, body: Buffer } => frame(0x45, Buffer.from(`SERROR\0C${code}\0Mboom\0\0`))

function responses (): { r: Responses, recorded: Array<[string, string | undefined]>, rows: number[] } {
  const recorded: Array<[string, string | undefined]> = []
  const rows: number[] = []
  const r = bareResponses({ record: (e, err) => { recorded.push([e.sql, err ?? e.error]); rows.push(e.rows) } })
  return { r, recorded, rows }
}
const exec = (sql: string, simple: boolean): Execution => ({ type: 'exec', sql, c: { class: 'read', statements: [], tables: [], count: 1 }, rows: 0, simple, rules: [] })

t.test('a data row that answers no execution ends the session rather than pass unmasked', async (t) => {
  const { r } = responses()
  t.throws(() => r.frame(dataRow), OutOfStep)
  r.endBatch(false)
  t.throws(() => r.frame(dataRow), OutOfStep, 'a Sync at the head is not an execution either')
})

t.test('an error in an extended batch drops what the upstream skips up to the client\'s Sync', async (t) => {
  const { r, recorded } = responses()
  r.expect({ type: 'step' })
  r.expect(exec('SELECT 1', true))
  r.endBatch(true)
  r.expect(exec('SELECT 2', false))
  r.endBatch(false)
  r.expect(exec('SELECT 3', true))
  r.endBatch(true)
  r.frame(error('26000'))
  t.same(recorded, [['SELECT 1', 'skipped after an error earlier in the batch'], ['SELECT 2', 'skipped after an error earlier in the batch']])
  t.equal(r.skipping, false, 'the Sync was already sent')
  r.frame(ready)
  t.equal(r.outstanding, 2, 'the next query is still awaited')
  t.equal(r.frame(dataRow), undefined)
})

t.test('with the client\'s Sync not yet sent, the session skips until it is', async (t) => {
  const { r } = responses()
  r.expect({ type: 'step' })
  r.frame(error('26000'))
  t.equal(r.skipping, true)
  r.endBatch(false)
  t.equal(r.skipping, false)
  t.equal(r.outstanding, 1)
})

t.test('a simple query\'s error ends only that query', async (t) => {
  const { r, recorded } = responses()
  r.expect(exec('SELECT x', true))
  r.endBatch(true)
  r.frame(error('42703'))
  t.equal(r.skipping, false)
  r.frame(ready)
  t.same(recorded, [['SELECT x', '42703']])
  t.equal(r.outstanding, 0)
})

t.test('a stand-in\'s error is the gateway\'s 42501 even when more refusals than it remembers wait for their answers', async (t) => {
  const refusals = new Refusals()
  const words = Array.from({ length: 1001 }, (_, i) => /lineage_refused_[0-9a-f]{16}/.exec(refusals.query(`reason ${i}`).toString())?.[0] ?? '')
  const answer = (word: string): string => (refusals.rewrite(`syntax error at or near "${word}"`) ?? Buffer.alloc(0)).toString()
  t.match(answer(words[1000]), /42501.*lineage: reason 1000/)
  t.match(answer(words[0]), /42501.*lineage: refused by the gateway/, 'the oldest reason was forgotten, not the refusal')
  t.match(answer(words[1]), /lineage: reason 1/, 'only the oldest')
  t.equal(refusals.rewrite('column "lineage_refused_0123456789abcdef" does not exist'), undefined, 'a client\'s own use of such a name is its own error')
})

t.test('an execution is audited with the rows it returned when no CommandComplete counts them: a row limit, an error, a session that ends', async (t) => {
  const { r, rows } = responses()
  const complete = (tag: string): { tag: number, body: Buffer } => frame(0x43, Buffer.from(`${tag}\0`))
  // Execute with a row limit, twice, then to its end: PortalSuspended carries no count.
  for (let i = 0; i < 3; i++) r.expect(exec('SELECT id FROM t', false))
  r.endBatch(false)
  r.frame(dataRow)
  r.frame(dataRow)
  r.frame(frame(0x73))
  r.frame(dataRow)
  r.frame(frame(0x73))
  r.frame(dataRow)
  r.frame(complete('SELECT 1'))
  r.frame(ready)
  t.same(rows, [2, 1, 1], 'each part with its rows')
  // Rows passed on before an error, in an extended batch and in a simple query.
  r.expect(exec('SELECT 1 / x FROM t', false))
  r.endBatch(false)
  r.frame(dataRow)
  t.equal(r.passesUnread(0x44), true, 'a large row passed on as it arrives')
  r.frame(error('22012'))
  r.frame(ready)
  r.expect(exec('SELECT 1; SELECT 1 / x FROM t', true))
  r.endBatch(true)
  r.frame(dataRow)
  r.frame(complete('SELECT 1'))
  r.frame(dataRow)
  r.frame(error('22012'))
  r.frame(ready)
  r.expect(exec('SELECT id FROM t', true))
  r.endBatch(true)
  r.frame(dataRow)
  r.abandon('session ended')
  t.same(rows.slice(3), [2, 2, 1], 'rows that reached the client count, whatever ended the statement')
})
