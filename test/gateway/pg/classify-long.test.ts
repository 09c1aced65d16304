import t from 'tap'
import { classify, fingerprint, loadClassifier, longStatementChars } from '../../../src/gateway/pg/classify.js'
import { classifyLong, stopLongClassifier } from '../../../src/gateway/pg/classify-long.js'

await loadClassifier()
t.teardown(stopLongClassifier)

const ids = (n: number): string => Array.from({ length: n }, (_, i) => String(i)).join(', ')

t.test('a long statement is classified on the worker thread as the classifier does here', async (t) => {
  const texts = [
    `SELECT id, name FROM customers WHERE id IN (${ids(5000)})`,
    `INSERT INTO orders (id) VALUES (${ids(5000).replaceAll(', ', '), (')})`,
    `SELECT 1; DROP TABLE t; -- ${'x'.repeat(longStatementChars)}`,
    `SELEC ${'x'.repeat(longStatementChars)}`
  ]
  for (const sql of texts) {
    t.ok(sql.length > longStatementChars)
    const r = await classifyLong(sql, false)
    t.same(r.c, classify(sql), sql.slice(0, 30))
    t.ok(Object.isFrozen(r.c) && Object.isFrozen(r.c.tables), 'frozen, as every classification is')
    t.equal(r.fingerprint, undefined, 'no fingerprint unless asked')
  }
  t.equal((await classifyLong(texts[0], true)).fingerprint, fingerprint(texts[0]), 'the fingerprint, when asked')
})

t.test('the event loop runs while a long statement is classified', async (t) => {
  const sql = `SELECT * FROM t WHERE id IN (${ids(150_000)})`
  let turns = 0
  let on = true
  const turn = (): void => { if (on) { turns++; setImmediate(turn) } }
  turn()
  const r = await classifyLong(sql, false)
  on = false
  t.equal(r.c.class, 'read')
  // Classified here, the text would hold the loop until its answer, so no turn would come between.
  t.ok(turns > 1, `${turns} turns of the event loop`)
})

t.test('a worker that stops answers admin for what it held, and the next statement starts another', async (t) => {
  const held = classifyLong(`SELECT * FROM t WHERE id IN (${ids(150_000)})`, false)
  await stopLongClassifier()
  t.match((await held).c, { class: 'admin', reason: 'the classifier stopped' })
  t.match((await classifyLong(`SELECT * FROM t WHERE id IN (${ids(5000)})`, false)).c, { class: 'read', tables: ['t'] })
})
