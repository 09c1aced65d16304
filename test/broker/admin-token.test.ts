import t from 'tap'
import { loadAdminToken } from '../../src/broker/admin-token.js'
import { hashSecret, secretMatches } from '../../src/secrets.js'
import { defaultBackend, openTestDb } from '../helpers/db.js'

t.test('an admin token replaced through LINEAGE_ADMIN_TOKEN stays replaced when the variable is unset later', async (t) => {
  const { db, close } = await openTestDb(defaultBackend)
  t.teardown(close)
  const first = await loadAdminToken(db, undefined)
  const generated = first.firstToken as string
  t.ok(generated, 'the first start makes a token and shows it')
  const configured = 'ladm_replacement-after-a-leak-0123456789'
  t.same(await loadAdminToken(db, configured), { hash: hashSecret(configured) })
  const later = await loadAdminToken(db, undefined)
  t.equal(later.firstToken, undefined, 'no new token is made: one was configured')
  t.ok(secretMatches(configured, later.hash), 'the token configured last is the admin token')
  t.notOk(secretMatches(generated, later.hash), 'the generated one, which it replaced, does not come back')
  const stored = (await db.query<{ value: string }>("SELECT value FROM settings WHERE key = 'admin_token_sha256'")).rows
  t.same(stored, [{ value: hashSecret(configured).toString('hex') }], 'stored only as a hash')
})
