import t from 'tap'
import { sslModeProblem, upstreamTls } from '../../../src/gateway/pg/upstream-tls.js'

const tls = (q: string): ReturnType<typeof upstreamTls> => upstreamTls(new URL(`postgres://app@db.internal/shop${q}`))

t.test('sslmode means what libpq means, prefer when it is not given', async (t) => {
  t.match(tls(''), { attempt: true, required: false, options: { rejectUnauthorized: false } })
  t.match(tls('?sslmode=prefer'), { attempt: true, required: false })
  t.match(tls('?sslmode=disable'), { attempt: false, required: false })
  t.match(tls('?sslmode=allow'), { attempt: false, required: false })
  t.match(tls('?sslmode=require'), { attempt: true, required: true, options: { rejectUnauthorized: false } })
  t.match(tls('?sslmode=verify-full'), { attempt: true, required: true, options: { rejectUnauthorized: true } })
  t.equal(tls('?sslmode=verify-full').options.checkServerIdentity, undefined, 'verify-full checks the host name (Node\'s own check)')
  const ca = tls('?sslmode=verify-ca')
  t.match(ca, { attempt: true, required: true, options: { rejectUnauthorized: true } })
  t.equal(ca.options.checkServerIdentity?.('db.internal', {} as never), undefined, 'verify-ca checks the chain only')
})

t.test('an sslmode libpq does not know is refused when a target is saved, and one saved before means require', async (t) => {
  t.match(sslModeProblem(new URL('postgres://db.internal/shop?sslmode=no-verify')), /sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full/)
  t.equal(sslModeProblem(new URL('postgres://db.internal/shop')), undefined)
  t.equal(sslModeProblem(new URL('postgres://db.internal/shop?sslmode=verify-ca')), undefined)
  t.match(tls('?sslmode=no-verify'), { attempt: true, required: true, options: { rejectUnauthorized: false } }, 'TLS or nothing, rather than a login that fails as an internal error')
})
