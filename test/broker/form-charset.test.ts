import t from 'tap'
import { seedContractor, startTestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
t.teardown(b.close)
const client = await seedContractor(b)

async function post (charset: string, body: string): Promise<{ status: number, error?: string }> {
  const r = await fetch(`${b.url}/oauth/token`, { method: 'POST', headers: { 'content-type': `application/x-www-form-urlencoded; charset=${charset}` }, body })
  const answer = await r.json() as { error?: string }
  return { status: r.status, ...(answer.error === undefined ? {} : { error: answer.error }) }
}
const form = (extra = ''): string => `grant_type=client_credentials&client_id=${client.clientId}&client_secret=${client.clientSecret}${extra}`

t.test('a form labelled with an ASCII-compatible charset (Apache HttpClient sends ISO-8859-1) is read when its text is all ASCII, as it is in every charset', async (t) => {
  for (const charset of ['ISO-8859-1', 'iso-8859-1', 'latin1', 'US-ASCII', '"us-ascii"', 'UTF-8']) {
    t.same(await post(charset, form()), { status: 200 }, charset)
    t.same(await post(charset, form('&scope=api%3Aread')), { status: 200 }, `${charset}, with a percent-encoded ASCII character`)
  }
})

t.test('a form whose bytes would read differently in the charset it names is refused, never guessed at', async (t) => {
  t.same(await post('ISO-8859-1', form('&actor_host=caf%E9')), { status: 400, error: 'invalid_request' }, 'an escaped byte above 0x7F')
  const raw = await fetch(`${b.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=ISO-8859-1' }, body: Buffer.concat([Buffer.from(form('&actor_host=caf')), Buffer.from([0xe9])]) })
  t.same([raw.status, ((await raw.json()) as { error: string }).error], [400, 'invalid_request'], 'a raw byte above 0x7F')
  t.same(await post('koi8-r', form()), { status: 400, error: 'invalid_request' }, 'a charset that is not ASCII-compatible by name')
  t.same(await post('utf-16', form()), { status: 400, error: 'invalid_request' })
})

t.test('parameters named as members of every object (__proto__, constructor, toString) are unknown parameters like any other', async (t) => {
  t.same(await post('UTF-8', form('&__proto__=x&__proto__=y&constructor=z&toString=w&hasOwnProperty=v')), { status: 200 })
  t.same(await post('UTF-8', `__proto__=x&${form()}`), { status: 200 }, 'first in the form')
})
