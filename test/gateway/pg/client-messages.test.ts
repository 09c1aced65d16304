import t from 'tap'
import { ClientMessages, type ClientMessageDeps } from '../../../src/gateway/pg/client-messages.js'
import { ProtocolError } from '../../../src/gateway/pg/protocol/errors.js'
import type { Catalog } from '../../../src/gateway/pg/catalog.js'
import { Prepared } from '../../../src/gateway/pg/prepared.js'
import { Refusals } from '../../../src/gateway/pg/refusals.js'
import type { Responses } from '../../../src/gateway/pg/responses.js'
import { bareResponses } from '../../helpers/pg-responses.js'

function messages (): { m: ClientMessages, r: Responses } {
  const refusals = new Refusals()
  const r = bareResponses({ refusals })
  // Copy messages ask nothing of the statement check or the catalog.
  const m = new ClientMessages({ responses: r, prepared: new Prepared(), refusals, check: {} as unknown as ClientMessageDeps['check'], catalog: () => ({}) as unknown as Catalog, record: () => {} })
  return { m, r }
}

t.test('CopyDone and CopyFail the upstream skips after an error in an extended batch leave nothing waiting in the session', async (t) => {
  const { m, r } = messages()
  r.expect({ type: 'step' })
  r.frame({ tag: 0x45, body: Buffer.from('SERROR\0C42601\0Mboom\0\0') })
  t.equal(r.skipping, true)
  // Five bytes each, skipped upstream without an answer: each one used to be held until a Sync came.
  const sent = []
  for (let i = 0; i < 1000; i++) sent.push(m.handle({ tag: 0x63, body: Buffer.alloc(0) }), m.handle({ tag: 0x66, body: Buffer.from('no\0') }))
  t.ok(sent.every((x) => x === undefined), 'each goes upstream as it is')
  t.equal(r.outstanding, 0)
  t.same(m.handle({ tag: 0x53, body: Buffer.alloc(0) }), undefined, 'the Sync goes upstream')
  t.equal(r.outstanding, 1, 'and only its ReadyForQuery is awaited')
})

t.test('Syncs held back during a COPY FROM STDIN count against the answers a session may await', async (t) => {
  const { m, r } = messages()
  r.expect({ type: 'exec', sql: 'COPY t FROM STDIN', c: { class: 'write', statements: [], tables: [], count: 1 }, rows: 0, simple: true, rules: [] })
  r.endBatch(true)
  r.frame({ tag: 0x47, body: Buffer.from([0, 0, 0]) })
  t.equal(r.copyIn, true)
  // Each goes nowhere until the copy fails or reads data; should it fail first (a cancel, a
  // statement_timeout), every one is sent then and awaited at once: they used to be held without bound.
  let held = 0
  let stopped: unknown
  try {
    for (; held < 200_000; held++) m.handle({ tag: 0x53, body: Buffer.alloc(0) })
  } catch (err) {
    stopped = err
  }
  t.type(stopped, ProtocolError)
  t.ok(held <= 100_000, `stopped after ${held}`)
})
