import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../src/log.js'
import { backends } from './helpers/db.js'
import { startTestBroker } from './helpers/broker.js'

for (const backend of backends) {
  t.test(`${backend}: a database failure on a write that carries upstream credentials logs the error without the values it bound or the row it refused`, async (t) => {
    const lines: string[] = []
    const sink = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done() } })
    const b = await startTestBroker({ backend, log: createLogger('error', sink) })
    t.teardown(b.close)
    // A write the database refuses for a reason no check before it foresaw.
    await b.testDb.db.query('ALTER TABLE targets ADD CONSTRAINT refuse_all CHECK (false) NOT VALID')
    const r = await b.admin('POST', '/v1/targets', { name: 'warehouse', kind: 'postgres', upstream: 'postgres://app:S3cretUpstreamPw@db.internal:5432/wh', headers: {} })
    t.equal(r.status, 500)
    const http = await b.admin('POST', '/v1/targets', { name: 'billing', kind: 'http', upstream: 'https://billing.internal', headers: { authorization: 'Bearer UpstreamApiKey123' } })
    t.equal(http.status, 500)
    const logged = lines.join('')
    t.match(logged, /request failed/, 'the failure is logged')
    t.match(logged, /23514/, 'with what the database said (its code)')
    t.notMatch(logged, /S3cretUpstreamPw/, 'not the upstream password')
    t.notMatch(logged, /UpstreamApiKey123/, 'not the upstream header')
  })
}
