import t from 'tap'
import type { AccessClaims } from '../../../src/lineage/claims.js'
import type { Catalog } from '../../../src/gateway/pg/catalog.js'
import { classify, fingerprint, loadClassifier, textFingerprint, type Classification } from '../../../src/gateway/pg/classify.js'
import { stopLongClassifier } from '../../../src/gateway/pg/classify-long.js'
import { StatementCheck } from '../../../src/gateway/pg/statement-check.js'
import type { Target } from '../../../src/gateway/targets.js'

await loadClassifier()
t.teardown(stopLongClassifier)

const claims = { sub: 'ci-nightly', scope: 'db:read', aud: ['db'], lineage: { depth: 1, principals: ['alice', 'ci-nightly'], chain: ['root'] } } as unknown as AccessClaims
const target: Target = { name: 'db', kind: 'postgres', upstream: new URL('postgres://u@127.0.0.1/db'), headers: {}, policy: { rules: [] }, auditStatements: 'fingerprint' }

function checker (stale: string | undefined): { check: StatementCheck, refused: Array<{ text: string, reason: string }> } {
  const refused: Array<{ text: string, reason: string }> = []
  const check = new StatementCheck(claims, {
    target: () => target,
    catalog: () => { throw new Error('no catalog here') },
    stale: () => stale,
    outstanding: () => 0,
    refused: (_c: Classification, text: string, reason: string) => { refused.push({ text, reason }) }
  })
  return { check, refused }
}

t.test('a statement refused before it is classified is audited by fingerprint, a long one without parsing it on the shared thread', async (t) => {
  const { check, refused } = checker('the live-status view is 40 s old')
  const long = `SELECT * FROM t WHERE id IN (${Array.from({ length: 5000 }, (_, i) => String(i)).join(', ')})`
  const admin: Classification = { class: 'admin', statements: [], tables: [], count: 1 }
  t.equal(check.decide(long, admin), 'the live-status view is 40 s old')
  t.equal(check.decide('SELECT 1 FROM t WHERE id = 7', admin), 'the live-status view is 40 s old')
  t.same(refused.map((r) => r.text), [`fingerprint:${textFingerprint(long)}`, `fingerprint:${fingerprint('SELECT 1 FROM t WHERE id = 7')}`])
  t.not(textFingerprint(long), fingerprint(long), 'the parser\'s fingerprint would be another')
})

t.test('a long statement waits for the worker thread, then is decided like a short one', async (t) => {
  const { check, refused } = checker(undefined)
  const long = `DELETE FROM t WHERE id IN (${Array.from({ length: 5000 }, (_, i) => String(i)).join(', ')})`
  t.equal(check.classified(long), 'wait')
  await check.ready()
  const c = check.classified(long)
  t.not(c, 'wait')
  t.same(c, classify(long))
  t.equal(check.decide(long, c as Classification), 'scope db:write is required')
  t.equal(refused[0].text, `fingerprint:${fingerprint(long)}`, 'with the fingerprint the worker made')
  check.handled()
  t.equal(check.classified(long), 'wait', 'once its message is handled, its classification is let go')
  await check.ready()
})

t.test('a long statement refused because it calls a function that may write is audited with the fingerprint the worker made', async (t) => {
  const refused: string[] = []
  const check = new StatementCheck(claims, {
    target: () => target,
    catalog: () => ({ mayWrite: () => true }) as unknown as Catalog,
    stale: () => undefined,
    outstanding: () => 0,
    refused: (_c: Classification, text: string) => { refused.push(text) }
  })
  const long = `SELECT wipe() FROM t WHERE a = 1 /* ${'x'.repeat(20_000)} */`
  t.equal(check.classified(long), 'wait')
  await check.ready()
  const c = check.classified(long) as Classification
  t.match(check.decide(long, c), /scope db:write is required \(calls wipe/)
  t.same(refused, [`fingerprint:${fingerprint(long)}`])
})
