import t from 'tap'
import { parseRfc3339 } from '../src/clock.js'
import { startTestBroker } from './helpers/broker.js'

const iso = (v: string): string | undefined => parseRfc3339(v)?.toISOString()

t.test('a leap second, which RFC 3339 allows at the end of a month, is the second before it', async (t) => {
  t.equal(iso('2016-12-31T23:59:60Z'), '2016-12-31T23:59:59.000Z')
  t.equal(iso('2016-12-31T23:59:60.5Z'), '2016-12-31T23:59:59.500Z', 'its fraction kept')
  t.equal(iso('2017-01-01T05:29:60+05:30'), '2016-12-31T23:59:59.000Z', 'with an offset, as local time shows it')
  t.equal(iso('2015-06-30 23:59:60z'), '2015-06-30T23:59:59.000Z')
  t.equal(iso('2026-01-01T12:00:60Z'), undefined, 'second 60 anywhere but the last of a UTC day is no time')
  t.equal(iso('2016-12-30T23:59:60Z'), undefined, 'nor the last of a day that ends no month')
})

t.test('an hour, minute or offset out of range is no RFC 3339 date-time', async (t) => {
  for (const v of ['2026-01-01T24:00:00Z', '2026-01-01T23:60:00Z', '2026-01-01T00:00:61Z', '2026-01-01T00:00:00+24:00', '2026-01-01T00:00:00+01:60']) {
    t.equal(iso(v), undefined, v)
  }
  t.equal(iso('2026-01-01T00:00:00-23:59'), '2026-01-01T23:59:00.000Z')
})

t.test('GET /v1/audit takes a leap second as since, and refuses hour 24', async (t) => {
  const b = await startTestBroker()
  t.teardown(b.close)
  t.equal((await b.admin('GET', '/v1/audit?since=2016-12-31T23:59:60Z')).status, 200)
  const bad = await b.admin('GET', '/v1/audit?since=2026-01-01T24:00:00Z')
  t.equal(bad.status, 400)
  t.equal(bad.body.error, 'invalid_request')
})
